// The idle probe: an applier with nothing to apply asks its acceptor how far
// it holds accepted values, and fills the instances above the decided log
// with no-ops, which learn what was chosen there (kvpaxos_sim seed 336: the
// only node that learned instance 194 was removed, and the others stayed
// at 194 while idle).
#include <gtest/gtest.h>

#include "actors/kv/applier.hpp"
#include "actors/paxos/acceptor.hpp"
#include "messages/codec.hpp"
#include "test/unit/actor_test_support.hpp"

namespace kvpaxos {
namespace {

using test_support::at;
using test_support::sent;

TEST(AcceptedProbe, TheAcceptorAnswersWithItsHighestAcceptedInstance) {
  Acceptor a(0, 3);
  Outbox out;
  a.handle({0, Actor::applier}, AcceptedQuery{}, at(0), out);
  ASSERT_EQ(sent<AcceptedBound>(out).size(), 1u);
  EXPECT_EQ(sent<AcceptedBound>(out)[0].second.accepted_below, 0u) << "nothing accepted yet";

  ASSERT_TRUE(a.on_prepare({4, Ballot{1, 1}}).ok);
  ASSERT_TRUE(a.on_accept({4, Ballot{1, 1}, "v"}).ok);
  ASSERT_TRUE(a.on_prepare({9, Ballot{2, 1}}).ok);  // promised, never accepted
  out.clear();
  a.handle({0, Actor::applier}, AcceptedQuery{}, at(0), out);
  const auto answers = sent<AcceptedBound>(out);
  ASSERT_EQ(answers.size(), 1u);
  EXPECT_EQ(answers[0].first, (Address{0, Actor::applier})) << "the answer goes to the asker";
  EXPECT_EQ(answers[0].second.accepted_below, 5u) << "a promise alone is no accepted value";
}

TEST(AcceptedProbe, TheAcceptorDoesNotAnswerAPeersQuery) {
  Acceptor a(0, 3);
  ASSERT_TRUE(a.on_prepare({4, Ballot{1, 1}}).ok);
  ASSERT_TRUE(a.on_accept({4, Ballot{1, 1}, "v"}).ok);
  Outbox out;
  a.handle({1, Actor::applier}, AcceptedQuery{}, at(0), out);
  EXPECT_TRUE(out.empty());
  EXPECT_EQ(a.refused().local_only_from_peer, 1u);
}

ApplierOptions three_nodes() {
  return ApplierOptions{.name = "n1", .config = ConfigState::fixed(3, 8192)};
}

std::size_t queries(const Outbox& out) { return sent<AcceptedQuery>(out).size(); }

TEST(AcceptedProbe, AnIdleApplierAsksOncePerInterval) {
  Applier a(0, three_nodes());
  Outbox out;
  a.tick(at(500), out);
  EXPECT_EQ(queries(out), 0u) << "not idle for a second yet";
  a.tick(at(1000), out);
  ASSERT_EQ(queries(out), 1u);
  EXPECT_EQ(sent<AcceptedQuery>(out)[0].first, (Address{0, Actor::acceptor}));
  a.tick(at(1500), out);
  EXPECT_EQ(queries(out), 1u) << "asked again inside the interval";
  a.tick(at(2000), out);
  EXPECT_EQ(queries(out), 2u);
}

TEST(AcceptedProbe, AnApplierWithHolesToFillDoesNotAsk) {
  Applier a(0, three_nodes());
  Outbox out;
  a.handle({0, Actor::learner}, LearnerProgress{0, 3}, at(0), out);
  a.tick(at(5000), out);
  EXPECT_EQ(queries(out), 0u) << "the known holes come first";
  EXPECT_FALSE(sent<Propose>(out).empty());
}

TEST(AcceptedProbe, ValuesAcceptedAboveTheDecidedLogAreFilledWithNoOps) {
  Applier a(0, three_nodes());
  Outbox out;
  a.tick(at(1000), out);
  ASSERT_EQ(queries(out), 1u);
  out.clear();
  a.handle({0, Actor::acceptor}, AcceptedBound{3}, at(1001), out);
  EXPECT_EQ(a.accepted_holes_found(), 1u);
  InstanceId applied = 0;
  for (int ms = 1200; applied < 3 && ms < 10'000; ms += 200) {
    out.clear();
    a.tick(at(ms), out);
    for (const auto& [to, p] : sent<Propose>(out)) {
      ASSERT_EQ(p.instance, applied) << "no-ops from the first undecided instance on";
      a.handle({0, Actor::learner}, Apply{applied++, p.value}, at(ms), out);
    }
  }
  EXPECT_EQ(applied, 3u) << "instances 0..2 were proposed and applied";
  EXPECT_EQ(a.applied_below(), 3u);
  out.clear();
  a.tick(at(20'000), out);
  EXPECT_TRUE(sent<Propose>(out).empty()) << "nothing left to fill";
}

TEST(AcceptedProbe, BoundsAtTheLogOrFarBeyondItOpenNoHoles) {
  Applier a(0, three_nodes());
  Outbox out;
  a.handle({0, Actor::acceptor}, AcceptedBound{0}, at(0), out);
  a.handle({0, Actor::acceptor}, AcceptedBound{kMaxAcceptedAhead + 1}, at(0), out);
  // Another node's bound says nothing about this node's acceptor.
  a.handle({1, Actor::acceptor}, AcceptedBound{5}, at(0), out);
  EXPECT_EQ(a.accepted_holes_found(), 0u);
  a.tick(at(5000), out);
  EXPECT_TRUE(sent<Propose>(out).empty());
}

}  // namespace
}  // namespace kvpaxos
