// The applier's snapshot file: the key/value map, the dedup sessions and the
// point the state covers, as snapshot() writes it and restore() and a
// snapshot transfer read it. Plain data plus one parser; no files, no time.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "messages/messages.hpp"
#include "messages/result.hpp"

namespace kvpaxos {

// A dedup session in the snapshot file.
struct SessionRecord {
  ClientId client = 0;
  std::uint64_t last_seq = 0;
  bool has_reply = false;
  std::string reply_value;
  InstanceId last_instance = 0;
  MSGPACK_DEFINE(client, last_seq, has_reply, reply_value, last_instance)
};

inline constexpr std::uint32_t kSnapshotFormat = 1;

// The snapshot file's content. Field order is the format; bump kSnapshotFormat on change.
struct SnapshotRecord {
  std::uint32_t format = 0;
  InstanceId applied_below = 0;
  std::vector<std::pair<std::string, std::string>> kv;
  std::vector<SessionRecord> sessions;
  std::uint64_t undecodable_entries = 0;
  MSGPACK_DEFINE(format, applied_below, kv, sessions, undecodable_entries)
};

std::string encode_snapshot(const SnapshotRecord& r);
// A snapshot comes from this node's disk or from a peer (with a checksum, but
// any peer can compute one), so nothing in it is trusted: it parses only if
// encode_snapshot could have written it (known format, each key and each
// client once). Never throws.
Result<SnapshotRecord> parse_snapshot(std::string_view bytes);

}  // namespace kvpaxos
