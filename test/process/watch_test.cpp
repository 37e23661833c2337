// Watches against real kvpaxosd processes (with CURVE keys): a watch that
// loses its node resumes at another with no gap and no repeat, a watch from
// before the history is told "compacted", and a consumer that never reads
// costs the node its window, not its memory.
#include <gtest/gtest.h>

#include <signal.h>

#include <atomic>
#include <fstream>
#include <map>
#include <thread>

#include "client/client.hpp"
#include "client/watch.hpp"
#include "messages/codec.hpp"
#include "messages/kv_op.hpp"
#include "process/process_cluster.hpp"

namespace kvpaxos {
namespace {

using std::chrono::milliseconds;
using std::chrono::seconds;
using SteadyClock = std::chrono::steady_clock;

// Under AddressSanitizer freed blocks wait in its 256 MiB quarantine.
#if defined(__SANITIZE_ADDRESS__)
constexpr std::size_t kQuarantineMib = 256;
#else
constexpr std::size_t kQuarantineMib = 0;
#endif

std::size_t rss_mib(pid_t pid) {
  std::ifstream status("/proc/" + std::to_string(pid) + "/status");
  for (std::string line; std::getline(status, line);) {
    if (line.rfind("VmRSS:", 0) == 0) return std::stoul(line.substr(6)) / 1024;
  }
  return 0;
}

// Writes w/0, w/1, ... (each once) until stopped; remembers each write's
// reply revision, so the watcher's events can be checked against them.
class Writer {
 public:
  Writer(const std::vector<std::string>& endpoints, std::optional<ClientCurve> curve)
      : thread_([this, endpoints, curve] {
          zmq::context_t ctx(1);
          Client c(ctx, ClientOptions{.endpoints = endpoints, .curve = curve, .deadline = seconds(30)});
          for (int i = 0; !stop_; ++i) {
            const std::string key = "w/" + std::to_string(i);
            CallResult r = c.put(key, "v" + std::to_string(i));
            std::lock_guard lock(mu_);
            if (!r.ok()) {
              error_ = r.error;
              return;
            }
            written_[r.result.revision] = key;
            std::this_thread::sleep_for(milliseconds(2));
          }
        }) {}
  ~Writer() { stop(); }
  void stop() {
    stop_ = true;
    if (thread_.joinable()) thread_.join();
  }
  std::map<std::uint64_t, std::string> written() {
    std::lock_guard lock(mu_);
    return written_;
  }
  std::string error() {
    std::lock_guard lock(mu_);
    return error_;
  }

