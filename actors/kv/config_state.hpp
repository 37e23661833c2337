// ConfigState: the cluster's membership as replicated state, beside the map
// in the key/value state machine (../shared/MEMBERSHIP.md 3.2, PhxPaxos's
// SystemVSM: one log for both). It lives in actors/kv because only the KV
// service replicates it: it changes only by a member op decided in the log,
// it is written into every snapshot with the map and the sessions, and the
// Paxos actors see it only as the ConfigHistory the applier sends them
// (ConfigUpdate). No messages, no time: KvStateMachine runs a member op
// through apply(), every replica in log order.
//
// Invariants (check_invariants()):
//   entries ascend strictly by `from`, each one's epoch is the one before's
//     plus one, and at most one entry is pending (its from above what was
//     applied): a change is refused while another is pending;
//   every config has at least one voter, at most kMaxVoters voters and at
//     most kMaxLearners learners, ascending unique ids below next_member_id,
//     and no name or peer endpoint twice;
//   next_member_id only grows: an id is never handed out twice, even after
//     its member was removed (a removed member's votes must never be taken
//     for a new member's);
//   alpha is set at the first start and never changes;
//   the removed members (the latest kMaxRemovedKept, in the order of their
//   removal) have ids below next_member_id, each once, none of them a member
//   of the latest configuration.
#pragma once

#include <cstdint>
#include <string>
#include <utility>
#include <vector>

#include "messages/membership.hpp"
#include "messages/result.hpp"

namespace kvpaxos {

// A change decided in instance i governs the instances from i + alpha on.
inline constexpr std::uint64_t kDefaultAlpha = 64;
inline constexpr std::uint64_t kMaxAlpha = 1 << 20;
inline constexpr std::size_t kMaxVoters = 63;  // ballots' vote masks
inline constexpr std::size_t kMaxLearners = 2;

// The bootstrap members: ids 0..n-1 in the order of `names` (the --cluster
// list), all voters; peer_endpoints[i] when given.
std::vector<MemberEntry> bootstrap_members(const std::vector<std::string>& names,
                                           const std::vector<std::string>& peer_endpoints = {});

// What a snapshot stores of a ConfigState (format 3). Field order is the format.
// `removed` came later within format 3: a record without it (written
// before) reads as one with no removed members.
struct ConfigStateRecord {
  std::uint64_t alpha = 0;
  NodeId next_member_id = 0;
  std::vector<ConfigAt> entries;
  std::vector<RemovedMember> removed;
  MSGPACK_DEFINE(alpha, next_member_id, entries, removed)
  bool operator==(const ConfigStateRecord&) const = default;
};

class ConfigState {
 public:
  // The configuration of a cluster's first start: `members` as they are
  // (bootstrap_members), epoch 0, governing from instance 0.
  ConfigState(std::vector<MemberEntry> members, std::uint64_t alpha);
  // n voters n1..nN without endpoints (ConfigHistory::fixed): the unit
  // tests' cluster.
  static ConfigState fixed(std::size_t n, std::uint64_t alpha = kDefaultAlpha);
  // A snapshot's record, checked against the invariants above (it may come
  // from a peer); the error says which one it breaks.
  static Result<ConfigState> from_record(ConfigStateRecord r);
  ConfigStateRecord record() const {
    return {alpha_, next_member_id_, history_.entries, history_.removed};
  }

  // A member op decided in `instance` (the applier applied everything below
  // it). Deterministic: a refusal (error set) changes nothing and says why
  // and what to do; list changes nothing either.
  MemberResult apply(const MemberChange& change, InstanceId instance);
  // Everything below `applied_below` is applied: drops the entries no
  // instance from there on is governed by.
  void trim(InstanceId applied_below);

  // The configuration of `instance` (at or above the last trim).
  const Config& at(InstanceId instance) const { return history_.at(instance); }
  const Config& latest() const { return history_.latest(); }
  std::uint64_t epoch() const { return latest().epoch; }
  std::uint64_t alpha() const { return alpha_; }
  NodeId next_member_id() const { return next_member_id_; }
  // The entry that starts above `applied_below`, if one does (else 0).
  InstanceId pending_from(InstanceId applied_below) const;
  // What the Paxos actors get: the entries and known_below = applied_below + alpha.
  ConfigHistory history(InstanceId applied_below) const;
  // What history(applied_below) holds, but for known_below, in two numbers:
  // the latest epoch (every change moves it) and where the first entry it
  // keeps governs from (trimming moves it). Equal marks, equal entries.
  std::pair<std::uint64_t, InstanceId> history_mark(InstanceId applied_below) const;

  // Simulator only: a change governs from the next instance (no window), so
  // instances a proposer ran ahead into were decided under the old one.
  void set_bug_no_window(bool on) { bug_no_window_ = on; }
  bool bug_no_window() const { return bug_no_window_; }
  // Simulator only: an added member's id is one past the highest id of the
  // current members instead of next_member_id, so the id of a removed member
  // that had the highest one is handed out again.
  void set_bug_reused_id(bool on) { bug_reused_id_ = on; }
  bool bug_reused_id() const { return bug_reused_id_; }

  std::string check_invariants() const;

 private:
  // The index of the first entry that governs an instance at or above
  // applied_below (history() and history_mark() keep it and the later ones).
  std::size_t first_kept(InstanceId applied_below) const;
  ConfigState() = default;
  MemberResult result(InstanceId instance) const;
  MemberResult refuse(std::string why, InstanceId instance) const;
  // Keeps, as removed, the members of `before` that `after` (governing
  // from `from`) leaves out.
  void remember_removed(const Config& before, const Config& after, InstanceId from);
  // Why `next` may not replace the latest configuration (empty: it may).
  std::string broken_rule(const Config& next) const;
  std::string refusal(const MemberChange& change, InstanceId instance) const;
  // The configuration the change leads to, or an error; the id it names
  // (allocated for add_learner) in `id`.
  Result<Config> changed(const MemberChange& change, NodeId& id) const;

  std::uint64_t alpha_ = kDefaultAlpha;
  NodeId next_member_id_ = 0;
  // The entries (ascending from; the first governs below the second) and
  // the removed members; known_below is history()'s to set.
  ConfigHistory history_;
  InstanceId trimmed_below_ = 0;  // the last trim's point
  bool bug_no_window_ = false;
  bool bug_reused_id_ = false;
};

}  // namespace kvpaxos
