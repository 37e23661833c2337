// PeerLink follows the configuration: peers by member id, replaced by the
// applier's ConfigUpdate (actors/net/peer_link.hpp, "Membership").
#include <gtest/gtest.h>

#include <set>

#include "actor_test_support.hpp"
#include "actors/net/peer_link.hpp"

namespace kvpaxos {
namespace {

using test_support::at;
using test_support::sent;

MemberEntry member(NodeId id, std::string name, MemberRole role = MemberRole::voter) {
  return MemberEntry{.id = id, .name = std::move(name),
                     .peer_endpoint = "tcp://127.0.0.1:" + std::to_string(7100 + id), .role = role};
}

ConfigHistory history(std::vector<ConfigAt> entries) { return ConfigHistory{std::move(entries), 64}; }

std::optional<PeerFrame> from(PeerLink& link, NodeId sender, Time now, Outbox& out) {
  return link.inbound(PeerFrame{FrameHeader{{0, Actor::acceptor}, {sender, Actor::proposer}, 1, 1, 0},
                                encode(Heartbeat{})},
                      now, out);
}

std::optional<PeerFrame> to(PeerLink& link, NodeId receiver, Time now) {
  return link.outbound(PeerFrame{FrameHeader{{receiver, Actor::acceptor}, {0, Actor::proposer}, 0, 0, 0},
                                 encode(Heartbeat{})},
                       now);
}

TEST(PeerLinkMembership, ANewMemberIsReachedAndARemovedOneIsNeitherReachedNorHeard) {
  const Config first{0, {member(0, "n1"), member(1, "n2"), member(2, "n3")}};
  PeerLink link(0, history({{0, first}}), 1);
  const std::uint64_t before = link.members_generation();
  Outbox out;
  EXPECT_FALSE(from(link, 3, at(0), out).has_value());
  EXPECT_EQ(link.refused().not_a_member, 1u);
  EXPECT_FALSE(to(link, 3, at(0)).has_value());

  // n4 added as a learner at epoch 1; n3 removed from instance 200 on: while
  // instances below 200 may still run here, n3 is a member.
  const Config second{1, {member(0, "n1"), member(1, "n2"), member(2, "n3"), member(3, "n4", MemberRole::learner)}};
  const Config third{2, {member(0, "n1"), member(1, "n2"), member(3, "n4", MemberRole::learner)}};
  link.handle({0, Actor::applier}, ConfigUpdate{history({{0, second}, {200, third}}), 64}, at(1), out);
  EXPECT_NE(link.members_generation(), before);
  EXPECT_EQ(link.members().size(), 3u);
  EXPECT_EQ(link.members().at(3).endpoint, "tcp://127.0.0.1:7103");
  EXPECT_TRUE(from(link, 3, at(2), out).has_value());
  EXPECT_TRUE(to(link, 3, at(2)).has_value());
  EXPECT_TRUE(from(link, 2, at(2), out).has_value());

  // Once the removal governs every instance left here, n3 is gone.
  link.handle({0, Actor::applier}, ConfigUpdate{history({{200, third}}), 264}, at(3), out);
  EXPECT_FALSE(link.is_member(2));
  EXPECT_FALSE(from(link, 2, at(4), out).has_value());
  EXPECT_FALSE(to(link, 2, at(4)).has_value());
  EXPECT_EQ(link.refused().not_a_member, 2u);
  EXPECT_EQ(link.members().count(2), 0u);
}

TEST(PeerLinkMembership, AConfigUpdateFromAPeerChangesNothing) {
  const Config first{0, {member(0, "n1"), member(1, "n2"), member(2, "n3")}};
  PeerLink link(0, history({{0, first}}), 1);
  Outbox out;
  const Config without_n2{1, {member(0, "n1"), member(2, "n3")}};
  link.handle({1, Actor::applier}, ConfigUpdate{history({{0, without_n2}}), 64}, at(0), out);
  EXPECT_TRUE(link.is_member(1));
}

TEST(PeerLinkMembership, AFaultReachSetAppliesToMembersThatJoinLater) {
  const Config first{0, {member(0, "n1"), member(1, "n2"), member(2, "n3")}};
  PeerLink link(0, history({{0, first}}), 1);
  Outbox out;
  FaultRequest cut{.set_reach = true, .reach_all = false, .reach = {"n2"}};
  link.handle({0, Actor::front_door}, FaultFromClient{"", cut}, at(0), out);
  EXPECT_TRUE(link.reachable(1));
  EXPECT_FALSE(link.reachable(2));
  const Config grown{1, {member(0, "n1"), member(1, "n2"), member(2, "n3"), member(5, "n6")}};
  link.handle({0, Actor::applier}, ConfigUpdate{history({{0, grown}}), 64}, at(1), out);
  EXPECT_FALSE(link.reachable(5));
  EXPECT_FALSE(to(link, 5, at(2)).has_value());
  FaultRequest heal{.set_reach = true, .reach_all = true};
  link.handle({0, Actor::front_door}, FaultFromClient{"", heal}, at(3), out);
  EXPECT_TRUE(link.reachable(5));
  EXPECT_TRUE(link.reachable(2));
}

TEST(PeerLinkMembership, HeartbeatsGoToEveryMemberIncludingLearners) {
  const Config c{1, {member(0, "n1"), member(1, "n2"), member(4, "n5", MemberRole::learner)}};
  PeerLink link(1, history({{0, c}}), 1);
  std::vector<NodeId> to_ids;
  for (const PeerFrame& f : link.tick(at(100))) to_ids.push_back(f.header.to.node);
  EXPECT_EQ(to_ids, (std::vector<NodeId>{0, 4}));
}

TEST(PeerLinkMembership, AnUpdatedEndpointIsAMembershipChangeTheRunnerReconnectsFor) {
  const Config c{0, {member(0, "n1"), member(1, "n2")}};
  PeerLink link(0, history({{0, c}}), 1);
  const std::uint64_t before = link.members_generation();
  Config moved = c;
  moved.epoch = 1;
  moved.members[1].peer_endpoint = "tcp://127.0.0.2:7101";
  Outbox out;
  link.handle({0, Actor::applier}, ConfigUpdate{history({{0, moved}}), 64}, at(0), out);
  EXPECT_NE(link.members_generation(), before);
  EXPECT_EQ(link.members().at(1).endpoint, "tcp://127.0.0.2:7101");
}

}  // namespace
}  // namespace kvpaxos

