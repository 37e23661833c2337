// KvStateMachine: the deterministic part of the key/value service. It owns
// the ordered key/value map with its revisions, the per-client dedup
// sessions (their kept replies, the retained-reply byte budget, LRU eviction
// by count and by idleness) and the cluster's configuration (a ConfigState),
// and executes one decided op at a time: get, put, append, delete_range,
// range, txn (docs/protocol.md, "Data model") and member, which goes
// through the sessions as every op does, so a retried change runs once. No
// messages, no time, no threads: the Applier feeds it the ops of each
// applied instance in log order, and every replica that fed it the same
// prefix holds the same state.
//
// Revisions: revision() starts at 0 and grows by one with every change (a
// put, an append, each key a delete_range removes, each such write of a
// transaction); a key's mod_revision is the revision of its last change,
// create_revision that of the put or append that created it, and version
// the writes since then (1 on creation).
//
// Invariants (check_invariants()):
//   an op (client_id, seq) changes the map at most once: it runs only when
//     seq > sessions[client_id].last_seq, across retries and across nodes;
//   only seq 1 starts a session, and an op whose ack is above its session's
//     last_seq does not run (both: docs/architecture.md, "Bounded sessions");
//   a session keeps at most one reply, dropped once the client acks it;
//     retained_reply_bytes() is the sum of the kept replies' sizes, brought
//     within limits.retained_reply_bytes after each op that runs (the newest
//     reply stays even if it alone is larger; a snapshot loads as written);
//   every key's create_revision <= mod_revision <= revision(), version >= 1,
//     and the byte count data_bytes() is the sum of its keys' and values' sizes;
//   sessions_by_age_ holds exactly {last_instance, client} per session, and
//     replies_by_age_ exactly that pair per session that keeps a reply;
//   after end_instance(i), past max_sessions only sessions i touched remain
//     beyond the cap (an instance never evicts the sessions it touched).
#pragma once

#include <cstdint>
#include <functional>
#include <map>
#include <optional>
#include <set>
#include <string>
#include <unordered_map>
#include <utility>
#include <vector>

#include "actors/kv/config_state.hpp"
#include "actors/kv/snapshot_record.hpp"
#include "messages/codec.hpp"
#include "messages/kv_op.hpp"

namespace kvpaxos {

// Part of the state machine: every node must run with the same limits.
struct KvLimits {
  std::size_t max_sessions = 65'536;
  InstanceId session_idle_instances = 1'000'000;
  std::size_t retained_reply_bytes = 16 * 1024 * 1024;
  // A range's (or a transaction's) reply holds keys and values of at most
  // this many bytes; past it the reply says `more`.
  std::size_t max_reply_bytes = kMaxReplyDataBytes;
  // Simulator only: run ops of evicted sessions anyway, to show that the
  // exactly-once checker catches it.
  bool bug_execute_expired = false;
  // Simulator only: a delete removes keys without moving the revision, to
  // show that the simulator's revision checks catch it.
  bool bug_delete_keeps_revision = false;
};

// One key's state in the map.
struct KeyEntry {
  std::string value;
  std::uint64_t create_revision = 0;
  std::uint64_t mod_revision = 0;
  std::uint64_t version = 0;
  bool operator==(const KeyEntry&) const = default;
};
using KvMap = std::map<std::string, KeyEntry, std::less<>>;

using KvEvent = WatchEvent;

// The bytes a kept reply counts against the retained-reply budget: its
// value, keys and values, and kReplyBytesPerKey per key and per response.
std::size_t reply_bytes(const OpResult& r);

// What execute() did with an op.
enum class OpOutcome {
  ran,              // it changed the session (and the map, unless a get)
  duplicate,        // its seq ran before in this session: nothing changed
  session_expired,  // no session may run it (evicted, or restarted by a late seq 1)
};

class KvStateMachine {
 public:
  explicit KvStateMachine(KvLimits limits, ConfigState config = ConfigState::fixed(3))
      : limits_(limits), config_(std::move(config)) {}

  // Executes `op` (not a no-op), decided in `instance`, if its session lets
  // it. Its reply is then kept_reply(client, seq) until the client acks it.
  OpOutcome execute(const KvOp& op, InstanceId instance);
  // After the ops of `instance` ran and their replies went out: evicts the
  // least recently used sessions past max_sessions (never one `instance`
  // touched), and every 1024 instances the ones idle too long.
  void end_instance(InstanceId instance);