 private:
  std::mutex mu_;
  std::map<std::uint64_t, std::string> written_;  // revision -> key
  std::string error_;
  std::atomic<bool> stop_{false};
  std::thread thread_;
};

// The node a watch talks to is stopped (SIGSTOP: its connection stays up but
// says nothing, the hardest case to notice) and later killed; the stream
// goes on at another node from where it was, and at the end holds every
// write exactly once, in revision order.
TEST(ProcessWatch, AWatchThatLosesItsNodeResumesElsewhereWithNoGapAndNoRepeat) {
  test::ProcessCluster cluster(3, {"--log-level", "error", "--watch-progress-ms", "200"});
  ASSERT_TRUE(cluster.started());
  zmq::context_t ctx(1);
  WatchStream watch(ctx,
                    ClientOptions{.endpoints = cluster.endpoints(), .curve = cluster.curve(),
                                  .deadline = seconds(20), .attempt_timeout = milliseconds(500)},
                    WatchOptions{.key = "w/", .range_end = prefix_end("w/"), .start_revision = 1,
                                 .silence_timeout = seconds(2)});
  Writer writer(cluster.endpoints(), cluster.curve());
  std::vector<WatchEvent> events;
  auto read_for = [&](SteadyClock::duration d) {
    const auto end = SteadyClock::now() + d;
    while (SteadyClock::now() < end) {
      Result<WatchBatch> b = watch.next(milliseconds(100));
      ASSERT_TRUE(b.ok()) << b.error() << cluster.logs();
      for (WatchEvent& e : b->events) events.push_back(std::move(e));
    }
  };
  read_for(seconds(2));
  ASSERT_FALSE(events.empty()) << "no event in 2 s";
  const int first = static_cast<int>(
      std::find(cluster.endpoints().begin(), cluster.endpoints().end(), watch.endpoint()) -
      cluster.endpoints().begin());
  cluster.signal(first, SIGSTOP);
  read_for(seconds(5));
  EXPECT_GE(watch.failovers(), 1) << "still on the stopped node";
  cluster.signal(first, SIGCONT);
  cluster.kill(first);
  read_for(seconds(3));
  writer.stop();
  ASSERT_EQ(writer.error(), "");
  const std::map<std::uint64_t, std::string> written = writer.written();
  ASSERT_GT(written.size(), 100u);
  read_for(seconds(3));  // the tail
  std::map<std::uint64_t, std::string> seen;
  std::uint64_t last = 0;
  for (const WatchEvent& e : events) {
    EXPECT_GT(e.kv.mod_revision, last) << "out of order or repeated";
    last = e.kv.mod_revision;
    seen[e.kv.mod_revision] = e.kv.key;
  }
  EXPECT_EQ(seen, written) << "gaps or extras; " << events.size() << " events, "
                           << watch.failovers() << " fail-overs";
  std::printf("watch: %zu events, %d fail-overs, revisions 1..%llu\n", events.size(),
              watch.failovers(), static_cast<unsigned long long>(last));
}

TEST(ProcessWatch, AWatchFromBeforeTheHistoryIsToldWhereItStarts) {
  test::ProcessCluster cluster(3, {"--log-level", "error", "--watch-history-revisions", "10"});
  ASSERT_TRUE(cluster.started());
  zmq::context_t ctx(1);
  Client c(ctx, ClientOptions{.endpoints = cluster.endpoints(), .curve = cluster.curve(),
                              .deadline = seconds(20)});
  for (int i = 0; i < 30; ++i) ASSERT_TRUE(c.put("k", std::to_string(i)).ok());
  WatchStream old(ctx, ClientOptions{.endpoints = {cluster.endpoints()[0]}, .curve = cluster.curve()},
                  WatchOptions{.key = "k", .start_revision = 2});
  Result<WatchBatch> b = old.next(seconds(5));
  ASSERT_FALSE(b.ok());
  EXPECT_TRUE(old.compacted());
  EXPECT_EQ(old.compact_revision(), 21u);
  EXPECT_NE(b.error().find("compacted"), std::string::npos) << b.error();
  // From there: the last ten changes, then what follows.
  WatchStream again(ctx, ClientOptions{.endpoints = {cluster.endpoints()[0]}, .curve = cluster.curve()},
                    WatchOptions{.key = "k", .start_revision = old.compact_revision()});
  std::vector<std::string> values;
  const auto end = SteadyClock::now() + seconds(10);
  while (values.size() < 10 && SteadyClock::now() < end) {
    Result<WatchBatch> got = again.next(milliseconds(200));
    ASSERT_TRUE(got.ok()) << got.error();
    for (const WatchEvent& e : got->events) values.push_back(e.kv.value);
  }
  ASSERT_EQ(values.size(), 10u);
  EXPECT_EQ(values.front(), "20");
  EXPECT_EQ(values.back(), "29");
}

// A raw client creates watches on everything and never reads a byte, while
// 200 MiB of values are written: the node sends each watch its window and
// stops, so its memory stays bounded, and others are served throughout.
TEST(ProcessWatch, AConsumerThatNeverReadsCostsItsWindowNotTheNodesMemory) {
  test::ProcessCluster cluster(3, {"--log-level", "error", "--watch-history-bytes", "33554432"});
  ASSERT_TRUE(cluster.started());
  zmq::context_t ctx(1);
  zmq::socket_t sink(ctx, zmq::socket_type::dealer);
  sink.set(zmq::sockopt::linger, 0);
  sink.set(zmq::sockopt::rcvhwm, 1);
  sink.set(zmq::sockopt::rcvbuf, 4096);
  test::use_client_key(sink, cluster.curve());
  sink.connect(client_endpoint(cluster.endpoints()[0]));
  for (std::uint64_t id = 1; id <= 32; ++id) {
    sink.send(zmq::buffer(encode(WatchRequest{.watch_id = id, .key = "", .range_end = std::string("\0", 1)})),
              zmq::send_flags::none);
  }
  Client writer(ctx, ClientOptions{.endpoints = {cluster.endpoints()[1]}, .curve = cluster.curve(),
                                   .deadline = seconds(20)});
  const std::string value(1 << 20, 'x');
  std::size_t peak = 0;
  for (int i = 0; i < 200; ++i) {
    ASSERT_TRUE(writer.put("big/" + std::to_string(i % 20), value).ok()) << cluster.logs();
    if (i % 10 == 0) peak = std::max(peak, rss_mib(cluster.pid(0)));
  }
  peak = std::max(peak, rss_mib(cluster.pid(0)));
  Client bystander(ctx, ClientOptions{.endpoints = {cluster.endpoints()[0]}, .curve = cluster.curve(),
                                      .deadline = seconds(10)});
  EXPECT_TRUE(bystander.put("k", "v").ok());
  std::printf("never-reading watcher: 32 watches, 200 MiB written; node RSS peaked at %zu MiB\n", peak);
  // Without the window the node would queue 32 x 200 MiB for it.
  EXPECT_LT(peak, 768u + kQuarantineMib) << "watch memory is not bounded";
}

}  // namespace
}  // namespace kvpaxos
