// A graceful stop in the applier (StepDown, actors/kv/applier.hpp): the
// stopping node proposes nothing more and sends its clients elsewhere; the
// others stop following it at once and send what they forwarded to it to
// the next voter; a batch it authors after restarting makes it a leader again.
#include <gtest/gtest.h>

#include "actor_test_support.hpp"
#include "actors/kv/applier.hpp"
#include "messages/codec.hpp"

namespace kvpaxos {
namespace {

using test_support::at;
using test_support::batch_of;
using test_support::sent;
const auto& replies = test_support::client_replies;

constexpr std::uint64_t kAlpha = 8;

ApplierOptions options() {
  return ApplierOptions{.name = "n", .config = ConfigState::fixed(3, kAlpha)};
}

ClientRequest put(ClientId client, std::uint64_t seq, const std::string& key) {
  return ClientRequest{client, seq, 0, OpKind::put, key, "v"};
}



const Address kControl0{0, Actor::control};

TEST(ApplierStepDown, TheStoppingNodeTellsEveryOtherMemberAndProposesNothingMore) {
  Applier a(0, options());
  Outbox out;
  a.handle(kControl0, StepDown{}, at(0), out);
  EXPECT_TRUE(a.stepping_down());
  const auto told = sent<StepDown>(out);
  ASSERT_EQ(told.size(), 2u);
  EXPECT_EQ(told[0].first, (Address{1, Actor::applier}));
  EXPECT_EQ(told[1].first, (Address{2, Actor::applier}));
  EXPECT_EQ(told[0].second.below, kAlpha) << "nothing at or above the window's end";
  out.clear();
  a.handle({0, Actor::front_door}, FromClient{"r", put(7, 1, "k")}, at(1), out);
  EXPECT_TRUE(sent<Propose>(out).empty());
  EXPECT_TRUE(sent<ForwardOps>(out).empty());
  const auto answered = replies(out);
  ASSERT_EQ(answered.size(), 1u);
  EXPECT_EQ(answered[0].code, ReplyCode::shutting_down);
  EXPECT_EQ(answered[0].seq, 1u);
  out.clear();
  a.tick(at(5000), out);  // no hole filling, no retries of its own
  EXPECT_TRUE(sent<Propose>(out).empty());
}

TEST(ApplierStepDown, OpsInFlightHereAreAnsweredWhenDecidedTheRestAreSentElsewhere) {
  ApplierOptions o = options();
  o.max_in_flight = 1;
  Applier a(0, o);
  Outbox out;
  a.handle({0, Actor::front_door}, FromClient{"r1", put(7, 1, "a")}, at(0), out);
  ASSERT_EQ(sent<Propose>(out).size(), 1u);
  // A second batch waits behind the one in flight (not a full batch).
  a.handle({0, Actor::front_door}, FromClient{"r2", put(8, 1, "b")}, at(0), out);
  ASSERT_EQ(sent<Propose>(out).size(), 1u);
  out.clear();
  a.handle(kControl0, StepDown{}, at(1), out);
  EXPECT_EQ(a.proposed_waiting(), 1u);
  auto answered = replies(out);
  ASSERT_EQ(answered.size(), 1u) << "the queued op's client is sent elsewhere";
  EXPECT_EQ(answered[0].client_id, 8u);
  EXPECT_EQ(answered[0].code, ReplyCode::shutting_down);
  out.clear();
  a.handle({0, Actor::learner}, Apply{0, batch_of(0, {put(7, 1, "a")})}, at(2), out);
  answered = replies(out);
  ASSERT_EQ(answered.size(), 1u);
  EXPECT_EQ(answered[0].client_id, 7u);
  EXPECT_EQ(answered[0].code, ReplyCode::ok);
  EXPECT_EQ(a.proposed_waiting(), 0u);
  EXPECT_TRUE(sent<Propose>(out).empty()) << "nothing new after the last answer";
}

TEST(ApplierStepDown, TheOthersFollowTheNextVoterAtOnceAndRedirectTheirForwards) {
  Applier a(2, options());
  Outbox out;
  a.handle({2, Actor::learner}, Apply{0, batch_of(0, {put(100, 1, "x")})}, at(0), out);
  ASSERT_EQ(a.leader(), 0u);
  a.handle({2, Actor::front_door}, FromClient{"r", put(1, 1, "k")}, at(0), out);
  a.flush(at(0), out);
  ASSERT_EQ(sent<ForwardOps>(out).size(), 1u);
  EXPECT_EQ(sent<ForwardOps>(out)[0].first, (Address{0, Actor::applier}));
  out.clear();
  // Well within the forward timeout: no waiting it out.
  a.handle({0, Actor::applier}, StepDown{kAlpha}, at(10), out);
  EXPECT_EQ(a.leader(), 1u);
  a.flush(at(10), out);
  const auto forwarded = sent<ForwardOps>(out);
  ASSERT_EQ(forwarded.size(), 1u) << "the op forwarded to the stopping leader was not redirected";
  EXPECT_EQ(forwarded[0].first, (Address{1, Actor::applier}));
  // Its batches still in flight are applied, but do not make it the leader.
  a.handle({2, Actor::learner}, Apply{1, batch_of(0, {put(101, 1, "y")})}, at(20), out);
  EXPECT_EQ(a.leader(), 1u);
}

TEST(ApplierStepDown, TheNextVoterProposesItsQueueAtOnce) {
  Applier a(1, options());
  Outbox out;
  a.handle({1, Actor::learner}, Apply{0, batch_of(0, {put(100, 1, "x")})}, at(0), out);
  a.handle({1, Actor::front_door}, FromClient{"r", put(1, 1, "k")}, at(0), out);
  a.flush(at(0), out);
  ASSERT_EQ(sent<ForwardOps>(out).size(), 1u);
  ASSERT_TRUE(sent<Propose>(out).empty());
  out.clear();
  a.handle({0, Actor::applier}, StepDown{kAlpha}, at(10), out);
  EXPECT_EQ(a.leader(), 1u);
  EXPECT_EQ(sent<Propose>(out).size(), 1u) << "the new lead proposes the op it had forwarded";
}

TEST(ApplierStepDown, ABatchItAuthorsAfterRestartingMakesItTheLeaderAgain) {
  Applier a(2, options());
  Outbox out;
  a.handle({2, Actor::learner}, Apply{0, batch_of(0, {put(100, 1, "x")})}, at(0), out);
  a.handle({0, Actor::applier}, StepDown{2}, at(1), out);
  EXPECT_EQ(a.leader(), 1u);
  a.handle({2, Actor::learner}, Apply{1, batch_of(1, {put(101, 1, "y")})}, at(2), out);
  EXPECT_EQ(a.leader(), 1u);
  a.handle({2, Actor::learner}, Apply{2, batch_of(0, {put(102, 1, "z")})}, at(3), out);
  EXPECT_EQ(a.leader(), 0u) << "a batch of n0's at or above its StepDown's bound: it is back";
}

TEST(ApplierStepDown, WithEveryVoterStoppingTheLowestStillLeads) {
  Applier a(2, options());
  Outbox out;
  a.handle({2, Actor::learner}, Apply{0, batch_of(0, {put(100, 1, "x")})}, at(0), out);
  a.handle({0, Actor::applier}, StepDown{kAlpha}, at(1), out);
  a.handle({1, Actor::applier}, StepDown{kAlpha}, at(1), out);
  EXPECT_EQ(a.leader(), 2u);
  a.handle({2, Actor::control}, StepDown{}, at(1), out);
  EXPECT_EQ(a.leader(), 0u) << "no voter serves: the lowest, as with no StepDown at all";
}

}  // namespace
}  // namespace kvpaxos
