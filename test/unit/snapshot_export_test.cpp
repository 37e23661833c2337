// Snapshots for backup: the applier's SnapshotExport (chunks of one stable
// snapshot) and the front door's admin check in front of it.
#include <gtest/gtest.h>

#include "actor_test_support.hpp"
#include "actors/kv/applier.hpp"
#include "actors/kv/front_door.hpp"
#include "actors/kv/snapshot_record.hpp"
#include "actors/kv/snapshot_export.hpp"
#include "actors/security/transport_security.hpp"
#include "actors/storage/record_format.hpp"
#include "messages/codec.hpp"

namespace kvpaxos {
namespace {

constexpr std::size_t kChunk = 100;

SnapshotExport::Made state_at(InstanceId applied_below, std::size_t bytes) {
  std::string data;
  for (std::size_t i = 0; i < bytes; ++i) data.push_back(static_cast<char>('a' + (i + applied_below) % 26));
  return {.applied_below = applied_below, .revision = applied_below * 2, .keys = 7, .bytes = data};
}

// Reads snapshot `id` to its end from byte `offset`, chunk by chunk.
std::string read_rest(SnapshotExport& e, const SnapshotSaveReply& first, Time now) {
  std::string got = first.data;
  while (got.size() < first.total_bytes) {
    const SnapshotSaveReply r = e.on_request({first.snapshot_id, got.size()}, nullptr, now);
    EXPECT_EQ(r.code, ReplyCode::ok) << r.error;
    if (r.code != ReplyCode::ok || r.data.empty()) break;
    EXPECT_EQ(r.offset, got.size());
    got += r.data;
  }
  return got;
}

TEST(SnapshotExport, ChunksReassembleTheStateOfTheFirstRequest) {
  SnapshotExport e("n2", 0xabc, kChunk);
  const Time now{};
  int made = 0;
  const SnapshotSaveReply first = e.on_request({0, 0}, [&] { ++made; return state_at(40, 1050); }, now);
  ASSERT_EQ(first.code, ReplyCode::ok) << first.error;
  EXPECT_EQ(first.applied_below, 40u);
  EXPECT_EQ(first.revision, 80u);
  EXPECT_EQ(first.keys, 7u);
  EXPECT_EQ(first.name, "n2");
  EXPECT_EQ(first.cluster_id, 0xabcu);
  EXPECT_EQ(first.total_bytes, 1050u);
  EXPECT_EQ(first.data.size(), kChunk);
  const std::string whole = read_rest(e, first, now);
  EXPECT_EQ(whole, state_at(40, 1050).bytes);
  EXPECT_EQ(crc32c(whole), first.crc);
  EXPECT_EQ(made, 1) << "later chunks must not make the snapshot again";
}

TEST(SnapshotExport, ANewSaveReplacesTheOldSnapshotWhoseReaderIsTold) {
  SnapshotExport e("n1", 1, kChunk);
  const SnapshotSaveReply old = e.on_request({0, 0}, [] { return state_at(10, 500); }, Time{});
  const SnapshotSaveReply next = e.on_request({0, 0}, [] { return state_at(20, 500); }, Time{});
  EXPECT_NE(old.snapshot_id, next.snapshot_id);
  const SnapshotSaveReply stale = e.on_request({old.snapshot_id, kChunk}, nullptr, Time{});
  EXPECT_EQ(stale.code, ReplyCode::bad_request);
  EXPECT_NE(stale.error.find("is gone"), std::string::npos) << stale.error;
  EXPECT_TRUE(stale.data.empty());
  EXPECT_EQ(read_rest(e, next, Time{}), state_at(20, 500).bytes);
}

TEST(SnapshotExport, OffsetPastTheEndIsRefused) {
  SnapshotExport e("n1", 1, kChunk);
  const SnapshotSaveReply first = e.on_request({0, 0}, [] { return state_at(3, 250); }, Time{});
  const SnapshotSaveReply r = e.on_request({first.snapshot_id, 251}, nullptr, Time{});
  EXPECT_EQ(r.code, ReplyCode::bad_request);
  EXPECT_NE(r.error.find("past the end"), std::string::npos) << r.error;
  const SnapshotSaveReply at_end = e.on_request({first.snapshot_id, 250}, nullptr, Time{});
  EXPECT_EQ(at_end.code, ReplyCode::ok);
  EXPECT_TRUE(at_end.data.empty());
}

TEST(SnapshotExport, IdleSnapshotIsDroppedAfterThirtySeconds) {
  SnapshotExport e("n1", 1, kChunk);
  const Time t0{};
  const SnapshotSaveReply first = e.on_request({0, 0}, [] { return state_at(3, 250); }, t0);
  e.tick(t0 + SnapshotExport::kIdle - std::chrono::milliseconds(1));
  EXPECT_TRUE(e.holds_snapshot());
  e.tick(t0 + SnapshotExport::kIdle);
  EXPECT_FALSE(e.holds_snapshot());
  EXPECT_EQ(e.on_request({first.snapshot_id, kChunk}, nullptr, t0 + SnapshotExport::kIdle).code,
            ReplyCode::bad_request);
}

TEST(SnapshotExport, EmptyStateIsOneEmptyChunk) {
  SnapshotExport e("n1", 1, kChunk);
  const SnapshotSaveReply first = e.on_request({0, 0}, [] { return state_at(0, 0); }, Time{});
  EXPECT_EQ(first.code, ReplyCode::ok);
  EXPECT_EQ(first.total_bytes, 0u);
  EXPECT_TRUE(first.data.empty());
  EXPECT_EQ(first.crc, crc32c(""));
}

// The one SnapshotSaveReply the applier sent to the front door.
SnapshotSaveReply save_reply(const Outbox& out) {
  for (const auto& [to, m] : test_support::sent<ToClient>(out)) {
    Result<Body> b = decode(m.body);
    if (b.ok() && std::holds_alternative<SnapshotSaveReply>(b.value())) {
      return std::get<SnapshotSaveReply>(b.value());
    }
  }
  ADD_FAILURE() << "no SnapshotSaveReply";
  return {};
}

std::string put_batch(std::uint64_t seq, const std::string& key, const std::string& value) {
  const ClientRequest r{.client_id = 9, .seq = seq, .op = OpKind::put, .key = key, .value = value};
  return encode_batch(0, {encode_op(KvOp::from(r))});
}

// The snapshot is the state between two applied instances: later applies
// do not change the chunks of one already made.
TEST(ApplierSnapshotSave, ServesTheStateAppliedWhenTheSaveStarted) {
  Applier a(0, ApplierOptions{.name = "n1", .cluster_id = 77, .snapshot_chunk_bytes = 64});
  Outbox out;
  a.handle({0, Actor::learner}, Apply{0, put_batch(1, "k1", std::string(100, 'a'))}, test_support::at(1), out);
  a.handle({0, Actor::learner}, Apply{1, put_batch(2, "k2", "b")}, test_support::at(2), out);
  out.clear();
  a.handle({0, Actor::front_door}, SnapshotSaveFromClient{"r", {}}, test_support::at(3), out);
  const SnapshotSaveReply first = save_reply(out);
  ASSERT_EQ(first.code, ReplyCode::ok) << first.error;
  EXPECT_EQ(first.applied_below, 2u);
  EXPECT_EQ(first.revision, 2u);
  EXPECT_EQ(first.keys, 2u);
  EXPECT_EQ(first.cluster_id, 77u);
  EXPECT_EQ(first.name, "n1");
  a.handle({0, Actor::learner}, Apply{2, put_batch(3, "k3", "c")}, test_support::at(4), out);
  std::string whole = first.data;
  while (whole.size() < first.total_bytes) {
    out.clear();
    a.handle({0, Actor::front_door}, SnapshotSaveFromClient{"r", {first.snapshot_id, whole.size()}},
             test_support::at(5), out);
    const SnapshotSaveReply r = save_reply(out);
    ASSERT_EQ(r.code, ReplyCode::ok) << r.error;
    ASSERT_FALSE(r.data.empty());
    whole += r.data;
  }
  EXPECT_GT(first.total_bytes, 64u) << "the test needs more than one chunk";
  EXPECT_EQ(crc32c(whole), first.crc);
  Result<SnapshotRecord> record = parse_snapshot(whole);
  ASSERT_TRUE(record.ok()) << record.error();
  EXPECT_EQ(record->applied_below, 2u);
  ASSERT_EQ(record->kv.size(), 2u) << "k3 was applied after the save started";
  EXPECT_EQ(record->kv[1], (std::pair<std::string, std::string>{"k2", "b"}));
}

TEST(ApplierSnapshotSave, AJoiningMemberHasNoStateToGive) {
  Applier a(0, ApplierOptions{.name = "n4", .joining = true});
  Outbox out;
  a.handle({0, Actor::front_door}, SnapshotSaveFromClient{"r", {}}, test_support::at(1), out);
  const SnapshotSaveReply r = save_reply(out);
  EXPECT_EQ(r.code, ReplyCode::bad_request);
  EXPECT_NE(r.error.find("catching up"), std::string::npos) << r.error;
  EXPECT_TRUE(r.data.empty());
}

TEST(FrontDoorSnapshotSave, OnlyAnAdminConnectionReachesTheApplier) {
  FrontDoor door(0, false);
  Outbox out;
  door.on_client_frame("r1", encode(SnapshotSaveRequest{}), out, /*admin=*/false);
  ASSERT_EQ(out.size(), 1u);
  EXPECT_EQ(out[0].to, (Address{0, Actor::front_door}));
  Result<Body> refusal = decode(std::get<ToClient>(out[0].body).body);
  ASSERT_TRUE(refusal.ok());
  const auto& r = std::get<SnapshotSaveReply>(refusal.value());
  EXPECT_EQ(r.code, ReplyCode::permission_denied);
  EXPECT_NE(r.error.find("--admin-keys"), std::string::npos) << r.error;
  EXPECT_TRUE(r.data.empty());

  out.clear();
  door.on_client_frame("r2", encode(SnapshotSaveRequest{5, 100}), out, /*admin=*/true);
  ASSERT_EQ(out.size(), 1u);
  EXPECT_EQ(out[0].to, (Address{0, Actor::applier}));
  const auto& forwarded = std::get<SnapshotSaveFromClient>(out[0].body);
  EXPECT_EQ(forwarded.route, "r2");
  EXPECT_EQ(forwarded.request.snapshot_id, 5u);
  EXPECT_EQ(forwarded.request.offset, 100u);
}

TEST(FrontDoorSnapshotSave, AdminUserIdsAreMarkedByTheirPrefix) {
  EXPECT_TRUE(is_admin_user("admin:ops"));
  EXPECT_FALSE(is_admin_user("client:admin"));
  EXPECT_FALSE(is_admin_user(""));
  EXPECT_FALSE(is_admin_user("0"));
}

}  // namespace
}  // namespace kvpaxos
