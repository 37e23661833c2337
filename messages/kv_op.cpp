#include "messages/kv_op.hpp"

#include <exception>

namespace kvpaxos {

std::string encode_op(const KvOp& op) {
  msgpack::sbuffer buf;
  msgpack::pack(buf, op);
  return std::string(buf.data(), buf.size());
}

Result<KvOp> decode_op(std::string_view bytes) {
  try {
    msgpack::object_handle handle = msgpack::unpack(bytes.data(), bytes.size());
    KvOp op;
    handle.get().convert(op);
    if (!op.noop && op.op != OpKind::get && op.op != OpKind::put && op.op != OpKind::append) {
      return Error{"log entry has an unknown operation"};
    }
    return op;
  } catch (const std::exception& e) {
    return Error{std::string("undecodable log entry: ") + e.what()};
  }
}

}  // namespace kvpaxos
