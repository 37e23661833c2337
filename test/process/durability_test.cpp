// Real kvpaxosd processes with --data-dir, killed with SIGKILL in the middle
// of a write load and restarted: nothing acknowledged may be lost, and the
// whole history, across the crashes, must be linearizable. Also: a torn write
// at the end of an acceptor log is cut off, and corruption in its middle
// stops the node from starting, naming the file and offset.
#include <gtest/gtest.h>
#include <signal.h>
#include <unistd.h>

#include <atomic>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <random>
#include <thread>

#include "client/client.hpp"
#include "process/process_cluster.hpp"
#include "test/history/history.hpp"
#include "test/history/linearizability.hpp"

namespace kvpaxos {
namespace {

namespace fs = std::filesystem;
using std::chrono::milliseconds;
using std::chrono::seconds;

constexpr int kKeys = 4;

// Client threads writing and reading until stopped, recording a history.
class Load {
 public:
  Load(test::ProcessCluster& cluster, int clients) {
    for (int c = 0; c < clients; ++c) {
      threads_.emplace_back([this, &cluster, c] { run(cluster.endpoints(), cluster.curve(), c); });
    }
  }
  ~Load() { stop(); }
  void stop() {
    stop_ = true;
    for (std::thread& t : threads_) {
      if (t.joinable()) t.join();
    }
  }
  HistoryRecorder history;
  std::atomic<int> ok{0};

