// kvctl's checks before a member change (cmd/member_health.hpp): a
// configuration and what kvctl found asking the members in, a verdict with
// its reason out.
#include "cmd/member_health.hpp"

#include <gtest/gtest.h>

namespace kvpaxos {
namespace {

// Voters n1..n3 (ids 0..2) and the learner n4 (id 3), all with client addresses.
Config three_and_a_learner() {
  Config c{.epoch = 4};
  for (NodeId i = 0; i < 4; ++i) {
    c.members.push_back(MemberEntry{
        .id = i, .name = "n" + std::to_string(i + 1),
        .peer_endpoint = "tcp://127.0.0.1:710" + std::to_string(i + 1),
        .client_endpoint = "tcp://127.0.0.1:720" + std::to_string(i + 1),
        .role = i == 3 ? MemberRole::learner : MemberRole::voter});
  }
  return c;
}

MemberHealth up(InstanceId applied_below) {
  return MemberHealth{.reachable = true, .applied_below = applied_below};
}

MemberChange change(MemberChangeKind kind, NodeId target, NodeId other = 0) {
  return MemberChange{.kind = kind, .target = target, .other = other};
}

TEST(MemberHealth, LagIsTheFurthestReachableMinusOwnAndUnknownWhenDown) {
  const Config c = three_and_a_learner();
  const ClusterHealth health{{0, up(100)}, {1, up(40)}, {3, up(130)}};
  EXPECT_EQ(furthest_applied(c, health), 130u);
  EXPECT_EQ(member_lag(c, health, 0), std::optional<InstanceId>(30));
  EXPECT_EQ(member_lag(c, health, 3), std::optional<InstanceId>(0));
  EXPECT_EQ(member_lag(c, health, 2), std::nullopt);
}

TEST(MemberHealth, RemovingAMemberThatIsDownIsAllowedWhenTheRestKeepALiveMajority) {
  const Config c = three_and_a_learner();
  const ClusterHealth health{{0, up(9)}, {1, up(9)}};
  EXPECT_EQ(live_majority_problem(config_after(c, change(MemberChangeKind::remove, 2)), health), "");
  EXPECT_EQ(live_majority_problem(config_after(c, change(MemberChangeKind::remove, 3)), health), "")
      << "a learner: two of three voters answer";
}

TEST(MemberHealth, RemovingALiveVoterThatLeavesNoLiveMajorityIsRefusedNamingWhoIsDown) {
  const Config c = three_and_a_learner();
  const ClusterHealth health{{0, up(9)}, {1, up(9)}};
  EXPECT_EQ(live_majority_problem(config_after(c, change(MemberChangeKind::remove, 0)), health),
            "of the 2 voters it would leave, 1 answers kvctl, fewer than a majority (2); not "
            "answering: n3 at 127.0.0.1:7203; bring them back first");
}

TEST(MemberHealth, AReplaceCountsTheLearnerComingInOnlyIfItAnswers) {
  const Config c = three_and_a_learner();
  const MemberChange n4_for_n3 = change(MemberChangeKind::replace, 2, 3);
  const Config after = config_after(c, n4_for_n3);
  EXPECT_EQ(after.voters(), (std::vector<NodeId>{0, 1, 3}));
  EXPECT_EQ(live_majority_problem(after, {{0, up(9)}, {3, up(9)}}), "");
  const std::string down = live_majority_problem(after, {{0, up(9)}});
  EXPECT_NE(down.find("not answering: n2 at 127.0.0.1:7202, n4 at 127.0.0.1:7204"),
            std::string::npos)
      << down;
}

TEST(MemberHealth, AVoterWithoutAnyKnownAddressIsNamedAsSuch) {
  Config c = three_and_a_learner();
  c.members[1].client_endpoint.clear();
  const std::string problem = live_majority_problem(
      config_after(c, change(MemberChangeKind::remove, 0)), {});
  EXPECT_NE(problem.find("n2 (no client address in the configuration, and no --endpoints address "
                         "answered as it), n3 at 127.0.0.1:7203"),
            std::string::npos)
      << problem;
}

TEST(MemberHealth, ALearnerFarBehindIsNotReadyAndTheNumbersSaySoForWaiting) {
  const Config c = three_and_a_learner();
  const PromotionCheck behind = promotion_check(c, {{0, up(90000)}, {3, up(1200)}}, 3);
  EXPECT_EQ(behind.readiness, Readiness::behind);
  EXPECT_EQ(promotion_progress(c.members[3], behind), "n4 has applied 1200 of 90000 instances");
  EXPECT_EQ(behind.problem, "n4 has applied 1200 of 90000 instances; retry once it has caught up");
  const PromotionCheck close =
      promotion_check(c, {{0, up(90000)}, {3, up(90000 - kMaxPromoteLag)}}, 3);
  EXPECT_EQ(close.readiness, Readiness::ready);
}

TEST(MemberHealth, ALearnerThatDoesNotAnswerIsWorthWaitingForOneWithNoAddressIsNot) {
  Config c = three_and_a_learner();
  ClusterHealth health{{0, up(5)}};
  health[3].error = "no reply from 127.0.0.1:7204 within 1s";
  const PromotionCheck silent = promotion_check(c, health, 3);
  EXPECT_EQ(silent.readiness, Readiness::not_answering);
  EXPECT_EQ(silent.problem,
            "n4 does not answer at 127.0.0.1:7204 (no reply from 127.0.0.1:7204 within 1s); "
            "start it with the kvpaxosd line `member add` printed");
  c.members[3].client_endpoint.clear();
  EXPECT_EQ(promotion_check(c, health, 3).readiness, Readiness::no_address);
  // ... unless it answered at one of kvctl's --endpoints.
  health[3] = MemberHealth{.reachable = true, .applied_below = 5,
                           .client_endpoint = "tcp://127.0.0.1:7299"};
  EXPECT_EQ(promotion_check(c, health, 3).readiness, Readiness::ready);
}

TEST(MemberHealth, AStatusLineNamesTheMemberIdAndItsRoleFromTheConfiguration) {
  const Config c = three_and_a_learner();
  const StatusReply learner{.name = "n4", .node = 3};
  const StatusIdentity n4 = status_identity(&c, "127.0.0.1:7204", &learner);
  EXPECT_EQ(n4.id, "3");
  EXPECT_EQ(n4.role, "learner");
  const StatusReply gone{.name = "n9", .node = 8};
  EXPECT_EQ(status_identity(&c, "127.0.0.1:7209", &gone).role, "removed");
  EXPECT_EQ(status_identity(nullptr, "127.0.0.1:7204", &learner).role, "unknown")
      << "the configuration could not be read";
  EXPECT_EQ(status_identity(nullptr, "127.0.0.1:7204", &learner).id, "3");
}

TEST(MemberHealth, AStatusLineOfANodeThatDoesNotAnswerIsNamedByItsClientAddress) {
  const Config c = three_and_a_learner();
  const StatusIdentity n2 = status_identity(&c, "tcp://127.0.0.1:7202", nullptr);
  EXPECT_EQ(n2.id, "1");
  EXPECT_EQ(n2.role, "voter");
  const StatusIdentity stranger = status_identity(&c, "127.0.0.1:7299", nullptr);
  EXPECT_EQ(stranger.id, "-");
  EXPECT_EQ(stranger.role, "unknown");
}

}  // namespace
}  // namespace kvpaxos
