// The deterministic key/value state machine alone: exactly-once under
// retries, bounded sessions (eviction answers session_expired and never
// applies an op twice), the retained-reply byte budget, snapshots.
#include "actors/kv/kv_state_machine.hpp"

#include <gtest/gtest.h>

#include <map>
#include <string>

namespace kvpaxos {
namespace {

KvOp op_of(ClientId client, std::uint64_t seq, OpKind kind, const std::string& key,
           const std::string& value = "") {
  return KvOp{.client_id = client, .seq = seq, .ack = seq - 1, .op = kind, .key = key, .value = value};
}
KvOp append_of(ClientId client, std::uint64_t seq, const std::string& value) {
  return op_of(client, seq, OpKind::append, "k", value);
}

// Feeds ops one instance each, as the applier does, checking the invariants
// after every instance.
struct Replica {
  explicit Replica(KvLimits limits = {}) : sm(limits) {}
  KvStateMachine sm;
  InstanceId next = 0;

  OpOutcome apply(const KvOp& op) { return apply_batch({op}).front(); }
  std::vector<OpOutcome> apply_batch(const std::vector<KvOp>& ops) {
    std::vector<OpOutcome> outcomes;
    for (const KvOp& op : ops) outcomes.push_back(sm.execute(op, next));
    sm.end_instance(next++);
    EXPECT_EQ(sm.check_invariants(), "");
    return outcomes;
  }
};

TEST(KvStateMachine, ARetriedOpDecidedInSeveralInstancesAppliesOnce) {
  Replica r;
  const KvOp op = append_of(1, 1, "x");
  EXPECT_EQ(r.apply(op), OpOutcome::ran);
  EXPECT_EQ(r.apply(op), OpOutcome::duplicate);
  EXPECT_EQ(r.apply_batch({op, op}), (std::vector{OpOutcome::duplicate, OpOutcome::duplicate}));
  EXPECT_EQ(r.sm.data().at("k").value, "x");
  EXPECT_TRUE(r.sm.executed(1, 1));
  EXPECT_FALSE(r.sm.executed(1, 2));
}

TEST(KvStateMachine, AnOlderSeqDecidedAfterANewerOneDoesNotRun) {
  Replica r;
  r.apply(append_of(1, 1, "a"));
  r.apply(append_of(1, 2, "b"));
  EXPECT_EQ(r.apply(append_of(1, 1, "a")), OpOutcome::duplicate);
  EXPECT_EQ(r.sm.data().at("k").value, "ab");
}

TEST(KvStateMachine, KeepsTheLastReplyForRetriesUntilTheClientAcksIt) {
  Replica r;
  r.apply(op_of(1, 1, OpKind::put, "k", "v"));
  r.apply(op_of(1, 2, OpKind::get, "k"));
  ASSERT_NE(r.sm.kept_reply(1, 2), nullptr);
  EXPECT_EQ(r.sm.kept_reply(1, 2)->value, "v");
  EXPECT_EQ(r.sm.kept_reply(1, 1), nullptr) << "only the last op's reply is kept";
  // A copy of seq 2 acknowledging seq 2 (a retry that carries the ack) drops it.
  KvOp acked = op_of(1, 2, OpKind::get, "k");
  acked.ack = 2;
  EXPECT_EQ(r.apply(acked), OpOutcome::duplicate);
  EXPECT_EQ(r.sm.kept_reply(1, 2), nullptr);
  EXPECT_EQ(r.sm.retained_replies(), 0u);
  EXPECT_EQ(r.sm.retained_reply_bytes(), 0u);
}

TEST(KvStateMachine, OnlySeqOneStartsASession) {
  Replica r;
  EXPECT_EQ(r.apply(append_of(7, 5, "x")), OpOutcome::session_expired);
  EXPECT_EQ(r.sm.sessions(), 0u);
  EXPECT_FALSE(r.sm.data().contains("k"));
  EXPECT_FALSE(r.sm.has_session(7));
}

TEST(KvStateMachine, AnEvictedSessionsNextOpIsExpiredNeverAppliedTwice) {
  Replica r({.max_sessions = 1});
  EXPECT_EQ(r.apply(append_of(1, 1, "a")), OpOutcome::ran);
  EXPECT_EQ(r.apply(op_of(2, 1, OpKind::put, "other", "b")), OpOutcome::ran);
  EXPECT_FALSE(r.sm.has_session(1)) << "the least recently used session goes";
  EXPECT_EQ(r.sm.sessions_evicted(), 1u);
  // A retry of client 1's seq 2 (whose first copy may have run) and its next
  // op: neither runs.
  EXPECT_EQ(r.apply(append_of(1, 2, "b")), OpOutcome::session_expired);
  EXPECT_EQ(r.apply(append_of(1, 3, "c")), OpOutcome::session_expired);
  EXPECT_EQ(r.sm.data().at("k").value, "a");
}

TEST(KvStateMachine, ALateSeqOneRestartsASessionButItsAckedSuccessorDoesNotRun) {
  Replica r({.max_sessions = 1});
  r.apply(append_of(1, 1, "a"));
  r.apply(op_of(2, 1, OpKind::put, "other", "b"));  // evicts client 1
  // A late copy of client 1's seq 1 starts a session again and runs again:
  // what the client library's opening get is for (docs/architecture.md).
  EXPECT_EQ(r.apply(append_of(1, 1, "a")), OpOutcome::ran);
  // A seq 3 acknowledging seq 2, which this session never ran: the client
  // talked to the evicted session, and its seq 3 may have run there.
  EXPECT_EQ(r.apply(append_of(1, 3, "c")), OpOutcome::session_expired);
  EXPECT_EQ(r.sm.data().at("k").value, "aa");
}

TEST(KvStateMachine, AnInstanceNeverEvictsTheSessionsItTouched) {
  Replica r({.max_sessions = 1});
  r.apply_batch({append_of(1, 1, "a"), append_of(2, 1, "b"), append_of(3, 1, "c")});
  EXPECT_EQ(r.sm.sessions(), 3u) << "over the limit until a later instance";
  EXPECT_NE(r.sm.kept_reply(1, 1), nullptr);
  r.apply(append_of(3, 2, "d"));
  EXPECT_EQ(r.sm.sessions(), 1u);
  EXPECT_TRUE(r.sm.has_session(3));
}

TEST(KvStateMachine, IdleSessionsGoEvery1024Instances) {
  Replica r({.session_idle_instances = 100});
  r.apply(append_of(1, 1, "a"));
  while (r.next < 1023) r.apply(op_of(2, r.next, OpKind::get, "k"));
  EXPECT_TRUE(r.sm.has_session(1)) << "idle, but eviction runs every 1024 instances";
  r.apply(op_of(2, r.next, OpKind::get, "k"));
  EXPECT_FALSE(r.sm.has_session(1));
  EXPECT_TRUE(r.sm.has_session(2));
}

TEST(KvStateMachine, KeptRepliesStayWithinTheByteBudgetAndTheirOpsStillNeverRerun) {
  Replica r({.retained_reply_bytes = 10});
  r.apply(op_of(1, 1, OpKind::put, "k", "0123456789"));
  for (ClientId c = 2; c <= 6; ++c) r.apply(op_of(c, 1, OpKind::get, "k"));
  EXPECT_LE(r.sm.retained_reply_bytes(), 10u);
  EXPECT_EQ(r.sm.retained_replies(), 1u) << "the newest reply is kept";
  EXPECT_NE(r.sm.kept_reply(6, 1), nullptr);
  EXPECT_EQ(r.sm.kept_reply(2, 1), nullptr) << "the oldest went first";
  EXPECT_EQ(r.sm.sessions(), 6u);
  EXPECT_EQ(r.apply(op_of(2, 1, OpKind::get, "k")), OpOutcome::duplicate);
}

TEST(KvStateMachine, AReplyLargerThanTheBudgetAloneIsKept) {
  Replica r({.retained_reply_bytes = 4});
  r.apply(op_of(1, 1, OpKind::put, "k", "too large"));
  r.apply(op_of(2, 1, OpKind::get, "k"));
  ASSERT_NE(r.sm.kept_reply(2, 1), nullptr);
  EXPECT_EQ(r.sm.kept_reply(2, 1)->value, "too large");
  EXPECT_EQ(r.sm.retained_reply_bytes(), 9u);
}

TEST(KvStateMachine, ASnapshotRebuildsTheSameStateAndEvictionOrder) {
  const KvLimits limits{.max_sessions = 3};
  Replica original(limits);
  for (ClientId c = 1; c <= 5; ++c) original.apply(append_of(c, 1, std::to_string(c)));
  SnapshotRecord record;
  original.sm.write_to(record);
  Replica restored(limits);
  restored.sm.load(record);
  restored.next = original.next;
  EXPECT_EQ(restored.sm.check_invariants(), "");
  EXPECT_EQ(restored.sm.retained_reply_bytes(), original.sm.retained_reply_bytes());
  for (Replica* r : {&original, &restored}) {
    r->apply(append_of(3, 2, "w"));
    r->apply(append_of(6, 1, "v"));
  }
  for (ClientId c = 1; c <= 6; ++c) {
    EXPECT_EQ(original.sm.has_session(c), restored.sm.has_session(c)) << "client " << c;
  }
  EXPECT_TRUE(original.sm.data() == restored.sm.data());  // values and revisions
  EXPECT_EQ(original.sm.revision(), restored.sm.revision());
}

TEST(KvStateMachine, AppendToAnAbsentKeyActsAsPutAndGetOfOneChangesNothing) {
  Replica r;
  r.apply(append_of(1, 1, "ab"));
  r.apply(op_of(1, 2, OpKind::get, "absent"));
  EXPECT_EQ(r.sm.data().at("k").value, "ab");
  EXPECT_FALSE(r.sm.data().contains("absent"));
  EXPECT_EQ(r.sm.data_bytes(), 3u);
}

}  // namespace
}  // namespace kvpaxos

