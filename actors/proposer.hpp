// Proposer: drives instances to a decision.
//
// Owns the ballots this node issues ({round, self}) and, per instance it was
// asked to decide (Propose from the applier or a PaxosPeer handle), the state
// of one basic-Paxos attempt: phase 1 (Prepare -> majority of Promise), then
// phase 2 (Accept -> majority of Accepted), then Decided to every learner.
// Handles Propose, Promise, Accepted, Learned, ForgetBelow and JoinQuery (a
// rebuilding node asks what it has started; see acceptor.hpp); sends Prepare,
// Accept and Decided.
//
// Invariants:
//   in phase 2 the value sent is the accepted value of the highest ballot
//     reported by the phase-1 majority, or our own value only when none was;
//   a ballot is used for at most one phase-1 attempt, and each attempt uses a
//     round above every round this proposer has seen (own or rejected);
//   a reply counts only for the attempt (ballot) it answers.
// A failed or silent attempt is retried after a randomized, growing back-off,
// so duelling proposers do not livelock.
#pragma once

#include <algorithm>
#include <cstdint>
#include <map>
#include <random>

#include "actors/actor.hpp"

namespace kvpaxos {

struct ProposerTiming {
  Duration initial_timeout = std::chrono::milliseconds(40);
  Duration max_timeout = std::chrono::milliseconds(1000);
};

class Proposer final : public ActorLogic {
 public:
  Proposer(NodeId self, std::size_t cluster_size, std::uint64_t seed,
           ProposerTiming timing = {});

  void handle(const Address& from, Body body, Time now, Outbox& out) override;
  void tick(Time now, Outbox& out) override;
  Duration tick_interval() const override { return std::chrono::milliseconds(5); }

  std::size_t active_instances() const { return active_.size(); }
  // A rebuilt node starts its ballots above every round its peers reported,
  // so its first attempts are not rejected as stale.
  void raise_round(std::uint64_t round) { max_round_seen_ = std::max(max_round_seen_, round); }
  JoinInfo join_info() const { return {instance_bound_, max_round_seen_}; }

 private:
  enum class Phase { preparing, accepting };

  struct Attempt {
    std::string own_value;
    Ballot ballot;
    Phase phase = Phase::preparing;
    std::uint64_t promised_by = 0;  // bitmask of NodeIds
    std::uint64_t accepted_by = 0;
    Ballot highest_accepted;        // among the promises of this attempt
    std::string highest_value;
    std::string value;              // what phase 2 proposes
    Time retry_at;
    Duration timeout{};
  };

  void on_propose(Propose m, Time now, Outbox& out);
  void on_promise(NodeId from, Promise m, Time now, Outbox& out);
  void on_accepted(NodeId from, const Accepted& m, Time now, Outbox& out);
  template <typename Reply>
  Attempt* counting_attempt(NodeId from, const Reply& m, Phase phase, Time now);
  void start_phase1(InstanceId instance, Attempt& a, Time now, Outbox& out);
  void back_off(Attempt& a, const Ballot& seen, Time now);
  Duration jittered(Duration d);
  bool is_majority(std::uint64_t mask) const;
  void broadcast(Actor to, const Body& body, Outbox& out) const;

  NodeId self_;
  std::size_t n_;
  ProposerTiming timing_;
  std::mt19937_64 rng_;
  std::uint64_t max_round_seen_ = 0;
  InstanceId forget_below_ = 0;
  InstanceId instance_bound_ = 0;  // above every instance an attempt was started for
  std::map<InstanceId, Attempt> active_;
};

}  // namespace kvpaxos
