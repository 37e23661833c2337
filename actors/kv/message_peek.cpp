#include "actors/kv/message_peek.hpp"

#include <cstddef>
#include <cstdint>

namespace kvpaxos {
namespace {

// Reads msgpack values one after another off the front of `bytes`. Each
// read returns nullopt (and every later read too) at anything else.
class Reader {
 public:
  explicit Reader(std::string_view bytes) : bytes_(bytes) {}

  std::optional<std::uint64_t> uint() {
    const std::optional<std::uint8_t> lead = byte();
    if (!lead) return std::nullopt;
    if (*lead <= 0x7f) return *lead;  // positive fixint
    if (*lead >= 0xcc && *lead <= 0xcf) return big_endian(std::size_t{1} << (*lead - 0xcc));
    return fail();
  }
  // An array header: the number of elements that follow.
  std::optional<std::uint64_t> array() {
    const std::optional<std::uint8_t> lead = byte();
    if (!lead) return std::nullopt;
    if ((*lead & 0xf0) == 0x90) return *lead & 0x0f;
    if (*lead == 0xdc) return big_endian(2);
    if (*lead == 0xdd) return big_endian(4);
    return fail();
  }
  std::optional<bool> boolean() {
    const std::optional<std::uint8_t> lead = byte();
    if (lead == 0xc2) return false;
    if (lead == 0xc3) return true;
    return fail();
  }

 private:
  std::optional<std::uint8_t> byte() {
    if (at_ >= bytes_.size()) return std::nullopt;
    return static_cast<std::uint8_t>(bytes_[at_++]);
  }
  std::optional<std::uint64_t> big_endian(std::size_t n) {
    if (bytes_.size() - at_ < n) return fail();
    std::uint64_t v = 0;
    for (std::size_t i = 0; i < n; ++i) v = v << 8 | static_cast<std::uint8_t>(bytes_[at_++]);
    return v;
  }
  std::nullopt_t fail() {
    at_ = bytes_.size();
    return std::nullopt;
  }

  std::string_view bytes_;
  std::size_t at_ = 0;
};

// Past [type, version, [ of a body whose fields array holds at least
// `fields`: the type, or nullopt.
std::optional<MessageType> open_body(Reader& r, std::uint64_t fields) {
  if (r.array() != std::uint64_t{3}) return std::nullopt;
  const std::optional<std::uint64_t> type = r.uint();
  if (!type || *type > 255 || !r.uint()) return std::nullopt;
  const std::optional<std::uint64_t> n = r.array();
  if (!n || *n < fields) return std::nullopt;
  return static_cast<MessageType>(*type);
}

std::optional<ReplyCode> code(std::optional<std::uint64_t> v) {
  if (!v || *v >= kReplyCodes) return std::nullopt;
  return static_cast<ReplyCode>(*v);
}

}  // namespace

ClientOp client_op(OpKind op) {
  if (op < OpKind::get || op > OpKind::member) return ClientOp::invalid;
  return static_cast<ClientOp>(static_cast<int>(op) - static_cast<int>(OpKind::get));
}

ClientOp peek_request_op(std::string_view body) {
  Reader r(body);
  const std::optional<MessageType> type = open_body(r, 0);
  if (!type) return ClientOp::invalid;
  switch (*type) {
    case MessageType::client_request: {
      // client_id, seq, ack, op
      if (!r.uint() || !r.uint() || !r.uint()) return ClientOp::invalid;
      const std::optional<std::uint64_t> op = r.uint();
      return op && *op <= 255 ? client_op(static_cast<OpKind>(*op)) : ClientOp::invalid;
    }
    case MessageType::status_request: return ClientOp::status;
    case MessageType::watch_request: return ClientOp::watch;
    case MessageType::snapshot_save_request: return ClientOp::snapshot_save;
    case MessageType::fault_request: return ClientOp::fault;
    default: return ClientOp::invalid;
  }
}

std::optional<ReplyKind> peek_reply(std::string_view body) {
  Reader r(body);
  const std::optional<MessageType> type = open_body(r, 1);
  if (!type) return std::nullopt;
  ReplyKind kind{.type = *type};
  std::optional<ReplyCode> c;
  switch (*type) {
    case MessageType::client_reply:  // client_id, seq, code
      if (!r.uint() || !r.uint()) return std::nullopt;
      c = code(r.uint());
      break;
    case MessageType::error_reply:  // code first
    case MessageType::fault_reply:
    case MessageType::snapshot_save_reply:
      c = code(r.uint());
      break;
    case MessageType::status_reply: return kind;
    case MessageType::watch_response: {  // watch_id, created
      if (!r.uint()) return std::nullopt;
      const std::optional<bool> created = r.boolean();
      if (!created) return std::nullopt;
      kind.watch_created = *created;
      return kind;
    }
    default: return std::nullopt;
  }
  if (!c) return std::nullopt;
  kind.code = *c;
  return kind;
}

}  // namespace kvpaxos
