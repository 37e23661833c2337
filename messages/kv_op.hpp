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

// The fields after `value` were added with the data model (delete_range,
// range, txn); entries written before decode with them empty. A member op
// (OpKind::member) carries its MemberChange msgpack-encoded in `value`, so
// that the ops of every other kind stay as short as they were.
struct KvOp {
  bool noop = false;
  ClientId client_id = 0;
  std::uint64_t seq = 0;
  std::uint64_t ack = 0;  // replies up to this seq reached the client
  OpKind op = OpKind::get;
  std::string key;
  std::string value;
  std::string range_end;
  std::uint64_t limit = 0;
  std::uint8_t flags = 0;
  std::vector<Compare> compares;
  std::vector<RequestOp> success;
  std::vector<RequestOp> failure;
  MSGPACK_DEFINE(noop, client_id, seq, ack, op, key, value, range_end, limit, flags, compares,
                 success, failure)

  static KvOp no_op() { return KvOp{.noop = true}; }
  static KvOp from(const ClientRequest& r);
  // op == member: the change `value` carries; an error when it does not decode.
  Result<MemberChange> member_change() const;
};

// The msgpack values encode_op(op) writes (each array and scalar counts
// one): what a batch of ops adds to its entry's decode bound.
std::size_t wire_values(const KvOp& op);
// Entries decode only within these bounds (a batch proposer keeps below them).
inline constexpr std::size_t kMaxOpValues = 4096;
inline constexpr std::size_t kMaxBatchValues = 1 << 16;

// Does `key` fall in the range [start, range_end) as ClientRequest has it
// (empty range_end: start alone; "\0": every key from start)?
bool in_range(std::string_view key, std::string_view start, std::string_view range_end);
// The range_end of every key with this prefix: the prefix with its last
// byte below 0xff incremented and the rest cut; "\0" (all keys) when the
// prefix is empty or all 0xff.
std::string prefix_end(std::string_view prefix);

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
