// The value the key/value service agrees on in each log instance: one client
// operation, or a no-op used to fill a hole. An Append carries its argument,
// never the resulting value.
#pragma once

#include <string>
#include <string_view>
#include <vector>

#include "messages/messages.hpp"
#include "messages/result.hpp"

namespace kvpaxos {

struct KvOp {
  bool noop = false;
  ClientId client_id = 0;
  std::uint64_t seq = 0;
  std::uint64_t ack = 0;  // replies up to this seq reached the client
  OpKind op = OpKind::get;
  std::string key;
  std::string value;
  MSGPACK_DEFINE(noop, client_id, seq, ack, op, key, value)

  static KvOp no_op() { return KvOp{.noop = true}; }
  static KvOp from(const ClientRequest& r) {
    return KvOp{false, r.client_id, r.seq, r.ack, r.op, r.key, r.value};
  }
};

std::string encode_op(const KvOp& op);
Result<KvOp> decode_op(std::string_view bytes);

// A log entry holds one op (encode_op: no-ops) or a batch of ops proposed by
// `author`, executed in order: [1, author, [op, op, ...]], built from
// already-encoded ops without re-encoding them. The author of the latest
// batch is who the other nodes forward client ops to (the leader).
inline constexpr NodeId kNoAuthor = ~NodeId{0};
std::string encode_batch(NodeId author, const std::vector<std::string>& encoded_ops);
struct LogEntry {
  NodeId author = kNoAuthor;
  std::vector<KvOp> ops;  // a no-op entry gives one no-op
};
Result<LogEntry> decode_entry(std::string_view bytes);

}  // namespace kvpaxos
