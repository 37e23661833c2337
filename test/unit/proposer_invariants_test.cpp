// Proposer::check_invariants() after every step of the proposer's protocol:
// campaigns, leading, basic Paxos, rejections, duplicates and forged replies,
// learning and forgetting. Each step must leave the state consistent, and
// the highest round the proposer knows must never go down.
#include <gtest/gtest.h>

#include <random>

#include "actors/paxos/proposer.hpp"
#include "actor_test_support.hpp"

namespace kvpaxos {
namespace {

using test_support::at;
using test_support::sent;

// Node 1 of 3; every step is checked.
class CheckedProposer {
 public:
  explicit CheckedProposer(ProposerOptions options = {}) : p_(1, ConfigHistory::fixed(3), 42, options) {}

  void handle(NodeId from, Actor actor, Body body, int ms) {
    p_.handle({from, actor}, std::move(body), at(ms), out_);
    check("handling a message at " + std::to_string(ms) + " ms");
  }
  void from_acceptor(NodeId from, Body body, int ms) {
    handle(from, Actor::acceptor, std::move(body), ms);
  }
  void local(Body body, int ms) { handle(1, Actor::applier, std::move(body), ms); }
  void tick(int ms) {
    p_.tick(at(ms), out_);
    check("tick at " + std::to_string(ms) + " ms");
  }
  Proposer& proposer() { return p_; }
  Outbox take() { return std::exchange(out_, {}); }

 private:
  void check(const std::string& step) {
    EXPECT_EQ(p_.check_invariants(), "") << "after " << step;
    const std::uint64_t round = p_.join_info().max_round;
    EXPECT_GE(round, round_) << "the round went down, after " << step;
    round_ = round;
  }