namespace kvpaxos {
namespace {

std::vector<Body> answers(PeerLink& link) {
  std::vector<Body> out;
  for (const PeerFrame& f : link.take_answers()) {
    Result<Body> b = decode(f.body);
    EXPECT_TRUE(b.ok());
    if (b.ok()) out.push_back(std::move(b.value()));
  }
  return out;
}

PeerFrame query(const std::string& name, const std::string& endpoint) {
  return PeerFrame{FrameHeader{{kNoNode, Actor::peer_link}, {kNoNode, Actor::peer_link}, 0, 0, 0},
                   encode(MemberQuery{name, endpoint})};
}

// n3 (id 2) removed from instance 200 on, n4 (id 3) a learner.
const Config kBefore{1, {member(0, "n1"), member(1, "n2"), member(2, "n3"), member(3, "n4", MemberRole::learner)}};
const Config kAfter{2, {member(0, "n1"), member(1, "n2"), member(3, "n4", MemberRole::learner)}};

// Keys follow the configuration (issue 14, item 6): what member_keys gives
// the runner is what the ZAP policy of the peer port lets in.
MemberEntry keyed(NodeId id, std::string name, std::string key) {
  MemberEntry m = member(id, std::move(name));
  m.peer_key = std::move(key);
  return m;
}

// The --peer-keys files of a node: n1..n3 of the first start, n2's still
// there after its removal, n4's old key from before it was re-keyed.
std::vector<std::string> files(const std::string& name) {
  if (name == "n4") return {"n4-old"};
  if (name == "n1" || name == "n2" || name == "n3") return {name + "-file"};
  return {};
}

// The problems with `keys` for the history: a member that cannot connect, a
// key that is not its latest, or a key accepted that the history no longer
// gives anyone. Empty: the keys follow the configuration.
std::vector<std::string> key_problems(const MemberKeys& keys, const std::set<std::string>& gone) {
  std::vector<std::string> problems;
  for (const auto& [id, accepted] : keys) {
    for (const std::string& k : accepted) {
      if (gone.count(k) != 0) problems.push_back("member " + std::to_string(id) + " accepts " + k);
    }
  }
  return problems;
}

MemberKeys keys_of(const PeerLink& link, bool planted = false) {
  return member_keys(link.members(), files, planted);
}

TEST(PeerLinkKeys, FirstMembersUseTheirFilesAddedOnesTheirEntryAndRemovedOnesNothing) {
  const Config first{0, {member(0, "n1"), member(1, "n2"), member(2, "n3")}};
  PeerLink link(0, history({{0, first}}), 1);
  EXPECT_EQ(keys_of(link), (MemberKeys{{1, {"n2-file"}}, {2, {"n3-file"}}}));

  // n4 added with its key: no file anywhere, its entry is enough.
  const Config second{1, {member(0, "n1"), member(1, "n2"), member(2, "n3"), keyed(3, "n4", "n4-a")}};
  Outbox out;
  const std::uint64_t before = link.members_generation();
  link.handle({0, Actor::applier}, ConfigUpdate{history({{0, second}}), 64}, at(1), out);
  EXPECT_NE(link.members_generation(), before);
  EXPECT_EQ(keys_of(link).at(3), (std::vector<std::string>{"n4-a"})) << "its old file is not let in";

  // n2 removed from instance 200 on: until then its file still counts, after
  // it nothing does, though the file stays in the directory.
  const Config third{2, {member(0, "n1"), member(2, "n3"), keyed(3, "n4", "n4-a")}};
  link.handle({0, Actor::applier}, ConfigUpdate{history({{0, second}, {200, third}}), 64}, at(2), out);
  EXPECT_EQ(keys_of(link).count(1), 1u);
  link.handle({0, Actor::applier}, ConfigUpdate{history({{200, third}}), 264}, at(3), out);
  EXPECT_EQ(keys_of(link).count(1), 0u);
  EXPECT_TRUE(key_problems(keys_of(link), {"n2-file", "n4-old"}).empty());
}

TEST(PeerLinkKeys, ARekeyedMemberPinsTheNewKeyAcceptsBothInTheWindowThenOnlyTheNew) {
  const Config first{0, {member(0, "n1"), keyed(1, "n2", "old")}};
  const Config rekeyed{1, {member(0, "n1"), keyed(1, "n2", "new")}};
  PeerLink link(0, history({{0, first}}), 1);
  Outbox out;
  const std::uint64_t before = link.members_generation();
  link.handle({0, Actor::applier}, ConfigUpdate{history({{0, first}, {100, rekeyed}}), 64}, at(1), out);
  EXPECT_NE(link.members_generation(), before) << "a key change alone makes the runner reconnect";
  EXPECT_EQ(keys_of(link).at(1), (std::vector<std::string>{"new", "old"}));
  link.handle({0, Actor::applier}, ConfigUpdate{history({{100, rekeyed}}), 164}, at(2), out);
  EXPECT_EQ(keys_of(link).at(1), (std::vector<std::string>{"new"}));
}

TEST(PeerLinkKeys, ThePlantedBugOfKeepingKeyFilesIsCaught) {
  const Config cfg{1, {member(0, "n1"), member(2, "n3"), keyed(3, "n4", "n4-a")}};
  PeerLink link(0, history({{0, cfg}}), 1);
  EXPECT_TRUE(key_problems(keys_of(link), {"n4-old"}).empty());
  const std::vector<std::string> found = key_problems(keys_of(link, /*planted=*/true), {"n4-old"});
  ASSERT_EQ(found.size(), 1u) << "the check misses a re-keyed member's old file";
  EXPECT_EQ(found.front(), "member 3 accepts n4-old");
}

// The link's answers are exactly one Removed notice, `expected`.
void expect_one_notice(PeerLink& link, const Removed& expected) {
  std::vector<Body> told = answers(link);
  ASSERT_EQ(told.size(), 1u);
  const Removed* r = std::get_if<Removed>(&told[0]);
  ASSERT_NE(r, nullptr);
  EXPECT_EQ(r->id, expected.id);
  EXPECT_EQ(r->epoch, expected.epoch);
  EXPECT_EQ(r->effective_from, expected.effective_from);
  EXPECT_EQ(r->voters, expected.voters);
}

TEST(PeerLinkRemoval, ARemovedMemberIsToldOnceTheRemovalGovernsAndAtMostOnceASecond) {
  PeerLink link(0, history({{0, kBefore}}), 1);
  Outbox out;
  link.handle({0, Actor::applier}, ConfigUpdate{history({{0, kBefore}, {200, kAfter}}), 64}, at(1), out);
  EXPECT_TRUE(from(link, 2, at(2), out).has_value());  // still a voter below 200
  EXPECT_TRUE(answers(link).empty());

  link.handle({0, Actor::applier}, ConfigUpdate{history({{200, kAfter}}), 64}, at(3), out);
  EXPECT_FALSE(from(link, 2, at(4), out).has_value());
  EXPECT_TRUE(answers(link).empty())
      << "told before this node is done with the instances before the removal: restarted from "
         "an older snapshot, it could need the removed node for one of them";
  link.handle({0, Actor::learner}, LocalProgress{199, 200, 0}, at(5), out);
  EXPECT_FALSE(from(link, 2, at(6), out).has_value());
  EXPECT_TRUE(answers(link).empty()) << "done below 199 is not done with 199";
  link.handle({0, Actor::learner}, LocalProgress{200, 200, 0}, at(7), out);
  EXPECT_FALSE(from(link, 2, at(8), out).has_value());
  expect_one_notice(link, Removed{2, 2, 200, {0, 1}});
  EXPECT_FALSE(from(link, 2, at(500), out).has_value());
  EXPECT_TRUE(answers(link).empty()) << "a second notice within a second";
  EXPECT_FALSE(from(link, 2, at(1008), out).has_value());
  EXPECT_EQ(answers(link).size(), 1u);
  // An id that never was a member hears nothing.
  EXPECT_FALSE(from(link, 9, at(3000), out).has_value());
  EXPECT_TRUE(answers(link).empty());
}

// A node that never saw the entries before a removal (restarted from a
// snapshot past it, or trimmed) knows it from the history's removed list:
// it tells the removed member, and gives the runner its key to let in.
TEST(PeerLinkRemoval, ARemovalOnlyTheRemovedListShowsIsToldToo) {
  ConfigHistory h = history({{200, kAfter}});
  h.removed = {RemovedMember{2, "n3", 2, 200, "n3-key"}, RemovedMember{0, "n1", 1, 100, ""}};
  ConfigHistory without = h;
  without.removed.clear();
  PeerLink link(1, without, 1);
  EXPECT_TRUE(link.removed_members().empty());
  const std::uint64_t before = link.members_generation();
  Outbox out;
  link.handle({1, Actor::applier}, ConfigUpdate{h, 264}, at(0), out);
  EXPECT_NE(link.members_generation(), before) << "the runner must let the key in";
  const std::map<NodeId, PeerAddress> removed = link.removed_members();
  ASSERT_EQ(removed.size(), 1u) << "n1 (id 0) is a member again: not removed";
  EXPECT_EQ(removed.at(2).name, "n3");
  EXPECT_EQ(removed.at(2).config_keys, (std::vector<std::string>{"n3-key"}));
  link.handle({1, Actor::learner}, LocalProgress{200, 200, 0}, at(1), out);
  PeerFrame f{FrameHeader{{1, Actor::acceptor}, {2, Actor::proposer}, 1, 1, 0}, encode(Heartbeat{})};
  EXPECT_FALSE(link.inbound(f, at(2), out, NodeId{2}).has_value()) << "its frames are refused";
  expect_one_notice(link, Removed{2, 2, 200, {0, 1}});
  const std::uint64_t same = link.members_generation();
  link.handle({1, Actor::applier}, ConfigUpdate{h, 265}, at(3), out);
  EXPECT_EQ(link.members_generation(), same) << "nothing changed, nothing to reconnect";
}

TEST(PeerLinkRemoval, ARemovedNodeRetiresOnceAMajorityOfTheVotersAfterItSaySo) {
  PeerLink link(2, history({{0, kBefore}}), 1);
  EXPECT_FALSE(link.retirement().has_value());
  const Removed notice{2, 2, 200, {0, 1}};
  auto from_peer = [](NodeId peer, const Removed& r) {
    return PeerFrame{FrameHeader{{2, Actor::peer_link}, {peer, Actor::peer_link}, 0, 0, 0}, encode(r)};
  };
  // A frame on n1's connection that claims to be n2's counts for nothing.
  link.answered(from_peer(1, notice), 0);
  EXPECT_FALSE(link.retirement().has_value());
  // A learner's notice (n4) is not a voter's.
  link.answered(from_peer(3, notice), 3);
  EXPECT_FALSE(link.retirement().has_value());
  link.answered(from_peer(0, notice), 0);
  EXPECT_FALSE(link.retirement().has_value()) << "one of two voters is no majority";
  // A notice about another member is not about this one.
  link.answered(from_peer(1, Removed{3, 2, 200, {0, 1}}), 1);
  EXPECT_FALSE(link.retirement().has_value());
  link.answered(from_peer(1, notice), 1);
  std::optional<Retirement> r = link.retirement();
  ASSERT_TRUE(r.has_value());
  EXPECT_EQ(r->epoch, 2u);
  EXPECT_EQ(r->effective_from, 200u);
  EXPECT_EQ(r->told_by, (std::vector<std::string>{"n1", "n2"}));
}

TEST(PeerLinkQuery, ALearnerLearnsItsIdAndTheConfigurations) {
  PeerLink link(0, history({{0, kBefore}}), 1);
  link.set_cluster_id(77);
  Outbox out;
  EXPECT_FALSE(link.inbound(query("n4", "tcp://127.0.0.1:7103"), at(0), out).has_value());
  std::vector<Body> told = answers(link);
  ASSERT_EQ(told.size(), 1u);
  const MemberInfo* info = std::get_if<MemberInfo>(&told[0]);
  ASSERT_NE(info, nullptr);
  EXPECT_EQ(info->error, "");
  EXPECT_EQ(info->id, 3u);
  EXPECT_EQ(info->cluster_id, 77u);
  EXPECT_EQ(info->history.latest(), kBefore);
}

TEST(PeerLinkQuery, AnUnknownNameAWrongAddressAndAVoterAreRefusedWithTheReason) {
  PeerLink link(0, history({{0, kBefore}}), 1);
  Outbox out;
  auto ask = [&](const std::string& name, const std::string& endpoint) {
    (void)link.inbound(query(name, endpoint), at(0), out);
    std::vector<Body> told = answers(link);
    EXPECT_EQ(told.size(), 1u);
    const MemberInfo* info = told.empty() ? nullptr : std::get_if<MemberInfo>(&told[0]);
    return info == nullptr ? std::string("no MemberInfo") : info->error;
  };
  EXPECT_NE(ask("n9", "tcp://127.0.0.1:7109").find("no member named n9 in epoch 1"), std::string::npos);
  EXPECT_NE(ask("n4", "tcp://127.0.0.1:9999").find("has the peer address tcp://127.0.0.1:7103"),
            std::string::npos);
  EXPECT_NE(ask("n2", "tcp://127.0.0.1:7101").find("n2 is a voter"), std::string::npos);
  EXPECT_NE(ask("n1", "tcp://127.0.0.1:7100").find("the name of the node that answers"),
            std::string::npos);
  // No id, but not a question for the peer link: nothing.
  PeerFrame other = query("n4", "tcp://127.0.0.1:7103");
  other.header.to.actor = Actor::acceptor;
  EXPECT_FALSE(link.inbound(other, at(0), out).has_value());
  EXPECT_TRUE(answers(link).empty());
}

TEST(PeerLinkCluster, AFrameFromAnotherClusterIsDropped) {
  PeerLink link(0, history({{0, kBefore}}), 1);
  link.set_cluster_id(make_cluster_id({"n1", "n2"}, {"tcp://a:1", "tcp://b:1"}, ""));
  const std::uint64_t ours = make_cluster_id({"n1", "n2"}, {"tcp://a:1", "tcp://b:1"}, "");
  const std::uint64_t theirs = make_cluster_id({"n1", "n2"}, {"tcp://a:1", "tcp://b:1"}, "staging");
  EXPECT_NE(ours, theirs);
  Outbox out;
  PeerFrame f{FrameHeader{{0, Actor::acceptor}, {1, Actor::proposer}, 0, 0, 0}, encode(Heartbeat{})};
  EXPECT_FALSE(link.inbound(f, at(0), out, std::nullopt, theirs).has_value());
  EXPECT_EQ(link.refused().other_cluster, 1u);
  EXPECT_TRUE(link.inbound(f, at(0), out, std::nullopt, ours).has_value());
  // A connection that announced no cluster (an earlier release) is not checked.
  EXPECT_TRUE(link.inbound(f, at(0), out, std::nullopt, 0).has_value());
}

TEST(PeerLinkCluster, TheRoutingIdCarriesTheClusterId) {
  const std::string id = link_identity(0x0123456789abcdefULL, 7, 99);
  EXPECT_EQ(id.size(), 20u);
  EXPECT_EQ(cluster_of_link(id), 0x0123456789abcdefULL);
  EXPECT_EQ(cluster_of_link(std::string("\0abcd", 5)), 0u);  // libzmq's own
  EXPECT_NE(make_cluster_id({}, {}, ""), 0u);
}

}  // namespace
}  // namespace kvpaxos