  // Request `seq` of `client` ran (its session exists and got that far).
  bool executed(ClientId client, std::uint64_t seq) const;
  bool has_session(ClientId client) const { return sessions_.contains(client); }
  // The reply of `seq` if it is the session's last executed op and the reply
  // is still kept; null otherwise. Valid until the next execute or eviction.
  const OpResult* kept_reply(ClientId client, std::uint64_t seq) const;

  // Every change execute() makes from now on is appended to `events` (in
  // revision order) until the sink is set to null. For watches.
  void set_event_sink(std::vector<KvEvent>* events) { events_ = events; }

  // Snapshot: the map, the sessions and the configuration, in and out (a
  // record without a configuration, format 1 or 2, keeps this one).
  void write_to(SnapshotRecord& r) const;
  void load(SnapshotRecord& r);

  // The configuration member ops have made (trimmed at end_instance).
  const ConfigState& config() const { return config_; }
  ConfigState& config() { return config_; }

  const KvMap& data() const { return kv_; }
  // The value of `key`, or null when it is absent.
  const std::string* value_of(std::string_view key) const;
  std::uint64_t revision() const { return revision_; }
  std::uint64_t data_bytes() const { return kv_bytes_; }
  std::size_t sessions() const { return sessions_.size(); }
  std::uint64_t sessions_evicted() const { return sessions_evicted_; }
  std::size_t retained_replies() const { return replies_by_age_.size(); }
  std::size_t retained_reply_bytes() const { return retained_bytes_; }
  const KvLimits& limits() const { return limits_; }

  // Empty when the invariants above hold, else the first one broken.
  // A walk over the sessions.
  std::string check_invariants() const;

 private:
  struct Session {
    std::uint64_t last_seq = 0;
    bool has_reply = false;
    OpResult reply;
    std::size_t reply_bytes = 0;  // reply_bytes(reply) while has_reply
    InstanceId last_instance = 0;
  };
  using Sessions = std::unordered_map<ClientId, Session>;

  // The session `op` may run in (created for a seq 1), or none.
  Session* session_for(const KvOp& op, InstanceId instance);
  void run(const KvOp& op, Session& s, InstanceId instance);
  OpResult run_op(const KvOp& op, InstanceId instance);
  MemberResult run_member(const KvOp& op, InstanceId instance);
  void write(const std::string& key, const std::string& value, bool append);
  std::uint64_t delete_range(const std::string& key, const std::string& range_end);
  // What one reply may still carry: keys and values bytes, and keys, over
  // all its responses. The first key of a reply always fits (a value is at
  // most kMaxValueBytes); after it, only what the budget holds.
  struct ReplyBudget {
    std::size_t bytes = 0;
    std::size_t keys = kMaxReplyKeys;
    bool empty = true;
    bool take(std::size_t size);  // false (and nothing taken) when it does not fit
  };
  void read_range(const std::string& key, const std::string& range_end, std::uint64_t limit,
                  std::uint8_t flags, ReplyBudget& budget, OpResponse& out) const;
  bool holds(const Compare& c) const;
  template <typename Op>
  OpResponse run_one(const Op& op, ReplyBudget& budget);
  void touch(ClientId client, Session& s, InstanceId instance);
  void keep_reply(ClientId client, Session& s, OpResult reply);
  void drop_reply(ClientId client, Session& s);
  void enforce_reply_budget();
  void evict(Sessions::iterator it);
  void evict_excess_sessions(InstanceId instance);
  void evict_idle_sessions(InstanceId applied_below);
  std::string check_sessions() const;
  std::string check_keys() const;

  KvLimits limits_;
  KvMap kv_;
  std::uint64_t kv_bytes_ = 0;  // keys and values in kv_
  std::uint64_t revision_ = 0;
  std::vector<KvEvent>* events_ = nullptr;
  Sessions sessions_;
  // Every session, by the instance of its last executed op (eviction order).
  std::set<std::pair<InstanceId, ClientId>> sessions_by_age_;
  // Sessions holding a reply, by the instance that produced it (oldest first).
  std::set<std::pair<InstanceId, ClientId>> replies_by_age_;
  std::size_t retained_bytes_ = 0;  // sum of the kept replies' sizes
  std::uint64_t sessions_evicted_ = 0;
  ConfigState config_;
  // The last instance end_instance() evicted for; unknown after load().
  std::optional<InstanceId> ended_;
};

}  // namespace kvpaxos
