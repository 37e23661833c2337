// PeerLink follows the configuration: peers by member id, replaced by the
// applier's ConfigUpdate (actors/net/peer_link.hpp, "Membership").
#include <gtest/gtest.h>

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
  EXPECT_EQ(link.members().at(3), "tcp://127.0.0.1:7103");
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
  EXPECT_EQ(link.members().at(1), "tcp://127.0.0.2:7101");
}

}  // namespace
}  // namespace kvpaxos
