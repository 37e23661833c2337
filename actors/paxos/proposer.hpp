// Proposer: drives instances to a decision.
//
// Owns the ballots this node issues ({round, self}) and, per instance it was
// asked to decide (Propose from the applier or a PaxosPeer handle), one
// attempt: phase 1 (a majority of promises), then phase 2 (Accept -> majority
// of Accepted), then Decided to every learner.
//
// Multi-Paxos (the default): phase 1 is run once for a range. The proposer
// sends PrepareFrom{from, ballot} for every instance >= from (from = its
// lowest active instance); once a majority promised, it leads: any instance
// >= from goes straight to phase 2 at that ballot, with the highest value the
// promises reported for it or else its own. It leads until an acceptor
// rejects its ballot, then campaigns again with a higher one. A leader whose
// Accept goes unanswered resends it at the same ballot: a slow disk is no
// reason to start a duel. Instances below the range use basic Paxos, one
// Prepare per instance; so does a proposer built with multi_paxos = false.
//
// Membership (../shared/MEMBERSHIP.md 3.4): every instance j is decided
// inside the one configuration in force at j (the ConfigHistory the applier
// sends in ConfigUpdate). Prepare and Accept for j go to voters(j), only their
// answers count, and a majority of voters(j) decides; Decided goes to every
// member, learners too. A range campaign asks the voters of every
// configuration in the history, and the lead ballot serves instance j only
// once a majority of voters(j) promised it; a ConfigUpdate that brings voters
// the promises do not cover asks them at the same ballot, while the covered
// instances keep being led. Nothing is run at or above the history's
// known_below: the configuration there is not known yet.
//
// Handles Propose, Promise, PromiseFrom, Accepted, Learned, ForgetBelow,
// ConfigUpdate and JoinQuery (a rebuilding node asks what it has started; see
// acceptor.hpp); sends Prepare, PrepareFrom, Accept and Decided.
//
// Invariants:
//   in phase 2 the value sent is the accepted value of the highest ballot
//     reported by the phase-1 majority for that instance, or our own value
//     only when none was;
//   a ballot is used for at most one phase-1 attempt (one instance or one
//     range), and each uses a round above every round this proposer has seen
//     (own or rejected);
//   a reply counts only for the attempt (ballot) it answers.
// check_invariants() checks what the state can show of these, and more: see
// the fields.
// A failed or silent phase 1 is retried after a randomized, growing back-off,
// so duelling proposers do not livelock.
#pragma once

#include <algorithm>
#include <cstdint>
#include <limits>
#include <map>
#include <optional>
#include <random>
#include <set>

#include "actors/core/actor.hpp"
#include "actors/core/quorum.hpp"
#include "messages/membership.hpp"
#include "messages/result.hpp"

namespace kvpaxos {

// Ballot rounds never exceed this. A correct cluster starts at round 1 and
// adds one per phase-1 attempt (a rebuilt node starts above the rounds its
// peers report, which were reached the same way), so reaching 2^62 would take
// a million attempts a second for 146,000 years: a round above it can only
// come from a buggy or hostile peer. Proposers saturate at it instead of
// wrapping to 0 (below every promise: the cluster would stop for good), and
// acceptors refuse ballots above it. The headroom above 2^62 keeps
// `round + 1` from overflowing anywhere.
inline constexpr std::uint64_t kMaxBallotRound = std::uint64_t{1} << 62;
static_assert(kMaxBallotRound < std::numeric_limits<std::uint64_t>::max() / 2,
              "round + 1 must not overflow for any round up to the limit");

// Input the proposer ignored, per reason. total() sums the reasons no
// correct node causes; the last three a correct cluster can cause around a
// configuration change (an answer from a member the history no longer holds,
// a Propose racing its ConfigUpdate), and they are not in it.
struct ProposerRefusals {
  std::uint64_t round_above_max = 0;     // a promised or reported ballot above kMaxBallotRound
  std::uint64_t accepted_at_or_above_ballot = 0;  // a promise reporting a value at our ballot or above
  // Propose, Learned, ForgetBelow or ConfigUpdate from another node
  std::uint64_t local_only_from_peer = 0;
  std::uint64_t rounds_exhausted = 0;    // a new ballot was due with the round at its maximum
  std::uint64_t vote_of_non_voter = 0;   // a Promise, PromiseFrom or Accepted from no voter of it
  std::uint64_t beyond_window = 0;       // a Propose at or above the history's known_below
  std::uint64_t config_moved_back = 0;   // a ConfigUpdate lowering known_below, or empty
  std::uint64_t total() const {
    return round_above_max + accepted_at_or_above_ballot + local_only_from_peer + rounds_exhausted;
  }
};

// Each default is defined here only; validate() says which field is out of
// its range, and what the range is.
struct ProposerOptions {
  // The first wait for a round's replies, growing 3/2 per retry up to
  // max_timeout (per MiB of value). Above zero, at most max_timeout.
  Duration initial_timeout = std::chrono::milliseconds(40);
  Duration max_timeout = std::chrono::milliseconds(1000);
  bool multi_paxos = true;  // false: basic Paxos, phase 1 in every instance
  // After another proposer's ballot rejected ours, campaign for the range
  // only once this long has passed without such a rejection; until then use
  // basic Paxos, which does not pre-empt that proposer's range.
  Duration rival_quiet = std::chrono::milliseconds(500);  // zero or more
  // Planted bugs, for the simulator to catch (never set outside tests).
  // Learners' answers count like voters' (and learners are asked).
  bool bug_count_non_voters = false;
  // The lead ballot serves instance j once the voters of the configuration
  // at the range's start promised, whatever the configuration at j.
  bool bug_stale_range_quorum = false;

