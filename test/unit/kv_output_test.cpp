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

}  // namespace
}  // namespace kvpaxos
