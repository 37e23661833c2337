// Peer input that no correct node sends (docs/architecture.md, "Checks on
// peer input"): each check refuses it, counts it, and changes no state. A
// buggy, restarted or hostile-but-authenticated peer must not wedge the
// cluster, make a node work for a billion instances, or install its state.
#include <gtest/gtest.h>

#include <limits>
#include <optional>
#include <string>

#include "actors/paxos/acceptor.hpp"
#include "actors/kv/applier.hpp"
#include "actors/paxos/learner.hpp"
#include "actors/paxos/proposer.hpp"
#include "actors/storage/segmented_log.hpp"
#include "messages/codec.hpp"
#include "test/unit/actor_test_support.hpp"

namespace kvpaxos {
namespace {

using test_support::at;
using test_support::sent;

constexpr std::uint64_t kHugeRound = std::numeric_limits<std::uint64_t>::max();
constexpr NodeId kHugeNode = std::numeric_limits<NodeId>::max();

// What an acceptor of node 0 in a 3-node cluster answers a peer's message.
struct AcceptorRig {
  Acceptor a{/*self=*/0, /*cluster_size=*/3};
  Outbox out;
  void handle(NodeId from, Body body) { a.handle({from, Actor::proposer}, std::move(body), Time{}, out); }
};

// ------------------------------------------------------------------ acceptor

// The outsider's PrepareFrom at (2^64-1, 2^32-1) once wrapped every
// proposer's round to 0 and stopped the cluster for good.
TEST(Acceptor, RefusesBallotsAboveTheRoundLimit) {
  AcceptorRig r;
  r.handle(1, PrepareFrom{0, Ballot{kHugeRound, kHugeNode}, {}});
  r.handle(1, PrepareFrom{0, Ballot{kMaxBallotRound + 1, 1}, {}});
  r.handle(1, Prepare{3, Ballot{kMaxBallotRound + 1, 1}});
  r.handle(1, Accept{3, Ballot{kMaxBallotRound + 1, 1}, "v"});
  EXPECT_TRUE(r.out.empty());
  EXPECT_EQ(r.a.refused().round_above_max, 4u);
  EXPECT_TRUE(r.a.range_ballot().is_none());
  EXPECT_TRUE(r.a.promised_in(3).is_none());
  EXPECT_EQ(r.a.instances_held(), 0u);
  r.handle(1, Prepare{3, Ballot{kMaxBallotRound, 1}});  // the limit itself is a ballot
  ASSERT_EQ(sent<Promise>(r.out).size(), 1u);
  EXPECT_TRUE(sent<Promise>(r.out)[0].second.ok);
}

// An instance at 2^64-1 made join_info()'s bound wrap to 0: a node rebuilt
// with --join could then vote where its lost self had voted.
TEST(Acceptor, RefusesInstancesAboveTheLimitSoThatTheJoinBoundCannotWrap) {
  AcceptorRig r;
  ASSERT_TRUE(r.a.on_accept({5000, Ballot{1, 2}, "real"}).ok);
  r.handle(1, Prepare{~InstanceId{0}, Ballot{2, 1}});
  r.handle(1, Accept{kMaxInstance + 1, Ballot{2, 1}, "v"});
  r.handle(1, PrepareFrom{~InstanceId{0}, Ballot{2, 1}, {}});
  EXPECT_TRUE(r.out.empty());
  EXPECT_EQ(r.a.refused().instance_above_max, 3u);
  EXPECT_EQ(r.a.instances_held(), 1u);
  EXPECT_TRUE(r.a.range_ballot().is_none());
  EXPECT_EQ(r.a.join_info().instance_bound, 5001u);
}

TEST(Acceptor, RefusesBallotFromNonMember) {
  AcceptorRig r;
  r.handle(3, Prepare{1, Ballot{5, 3}});
  r.handle(7, Accept{1, Ballot{5, 7}, "v"});
  r.handle(3, PrepareFrom{0, Ballot{5, 3}, {}});
  EXPECT_TRUE(r.out.empty());
  EXPECT_EQ(r.a.refused().ballot_of_non_member, 3u);
  EXPECT_TRUE(r.a.promised_in(1).is_none());
  EXPECT_TRUE(r.a.range_ballot().is_none());
}

// Another node's ballot could carry a second value in one ballot and
// instance, and so choose two values.
TEST(Acceptor, RefusesABallotThatIsNotItsSenders) {
  AcceptorRig r;
  ASSERT_TRUE(r.a.on_prepare({1, Ballot{5, 1}}).ok);
  r.handle(2, Accept{1, Ballot{5, 1}, "forged"});
  r.handle(2, Prepare{2, Ballot{9, 1}});
  r.handle(2, PrepareFrom{0, Ballot{9, 1}, {}});
  EXPECT_TRUE(r.out.empty());
  EXPECT_EQ(r.a.refused().ballot_of_other_node, 3u);
  const Promise p = r.a.on_prepare({1, Ballot{6, 2}});
  EXPECT_TRUE(p.accepted_ballot.is_none()) << "the forged Accept was accepted";
  EXPECT_TRUE(r.a.promised_in(2).is_none());
  EXPECT_TRUE(r.a.range_ballot().is_none());
}

// The acceptor answers from the decided list by binary search: an unsorted
// list could leave out a value the proposer never listed.
TEST(Acceptor, RefusesAPrepareFromWithAnUnsortedOrOutOfRangeDecidedList) {
  AcceptorRig r;
  ASSERT_TRUE(r.a.on_accept({5, Ballot{1, 2}, "five"}).ok);
  r.handle(1, PrepareFrom{4, Ballot{3, 1}, {9, 5, 7}});
  r.handle(1, PrepareFrom{4, Ballot{3, 1}, {2, 6}});
  r.handle(1, PrepareFrom{4, Ballot{3, 1}, {6, 6}});
  EXPECT_TRUE(r.out.empty());
  EXPECT_EQ(r.a.refused().unsorted_decided, 3u);
  EXPECT_TRUE(r.a.range_ballot().is_none());
  r.handle(1, PrepareFrom{4, Ballot{3, 1}, {6, 7}});
  const auto promises = sent<PromiseFrom>(r.out);
  ASSERT_EQ(promises.size(), 1u);
  ASSERT_EQ(promises[0].second.accepted.size(), 1u);
  EXPECT_EQ(promises[0].second.accepted[0].value, "five");
}

// Only this node's learner knows what a majority is done with; a peer's
// ForgetBelow would make the acceptor answer "forgotten" where it must vote.
TEST(Acceptor, RefusesForgetBelowFromAPeer) {
  AcceptorRig r;
  ASSERT_TRUE(r.a.on_accept({5, Ballot{1, 2}, "five"}).ok);
  r.a.handle({1, Actor::learner}, ForgetBelow{1'000'000'000}, Time{}, r.out);
  EXPECT_EQ(r.a.refused().local_only_from_peer, 1u);
  EXPECT_EQ(r.a.forgotten_below(), 0u);
  EXPECT_EQ(r.a.instances_held(), 1u);
  r.a.handle({0, Actor::learner}, ForgetBelow{3}, Time{}, r.out);
  EXPECT_EQ(r.a.forgotten_below(), 3u) << "its own learner's is obeyed";
}

// A peer's JoinInfo reporting round 2^64-1 wrapped the rebuilt node's range
// promise to the zero ballot, which promises nothing.
TEST(Acceptor, RebuiltRangePromiseDoesNotWrapOnAHugeReportedRound) {
  Acceptor a(0, 3);
  a.start_rebuilt(10, kHugeRound);
  EXPECT_EQ(a.range_ballot(), (Ballot{kMaxBallotRound, 0}));
  EXPECT_FALSE(a.on_prepare({12, Ballot{kMaxBallotRound - 1, 1}}).ok);
}

// ------------------------------------------------------------------ proposer

// Basic Paxos, node 1 of 3.
struct ProposerRig {
  Proposer p{/*self=*/1, ConfigHistory::fixed(3), /*seed=*/7, ProposerOptions{.multi_paxos = false}};
  Outbox out;
  void handle(NodeId from, Body body, int ms) {
    p.handle({from, Actor::acceptor}, std::move(body), at(ms), out);
  }
  Ballot propose(InstanceId instance, int ms) {
    p.handle({1, Actor::applier}, Propose{instance, "v"}, at(ms), out);
    const auto prepares = sent<Prepare>(out);
    out.clear();
    return prepares.empty() ? Ballot{} : prepares.back().second.ballot;
  }
};

TEST(Proposer, RoundSaturatesInsteadOfWrapping) {
  ProposerRig r;
  r.p.raise_round(kMaxBallotRound - 1);
  const Ballot b = r.propose(0, 0);
  EXPECT_EQ(b, (Ballot{kMaxBallotRound, 1}));
  r.handle(0, Promise{0, b, false, Ballot{kMaxBallotRound, 2}, {}, {}, false}, 1);
  r.p.tick(at(5000), r.out);
  EXPECT_TRUE(sent<Prepare>(r.out).empty()) << "a round past the limit, or a wrapped one";
  EXPECT_GE(r.p.refused().rounds_exhausted, 1u);
  EXPECT_EQ(r.p.join_info().max_round, kMaxBallotRound);
  EXPECT_EQ(r.p.active_instances(), 1u) << "the attempt waits; it is not dropped";
}

TEST(Proposer, DoesNotJumpToAPromisedBallotAboveTheRoundLimit) {
  ProposerRig r;
  const Ballot b = r.propose(0, 0);
  r.handle(0, Promise{0, b, false, Ballot{kHugeRound, kHugeNode}, {}, {}, false}, 1);
  EXPECT_EQ(r.p.refused().round_above_max, 1u);
  EXPECT_EQ(r.p.join_info().max_round, b.round);
  r.p.tick(at(5000), r.out);
  const auto retry = sent<Prepare>(r.out);
  ASSERT_FALSE(retry.empty());
  EXPECT_EQ(retry[0].second.ballot, (Ballot{b.round + 1, 1}));
}

TEST(Proposer, RaisedRoundIsClampedToTheLimit) {
  ProposerRig r;
  r.p.raise_round(kHugeRound);  // a JoinInfo's max_round
  EXPECT_EQ(r.p.join_info().max_round, kMaxBallotRound);
  EXPECT_TRUE(r.propose(0, 0).is_none()) << "no ballot is left, and none wraps";
}

// A correct acceptor promises a ballot only above everything it accepted.
TEST(Proposer, IgnoresAPromiseReportingAValueAcceptedAtItsBallotOrAbove) {
  ProposerRig r;
  const Ballot b = r.propose(0, 0);
  r.handle(0, Promise{0, b, true, b, b, "at our ballot", false}, 1);
  r.handle(2, Promise{0, b, true, b, Ballot{b.round + 1, 0}, "above it", false}, 1);
  EXPECT_TRUE(sent<Accept>(r.out).empty()) << "two promises counted";
  EXPECT_EQ(r.p.refused().accepted_at_or_above_ballot, 2u);
  r.handle(1, Promise{0, b, true, b, {}, {}, false}, 1);
  r.handle(2, Promise{0, b, true, b, {}, {}, false}, 1);
  const auto accepts = sent<Accept>(r.out);
  ASSERT_EQ(accepts.size(), 3u);
  EXPECT_EQ(accepts[0].second.value, "v");
}

TEST(Proposer, IgnoresAPromiseFromReportingAValueAcceptedAtItsBallot) {
  Proposer p{/*self=*/1, ConfigHistory::fixed(3), /*seed=*/7};
  Outbox out;
  p.handle({1, Actor::applier}, Propose{4, "mine"}, at(0), out);
  const Ballot b = sent<PrepareFrom>(out).at(0).second.ballot;
  out.clear();
  p.handle({0, Actor::acceptor}, PromiseFrom{4, b, true, b, {{4, b, "forged"}}}, at(1), out);
  p.handle({2, Actor::acceptor}, PromiseFrom{4, b, true, b, {}}, at(1), out);
  EXPECT_FALSE(p.leading()) << "the faulty promise was counted";
  EXPECT_EQ(p.refused().accepted_at_or_above_ballot, 1u);
  p.handle({1, Actor::acceptor}, PromiseFrom{4, b, true, b, {}}, at(1), out);
  ASSERT_TRUE(p.leading());
  for (const auto& [to, m] : sent<Accept>(out)) EXPECT_EQ(m.value, "mine");
}

// Propose, Learned and ForgetBelow come from this node's applier, learner or
// control handle: a peer's would make the proposer work, stop or forget.
TEST(Proposer, IgnoresLocalOnlyMessagesFromPeers) {
  ProposerRig r;
  r.p.handle({2, Actor::applier}, Propose{1'000'000'000, "theirs"}, at(0), r.out);
  EXPECT_TRUE(r.out.empty());
  EXPECT_EQ(r.p.active_instances(), 0u);
  r.propose(5, 0);
  r.p.handle({2, Actor::learner}, Learned{5}, at(1), r.out);
  r.p.handle({2, Actor::learner}, ForgetBelow{1'000'000'000}, at(1), r.out);
  EXPECT_EQ(r.p.active_instances(), 1u);
  EXPECT_EQ(r.p.refused().local_only_from_peer, 3u);
  EXPECT_EQ(r.p.join_info().instance_bound, 6u);
}

// ------------------------------------------------------------------- learner

// A Decided for instance 10^9, stored, moved decided_below there, and the
// applier ground through the gap with no-ops at five instances a second.
TEST(Learner, DefersADecidedFarAheadOfItsLogToCatchUp) {
  Learner l(0, ConfigHistory::fixed(3));
  Outbox out;
  l.handle({1, Actor::proposer}, Decided{1'000'000'000, "far"}, at(0), out);
  l.handle({1, Actor::proposer}, Decided{4096, "just past the window"}, at(0), out);
  EXPECT_EQ(l.refused().decided_far_ahead, 2u);
  EXPECT_EQ(l.decided_below(), 0u);
  EXPECT_EQ(l.instances_held(), 0u);
  EXPECT_TRUE(sent<Learned>(out).empty());
  l.handle({1, Actor::proposer}, Decided{4095, "inside it"}, at(0), out);
  EXPECT_EQ(l.decided_below(), 4096u);
  // The window moves with the log.
  for (InstanceId i = 0; i < 10; ++i) l.handle({1, Actor::proposer}, Decided{i, "v"}, at(0), out);
  l.handle({1, Actor::proposer}, Decided{4105, "inside now"}, at(0), out);
  EXPECT_EQ(l.decided_below(), 4106u);
  EXPECT_EQ(l.refused().decided_far_ahead, 2u);
}

// This node's own proposer decides only what its applier asked for, a
// pipeline past decided_below; a leader that dropped its own decisions
// would wait for them with nobody to fill the hole.
TEST(Learner, TakesItsOwnProposersDecisionsPastTheWindow) {
  Learner l(0, ConfigHistory::fixed(3));
  Outbox out;
  l.handle({0, Actor::proposer}, Decided{5000, "mine"}, at(0), out);
  EXPECT_EQ(l.decided_below(), 5001u);
  EXPECT_EQ(l.refused().decided_far_ahead, 0u);
  ASSERT_EQ(sent<Learned>(out).size(), 1u);
}

// Without an applier (the PaxosPeer library) the application picks the
// instances, and any gap is legitimate.
TEST(Learner, TheLibraryLearnerTakesDecisionsAnywhere) {
  Learner l(0, ConfigHistory::fixed(3), LearnerOptions{.deliver_to_applier = false});
  Outbox out;
  l.handle({1, Actor::proposer}, Decided{1'000'000, "far"}, at(0), out);
  EXPECT_EQ(l.decided_below(), 1'000'001u);
  EXPECT_EQ(l.refused().decided_far_ahead, 0u);
}

// A learner holding 300 values of 100 KiB; `requests` asks for all of them.
struct CatchUpRig {
  Learner l{0, ConfigHistory::fixed(3)};
  Outbox out;
  CatchUpRequest all;
  CatchUpRig() {
    for (InstanceId i = 0; i < 300; ++i) {
      l.handle({0, Actor::proposer}, Decided{i, std::string(100 * 1024, 'x')}, at(0), out);
      all.instances.push_back(i);
    }
    out.clear();
  }
  std::vector<std::pair<Address, Decided>> ask(NodeId from, int ms) {
    out.clear();
    l.handle({from, Actor::learner}, all, at(ms), out);
    return sent<Decided>(out);
  }
};

TEST(Learner, CatchUpAnswerIsBounded) {
  CatchUpRig r;
  const auto answer = r.ask(1, 0);
  std::size_t bytes = 0;
  for (const auto& [to, d] : answer) {
    EXPECT_EQ(to, (Address{1, Actor::learner}));
    bytes += d.value.size();
  }
  EXPECT_EQ(answer.size(), 40u) << "4 MiB of 100 KiB values";
  EXPECT_LE(bytes, 4u << 20);
  EXPECT_TRUE(r.ask(1, 10).empty()) << "answered twice within half an interval";
  EXPECT_EQ(r.l.refused().catch_up_too_often, 1u);
  EXPECT_EQ(r.ask(2, 10).size(), 40u) << "each peer has its own allowance";
  EXPECT_EQ(r.ask(1, 25).size(), 40u);
}

TEST(Learner, CatchUpAnswerCarriesOneValueLargerThanTheBound) {
  Learner l(0, ConfigHistory::fixed(3));
  Outbox out;
  l.handle({0, Actor::proposer}, Decided{0, std::string(kMaxValueBytes, 'x')}, at(0), out);
  l.handle({0, Actor::proposer}, Decided{1, "small"}, at(0), out);
  out.clear();
  l.handle({1, Actor::learner}, CatchUpRequest{{0, 1}}, at(0), out);
  const auto answer = sent<Decided>(out);
  ASSERT_EQ(answer.size(), 1u);
  EXPECT_EQ(answer[0].second.instance, 0u);
}

// The bounded answers still bring a lagging learner all the way: it asks
// again for what is missing, every catch_up_interval.
TEST(Learner, CatchUpConvergesInBoundedAnswers) {
  CatchUpRig source;
  Learner lagging(1, ConfigHistory::fixed(3));
  Outbox out;
  lagging.handle({1, Actor::peer_link}, PeerProgress{0, 0, 300, 0}, at(0), out);
  int rounds = 0;
  for (int ms = 100; lagging.next_deliver() < 300 && ms < 100'000; ms += 50, ++rounds) {
    out.clear();
    lagging.tick(at(ms), out);
    for (const auto& [to, request] : sent<CatchUpRequest>(out)) {
      ASSERT_EQ(to, (Address{0, Actor::learner}));
      source.out.clear();
      source.l.handle({1, Actor::learner}, request, at(ms), source.out);
      for (const auto& [back, d] : sent<Decided>(source.out)) {
        lagging.handle({0, Actor::learner}, d, at(ms), out);
      }
    }
  }
  EXPECT_EQ(lagging.next_deliver(), 300u);
  EXPECT_EQ(rounds, 8) << "40 values per answer";
}

TEST(Learner, IgnoresLocalOnlyMessagesFromPeers) {
  Learner l(0, ConfigHistory::fixed(3), LearnerOptions{.forget_with_majority = true});
  Outbox out;
  l.handle({1, Actor::applier}, LocalDone{1'000'000'000}, at(0), out);
  l.handle({1, Actor::peer_link}, PeerProgress{2, 1'000'000'000, 1'000'000'000, 0}, at(0), out);
  l.handle({1, Actor::applier}, SnapshotInstalled{1'000'000'000}, at(0), out);
  l.handle({1, Actor::control}, InstanceQuery{1, 0}, at(0), out);
  EXPECT_EQ(l.refused().local_only_from_peer, 4u);
  EXPECT_EQ(l.forget_below(), 0u);
  EXPECT_EQ(l.next_deliver(), 0u);
  EXPECT_EQ(l.held_from(), 0u);
  EXPECT_EQ(l.peer_decided_below(2), 0u);
  EXPECT_TRUE(sent<InstanceReport>(out).empty());
  EXPECT_TRUE(sent<ForgetBelow>(out).empty());
}

// ------------------------------------------------------------------- applier

std::string put_op(ClientId client, const std::string& key, const std::string& value) {
  return encode_op(KvOp::from(ClientRequest{client, 1, 0, OpKind::put, key, value}));
}

// Only snapshot transfer and ForwardOps come from other nodes' appliers; a
// peer's Apply would change the state outside the log, its LearnerProgress
// open a gap for no-ops.
TEST(Applier, IgnoresLocalOnlyMessagesFromPeers) {
  Applier a(0, ApplierOptions{.name = "n1"});
  Outbox out;
  a.tick(at(0), out);  // its start: the ConfigUpdates to its own Paxos actors
  out.clear();
  a.handle({1, Actor::learner}, Apply{0, put_op(9, "k", "theirs")}, at(0), out);
  a.handle({1, Actor::learner}, LearnerProgress{0, 1'000'000'000}, at(0), out);
  a.handle({1, Actor::learner}, SnapshotNeeded{1'000'000'000, 1}, at(0), out);
  a.handle({1, Actor::front_door}, FromClient{"r", ClientRequest{9, 1, 0, OpKind::put, "k", "v"}},
           at(0), out);
  EXPECT_EQ(a.refused().local_only_from_peer, 4u);
  EXPECT_TRUE(out.empty());
  EXPECT_TRUE(a.data().empty());
  EXPECT_EQ(a.applied_below(), 0u);
  a.handle({0, Actor::front_door}, FromClient{"r", ClientRequest{9, 1, 0, OpKind::put, "k", "v"}},
           at(0), out);
  const auto proposals = sent<Propose>(out);
  ASSERT_EQ(proposals.size(), 1u);
  EXPECT_EQ(proposals[0].second.instance, 0u) << "the peer's LearnerProgress moved the log";
}

// A Decided far ahead (within the learner's window) leaves thousands of holes:
// the no-op batches double while the head stays a hole, so the gap closes in
// rounds, not in one no-op per hole_timeout. A single hole costs one no-op.
TEST(Applier, FillsALongRunOfHolesInGrowingBatches) {
  // A window wider than the run: only the doubling bounds the batches here
  // (ApplierMembership.HoleFillsStopAtTheWindow has the window's bound).
  Applier a(0, ApplierOptions{.name = "n1", .config = ConfigState::fixed(3, 8192)});
  Outbox out;
  a.handle({0, Actor::learner}, LearnerProgress{0, 4096}, at(0), out);
  std::vector<std::size_t> batches;
  InstanceId applied = 0;
  for (int ms = 1000; applied < 4096 && ms < 100'000; ms += 1000) {
    out.clear();
    a.tick(at(ms), out);
    const auto proposals = sent<Propose>(out);
    batches.push_back(proposals.size());
    for (const auto& [to, p] : proposals) {
      ASSERT_EQ(p.instance, applied);
      a.handle({0, Actor::learner}, Apply{applied++, p.value}, at(ms), out);
    }
  }
  EXPECT_EQ(applied, 4096u);
  ASSERT_GE(batches.size(), 10u);
  EXPECT_EQ(batches[0], 1u);
  EXPECT_EQ(batches[1], 2u);
  EXPECT_EQ(batches[8], 256u);
  EXPECT_EQ(batches.size(), 24u) << "511 in 9 doubling rounds, then 256 a round";
}

// A fetching applier (n1, behind) and a serving one (n2, 50 instances
// applied), with 64-byte chunks so that a snapshot takes several.
struct SnapshotRig {
  Applier fetcher{0, ApplierOptions{.name = "n1"}};
  Applier server{1, ApplierOptions{.name = "n2", .snapshot_chunk_bytes = 64}};
  Outbox out;
  SnapshotRig() {
    for (InstanceId i = 0; i < 50; ++i) {
      server.handle({1, Actor::learner}, Apply{i, put_op(100 + i, "k" + std::to_string(i), "v")},
                    at(0), out);
    }
    out.clear();
  }
  // The fetcher starts a transfer from n2; returns its first request.
  SnapshotRequest start(int ms = 0) {
    out.clear();
    fetcher.handle({0, Actor::learner}, SnapshotNeeded{50, 1}, at(ms), out);
    return sent<SnapshotRequest>(out).at(0).second;
  }
  SnapshotChunk serve(const SnapshotRequest& r) {
    Outbox served;
    server.handle({0, Actor::applier}, r, at(0), served);
    return sent<SnapshotChunk>(served).at(0).second;
  }
  // Hands the fetcher `chunk` from `from`; returns its next request, if any.
  std::optional<SnapshotRequest> give(const SnapshotChunk& chunk, NodeId from = 1) {
    out.clear();
    fetcher.handle({from, Actor::applier}, chunk, at(0), out);
    const auto requests = sent<SnapshotRequest>(out);
    if (requests.empty()) return std::nullopt;
    return requests[0].second;
  }
  // Serves every request until the transfer ends.
  void finish(SnapshotRequest r) {
    for (int i = 0; i < 1000; ++i) {
      std::optional<SnapshotRequest> next = give(serve(r));
      if (!next) return;
      r = *next;
    }
  }
};

TEST(Applier, InstallsASnapshotSentInChunks) {
  SnapshotRig r;
  r.finish(r.start());
  EXPECT_EQ(r.fetcher.snapshots_installed(), 1u);
  EXPECT_EQ(r.fetcher.applied_below(), 50u);
  EXPECT_EQ(r.fetcher.data(), r.server.data());
  EXPECT_EQ(r.fetcher.refused().total(), 0u);
}

TEST(Applier, IgnoresSnapshotChunkFromPeerNotAsked) {
  SnapshotRig r;
  const SnapshotChunk first = r.serve(SnapshotRequest{0, 0});
  EXPECT_FALSE(r.give(first).has_value()) << "no transfer runs";
  const SnapshotRequest asked = r.start();
  EXPECT_FALSE(r.give(first, /*from=*/2).has_value()) << "n3 was not asked";
  EXPECT_EQ(r.fetcher.refused().chunk_not_asked, 2u);
  EXPECT_EQ(r.fetcher.applied_below(), 0u);
  r.finish(asked);
  EXPECT_EQ(r.fetcher.applied_below(), 50u) << "the transfer from n2 was disturbed";
}

TEST(Applier, TakesOnlyTheNextByteOfTheSnapshotAsked) {
  SnapshotRig r;
  const SnapshotRequest asked = r.start();
  SnapshotChunk skipped = r.serve(SnapshotRequest{50, 128});
  EXPECT_FALSE(r.give(skipped).has_value()) << "a chunk that skips bytes was taken";
  const std::optional<SnapshotRequest> second = r.give(r.serve(asked));
  ASSERT_TRUE(second.has_value());
  EXPECT_EQ(second->instance, 50u) << "the first chunk names the snapshot";
  EXPECT_EQ(second->offset, 64u);
  SnapshotChunk older = r.serve(*second);
  older.instance = 40;
  older.offset = 0;
  EXPECT_FALSE(r.give(older).has_value()) << "an older snapshot restarted the transfer";
  EXPECT_FALSE(r.give(r.serve(SnapshotRequest{50, 0})).has_value()) << "a duplicate first chunk";
  EXPECT_EQ(r.fetcher.refused().chunk_stale, 3u);
  r.finish(*second);
  EXPECT_EQ(r.fetcher.applied_below(), 50u);
}

TEST(Applier, RefusesASnapshotChunkWhoseSizeOrCrcChangesMidTransfer) {
  SnapshotRig r;
  const std::optional<SnapshotRequest> second = r.give(r.serve(r.start()));
  ASSERT_TRUE(second.has_value());
  SnapshotChunk grown = r.serve(*second);
  grown.total_bytes += 64;
  EXPECT_FALSE(r.give(grown).has_value());
  SnapshotChunk other_crc = r.serve(*second);
  other_crc.crc ^= 1;
  EXPECT_FALSE(r.give(other_crc).has_value());
  EXPECT_EQ(r.fetcher.refused().chunk_changed, 2u);
  r.finish(*second);
  EXPECT_EQ(r.fetcher.applied_below(), 50u);
}

TEST(Applier, RefusesSnapshotChunksOutOfBounds) {
  SnapshotRig r;
  const SnapshotRequest asked = r.start();
  const SnapshotChunk good = r.serve(asked);
  SnapshotChunk huge = good;
  huge.total_bytes = kMaxSnapshotBytes + 1;
  SnapshotChunk fat = good;
  fat.total_bytes = 64ull << 20;
  fat.data.assign(kMaxSnapshotChunkBytes + 1, 'x');
  SnapshotChunk overflowing = good;
  overflowing.total_bytes = good.data.size() - 1;
  SnapshotChunk wrapping = good;
  wrapping.offset = ~std::uint64_t{0} - 2;
  SnapshotChunk empty = good;
  empty.data.clear();
  for (const SnapshotChunk& bad : {huge, fat, overflowing, wrapping, empty}) {
    EXPECT_FALSE(r.give(bad).has_value());
  }
  EXPECT_EQ(r.fetcher.refused().chunk_malformed, 5u);
  r.finish(asked);
  EXPECT_EQ(r.fetcher.applied_below(), 50u);
}

// Installing a snapshot at or below what is applied would apply instances twice.
TEST(Applier, NeverInstallsASnapshotAtOrBelowWhatItApplied) {
  SnapshotRig r;
  for (InstanceId i = 0; i < 60; ++i) {
    r.fetcher.handle({0, Actor::learner}, Apply{i, put_op(1000 + i, "mine", std::to_string(i))}, at(0),
                     r.out);
  }
  r.out.clear();
  r.fetcher.handle({0, Actor::learner}, SnapshotNeeded{70, 1}, at(0), r.out);
  const auto asked = sent<SnapshotRequest>(r.out);
  ASSERT_EQ(asked.size(), 1u);
  EXPECT_FALSE(r.give(r.serve(asked[0].second)).has_value());
  EXPECT_EQ(r.fetcher.refused().chunk_not_newer, 1u);
  EXPECT_EQ(r.fetcher.applied_below(), 60u);
  EXPECT_EQ(r.fetcher.data().at("mine").value, "59");
  EXPECT_EQ(r.fetcher.snapshots_installed(), 0u);
}

// A snapshot whose chunks name instance 70 but whose content covers 50 (its
// crc right) once replaced the state before the mismatch was noticed.
TEST(Applier, RejectsAWholeSnapshotWhoseContentIsNotTheInstanceNamed) {
  SnapshotRig r;
  r.fetcher.handle({0, Actor::learner}, Apply{0, put_op(7, "mine", "kept")}, at(0), r.out);
  const std::string bytes = r.server.snapshot();
  const SnapshotRequest asked = r.start();
  ASSERT_EQ(asked.offset, 0u);
  SnapshotChunk whole{70, bytes.size(), 0, crc32c(bytes), bytes};
  EXPECT_FALSE(r.give(whole).has_value());
  EXPECT_EQ(r.fetcher.refused().snapshot_rejected, 1u);
  EXPECT_EQ(r.fetcher.snapshots_installed(), 0u);
  EXPECT_EQ(r.fetcher.applied_below(), 1u);
  EXPECT_EQ(r.fetcher.data().size(), 1u);
  EXPECT_EQ(r.fetcher.data().at("mine").value, "kept");
  EXPECT_TRUE(sent<SnapshotInstalled>(r.out).empty());
}

TEST(Applier, RejectsASnapshotThatFailsItsChecksum) {
  SnapshotRig r;
  const std::string bytes = r.server.snapshot();
  r.start();
  SnapshotChunk whole{50, bytes.size(), 0, crc32c(bytes) ^ 1, bytes};
  EXPECT_FALSE(r.give(whole).has_value());
  EXPECT_EQ(r.fetcher.refused().snapshot_rejected, 1u);
  EXPECT_EQ(r.fetcher.applied_below(), 0u);
  EXPECT_TRUE(r.fetcher.data().empty());
}

}  // namespace
}  // namespace kvpaxos