 private:
  void run(std::vector<std::string> endpoints, std::optional<ClientCurve> curve, int index) {
    std::rotate(endpoints.begin(), endpoints.begin() + index % static_cast<int>(endpoints.size()),
                endpoints.end());
    Client client(ctx_, ClientOptions{.endpoints = endpoints, .curve = curve, .deadline = seconds(2)});
    std::mt19937_64 rng(static_cast<std::uint64_t>(index) + 99);
    for (int n = 1; !stop_; ++n) {
      const std::string key = "k" + std::to_string(rng() % kKeys);
      const int roll = static_cast<int>(rng() % 100);
      const std::string op = roll < 50 ? "append" : roll < 70 ? "put" : "get";
      const std::string value =
          op == "get" ? "" : "c" + std::to_string(index) + "." + std::to_string(n) + ";";
      const std::size_t h = history.invoke(client.id(), op, key, value);
      const CallResult r = op == "get" ? client.get(key) : op == "put" ? client.put(key, value)
                                                                       : client.append(key, value);
      if (r.ok()) {
        history.complete_ok(h, r.value);
        ++ok;
      } else {
        history.complete_unknown(h);
      }
    }
  }
  zmq::context_t ctx_{1};
  std::atomic<bool> stop_{false};
  std::vector<std::thread> threads_;
};

// Reads every key once through the healed cluster (recorded), then checks
// the history.
void expect_linearizable_after_reads(test::ProcessCluster& cluster, HistoryRecorder& history) {
  zmq::context_t ctx(1);
  Client reader(ctx, ClientOptions{.endpoints = cluster.endpoints(), .curve = cluster.curve(), .deadline = seconds(30)});
  for (int k = 0; k < kKeys; ++k) {
    const std::string key = "k" + std::to_string(k);
    const std::size_t h = history.invoke(reader.id(), "get", key, "");
    const CallResult r = reader.get(key);
    ASSERT_TRUE(r.ok()) << "restarted cluster did not serve get " << key << ": " << r.error << "\n"
                        << cluster.logs();
    history.complete_ok(h, r.value);
  }
  const std::vector<HistoryOp> ops = history.ops();
  const LinearizabilityResult lin = check_linearizable(ops);
  if (!lin.ok()) {
    const std::string path = (fs::temp_directory_path() / "kvpaxos-durability.jsonl").string();
    std::string error;
    write_jsonl(path, ops, &error);
    ADD_FAILURE() << "history is " << to_string(lin.verdict) << " at key " << lin.key << ":\n"
                  << lin.explanation << "\nhistory: " << path;
  }
}

std::string newest_segment(const std::string& data_dir) {
  std::string newest;
  for (const auto& e : fs::directory_iterator(data_dir + "/acceptor")) {
    const std::string p = e.path().string();
    if (p.size() > 4 && p.substr(p.size() - 4) == ".log" && p > newest) newest = p;
  }
  return newest;
}

// Where the last whole record of a log segment starts. Records are
// [u32 length][u32 crc32c][payload], little-endian (actors/storage/segmented_log.cpp).
std::uint64_t last_record_offset(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  const std::string bytes((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  std::uint64_t at = 0;
  std::uint64_t last = 0;
  while (at + 8 <= bytes.size()) {
    std::uint64_t length = 0;
    for (int i = 3; i >= 0; --i) length = (length << 8) | static_cast<unsigned char>(bytes[at + i]);
    if (at + 8 + length > bytes.size()) break;
    last = at;
    at += 8 + length;
  }
  return last;
}

TEST(Durability, EveryNodeKilledMidWriteLoadTwiceLosesNothingAcknowledged) {
  test::ProcessCluster cluster(3, {"--log-level", "warn"}, /*durable=*/true);
  ASSERT_TRUE(cluster.started());
  Load load(cluster, 4);
  int before = 0;
  for (int round = 0; round < 2; ++round) {
    std::this_thread::sleep_for(seconds(3));
    ASSERT_GT(load.ok.load(), before) << "no progress before crash " << round;
    for (int i = 0; i < 3; ++i) cluster.kill(i);
    std::this_thread::sleep_for(milliseconds(300));
    for (int i = 0; i < 3; ++i) ASSERT_TRUE(cluster.restart(i)) << cluster.logs();
    before = load.ok.load();
  }
  std::this_thread::sleep_for(seconds(3));
  load.stop();
  EXPECT_GT(load.ok.load(), before) << "no progress after the last restart";
  expect_linearizable_after_reads(cluster, load.history);
}

TEST(Durability, TornTailOfAnAcceptorLogIsCutOffAndTheNodeServes) {
  test::ProcessCluster cluster(3, {"--log-level", "warn"}, /*durable=*/true);
  ASSERT_TRUE(cluster.started());
  Load load(cluster, 3);
  std::this_thread::sleep_for(seconds(3));
  for (int i = 0; i < 3; ++i) cluster.kill(i);
  // A crash mid-write leaves part of a record: cut n1's log at a random byte
  // strictly inside its last record. (A cut a fixed distance from the end
  // could land on a record boundary, leaving no torn write to find: this
  // test failed that way once in CI.)
  const std::string segment = newest_segment(cluster.data_dir(0));
  ASSERT_FALSE(segment.empty());
  const std::uint64_t last = last_record_offset(segment);
  const auto size = fs::file_size(segment);
  ASSERT_GT(size, last + 1) << segment << " holds no whole record";
  std::mt19937_64 rng(std::random_device{}());
  const auto cut = last + 1 + rng() % (size - last - 1);
  fs::resize_file(segment, cut);
  for (int i = 0; i < 3; ++i) ASSERT_TRUE(cluster.restart(i)) << cluster.logs();
  EXPECT_NE(cluster.logs().find("cut a torn write"), std::string::npos) << cluster.logs();
  std::this_thread::sleep_for(seconds(2));
  load.stop();
  expect_linearizable_after_reads(cluster, load.history);
}

// A node that lost its data dir is refused, then rebuilt in place with --join
// while clients keep writing; afterwards it must vote (the cluster makes
// progress with it and one other node), hold the same state, and the whole
// history must be linearizable.
TEST(Durability, AWipedNodeIsRefusedThenRebuiltByAnExplicitJoin) {
  test::ProcessCluster cluster(3, {"--log-level", "info"}, /*durable=*/true);
  ASSERT_TRUE(cluster.started());
  Load load(cluster, 4);
  std::this_thread::sleep_for(milliseconds(1500));
  cluster.kill(2);
  fs::remove_all(cluster.data_dir(2));
  // It made promises it no longer has: voting again could break them. An
  // empty data dir needs an explicit flag, and --first-start is refused
  // because the others have a log.
  EXPECT_FALSE(cluster.restart(2)) << "n3 started with a wiped data dir";
  EXPECT_NE(cluster.logs().find("holds no node state"), std::string::npos) << cluster.logs();
  EXPECT_FALSE(cluster.restart(2, {"--first-start"})) << "n3 started with a wiped data dir";
  EXPECT_NE(cluster.logs().find("but the cluster already has a log"), std::string::npos)
      << cluster.logs();
  EXPECT_NE(cluster.logs().find("rebuild it with --join"), std::string::npos) << cluster.logs();

  ASSERT_TRUE(cluster.restart(2, {"--join"})) << cluster.logs();
  EXPECT_NE(cluster.logs().find("will not vote in instances below"), std::string::npos)
      << cluster.logs();
  std::this_thread::sleep_for(seconds(3));  // it learns a snapshot and the log

  // n1 down: every decision now needs the rebuilt n3's vote.
  cluster.kill(0);
  const int before = load.ok.load();
  std::this_thread::sleep_for(seconds(4));
  EXPECT_GT(load.ok.load(), before + 10) << "no progress with only n2 and the rebuilt n3\n"
                                         << cluster.logs();
  ASSERT_TRUE(cluster.restart(0)) << cluster.logs();
  std::this_thread::sleep_for(seconds(1));
  load.stop();
  expect_linearizable_after_reads(cluster, load.history);

  // Every node ends with the same applied log and the same number of keys.
  zmq::context_t ctx(1);
  Client probe(ctx, ClientOptions{.endpoints = cluster.endpoints(), .curve = cluster.curve()});
  const auto deadline = std::chrono::steady_clock::now() + seconds(20);
  std::vector<StatusReply> st(3);
  bool same = false;
  while (!same && std::chrono::steady_clock::now() < deadline) {
    same = true;
    for (int i = 0; i < 3; ++i) {
      Result<StatusReply> r = probe.status(cluster.endpoints()[static_cast<std::size_t>(i)],
                                           milliseconds(500));
      if (!r.ok()) {
        same = false;
        continue;
      }
      st[static_cast<std::size_t>(i)] = r.value();
    }
    same = same && st[0].applied_below == st[2].applied_below &&
           st[1].applied_below == st[2].applied_below && st[0].keys == st[2].keys;
    if (!same) std::this_thread::sleep_for(milliseconds(200));
  }
  EXPECT_TRUE(same) << "applied: " << st[0].applied_below << " " << st[1].applied_below << " "
                    << st[2].applied_below << "\n" << cluster.logs();
  EXPECT_EQ(st[2].keys, static_cast<std::uint64_t>(kKeys));
}

// --join is refused for a node whose acceptor log is intact: it would throw
// away promises it still has. A data dir that kept its marker but lost the
// acceptor log is refused as such, and --join rebuilds it.
TEST(Durability, JoinIsOnlyForANodeThatLostItsAcceptorLog) {
  test::ProcessCluster cluster(3, {"--log-level", "warn"}, /*durable=*/true);
  ASSERT_TRUE(cluster.started());
  EXPECT_FALSE(cluster.restart(1, {"--join"}));
  EXPECT_NE(cluster.logs().find("restart without --join"), std::string::npos) << cluster.logs();
  EXPECT_TRUE(cluster.restart(1)) << cluster.logs();
  cluster.kill(1);
  fs::remove_all(cluster.data_dir(1) + "/acceptor");
  EXPECT_FALSE(cluster.restart(1)) << "n2 started without its acceptor log";
  EXPECT_NE(cluster.logs().find("is gone, and with it the promises"), std::string::npos)
      << cluster.logs();
  EXPECT_TRUE(cluster.restart(1, {"--join"})) << cluster.logs();
  zmq::context_t ctx(1);
  Client client(ctx, ClientOptions{.endpoints = {cluster.endpoints()[1]}, .curve = cluster.curve(), .deadline = seconds(10)});
  EXPECT_TRUE(client.put("after", "join").ok());
}

TEST(Durability, CorruptionInTheMiddleOfAnAcceptorLogStopsTheNode) {
  test::ProcessCluster cluster(3, {"--log-level", "warn"}, /*durable=*/true);
  ASSERT_TRUE(cluster.started());
  {
    Load load(cluster, 2);
    std::this_thread::sleep_for(seconds(2));
  }
  cluster.kill(0);
  const std::string segment = newest_segment(cluster.data_dir(0));
  const auto size = fs::file_size(segment);
  ASSERT_GT(size, 1000u);
  // Flip a payload byte of a record in the middle of the segment (records
  // are u32 length | u32 crc | payload).
  std::string bytes;
  {
    std::ifstream in(segment, std::ios::binary);
    bytes.assign(std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>());
  }
  std::size_t at = 0;
  while (at < bytes.size() / 2) {
    std::uint32_t len = 0;
    for (int k = 3; k >= 0; --k) len = (len << 8) | static_cast<unsigned char>(bytes[at + static_cast<std::size_t>(k)]);
    at += 8 + len;
  }
  ASSERT_LT(at + 12, bytes.size());
  bytes[at + 9] = static_cast<char>(bytes[at + 9] ^ 0x5a);
  {
    std::ofstream out(segment, std::ios::binary | std::ios::trunc);
    out << bytes;
  }
  EXPECT_FALSE(cluster.restart(0)) << "n1 started on a corrupt acceptor log";
  const std::string logs = cluster.logs();
  EXPECT_NE(logs.find("corrupt record in " + segment + " at byte offset"), std::string::npos) << logs;
  // The other two keep serving.
  zmq::context_t ctx(1);
  Client client(ctx, ClientOptions{.endpoints = {cluster.endpoints()[1], cluster.endpoints()[2]}, .curve = cluster.curve(),
                                   .deadline = seconds(10)});
  EXPECT_TRUE(client.put("after", "corruption").ok());
}

}  // namespace
}  // namespace kvpaxos

namespace kvpaxos {
namespace {

std::uint64_t rss_kib(pid_t pid) {
  std::ifstream in("/proc/" + std::to_string(pid) + "/status");
  for (std::string line; std::getline(in, line);) {
    if (line.rfind("VmRSS:", 0) == 0) return std::stoull(line.substr(6));
  }
  return 0;
}

// A node kept down while the others take many writes: they forget the log
// without it (a majority is done), stay bounded, and the node rejoins by
// fetching a snapshot. KVPAXOS_REJOIN_WRITES sets the number of writes (the
// closing note's 100,000 run); CI uses 48,000: the peers' learners keep the
// newest 4096 instances for a node that lags (LearnerOptions::
// keep_for_laggards), so n3 must be further behind than that for a snapshot
// to be its only way back, and 8 writers put at most 8 writes in an instance.
TEST(Durability, NodeDownDuringManyWritesRejoinsThroughASnapshot) {
  const char* env = std::getenv("KVPAXOS_REJOIN_WRITES");
  const int writes = env ? std::atoi(env) : 48000;
  test::ProcessCluster cluster(3, {"--log-level", "warn", "--snapshot-every", "500"},
                               /*durable=*/true);
  ASSERT_TRUE(cluster.started());
  cluster.kill(2);

  std::atomic<int> next{0};
  std::atomic<int> failures{0};
  std::vector<std::thread> writers;
  const auto started = std::chrono::steady_clock::now();
  for (int w = 0; w < 8; ++w) {
    writers.emplace_back([&, w] {
      zmq::context_t ctx(1);
      std::vector<std::string> eps = {cluster.endpoints()[static_cast<std::size_t>(w % 2)],
                                      cluster.endpoints()[static_cast<std::size_t>(1 - w % 2)]};
      Client client(ctx, ClientOptions{.endpoints = eps, .curve = cluster.curve(), .deadline = seconds(30)});
      for (int i = next++; i < writes; i = next++) {
        if (!client.put("w" + std::to_string(i % 1000), "v" + std::to_string(i)).ok()) ++failures;
        if (i > 0 && i % 10000 == 0) std::cout << "  " << i << " writes\n" << std::flush;
      }
    });
  }
  std::uint64_t peak_rss = 0;
  while (next.load() < writes) {
    peak_rss = std::max(peak_rss, rss_kib(cluster.pid(0)));
    std::this_thread::sleep_for(milliseconds(200));
  }
  for (std::thread& t : writers) t.join();
  const double secs = std::chrono::duration<double>(std::chrono::steady_clock::now() - started).count();
  ASSERT_EQ(failures.load(), 0);

  zmq::context_t ctx(1);
  Client admin(ctx, ClientOptions{.endpoints = cluster.endpoints(), .curve = cluster.curve()});
  Result<StatusReply> n1 = admin.status(cluster.endpoints()[0], milliseconds(2000));
  ASSERT_TRUE(n1.ok()) << n1.error();
  // Batching puts many writes in one instance: compare with the log, not the writes.
  EXPECT_GE(n1->forget_below, InstanceId{500}) << "n1 did not forget its log while n3 was down";
  if (!env) {
    ASSERT_GT(n1->applied_below, InstanceId{4096 + 500})
        << "too few instances: n3 could catch up from the log its peers keep for it";
  }
  EXPECT_LE(n1->applied_below - n1->forget_below, InstanceId{1500})
      << "n1 holds more than three snapshot intervals of log while n3 is down";
  std::cout << writes << " writes with n3 down in " << secs << " s; n1: applied "
            << n1->applied_below << ", forgotten below " << n1->forget_below << ", snapshot at "
            << n1->snapshot_below << " (" << n1->snapshot_bytes << " B), data dir "
            << n1->data_dir_bytes << " B, peak RSS " << peak_rss << " KiB\n";

  const auto rejoin_started = std::chrono::steady_clock::now();
  ASSERT_TRUE(cluster.restart(2)) << cluster.logs();
  bool caught_up = false;
  StatusReply n3{};
  for (int i = 0; i < 300 && !caught_up; ++i) {
    Result<StatusReply> s = admin.status(cluster.endpoints()[2], milliseconds(1000));
    if (s.ok()) n3 = *s;
    caught_up = s.ok() && s->applied_below >= n1->applied_below;
    if (!caught_up) std::this_thread::sleep_for(milliseconds(100));
  }
  ASSERT_TRUE(caught_up) << "n3 applied " << n3.applied_below << " of " << n1->applied_below;
  std::cout << "n3 caught up to " << n3.applied_below << " in "
            << std::chrono::duration<double>(std::chrono::steady_clock::now() - rejoin_started).count()
            << " s (snapshot at " << n3.snapshot_below << ")\n";
  // The installed snapshot counts once it is written to n3's disk, which
  // happens off the applier's thread and may come after the catch-up.
  for (int i = 0; i < 100 && n3.snapshot_below == 0; ++i) {
    std::this_thread::sleep_for(milliseconds(100));
    if (Result<StatusReply> s = admin.status(cluster.endpoints()[2], milliseconds(1000)); s.ok()) n3 = *s;
  }
  EXPECT_GT(n3.snapshot_below, 0u) << "n3 should have installed a snapshot";

  // Through n3 alone, every key reads as it does through n1 (both are
  // linearizable reads: the same value unless a write came in between, and
  // none does now).
  Client via_n1(ctx, ClientOptions{.endpoints = {cluster.endpoints()[0]}, .curve = cluster.curve(), .deadline = seconds(10)});
  Client via_n3(ctx, ClientOptions{.endpoints = {cluster.endpoints()[2]}, .curve = cluster.curve(), .deadline = seconds(10)});
  for (int k = 0; k < 1000 && k < writes; k += 37) {
    const std::string key = "w" + std::to_string(k);
    const CallResult a = via_n1.get(key);
    const CallResult b = via_n3.get(key);
    ASSERT_TRUE(a.ok() && b.ok()) << a.error << b.error;
    EXPECT_FALSE(b.value.empty()) << key;
    EXPECT_EQ(b.value, a.value) << key;
  }
}

}  // namespace
}  // namespace kvpaxos
