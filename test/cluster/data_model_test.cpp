// The data model through the real client against in-process 3-node
// clusters: delete_range, range and txn end to end, revisions in the
// replies, a lock recipe, and replicas that agree key by key and revision
// by revision.
#include <gtest/gtest.h>

#include <chrono>
#include <future>
#include <map>
#include <string>
#include <vector>

#include "client/client.hpp"
#include "cluster/cluster.hpp"
#include "messages/kv_op.hpp"

namespace kvpaxos::testing {
namespace {

using std::chrono::milliseconds;

constexpr milliseconds kMustSucceed{30000};  // generous: CI may run under sanitizers
const std::string kEveryKey("\0", 1);

ClientOptions options_for(std::vector<std::string> endpoints) {
  return ClientOptions{.endpoints = std::move(endpoints), .deadline = kMustSucceed};
}

std::vector<std::string> keys_of(const std::vector<KeyValue>& kvs) {
  std::vector<std::string> keys;
  for (const KeyValue& kv : kvs) keys.push_back(kv.key);
  return keys;
}

Compare absent(const std::string& key) {
  return {.target = CompareTarget::version, .op = CompareOp::equal, .key = key, .number = 0};
}

TEST(DataModelService, DeleteRangeAndTxnWorkEndToEndWithRevisions) {
  Cluster c({.nodes = 3, .kv_service = true});
  Client client(c.context(), options_for(c.client_endpoints()));
  for (std::uint64_t i = 1; i <= 3; ++i) {
    const CallResult put = client.put("p/" + std::to_string(i), "v" + std::to_string(i));
    ASSERT_TRUE(put.ok()) << put.error;
    EXPECT_EQ(put.result.revision, i) << "each put moves the store's revision by one";
  }
  ASSERT_TRUE(client.put("q", "other").ok());

  const CallResult all = client.range("p/", prefix_end("p/"));
  ASSERT_TRUE(all.ok()) << all.error;
  EXPECT_EQ(keys_of(all.result.kvs), (std::vector<std::string>{"p/1", "p/2", "p/3"}));
  EXPECT_EQ(all.result.kvs[1], (KeyValue{"p/2", "v2", 2, 2, 1}));
  EXPECT_EQ(all.result.revision, 4u) << "a read reports the revision it read at";

  const CallResult limited = client.range("", kEveryKey, 2, kRangeKeysOnly);
  ASSERT_TRUE(limited.ok()) << limited.error;
  EXPECT_EQ(keys_of(limited.result.kvs), (std::vector<std::string>{"p/1", "p/2"}));
  EXPECT_EQ(limited.result.kvs[0].value, "");
  EXPECT_TRUE(limited.result.more);
  EXPECT_EQ(limited.result.count, 4u);

  const CallResult swapped = client.txn(
      {{.target = CompareTarget::value, .op = CompareOp::equal, .key = "q", .value = "other"},
       {.target = CompareTarget::mod_revision, .op = CompareOp::equal, .key = "p/3", .number = 3}},
      {{.op = OpKind::put, .key = "q", .value = "swapped"}, {.op = OpKind::get, .key = "p/1"}},
      {{.op = OpKind::get, .key = "q"}});
  ASSERT_TRUE(swapped.ok()) << swapped.error;
  EXPECT_TRUE(swapped.result.succeeded);
  ASSERT_EQ(swapped.result.responses.size(), 2u);
  EXPECT_EQ(swapped.result.responses[1].value, "v1");
  EXPECT_EQ(swapped.result.revision, 5u);

  const CallResult deleted = client.del("p/", prefix_end("p/"));
  ASSERT_TRUE(deleted.ok()) << deleted.error;
  EXPECT_EQ(deleted.result.count, 3u);
  EXPECT_EQ(deleted.result.revision, 8u) << "one revision per deleted key";
  const CallResult again = client.del("p/", prefix_end("p/"));
  ASSERT_TRUE(again.ok()) << again.error;
  EXPECT_EQ(again.result.count, 0u);
  EXPECT_EQ(again.result.revision, 8u) << "deleting nothing moves nothing";

  Client other(c.context(), options_for({c.client_endpoints()[2]}));
  const CallResult rest = other.range("", kEveryKey);
  ASSERT_TRUE(rest.ok()) << rest.error;
  ASSERT_EQ(rest.result.kvs.size(), 1u);
  EXPECT_EQ(rest.result.kvs[0], (KeyValue{"q", "swapped", 4, 5, 2}));
}

// etcd's lock recipe: create the key only if it does not exist (version 0).
// Two clients at different nodes race for each lock: exactly one wins, and
// the loser reads the winner's name from its failure branch.
TEST(DataModelService, ACreateIfAbsentLockHasExactlyOneWinner) {
  Cluster c({.nodes = 3, .kv_service = true});
  Client first(c.context(), options_for({c.client_endpoints()[0], c.client_endpoints()[1]}));
  Client second(c.context(), options_for({c.client_endpoints()[1], c.client_endpoints()[2]}));
  auto take = [](Client& client, const std::string& lock, const std::string& me) {
    return client.txn({absent(lock)}, {{.op = OpKind::put, .key = lock, .value = me}},
                      {{.op = OpKind::get, .key = lock}});
  };
  for (int round = 0; round < 5; ++round) {
    const std::string lock = "lock/" + std::to_string(round);
    auto a = std::async(std::launch::async, [&] { return take(first, lock, "first"); });
    auto b = std::async(std::launch::async, [&] { return take(second, lock, "second"); });
    const CallResult ra = a.get();
    const CallResult rb = b.get();
    ASSERT_TRUE(ra.ok()) << ra.error;
    ASSERT_TRUE(rb.ok()) << rb.error;
    ASSERT_NE(ra.result.succeeded, rb.result.succeeded) << lock << ": exactly one winner";
    const CallResult& loser = ra.result.succeeded ? rb : ra;
    const std::string winner = ra.result.succeeded ? "first" : "second";
    ASSERT_EQ(loser.result.responses.size(), 1u);
    EXPECT_EQ(loser.result.responses[0].value, winner) << lock;
    const CallResult held = first.range(lock);
    ASSERT_TRUE(held.ok()) << held.error;
    ASSERT_EQ(held.result.kvs.size(), 1u);
    EXPECT_EQ(held.result.kvs[0].value, winner);
    EXPECT_EQ(held.result.kvs[0].version, 1u) << "the loser wrote nothing";
  }
}

// Each node answers a request from its own state machine once it applied the
// op, so a range through each node alone, with nothing written in between,
// shows that node's replica: all three must hold the same keys, values and
// revisions at the same store revision.
TEST(DataModelService, EveryReplicaEndsWithTheSameKeysAndRevisions) {
  Cluster c({.nodes = 3, .kv_service = true});
  std::vector<std::future<bool>> writers;
  for (std::size_t w = 0; w < 3; ++w) {
    writers.push_back(std::async(std::launch::async, [&c, w] {
      Client client(c.context(), options_for({c.client_endpoints()[w]}));
      const std::string mine = "w" + std::to_string(w) + "/";
      bool ok = true;
      for (int i = 0; i < 10; ++i) {
        ok = client.put(mine + std::to_string(i), "v").ok() && ok;
        ok = client.append("shared", std::to_string(w)).ok() && ok;
        ok = client
                 .txn({absent("first")}, {{.op = OpKind::put, .key = "first", .value = mine}},
                      {{.op = OpKind::append, .key = "losers", .value = mine}})
                 .ok() &&
             ok;
      }
      ok = client.del(mine + "5", mine + "8").ok() && ok;
      return ok;
    }));
  }
  for (auto& w : writers) ASSERT_TRUE(w.get());

  std::vector<CallResult> views;
  for (std::size_t node = 0; node < 3; ++node) {
    Client reader(c.context(), options_for({c.client_endpoints()[node]}));
    views.push_back(reader.range("", kEveryKey));
    ASSERT_TRUE(views.back().ok()) << "node " << node << ": " << views.back().error;
  }
  // 3 x (10 puts + 10 appends + 10 txns) - 3 x 3 deleted + 1 "first", the
  // losers' appends and "shared" holding 30 appends.
  EXPECT_EQ(views[0].result.kvs.size(), 3u * 7 + 3);
  EXPECT_EQ(views[0].result.revision, 3u * (10 + 10 + 10 + 3));
  for (std::size_t node = 1; node < 3; ++node) {
    EXPECT_EQ(views[node].result.revision, views[0].result.revision) << "node " << node;
    EXPECT_EQ(views[node].result.kvs, views[0].result.kvs) << "node " << node;
  }
  std::map<std::string, std::uint64_t> versions;
  for (const KeyValue& kv : views[0].result.kvs) versions[kv.key] = kv.version;
  EXPECT_EQ(versions["shared"], 30u);
  EXPECT_EQ(versions["first"], 1u) << "one txn created it; the others saw it";
  EXPECT_EQ(versions["losers"], 29u);
}

// A transaction's reply is bounded as a whole: two ranges of 9 MiB values
// would make an 18 MiB reply, past the client's frame limit (it would be
// dropped, and the call end unknown at its deadline). The second range
// comes back empty with `more`: read it alone.
TEST(DataModelService, ATxnOfTwoLargeRangesGetsAReplyTheClientCanRead) {
  Cluster c({.nodes = 3, .kv_service = true});
  Client client(c.context(), options_for(c.client_endpoints()));
  const std::string large(9 * 1024 * 1024, 'v');
  ASSERT_TRUE(client.put("a", large).ok());
  ASSERT_TRUE(client.put("b", large).ok());
  const CallResult r =
      client.txn({}, {{.op = OpKind::range, .key = "a"}, {.op = OpKind::range, .key = "b"}}, {});
  ASSERT_TRUE(r.ok()) << r.error;
  ASSERT_EQ(r.result.responses.size(), 2u);
  ASSERT_EQ(r.result.responses[0].kvs.size(), 1u);
  EXPECT_EQ(r.result.responses[0].kvs[0].value.size(), large.size());
  EXPECT_TRUE(r.result.responses[1].kvs.empty());
  EXPECT_TRUE(r.result.responses[1].more);
  const CallResult alone = client.range("b");
  ASSERT_TRUE(alone.ok()) << alone.error;
  ASSERT_EQ(alone.result.kvs.size(), 1u);
  EXPECT_EQ(alone.result.kvs[0].value.size(), large.size());
}

}  // namespace
}  // namespace kvpaxos::testing
