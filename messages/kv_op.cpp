#include "messages/kv_op.hpp"

#include <exception>

namespace kvpaxos {

std::string encode_op(const KvOp& op) {
  msgpack::sbuffer buf;
  msgpack::pack(buf, op);
  return std::string(buf.data(), buf.size());
}

namespace {

constexpr std::uint8_t kBatchFormat = 1;

bool known_op(const KvOp& op) {
  return op.noop || op.op == OpKind::get || op.op == OpKind::put || op.op == OpKind::append;
}

}  // namespace

Result<KvOp> decode_op(std::string_view bytes) {
  try {
    msgpack::object_handle handle = msgpack::unpack(bytes.data(), bytes.size());
    KvOp op;
    handle.get().convert(op);
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
    msgpack::object_handle handle = msgpack::unpack(bytes.data(), bytes.size());
    const msgpack::object& o = handle.get();
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
