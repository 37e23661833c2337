// The Paxos actors' logic driven directly, with fake time: no sockets, no
// threads, every message visible.
#include <set>

#include <gtest/gtest.h>

#include "actors/paxos/acceptor.hpp"
#include "actors/kv/applier.hpp"
#include "actors/paxos/learner.hpp"
#include "actors/paxos/proposer.hpp"
#include "messages/codec.hpp"
#include "test/unit/actor_test_support.hpp"

namespace kvpaxos {
namespace {

using std::chrono::milliseconds;

using test_support::at;
using test_support::sent;

// ------------------------------------------------------------------ acceptor

TEST(Acceptor, PromisesOnlyHigherBallots) {
  Acceptor a;
  EXPECT_TRUE(a.on_prepare({1, Ballot{2, 0}}).ok);
  const Promise lower = a.on_prepare({1, Ballot{1, 5}});
  EXPECT_FALSE(lower.ok);
  EXPECT_EQ(lower.promised, (Ballot{2, 0}));
  EXPECT_FALSE(a.on_prepare({1, Ballot{2, 0}}).ok) << "the same ballot twice";
  EXPECT_TRUE(a.on_prepare({2, Ballot{1, 0}}).ok) << "instances are independent";
}

TEST(Acceptor, AcceptsAtThePromisedBallotAndReportsItInLaterPromises) {
  Acceptor a;
  ASSERT_TRUE(a.on_prepare({0, Ballot{3, 1}}).ok);
  EXPECT_FALSE(a.on_accept({0, Ballot{2, 9}, "old"}).ok);
  EXPECT_TRUE(a.on_accept({0, Ballot{3, 1}, "v"}).ok);
  const Promise p = a.on_prepare({0, Ballot{4, 2}});
  ASSERT_TRUE(p.ok);
  EXPECT_EQ(p.accepted_ballot, (Ballot{3, 1}));
  EXPECT_EQ(p.accepted_value, "v");
  EXPECT_FALSE(a.on_accept({0, Ballot{3, 1}, "v2"}).ok) << "promised 4.2 since";
}

TEST(Acceptor, ForgottenInstancesAreAnsweredAsForgotten) {
  Acceptor a;
  ASSERT_TRUE(a.on_accept({0, Ballot{1, 0}, "v"}).ok);
  ASSERT_TRUE(a.on_accept({5, Ballot{1, 0}, "w"}).ok);
  a.forget_below(3);
  EXPECT_EQ(a.instances_held(), 1u);
  EXPECT_TRUE(a.on_prepare({0, Ballot{9, 0}}).forgotten);
  EXPECT_TRUE(a.on_accept({2, Ballot{9, 0}, "x"}).forgotten);
  EXPECT_EQ(a.on_prepare({5, Ballot{9, 0}}).accepted_value, "w");
  a.forget_below(1);  // never moves back
  EXPECT_EQ(a.forgotten_below(), 3u);
}

// ------------------------------------------------------------------ proposer

struct ProposerRig {
  // Basic Paxos: one Prepare per instance (Multi-Paxos has its own tests).
  Proposer p{/*self=*/1, ConfigHistory::fixed(3), /*seed=*/42, ProposerOptions{.multi_paxos = false}};
  Outbox out;
  void handle(NodeId from, Body body, int ms) { p.handle({from, Actor::acceptor}, std::move(body), at(ms), out); }
};

TEST(Proposer, RunsBothPhasesWithAMajorityAndTellsEveryLearner) {
  ProposerRig r;
  r.handle(1, Propose{4, "mine"}, 0);
  auto prepares = sent<Prepare>(r.out);
  ASSERT_EQ(prepares.size(), 3u);
  const Ballot b = prepares[0].second.ballot;
  EXPECT_EQ(b.node, 1u);
  r.out.clear();
  r.handle(0, Promise{4, b, true, b, {}, {}, false}, 1);
  EXPECT_TRUE(sent<Accept>(r.out).empty()) << "one promise of three is no majority";
  r.handle(2, Promise{4, b, true, b, {}, {}, false}, 1);
  auto accepts = sent<Accept>(r.out);
  ASSERT_EQ(accepts.size(), 3u);
  EXPECT_EQ(accepts[0].second.value, "mine");
  r.out.clear();
  r.handle(0, Accepted{4, b, true, b, false}, 2);
  r.handle(1, Accepted{4, b, true, b, false}, 2);
  auto decided = sent<Decided>(r.out);
  ASSERT_EQ(decided.size(), 3u);
  for (const auto& [to, d] : decided) {
    EXPECT_EQ(to.actor, Actor::learner);
    EXPECT_EQ(d.value, "mine");
  }
  r.out.clear();
  r.handle(2, Accepted{4, b, true, b, false}, 3);
  EXPECT_TRUE(sent<Decided>(r.out).empty()) << "decided once";
  EXPECT_EQ(r.p.active_instances(), 0u);
}

TEST(Proposer, AdoptsTheValueOfTheHighestAcceptedBallot) {
  ProposerRig r;
  r.p.raise_round(1);  // our ballot (2, 1) is above both reported, as it must be
  r.handle(1, Propose{0, "mine"}, 0);
  const Ballot b = sent<Prepare>(r.out)[0].second.ballot;
  r.out.clear();
  r.handle(0, Promise{0, b, true, b, Ballot{1, 2}, "older", false}, 1);
  r.handle(2, Promise{0, b, true, b, Ballot{1, 0}, "oldest", false}, 1);
  auto accepts = sent<Accept>(r.out);
  ASSERT_FALSE(accepts.empty());
  EXPECT_EQ(accepts[0].second.value, "older");  // ballot 1.2 beats 1.0
}

TEST(Proposer, IgnoresRepliesToAnOldBallot) {
  ProposerRig r;
  r.handle(1, Propose{0, "v"}, 0);
  const Ballot first = sent<Prepare>(r.out)[0].second.ballot;
  r.out.clear();
  r.p.tick(at(5000), r.out);  // timed out: a new attempt with a new ballot
  auto retry = sent<Prepare>(r.out);
  ASSERT_EQ(retry.size(), 3u);
  EXPECT_GT(retry[0].second.ballot, first);
  r.out.clear();
  r.handle(0, Promise{0, first, true, first, {}, {}, false}, 5001);
  r.handle(2, Promise{0, first, true, first, {}, {}, false}, 5001);
  EXPECT_TRUE(sent<Accept>(r.out).empty());
}

TEST(Proposer, RetriesAboveARejectingBallot) {
  ProposerRig r;
  r.handle(1, Propose{0, "v"}, 0);
  const Ballot b = sent<Prepare>(r.out)[0].second.ballot;
  r.out.clear();
  r.handle(0, Promise{0, b, false, Ballot{50, 2}, {}, {}, false}, 1);
  r.p.tick(at(5000), r.out);
  auto retry = sent<Prepare>(r.out);
  ASSERT_FALSE(retry.empty());
  EXPECT_GT(retry[0].second.ballot.round, 50u);
}

// A round that carries 16 MiB can take longer than max_timeout (1 s): with a
// fixed cap the proposer would retry, pre-empting its own round, for ever.
// Its waits grow with the largest value a round carried: here a no-op that
// adopts a 16 MiB accepted value, and whose Accepts are never answered.
TEST(Proposer, WaitsLongerForRoundsThatCarryLargeValues) {
  ProposerRig r;
  const std::string big(16 << 20, 'x');
  r.handle(1, Propose{0, "noop"}, 0);
  int rounds = 0;
  Time last_accept{};
  Duration longest_gap{};
  for (int ms = 0; ms < 60'000; ms += 10) {
    for (const auto& [to, prepare] : sent<Prepare>(r.out)) {
      if (to.node == 0) continue;  // one reply per round and acceptor
      for (NodeId acceptor : {NodeId{0}, NodeId{2}}) {
        r.handle(acceptor, Promise{0, prepare.ballot, true, {}, Ballot{1, 0}, big, false}, ms);
      }
    }
    for (const auto& [to, accept] : sent<Accept>(r.out)) {
      if (to.node != 0) continue;
      EXPECT_EQ(accept.value.size(), big.size());
      if (rounds++ > 0) longest_gap = std::max(longest_gap, at(ms) - last_accept);
      last_accept = at(ms);
    }
    r.out.clear();
    r.p.tick(at(ms), r.out);
  }
  EXPECT_GT(longest_gap, std::chrono::milliseconds(4000)) << rounds << " rounds in 60 s";
  EXPECT_LT(rounds, 30);
}

TEST(Proposer, StopsWhenLearnedOrForgotten) {
  ProposerRig r;
  r.handle(1, Propose{0, "a"}, 0);
  r.handle(1, Propose{1, "b"}, 0);
  r.handle(1, Propose{2, "c"}, 0);
  EXPECT_EQ(r.p.active_instances(), 3u);
  r.p.handle({1, Actor::learner}, Learned{1}, at(1), r.out);
  EXPECT_EQ(r.p.active_instances(), 2u);
  r.p.handle({1, Actor::learner}, ForgetBelow{3}, at(1), r.out);
  EXPECT_EQ(r.p.active_instances(), 0u);
  r.out.clear();
  r.handle(1, Propose{2, "late"}, 2);
  EXPECT_TRUE(r.out.empty()) << "a forgotten instance is not proposed again";
}

// ------------------------------------------------------------------- learner

TEST(Learner, DeliversInOrderOnceAndKeepsTheFirstValue) {
  Learner l(0, ConfigHistory::fixed(3));
  Outbox out;
  l.handle({1, Actor::proposer}, Decided{2, "c"}, at(0), out);
  l.handle({1, Actor::proposer}, Decided{0, "a"}, at(0), out);
  EXPECT_EQ(sent<Apply>(out).size(), 1u);
  l.handle({1, Actor::proposer}, Decided{1, "b"}, at(0), out);
  l.handle({2, Actor::proposer}, Decided{1, "DIFFERENT"}, at(0), out);
  auto applies = sent<Apply>(out);
  ASSERT_EQ(applies.size(), 3u);
  for (std::size_t i = 0; i < 3; ++i) EXPECT_EQ(applies[i].second.instance, i);
  EXPECT_EQ(applies[1].second.value, "b");
  EXPECT_EQ(l.conflicts(), 1u);
}

TEST(Learner, ForgetsOnlyBelowEveryNodesDone) {
  Learner l(0, ConfigHistory::fixed(3));
  Outbox out;
  for (InstanceId i = 0; i < 5; ++i) l.handle({0, Actor::proposer}, Decided{i, "v"}, at(0), out);
  l.handle({0, Actor::applier}, LocalDone{5}, at(0), out);
  l.handle({0, Actor::peer_link}, PeerProgress{1, 4, 5}, at(0), out);
  EXPECT_EQ(l.forget_below(), 0u) << "node 2 has not said it is done";
  out.clear();
  l.handle({0, Actor::peer_link}, PeerProgress{2, 3, 5}, at(0), out);
  EXPECT_EQ(l.forget_below(), 3u);
  EXPECT_EQ(l.instances_held(), 2u);
  auto forgets = sent<ForgetBelow>(out);
  ASSERT_EQ(forgets.size(), 2u);  // acceptor and proposer
  l.handle({0, Actor::peer_link}, PeerProgress{2, 1, 5}, at(0), out);
  EXPECT_EQ(l.forget_below(), 3u) << "never moves back";
}

TEST(Learner, AsksPeersForEveryMissingInstance) {
  Learner l(0, ConfigHistory::fixed(3));
  Outbox out;
  l.handle({0, Actor::proposer}, Decided{1, "b"}, at(0), out);
  l.handle({0, Actor::peer_link}, PeerProgress{2, 0, 5}, at(0), out);
  out.clear();
  l.tick(at(100), out);
  auto requests = sent<CatchUpRequest>(out);
  ASSERT_EQ(requests.size(), 1u);
  EXPECT_EQ(requests[0].first, (Address{2, Actor::learner}));
  EXPECT_EQ(requests[0].second.instances, (std::vector<InstanceId>{0, 2, 3, 4}));
  out.clear();
  l.tick(at(110), out);
  EXPECT_TRUE(sent<CatchUpRequest>(out).empty()) << "rate limited";
}

// Behind the forget point, a snapshot source is named; each retry names the
// next peer that is done past us (the furthest may be down for good).
TEST(Learner, RotatesSnapshotSourcesWhenTheFurthestPeerDoesNotServe) {
  Learner l(0, ConfigHistory::fixed(3), LearnerOptions{.forget_with_majority = true,
                                 .keep_for_laggards = 0,
                                 .snapshot_retry = milliseconds(100)});
  Outbox out;
  l.handle({0, Actor::peer_link}, PeerProgress{1, 500, 500, 400}, at(0), out);
  l.handle({0, Actor::peer_link}, PeerProgress{2, 450, 450, 400}, at(0), out);
  std::vector<NodeId> named;
  for (int t = 1; t <= 4; ++t) {
    out.clear();
    l.tick(at(t * 150), out);
    for (const auto& [to, m] : sent<SnapshotNeeded>(out)) {
      EXPECT_EQ(to, (Address{0, Actor::applier}));
      EXPECT_EQ(m.below, 450u);  // a majority (n2, n3) is done below 450
      named.push_back(m.peer);
    }
  }
  EXPECT_EQ(named, (std::vector<NodeId>{1, 2, 1, 2}));
}

// A node that learns the log only through peers (a partial partition cut it
// off from the leader) lags the majority by a catch-up round. The values it
// still needs stay here for it, and are served, while acceptor and proposer
// forget at the majority's point as before; the node is told what is held.
TEST(Learner, KeepsTheValuesALaggingPeerStillNeeds) {
  for (const InstanceId keep : {InstanceId{4096}, InstanceId{0}}) {
    Learner l(0, ConfigHistory::fixed(3), LearnerOptions{.forget_with_majority = true, .keep_for_laggards = keep});
    Outbox out;
    for (InstanceId i = 0; i < 10; ++i) {
      l.handle({0, Actor::proposer}, Decided{i, "v" + std::to_string(i)}, at(0), out);
    }
    l.handle({0, Actor::applier}, LocalDone{10}, at(0), out);
    l.handle({0, Actor::peer_link}, PeerProgress{1, 10, 10, 0}, at(0), out);
    l.handle({0, Actor::peer_link}, PeerProgress{2, 4, 4, 0}, at(0), out);
    EXPECT_EQ(l.forget_below(), 10u) << "a majority is done below 10";
    bool acceptor_told = false;
    for (const auto& [to, m] : sent<ForgetBelow>(out)) {
      if (to == Address{0, Actor::acceptor} && m.instance == 10) acceptor_told = true;
    }
    EXPECT_TRUE(acceptor_told);
    std::vector<LocalProgress> told;
    for (const auto& [to, m] : sent<LocalProgress>(out)) told.push_back(m);
    ASSERT_FALSE(told.empty());
    out.clear();
    l.handle({2, Actor::learner}, CatchUpRequest{{4, 5, 6, 7, 8, 9}}, at(0), out);
    if (keep != 0) {
      EXPECT_EQ(l.held_from(), 4u) << "n3 is not done below 4 yet";
      EXPECT_EQ(told.back().forget_below, 4u) << "peers learn what is held";
      EXPECT_EQ(sent<Decided>(out).size(), 6u);
    } else {
      EXPECT_EQ(l.held_from(), 10u) << "nothing kept: forgets at the majority's point";
      EXPECT_TRUE(sent<Decided>(out).empty());
    }
  }
}

// After installing a snapshot a node holds nothing below it, and says so: a
// peer further behind must not wait on it for the log.
TEST(Learner, HoldsNothingBelowAnInstalledSnapshot) {
  Learner l(0, ConfigHistory::fixed(3), LearnerOptions{.forget_with_majority = true});
  Outbox out;
  l.handle({0, Actor::peer_link}, PeerProgress{1, 50, 50, 0}, at(0), out);
  l.handle({0, Actor::applier}, SnapshotInstalled{40}, at(0), out);
  EXPECT_EQ(l.held_from(), 40u);
  l.handle({0, Actor::proposer}, Decided{30, "old"}, at(0), out);
  EXPECT_EQ(l.instances_held(), 0u);
}

TEST(Learner, AnswersCatchUpWithWhatItHolds) {
  Learner l(0, ConfigHistory::fixed(3));
  Outbox out;
  l.handle({0, Actor::proposer}, Decided{3, "d"}, at(0), out);
  out.clear();
  l.handle({1, Actor::learner}, CatchUpRequest{{2, 3}}, at(0), out);
  auto answers = sent<Decided>(out);
  ASSERT_EQ(answers.size(), 1u);
  EXPECT_EQ(answers[0].first, (Address{1, Actor::learner}));
  EXPECT_EQ(answers[0].second.value, "d");
}

// ------------------------------------------------------------------- applier

struct ApplierRig {
  explicit ApplierRig(ApplierOptions options = {.name = "n1"}) : a(0, std::move(options)) {}
  Applier a;
  Outbox out;
  InstanceId next = 0;