  Result<bool> validate() const;
};

class Proposer final : public ActorLogic {
 public:
  // `config`: until the first ConfigUpdate (ConfigHistory::fixed(n) for a
  // cluster of n that never changes, as the PaxosPeer library's).
  Proposer(NodeId self, ConfigHistory config, std::uint64_t seed, ProposerOptions options = {});

  void handle(const Address& from, Body body, Time now, Outbox& out) override;
  void tick(Time now, Outbox& out) override;
  Duration tick_interval() const override { return std::chrono::milliseconds(5); }
  std::optional<LogicReport> report() const override {
    return LogicReport{.applier = std::nullopt,
                       .proposer = ProposerReport{.pending = active_.size(),
                                                  .rejections = rejections_,
                                                  .campaigns = campaigns_}};
  }

  std::size_t active_instances() const { return active_.size(); }
  // Holds the range promise of a majority of the voters of every
  // configuration from leader_from() on: phase 2 only there.
  bool leading() const { return lead_.state == Leadership::State::leading; }
  InstanceId leader_from() const { return lead_.from; }
  std::uint64_t campaigns() const { return campaigns_; }
  // A rebuilt node starts its ballots above every round its peers reported,
  // so its first attempts are not rejected as stale.
  // Peers report the round, so it is clamped to kMaxBallotRound.
  void raise_round(std::uint64_t round) {
    max_round_seen_ = std::max(max_round_seen_, std::min(round, kMaxBallotRound));
  }
  JoinInfo join_info() const { return {instance_bound_, max_round_seen_}; }
  const ProposerRefusals& refused() const { return refused_; }
  const ConfigHistory& config() const { return config_; }

  // Empty when the state is consistent (see the fields), else what is not.
  std::string check_invariants() const override;
  // The lead state, the active attempts (first few) and the refusals.
  std::string debug_state() const override;

 private:
  // waiting: for the range's phase 1 (the campaign) to finish.
  enum class Phase { preparing, accepting, waiting };

  struct Attempt {
    std::string own_value;
    Ballot ballot;
    Phase phase = Phase::preparing;
    VoteSet promised_by;
    VoteSet accepted_by;
    Ballot highest_accepted;        // among the promises of this attempt
    std::string highest_value;
    std::string value;              // what phase 2 proposes
    bool basic = false;             // running phase 1 for this instance alone
    Time retry_at;
    Duration timeout{};
    std::size_t largest_value = 0;  // bytes of the largest value any round carried
  };

  // Phase 1 over every instance >= from, shared by the attempts there.
  struct Leadership {
    enum class State { none, campaigning, leading };
    State state = State::none;
    Ballot ballot;
    InstanceId from = 0;
    VoteSet asked;        // who got this ballot's PrepareFrom
    VoteSet promised_by;  // always within `asked`
    // Per instance, the highest-ballot accepted value the promises reported.
    std::map<InstanceId, AcceptedValue> reported;
    // Instances that got an Accept at this ballot. One ballot must never
    // carry two values in one instance, so when the applier proposes one of
    // them again (it had not learned the decision yet) that attempt runs
    // basic Paxos with a fresh ballot, which finds the value chosen there.
    std::set<InstanceId> used;
    // The highest forget point among the promises: below it some promiser
    // holds nothing, so its promise proves nothing there (basic Paxos, which
    // gets "forgotten" answers, takes those instances).
    InstanceId forgotten_below = 0;
    Time retry_at;
    Duration timeout{};
  };

