// The data model (docs/protocol.md, "Data model"): revisions, delete_range,
// range and txn as the state machine executes them, the bounds of their
// replies, their kept replies and snapshots, and the wire around them
// (prefix_end, in_range, wire_values, the largest legal messages, the front
// door's refusals, batches of transactions).
#include <gtest/gtest.h>

#include <cstdio>
#include <map>
#include <string>
#include <tuple>
#include <vector>

#include "actors/kv/batch_pipeline.hpp"
#include "actors/kv/front_door.hpp"
#include "actors/kv/kv_state_machine.hpp"
#include "actors/kv/snapshot_record.hpp"
#include "messages/codec.hpp"
#include "messages/kv_op.hpp"
#include "messages/msgpack_scan.hpp"

namespace kvpaxos {
namespace {

const std::string kEveryKey("\0", 1);  // range_end: every key from `key` on

RequestOp get_op(const std::string& key) { return {.op = OpKind::get, .key = key}; }
RequestOp put_op(const std::string& key, const std::string& value) {
  return {.op = OpKind::put, .key = key, .value = value};
}
RequestOp append_op(const std::string& key, const std::string& value) {
  return {.op = OpKind::append, .key = key, .value = value};
}
RequestOp del_op(const std::string& key, const std::string& range_end = {}) {
  return {.op = OpKind::delete_range, .key = key, .range_end = range_end};
}
RequestOp range_op(const std::string& key, const std::string& range_end = {},
                   std::uint64_t limit = 0, std::uint8_t flags = 0) {
  return {.op = OpKind::range, .key = key, .range_end = range_end, .limit = limit, .flags = flags};
}
Compare number_cmp(CompareTarget target, CompareOp op, const std::string& key,
                   std::uint64_t number) {
  return {.target = target, .op = op, .key = key, .number = number};
}
Compare value_cmp(CompareOp op, const std::string& key, const std::string& value) {
  return {.target = CompareTarget::value, .op = op, .key = key, .value = value};
}

KvOp op_from(const RequestOp& o) {
  return KvOp{.op = o.op,
              .key = o.key,
              .value = o.value,
              .range_end = o.range_end,
              .limit = o.limit,
              .flags = o.flags};
}
KvOp txn_of(std::vector<Compare> compares, std::vector<RequestOp> success,
            std::vector<RequestOp> failure = {}) {
  return KvOp{.op = OpKind::txn,
              .compares = std::move(compares),
              .success = std::move(success),
              .failure = std::move(failure)};
}

// The largest transaction the front door lets through: kMaxTxnCompares
// compares and kMaxTxnOps ops in each branch.
KvOp largest_txn() {
  KvOp op = txn_of({}, {}, {});
  for (std::size_t i = 0; i < kMaxTxnCompares; ++i) {
    op.compares.push_back(
        number_cmp(CompareTarget::version, CompareOp::greater, "key" + std::to_string(i), i));
  }
  for (std::size_t i = 0; i < kMaxTxnOps; ++i) {
    op.success.push_back(put_op("key" + std::to_string(i), "value"));
    op.failure.push_back(range_op("key" + std::to_string(i), prefix_end("key"), 10));
  }
  return op;
}

// A state machine fed one op per instance, as the applier does, with the
// invariants checked after each. run() gives the op the next seq of its
// client (acking the one before) and returns the reply it kept.
struct Store {
  explicit Store(KvLimits limits = {}) : sm(limits) {}
  KvStateMachine sm;
  InstanceId next_instance = 0;
  std::map<ClientId, std::uint64_t> last_seq;

  OpResult run(KvOp op, ClientId client = 1) {
    std::uint64_t& seq = last_seq[client];
    op.client_id = client;
    op.seq = ++seq;
    op.ack = seq - 1;
    EXPECT_EQ(sm.execute(op, next_instance), OpOutcome::ran);
    sm.end_instance(next_instance++);
    EXPECT_EQ(sm.check_invariants(), "");
    const OpResult* kept = sm.kept_reply(client, op.seq);
    EXPECT_NE(kept, nullptr);
    return kept != nullptr ? *kept : OpResult{};
  }
  OpResult put(const std::string& key, const std::string& value) {
    return run(op_from(put_op(key, value)));
  }
  OpResult append(const std::string& key, const std::string& value) {
    return run(op_from(append_op(key, value)));
  }
  OpResult get(const std::string& key) { return run(op_from(get_op(key))); }
  OpResult del(const std::string& key, const std::string& range_end = {}) {
    return run(op_from(del_op(key, range_end)));
  }
  OpResult range(const std::string& key, const std::string& range_end = {}, std::uint64_t limit = 0,
                 std::uint8_t flags = 0) {
    return run(op_from(range_op(key, range_end, limit, flags)));
  }
  OpResult txn(std::vector<Compare> compares, std::vector<RequestOp> success,
               std::vector<RequestOp> failure = {}) {
    return run(txn_of(std::move(compares), std::move(success), std::move(failure)));
  }
  const KeyEntry& at(const std::string& key) const { return sm.data().at(key); }