  Proposer p_;
  Outbox out_;
  std::uint64_t round_ = 0;
};

Ballot range_ballot(const Outbox& out) {
  const auto prepares = sent<PrepareFrom>(out);
  EXPECT_FALSE(prepares.empty());
  return prepares.empty() ? Ballot{} : prepares[0].second.ballot;
}

TEST(ProposerInvariants, HoldThroughACampaignLeadingAndDecisions) {
  CheckedProposer c;
  c.local(Propose{4, "four"}, 0);
  const Ballot b = range_ballot(c.take());
  c.from_acceptor(0, PromiseFrom{4, b, true, b, {{5, Ballot{}, "x"}}}, 1);
  c.from_acceptor(0, PromiseFrom{4, b, true, b, {}}, 1);  // a duplicate
  c.from_acceptor(2, PromiseFrom{4, b, true, b, {}}, 1);
  EXPECT_TRUE(c.proposer().leading());
  c.local(Propose{5, "five"}, 2);
  c.from_acceptor(0, Accepted{4, b, true, b, false}, 3);
  c.from_acceptor(2, Accepted{4, b, true, b, false}, 3);
  EXPECT_EQ(sent<Decided>(c.take()).size(), 3u);
  c.local(Learned{4}, 4);
  c.local(Propose{4, "again"}, 5);  // learned already: basic Paxos
  c.tick(10'000);
  c.local(ForgetBelow{5}, 10'001);
  EXPECT_EQ(c.proposer().active_instances(), 1u);
}

TEST(ProposerInvariants, HoldThroughRejectionsAndRetries) {
  CheckedProposer c;
  c.local(Propose{0, "v"}, 0);
  const Ballot b = range_ballot(c.take());
  c.from_acceptor(0, PromiseFrom{0, b, false, Ballot{50, 2}, {}}, 1);
  c.tick(5'000);
  const Ballot retry = range_ballot(c.take());
  EXPECT_GT(retry.round, 50u);
  c.from_acceptor(0, PromiseFrom{0, retry, true, retry, {}}, 5'001);
  c.from_acceptor(2, PromiseFrom{0, retry, true, retry, {}}, 5'001);
  c.from_acceptor(0, Accepted{0, retry, false, Ballot{90, 0}, false}, 5'002);
  EXPECT_FALSE(c.proposer().leading());
  c.tick(20'000);
  EXPECT_GT(c.proposer().join_info().max_round, 90u);
}

TEST(ProposerInvariants, HoldInBasicPaxos) {
  CheckedProposer c(ProposerOptions{.multi_paxos = false});
  c.local(Propose{3, "mine"}, 0);
  const Ballot b = sent<Prepare>(c.take()).at(0).second.ballot;
  c.from_acceptor(0, Promise{3, b, true, b, {}, {}, false}, 1);
  c.from_acceptor(2, Promise{3, b, true, b, {}, {}, false}, 1);
  c.from_acceptor(0, Accepted{3, b, true, b, false}, 2);
  c.from_acceptor(2, Promise{3, b, true, b, {}, {}, false}, 2);  // late: phase 2 runs
  c.from_acceptor(1, Accepted{3, b, true, b, false}, 2);
  EXPECT_EQ(c.proposer().active_instances(), 0u);
  c.local(Propose{7, "seven"}, 3);
  c.from_acceptor(0, Promise{7, Ballot{}, true, Ballot{}, {}, {}, true}, 4);  // forgotten there
  EXPECT_EQ(c.proposer().active_instances(), 0u);
}

// What no correct node sends: replies from outside the cluster, for ballots
// never issued, rounds past the limit, local messages from a peer.
TEST(ProposerInvariants, HoldWhateverThePeersSend) {
  CheckedProposer c;
  c.local(Propose{2, "v"}, 0);
  const Ballot b = range_ballot(c.take());
  c.from_acceptor(7, PromiseFrom{2, b, true, b, {}}, 1);
  c.from_acceptor(0, PromiseFrom{2, Ballot{9, 0}, true, Ballot{9, 0}, {}}, 1);
  c.from_acceptor(0, PromiseFrom{2, b, false, Ballot{kMaxBallotRound + 5, 2}, {}}, 1);
  c.from_acceptor(0, PromiseFrom{2, b, true, b, {{2, Ballot{b.round + 1, 2}, "bad"}}}, 1);
  c.handle(2, Actor::proposer, ForgetBelow{100}, 2);
  c.handle(2, Actor::learner, Propose{3, "peer"}, 2);
  c.from_acceptor(0, Accepted{2, b, true, b, false}, 3);
  c.from_acceptor(63, Accepted{2, b, true, b, false}, 3);
  EXPECT_FALSE(c.proposer().leading());
  EXPECT_GT(c.proposer().refused().total(), 0u);
}

// Random interleavings of every input above, from a fixed seed.
TEST(ProposerInvariants, HoldThroughRandomSteps) {
  for (std::uint64_t seed = 1; seed <= 20; ++seed) {
    SCOPED_TRACE("seed " + std::to_string(seed));
    CheckedProposer c(ProposerOptions{.multi_paxos = seed % 3 != 0});
    std::mt19937_64 rng(seed);
    std::vector<Ballot> seen = {Ballot{}};
    int ms = 0;
    for (int step = 0; step < 400; ++step) {
      ms += static_cast<int>(rng() % 30);
      const auto instance = static_cast<InstanceId>(rng() % 12);
      const auto node = static_cast<NodeId>(rng() % 3);
      const Ballot b = seen[rng() % seen.size()];
      const Ballot higher{b.round + rng() % 3, static_cast<NodeId>(rng() % 3)};
      switch (rng() % 8) {
        case 0: c.local(Propose{instance, "v" + std::to_string(step)}, ms); break;
        case 1: c.from_acceptor(node, Promise{instance, b, rng() % 4 != 0, higher, {}, {}, false}, ms); break;
        case 2: c.from_acceptor(node, PromiseFrom{instance % 4, b, rng() % 4 != 0, higher, {}}, ms); break;
        case 3: c.from_acceptor(node, Accepted{instance, b, rng() % 4 != 0, higher, false}, ms); break;
        case 4: c.local(Learned{instance}, ms); break;
        case 5: if (rng() % 8 == 0) c.local(ForgetBelow{instance / 2}, ms); break;
        default: c.tick(ms); break;
      }
      for (const Outbound& m : c.take()) {
        if (const auto* p = std::get_if<Prepare>(&m.body)) seen.push_back(p->ballot);
        if (const auto* p = std::get_if<PrepareFrom>(&m.body)) seen.push_back(p->ballot);
      }
    }
  }
}

}  // namespace
}  // namespace kvpaxos
