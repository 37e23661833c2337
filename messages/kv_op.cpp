#include "messages/kv_op.hpp"

#include <exception>

#include "messages/msgpack_scan.hpp"

namespace kvpaxos {

KvOp KvOp::from(const ClientRequest& r) {
  KvOp op{false,       r.client_id, r.seq,   r.ack,      r.op,      r.key,     r.value,
          r.range_end, r.limit,     r.flags, r.compares, r.success, r.failure};
  if (r.op == OpKind::member) {
    msgpack::sbuffer buf;
    msgpack::pack(buf, r.member);
    op.value.assign(buf.data(), buf.size());
  }
  return op;
}

Result<MemberChange> KvOp::member_change() const {
  if (op != OpKind::member) return Error{"not a member op"};
  // A MemberChange is 10 values; the bound keeps a forwarded op's value
  // from costing more to unpack than its bytes.
  const Result<MsgpackShape> shape = scan_msgpack(value, {.max_values = 16, .max_depth = 2});
  if (!shape.ok()) return Error{"undecodable member change: " + shape.error()};
  try {
    MemberChange change;
    msgpack::unpack(value.data(), shape->bytes).get().convert(change);
    return change;
  } catch (const std::exception& e) {
    return Error{std::string("undecodable member change: ") + e.what()};
  }
}

std::string encode_op(const KvOp& op) {
  msgpack::sbuffer buf;
  msgpack::pack(buf, op);
  return std::string(buf.data(), buf.size());
}

namespace {

constexpr std::uint8_t kBatchFormat = 1;

// Value bounds checked before unpacking (codec.hpp says why): an op has at
// most kMaxOpValues (a transaction of kMaxTxnOps ops per branch and
// kMaxTxnCompares compares has 2,574); a batch stops adding ops at
// kMaxBatchValues, so it ends below that plus one op.
constexpr MsgpackLimits kOpLimits{.max_values = kMaxOpValues, .max_depth = 4};
constexpr MsgpackLimits kEntryLimits{.max_values = kMaxBatchValues + kMaxOpValues + 8,
                                     .max_depth = 5};

// The first msgpack value of `bytes`, unpacked once its shape is within
// `limits`. Bytes after it are ignored, as they always were: log entries
// are replayed by every replica, and what each accepts must not change.
Result<msgpack::object_handle> unpack_within(std::string_view bytes, const MsgpackLimits& limits) {
  Result<MsgpackShape> shape = scan_msgpack(bytes, limits);
  if (!shape.ok()) return Error{"undecodable log entry: " + shape.error()};
  return msgpack::unpack(bytes.data(), shape->bytes);
}

bool known_op(const KvOp& op) {
  return op.noop || (op.op >= OpKind::get && op.op <= OpKind::member);
}

}  // namespace

Result<KvOp> decode_op(std::string_view bytes) {
  try {
    Result<msgpack::object_handle> handle = unpack_within(bytes, kOpLimits);
    if (!handle.ok()) return Error{handle.error()};
    KvOp op;
    handle->get().convert(op);
    if (!known_op(op)) return Error{"log entry has an unknown operation"};
    return op;
  } catch (const std::exception& e) {
    return Error{std::string("undecodable log entry: ") + e.what()};
  }
}

std::size_t wire_values(const KvOp& op) {
  // The array, 10 scalars, then the three arrays: a Compare is an array of
  // 5, a RequestOp one of 6.
  return 1 + 10 + (1 + 6 * op.compares.size()) + (1 + 7 * op.success.size()) +
         (1 + 7 * op.failure.size());
}

bool in_range(std::string_view key, std::string_view start, std::string_view range_end) {
  if (range_end.empty()) return key == start;
  if (key < start) return false;
  return range_end == std::string_view("\0", 1) || key < range_end;
}

std::string prefix_end(std::string_view prefix) {
  std::string end(prefix);
  while (!end.empty()) {
    auto& last = reinterpret_cast<unsigned char&>(end.back());
    if (last < 0xff) {
      ++last;
      return end;
    }
    end.pop_back();
  }
  return std::string("\0", 1);
}

std::string encode_batch(NodeId author, const std::vector<std::string>& encoded_ops) {
  msgpack::sbuffer buf;
  msgpack::packer<msgpack::sbuffer> pk(buf);
  pk.pack_array(3);
  pk.pack(kBatchFormat);
  pk.pack(author);
  pk.pack_array(static_cast<std::uint32_t>(encoded_ops.size()));
  std::size_t total = buf.size();
  for (const std::string& op : encoded_ops) total += op.size();
  std::string out;
  out.reserve(total);
  out.append(buf.data(), buf.size());
  for (const std::string& op : encoded_ops) out += op;
  return out;
}

Result<LogEntry> decode_entry(std::string_view bytes) {
  try {
    Result<msgpack::object_handle> handle = unpack_within(bytes, kEntryLimits);
    if (!handle.ok()) return Error{handle.error()};
    const msgpack::object& o = handle->get();
    LogEntry entry;
    if (o.type == msgpack::type::ARRAY && o.via.array.size == 3) {
      if (o.via.array.ptr[0].as<std::uint8_t>() != kBatchFormat) {
        return Error{"log entry is a batch of an unknown format"};
      }
      entry.author = o.via.array.ptr[1].as<NodeId>();
      o.via.array.ptr[2].convert(entry.ops);
    } else {
      entry.ops.emplace_back();
      o.convert(entry.ops.back());
    }
    for (const KvOp& op : entry.ops) {
      if (!known_op(op)) return Error{"log entry has an unknown operation"};
    }
    return entry;
  } catch (const std::exception& e) {
    return Error{std::string("undecodable log entry: ") + e.what()};
  }
}

}  // namespace kvpaxos
