// The configuration history (messages/membership.hpp): which configuration
// governs an instance, around the first instance of each.
#include <gtest/gtest.h>

#include "messages/codec.hpp"
#include "messages/kv_op.hpp"
#include "messages/membership.hpp"

namespace kvpaxos {
namespace {

Config config(std::uint64_t epoch, std::vector<std::pair<NodeId, MemberRole>> members) {
  Config c{epoch, {}};
  for (auto [id, role] : members) {
    c.members.push_back(MemberEntry{.id = id, .name = "m" + std::to_string(id), .role = role});
  }
  return c;
}

TEST(ConfigHistory, EachInstanceIsGovernedByTheLastConfigurationFromAtOrBelowIt) {
  const Config first = config(0, {{0, MemberRole::voter}, {1, MemberRole::voter}, {2, MemberRole::voter}});
  const Config second = config(1, {{0, MemberRole::voter}, {1, MemberRole::voter},
                                   {2, MemberRole::voter}, {3, MemberRole::learner}});
  const Config third = config(2, {{0, MemberRole::voter}, {1, MemberRole::voter}, {3, MemberRole::voter}});
  ConfigHistory h{{{0, first}, {70, second}, {200, third}}, 250};
  EXPECT_EQ(h.at(0), first);
  EXPECT_EQ(h.at(69), first);
  EXPECT_EQ(h.at(70), second);
  EXPECT_EQ(h.at(199), second);
  EXPECT_EQ(h.at(200), third);
  EXPECT_EQ(h.at(100000), third);
  EXPECT_TRUE(h.knows(249));
  EXPECT_FALSE(h.knows(250));
  EXPECT_EQ(h.all_voters(), (std::vector<NodeId>{0, 1, 2, 3}));
  EXPECT_EQ(h.all_members(), (std::vector<NodeId>{0, 1, 2, 3}));
  EXPECT_EQ(h.at(70).voters(), (std::vector<NodeId>{0, 1, 2}));
  EXPECT_EQ(h.at(70).member_ids(), (std::vector<NodeId>{0, 1, 2, 3}));
  EXPECT_TRUE(h.at(70).is_member(3));
  EXPECT_FALSE(h.at(70).is_voter(3));
  EXPECT_EQ(h.at(200).voter_count(), 3u);
  EXPECT_FALSE(h.at(200).is_member(2));
  EXPECT_TRUE(h.is_member(2));  // still governs instances below 200
}

TEST(ConfigHistory, ATrimmedHistoryGovernsEarlierInstancesByItsFirstEntry) {
  const Config only = config(4, {{5, MemberRole::voter}, {9, MemberRole::voter}});
  ConfigHistory h{{{1000, only}}, 1064};
  EXPECT_EQ(h.at(10), only);
  EXPECT_EQ(h.at(1000), only);
  ASSERT_NE(h.latest().find(9), nullptr);
  EXPECT_EQ(h.latest().find(7), nullptr);
  EXPECT_EQ(h.latest().find_name("m5")->id, 5u);
}

TEST(ConfigHistory, FixedIsEveryIndexAVoterForEveryInstance) {
  const ConfigHistory h = ConfigHistory::fixed(3);
  EXPECT_EQ(h.at(0).voters(), (std::vector<NodeId>{0, 1, 2}));
  EXPECT_TRUE(h.knows(~InstanceId{0} - 1));
}

TEST(MemberOp, AChangeTravelsInsideTheOpsValueAndComesBackWhole) {
  ClientRequest r{.client_id = 7, .seq = 3, .op = OpKind::member};
  r.member = MemberChange{.kind = MemberChangeKind::add_learner, .expected_epoch = 2,
                          .name = "n4", .peer_endpoint = "tcp://127.0.0.1:7104",
                          .client_endpoint = "tcp://127.0.0.1:7204"};
  const KvOp op = KvOp::from(r);
  Result<KvOp> back = decode_op(encode_op(op));
  ASSERT_TRUE(back.ok()) << back.error();
  Result<MemberChange> change = back->member_change();
  ASSERT_TRUE(change.ok()) << change.error();
  EXPECT_EQ(*change, r.member);
  // Every other op encodes as it did before: no member field in the log.
  const KvOp put = KvOp::from(ClientRequest{.client_id = 7, .seq = 4, .op = OpKind::put, .key = "k", .value = "v"});
  EXPECT_EQ(put.value, "v");
  EXPECT_FALSE(put.member_change().ok());
}

}  // namespace
}  // namespace kvpaxos