  void on_propose(Propose m, Time now, Outbox& out);
  void on_promise_from(NodeId from, PromiseFrom m, Time now, Outbox& out);
  void on_config_update(ConfigUpdate m, Time now, Outbox& out);
  bool in_range(InstanceId instance) const;
  bool may_lead(InstanceId instance) const;
  // A majority of voters(instance) promised the lead ballot.
  bool covered(InstanceId instance) const;
  // covered() for every configuration of an instance in the range.
  bool covers_range() const;
  // Phase 2 for the waiting attempts in the range whose voters promised.
  void lead_covered(Time now, Outbox& out);
  void ask_for_range(const std::vector<NodeId>& voters, Outbox& out);
  bool rival_active(Time now) const;
  bool campaign_held();
  void note_rejection(const Ballot& promised, Time now);
  // The next ballot of this node, above every round seen; none once the
  // round is at kMaxBallotRound (a ballot must never be used twice).
  std::optional<Ballot> next_ballot(const Ballot& previous);
  bool sane_promise(const Ballot& ballot, const Ballot& accepted);
  // Phase 1 for the attempts that need it: the range, or one instance each
  // while a rival proposer is active.
  void renew(Time now, Outbox& out);
  void fall_back_to_basic(Time now, Outbox& out);
  void start_campaign(Time now, Outbox& out);
  void send_accept(InstanceId instance, Attempt& a, Time now, Outbox& out);
  Duration timeout_cap(Attempt& a) const;
  void drop_unheld();
  void drop(InstanceId instance);
  void on_promise(NodeId from, Promise m, Time now, Outbox& out);
  void on_accepted(NodeId from, const Accepted& m, Time now, Outbox& out);
  template <typename Reply>
  Attempt* counting_attempt(NodeId from, const Reply& m, Phase phase, Time now);
  void start_phase1(InstanceId instance, Attempt& a, Time now, Outbox& out);
  void back_off(Attempt& a, const Ballot& seen, Time now);
  Duration jittered(Duration d);
  // Whether `id` votes in `c` (only its voters do), and so whether its
  // answers count there and it is asked at all.
  bool votes_in(NodeId id, const Config& c) const;
  bool votes_anywhere(NodeId id) const;
  std::vector<NodeId> voters_of(const Config& c) const;
  std::vector<NodeId> range_voters() const;  // of every configuration in the history
  // The one count behind every quorum: whether the voters of `c` among
  // `votes` are a majority of them.
  bool quorum_of(const VoteSet& votes, const Config& c) const;
  void broadcast(Actor to, const Body& body, const std::vector<NodeId>& nodes, Outbox& out) const;
  std::string attempt_problem(InstanceId instance, const Attempt& a) const;
  std::string leadership_problem() const;

  NodeId self_;
  // Replaced by each ConfigUpdate of this node's applier; after the first,
  // known_below never decreases. Never empty.
  ConfigHistory config_;
  bool config_updated_ = false;
  ProposerOptions options_;
  std::mt19937_64 rng_;
  // Never decreases, at most kMaxBallotRound; every ballot this proposer
  // holds (an attempt's, the range's) is {round <= max_round_seen_, self_}.
  std::uint64_t max_round_seen_ = 0;
  // Never decreases. Nothing is active, reported or learned below it.
  InstanceId forget_below_ = 0;
  InstanceId instance_bound_ = 0;  // above every instance an attempt was started for
  // Below instance_bound_ and at or above forget_below_, and below
  // config_.known_below when started. promised_by and accepted_by name only
  // members of the configuration at the instance; an attempt accepting in
  // basic Paxos holds a quorum of its voters' promises.
  std::map<InstanceId, Attempt> active_;
  std::set<InstanceId> learned_;  // decided, not yet forgotten: not needed in a PromiseFrom
  InstanceId tip_ = 0;            // one past the highest instance learned
  // Leading only with covers_range(); campaigning or leading only with a
  // ballot of its own.
  Leadership lead_;
  std::uint64_t campaigns_ = 0;
  std::uint64_t rejections_ = 0;  // ballots of ours another's beat (note_rejection)
  std::optional<Time> rival_seen_;
  // Active attempts whose range an acceptor refused as too large to report;
  // no campaign starts while one of them runs (basic Paxos).
  std::set<InstanceId> too_large_;
  ProposerRefusals refused_;
};

}  // namespace kvpaxos
