// What kvctl prints for ranges and transactions (cmd/kv_output.hpp), in
// etcdctl's shapes: replies in, exact text out.
#include "cmd/kv_output.hpp"

#include <gtest/gtest.h>

namespace kvpaxos {
namespace {

TEST(KvOutput, TxnTextIsEtcdctlsSuccessThenEachResultAfterABlankLine) {
  const TxnSpec t{.success = {RequestOp{.op = OpKind::put, .key = "a", .value = "1"},
                              RequestOp{.op = OpKind::range, .key = "a", .range_end = "b"},
                              RequestOp{.op = OpKind::delete_range, .key = "a"},
                              RequestOp{.op = OpKind::range, .key = "b",
                                        .flags = kRangeCountOnly}}};
  OpResult r{.succeeded = true};
  r.responses = {OpResponse{.op = OpKind::put},
                 OpResponse{.op = OpKind::range, .kvs = {{"a", "1", 5, 5, 1}}, .count = 1},
                 OpResponse{.op = OpKind::delete_range, .count = 1},
                 OpResponse{.op = OpKind::range, .count = 7}};
  EXPECT_EQ(txn_text(t, r), "SUCCESS\n\nOK\n\na\n1\n\n1\n\n7\n");
  r.succeeded = false;
  r.responses.clear();
  EXPECT_EQ(txn_text(t, r), "FAILURE\n");
}

TEST(KvOutput, TxnJsonNamesEachOpAndItsResult) {
  OpResult r{.revision = 9, .succeeded = true};
  r.responses = {OpResponse{.op = OpKind::put},
                 OpResponse{.op = OpKind::range, .kvs = {{"a", "\"1\"", 5, 6, 2}}, .count = 3},
                 OpResponse{.op = OpKind::delete_range, .count = 2}};
  r.responses[1].more = true;
  EXPECT_EQ(txn_json(r),
            "{\"succeeded\":true,\"revision\":9,\"responses\":[{\"op\":\"put\"},"
            "{\"op\":\"get\",\"count\":3,\"more\":true,\"kvs\":[{\"key\":\"a\",\"value\":"
            "\"\\\"1\\\"\",\"create_revision\":5,\"mod_revision\":6,\"version\":2}]},"
            "{\"op\":\"del\",\"deleted\":2}]}\n");
}

TEST(KvOutput, SingleKeyGetJsonKeepsTheOldKeyAndValueFields) {
  const std::string key = "k";
  const OpResult absent{.revision = 4};
  EXPECT_EQ(range_json(absent, &key),
            "{\"key\":\"k\",\"value\":\"\",\"revision\":4,\"count\":0,\"more\":false,"
            "\"kvs\":[]}\n");
  const OpResult present{.revision = 4, .kvs = {{"k", "v\n", 2, 3, 2}}, .count = 1};
  EXPECT_EQ(range_json(present, &key).rfind("{\"key\":\"k\",\"value\":\"v\\n\",\"revision\":4,", 0),
            0u);
  EXPECT_EQ(range_json(present, nullptr).rfind("{\"revision\":4,\"count\":1,", 0), 0u);
}

TEST(KvOutput, RangeTextIsKeyThenValueOrKeysOrTheCount) {
  const std::vector<KeyValue> kvs = {{"a", "1", 1, 1, 1}, {"b", "", 2, 2, 1}};
  EXPECT_EQ(range_text(kvs, 2, 0), "a\n1\nb\n\n");
  EXPECT_EQ(range_text(kvs, 2, kRangeKeysOnly), "a\nb\n");
  EXPECT_EQ(range_text({}, 2, kRangeCountOnly), "2\n");
  EXPECT_EQ(range_text({}, 0, 0), "");
}

MemberResult three_and_a_learner() {
  MemberResult r{.epoch = 1, .id = 3, .effective_from = 70, .pending_from = 70, .alpha = 64};
  r.config.epoch = 1;
  for (NodeId i = 0; i < 3; ++i) {
    r.config.members.push_back(MemberEntry{
        .id = i, .name = "n" + std::to_string(i + 1),
        .peer_endpoint = "tcp://127.0.0.1:710" + std::to_string(i + 1),
        .client_endpoint = "tcp://127.0.0.1:720" + std::to_string(i + 1)});
  }
  r.config.members.push_back(MemberEntry{.id = 3, .name = "n4",
                                         .peer_endpoint = "tcp://10.0.0.4:7104",
                                         .client_endpoint = "tcp://10.0.0.4:7204",
                                         .role = MemberRole::learner});
  return r;
}

// n1 and n2 answer (n2 behind), n3 does not, the learner n4 answers far behind.
ClusterHealth three_and_a_learner_health() {
  ClusterHealth health;
  health[0] = MemberHealth{.reachable = true, .applied_below = 900,
                           .client_endpoint = "tcp://127.0.0.1:7201"};
  health[1] = MemberHealth{.reachable = true, .applied_below = 880,
                           .client_endpoint = "tcp://127.0.0.1:7202"};
  health[2] = MemberHealth{.client_endpoint = "tcp://127.0.0.1:7203", .error = "no reply"};
  health[3] = MemberHealth{.reachable = true, .applied_below = 12,
                           .client_endpoint = "tcp://10.0.0.4:7204"};
  return health;
}

TEST(KvOutput, MemberListShowsTheEpochThePendingChangeAndEachMembersHealth) {
  EXPECT_EQ(member_list_text(three_and_a_learner(), three_and_a_learner_health()),
            "epoch 1 (alpha 64), in force from instance 70\n"
            "ID     NAME             ROLE     REACHABLE APPLIED    LAG      PEER                   CLIENT\n"
            "0      n1               voter    yes       900        0        127.0.0.1:7101         127.0.0.1:7201\n"
            "1      n2               voter    yes       880        20       127.0.0.1:7102         127.0.0.1:7202\n"
            "2      n3               voter    no        -          -        127.0.0.1:7103         127.0.0.1:7203\n"
            "3      n4               learner  yes       12         888      10.0.0.4:7104          10.0.0.4:7204\n");
}

// The members of the first configuration have no client address in it: the
// address they answered kvctl at stands in; one that answered nowhere has "-".
TEST(KvOutput, AMemberWithoutAClientAddressShowsWhereItAnswered) {
  MemberResult settled = three_and_a_learner();
  settled.pending_from = 0;
  settled.config.members.resize(2);
  settled.config.members[0].client_endpoint.clear();
  settled.config.members[1].client_endpoint.clear();
  ClusterHealth health;
  health[0] = MemberHealth{.reachable = true, .applied_below = 5,
                           .client_endpoint = "tcp://localhost:7201"};
  EXPECT_EQ(member_list_text(settled, health),
            "epoch 1 (alpha 64)\n"
            "ID     NAME             ROLE     REACHABLE APPLIED    LAG      PEER                   CLIENT\n"
            "0      n1               voter    yes       5          0        127.0.0.1:7101         localhost:7201\n"
            "1      n2               voter    no        -          -        127.0.0.1:7102         -\n");
  EXPECT_EQ(member_list_json(settled, health),
            "{\"epoch\":1,\"alpha\":64,\"pending_from\":0,\"members\":[{\"id\":0,\"name\":\"n1\","
            "\"role\":\"voter\",\"peer_addr\":\"127.0.0.1:7101\",\"client_addr\":\"localhost:7201\","
            "\"reachable\":true,\"applied\":5,\"lag\":0},{\"id\":1,\"name\":\"n2\",\"role\":\"voter\","
            "\"peer_addr\":\"127.0.0.1:7102\",\"client_addr\":\"\",\"reachable\":false,"
            "\"applied\":null,\"lag\":null}]}\n");
}

TEST(KvOutput, AnAddedLearnerGetsTheKvpaxosdCommandThatStartsIt) {
  const MemberResult r = three_and_a_learner();
  EXPECT_EQ(member_change_text("added learner", r),
            "added learner n4 (id 3): epoch 1, in force from instance 70\n");
  EXPECT_EQ(member_change_json(r), "{\"id\":3,\"epoch\":1,\"effective_from\":70}\n");
  EXPECT_EQ(start_command(r, 3),
            "kvpaxosd --name n4 --cluster n1=127.0.0.1:7101,n2=127.0.0.1:7102,n3=127.0.0.1:7103,"
            "n4=10.0.0.4:7104 --initial-cluster-state existing --data-dir DIR --client-addr "
            "10.0.0.4:7204\n");
  // Keyed: only an admin key added it, so the new member needs the admins too.
  const std::string keyed = start_command(r, 3, /*keyed=*/true);
  EXPECT_NE(keyed.find("--client-addr 10.0.0.4:7204 --peer-keys KEYDIR --client-key "
                       "CLIENT.key_secret --admin-keys ADMINDIR\n"),
            std::string::npos)
      << keyed;
  EXPECT_NE(keyed.find("KEYDIR holds n4.key_secret, n4.key and n1.key, n2.key, n3.key"),
            std::string::npos)
      << keyed;
}

// The removed member is in the configuration before the change only: its
// name comes from there (it used to print "removed id 0").
TEST(KvOutput, ARemovalNamesTheMemberFromTheConfigurationBeforeIt) {
  const MemberResult before = three_and_a_learner();
  MemberResult r = before;
  r.id = 0;
  r.config.members.erase(r.config.members.begin());
  EXPECT_EQ(member_change_text("removed", r, &before.config),
            "removed n1 (id 0): epoch 1, in force from instance 70\n");
  EXPECT_EQ(member_change_text("removed", r), "removed id 0: epoch 1, in force from instance 70\n");
}

TEST(KvOutput, AStatusLineShowsTheMemberIdAndRoleBesideWhatTheNodeSays) {
  const StatusReply s{.name = "n4", .node = 3, .applied_below = 120, .forget_below = 100,
                      .decided_below = 121, .keys = 7, .sessions = 2, .snapshot_bytes = 1536,
                      .data_dir_bytes = 4u << 20, .revision = 55};
  EXPECT_EQ(status_text_header(),
            "ENDPOINT               NAME     ID   ROLE     REACHABLE  APPLIED    MIN        MAX        "
            "KEYS     SESSIONS SNAPSHOT   SNAP_SIZE  DISK       REVISION   WATCHES \n");
  EXPECT_EQ(status_text_line("127.0.0.1:7204", &s, StatusIdentity{"3", "learner"}),
            "127.0.0.1:7204         n4       3    learner  yes        119        100        120        "
            "7        2        0          1.5KiB     4.0MiB     55         0       \n");
  EXPECT_EQ(status_text_line("127.0.0.1:7202", nullptr, StatusIdentity{"1", "voter"}),
            "127.0.0.1:7202         -        1    voter    no         -          -          -          "
            "-        -        -          -          -          -          -       \n");
  EXPECT_EQ(status_json("127.0.0.1:7202", nullptr, "no reply", StatusIdentity{"1", "voter"}),
            "{\"endpoint\":\"127.0.0.1:7202\",\"reachable\":false,\"role\":\"voter\",\"node\":1,"
            "\"error\":\"no reply\"}");
  EXPECT_EQ(status_json("127.0.0.1:7204", &s, "", StatusIdentity{"3", "learner"})
                .rfind("{\"endpoint\":\"127.0.0.1:7204\",\"reachable\":true,\"role\":\"learner\","
                       "\"name\":\"n4\",\"node\":3,\"applied_below\":120,\"min\":100,\"max\":120,",
                       0),
            0u);
}

}  // namespace
}  // namespace kvpaxos
