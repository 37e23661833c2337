#include "messages/kv_op.hpp"

#include <exception>

#include "messages/msgpack_scan.hpp"

namespace kvpaxos {

std::string encode_op(const KvOp& op) {
  msgpack::sbuffer buf;
  msgpack::pack(buf, op);
  return std::string(buf.data(), buf.size());
}

namespace {

constexpr std::uint8_t kBatchFormat = 1;

// Value bounds checked before unpacking (codec.hpp says why): an op has 8
// values; a batch holds at most max_batch_ops (1024) ops, 8,196 values.
constexpr MsgpackLimits kOpLimits{.max_values = 64, .max_depth = 2};
constexpr MsgpackLimits kEntryLimits{.max_values = 1 << 16, .max_depth = 3};

// The first msgpack value of `bytes`, unpacked once its shape is within
// `limits`. Bytes after it are ignored, as they always were: log entries
// are replayed by every replica, and what each accepts must not change.
Result<msgpack::object_handle> unpack_within(std::string_view bytes, const MsgpackLimits& limits) {
  Result<MsgpackShape> shape = scan_msgpack(bytes, limits);
  if (!shape.ok()) return Error{"undecodable log entry: " + shape.error()};
  return msgpack::unpack(bytes.data(), shape->bytes);
}

bool known_op(const KvOp& op) {
  return op.noop || op.op == OpKind::get || op.op == OpKind::put || op.op == OpKind::append;
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
