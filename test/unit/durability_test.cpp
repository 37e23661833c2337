// The write-ahead log, the durable acceptor and applier snapshots, on a
// temporary directory.
#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <random>
#include <tuple>

#include <zmq_addon.hpp>

#include "actors/paxos/acceptor.hpp"
#include "actors/paxos/proposer.hpp"
#include "actors/kv/applier.hpp"
#include "actors/runtime/durable_acceptor.hpp"
#include "actors/runtime/runner.hpp"
#include "actors/storage/segmented_log.hpp"
#include "messages/kv_op.hpp"
#include "test/unit/actor_test_support.hpp"

namespace kvpaxos {
namespace {

namespace fs = std::filesystem;

using test_support::at;
using test_support::TempDir;

std::vector<std::string> replay(const std::string& dir, LogOpenReport* report,
                                std::string* error = nullptr) {
  std::vector<std::string> records;
  auto log = SegmentedLog::open(dir, "t", [&](std::string_view p) { records.emplace_back(p); },
                                report);
  if (!log.ok() && error) *error = log.error();
  return records;
}

std::string only_segment(const std::string& dir) {
  std::string found;
  for (const auto& e : fs::directory_iterator(dir)) found = e.path().string();
  return found;
}

TEST(Crc32c, HardwareAndPortableAgreeOnKnownVectors) {
  EXPECT_EQ(crc32c("123456789"), 0xE3069283u);  // the standard CRC-32C check value
  EXPECT_EQ(crc32c_sw("123456789"), 0xE3069283u);
  std::mt19937 rng(3);
  for (int len = 0; len < 300; ++len) {
    std::string s(static_cast<std::size_t>(len), '\0');
    for (char& c : s) c = static_cast<char>(rng());
    ASSERT_EQ(crc32c(s), crc32c_sw(s)) << "length " << len;
  }
}

TEST(SegmentedLog, SyncedRecordsComeBackInOrder) {
  TempDir d;
  {
    auto log = SegmentedLog::open(d.path(), "t", [](std::string_view) {}, nullptr);
    ASSERT_TRUE(log.ok()) << log.error();
    for (int i = 0; i < 100; ++i) (*log)->append("record " + std::to_string(i));
    ASSERT_TRUE((*log)->sync().ok());
    (*log)->append(std::string("\0binary\xff", 8));
    ASSERT_TRUE((*log)->sync().ok());
    (*log)->append("never synced");
  }
  LogOpenReport report;
  const auto records = replay(d.path(), &report);
  ASSERT_EQ(records.size(), 101u);
  EXPECT_EQ(records[0], "record 0");
  EXPECT_EQ(records[99], "record 99");
  EXPECT_EQ(records[100], std::string("\0binary\xff", 8));
  EXPECT_EQ(report.torn_bytes, 0u);
}

TEST(SegmentedLog, TornTailIsCutAndTheLogKeepsGoing) {
  std::mt19937 rng(7);
  for (int trial = 0; trial < 20; ++trial) {
    TempDir d;
    {
      auto log = SegmentedLog::open(d.path(), "t", [](std::string_view) {}, nullptr);
      for (int i = 0; i < 10; ++i) (*log)->append(std::string(20, static_cast<char>('a' + i)));
      ASSERT_TRUE((*log)->sync().ok());
    }
    // Each record is 28 bytes; cut inside the last one.
    const std::string seg = only_segment(d.path());
    const auto cut = 9 * 28 + 1 + rng() % 27;
    fs::resize_file(seg, cut);
    LogOpenReport report;
    std::string error;
    auto records = replay(d.path(), &report, &error);
    ASSERT_TRUE(error.empty()) << "trial " << trial << ": " << error;
    EXPECT_EQ(records.size(), 9u) << "trial " << trial;
    EXPECT_EQ(report.torn_bytes, cut - 9 * 28) << "trial " << trial;
    EXPECT_EQ(fs::file_size(seg), 9u * 28) << "the torn tail must be cut off the file";
    {
      auto log = SegmentedLog::open(d.path(), "t", [](std::string_view) {}, nullptr);
      (*log)->append("after the crash");
      ASSERT_TRUE((*log)->sync().ok());
    }
    records = replay(d.path(), &report);
    ASSERT_EQ(records.size(), 10u);
    EXPECT_EQ(records.back(), "after the crash");
  }
}

TEST(SegmentedLog, CorruptionInTheMiddleRefusesToOpenNamingFileAndOffset) {
  TempDir d;
  {
    auto log = SegmentedLog::open(d.path(), "t", [](std::string_view) {}, nullptr);
    for (int i = 0; i < 10; ++i) (*log)->append(std::string(20, 'x'));
    ASSERT_TRUE((*log)->sync().ok());
  }
  const std::string seg = only_segment(d.path());
  {
    std::fstream f(seg, std::ios::in | std::ios::out | std::ios::binary);
    f.seekp(4 * 28 + 8 + 3);  // a payload byte of the fifth record
    f.put('y');
  }
  std::string error;
  LogOpenReport report;
  replay(d.path(), &report, &error);
  EXPECT_NE(error.find("corrupt record in " + seg + " at byte offset 112"), std::string::npos)
      << error;
}

TEST(SegmentedLog, RewriteReplacesEverySegmentWithTheLiveRecords) {
  TempDir d;
  {
    auto log = SegmentedLog::open(d.path(), "t", [](std::string_view) {}, nullptr, 100);
    for (int i = 0; i < 50; ++i) {
      (*log)->append("old " + std::to_string(i));
      ASSERT_TRUE((*log)->sync().ok());
    }
    ASSERT_TRUE((*log)->rewrite({"live 1", "live 2"}).ok());
    (*log)->append("new");
    ASSERT_TRUE((*log)->sync().ok());
  }
  LogOpenReport report;
  const auto records = replay(d.path(), &report);
  EXPECT_EQ(records, (std::vector<std::string>{"live 1", "live 2", "new"}));
}

TEST(DurableAcceptor, KeepsItsPromisesAndAcceptedValuesAcrossARestart) {
  TempDir d;
  {
    auto a = open_durable_acceptor(d.path(), nullptr);
    ASSERT_TRUE(a.ok()) << a.error();
    EXPECT_TRUE((*a)->on_prepare({7, Ballot{5, 1}}).ok);
    EXPECT_TRUE((*a)->on_accept({7, Ballot{5, 1}, "chosen?"}).ok);
    EXPECT_TRUE((*a)->on_prepare({8, Ballot{9, 2}}).ok);
    (*a)->forget_below(3);
    ASSERT_TRUE(a->sync().ok());
  }
  auto a = open_durable_acceptor(d.path(), nullptr);
  ASSERT_TRUE(a.ok()) << a.error();
  // The promise of ballot 9 in instance 8 holds: a lower ballot is refused.
  EXPECT_FALSE((*a)->on_prepare({8, Ballot{6, 0}}).ok);
  // Instance 7 reports what it accepted to a higher ballot.
  const Promise p = (*a)->on_prepare({7, Ballot{6, 0}});
  ASSERT_TRUE(p.ok);
  EXPECT_EQ(p.accepted_ballot, (Ballot{5, 1}));
  EXPECT_EQ(p.accepted_value, "chosen?");
  EXPECT_EQ((*a)->forgotten_below(), 3u);
  EXPECT_TRUE((*a)->on_prepare({2, Ballot{99, 0}}).forgotten);
}

TEST(DurableAcceptor, UnsyncedPromisesAreNotClaimedDurable) {
  TempDir d;
  {
    auto a = open_durable_acceptor(d.path(), nullptr);
    EXPECT_TRUE((*a)->on_prepare({1, Ballot{5, 1}}).ok);
    // No sync: the runner never sent this Promise, so losing it is allowed.
  }
  auto a = open_durable_acceptor(d.path(), nullptr);
  EXPECT_TRUE((*a)->on_prepare({1, Ballot{2, 0}}).ok);
}

// A rebuilt node (kvpaxosd --join) abstains below its vote floor: silence,
// not a rejection or "forgotten", which would end the proposer's attempt.
TEST(RebuiltAcceptor, StaysSilentBelowItsVoteFloorAndKeepsTheFloorAcrossRestarts) {
  TempDir d;
  {
    auto a = open_durable_acceptor(d.path(), nullptr);
    ASSERT_TRUE(a.ok()) << a.error();
    (*a)->set_vote_floor(100);
    ASSERT_TRUE(a->sync().ok());
  }
  auto a = open_durable_acceptor(d.path(), nullptr);
  ASSERT_TRUE(a.ok()) << a.error();
  EXPECT_EQ((*a)->vote_floor(), 100u);
  EXPECT_TRUE((*a)->repairing());
  Outbox out;
  (*a)->handle({1, Actor::proposer}, Prepare{99, Ballot{50, 1}}, Time{}, out);
  (*a)->handle({1, Actor::proposer}, Accept{42, Ballot{50, 1}, "v"}, Time{}, out);
  EXPECT_TRUE(out.empty());
  EXPECT_EQ((*a)->abstained(), 2u);
  (*a)->handle({1, Actor::proposer}, Prepare{100, Ballot{1, 1}}, Time{}, out);
  ASSERT_EQ(out.size(), 1u);
  EXPECT_TRUE(std::get<Promise>(out[0].body).ok);
  // Once the log below the floor is forgotten (decided and applied by a
  // majority), the node is repaired.
  (*a)->forget_below(100);
  EXPECT_FALSE((*a)->repairing());
}

TEST(RebuiltAcceptor, JoinInfoBoundsEveryInstanceAndRoundSeen) {
  Acceptor a;
  EXPECT_EQ(a.join_info().instance_bound, 0u);
  a.on_prepare({7, Ballot{5, 1}});
  a.on_accept({12, Ballot{9, 2}, "x"});
  a.forget_below(3);
  JoinInfo info = a.join_info();
  EXPECT_EQ(info.instance_bound, 13u);
  EXPECT_EQ(info.max_round, 9u);
  EXPECT_FALSE(info.repairing);
  a.forget_below(40);  // everything forgotten: the forget point still bounds
  EXPECT_EQ(a.join_info().instance_bound, 40u);

  Proposer p(0, ConfigHistory::fixed(3), 1);
  Outbox out;
  p.handle({0, Actor::applier}, Propose{21, "v"}, Time{}, out);
  p.handle({0, Actor::learner}, Learned{21}, Time{}, out);  // attempt over; the bound stays
  EXPECT_EQ(p.join_info().instance_bound, 22u);
  EXPECT_GE(p.join_info().max_round, 1u);
  out.clear();
  p.handle({2, Actor::peer_link}, JoinQuery{}, Time{}, out);
  ASSERT_EQ(out.size(), 1u);
  EXPECT_EQ(out[0].to, (Address{2, Actor::peer_link}));
  EXPECT_EQ(std::get<JoinInfo>(out[0].body).instance_bound, 22u);
}

std::string op(ClientId c, std::uint64_t seq, OpKind kind, std::string key, std::string value) {
  return encode_op(KvOp{false, c, seq, seq - 1, kind, std::move(key), std::move(value)});
}

TEST(ApplierSnapshot, RestoredApplierHoldsTheSameStateAndDedupsRetries) {
  std::vector<std::pair<InstanceId, std::string>> saved;
  ApplierOptions options{.name = "n1", .snapshot_every = 3};
  options.save_snapshot = [&saved](InstanceId at, std::string bytes) {
    saved.emplace_back(at, std::move(bytes));
  };
  Applier a(0, options);
  Outbox out;
  const Time t{};
  a.handle({0, Actor::learner}, Apply{0, op(9, 1, OpKind::put, "k", "a")}, t, out);
  a.handle({0, Actor::learner}, Apply{1, op(9, 2, OpKind::append, "k", "b")}, t, out);
  EXPECT_TRUE(saved.empty());
  // Done is only announced once a snapshot is durable.
  for (const Outbound& o : out) EXPECT_FALSE(std::holds_alternative<LocalDone>(o.body));
  a.handle({0, Actor::learner}, Apply{2, op(8, 1, OpKind::put, "j", "z")}, t, out);
  ASSERT_EQ(saved.size(), 1u);
  EXPECT_EQ(saved[0].first, 3u);
  for (const Outbound& o : out) EXPECT_FALSE(std::holds_alternative<LocalDone>(o.body));
  a.handle({0, Actor::applier}, SnapshotSaved{3, ""}, t, out);
  EXPECT_TRUE(std::holds_alternative<LocalDone>(out.back().body));
  EXPECT_EQ(std::get<LocalDone>(out.back().body).done_below, 3u);

  Applier b(0, ApplierOptions{.name = "n1"});
  ASSERT_TRUE(b.restore(saved[0].second).ok());
  EXPECT_EQ(b.applied_below(), 3u);
  EXPECT_EQ(b.data(), a.data());
  EXPECT_EQ(b.sessions(), 2u);
  // A retry of client 9's seq 2, decided again later, does not run twice.
  Outbox out2;
  b.handle({0, Actor::learner}, Apply{3, op(9, 2, OpKind::append, "k", "b")}, t, out2);
  EXPECT_EQ(b.data().at("k").value, "ab");
  EXPECT_FALSE(b.restore("not msgpack at all").ok());
}

// A snapshot in the applier's format, written by hand: {client, last_seq,
// has_reply, reply, last_instance} sessions.
using SessionFields = std::tuple<ClientId, std::uint64_t, bool, std::string, InstanceId>;
std::string hand_made_snapshot(InstanceId applied_below,
                               const std::vector<std::pair<std::string, std::string>>& kv,
                               const std::vector<SessionFields>& sessions) {
  msgpack::sbuffer buf;
  msgpack::pack(buf, std::make_tuple(std::uint32_t{1}, applied_below, kv, sessions,
                                     std::uint64_t{0}));
  return {buf.data(), buf.size()};
}

TEST(ApplierSnapshot, RestoreRefusesWhatSnapshotNeverWritesAndKeepsItsState) {
  Applier a(0, ApplierOptions{.name = "n1", .retained_reply_bytes = 4});
  ASSERT_TRUE(a.restore(hand_made_snapshot(2, {{"k", "v"}}, {{9, 1, true, "v", 1}})).ok());
  // A client listed twice used to leave its reply counted twice; the reply
  // budget then looped forever on the next op.
  const std::string twice = hand_made_snapshot(
      7, {{"j", "w"}}, {{5, 1, true, "aaaa", 3}, {5, 2, true, "bbbb", 6}});
  Result<bool> refused = a.restore(twice);
  ASSERT_FALSE(refused.ok());
  EXPECT_NE(refused.error().find("client 5 twice"), std::string::npos) << refused.error();
  EXPECT_FALSE(a.restore(hand_made_snapshot(7, {{"j", "w"}, {"j", "x"}}, {})).ok());
  EXPECT_FALSE(a.restore(std::string("\xdd\xff\xff\xff\xff", 5)).ok()) << "asked for 96 GiB";
  EXPECT_EQ(a.applied_below(), 2u);
  ASSERT_EQ(a.data().size(), 1u);
  EXPECT_EQ(a.data().at("k").value, "v");
  EXPECT_EQ(a.sessions(), 1u);
  EXPECT_EQ(a.retained_reply_bytes(), 1u);
}

// A peer's snapshot whose content is of another instance than its chunks
// claim (same checksum: any peer can compute one) used to replace the state
// and still count as a failure, leaving the applier where the learner does
// not deliver.
TEST(ApplierSnapshot, AReceivedSnapshotOfAnotherInstanceChangesNothing) {
  Applier a(0, ApplierOptions{.name = "n1"});
  Outbox out;
  a.handle({0, Actor::learner}, SnapshotNeeded{100, 1}, Time{}, out);
  const std::string bytes = hand_made_snapshot(5, {{"k", "v"}}, {});
  a.handle({1, Actor::applier}, SnapshotChunk{100, bytes.size(), 0, crc32c(bytes), bytes}, Time{},
           out);
  EXPECT_EQ(a.snapshot_failures(), 1u);
  EXPECT_EQ(a.snapshots_installed(), 0u);
  EXPECT_EQ(a.applied_below(), 0u);
  EXPECT_TRUE(a.data().empty());
}

// snapshot_every = 2, and save_snapshot records the instance of each
// snapshot handed over; the test answers for the writer with SnapshotSaved.
ApplierOptions recording_snapshots(std::vector<InstanceId>& handed) {
  ApplierOptions options{.name = "n1", .snapshot_every = 2};
  options.save_snapshot = [&handed](InstanceId at, std::string) { handed.push_back(at); };
  return options;
}

// The Done points `out` holds; clears it.
std::vector<InstanceId> done_points_in(Outbox& out) {
  std::vector<InstanceId> found;
  for (const Outbound& o : out) {
    if (auto* d = std::get_if<LocalDone>(&o.body)) found.push_back(d->done_below);
  }
  out.clear();
  return found;
}

// The snapshot is written off the applier's thread: Done moves only when the
// writer reports it durable, a failed write leaves Done where it was, one
// periodic snapshot is written at a time, and only this node's writer counts.
TEST(ApplierSnapshot, DoneWaitsForTheWriterAndOneSnapshotIsWrittenAtATime) {
  std::vector<InstanceId> handed;
  Applier a(0, recording_snapshots(handed));
  Outbox out;
  const Time t{};
  auto done_points = [&out] { return done_points_in(out); };
  for (InstanceId i = 0; i < 6; ++i) {
    a.handle({0, Actor::learner}, Apply{i, op(9, i + 1, OpKind::append, "k", "x")}, t, out);
  }
  EXPECT_EQ(handed, std::vector<InstanceId>{2}) << "a second snapshot while the first is written";
  EXPECT_TRUE(done_points().empty());
  a.handle({1, Actor::applier}, SnapshotSaved{2, ""}, t, out);  // not our writer
  EXPECT_TRUE(done_points().empty());
  EXPECT_EQ(a.snapshot_below(), 0u);
  a.handle({0, Actor::applier}, SnapshotSaved{2, "cannot fsync: disk full"}, t, out);
  EXPECT_TRUE(done_points().empty());
  EXPECT_EQ(a.snapshot_failures(), 1u);
  EXPECT_EQ(a.last_snapshot_error(), "cannot fsync: disk full");
  a.handle({0, Actor::learner}, Apply{6, op(9, 7, OpKind::append, "k", "x")}, t, out);
  EXPECT_EQ(handed, (std::vector<InstanceId>{2, 7})) << "the failed snapshot is retried";
  a.handle({0, Actor::applier}, SnapshotSaved{7, ""}, t, out);
  EXPECT_EQ(done_points(), std::vector<InstanceId>{7});
  EXPECT_EQ(a.snapshot_below(), 7u);
}

// Fetches `peer`'s snapshot (node 1) into `a` (node 0) through the chunks.
void install_from(Applier& a, Applier& peer, InstanceId below, Outbox& out) {
  using test_support::sent;
  Outbox peer_out;
  a.handle({0, Actor::learner}, SnapshotNeeded{below, 1}, at(0), out);
  for (int i = 0; i < 100; ++i) {
    auto requests = sent<SnapshotRequest>(out);
    if (requests.empty()) return;
    std::erase_if(out, [](const Outbound& o) { return std::holds_alternative<SnapshotRequest>(o.body); });
    peer.handle({0, Actor::applier}, requests.back().second, at(0), peer_out);
    auto chunks = sent<SnapshotChunk>(peer_out);
    peer_out.clear();
    ASSERT_EQ(chunks.size(), 1u);
    a.handle({1, Actor::applier}, chunks[0].second, at(0), out);
  }
}

// A snapshot installed from a peer is handed to the writer, and Done moves
// only once it is durable; with a periodic one still being written, each
// SnapshotSaved moves Done to exactly what is on disk.
TEST(ApplierSnapshot, AnInstalledSnapshotIsNotDoneUntilSaved) {
  std::vector<InstanceId> handed;
  Applier a(0, recording_snapshots(handed));
  Applier peer(1, ApplierOptions{.name = "n2"});
  Outbox out;
  Outbox peer_out;
  for (InstanceId i = 0; i < 2; ++i) {
    a.handle({0, Actor::learner}, Apply{i, op(9, i + 1, OpKind::append, "k", "x")}, at(0), out);
  }
  ASSERT_EQ(handed, std::vector<InstanceId>{2});
  for (InstanceId i = 0; i < 9; ++i) {
    peer.handle({1, Actor::learner}, Apply{i, op(9, i + 1, OpKind::append, "k", "x")}, at(0), peer_out);
  }
  install_from(a, peer, 9, out);
  ASSERT_EQ(a.applied_below(), 9u);
  EXPECT_EQ(handed, (std::vector<InstanceId>{2, 9}));
  EXPECT_TRUE(done_points_in(out).empty());
  a.handle({0, Actor::applier}, SnapshotSaved{2, ""}, at(0), out);
  EXPECT_EQ(done_points_in(out), std::vector<InstanceId>{2});
  a.handle({0, Actor::applier}, SnapshotSaved{9, "disk full"}, at(0), out);
  EXPECT_TRUE(done_points_in(out).empty());
  EXPECT_EQ(a.snapshot_below(), 2u);
}

// A failed write is retried after snapshot_idle even under steady load, where
// the byte rules alone would wait for another quarter of the state.
TEST(ApplierSnapshot, AFailedSnapshotIsRetriedAfterABackOffUnderLoad) {
  std::vector<InstanceId> handed;
  Applier a(0, recording_snapshots(handed));
  Outbox out;
  a.handle({0, Actor::learner}, Apply{0, op(1, 1, OpKind::put, "big", std::string(100000, 'v'))},
           at(0), out);
  a.handle({0, Actor::learner}, Apply{1, op(2, 1, OpKind::append, "k", "x")}, at(0), out);
  ASSERT_EQ(handed, std::vector<InstanceId>{2});
  a.handle({0, Actor::applier}, SnapshotSaved{2, "EIO"}, at(10), out);
  InstanceId next = 2;
  for (int ms = 20; ms <= 2000; ms += 20) {  // an apply every 20 ms: never idle
    a.handle({0, Actor::learner}, Apply{next, op(2, next, OpKind::append, "k", "x")}, at(ms), out);
    ++next;
    a.tick(at(ms), out);
  }
  EXPECT_EQ(handed.size(), 1u) << "retried before the back-off";
  a.handle({0, Actor::learner}, Apply{next, op(2, next, OpKind::append, "k", "x")}, at(2020), out);
  a.tick(at(2020), out);
  ASSERT_EQ(handed.size(), 2u) << "a failed snapshot was not retried under load";
  EXPECT_EQ(handed[1], next + 1);
  a.handle({0, Actor::applier}, SnapshotSaved{handed[1], ""}, at(2030), out);
  EXPECT_EQ(done_points_in(out), std::vector<InstanceId>{handed[1]});
}

// The writer thread answers each save, in order, in the applier's inbox,
// and the file it leaves loads.
TEST(SnapshotWriter, AnswersInOrderAndItsFileLoads) {
  TempDir dir;
  zmq::context_t ctx(1);
  zmq::socket_t inbox(ctx, zmq::socket_type::pull);
  inbox.set(zmq::sockopt::linger, 0);
  inbox.bind(inproc_endpoint("writer-test", 0, Actor::applier));
  inbox.set(zmq::sockopt::rcvtimeo, 30000);
  {
    SnapshotWriter writer(ctx, "writer-test", 0, dir.path(), "n1");
    writer.save(3, std::string(3 << 20, 'a'));
    writer.save(7, "seven");
    for (InstanceId want : {InstanceId{3}, InstanceId{7}}) {
      std::vector<zmq::message_t> frames;
      ASSERT_TRUE(zmq::recv_multipart(inbox, std::back_inserter(frames)));
      ASSERT_EQ(frames.size(), 2u);
      Result<FrameHeader> header = decode_header(frames[0].to_string_view());
      ASSERT_TRUE(header.ok());
      EXPECT_EQ(header->from.node, 0u) << "the applier trusts SnapshotSaved only from its node";
      Result<Body> body = decode(frames[1].to_string_view());
      ASSERT_TRUE(body.ok());
      auto* saved = std::get_if<SnapshotSaved>(&body.value());
      ASSERT_NE(saved, nullptr);
      EXPECT_EQ(saved->instance, want);
      EXPECT_TRUE(saved->error.empty()) << saved->error;
    }
  }
  Result<FileRead> file = read_checked_file(dir.path() + "/snapshot");
  ASSERT_TRUE(file.ok()) << file.error();
  EXPECT_EQ(file->bytes, "seven");
}

}  // namespace
}  // namespace kvpaxos