  void request(const ClientRequest& r, const std::string& route = "route") {
    a.handle({0, Actor::front_door}, FromClient{route, r}, at(0), out);
  }
  void decide(const KvOp& op) {
    a.handle({0, Actor::learner}, Apply{next++, encode_op(op)}, at(0), out);
  }
  // Applies a one-op batch authored by `author`: the lead is its now.
  void led_by(NodeId author, Time now = at(0)) {
    const std::string op = encode_op(KvOp::from(ClientRequest{100 + next, 1, 0, OpKind::put, "x", "1"}));
    a.handle({0, Actor::learner}, Apply{next++, encode_batch(author, {op})}, now, out);
  }
  // n1 leads at time 0, and client 1's put (k=v) here goes to it as one
  // ForwardOps; the outbox is left empty.
  bool forwarded_to_n1_at_start() {
    led_by(1, at(0));
    request(ClientRequest{1, 1, 0, OpKind::put, "k", "v"});
    a.flush(at(0), out);
    const auto forwards = sent<ForwardOps>(out);
    out.clear();
    return forwards.size() == 1 && forwards[0].first == Address{1, Actor::applier};
  }
  std::vector<ClientReply> replies() {
    std::vector<ClientReply> found;
    for (const auto& [to, m] : sent<ToClient>(out)) {
      Result<Body> b = decode(m.body);
      if (b.ok() && std::holds_alternative<ClientReply>(b.value())) {
        found.push_back(std::get<ClientReply>(b.value()));
      }
    }
    out.clear();
    return found;
  }
};

TEST(Applier, OpDecidedTwiceExecutesOnce) {
  ApplierRig r;
  const ClientRequest append{9, 1, 0, OpKind::append, "k", "x"};
  r.request(append);
  r.decide(KvOp::from(append));
  r.decide(KvOp::from(append));  // the same request, decided again via another node
  EXPECT_EQ(r.a.data().at("k").value, "x");
  auto replies = r.replies();
  ASSERT_EQ(replies.size(), 1u);
  EXPECT_EQ(replies[0].code, ReplyCode::ok);
}

TEST(Applier, RetryOfAnExecutedRequestGetsTheSameReplyWithoutProposing) {
  ApplierRig r;
  const ClientRequest put{9, 1, 0, OpKind::put, "k", "v"};
  r.decide(KvOp::from(put));  // executed through another node
  r.out.clear();
  r.request(put);
  EXPECT_TRUE(sent<Propose>(r.out).empty());
  auto replies = r.replies();
  ASSERT_EQ(replies.size(), 1u);
  EXPECT_EQ(replies[0].code, ReplyCode::ok);
}

TEST(Applier, AckReleasesTheRetainedReply) {
  ApplierRig r;
  r.decide(KvOp::from(ClientRequest{9, 1, 0, OpKind::get, "k", ""}));
  EXPECT_EQ(r.a.retained_replies(), 1u);
  r.decide(KvOp::from(ClientRequest{9, 2, 1, OpKind::put, "k", "v"}));
  EXPECT_EQ(r.a.retained_replies(), 1u);  // only seq 2's
  r.out.clear();
  r.request(ClientRequest{9, 1, 0, OpKind::get, "k", ""});
  auto replies = r.replies();
  ASSERT_EQ(replies.size(), 1u);
  EXPECT_EQ(replies[0].code, ReplyCode::stale_request);
  EXPECT_EQ(r.a.sessions(), 1u);
}

TEST(Applier, LostRaceProposesAgainAtALaterInstance) {
  ApplierRig r;
  const ClientRequest mine{1, 1, 0, OpKind::put, "k", "mine"};
  r.request(mine);
  auto first = sent<Propose>(r.out);
  ASSERT_EQ(first.size(), 1u);
  EXPECT_EQ(first[0].second.instance, 0u);
  r.out.clear();
  r.decide(KvOp::from(ClientRequest{2, 1, 0, OpKind::put, "k", "theirs"}));  // instance 0
  auto again = sent<Propose>(r.out);
  ASSERT_EQ(again.size(), 1u);
  EXPECT_GT(again[0].second.instance, 0u);
  r.decide(KvOp::from(mine));  // instance 1
  EXPECT_EQ(r.a.data().at("k").value, "mine");
  EXPECT_EQ(r.replies().size(), 1u);
}

// Requests that arrive while the pipeline is full wait and go out together,
// in one instance, when a slot frees; a batch that lost its instance is
// proposed again, and each op in a decided batch runs once and is answered.
TEST(Applier, BatchesRequestsWhileThePipelineIsFull) {
  ApplierRig r;
  r.a = Applier{0, ApplierOptions{.name = "n1", .max_in_flight = 1}};
  const ClientRequest a{1, 1, 0, OpKind::put, "a", "1"};
  const ClientRequest b{2, 1, 0, OpKind::append, "b", "2"};
  const ClientRequest c{3, 1, 0, OpKind::append, "b", "3"};
  r.request(a);
  r.request(b);
  r.request(c);
  auto proposals = sent<Propose>(r.out);
  ASSERT_EQ(proposals.size(), 1u) << "a second instance went out with the pipeline full";
  EXPECT_EQ(proposals[0].second.value, encode_batch(0, {encode_op(KvOp::from(a))}));
  r.out.clear();
  r.decide(KvOp::from(a));  // instance 0: a runs, b and c go out as one batch
  proposals = sent<Propose>(r.out);
  ASSERT_EQ(proposals.size(), 1u);
  EXPECT_EQ(proposals[0].second.instance, 1u);
  const std::string batch = proposals[0].second.value;
  Result<LogEntry> entry = decode_entry(batch);
  ASSERT_TRUE(entry.ok()) << entry.error();
  ASSERT_EQ(entry->ops.size(), 2u);
  EXPECT_EQ(entry->ops[0].client_id, 2u);
  EXPECT_EQ(entry->ops[1].client_id, 3u);
  EXPECT_EQ(r.replies().size(), 1u);  // a's
  // Another node's op wins instance 1: the batch goes out again, whole.
  r.decide(KvOp::from(ClientRequest{4, 1, 0, OpKind::put, "b", "x"}));
  proposals = sent<Propose>(r.out);
  ASSERT_EQ(proposals.size(), 1u);
  EXPECT_EQ(proposals[0].second.instance, 2u);
  EXPECT_EQ(decode_entry(proposals[0].second.value)->ops.size(), 2u);
  r.out.clear();
  r.a.handle({0, Actor::learner}, Apply{r.next++, batch}, at(0), r.out);
  EXPECT_EQ(r.a.data().at("b").value, "x23");
  EXPECT_EQ(r.replies().size(), 2u);
  r.a.handle({0, Actor::learner}, Apply{r.next++, batch}, at(0), r.out);  // decided twice
  EXPECT_EQ(r.a.data().at("b").value, "x23");
}

// Room for two instances in flight and batches of 3 ops; client 1's put is
// in flight in instance 0.
struct PipelineRig : ApplierRig {
  PipelineRig() {
    a = Applier{0, ApplierOptions{.name = "n1", .max_in_flight = 2, .max_batch_ops = 3}};
    request(put(1));
    EXPECT_EQ(sent<Propose>(out).size(), 1u);
    out.clear();
  }
  static ClientRequest put(ClientId c) {
    return ClientRequest{c, 1, 0, OpKind::put, "k" + std::to_string(c), "v"};
  }
};

// With room for two instances in flight, the second goes out only behind a
// full batch (here 3 ops): a part-full one waits for the first instance and
// grows instead.
TEST(Applier, PipelinesASecondInstanceOnlyBehindAFullBatch) {
  PipelineRig r;
  const auto put = PipelineRig::put;
  r.request(put(2));
  r.request(put(3));
  EXPECT_TRUE(sent<Propose>(r.out).empty()) << "a part-full batch went out behind the first";
  r.request(put(4));
  auto proposals = sent<Propose>(r.out);
  ASSERT_EQ(proposals.size(), 1u) << "a full batch waited";
  EXPECT_EQ(proposals[0].second.instance, 1u);
  EXPECT_EQ(decode_entry(proposals[0].second.value)->ops.size(), 3u);
  const std::string full_batch = proposals[0].second.value;
  r.out.clear();
  r.request(put(5));  // two in flight: the pipeline is full
  EXPECT_TRUE(sent<Propose>(r.out).empty());
  r.decide(KvOp::from(put(1)));  // instance 0 applied; instance 1 still in flight
  proposals = sent<Propose>(r.out);
  EXPECT_TRUE(proposals.empty()) << "one op went out behind an instance in flight";
  r.out.clear();
  r.a.handle({0, Actor::learner}, Apply{r.next++, full_batch}, at(0), r.out);
  proposals = sent<Propose>(r.out);
  ASSERT_EQ(proposals.size(), 1u) << "the held op stayed behind once nothing was in flight";
  EXPECT_EQ(proposals[0].second.instance, 2u);
  EXPECT_EQ(decode_entry(proposals[0].second.value)->ops.at(0).client_id, 5u);
}

// A held op goes out with the batch it waited behind when another value (here
// a no-op, which no node authored) wins that instance.
TEST(Applier, AHeldOpGoesOutWhenTheInstanceInFlightIsLost) {
  PipelineRig r;
  const auto put = PipelineRig::put;
  r.request(put(2));
  EXPECT_TRUE(sent<Propose>(r.out).empty());
  r.decide(KvOp::no_op());
  auto proposals = sent<Propose>(r.out);
  ASSERT_EQ(proposals.size(), 1u);
  EXPECT_EQ(proposals[0].second.instance, 1u);
  EXPECT_EQ(decode_entry(proposals[0].second.value)->ops.size(), 2u);
}

// When another node's batch wins the instance ours was in, that node leads:
// our lost batch and the ops queued behind it go to it, in order, instead of
// into a proposal that would pre-empt it (after an idle spell, when every
// node proposed for itself, the lead would otherwise pass back and forth
// with every batch).
TEST(Applier, ALostBatchAndTheQueueGoToTheNodeWhoseBatchWon) {
  PipelineRig r;
  const auto put = PipelineRig::put;
  r.request(put(2));
  const std::string theirs = encode_op(KvOp::from(ClientRequest{77, 1, 0, OpKind::put, "z", "z"}));
  r.a.handle({0, Actor::learner}, Apply{r.next++, encode_batch(1, {theirs})}, at(0), r.out);
  EXPECT_TRUE(sent<Propose>(r.out).empty()) << "proposed against the node that leads";
  r.a.flush(at(0), r.out);
  auto forwarded = sent<ForwardOps>(r.out);
  ASSERT_EQ(forwarded.size(), 1u);
  EXPECT_EQ(forwarded[0].first, (Address{1, Actor::applier}));
  ASSERT_EQ(forwarded[0].second.ops.size(), 2u);
  EXPECT_EQ(decode_op(forwarded[0].second.ops[0])->client_id, 1u);
  EXPECT_EQ(decode_op(forwarded[0].second.ops[1])->client_id, 2u);
  // The winner's next batch carries them: each runs once and is answered here.
  r.out.clear();
  r.a.handle({0, Actor::learner},
             Apply{r.next++, encode_batch(1, {encode_op(KvOp::from(put(1))),
                                              encode_op(KvOp::from(put(2)))})},
             at(5), r.out);
  EXPECT_EQ(r.replies().size(), 2u);
  EXPECT_EQ(r.a.data().at("k2").value, "v");
}

// Once another node authored the latest batch, client ops go to it rather
// than into a competing proposal; if it does not get them applied in time,
// this node proposes them itself.
TEST(Applier, ForwardsToTheLeaderAndProposesItselfWhenTheLeaderIsSilent) {
  ApplierRig r;
  const std::string theirs = encode_op(KvOp::from(ClientRequest{7, 1, 0, OpKind::put, "x", "1"}));
  r.a.handle({0, Actor::learner}, Apply{r.next++, encode_batch(2, {theirs})}, at(0), r.out);
  r.out.clear();
  const ClientRequest mine{1, 1, 0, OpKind::put, "k", "v"};
  r.a.handle({0, Actor::front_door}, FromClient{"route", mine}, at(10), r.out);
  EXPECT_TRUE(sent<Propose>(r.out).empty());
  EXPECT_TRUE(sent<ForwardOps>(r.out).empty()) << "forwards wait for the runner's flush";
  r.a.flush(at(10), r.out);
  auto forwarded = sent<ForwardOps>(r.out);
  ASSERT_EQ(forwarded.size(), 1u);
  EXPECT_EQ(forwarded[0].first, (Address{2, Actor::applier}));
  r.out.clear();
  r.a.tick(at(10 + 499), r.out);
  EXPECT_TRUE(sent<Propose>(r.out).empty()) << "proposed before the forward timed out";
  r.a.tick(at(10 + 500), r.out);
  auto proposals = sent<Propose>(r.out);
  ASSERT_EQ(proposals.size(), 1u);
  EXPECT_EQ(decode_entry(proposals[0].second.value)->ops.at(0).client_id, 1u);
  r.out.clear();
  // The leader's batch with the op arrives after all: it runs once, answered once.
  r.a.handle({0, Actor::learner}, Apply{r.next++, encode_batch(2, {encode_op(KvOp::from(mine))})},
             at(600), r.out);
  r.a.handle({0, Actor::learner}, Apply{r.next++, proposals[0].second.value}, at(601), r.out);
  EXPECT_EQ(r.a.data().at("k").value, "v");
  EXPECT_EQ(r.replies().size(), 1u);
}

// Ops forwarded to a leader that then lost the lead (it may be dead) do not
// wait out forward_timeout: they go to the node whose batch was applied
// next, or into a proposal when that node is this one.
TEST(Applier, ForwardsFollowTheLeadWhenItMoves) {
  ApplierRig r;
  ASSERT_TRUE(r.forwarded_to_n1_at_start());
  r.led_by(2, at(100));  // n2 took over (n1 may be dead): the op goes to n2
  r.a.flush(at(100), r.out);
  auto forwarded = sent<ForwardOps>(r.out);
  ASSERT_EQ(forwarded.size(), 1u);
  EXPECT_EQ(forwarded[0].first, (Address{2, Actor::applier}));
  EXPECT_TRUE(sent<Propose>(r.out).empty());
  r.out.clear();
  r.led_by(0, at(200));  // this node's own batch won: it proposes the op itself
  auto proposals = sent<Propose>(r.out);
  ASSERT_EQ(proposals.size(), 1u);
  EXPECT_EQ(decode_entry(proposals[0].second.value)->ops.at(0).client_id, 1u);
}

// While the leader applies batches, a forward waits forward_timeout_busy
// (2 s) before the op is proposed here. When that proposal loses its
// instance to the leader's batch, the op is proposed again, not sent back to
// the leader that failed to apply it (its forwards may be getting lost).
// Found by review.
TEST(Applier, ATimedOutForwardThatLosesIsProposedAgainNotForwardedBack) {
  ApplierRig r({.name = "n1", .config = ConfigState::fixed(2)});  // no third voter to relay to
  ASSERT_TRUE(r.forwarded_to_n1_at_start());
  for (int t = 100; t < 2000; t += 100) {  // n1 keeps leading, without our op
    r.led_by(1, at(t));
    r.a.tick(at(t), r.out);
    ASSERT_TRUE(sent<Propose>(r.out).empty()) << "retried at " << t << " ms while n1 applies batches";
  }
  r.a.tick(at(2000), r.out);  // forward_timeout_busy
  ASSERT_EQ(sent<Propose>(r.out).size(), 1u);
  r.out.clear();
  r.led_by(1, at(2010));  // n1's batch wins the instance of our proposal
  r.a.flush(at(2010), r.out);
  EXPECT_EQ(sent<Propose>(r.out).size(), 1u);
  EXPECT_TRUE(sent<ForwardOps>(r.out).empty()) << "sent back to the leader that dropped it";
}

// A forward that times out goes once to a third node, which proposes it
// there, before this node proposes it: under a partial partition (the
// leader alive, but cut off from this node only) the lead moves to a node
// both reach, instead of to this node, which learns the log only through
// peers and would chase the leader's instances. Only when the relay does not
// get it applied either is it proposed here.
TEST(Applier, ATimedOutForwardGoesOnceToAThirdNodeBeforeItIsProposedHere) {
  Applier a{0, ApplierOptions{.name = "n1"}};
  Outbox out;
  InstanceId next = 0;
  auto led_by_n2 = [&](int t) {
    const std::string op =
        encode_op(KvOp::from(ClientRequest{100 + next, 1, 0, OpKind::put, "x", "1"}));
    a.handle({0, Actor::learner}, Apply{next++, encode_batch(1, {op})}, at(t), out);
  };
  led_by_n2(0);
  a.handle({0, Actor::front_door}, FromClient{"route", {1, 1, 0, OpKind::put, "k", "v"}}, at(0),
           out);
  a.flush(at(0), out);
  ASSERT_EQ(sent<ForwardOps>(out).size(), 1u);
  EXPECT_EQ(sent<ForwardOps>(out)[0].first, (Address{1, Actor::applier}));
  out.clear();
  for (int t = 100; t <= 2000; t += 100) {  // n2 keeps leading, without our op
    led_by_n2(t);
    a.tick(at(t), out);
    a.flush(at(t), out);
  }
  auto relayed = sent<ForwardOps>(out);
  ASSERT_EQ(relayed.size(), 1u);
  EXPECT_EQ(relayed[0].first, (Address{2, Actor::applier})) << "relayed to n3";
  EXPECT_TRUE(sent<Propose>(out).empty());
  out.clear();
  for (int t = 2100; t <= 4000; t += 100) {
    led_by_n2(t);
    a.tick(at(t), out);
    a.flush(at(t), out);
  }
  EXPECT_TRUE(sent<ForwardOps>(out).empty());
  auto proposals = sent<Propose>(out);
  ASSERT_EQ(proposals.size(), 1u) << "the relay did not get it applied either";
  EXPECT_EQ(decode_entry(proposals[0].second.value)->ops.at(0).client_id, 1u);
}

// A burst of client requests at a node that is not the leader goes to the
// leader as one message, not one each; when the lead moves before the flush,
// what was held for the old leader goes to the new one instead.
TEST(Applier, MergesTheForwardsOfABurstIntoOneMessage) {
  ApplierRig r;
  r.led_by(2);
  r.out.clear();
  for (ClientId c = 1; c <= 3; ++c) r.request(ClientRequest{c, 1, 0, OpKind::put, "k", "v"});
  r.a.flush(at(0), r.out);
  auto forwarded = sent<ForwardOps>(r.out);
  ASSERT_EQ(forwarded.size(), 1u);
  EXPECT_EQ(forwarded[0].first, (Address{2, Actor::applier}));
  ASSERT_EQ(forwarded[0].second.ops.size(), 3u);
  for (ClientId c = 1; c <= 3; ++c) {
    EXPECT_EQ(decode_op(forwarded[0].second.ops[c - 1])->client_id, c);
  }
  r.out.clear();
  r.request(ClientRequest{4, 1, 0, OpKind::append, "k", "w"});  // held for n2
  r.led_by(1);  // n1 authored the latest batch: the leader is n1 now
  r.request(ClientRequest{5, 1, 0, OpKind::append, "k", "u"});
  r.a.flush(at(0), r.out);
  forwarded = sent<ForwardOps>(r.out);
  ASSERT_EQ(forwarded.size(), 1u) << "a held op went to the old leader";
  EXPECT_EQ(forwarded[0].first, (Address{1, Actor::applier}));
  std::set<ClientId> carried;
  for (const std::string& op : forwarded[0].second.ops) carried.insert(decode_op(op)->client_id);
  EXPECT_EQ(carried, (std::set<ClientId>{1, 2, 3, 4, 5}));
  EXPECT_EQ(forwarded[0].second.ops.size(), 5u);
  r.out.clear();
  r.a.flush(at(1), r.out);
  EXPECT_TRUE(r.out.empty()) << "a flush sends each held op once";
}

TEST(Applier, BatchesForwardedOpsWithoutAnsweringThem) {
  ApplierRig r;
  const std::string op = encode_op(KvOp::from(ClientRequest{5, 1, 0, OpKind::append, "k", "z"}));
  r.a.handle({1, Actor::applier}, ForwardOps{{op, "garbage"}}, at(0), r.out);
  auto proposals = sent<Propose>(r.out);
  ASSERT_EQ(proposals.size(), 1u);
  Result<LogEntry> entry = decode_entry(proposals[0].second.value);
  ASSERT_TRUE(entry.ok());
  EXPECT_EQ(entry->author, 0u);
  ASSERT_EQ(entry->ops.size(), 1u);  // the garbage op was dropped
  r.out.clear();
  r.a.handle({0, Actor::learner}, Apply{r.next++, proposals[0].second.value}, at(1), r.out);
  EXPECT_EQ(r.a.data().at("k").value, "z");
  EXPECT_TRUE(r.replies().empty()) << "the forwarding node answers its client, not us";
}

TEST(Applier, ProposesANoOpIntoAHoleItWaitedOnTooLong) {
  ApplierRig r;
  r.a.handle({0, Actor::learner}, LearnerProgress{0, 5}, at(0), r.out);
  r.a.tick(at(50), r.out);
  EXPECT_TRUE(sent<Propose>(r.out).empty()) << "not yet: the hole may fill by itself";
  r.a.tick(at(1000), r.out);
  auto proposals = sent<Propose>(r.out);
  ASSERT_EQ(proposals.size(), 1u);
  EXPECT_EQ(proposals[0].second.instance, 0u);
  Result<KvOp> op = decode_op(proposals[0].second.value);
  ASSERT_TRUE(op.ok());
  EXPECT_TRUE(op->noop);
}

TEST(Applier, AppendToAbsentKeyActsAsPut) {
  ApplierRig r;
  r.decide(KvOp::from(ClientRequest{3, 1, 0, OpKind::append, "k", "ab"}));
  r.decide(KvOp::from(ClientRequest{3, 2, 1, OpKind::append, "k", "c"}));
  r.decide(KvOp::from(ClientRequest{3, 3, 2, OpKind::get, "absent", ""}));
  EXPECT_EQ(r.a.data().at("k").value, "abc");
  EXPECT_EQ(r.a.data().count("absent"), 0u);
}


TEST(Applier, RepliesOfVanishedClientsStayWithinTheBudget) {
  Applier a{0, ApplierOptions{.name = "n1", .retained_reply_bytes = 4 * 1024 * 1024}};
  Outbox out;
  const std::string mb(1024 * 1024, 'v');
  a.handle({0, Actor::learner}, Apply{0, encode_op(KvOp::from(ClientRequest{1, 1, 0, OpKind::put, "k", mb}))}, at(0), out);
  // 20 one-shot clients each read 1 MB and never come back to ack it.
  for (InstanceId i = 1; i <= 20; ++i) {
    a.handle({0, Actor::learner},
             Apply{i, encode_op(KvOp::from(ClientRequest{100 + i, 1, 0, OpKind::get, "k", ""}))},
             at(0), out);
  }
  EXPECT_LE(a.retained_reply_bytes(), 4u * 1024 * 1024);
  EXPECT_EQ(a.sessions(), 21u) << "sessions stay: their ops must never run twice";
  // A dropped reply's request is still not executed again.
  out.clear();
  a.handle({0, Actor::front_door}, FromClient{"r", ClientRequest{101, 1, 0, OpKind::get, "k", ""}},
           at(0), out);
  EXPECT_TRUE(sent<Propose>(out).empty());
}

// ------------------------------------------------ bounded sessions, forwarding

// Applies one batch (author n2) of `ops` at the rig's next instance.
void apply_batch(ApplierRig& r, const std::vector<ClientRequest>& ops) {
  std::vector<std::string> encoded;
  for (const ClientRequest& op : ops) encoded.push_back(encode_op(KvOp::from(op)));
  r.a.handle({0, Actor::learner}, Apply{r.next++, encode_batch(1, encoded)}, at(0), r.out);
}

ClientRequest put_of(ClientId client, std::uint64_t seq, const std::string& value) {
  return ClientRequest{client, seq, seq - 1, OpKind::put, "k" + std::to_string(client), value};
}

TEST(Applier, OpWithSeqAboveOneAndNoSessionNeverRunsAndIsAnsweredSessionExpired) {
  ApplierRig r;
  const ClientRequest late = put_of(7, 5, "v");
  r.request(late);
  r.out.clear();
  r.decide(KvOp::from(late));
  EXPECT_FALSE(r.a.data().contains("k7"));
  EXPECT_EQ(r.a.sessions(), 0u) << "only seq 1 starts a session";
  auto replies = r.replies();
  ASSERT_EQ(replies.size(), 1u);
  EXPECT_EQ(replies[0].code, ReplyCode::session_expired);
  EXPECT_EQ(replies[0].seq, 5u);
  EXPECT_NE(replies[0].error.find("may have run already"), std::string::npos) << replies[0].error;
  EXPECT_NE(replies[0].error.find("start a new session"), std::string::npos) << replies[0].error;
}

TEST(Applier, SessionsPastTheLimitAreEvictedLeastRecentlyUsedFirst) {
  ApplierRig r({.name = "n1", .max_sessions = 2});
  apply_batch(r, {put_of(1, 1, "a")});
  apply_batch(r, {put_of(2, 1, "b")});
  apply_batch(r, {put_of(1, 2, "a2")});  // client 1 used again: 2 is now the oldest
  apply_batch(r, {put_of(3, 1, "c")});
  EXPECT_EQ(r.a.sessions(), 2u);
  EXPECT_EQ(r.a.sessions_evicted(), 1u);
  // Client 2 is gone: its next op must not run (it cannot be told from a
  // retry of an op that ran); client 1's does.
  apply_batch(r, {put_of(2, 2, "b2"), put_of(1, 3, "a3")});
  EXPECT_EQ(r.a.data().at("k2").value, "b");
  EXPECT_EQ(r.a.data().at("k1").value, "a3");
}

TEST(Applier, AnInstanceNeverEvictsTheSessionsItTouchedBeforeAnsweringThem) {
  ApplierRig r({.name = "n1", .max_sessions = 1});
  r.request(put_of(1, 1, "a"), "r1");
  r.request(put_of(2, 1, "b"), "r2");
  r.out.clear();
  apply_batch(r, {put_of(1, 1, "a"), put_of(2, 1, "b")});
  auto replies = r.replies();
  ASSERT_EQ(replies.size(), 2u);
  EXPECT_EQ(replies[0].code, ReplyCode::ok);
  EXPECT_EQ(replies[1].code, ReplyCode::ok);
  EXPECT_EQ(r.a.sessions(), 2u) << "over the limit until a later instance";
  apply_batch(r, {put_of(3, 1, "c")});
  EXPECT_EQ(r.a.sessions(), 1u);
}

TEST(Applier, EvictionIsTheSameOnAReplicaRestoredFromASnapshot) {
  const ApplierOptions options{.name = "n1", .max_sessions = 3};
  ApplierRig original(options);
  for (ClientId c = 1; c <= 5; ++c) apply_batch(original, {put_of(c, 1, "v")});
  ApplierRig restored(options);
  ASSERT_TRUE(restored.a.restore(original.a.snapshot()).ok());
  restored.next = original.next;
  // The same log from here: clients 3 and 6 arrive, 4 and 5 are the oldest.
  for (ApplierRig* r : {&original, &restored}) {
    apply_batch(*r, {put_of(3, 2, "w")});
    apply_batch(*r, {put_of(6, 1, "v")});
    apply_batch(*r, {put_of(4, 2, "w"), put_of(5, 2, "w")});
  }
  EXPECT_EQ(original.a.sessions(), 3u);
  EXPECT_EQ(restored.a.sessions(), 3u);
  // Which sessions are left shows in which clients' next ops run.
  for (ApplierRig* r : {&original, &restored}) {
    std::vector<ClientRequest> probe;
    for (ClientId c = 1; c <= 6; ++c) {
      probe.push_back(ClientRequest{c, 9, 0, OpKind::put, "k" + std::to_string(c), "probe"});
    }
    apply_batch(*r, probe);
  }
  EXPECT_TRUE(original.a.data() == restored.a.data());  // values and revisions
  EXPECT_EQ(original.a.revision(), restored.a.revision());
  EXPECT_EQ(original.a.data().at("k3").value, "probe");  // used most recently, with 6
  EXPECT_EQ(original.a.data().at("k6").value, "probe");
  EXPECT_EQ(original.a.data().at("k1").value, "v") << "evicted first";
}

TEST(Applier, ForwardedOpsAreValidatedLikeClientRequestsAndOnlyBadOnesDropped) {
  ApplierRig r;
  const std::string good = encode_op(KvOp::from(ClientRequest{5, 1, 0, OpKind::put, "k5", "v"}));
  const std::string also_good = encode_op(KvOp::from(ClientRequest{6, 1, 0, OpKind::get, "k", ""}));
  const std::vector<std::string> bad = {
      encode_op(KvOp::from(ClientRequest{7, 1, 0, OpKind::put, "k", "v"})) + "x",  // trailing byte
      encode_op(KvOp::from(ClientRequest{8, 0, 0, OpKind::put, "k", "v"})),        // seq 0
      encode_op(KvOp::from(ClientRequest{9, 2, 2, OpKind::put, "k", "v"})),        // ack >= seq
      encode_op(KvOp::from(ClientRequest{10, 1, 0, OpKind::put, std::string(kMaxKeyBytes + 1, 'k'), "v"})),
      encode_op(KvOp::from(ClientRequest{11, 1, 0, OpKind::get, "k", "value"})),   // get with value
      encode_op(KvOp::no_op()),
  };
  std::vector<std::string> ops = {good};
  ops.insert(ops.end(), bad.begin(), bad.end());
  ops.push_back(also_good);
  r.a.handle({1, Actor::applier}, ForwardOps{ops}, at(0), r.out);
  EXPECT_EQ(r.a.forwarded_ops_dropped(), bad.size());
  EXPECT_NE(r.a.last_forwarded_op_error().find("from node 1"), std::string::npos);
  auto proposals = sent<Propose>(r.out);
  ASSERT_EQ(proposals.size(), 1u);
  Result<LogEntry> entry = decode_entry(proposals[0].second.value);
  ASSERT_TRUE(entry.ok()) << entry.error();
  ASSERT_EQ(entry->ops.size(), 2u);
  EXPECT_EQ(entry->ops[0].client_id, 5u);
  EXPECT_EQ(entry->ops[1].client_id, 6u);
}

TEST(Applier, RepliesNameTheirClientAndSeqForTheFrontDoor) {
  ApplierRig r;
  r.request(put_of(4, 1, "v"));
  r.out.clear();
  apply_batch(r, {put_of(4, 1, "v")});
  const auto to_client = sent<ToClient>(r.out);
  ASSERT_EQ(to_client.size(), 1u);
  EXPECT_EQ(to_client[0].second.client_id, 4u);
  EXPECT_EQ(to_client[0].second.seq, 1u);
}

TEST(Applier, OpAcknowledgingAReplyItsSessionNeverGaveDoesNotRun) {
  // Client 1's session was evicted and started again by a late copy of its
  // seq 1; its seq 3 (ack 2) must not run in the new one: it may have run.
  ApplierRig r({.name = "n1", .max_sessions = 1});
  apply_batch(r, {put_of(1, 1, "a")});
  apply_batch(r, {put_of(1, 2, "b")});
  apply_batch(r, {put_of(2, 1, "x")});  // evicts client 1
  apply_batch(r, {put_of(1, 1, "a")});  // the late copy: a new session, last seq 1
  r.request(put_of(1, 3, "c"));
  r.out.clear();
  apply_batch(r, {put_of(1, 3, "c")});
  EXPECT_EQ(r.a.data().at("k1").value, "a");
  auto replies = r.replies();
  ASSERT_EQ(replies.size(), 1u);
  EXPECT_EQ(replies[0].code, ReplyCode::session_expired);
}

}  // namespace
}  // namespace kvpaxos
