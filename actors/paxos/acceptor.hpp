// Acceptor: the Paxos memory of one node.
//
// Owns, per log instance, the highest ballot promised and the highest
// (ballot, value) accepted. Handles Prepare and Accept from any proposer in the
// cluster and answers with Promise / Accepted; handles ForgetBelow from the
// local learner, AcceptedQuery from the local applier (answers AcceptedBound)
// and JoinQuery from a rebuilding node (answers JoinInfo).
// Sends nothing on its own.
//
// Multi-Paxos: besides its per-instance promises the acceptor holds at most
// one range promise (from, ballot): no ballot below it is accepted in any
// instance >= from, and a PrepareFrom answer lists every value accepted at or
// above `from`. A newer range promise merges with the old one as (lowest
// from, highest ballot), which only promises more. The promise in force for
// an instance is the higher of its own and the range's (promised_in()).
//
// Invariants, per instance:
//   accepted_ballot <= promised_in(instance), always;
//   promised_in(instance) never decreases; accepted_ballot never decreases;
//   an instance below forget_below is never answered except with "forgotten".
// Durability (persistence as data): a recovered acceptor hands out every
// promise and accept it makes as a record (take_writes), and the runner
// persists the batch's records before any of its replies leave: a promise is
// on disk before it is answered. A restarted acceptor is rebuilt from its
// log's records and keeps every promise. When the log outgrows the live
// state, take_writes asks for it to be replaced by the live state.
//
// Rebuilt nodes (kvpaxosd --join): a node that lost its data dir may have
// promised or accepted anything in the instances that were in progress when
// it died. Its new acceptor gets a vote floor above every instance any other
// node had seen when the rebuild began (JoinInfo), and never answers a
// Prepare or Accept below it: for those instances it behaves as a node that
// is down, which Paxos tolerates. The floor is durable. Its lost self may
// also have given a range promise that a leader still relies on, so the new
// acceptor starts with a range promise at the floor for a ballot above every
// round the others reported: such a leader is rejected and must run phase 1
// again, this time counting the new acceptor's real state.
//
// Membership (../shared/MEMBERSHIP.md 3.5, 3.6): once this node's applier
// sent its ConfigHistory (ConfigUpdate, from this node only), the acceptor
// (a) leaves Prepare, PrepareFrom and Accept of a removed member unanswered:
// a sender that no entry of the history holds while its id is below the
// highest id the history knows (ids are allocated in increasing order and
// never reused, so it was a member once and has left). An id above every
// known one is answered: a member added by a change this node has not
// applied yet. Silence is safe (it is a node that is down), and it keeps a
// removed node's campaigns from pre-empting the current leader.
// (b) votes only with the memory it was promoted with: while every
// configuration of the history that names this node a voter records an
// incarnation other than 0 and other than this node's own, it answers no
// Prepare, PrepareFrom or Accept. A learner wiped and restarted while being
// promoted has a new incarnation and a blank acceptor, which must never vote
// where its promoted self might have. (0 is the members of the first
// configuration, never gated; a node that is a voter nowhere is not asked.)
#pragma once

#include <map>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "actors/core/actor.hpp"
#include "actors/core/cluster_config.hpp"
#include "actors/paxos/proposer.hpp"
#include "messages/membership.hpp"

namespace kvpaxos {

// One durable change of the acceptor's state.
struct AcceptorRecord {
  enum Kind : std::uint8_t {
    promise = 1, accept = 2, forget = 3, vote_floor = 4,
    range_promise = 5,  // instance = the range's from
  };
  std::uint8_t kind = promise;
  InstanceId instance = 0;
  Ballot ballot;       // promise, accept
  std::string value;   // accept
  MSGPACK_DEFINE(kind, instance, ballot, value)
};

// No correct node proposes in an instance above this: the log grows by one
// instance per decision, from 0 (2^62 is 146,000 years at a million a
// second). One at 2^64-1 made join_info()'s bound wrap to 0, so that a node
// rebuilt with --join could vote again where its lost self had voted.
inline constexpr InstanceId kMaxInstance = InstanceId{1} << 62;

// Peer input the acceptor refused (left unanswered), per reason. Nothing in
// the acceptor's state changes for them. total() sums the reasons no correct
// node causes; the last two are not in it (a removed node that has not
// learned it yet, this node's own incarnation gate).
struct AcceptorRefusals {
  std::uint64_t instance_above_max = 0;    // instance (or PrepareFrom.from) above kMaxInstance
  std::uint64_t round_above_max = 0;       // ballot round above kMaxBallotRound
  std::uint64_t ballot_of_non_member = 0;  // ballot.node >= the cluster's size
  std::uint64_t ballot_of_other_node = 0;  // ballot.node is not the sending node
  std::uint64_t unsorted_decided = 0;      // PrepareFrom.decided not increasing, or below from
  std::uint64_t local_only_from_peer = 0;  // ForgetBelow, ConfigUpdate or AcceptedQuery from another node
  std::uint64_t removed_member = 0;        // Prepare, PrepareFrom or Accept of a removed member
  std::uint64_t incarnation_gate = 0;      // ... while this node may not vote (see above)
  std::uint64_t total() const {
    return instance_above_max + round_above_max + ballot_of_non_member + ballot_of_other_node + unsorted_decided +
           local_only_from_peer;
  }
};

class Acceptor final : public ActorLogic {
 public:
  // In memory only (tests, the simulator). Knowing its node and the
  // cluster's size, the acceptor refuses ballots of non-members and
  // ForgetBelow from other nodes; without (older callers) it bounds ballots
  // by the largest cluster and cannot tell its own learner from a peer's.
  // Either way it refuses a ballot that is not its sender's.
  // `incarnation`: this node's own (see the incarnation gate above).
  Acceptor() = default;
  Acceptor(NodeId self, std::size_t cluster_size, std::uint64_t incarnation = 0)
      : self_(self), n_(cluster_size), incarnation_(incarnation) {}
  // Durable: rebuilt from the records its log held (`where` names the log
  // in errors). From then on every promise and accept it makes is handed
  // out by take_writes(), and the runner persists it before any reply of
  // the batch leaves: a promise is on disk before it is answered.
  static Result<std::unique_ptr<Acceptor>> recover(const std::vector<std::string>& records,
                                                   const std::string& where,
                                                   std::optional<NodeId> self = std::nullopt,
                                                   std::size_t cluster_size = kMaxClusterSize,
                                                   std::uint64_t incarnation = 0);

