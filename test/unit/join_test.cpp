// What a node asks the others before it starts (actors/paxos/join.hpp): the
// --join barrier's vote floor and round, whom it waits for, when it refuses,
// and the --first-start survey. The daemon (actors/runtime/node.cpp) and the
// simulator's rebuild drive these classes; here they are driven directly.
#include <gtest/gtest.h>

#include <string>
#include <vector>

#include "actors/paxos/join.hpp"

namespace kvpaxos {
namespace {

using std::chrono::milliseconds;
using std::chrono::seconds;

const Time kStart = Time{} + seconds(100);

std::vector<Member> cluster(std::size_t n) {
  std::vector<Member> members;
  for (std::size_t i = 0; i < n; ++i) {
    const std::string number = std::to_string(i + 1);
    // Appended, not "a" + number + "b": with the precompiled header, gcc 12
    // at -O2 warns that operator+'s memcpy overruns the temporary (a false
    // positive, -Warray-bounds).
    std::string endpoint = "tcp://10.0.0.";
    endpoint.append(number).append(":7101");
    members.push_back({"n" + number, std::move(endpoint)});
  }
  return members;
}

// Node 0 of an n-node cluster rebuilding itself, with a 60 s timeout.
struct JoinRig {
  explicit JoinRig(std::size_t n) : survey(0, bootstrap_history(cluster(n)), seconds(60), kStart) {}
  void acceptor_says(NodeId from, InstanceId bound, std::uint64_t round, bool repairing = false) {
    survey.handle({from, Actor::acceptor}, JoinInfo{bound, round, repairing});
  }
  void proposer_says(NodeId from, InstanceId bound, std::uint64_t round) {
    survey.handle({from, Actor::proposer}, JoinInfo{bound, round, false});
  }
  Outbox tick(Time now) {
    Outbox out;
    survey.tick(now, out);
    return out;
  }
  JoinSurvey survey;
};

std::vector<Address> destinations(const Outbox& out) {
  std::vector<Address> to;
  for (const Outbound& o : out) to.push_back(o.to);
  return to;
}

// ------------------------------------------------------------------ JoinSurvey

TEST(JoinSurvey, FloorAndRoundAreTheMaximaOverEveryAnswer) {
  JoinRig r(4);
  r.acceptor_says(1, 40, 3);
  r.proposer_says(1, 41, 2);
  r.acceptor_says(2, 17, 9);
  r.proposer_says(2, 0, 0);
  r.acceptor_says(3, 12, 4);
  ASSERT_FALSE(r.survey.done());
  r.proposer_says(3, 55, 1);
  ASSERT_TRUE(r.survey.done());
  const Result<JoinBarrier> barrier = r.survey.result();
  ASSERT_TRUE(barrier.ok()) << barrier.error();
  EXPECT_EQ(barrier->vote_floor, 55u);  // n4's proposer had started instance 54
  EXPECT_EQ(barrier->max_round, 9u);    // n3's acceptor had seen round 9
}

TEST(JoinSurvey, WaitsForEveryOtherNodesAcceptorAndProposer) {
  JoinRig r(3);
  EXPECT_FALSE(r.survey.done());
  EXPECT_EQ(r.survey.missing(), "n2 (tcp://10.0.0.2:7101), n3 (tcp://10.0.0.3:7101)");
  r.acceptor_says(1, 5, 1);
  r.proposer_says(1, 5, 1);
  r.acceptor_says(2, 5, 1);
  EXPECT_FALSE(r.survey.done()) << "n3's proposer has not answered";
  EXPECT_EQ(r.survey.missing(), "n3 (tcp://10.0.0.3:7101)");
  r.proposer_says(2, 5, 1);
  EXPECT_TRUE(r.survey.done());
  EXPECT_EQ(r.survey.missing(), "");
  EXPECT_TRUE(r.survey.result().ok());
}

TEST(JoinSurvey, AsksEverySilentActorAgainEvery200ms) {
  JoinRig r(3);
  const Outbox first = r.tick(kStart);
  EXPECT_EQ(destinations(first),
            (std::vector<Address>{{1, Actor::acceptor}, {1, Actor::proposer},
                                  {2, Actor::acceptor}, {2, Actor::proposer}}));
  for (const Outbound& o : first) EXPECT_TRUE(std::holds_alternative<JoinQuery>(o.body));
  EXPECT_TRUE(r.tick(kStart + milliseconds(199)).empty());
  r.acceptor_says(1, 5, 1);
  r.proposer_says(2, 5, 1);
  EXPECT_EQ(destinations(r.tick(kStart + milliseconds(200))),
            (std::vector<Address>{{1, Actor::proposer}, {2, Actor::acceptor}}));
  r.proposer_says(1, 5, 1);
  r.acceptor_says(2, 5, 1);
  EXPECT_TRUE(r.tick(kStart + milliseconds(400)).empty()) << "everyone answered";
}

TEST(JoinSurvey, TimesOutNamingWhoDidNotAnswer) {
  JoinRig r(3);
  r.acceptor_says(1, 5, 1);
  r.proposer_says(1, 5, 1);
  r.acceptor_says(2, 5, 1);
  r.tick(kStart + seconds(60));
  EXPECT_FALSE(r.survey.done()) << "the timeout is over only once it has passed";
  r.tick(kStart + seconds(60) + milliseconds(1));
  ASSERT_TRUE(r.survey.done());
  const Result<JoinBarrier> barrier = r.survey.result();
  ASSERT_FALSE(barrier.ok());
  EXPECT_EQ(barrier.error(),
            "no answer from n3 (tcp://10.0.0.3:7101) after 60s; every other node must be up to "
            "rebuild this one (one that is down may be the only other witness of what the lost "
            "data dir promised)");
}

TEST(JoinSurvey, RefusesWhileAnotherNodeIsRepairing) {
  JoinRig r(3);
  r.acceptor_says(1, 5, 1);
  r.acceptor_says(2, 900, 7, /*repairing=*/true);
  ASSERT_TRUE(r.survey.done()) << "no point waiting for the others";
  const Result<JoinBarrier> barrier = r.survey.result();
  ASSERT_FALSE(barrier.ok());
  EXPECT_EQ(barrier.error(),
            "n3 was itself rebuilt and the log below its vote floor is not yet forgotten by a "
            "majority; rebuilding a second node now could leave an instance that no majority may "
            "vote in. Retry once `kvctl status` shows its MIN at or above 900 (after the next "
            "snapshots; writes make them come sooner)");
}

TEST(JoinSurvey, RefusesWhenAnotherNodeIsBeingRebuiltToo) {
  JoinRig r(3);
  r.survey.handle({1, Actor::peer_link}, JoinQuery{});
  ASSERT_TRUE(r.survey.done());
  const Result<JoinBarrier> barrier = r.survey.result();
  ASSERT_FALSE(barrier.ok());
  EXPECT_EQ(barrier.error(),
            "n2 is being rebuilt at the same time; rebuild one node at a time (stop one of the "
            "two --join runs, and start it again once the other has caught up)");
}

// The query is resent until answered, so an actor may answer twice: it counts
// once, and the later (never lower) bound still raises the floor.
TEST(JoinSurvey, ARepeatedAnswerCountsOnce) {
  JoinRig r(3);
  r.acceptor_says(1, 5, 1);
  r.acceptor_says(1, 8, 2);
  r.acceptor_says(2, 5, 1);
  r.proposer_says(2, 5, 1);
  EXPECT_FALSE(r.survey.done()) << "n2's proposer has not answered";
  EXPECT_EQ(r.survey.missing(), "n2 (tcp://10.0.0.2:7101)");
  r.proposer_says(1, 5, 1);
  ASSERT_TRUE(r.survey.done());
  EXPECT_EQ(r.survey.result()->vote_floor, 8u);
  EXPECT_EQ(r.survey.result()->max_round, 2u);
}

TEST(JoinSurvey, IgnoresAnswersFromThisNodeNoMemberOrOtherActors) {
  JoinRig r(3);
  r.survey.handle({0, Actor::acceptor}, JoinInfo{1000, 50, true});    // this node
  r.survey.handle({3, Actor::acceptor}, JoinInfo{1000, 50, true});    // no such node
  r.survey.handle({0, Actor::peer_link}, JoinQuery{});                // this node
  r.survey.handle({1, Actor::learner}, JoinInfo{1000, 50, true});     // not asked
  r.survey.handle({1, Actor::acceptor}, Heartbeat{});                 // Paxos traffic
  EXPECT_FALSE(r.survey.done());
  EXPECT_EQ(r.survey.missing(), "n2 (tcp://10.0.0.2:7101), n3 (tcp://10.0.0.3:7101)");
  for (NodeId peer : {1, 2}) {
    r.acceptor_says(peer, 3, 1);
    r.proposer_says(peer, 3, 1);
  }
  ASSERT_TRUE(r.survey.done());
  EXPECT_EQ(r.survey.result()->vote_floor, 3u);
  EXPECT_EQ(r.survey.result()->max_round, 1u);
}

// Member ids are permanent, so after changes they have gaps; learners are
// asked too (one may be the only other witness of what it accepted).
TEST(JoinSurvey, AsksEveryOtherMemberOfTheHistoryByItsId) {
  ConfigHistory history = bootstrap_history(cluster(3));
  Config& c = history.entries.front().config;
  c.members[1].id = 5;  // ids 0, 5, 2 sorted: 0, 2, 5
  std::swap(c.members[1], c.members[2]);
  c.members.push_back(MemberEntry{.id = 7, .name = "l7", .peer_endpoint = "tcp://10.0.0.7:7101",
                                  .role = MemberRole::learner});
  JoinSurvey survey(0, history, seconds(60), kStart);
  Outbox out;
  survey.tick(kStart, out);
  std::vector<NodeId> asked;
  for (const Address& to : destinations(out)) asked.push_back(to.node);
  EXPECT_EQ(asked, (std::vector<NodeId>{2, 2, 5, 5, 7, 7}));
  for (NodeId peer : {2, 5, 7}) {
    survey.handle({peer, Actor::acceptor}, JoinInfo{peer, 1, false});
    survey.handle({peer, Actor::proposer}, JoinInfo{0, 1, false});
  }
  ASSERT_TRUE(survey.done());
  EXPECT_EQ(survey.result()->vote_floor, 7u);
}

TEST(JoinSurvey, NothingChangesOnceDone) {
  JoinRig r(3);
  for (NodeId peer : {1, 2}) {
    r.acceptor_says(peer, 3, 1);
    r.proposer_says(peer, 3, 1);
  }
  ASSERT_TRUE(r.survey.done());
  r.acceptor_says(1, 99, 99, /*repairing=*/true);
  r.survey.handle({2, Actor::peer_link}, JoinQuery{});
  EXPECT_TRUE(r.tick(kStart + seconds(3600)).empty());
  ASSERT_TRUE(r.survey.result().ok());
  EXPECT_EQ(r.survey.result()->vote_floor, 3u);
}

TEST(JoinSurvey, ProgressLineOnceASecondNamesWhoIsMissing) {
  JoinRig r(3);
  EXPECT_FALSE(r.survey.progress_line(kStart + milliseconds(999)));
  r.acceptor_says(1, 3, 1);
  r.proposer_says(1, 3, 1);
  EXPECT_EQ(r.survey.progress_line(kStart + seconds(1)), "waiting for n3 (tcp://10.0.0.3:7101)");
  EXPECT_FALSE(r.survey.progress_line(kStart + milliseconds(1999)));
  EXPECT_TRUE(r.survey.progress_line(kStart + seconds(2)));
}

// ------------------------------------------------------------ FirstStartSurvey

FrameHeader from_peer(NodeId peer, InstanceId decided_below = 0) {
  return FrameHeader{{0, Actor::peer_link}, {peer, Actor::peer_link}, 0, decided_below, 0};
}

TEST(FirstStartSurvey, HeartbeatsEveryPeerEvery100ms) {
  FirstStartSurvey s(1, cluster(3), seconds(60), kStart);
  Outbox out;
  s.tick(kStart, out);
  EXPECT_EQ(destinations(out),
            (std::vector<Address>{{0, Actor::peer_link}, {2, Actor::peer_link}}));
  for (const Outbound& o : out) EXPECT_TRUE(std::holds_alternative<Heartbeat>(o.body));
  out.clear();
  s.tick(kStart + milliseconds(99), out);
  EXPECT_TRUE(out.empty());
  s.tick(kStart + milliseconds(100), out);
  EXPECT_EQ(out.size(), 2u);
}

TEST(FirstStartSurvey, EndsOnceAMajorityWithThisNodeWasHeard) {
  FirstStartSurvey s(0, cluster(5), seconds(60), kStart);
  EXPECT_EQ(s.result().needed, 2u);
  s.handle(from_peer(3));
  s.handle(from_peer(3));
  s.handle(from_peer(0));  // itself
  s.handle(from_peer(9));  // no such node
  EXPECT_FALSE(s.done()) << "one peer heard, however often";
  s.handle(from_peer(1));
  ASSERT_TRUE(s.done());
  EXPECT_EQ(s.result().heard, 2u);
  EXPECT_EQ(s.result().furthest_decided, 0u);
}

TEST(FirstStartSurvey, EndsWhenAPeerHasALog) {
  FirstStartSurvey s(0, cluster(5), seconds(60), kStart);
  s.handle(FrameHeader{{0, Actor::peer_link}, {4, Actor::learner}, 0, 0, 12});  // forget_below
  ASSERT_TRUE(s.done());
  EXPECT_EQ(s.result().furthest_decided, 12u);
  EXPECT_EQ(s.result().furthest_name, "n5");
  EXPECT_EQ(s.result().heard, 1u);
}

TEST(FirstStartSurvey, EndsOnceTheWaitIsOverWithWhatWasHeard) {
  FirstStartSurvey s(0, cluster(5), seconds(10), kStart);
  s.handle(from_peer(2));
  Outbox out;
  s.tick(kStart + milliseconds(9999), out);
  EXPECT_FALSE(s.done());
  out.clear();
  s.tick(kStart + seconds(10), out);
  ASSERT_TRUE(s.done());
  EXPECT_TRUE(out.empty());
  EXPECT_EQ(s.result().heard, 1u);
  EXPECT_EQ(s.result().needed, 2u);
}

TEST(FirstStartSurvey, ProgressLineCountsAndNamesWhoIsSilent) {
  FirstStartSurvey s(0, cluster(5), seconds(60), kStart);
  s.handle(from_peer(2));
  EXPECT_FALSE(s.progress_line(kStart + milliseconds(500)));
  EXPECT_EQ(s.progress_line(kStart + seconds(1)),
            "heard 1 of the 4 other nodes (2 needed); waiting for n2, n4, n5");
}

}  // namespace
}  // namespace kvpaxos