namespace kvpaxos {
namespace {

KvOp txn_of(ClientId client, std::uint64_t seq, std::vector<RequestOp> success) {
  return KvOp{.client_id = client, .seq = seq, .ack = seq - 1, .op = OpKind::txn,
              .success = std::move(success)};
}

// Found by kvctl's txn tests: each range of a transaction let its first key
// through whatever the others had taken, so two ranges over 10 MB values
// made a reply no client may read (it was never answered).
TEST(KvStateMachine, ATransactionsRangesShareOneReplyBudget) {
  Replica r;
  const std::string big(kMaxValueBytes * 6 / 10, 'v');
  r.apply(op_of(1, 1, OpKind::put, "a", big));
  r.apply(op_of(1, 2, OpKind::put, "b", big));
  r.apply(txn_of(1, 3, {{.op = OpKind::range, .key = "a"}, {.op = OpKind::range, .key = "b"},
                        {.op = OpKind::get, .key = "b"}}));
  const OpResult* got = r.sm.kept_reply(1, 3);
  ASSERT_NE(got, nullptr);
  ASSERT_EQ(got->responses.size(), 3u);
  EXPECT_EQ(got->responses[0].kvs.size(), 1u) << "the reply's first key always fits";
  EXPECT_TRUE(got->responses[1].kvs.empty());
  EXPECT_TRUE(got->responses[1].more);
  EXPECT_EQ(got->responses[1].count, 1u);
  EXPECT_TRUE(got->responses[2].value.empty());
  EXPECT_TRUE(got->responses[2].more);
  EXPECT_LE(reply_bytes(*got), kMaxReplyDataBytes + kMaxKeyBytes + kReplyBytesPerKey * 4);
}

TEST(KvStateMachine, ATransactionsRangesShareTheKeyBound) {
  Replica r;
  for (std::uint64_t i = 0; i < 15'000; ++i) r.apply(op_of(1, i + 1, OpKind::put, "k" + std::to_string(i)));
  const RequestOp all{.op = OpKind::range, .key = "k", .range_end = prefix_end("k"),
                      .flags = kRangeKeysOnly};
  r.apply(txn_of(1, 15'001, {all, all, all}));
  const OpResult* got = r.sm.kept_reply(1, 15'001);
  ASSERT_NE(got, nullptr);
  std::size_t keys = 0;
  for (const OpResponse& o : got->responses) keys += o.kvs.size();
  EXPECT_EQ(keys, kMaxReplyKeys);
  EXPECT_EQ(got->responses[2].count, 15'000u);
  EXPECT_TRUE(got->responses[2].more);
  const std::string bytes = encode(ClientReply::ok(1, 15'001, *got));
  EXPECT_TRUE(decode(bytes, kMaxClientFrameBytes, kMaxReplyMessageValues).ok());
}

}  // namespace
}  // namespace kvpaxos