  Writes take_writes() override;
  bool durable() const override { return persistent_; }
  // Accepted ballots never above the promise in force, nothing held below
  // the forget point, and no ballot accepted again with another value.
  std::string check_invariants() const override;

  void handle(const Address& from, Body body, Time now, Outbox& out) override;
  void tick(Time, Outbox&) override {}
  Duration tick_interval() const override { return std::chrono::seconds(1); }

  Promise on_prepare(const Prepare& m);
  Accepted on_accept(Accept m);
  PromiseFrom on_prepare_from(const PrepareFrom& m);
  void forget_below(InstanceId instance);
  // Never vote below `instance` again (a record for take_writes()).
  void set_vote_floor(InstanceId instance);
  // Promise `ballot` for every instance >= from (a record for take_writes()).
  // For a rebuilt acceptor, with the vote floor.
  void promise_range(InstanceId from, Ballot ballot);
  // A rebuilt acceptor (kvpaxosd --join): never vote below `vote_floor`, and
  // reject every ballot up to round `max_round` (the highest any other node
  // reported) at or above it. Records for take_writes().
  void start_rebuilt(InstanceId vote_floor, std::uint64_t max_round);
  // What a joining node needs to know from this acceptor.
  JoinInfo join_info() const;
  // The highest instance holding an accepted value, + 1 (0: none). The
  // answer to this node's AcceptedQuery.
  InstanceId accepted_below() const;

  std::size_t instances_held() const { return instances_.size(); }
  InstanceId forgotten_below() const { return forget_below_; }
  InstanceId vote_floor() const { return vote_floor_; }
  // Rebuilt, and some instance below the vote floor may still be undecided.
  bool repairing() const { return vote_floor_ > forget_below_; }
  std::uint64_t abstained() const { return abstained_; }
  // The promise in force for `instance`: its own or the range's.
  Ballot promised_in(InstanceId instance) const;
  InstanceId range_from() const { return range_from_; }
  Ballot range_ballot() const { return range_ballot_; }
  const AcceptorRefusals& refused() const { return refused_; }
  // Whether the incarnation gate holds this node's votes back now.
  bool gated() const { return gated_; }

 private:
  struct InstanceState {
    Ballot promised;
    Ballot accepted_ballot;
    std::string accepted_value;
  };

  void record(AcceptorRecord r);
  void replay(const AcceptorRecord& r);
  // Widens the range promise to cover (from, ballot); false if it already did.
  bool merge_range(InstanceId from, Ballot ballot);
  std::vector<std::string> live_records() const;
  // False (and counted) for a ballot no correct proposer at `sender` issues.
  bool acceptable(InstanceId instance, const Ballot& ballot, NodeId sender);
  bool sane(const PrepareFrom& m);
  void on_config_update(ConfigUpdate m);
  // False (and counted) while the membership rules above keep it silent.
  bool may_answer(NodeId sender);

  std::optional<NodeId> self_;
  std::size_t n_ = kMaxClusterSize;  // bounds ballots' node ids until the history is known
  std::uint64_t incarnation_ = 0;
  // From this node's last ConfigUpdate; none before the first.
  std::optional<ConfigHistory> config_;
  NodeId highest_member_ = 0;  // the highest id config_ knows
  bool gated_ = false;         // the incarnation gate, as of config_
  std::map<InstanceId, InstanceState> instances_;
  bool persistent_ = false;            // false: in memory only
  Writes pending_;                     // for take_writes()
  std::uint64_t bytes_since_rewrite_ = 0;  // in the log, as this acceptor wrote or read it
  std::uint64_t live_bytes_ = 0;       // rough size of the state, for compaction
  InstanceId forget_below_ = 0;
  InstanceId vote_floor_ = 0;
  InstanceId range_from_ = 0;  // meaningful when range_ballot_ is not none
  Ballot range_ballot_;
  std::uint64_t abstained_ = 0;  // Prepare/Accept left unanswered below the vote floor
  std::uint64_t ballot_reused_ = 0;  // Accepts at an accepted ballot with another value
  AcceptorRefusals refused_;
};

}  // namespace kvpaxos
