// Membership as replicated state: who the members are, which of them vote,
// and from which log instance each configuration governs
// (docs/architecture.md, "Membership"; ../shared/MEMBERSHIP.md is the design).
//
// Member ids (NodeId) are permanent: the configuration allocates them and
// never reuses one, and ballots, frame addresses and batch authors carry
// them. The members of the first configuration have their index in the
// bootstrap --cluster list as id, so data dirs written before membership
// changes existed read unchanged.
//
// The alpha window (Lamport, "Paxos Made Simple" section 3): a change decided
// in instance i governs the instances from i + alpha on. So the configuration
// of instance j is a function of the decided log below j - alpha + 1, every
// node computes the same one, and each instance is decided entirely inside
// one configuration: no quorum intersection between an old and a new
// configuration is needed, and a change may replace any set of voters.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "messages/types.hpp"

namespace kvpaxos {

// Voters make up quorums; learners get every decision and catch up, hold a
// durable acceptor that is never asked to vote, and count for nothing (so a
// learner with a wrong address, or one that never starts, cannot hurt).
enum class MemberRole : std::uint8_t { voter = 1, learner = 2 };
const char* to_string(MemberRole r);

struct MemberEntry {
  NodeId id = 0;
  std::string name;             // unique among the members of one configuration
  std::string peer_endpoint;    // ZeroMQ endpoint peers connect to: tcp://host:port
  std::string client_endpoint;  // where clients reach it; empty: none advertised
  MemberRole role = MemberRole::voter;
  // Random, written into the member's data dir at its first start. A
  // promotion names the learner's incarnation: a learner wiped and started
  // again with an empty data dir has another, and its blank acceptor never
  // votes (0: a member of the first configuration, never gated).
  std::uint64_t incarnation = 0;
  std::string peer_key;  // its CURVE public key (Z85), empty without keys
  MSGPACK_DEFINE(id, name, peer_endpoint, client_endpoint, role, incarnation, peer_key)
  bool operator==(const MemberEntry&) const = default;
};

// One configuration: its epoch (moved by one per change) and its members in
// ascending id order.
struct Config {
  std::uint64_t epoch = 0;
  std::vector<MemberEntry> members;
  MSGPACK_DEFINE(epoch, members)
  bool operator==(const Config&) const = default;

  const MemberEntry* find(NodeId id) const;
  const MemberEntry* find_name(const std::string& name) const;
  bool is_member(NodeId id) const { return find(id) != nullptr; }
  bool is_voter(NodeId id) const;
  std::vector<NodeId> voters() const;   // ascending
  std::vector<NodeId> member_ids() const;  // ascending, voters and learners
  std::size_t voter_count() const;
};

// A configuration and the first instance it governs.
struct ConfigAt {
  InstanceId from = 0;
  Config config;
  MSGPACK_DEFINE(from, config)
  bool operator==(const ConfigAt&) const = default;
};

// How many removed members a configuration history remembers.
inline constexpr std::size_t kMaxRemovedKept = 64;

// A member taken out by a change (remove, replace): the epoch of the first
// configuration without it, the instance that configuration governs from,
// and what it was known by, so that a node which no longer holds the entries
// before the change (trimmed, or a snapshot installed past it) still knows to
// tell it, when it calls, that it was removed; and, with keys, lets its key
// in only for that (actors/net/peer_link.hpp).
struct RemovedMember {
  NodeId id = 0;
  std::string name;
  std::uint64_t epoch = 0;
  InstanceId from = 0;
  std::string peer_key;  // its configuration key (Z85); empty: a key file, or no keys
  MSGPACK_DEFINE(id, name, epoch, from, peer_key)
  bool operator==(const RemovedMember&) const = default;
};

// The configurations of the instances a node may still run: ascending
// `from`, the first governing every instance below the second's from (a
// node holds only the entries in force at or above what it has applied).
// known_below: the configuration of every instance below it is known (the
// node applied [0, known_below - alpha)); nothing may be proposed at or
// above it.
//
// removed: the latest members taken out (at most kMaxRemovedKept, oldest
// first), whether or not the entries before their removal are still here.
// A history from a node of an earlier release has none.
struct ConfigHistory {
  std::vector<ConfigAt> entries;
  InstanceId known_below = 0;
  std::vector<RemovedMember> removed;
  MSGPACK_DEFINE(entries, known_below, removed)
  bool operator==(const ConfigHistory&) const = default;

  bool knows(InstanceId instance) const { return instance < known_below; }
  // The configuration in force at `instance` (the last entry whose from is
  // at or below it; the first entry for instances below every from).
  // Requires a non-empty history.
  const Config& at(InstanceId instance) const;
  const Config& latest() const { return entries.back().config; }
  // Every voter of any entry, ascending: who a range promise must reach.
  std::vector<NodeId> all_voters() const;
  // Every member (voter or learner) of any entry, ascending: who hears
  // decisions and who may send Paxos traffic.
  std::vector<NodeId> all_members() const;
  bool is_member(NodeId id) const;

  // A fixed configuration: members 0..n-1, all voters, known for every
  // instance (the PaxosPeer library, and the first start of a cluster).
  static ConfigHistory fixed(std::size_t n);
};

// ------------------------------------------------------------- changes (ops)

// A change a client asks for; it goes through the log as an op (OpKind::member)
// and is applied deterministically by every replica: refused (MemberResult
// with an error, nothing changed) when expected_epoch is not the current
// epoch (compare-and-swap: two operators cannot race), while an earlier
// change is still pending, or when it would break a rule (a duplicate name or
// endpoint, an unknown member, a wrong role, no voter left).
enum class MemberChangeKind : std::uint8_t {
  list = 0,         // no change: the reply carries the configuration
  add_learner = 1,  // name, peer_endpoint, client_endpoint, peer_key: a new id
  promote = 2,      // target: a learner becomes a voter (with `incarnation`)
  remove = 3,       // target
  replace = 4,      // target removed and `other` (a learner) promoted, at once
  update = 5,       // target's peer_endpoint / client_endpoint / peer_key (non-empty ones)
};
const char* to_string(MemberChangeKind k);

struct MemberChange {
  MemberChangeKind kind = MemberChangeKind::list;
  std::uint64_t expected_epoch = 0;
  NodeId target = 0;  // promote, remove, replace (the voter going), update
  NodeId other = 0;   // replace: the learner promoted in its place
  std::string name;   // add_learner
  std::string peer_endpoint;
  std::string client_endpoint;
  std::string peer_key;
  std::uint64_t incarnation = 0;  // promote, replace: the learner's, as it reported it
  MSGPACK_DEFINE(kind, expected_epoch, target, other, name, peer_endpoint, client_endpoint,
                 peer_key, incarnation)
  bool operator==(const MemberChange&) const = default;
};

// What a member op gave: the configuration after it (or unchanged, with
// `error`, when refused), the id it allocated (add_learner), and the
// instance from which the change governs.
struct MemberResult {
  std::string error;  // empty: applied
  std::uint64_t epoch = 0;
  NodeId id = 0;
  InstanceId effective_from = 0;
  Config config;            // latest, including a pending change
  InstanceId pending_from = 0;  // > the op's instance while a change is not in force yet
  std::uint64_t alpha = 0;
  MSGPACK_DEFINE(error, epoch, id, effective_from, config, pending_from, alpha)
  bool operator==(const MemberResult&) const = default;
};

}  // namespace kvpaxos

MSGPACK_ADD_ENUM(kvpaxos::MemberRole);
MSGPACK_ADD_ENUM(kvpaxos::MemberChangeKind);
