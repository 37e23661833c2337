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
      threads_.emplace_back([this, &cluster, c] { run(cluster.endpoints(), c); });
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
  void run(std::vector<std::string> endpoints, int index) {
    std::rotate(endpoints.begin(), endpoints.begin() + index % static_cast<int>(endpoints.size()),
                endpoints.end());
    Client client(ctx_, ClientOptions{.endpoints = endpoints, .deadline = seconds(2)});
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
  Client reader(ctx, ClientOptions{.endpoints = cluster.endpoints(), .deadline = seconds(30)});
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

std::string read_log(const test::ProcessCluster& cluster) { return cluster.logs(); }

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
  // of its last 64 (every record is longer than its 8-byte header).
  const std::string segment = newest_segment(cluster.data_dir(0));
  ASSERT_FALSE(segment.empty());
  const auto size = fs::file_size(segment);
  ASSERT_GT(size, 64u);
  std::mt19937_64 rng(std::random_device{}());
  const auto cut = size - 1 - rng() % 63;
  fs::resize_file(segment, cut);
  for (int i = 0; i < 3; ++i) ASSERT_TRUE(cluster.restart(i)) << cluster.logs();
  EXPECT_NE(read_log(cluster).find("cut a torn write"), std::string::npos) << cluster.logs();
  std::this_thread::sleep_for(seconds(2));
  load.stop();
  expect_linearizable_after_reads(cluster, load.history);
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
  Client client(ctx, ClientOptions{.endpoints = {cluster.endpoints()[1], cluster.endpoints()[2]},
                                   .deadline = seconds(10)});
  EXPECT_TRUE(client.put("after", "corruption").ok());
}

}  // namespace
}  // namespace kvpaxos
