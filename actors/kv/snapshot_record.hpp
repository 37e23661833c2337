// The applier's snapshot file: the key/value map, the dedup sessions and the
// point the state covers, as snapshot() writes it and restore() and a
// snapshot transfer read it. Plain data plus one parser; no files, no time.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "actors/kv/config_state.hpp"
#include "messages/messages.hpp"
#include "messages/result.hpp"

namespace kvpaxos {

// A dedup session in the snapshot file. Format 1 kept a reply's value in
// reply_value; format 2 keeps the whole reply in `reply` (parse_snapshot
// moves a format 1 value there).
struct SessionRecord {
  ClientId client = 0;
  std::uint64_t last_seq = 0;
  bool has_reply = false;
  std::string reply_value;
  InstanceId last_instance = 0;
  OpResult reply;
  MSGPACK_DEFINE(client, last_seq, has_reply, reply_value, last_instance, reply)
};

// A key's revisions, beside kv[i] in key_revisions[i] (format 2).
struct KeyRevisions {
  std::uint64_t create_revision = 0;
  std::uint64_t mod_revision = 0;
  std::uint64_t version = 1;
  MSGPACK_DEFINE(create_revision, mod_revision, version)
};

// 1: the map and the sessions; 2 (the data model): keys in byte order with
// their revisions, the store's revision, whole kept replies; 3 (membership
// change): 2 and the ConfigState. All are read; a format 1 snapshot loads at
// revision 0 with every key at version 1, and formats 1 and 2 keep the
// node's bootstrap configuration (their clusters never changed theirs).
inline constexpr std::uint32_t kSnapshotFormat = 3;

// The snapshot file's content. Field order is the format; bump kSnapshotFormat on change.
struct SnapshotRecord {
  std::uint32_t format = 0;
  InstanceId applied_below = 0;
  std::vector<std::pair<std::string, std::string>> kv;
  std::vector<SessionRecord> sessions;
  std::uint64_t undecodable_entries = 0;
  std::uint64_t revision = 0;
  std::vector<KeyRevisions> key_revisions;
  ConfigStateRecord config;  // format 3
  MSGPACK_DEFINE(format, applied_below, kv, sessions, undecodable_entries, revision,
                 key_revisions, config)
  bool has_config() const { return format >= 3; }
};

std::string encode_snapshot(const SnapshotRecord& r);
// A snapshot comes from this node's disk or from a peer (with a checksum, but
// any peer can compute one), so nothing in it is trusted: it parses only if
// encode_snapshot could have written it (known format, each key and each
// client once, a key's revisions at most the store's, a configuration
// ConfigState::from_record takes). Never throws. A format 1 record comes out
// as format 2 would have it.
Result<SnapshotRecord> parse_snapshot(std::string_view bytes);

}  // namespace kvpaxos