  // `n` keys "k00000", "k00001", ... with `value`, in one instance and
  // without the per-op invariant walk (O(keys) each).
  void fill(std::size_t n, const std::string& value = "v", ClientId client = 99) {
    std::uint64_t& seq = last_seq[client];
    for (std::size_t i = 0; i < n; ++i) {
      char key[32];  // "k" and up to 20 digits
      std::snprintf(key, sizeof key, "k%05zu", i);
      ++seq;
      KvOp op = op_from(put_op(key, value));
      op.client_id = client;
      op.seq = seq;
      op.ack = seq - 1;
      ASSERT_EQ(sm.execute(op, next_instance), OpOutcome::ran);
    }
    sm.end_instance(next_instance++);
    EXPECT_EQ(sm.check_invariants(), "");
  }
};

std::vector<std::string> keys_of(const std::vector<KeyValue>& kvs) {
  std::vector<std::string> keys;
  for (const KeyValue& kv : kvs) keys.push_back(kv.key);
  return keys;
}

// ------------------------------------------------------------------ revisions

TEST(DataModelRevisions, EveryPutAppendAndDeletedKeyMovesTheRevisionByOne) {
  Store s;
  EXPECT_EQ(s.sm.revision(), 0u);
  EXPECT_EQ(s.put("a", "1").revision, 1u);
  EXPECT_EQ(s.append("a", "2").revision, 2u);
  EXPECT_EQ(s.put("b", "1").revision, 3u);
  EXPECT_EQ(s.append("c", "1").revision, 4u) << "an append creating its key";
  const OpResult deleted = s.del("a", kEveryKey);
  EXPECT_EQ(deleted.count, 3u);
  EXPECT_EQ(deleted.revision, 7u) << "one revision per deleted key";
  EXPECT_EQ(s.sm.revision(), 7u);
}

TEST(DataModelRevisions, CreateModAndVersionFollowTheKeysWrites) {
  Store s;
  s.put("a", "1");
  EXPECT_EQ(s.at("a"), (KeyEntry{"1", 1, 1, 1}));
  s.put("b", "x");
  s.put("a", "2");
  EXPECT_EQ(s.at("a"), (KeyEntry{"2", 1, 3, 2}));
  s.append("a", "3");
  EXPECT_EQ(s.at("a"), (KeyEntry{"23", 1, 4, 3}));
  EXPECT_EQ(s.at("b"), (KeyEntry{"x", 2, 2, 1})) << "another key's writes leave it alone";
}

TEST(DataModelRevisions, ARecreatedKeyRestartsAtVersionOneWithANewCreateRevision) {
  Store s;
  s.put("k", "1");
  s.put("k", "2");
  EXPECT_EQ(s.del("k").count, 1u);
  EXPECT_FALSE(s.sm.data().contains("k"));
  s.append("k", "3");
  EXPECT_EQ(s.at("k"), (KeyEntry{"3", 4, 4, 1}));
}

TEST(DataModelRevisions, ReadsReportTheRevisionTheyReadAtAndMoveNothing) {
  Store s;
  s.put("a", "1");
  s.put("b", "2");
  EXPECT_EQ(s.get("a").revision, 2u);
  EXPECT_EQ(s.range("a", kEveryKey).revision, 2u);
  EXPECT_EQ(s.get("absent").revision, 2u);
  EXPECT_EQ(s.txn({}, {get_op("a"), range_op("a", kEveryKey)}).revision, 2u);
  EXPECT_EQ(s.sm.revision(), 2u);
}

TEST(DataModelRevisions, DeletingAnAbsentKeyMovesNothing) {
  Store s;
  s.put("b", "1");
  const OpResult one = s.del("a");
  EXPECT_EQ(one.count, 0u);
  EXPECT_EQ(one.revision, 1u);
  const OpResult range = s.del("c", kEveryKey);
  EXPECT_EQ(range.count, 0u);
  EXPECT_EQ(range.revision, 1u);
  EXPECT_EQ(s.txn({}, {del_op("x")}).revision, 1u);
  EXPECT_EQ(s.at("b"), (KeyEntry{"1", 1, 1, 1}));
}

// --------------------------------------------------------------- delete_range

TEST(DataModelDeleteRange, DeletesOneKeyAPrefixOrEveryKeyFromAKey) {
  Store s;
  for (const char* k : {"a", "ab", "abc", "b", "c", "d"}) s.put(k, "v");
  EXPECT_EQ(s.del("ab").count, 1u) << "an empty range_end is the key alone";
  EXPECT_TRUE(s.sm.data().contains("abc"));
  EXPECT_EQ(s.del("a", prefix_end("a")).count, 2u);  // a, abc
  EXPECT_EQ(s.sm.data().size(), 3u);
  EXPECT_EQ(s.del("c", kEveryKey).count, 2u);  // c, d
  EXPECT_EQ(keys_of(s.range("", kEveryKey).kvs), std::vector<std::string>{"b"});
  EXPECT_EQ(s.sm.revision(), 6u + 5u);
  EXPECT_EQ(s.sm.data_bytes(), 2u);
}

// ---------------------------------------------------------------------- range

TEST(DataModelRange, ReturnsKeysInByteOrderWithTheirRevisions) {
  Store s;
  const std::vector<std::string> written = {"b",  "\xff", "a", "B", std::string("\0x", 2),
                                            "ab", "\x80", ""};
  for (const std::string& k : written) s.put(k, "v:" + k);
  const OpResult r = s.range("", kEveryKey);
  const std::vector<std::string> expected = {
      "", std::string("\0x", 2), "B", "a", "ab", "b", "\x80", "\xff"};
  EXPECT_EQ(keys_of(r.kvs), expected) << "bytes compare unsigned: 0x80 and 0xff sort last";
  EXPECT_EQ(r.count, written.size());
  EXPECT_FALSE(r.more);
  for (const KeyValue& kv : r.kvs) {
    const KeyEntry& e = s.at(kv.key);
    EXPECT_EQ(kv, (KeyValue{kv.key, e.value, e.create_revision, e.mod_revision, e.version}));
  }
}

TEST(DataModelRange, ALimitCutsTheKeysSaysMoreAndStillCountsEveryKey) {
  Store s;
  for (const char* k : {"a", "b", "c", "d", "e"}) s.put(k, "v");
  const OpResult r = s.range("b", kEveryKey, 2);
  EXPECT_EQ(keys_of(r.kvs), (std::vector<std::string>{"b", "c"}));
  EXPECT_TRUE(r.more);
  EXPECT_EQ(r.count, 4u);
  const OpResult exact = s.range("b", "d", 2);
  EXPECT_EQ(keys_of(exact.kvs), (std::vector<std::string>{"b", "c"}));
  EXPECT_FALSE(exact.more) << "the limit reached exactly with nothing after";
  EXPECT_EQ(exact.count, 2u);
  EXPECT_EQ(s.range("bb").count, 0u) << "a single key that is absent";
  EXPECT_EQ(keys_of(s.range("c").kvs), std::vector<std::string>{"c"});
}

TEST(DataModelRange, KeysOnlyLeavesOutValuesAndCountOnlyLeavesOutKeys) {
  Store s;
  for (const char* k : {"a", "b", "c"}) s.put(k, "value");
  const OpResult keys = s.range("a", kEveryKey, 0, kRangeKeysOnly);
  ASSERT_EQ(keys.kvs.size(), 3u);
  for (const KeyValue& kv : keys.kvs) {
    EXPECT_EQ(kv.value, "") << kv.key;
    EXPECT_EQ(kv.version, 1u) << "revisions are still there";
  }
  const OpResult counted = s.range("a", kEveryKey, 1, kRangeCountOnly);
  EXPECT_TRUE(counted.kvs.empty());
  EXPECT_EQ(counted.count, 3u);
  EXPECT_FALSE(counted.more) << "a count is whole; there is nothing more to read";
}

TEST(DataModelRange, ANulRangeEndReadsEveryKeyFromTheStartKey) {
  Store s;
  for (const char* k : {"a", "b", "c", "\xff\xff"}) s.put(k, "v");
  EXPECT_EQ(keys_of(s.range("b", kEveryKey).kvs), (std::vector<std::string>{"b", "c", "\xff\xff"}));
  EXPECT_EQ(s.range("", kEveryKey).count, 4u);
}

TEST(DataModelRange, StopsAtMaxReplyKeysAndSaysMore) {
  Store s;
  s.fill(kMaxReplyKeys + 1);
  const OpResult r = s.range("", kEveryKey);
  EXPECT_EQ(r.kvs.size(), kMaxReplyKeys);
  EXPECT_TRUE(r.more);
  EXPECT_EQ(r.count, kMaxReplyKeys + 1);
}

TEST(DataModelRange, StopsAtTheByteBoundButTheFirstKeyAlwaysFits) {
  Store s({.max_reply_bytes = 100});
  s.put("a", std::string(40, 'x'));  // 1 + 40 + 32 bytes counted
  s.put("b", std::string(40, 'x'));
  s.put("c", std::string(200, 'x'));
  const OpResult two = s.range("a", kEveryKey);
  EXPECT_EQ(keys_of(two.kvs), std::vector<std::string>{"a"});
  EXPECT_TRUE(two.more);
  EXPECT_EQ(two.count, 3u);
  const OpResult big = s.range("c");
  ASSERT_EQ(big.kvs.size(), 1u) << "a key alone larger than the bound is still read";
  EXPECT_EQ(big.kvs[0].value.size(), 200u);
  EXPECT_FALSE(big.more);
  const OpResult keys = s.range("a", kEveryKey, 0, kRangeKeysOnly);
  EXPECT_EQ(keys.kvs.size(), 3u) << "keys only: the values do not count";
}

// ------------------------------------------------------------------------ txn

// A key's targets against the compare's operand: `relation` is where the
// key's target lies (-1 below the operand, 0 equal, 1 above).
bool expected_outcome(CompareOp op, int relation) {
  switch (op) {
    case CompareOp::equal: return relation == 0;
    case CompareOp::not_equal: return relation != 0;
    case CompareOp::less: return relation < 0;
    case CompareOp::greater: return relation > 0;
  }
  return false;
}

TEST(DataModelTxn, EveryCompareTargetAndOpHoldsExactlyWhenItShould) {
  Store s;
  s.put("other", "x");  // revision 1
  s.put("k", "m");      // 2: create_revision 2
  s.put("other", "y");  // 3
  s.put("k", "m");      // 4: mod_revision 4, version 2
  const std::map<CompareTarget, std::uint64_t> actual = {{CompareTarget::version, 2},
                                                         {CompareTarget::create_revision, 2},
                                                         {CompareTarget::mod_revision, 4}};
  for (const CompareOp op :
       {CompareOp::equal, CompareOp::not_equal, CompareOp::less, CompareOp::greater}) {
    for (int relation = -1; relation <= 1; ++relation) {
      const std::string operand = relation < 0 ? "n" : relation == 0 ? "m" : "l";
      EXPECT_EQ(s.txn({value_cmp(op, "k", operand)}, {}).succeeded, expected_outcome(op, relation))
          << "value op " << static_cast<int>(op) << " relation " << relation;
      for (const auto& [target, value] : actual) {
        const std::uint64_t operand_number = relation < 0    ? value + 1
                                             : relation == 0 ? value
                                                             : value - 1;
        const Compare c = number_cmp(target, op, "k", operand_number);
        EXPECT_EQ(s.txn({c}, {}).succeeded, expected_outcome(op, relation))
            << "target " << static_cast<int>(target) << " op " << static_cast<int>(op)
            << " relation " << relation;
      }
    }
  }
  EXPECT_EQ(s.sm.revision(), 4u) << "compares and empty branches change nothing";
}

TEST(DataModelTxn, AnAbsentKeyComparesAsAnEmptyValueAtVersionAndRevisionsZero) {
  Store s;
  s.put("present", "v");
  for (const CompareTarget t :
       {CompareTarget::version, CompareTarget::create_revision, CompareTarget::mod_revision}) {
    EXPECT_TRUE(s.txn({number_cmp(t, CompareOp::equal, "absent", 0)}, {}).succeeded)
        << static_cast<int>(t);
    EXPECT_FALSE(s.txn({number_cmp(t, CompareOp::greater, "absent", 0)}, {}).succeeded)
        << static_cast<int>(t);
    EXPECT_FALSE(s.txn({number_cmp(t, CompareOp::equal, "present", 0)}, {}).succeeded)
        << static_cast<int>(t);
  }
  EXPECT_TRUE(s.txn({value_cmp(CompareOp::equal, "absent", "")}, {}).succeeded);
  EXPECT_TRUE(s.txn({value_cmp(CompareOp::less, "absent", "a")}, {}).succeeded);
}

TEST(DataModelTxn, AllComparesMustHoldAndTheOtherBranchRunsOtherwise) {
  Store s;
  s.put("a", "1");
  s.put("b", "2");
  const Compare a_is_1 = value_cmp(CompareOp::equal, "a", "1");
  const Compare b_is_9 = value_cmp(CompareOp::equal, "b", "9");
  const std::vector<RequestOp> success = {put_op("won", "yes")};
  const std::vector<RequestOp> failure = {get_op("a"), range_op("a", kEveryKey), del_op("b"),
                                          put_op("lost", "yes"), append_op("a", "+")};
  const OpResult failed = s.txn({a_is_1, b_is_9}, success, failure);
  EXPECT_FALSE(failed.succeeded);
  ASSERT_EQ(failed.responses.size(), failure.size()) << "one response per op of the branch";
  EXPECT_EQ(failed.responses[0], (OpResponse{.op = OpKind::get, .value = "1"}));
  EXPECT_EQ(failed.responses[1].op, OpKind::range);
  EXPECT_EQ(keys_of(failed.responses[1].kvs), (std::vector<std::string>{"a", "b"}));
  EXPECT_EQ(failed.responses[1].count, 2u);
  EXPECT_EQ(failed.responses[2], (OpResponse{.op = OpKind::delete_range, .count = 1}));
  EXPECT_EQ(failed.responses[3], (OpResponse{.op = OpKind::put}));
  EXPECT_EQ(failed.responses[4], (OpResponse{.op = OpKind::append}));
  EXPECT_FALSE(s.sm.data().contains("won"));
  EXPECT_EQ(s.at("a").value, "1+");
  EXPECT_FALSE(s.sm.data().contains("b"));

  const OpResult stale = s.txn({a_is_1, value_cmp(CompareOp::equal, "lost", "yes")}, success, {});
  EXPECT_FALSE(stale.succeeded) << "a is 1+ now";
  EXPECT_TRUE(stale.responses.empty()) << "an empty failure branch";
  const OpResult really =
      s.txn({value_cmp(CompareOp::equal, "a", "1+"), value_cmp(CompareOp::equal, "lost", "yes")},
            success, failure);
  EXPECT_TRUE(really.succeeded);
  ASSERT_EQ(really.responses.size(), 1u);
  EXPECT_EQ(s.at("won").value, "yes");
}

TEST(DataModelTxn, EachWriteOfATxnMovesTheRevisionAndLaterOpsSeeEarlierOnes) {
  Store s;
  s.put("p/1", "x");
  s.put("p/2", "x");  // revision 2
  const OpResult r = s.txn({}, {put_op("a", "1"), append_op("a", "2"), get_op("a"),
                                del_op("p/", prefix_end("p/")), put_op("b", "3"), get_op("p/1")});
  EXPECT_TRUE(r.succeeded) << "no compares: success";
  EXPECT_EQ(r.revision, 2u + 5u) << "put, append, two deleted keys, put";
  EXPECT_EQ(s.at("a"), (KeyEntry{"12", 3, 4, 2}));
  EXPECT_EQ(s.at("b"), (KeyEntry{"3", 7, 7, 1}));
  ASSERT_EQ(r.responses.size(), 6u);
  EXPECT_EQ(r.responses[2].value, "12");
  EXPECT_EQ(r.responses[3].count, 2u);
  EXPECT_EQ(r.responses[5].value, "") << "deleted earlier in the same txn";
}

TEST(DataModelTxn, ARetriedTxnRunsOnceAndItsKeptReplyStaysTheSame) {
  Store s;
  s.get("");  // seq 1 opens the session, as the client library does
  KvOp lock = txn_of({number_cmp(CompareTarget::version, CompareOp::equal, "lock", 0)},
                     {put_op("lock", "me"), range_op("", kEveryKey)}, {get_op("lock")});
  lock.client_id = 1;
  lock.seq = 2;
  lock.ack = 1;
  ASSERT_EQ(s.sm.execute(lock, s.next_instance), OpOutcome::ran);
  s.sm.end_instance(s.next_instance++);
  ASSERT_NE(s.sm.kept_reply(1, 2), nullptr);
  const OpResult first = *s.sm.kept_reply(1, 2);
  EXPECT_TRUE(first.succeeded);
  for (int copy = 0; copy < 3; ++copy) {  // copies decided in later instances
    EXPECT_EQ(s.sm.execute(lock, s.next_instance), OpOutcome::duplicate);
    s.sm.end_instance(s.next_instance++);
  }
  ASSERT_NE(s.sm.kept_reply(1, 2), nullptr);
  EXPECT_EQ(*s.sm.kept_reply(1, 2), first) << "not the failure branch a second run would take";
  EXPECT_EQ(s.sm.revision(), 1u);
  EXPECT_EQ(s.at("lock").version, 1u);
}

// A transaction's reply is bounded as a range's is (codec.hpp): at most
// kMaxReplyKeys keys over all its responses, or the client cannot decode it
// (kMaxReplyMessageValues assumes as much).
TEST(DataModelTxn, ATxnReplyHoldsAtMostMaxReplyKeysOverAllItsRanges) {
  Store s;
  s.fill(kMaxReplyKeys);
  const OpResult r = s.txn({}, {range_op("", kEveryKey), range_op("", kEveryKey)});
  std::size_t keys = 0;
  bool more = false;
  for (const OpResponse& o : r.responses) {
    keys += o.kvs.size();
    more = more || o.more;
  }
  EXPECT_LE(keys, kMaxReplyKeys);
  EXPECT_TRUE(more) << "the second range did not fit";
  const std::string frame = encode(ClientReply::ok(1, 2, r));
  Result<Body> decoded = decode(frame, kMaxClientFrameBytes, kMaxReplyMessageValues);
  EXPECT_TRUE(decoded.ok()) << decoded.error();
}

// The first key of a reply always fits (a value is at most kMaxValueBytes),
// but only the first of the whole reply: a txn of several ranges of large
// values must not hold each one's first key, or its reply outgrows a client
// frame.
TEST(DataModelTxn, ATxnReplyStaysWithinTheByteBoundOverAllItsRanges) {
  Store s({.max_reply_bytes = 100});
  s.put("a", std::string(80, 'x'));
  s.put("b", std::string(80, 'x'));
  s.put("c", std::string(80, 'x'));
  const OpResult r = s.txn({}, {range_op("a"), range_op("b"), get_op("c")});
  ASSERT_EQ(r.responses.size(), 3u);
  EXPECT_EQ(r.responses[0].kvs.size(), 1u) << "the reply's first key";
  EXPECT_TRUE(r.responses[1].kvs.empty()) << "past the bound";
  EXPECT_TRUE(r.responses[1].more);
  EXPECT_EQ(r.responses[2].value, "") << "a get past the bound answers \"\" with more";
  EXPECT_TRUE(r.responses[2].more);
}

TEST(DataModelTxn, TwoRangesOfLargestValuesStillFitOneClientFrame) {
  Store s;
  const std::string largest(kMaxValueBytes, 'v');
  s.put("a", largest);
  s.put("b", largest);
  const OpResult r = s.txn({}, {range_op("a"), range_op("b")});
  const std::string frame = encode(ClientReply::ok(1, 2, r));
  EXPECT_LE(frame.size(), kMaxClientFrameBytes);
}

// -------------------------------------------------------- kept reply accounting

TEST(DataModelReplies, RetainedReplyBytesMatchTheKeptRangeAndTxnReplies) {
  Store s;
  s.put("a", "xx");
  s.put("b", "yyy");
  const OpResult range = s.run(op_from(range_op("a", kEveryKey)), 2);
  EXPECT_EQ(reply_bytes(range), (1 + 2 + kReplyBytesPerKey) + (1 + 3 + kReplyBytesPerKey));
  const OpResult txn = s.run(txn_of({}, {get_op("a"), range_op("b"), put_op("c", "z")}), 3);
  EXPECT_EQ(reply_bytes(txn), (2 + kReplyBytesPerKey) +
                                  (kReplyBytesPerKey + 1 + 3 + kReplyBytesPerKey) +
                                  kReplyBytesPerKey);
  s.run(op_from(range_op("a", kEveryKey, 0, kRangeCountOnly)), 4);
  std::size_t kept = 0;
  for (const auto& [client, seq] : s.last_seq) {
    if (const OpResult* r = s.sm.kept_reply(client, seq)) kept += reply_bytes(*r);
  }
  EXPECT_EQ(s.sm.retained_reply_bytes(), kept);
  EXPECT_EQ(s.sm.retained_replies(), s.last_seq.size());
}

TEST(DataModelReplies, TheReplyBudgetDropsTheOldestRangeRepliesFirst) {
  Store s({.retained_reply_bytes = 200});
  s.put("a", std::string(60, 'x'));  // a range of it counts 1 + 60 + 32 = 93 bytes
  for (ClientId c = 2; c <= 5; ++c) s.run(op_from(range_op("a")), c);
  EXPECT_LE(s.sm.retained_reply_bytes(), 200u);
  EXPECT_EQ(s.sm.retained_reply_bytes(), 2 * 93u);
  EXPECT_EQ(s.sm.kept_reply(2, 1), nullptr);
  EXPECT_EQ(s.sm.kept_reply(3, 1), nullptr);
  ASSERT_NE(s.sm.kept_reply(5, 1), nullptr);
  EXPECT_EQ(s.sm.kept_reply(5, 1)->kvs.size(), 1u);
  KvOp retry = op_from(range_op("a"));
  retry.client_id = 2;
  retry.seq = 1;
  EXPECT_EQ(s.sm.execute(retry, s.next_instance), OpOutcome::duplicate)
      << "a dropped reply does not let its op run again";
}

// ------------------------------------------------------------------ snapshots

// A store with every kind of state: revisions moved by deletes, a
// recreated key, kept range, txn and delete replies.
Store varied_store() {
  Store s;
  s.put("a", "1");
  s.put("b", "2");
  s.put("\xff", "3");
  s.append("a", "+");
  s.del("b");
  s.put("b", "again");
  s.run(op_from(range_op("", kEveryKey, 2)), 2);
  s.run(txn_of({number_cmp(CompareTarget::version, CompareOp::equal, "a", 2)},
               {put_op("c", "t"), get_op("a")}, {}),
        3);
  s.run(op_from(del_op("zz", kEveryKey)), 4);
  return s;
}

void expect_same_state(const KvStateMachine& a, const KvStateMachine& b,
                       const std::vector<ClientId>& clients) {
  EXPECT_TRUE(a.data() == b.data()) << "values and revisions";
  EXPECT_EQ(a.revision(), b.revision());
  EXPECT_EQ(a.data_bytes(), b.data_bytes());
  EXPECT_EQ(a.retained_reply_bytes(), b.retained_reply_bytes());
  EXPECT_EQ(a.retained_replies(), b.retained_replies());
  for (ClientId c : clients) {
    for (std::uint64_t seq = 1; seq <= 16; ++seq) {
      const OpResult* ra = a.kept_reply(c, seq);
      const OpResult* rb = b.kept_reply(c, seq);
      ASSERT_EQ(ra == nullptr, rb == nullptr) << "client " << c << " seq " << seq;
      if (ra != nullptr) {
        EXPECT_EQ(*ra, *rb) << "client " << c << " seq " << seq;
      }
    }
  }
}

TEST(DataModelSnapshot, ARoundTripKeepsRevisionsAndKeptRepliesExactly) {
  Store original = varied_store();
  SnapshotRecord record;
  original.sm.write_to(record);
  record.format = kSnapshotFormat;
  record.applied_below = original.next_instance;

  Store direct;
  SnapshotRecord copy = record;
  direct.sm.load(copy);
  EXPECT_EQ(direct.sm.check_invariants(), "");
  expect_same_state(original.sm, direct.sm, {1, 2, 3, 4});

  Result<SnapshotRecord> parsed = parse_snapshot(encode_snapshot(record));
  ASSERT_TRUE(parsed.ok()) << parsed.error();
  Store restored;
  restored.sm.load(*parsed);
  restored.next_instance = original.next_instance;
  restored.last_seq = original.last_seq;
  EXPECT_EQ(restored.sm.check_invariants(), "");
  expect_same_state(original.sm, restored.sm, {1, 2, 3, 4});
  ASSERT_NE(restored.sm.kept_reply(3, 1), nullptr);
  EXPECT_TRUE(restored.sm.kept_reply(3, 1)->succeeded);

  // And both go on alike.
  for (Store* s : {&original, &restored}) {
    s->put("a", "next");
    s->del("", kEveryKey);
    s->put("b", "new");
  }
  expect_same_state(original.sm, restored.sm, {1, 2, 3, 4});
  EXPECT_EQ(restored.at("b").create_revision, restored.sm.revision());
}

// A format 1 snapshot, as kvpaxosd wrote it before the data model: keys
// from a hash map (no order), each session's kept reply as a value.
std::string format_one_snapshot() {
  using Session1 = std::tuple<ClientId, std::uint64_t, bool, std::string, InstanceId>;
  const std::vector<std::pair<std::string, std::string>> kv = {
      {"b", "2"}, {"\xff", "ff"}, {"a", "1"}, {"B", "big"}, {"", "empty"}};
  const std::vector<Session1> sessions = {{7, 3, true, "kept", 40}, {8, 1, false, "", 12}};
  msgpack::sbuffer buf;
  msgpack::pack(buf,
                std::make_tuple(std::uint32_t{1}, InstanceId{41}, kv, sessions, std::uint64_t{0}));
  return std::string(buf.data(), buf.size());
}

TEST(DataModelSnapshot, AFormatOneSnapshotLoadsAtRevisionZeroWithEveryKeyAtVersionOne) {
  Result<SnapshotRecord> parsed = parse_snapshot(format_one_snapshot());
  ASSERT_TRUE(parsed.ok()) << parsed.error();
  EXPECT_EQ(parsed->applied_below, 41u);
  Store s;
  s.sm.load(*parsed);
  EXPECT_EQ(s.sm.check_invariants(), "");
  EXPECT_EQ(s.sm.revision(), 0u);
  std::vector<std::string> keys;
  for (const auto& [k, e] : s.sm.data()) {
    keys.push_back(k);
    EXPECT_EQ(e.version, 1u) << k;
    EXPECT_EQ(e.create_revision, 0u) << k;
    EXPECT_EQ(e.mod_revision, 0u) << k;
  }
  EXPECT_EQ(keys, (std::vector<std::string>{"", "B", "a", "b", "\xff"}));
  EXPECT_EQ(s.sm.data_bytes(), (1u + 1) + (1 + 2) + (1 + 1) + (1 + 3) + (0 + 5));
  ASSERT_NE(s.sm.kept_reply(7, 3), nullptr);
  EXPECT_EQ(*s.sm.kept_reply(7, 3), OpResult{.value = "kept"});
  EXPECT_TRUE(s.sm.executed(8, 1));
  EXPECT_EQ(s.sm.kept_reply(8, 1), nullptr);

  s.next_instance = 41;
  s.put("a", "next");
  EXPECT_EQ(s.at("a"), (KeyEntry{"next", 0, 1, 2})) << "its history before the format is lost";
  EXPECT_EQ(keys_of(s.range("", kEveryKey).kvs).size(), 5u);
}

TEST(DataModelSnapshot, ParseRefusesFormatTwoRecordsKvpaxosdNeverWrites) {
  SnapshotRecord good;
  varied_store().sm.write_to(good);
  good.format = kSnapshotFormat;
  ASSERT_TRUE(parse_snapshot(encode_snapshot(good)).ok());
  ASSERT_GE(good.kv.size(), 3u);

  std::vector<std::pair<std::string, SnapshotRecord>> bad;
  bad.emplace_back("create after mod", good);
  bad.back().second.key_revisions[0].create_revision =
      bad.back().second.key_revisions[0].mod_revision + 1;
  bad.emplace_back("mod after the store's revision", good);
  bad.back().second.key_revisions[1].mod_revision = good.revision + 1;
  bad.emplace_back("version zero", good);
  bad.back().second.key_revisions[2].version = 0;
  bad.emplace_back("keys out of order", good);
  std::swap(bad.back().second.kv[0], bad.back().second.kv[1]);
  bad.emplace_back("a key twice", good);
  bad.back().second.kv[1] = bad.back().second.kv[0];
  bad.emplace_back("fewer revisions than keys", good);
  bad.back().second.key_revisions.pop_back();
  bad.emplace_back("more revisions than keys", good);
  bad.back().second.key_revisions.push_back({});
  bad.emplace_back("unknown format", good);
  bad.back().second.format = kSnapshotFormat + 1;
  bad.emplace_back("a client twice", good);
  bad.back().second.sessions.push_back(good.sessions.front());
  for (const auto& [what, record] : bad) {
    Result<SnapshotRecord> parsed = parse_snapshot(encode_snapshot(record));
    ASSERT_FALSE(parsed.ok()) << what;
    EXPECT_NE(parsed.error().find("snapshot"), std::string::npos) << what << ": " << parsed.error();
  }
}

// ------------------------------------------------------- prefix_end, in_range

TEST(DataModelKeys, PrefixEndIncrementsTheLastByteBelowFFAndCutsTheRest) {
  EXPECT_EQ(prefix_end("a"), "b");
  EXPECT_EQ(prefix_end("ab"), "ac");
  EXPECT_EQ(prefix_end("a\xfe"), "a\xff");
  EXPECT_EQ(prefix_end("a\xff"), "b");
  EXPECT_EQ(prefix_end("a\xff\xff"), "b");
  EXPECT_EQ(prefix_end(std::string("\0", 1)), "\x01");
  EXPECT_EQ(prefix_end("\xff"), kEveryKey) << "no key above every 0xff-prefixed key";
  EXPECT_EQ(prefix_end("\xff\xff"), kEveryKey);
  EXPECT_EQ(prefix_end(""), kEveryKey) << "the empty prefix: every key";
}

TEST(DataModelKeys, InRangeTakesAKeyAloneAHalfOpenRangeOrEveryKeyFromTheStart) {
  EXPECT_TRUE(in_range("a", "a", ""));
  EXPECT_FALSE(in_range("ab", "a", ""));
  EXPECT_TRUE(in_range("a", "a", "b"));
  EXPECT_TRUE(in_range("a\xff", "a", "b"));
  EXPECT_FALSE(in_range("b", "a", "b")) << "range_end is excluded";
  EXPECT_FALSE(in_range("", "a", "b"));
  EXPECT_TRUE(in_range("\xff\xff", "a", kEveryKey));
  EXPECT_FALSE(in_range("A", "a", kEveryKey));
  EXPECT_TRUE(in_range("", "", kEveryKey));
}

TEST(DataModelKeys, AKeyIsInItsPrefixsRangeExactlyWhenItHasThePrefix) {
  const std::vector<std::string> keys = {"",
                                         "a",
                                         "ab",
                                         "a\xff",
                                         "a\xff\xff",
                                         "b",
                                         "\xff",
                                         "\xff\x01",
                                         "\xff\xff",
                                         std::string("\0", 1),
                                         std::string("a\0", 2)};
  for (const std::string& prefix : keys) {
    for (const std::string& key : keys) {
      const bool has_prefix = key.starts_with(prefix);
      EXPECT_EQ(in_range(key, prefix, prefix_end(prefix)), has_prefix)
          << "key of " << key.size() << " bytes, prefix of " << prefix.size();
    }
  }
}

// ----------------------------------------------------------- wire and bounds

std::size_t scanned_values(const std::string& bytes) {
  Result<MsgpackShape> shape = scan_msgpack(bytes, {.max_values = 1 << 20, .max_depth = 16});
  EXPECT_TRUE(shape.ok()) << shape.error();
  return shape.ok() ? shape->values : 0;
}

TEST(DataModelWire, WireValuesIsWhatScanMsgpackCountsInTheEncodedOp) {
  std::vector<KvOp> ops = {
      KvOp::no_op(),
      op_from(put_op("k", "v")),
      op_from(range_op("a", kEveryKey, 5, kRangeKeysOnly)),
      txn_of({value_cmp(CompareOp::equal, "a", "x")}, {}),
      txn_of({}, {put_op("a", "b")}, {get_op("a"), del_op("a", "b")}),
      txn_of({number_cmp(CompareTarget::mod_revision, CompareOp::less, "a", 1ull << 40),
              value_cmp(CompareOp::not_equal, "b", "")},
             {range_op("a", "z", 3, kRangeCountOnly), append_op("x", "y")}, {put_op("", "")}),
      largest_txn(),
  };
  for (std::size_t i = 0; i < ops.size(); ++i) {
    EXPECT_EQ(wire_values(ops[i]), scanned_values(encode_op(ops[i]))) << "op " << i;
  }
  EXPECT_EQ(wire_values(largest_txn()), 2574u);  // the figure kv_op.cpp gives
  EXPECT_LE(wire_values(largest_txn()), kMaxOpValues);
}

TEST(DataModelWire, TheLargestLegalTxnDecodesAsAClientFrameAndAsALogOp) {
  const KvOp txn = largest_txn();
  const ClientRequest request{1,  2, 1, OpKind::txn,  "",          "",
                              "", 0, 0, txn.compares, txn.success, txn.failure};
  EXPECT_EQ(validate(request), "");
  EXPECT_EQ(scanned_values(encode(request)), 2586u);  // the figure codec.hpp gives
  Result<Body> decoded = decode(encode(request), kMaxClientFrameBytes);
  ASSERT_TRUE(decoded.ok()) << decoded.error();
  EXPECT_EQ(std::get<ClientRequest>(decoded.value()).success.size(), kMaxTxnOps);

  const KvOp op = KvOp::from(request);
  Result<KvOp> logged = decode_op(encode_op(op));
  ASSERT_TRUE(logged.ok()) << logged.error();
  EXPECT_EQ(logged->compares.size(), kMaxTxnCompares);
  Result<KvOp> forwarded = validate_forwarded_op(encode_op(op));
  EXPECT_TRUE(forwarded.ok()) << forwarded.error();
  Result<LogEntry> entry = decode_entry(encode_batch(0, {encode_op(op)}));
  EXPECT_TRUE(entry.ok()) << entry.error();
}

TEST(DataModelWire, TheLargestRangeReplyDecodesAsAClientReply) {
  Store s;
  s.fill(kMaxReplyKeys + 10, "value");
  const OpResult r = s.range("", kEveryKey);
  ASSERT_EQ(r.kvs.size(), kMaxReplyKeys);
  const std::string frame = encode(ClientReply::ok(1, 2, r));
  EXPECT_LE(frame.size(), kMaxClientFrameBytes);
  Result<Body> decoded = decode(frame, kMaxClientFrameBytes, kMaxReplyMessageValues);
  ASSERT_TRUE(decoded.ok()) << decoded.error();
  EXPECT_EQ(std::get<ClientReply>(decoded.value()).kvs.size(), kMaxReplyKeys);
  EXPECT_FALSE(decode(frame, kMaxClientFrameBytes).ok())
      << "the client's own bound is what lets it read this";
}

TEST(DataModelWire, TheLargestValueAndKeyInARangeReplyFitAClientFrame) {
  Store s;
  const std::string key(kMaxKeyBytes, 'k');
  s.put(key, std::string(kMaxValueBytes, 'v'));
  const OpResult r = s.range(key);
  ASSERT_EQ(r.kvs.size(), 1u);
  const std::string frame = encode(ClientReply::ok(1, 2, r));
  EXPECT_LE(frame.size(), kMaxClientFrameBytes);
  EXPECT_TRUE(decode(frame, kMaxClientFrameBytes, kMaxReplyMessageValues).ok());
}

// ------------------------------------------------------- front door, codec

ClientRequest request_of(OpKind op, const std::string& key, const std::string& value = "",
                         const std::string& range_end = "", std::uint8_t flags = 0) {
  return ClientRequest{.client_id = 1,
                       .seq = 1,
                       .op = op,
                       .key = key,
                       .value = value,
                       .range_end = range_end,
                       .flags = flags};
}

TEST(DataModelFrontDoor, ValidateRefusesWhatAnOpDoesNotTakeWithAClearReason) {
  ClientRequest nested = request_of(OpKind::txn, "");
  nested.success.push_back({.op = OpKind::txn});
  ClientRequest many_ops = request_of(OpKind::txn, "");
  many_ops.failure.assign(kMaxTxnOps + 1, get_op("k"));
  ClientRequest many_compares = request_of(OpKind::txn, "");
  many_compares.compares.assign(kMaxTxnCompares + 1, value_cmp(CompareOp::equal, "k", ""));
  ClientRequest txn_key = request_of(OpKind::txn, "k");
  ClientRequest big_compare_key = request_of(OpKind::txn, "");
  big_compare_key.compares.push_back(
      value_cmp(CompareOp::equal, std::string(kMaxKeyBytes + 1, 'k'), ""));
  ClientRequest bad_branch_op = request_of(OpKind::txn, "");
  bad_branch_op.success.push_back({.op = OpKind::get, .key = "k", .value = "v"});
  ClientRequest limit_on_get = request_of(OpKind::get, "k");
  limit_on_get.limit = 3;
  ClientRequest limit_in_txn = request_of(OpKind::txn, "");
  limit_in_txn.failure.push_back({.op = OpKind::put, .key = "k", .value = "v", .limit = 3});
  ClientRequest unknown_target = request_of(OpKind::txn, "");
  unknown_target.compares.push_back(value_cmp(CompareOp::equal, "k", ""));
  unknown_target.compares.back().target = static_cast<CompareTarget>(9);
  ClientRequest compares_on_put = request_of(OpKind::put, "k", "v");
  compares_on_put.compares.push_back(value_cmp(CompareOp::equal, "k", ""));

  const std::vector<std::tuple<std::string, ClientRequest, std::string>> cases = {
      {"value on get", request_of(OpKind::get, "k", "v"), "get takes no value"},
      {"value on delete", request_of(OpKind::delete_range, "k", "v"),
       "delete_range takes no value"},
      {"value on range", request_of(OpKind::range, "k", "v"), "range takes no value"},
      {"range_end on put", request_of(OpKind::put, "k", "v", "z"), "put takes no range_end"},
      {"range_end on get", request_of(OpKind::get, "k", "", "z"), "get takes no range_end"},
      {"flags on get", request_of(OpKind::get, "k", "", "", kRangeKeysOnly), "get takes no flags"},
      {"flags on delete", request_of(OpKind::delete_range, "k", "", "", kRangeCountOnly),
       "delete_range takes no flags"},
      {"unknown flags", request_of(OpKind::range, "k", "", "", 4), "unknown range flags 4"},
      {"range_end equal to key", request_of(OpKind::range, "k", "", "k"),
       "range_end must be above key"},
      {"range_end below key", request_of(OpKind::delete_range, "k", "", "a"),
       "range_end must be above key"},
      {"nested txn", nested, "may not hold another txn"},
      {"too many ops", many_ops, "129 failure ops; the limit is 128"},
      {"too many compares", many_compares, "129 compares; the limit is 128"},
      {"key on txn", txn_key, "txn takes no key"},
      {"oversized compare key", big_compare_key, "compare key of 65537 bytes exceeds the limit"},
      {"value on a txn's get", bad_branch_op, "txn success op: get takes no value"},
      {"compares on put", compares_on_put, "put takes no compares or branches"},
      // Also for ops a peer forwards, which no codec check of a client frame sees.
      {"limit on get", limit_on_get, "get takes no limit"},
      {"limit on a txn's put", limit_in_txn, "txn failure op: only range takes a limit"},
      {"unknown compare target", unknown_target, "unknown target or operator"},
  };
  for (const auto& [what, request, reason] : cases) {
    const std::string why = validate(request);
    EXPECT_NE(why.find(reason), std::string::npos) << what << ": \"" << why << "\"";
    Outbox out;
    FrontDoor door(0, false);
    door.on_client_frame("r", encode(request), out);
    ASSERT_EQ(out.size(), 1u) << what;
    Result<Body> body = decode(std::get<ToClient>(out[0].body).body);
    ASSERT_TRUE(body.ok()) << what;
    ASSERT_TRUE(std::holds_alternative<ErrorReply>(body.value())) << what;
    EXPECT_EQ(std::get<ErrorReply>(body.value()).code, ReplyCode::bad_request) << what;
  }
  EXPECT_EQ(
      validate(request_of(OpKind::range, "a", "", kEveryKey, kRangeKeysOnly | kRangeCountOnly)),
      "");
  EXPECT_EQ(validate(request_of(OpKind::delete_range, "\xff", "", prefix_end("\xff"))), "");
}

TEST(DataModelCodec, OutOfRangeEnumsInARequestDoNotDecode) {
  auto with = [](auto change) {
    ClientRequest r = request_of(OpKind::txn, "");
    r.compares.push_back(value_cmp(CompareOp::equal, "k", ""));
    r.success.push_back(get_op("k"));
    change(r);
    return decode(encode(r), kMaxClientFrameBytes);
  };
  const std::vector<std::pair<std::string, Result<Body>>> cases = {
      {"op", with([](ClientRequest& r) { r.op = static_cast<OpKind>(8); })},
      {"member change kind",
       with([](ClientRequest& r) { r.member.kind = static_cast<MemberChangeKind>(6); })},
      {"op", with([](ClientRequest& r) { r.op = static_cast<OpKind>(0); })},
      {"compare target",
       with([](ClientRequest& r) { r.compares[0].target = static_cast<CompareTarget>(4); })},
      {"compare op", with([](ClientRequest& r) { r.compares[0].op = static_cast<CompareOp>(4); })},
      {"txn op", with([](ClientRequest& r) { r.success[0].op = static_cast<OpKind>(9); })},
      {"txn op", with([](ClientRequest& r) { r.success[0].op = static_cast<OpKind>(0); })},
  };
  for (const auto& [field, decoded] : cases) {
    ASSERT_FALSE(decoded.ok()) << field;
    EXPECT_EQ(decoded.error(), "out-of-range " + field + " in ClientRequest");
  }
  EXPECT_TRUE(with([](ClientRequest&) {}).ok());
}

// ------------------------------------------------------------------- batches

TEST(DataModelBatch, ManyLargestTxnsAreSplitSoEveryEntryDecodes) {
  const std::string txn = encode_op(largest_txn());
  const std::size_t values = wire_values(largest_txn());
  constexpr std::size_t kTxns = 100;
  std::vector<std::string> all(kTxns, txn);
  ASSERT_FALSE(decode_entry(encode_batch(0, all)).ok()) << "unsplit, no replica could read it";

  BatchPipeline pipeline(0,
                         {.max_in_flight = 16, .max_batch_ops = 1024, .max_batch_bytes = 1 << 30});
  Waiters waiters;
  for (ClientId c = 1; c <= kTxns; ++c) {
    waiters[c] =
        Waiter{.seq = 1, .route = "r", .op = txn, .values = values, .place = Place::queued};
    pipeline.push(c, Line::back);
  }
  // As the applier does: each applied instance frees its slot for the next batch.
  std::size_t ops = 0;
  std::size_t entries = 0;
  for (int round = 0; round < 1000; ++round) {
    Outbox out;
    pipeline.propose(waiters, 0, ~InstanceId{0}, out);
    if (out.empty()) break;
    for (const Outbound& o : out) {
      const Propose& p = std::get<Propose>(o.body);
      Result<LogEntry> entry = decode_entry(p.value);
      ASSERT_TRUE(entry.ok()) << "instance " << p.instance << ": " << entry.error();
      ops += entry->ops.size();
      ++entries;
      EXPECT_LE(entry->ops.size() * values, kMaxBatchValues);
      EXPECT_EQ(pipeline.take_batch(p.instance).size(), entry->ops.size());
    }
  }
  EXPECT_GE(entries, kTxns * values / kMaxBatchValues);
  EXPECT_EQ(ops, kTxns) << "every txn proposed once";
}

}  // namespace
}  // namespace kvpaxos
