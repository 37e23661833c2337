// The Paxos actors under a configuration change (../shared/MEMBERSHIP.md
// 3.4-3.6), driven directly with fake time: per-instance quorums and the
// range promise's coverage in the proposer, the window (known_below), the
// planted bugs' deviations, the learner's forget point over voters of every
// configuration, and the acceptor's silence to removed members and its
// incarnation gate.
#include <gtest/gtest.h>

#include <algorithm>
#include <optional>
#include <string>
#include <vector>

#include "actors/paxos/acceptor.hpp"
#include "actors/paxos/learner.hpp"
#include "actors/paxos/proposer.hpp"
#include "test/unit/actor_test_support.hpp"

namespace kvpaxos {
namespace {

using test_support::at;
using test_support::sent;

MemberEntry member(NodeId id, MemberRole role, std::uint64_t incarnation = 0) {
  return MemberEntry{.id = id, .name = "m" + std::to_string(id), .role = role,
                     .incarnation = incarnation};
}

// Members in ascending id order, as a Config holds them.
Config config_of(std::uint64_t epoch, std::vector<MemberEntry> members) {
  return Config{epoch, std::move(members)};
}

Config voters_and_learner(std::vector<NodeId> voters, std::optional<NodeId> learner) {
  std::vector<MemberEntry> members;
  for (NodeId v : voters) members.push_back(member(v, MemberRole::voter));
  if (learner) members.push_back(member(*learner, MemberRole::learner));
  std::sort(members.begin(), members.end(),
            [](const MemberEntry& a, const MemberEntry& b) { return a.id < b.id; });
  return config_of(0, std::move(members));
}

// Voters 0, 1, 2 and learner 3 from instance 0.
Config three_voters_one_learner() { return voters_and_learner({0, 1, 2}, 3); }
// The learner promoted: voters 0 to 3.
Config four_voters() { return voters_and_learner({0, 1, 2, 3}, std::nullopt); }

ConfigUpdate update(std::vector<ConfigAt> entries, InstanceId known_below) {
  return ConfigUpdate{ConfigHistory{std::move(entries), known_below}, /*alpha=*/10};
}

// Before the change: voters 0-2, learner 3, known below 70.
ConfigUpdate before_change() { return update({{0, three_voters_one_learner()}}, 70); }
// The promotion decided at 60 governs from 70 on; known below 100.
ConfigUpdate after_change() {
  Config promoted = four_voters();
  promoted.epoch = 1;
  return update({{0, three_voters_one_learner()}, {70, promoted}}, 100);
}

std::vector<NodeId> receivers(const auto& sends) {
  std::vector<NodeId> nodes;
  for (const auto& [to, m] : sends) nodes.push_back(to.node);
  return nodes;
}

// Node 1's proposer, under before_change().
struct ProposerRig {
  explicit ProposerRig(ProposerOptions options = {})
      : p(1, ConfigHistory::fixed(3), /*seed=*/42, options) {
    local(before_change(), 0);
  }
  void local(Body body, int ms) { p.handle({1, Actor::applier}, std::move(body), at(ms), out); }
  void reply(NodeId from, Body body, int ms) {
    p.handle({from, Actor::acceptor}, std::move(body), at(ms), out);
  }
  void promise_range(NodeId from, InstanceId range_from, Ballot b, int ms) {
    reply(from, PromiseFrom{range_from, b, true, b, {}}, ms);
  }
  // Propose 60 starts a campaign (at 0 ms) that voters 1 and 0 of the old
  // configuration promise (at 1 ms): the lead ballot.
  Ballot lead_with_old_voters() {
    local(Propose{60, "old"}, 0);
    const Ballot b = sent<PrepareFrom>(out).at(0).second.ballot;
    promise_range(1, 60, b, 1);
    promise_range(0, 60, b, 1);
    return b;
  }
  Proposer p;
  Outbox out;
};

// ------------------------------------------------------------------ proposer

TEST(MembershipProposer, AnOldMajoritysRangePromiseDoesNotLeadTheNewConfigurationsInstances) {
  ProposerRig r;
  r.local(Propose{60, "old"}, 0);
  const auto campaign = sent<PrepareFrom>(r.out);
  EXPECT_EQ(receivers(campaign), (std::vector<NodeId>{0, 1, 2})) << "the learner is not asked";
  ASSERT_FALSE(campaign.empty());
  const Ballot b = campaign[0].second.ballot;
  r.out.clear();
  r.promise_range(1, 60, b, 1);
  r.promise_range(0, 60, b, 1);
  ASSERT_TRUE(r.p.leading());
  EXPECT_EQ(receivers(sent<Accept>(r.out)), (std::vector<NodeId>{0, 1, 2}));
  r.out.clear();

  // The promotion: voter 3 has not promised, so 2 of 4 cover instances >= 70
  // no more. The same ballot's PrepareFrom goes to it (one campaign).
  r.local(after_change(), 2);
  const auto extension = sent<PrepareFrom>(r.out);
  ASSERT_EQ(receivers(extension), (std::vector<NodeId>{3}));
  EXPECT_EQ(extension[0].second.ballot, b);
  EXPECT_EQ(extension[0].second.from, 60u);
  EXPECT_FALSE(r.p.leading());
  r.out.clear();

  r.local(Propose{61, "still old"}, 3);
  EXPECT_EQ(receivers(sent<Accept>(r.out)), (std::vector<NodeId>{0, 1, 2}))
      << "instances of the old configuration are still led";
  r.out.clear();
  r.local(Propose{75, "new"}, 3);
  EXPECT_TRUE(sent<Accept>(r.out).empty()) << "2 promises of 4 voters are no majority";
  EXPECT_TRUE(sent<Prepare>(r.out).empty()) << "it waits for the new voter's promise";

  r.promise_range(3, 60, b, 4);
  const auto accepts = sent<Accept>(r.out);
  ASSERT_EQ(receivers(accepts), (std::vector<NodeId>{0, 1, 2, 3}));
  EXPECT_EQ(accepts[0].second.instance, 75u);
  EXPECT_EQ(accepts[0].second.ballot, b);
  EXPECT_TRUE(r.p.leading());
  EXPECT_EQ(r.p.campaigns(), 1u);
  EXPECT_EQ(r.p.check_invariants(), "");
}

// The process nemesis's stall (issue 14): a campaign covered the old
// configuration's instances but not yet the new one's, so instance 61 went to
// phase 2 at the lead ballot while 75 waited for the campaign. One voter's
// rejection of 61's Accept ended the lead, and 61 was decided all the same
// by the other two. Nothing was left to retry: 75 waited for a campaign no
// longer running, the proposer sent nothing for it ever again, and its
// applier (its batch in flight there) proposed nothing more.
TEST(MembershipProposer, AWaitingInstanceIsNotOrphanedWhenARejectedAcceptEndsTheLead) {
  ProposerRig r;
  const Ballot b = r.lead_with_old_voters();
  r.reply(0, Accepted{60, b, true, b, false}, 1);
  r.reply(1, Accepted{60, b, true, b, false}, 1);  // 60 decided
  r.local(after_change(), 2);  // voter 3 is asked; instances >= 70 wait for it
  ASSERT_FALSE(r.p.leading());
  r.local(Propose{61, "old too"}, 3);
  r.local(Propose{75, "new"}, 3);
  ASSERT_EQ(receivers(sent<Accept>(r.out)).size(), 6u) << "60 and 61 went to phase 2";
  r.out.clear();
  r.reply(2, Accepted{61, b, false, Ballot{b.round + 5, 2}, false}, 4);  // ends the lead
  r.reply(0, Accepted{61, b, true, b, false}, 4);
  r.reply(1, Accepted{61, b, true, b, false}, 4);  // 61 decided all the same
  ASSERT_EQ(sent<Decided>(r.out).size(), 4u);
  ASSERT_EQ(r.p.active_instances(), 1u);
  r.out.clear();
  for (int ms = 10; ms <= 10000; ms += 5) r.p.tick(at(ms), r.out);
  const auto campaigns = sent<PrepareFrom>(r.out);
  const auto prepares = sent<Prepare>(r.out);
  EXPECT_TRUE(!campaigns.empty() || !prepares.empty())
      << "instance 75 must not wait for good for a campaign that ended";
  for (const auto& [to, m] : campaigns) EXPECT_GT(m.ballot.round, b.round + 5);
  EXPECT_EQ(r.p.check_invariants(), "");
}

// Found by the simulator (kvpaxos_sim --reconfig, seed 121): a node that
// restarted replays its log; a Propose its applier sent for an instance it
// had not applied yet met a campaign, and by the time the promises came the
// applier had applied past that instance and past a change, and the trimmed
// history no longer held the instance's configuration. The first entry's
// voters stood in for it: a majority of the wrong voters could have chosen
// a second value there.
TEST(MembershipProposer, AnInstanceBelowTheHeldHistoryIsNotRunWithTheFirstEntrysVoters) {
  ProposerRig r;
  r.local(Propose{60, "applied soon"}, 0);
  const auto campaign = sent<PrepareFrom>(r.out);
  ASSERT_FALSE(campaign.empty());
  const Ballot b = campaign[0].second.ballot;
  r.out.clear();
  // Applied past 70, where voters 1, 3 and 4 govern: the entry before is gone.
  Config later = voters_and_learner({1, 3, 4}, std::nullopt);
  later.epoch = 2;
  r.local(update({{70, later}}, 130), 1);
  r.promise_range(1, 60, b, 2);
  r.promise_range(3, 60, b, 2);
  r.promise_range(4, 60, b, 2);
  r.local(Propose{65, "applied already"}, 3);
  for (const auto& [to, accept] : sent<Accept>(r.out)) {
    EXPECT_GE(accept.instance, 70u) << "instance " << accept.instance << " went to n" << to.node;
  }
  EXPECT_TRUE(sent<Prepare>(r.out).empty());
  EXPECT_EQ(r.p.refused().total(), 0u);
  EXPECT_EQ(r.p.check_invariants(), "");
}

TEST(MembershipProposer, WithTheStaleRangeQuorumBugTheOldMajorityLeadsTheNewConfiguration) {
  ProposerRig r(ProposerOptions{.bug_stale_range_quorum = true});
  r.lead_with_old_voters();
  r.local(after_change(), 2);
  r.out.clear();
  r.local(Propose{75, "new"}, 3);
  EXPECT_EQ(receivers(sent<Accept>(r.out)), (std::vector<NodeId>{0, 1, 2, 3}))
      << "the planted bug leads instance 75 on 2 promises of its 4 voters";
}

// Basic Paxos, so that each instance has its own phase 1.
TEST(MembershipProposer, ALearnersAcceptedIsNotCountedAndEveryMemberHearsTheDecision) {
  ProposerRig r(ProposerOptions{.multi_paxos = false});
  r.local(Propose{5, "v"}, 0);
  const auto prepares = sent<Prepare>(r.out);
  ASSERT_EQ(receivers(prepares), (std::vector<NodeId>{0, 1, 2}));
  const Ballot b = prepares[0].second.ballot;
  r.out.clear();
  r.reply(3, Promise{.instance = 5, .ballot = b, .ok = true, .promised = b}, 1);
  r.reply(0, Promise{.instance = 5, .ballot = b, .ok = true, .promised = b}, 1);
  EXPECT_TRUE(sent<Accept>(r.out).empty()) << "the learner's promise does not count";
  r.reply(1, Promise{.instance = 5, .ballot = b, .ok = true, .promised = b}, 1);
  ASSERT_EQ(receivers(sent<Accept>(r.out)), (std::vector<NodeId>{0, 1, 2}));
  r.out.clear();

  r.reply(3, Accepted{.instance = 5, .ballot = b, .ok = true, .promised = b}, 2);
  r.reply(0, Accepted{.instance = 5, .ballot = b, .ok = true, .promised = b}, 2);
  EXPECT_TRUE(sent<Decided>(r.out).empty()) << "one voter and a learner are no majority of 3";
  EXPECT_EQ(r.p.refused().vote_of_non_voter, 2u);
  r.reply(2, Accepted{.instance = 5, .ballot = b, .ok = true, .promised = b}, 2);
  EXPECT_EQ(receivers(sent<Decided>(r.out)), (std::vector<NodeId>{0, 1, 2, 3}))
      << "Decided goes to the learner too";
  EXPECT_EQ(r.p.refused().total(), 0u) << "a non-voter's answer is no fault of a correct peer";
}

TEST(MembershipProposer, WithTheCountNonVotersBugALearnersVoteMakesADecision) {
  ProposerRig r(ProposerOptions{.multi_paxos = false, .bug_count_non_voters = true});
  r.local(Propose{5, "v"}, 0);
  const auto prepares = sent<Prepare>(r.out);
  ASSERT_FALSE(prepares.empty());
  const Ballot b = prepares[0].second.ballot;
  r.out.clear();
  r.reply(3, Promise{.instance = 5, .ballot = b, .ok = true, .promised = b}, 1);
  r.reply(1, Promise{.instance = 5, .ballot = b, .ok = true, .promised = b}, 1);
  ASSERT_FALSE(sent<Accept>(r.out).empty()) << "the bug counts the learner's promise";
  r.out.clear();
  r.reply(3, Accepted{.instance = 5, .ballot = b, .ok = true, .promised = b}, 2);
  r.reply(1, Accepted{.instance = 5, .ballot = b, .ok = true, .promised = b}, 2);
  EXPECT_FALSE(sent<Decided>(r.out).empty())
      << "decided on one voter and the learner: the planted bug deviates";
}

TEST(MembershipProposer, AProposeBeyondKnownBelowIsDroppedAndCounted) {
  ProposerRig r(ProposerOptions{.multi_paxos = false});
  r.local(Propose{70, "too early"}, 0);
  EXPECT_TRUE(r.out.empty());
  EXPECT_EQ(r.p.active_instances(), 0u);
  EXPECT_EQ(r.p.refused().beyond_window, 1u);
  r.local(Propose{69, "in the window"}, 0);
  EXPECT_EQ(sent<Prepare>(r.out).size(), 3u);
  r.out.clear();

  r.local(after_change(), 1);
  r.local(Propose{70, "now known"}, 1);
  EXPECT_EQ(receivers(sent<Prepare>(r.out)), (std::vector<NodeId>{0, 1, 2, 3}))
      << "instance 70 belongs to the four voters";
  EXPECT_EQ(r.p.refused().beyond_window, 1u);
}

// The applier's window moves with every batch; while its configurations
// stay those of the last ConfigUpdate, the Propose carries the new end.
TEST(MembershipProposer, AProposeCarriesTheWindowsNewEndUnderTheSameConfigurations) {
  ProposerRig r(ProposerOptions{.multi_paxos = false});
  r.local(Propose{.instance = 75, .value = "carried", .known_below = 80}, 0);
  EXPECT_EQ(r.p.refused().beyond_window, 0u);
  EXPECT_EQ(r.p.config().known_below, 80u);
  EXPECT_EQ(receivers(sent<Prepare>(r.out)), (std::vector<NodeId>{0, 1, 2}))
      << "the configuration the last ConfigUpdate holds governs 75";
  r.out.clear();
  r.local(Propose{.instance = 76, .value = "older", .known_below = 71}, 0);
  EXPECT_EQ(r.p.config().known_below, 80u) << "never moved back";
  r.local(Propose{.instance = 80, .value = "past it"}, 0);
  EXPECT_EQ(r.p.refused().beyond_window, 1u);
  // From a peer it is no Propose at all.
  r.p.handle({2, Actor::applier}, Propose{.instance = 81, .value = "x", .known_below = 900}, at(0),
             r.out);
  EXPECT_EQ(r.p.config().known_below, 80u);
}

TEST(MembershipProposer, AConfigUpdateThatMovesKnownBelowBackOrComesFromAPeerIsIgnored) {
  ProposerRig r;
  r.local(after_change(), 0);
  r.local(before_change(), 0);
  EXPECT_EQ(r.p.refused().config_moved_back, 1u);
  EXPECT_EQ(r.p.config().known_below, 100u);
  r.p.handle({2, Actor::applier}, update({{0, four_voters()}}, 500), at(0), r.out);
  EXPECT_EQ(r.p.refused().local_only_from_peer, 1u);
  EXPECT_EQ(r.p.config().known_below, 100u);
}

// ------------------------------------------------------------------- learner

struct LearnerRig {
  LearnerRig(NodeId node, bool forget_with_majority)
      : self(node),
        l(node, ConfigHistory::fixed(3),
          LearnerOptions{.deliver_to_applier = false,
                         .forget_with_majority = forget_with_majority}) {}
  void local(Body body) { l.handle({self, Actor::applier}, std::move(body), at(0), out); }
  void done(NodeId node, InstanceId below) {
    if (node == self) {
      local(LocalDone{below});
    } else {
      local(PeerProgress{.node = node, .done_below = below, .decided_below = below});
    }
  }
  // Members 0, 1, 2, ... done below these points.
  void done(const std::vector<InstanceId>& by_id) {
    for (NodeId id = 0; id < by_id.size(); ++id) done(id, by_id[id]);
  }
  NodeId self;
  Learner l;
  Outbox out;
};

TEST(MembershipLearner, ALearnerFarBehindDoesNotHoldForgettingBackWithAMajority) {
  LearnerRig r(0, /*forget_with_majority=*/true);
  r.local(before_change());
  r.done({50, 50, 40, 0});  // 3, the learner, far behind
  EXPECT_EQ(r.l.forget_below(), 50u) << "two of the three voters are done below 50";
}

TEST(MembershipLearner, WithoutAMajorityEveryMemberHoldsForgettingBackLearnersToo) {
  LearnerRig r(0, /*forget_with_majority=*/false);
  r.local(before_change());
  r.done({50, 50, 40});
  EXPECT_EQ(r.l.forget_below(), 0u) << "the learner has reported nothing yet";
  r.done(3, 30);
  EXPECT_EQ(r.l.forget_below(), 30u);
}

TEST(MembershipLearner, TheForgetPointIsTheLowestOverEveryConfigurationsVoterMajority) {
  // Voter 0 replaced by 3 from instance 70: {0,1,2} below, {1,2,3} from 70.
  LearnerRig r(1, /*forget_with_majority=*/true);
  r.local(update({{0, voters_and_learner({0, 1, 2}, 3)}, {70, voters_and_learner({1, 2, 3}, 0)}},
                 100));
  r.done({90, 90, 30, 30});
  EXPECT_EQ(r.l.forget_below(), 30u) << "{0,1,2} are done below 90 by a majority, {1,2,3} below 30";
  r.done(3, 80);
  EXPECT_EQ(r.l.forget_below(), 80u);

  // The first configuration leaves the history: member 0 with it.
  r.local(update({{70, voters_and_learner({1, 2, 3}, std::nullopt)}}, 120));
  EXPECT_FALSE(r.l.tracks(0));
  r.done(0, 200);
  EXPECT_EQ(r.l.refused().non_member, 1u);
  EXPECT_EQ(r.l.refused().local_only_from_peer, 0u);
}

TEST(MembershipLearner, CatchUpAsksMembersByIdInTurnAndANewMemberToo) {
  LearnerRig r(1, /*forget_with_majority=*/false);
  // Members 1, 4 and 9: ids with gaps, as after a few changes.
  r.local(update({{0, voters_and_learner({1, 4}, 9)}}, 100));
  for (NodeId peer : {4, 9}) {
    r.local(PeerProgress{.node = peer, .done_below = 0, .decided_below = 3});
  }
  std::vector<NodeId> asked;
  for (int round = 0; round < 3; ++round) {
    r.out.clear();
    r.l.tick(at(1000 * (round + 1)), r.out);
    for (const auto& [to, request] : sent<CatchUpRequest>(r.out)) asked.push_back(to.node);
  }
  EXPECT_EQ(asked, (std::vector<NodeId>{4, 9, 4}));
}

// ------------------------------------------------------------------ acceptor

// What the acceptor answers a Prepare of `from`'s ballot; nothing if silent.
std::optional<Promise> prepare(Acceptor& a, NodeId from, std::uint64_t round, InstanceId instance = 5) {
  Outbox out;
  a.handle({from, Actor::proposer}, Prepare{instance, Ballot{round, from}}, at(0), out);
  if (out.empty()) return std::nullopt;
  return std::get<Promise>(out.at(0).body);
}

TEST(MembershipAcceptor, IsSilentToARemovedMemberButAnswersAnUnknownHigherId) {
  Acceptor a(0, 3);
  EXPECT_TRUE(prepare(a, 1, 1)) << "before the history is known, every member is answered";
  // Member 1 removed; members 0, 2, 3 (3 was added).
  Outbox out;
  a.handle({0, Actor::applier}, update({{0, voters_and_learner({0, 2, 3}, std::nullopt)}}, 100),
           at(0), out);
  EXPECT_FALSE(prepare(a, 1, 2)) << "removed";
  EXPECT_EQ(a.refused().removed_member, 1u);
  a.handle({1, Actor::proposer}, Accept{5, Ballot{3, 1}, "x"}, at(0), out);
  a.handle({1, Actor::proposer}, PrepareFrom{5, Ballot{3, 1}, {}}, at(0), out);
  EXPECT_TRUE(out.empty());
  EXPECT_EQ(a.refused().removed_member, 3u);
  EXPECT_TRUE(prepare(a, 2, 4)) << "a member";
  EXPECT_TRUE(prepare(a, 7, 5)) << "an id above every known one: added by a change not applied here";
  EXPECT_EQ(a.refused().total(), 0u);
}

TEST(MembershipAcceptor, TakesAConfigUpdateFromItsOwnNodeOnly) {
  Acceptor a(0, 3);
  Outbox out;
  a.handle({2, Actor::applier}, update({{0, voters_and_learner({0, 2}, std::nullopt)}}, 100),
           at(0), out);
  EXPECT_EQ(a.refused().local_only_from_peer, 1u);
  EXPECT_TRUE(prepare(a, 1, 1)) << "the peer's history was not taken";
}

// Node 3, a learner promoted from instance 70, restarted with incarnation 77.
struct GateRig {
  explicit GateRig(std::uint64_t promoted_incarnation) {
    Config promoted = voters_and_learner({0, 1, 2}, std::nullopt);
    promoted.members.push_back(member(3, MemberRole::voter, promoted_incarnation));
    Config before = voters_and_learner({0, 1, 2}, std::nullopt);
    before.members.push_back(member(3, MemberRole::learner, 77));
    Outbox out;
    a.handle({3, Actor::applier}, update({{0, before}, {70, promoted}}, 100), at(0), out);
  }
  Acceptor a{3, 4, /*incarnation=*/77};
};

TEST(MembershipAcceptor, APromotedLearnerWithAnotherIncarnationNeverVotes) {
  GateRig r(/*promoted_incarnation=*/55);  // promoted as 55: this is a wiped, restarted node
  EXPECT_TRUE(r.a.gated());
  EXPECT_FALSE(prepare(r.a, 0, 1, 75));
  Outbox out;
  r.a.handle({0, Actor::proposer}, Accept{75, Ballot{2, 0}, "x"}, at(0), out);
  r.a.handle({0, Actor::proposer}, PrepareFrom{70, Ballot{3, 0}, {}}, at(0), out);
  EXPECT_TRUE(out.empty());
  EXPECT_EQ(r.a.refused().incarnation_gate, 3u);
}

TEST(MembershipAcceptor, APromotedLearnerWithItsOwnIncarnationVotes) {
  GateRig r(/*promoted_incarnation=*/77);
  EXPECT_FALSE(r.a.gated());
  EXPECT_TRUE(prepare(r.a, 0, 1, 75));
}

TEST(MembershipAcceptor, AFirstConfigurationMemberIsNeverGated) {
  Acceptor a(0, 3, /*incarnation=*/12345);
  Outbox out;
  a.handle({0, Actor::applier}, update({{0, voters_and_learner({0, 1, 2}, std::nullopt)}}, 100),
           at(0), out);
  EXPECT_FALSE(a.gated()) << "incarnation 0 in its entry: a member of the first configuration";
  EXPECT_TRUE(prepare(a, 1, 1));
}

}  // namespace
}  // namespace kvpaxos
