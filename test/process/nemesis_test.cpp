// Real kvpaxosd processes under a nemesis, checked by their clients' history.
//
// Concurrent clients (half of them stuck to one node, as kvctl with one
// endpoint) run Put/Append/Get on a few keys while a nemesis repeatedly
// partitions the cluster (fault reach), pauses a node (SIGSTOP/SIGCONT), kills
// a minority node for good (SIGKILL; without durability it stays down) and
// turns on message drops. Then everything heals, every key is read once more
// (the cluster must serve again), the live nodes must converge, and the whole
// history must be linearizable. A failing history is written to a file whose
// path the failure names; `lincheck FILE` re-checks it.
#include <gtest/gtest.h>
#include <signal.h>

#include <algorithm>
#include <atomic>
#include <filesystem>
#include <iostream>
#include <random>
#include <set>
#include <thread>

#include "actors/core/quorum.hpp"
#include "client/client.hpp"
#include "process/process_cluster.hpp"
#include "test/history/history.hpp"
#include "test/history/linearizability.hpp"

namespace kvpaxos {
namespace {

using std::chrono::milliseconds;
using std::chrono::seconds;
using SteadyClock = std::chrono::steady_clock;

struct NemesisStats {
  int partitions = 0;
  int pauses = 0;
  int kills = 0;
  int drops = 0;
  int heals = 0;
};

// Drives faults on a ProcessCluster from the test's thread. Knows which
// nodes are stopped or dead so it never waits on them.
class Nemesis {
 public:
  Nemesis(test::ProcessCluster& cluster, zmq::context_t& ctx, std::uint64_t seed)
      : cluster_(cluster), admin_(ctx, ClientOptions{.endpoints = cluster.endpoints(), .curve = cluster.curve()}),
        rng_(seed), dead_(static_cast<std::size_t>(cluster.size()), false) {}

  void step() {
    const int n = cluster_.size();
    const int roll = static_cast<int>(rng_() % 100);
    if (roll < 30) {
      partition();
    } else if (roll < 50) {
      pause(static_cast<int>(rng_() % static_cast<unsigned>(n)));
    } else if (roll < 60 && kills() < static_cast<int>(tolerated_failures(static_cast<std::size_t>(n)))) {
      kill(static_cast<int>(rng_() % static_cast<unsigned>(n)));
    } else if (roll < 80) {
      drop(static_cast<int>(rng_() % static_cast<unsigned>(n)), 0.2);
    } else {
      heal();
    }
  }

  void heal() {
    ++stats.heals;
    for (int i = 0; i < cluster_.size(); ++i) {
      if (dead_[static_cast<std::size_t>(i)]) continue;
      fault(i, FaultRequest{.set_reach = true, .reach_all = true, .set_drop = true, .drop_rate = 0});
    }
  }

  bool dead(int i) const { return dead_[static_cast<std::size_t>(i)]; }
  NemesisStats stats;

 private:
  int kills() const { return static_cast<int>(std::count(dead_.begin(), dead_.end(), true)); }

  void partition() {
    ++stats.partitions;
    std::vector<int> side(static_cast<std::size_t>(cluster_.size()));
    for (int& s : side) s = static_cast<int>(rng_() % 2);
    for (int i = 0; i < cluster_.size(); ++i) {
      FaultRequest r{.set_reach = true, .reach_all = false};
      for (int j = 0; j < cluster_.size(); ++j) {
        if (side[static_cast<std::size_t>(j)] == side[static_cast<std::size_t>(i)]) {
          r.reach.push_back(cluster_.name(j));
        }
      }
      fault(i, r);
    }
  }

  void pause(int i) {
    if (dead(i)) return;
    ++stats.pauses;
    cluster_.signal(i, SIGSTOP);
    std::this_thread::sleep_for(milliseconds(300 + rng_() % 1500));
    cluster_.signal(i, SIGCONT);
  }

  void kill(int i) {
    if (dead(i)) return;
    ++stats.kills;
    cluster_.signal(i, SIGKILL);
    dead_[static_cast<std::size_t>(i)] = true;
  }

  void drop(int i, double rate) {
    ++stats.drops;
    fault(i, FaultRequest{.set_drop = true, .drop_rate = rate});
  }

  void fault(int i, const FaultRequest& r) {
    if (dead(i)) return;
    Result<FaultReply> reply =
        admin_.fault(cluster_.endpoints()[static_cast<std::size_t>(i)], r, milliseconds(2000));
    EXPECT_TRUE(reply.ok()) << "fault request to " << cluster_.name(i) << ": " << reply.error();
  }

  test::ProcessCluster& cluster_;
  Client admin_;
  std::mt19937_64 rng_;
  std::vector<bool> dead_;
};

// One client thread: random ops with unique written values until `stop`.
void run_client(zmq::context_t& ctx, std::vector<std::string> endpoints,
                std::optional<ClientCurve> curve, int index, int keys, std::atomic<bool>& stop,
                HistoryRecorder& history) {
  Client client(ctx, ClientOptions{.endpoints = std::move(endpoints), .curve = curve, .deadline = seconds(3)});
  std::mt19937_64 rng(static_cast<std::uint64_t>(index) * 7919 + 17);
  for (int n = 1; !stop.load(); ++n) {
    const std::string key = "k" + std::to_string(rng() % static_cast<unsigned>(keys));
    const int roll = static_cast<int>(rng() % 100);
    const std::string op = roll < 40 ? "append" : roll < 65 ? "put" : "get";
    const std::string value = op == "get" ? "" : "c" + std::to_string(index) + "." + std::to_string(n) + ";";
    const std::size_t h = history.invoke(client.id(), op, key, value);
    const CallResult r = op == "get" ? client.get(key) : op == "put" ? client.put(key, value)
                                                                     : client.append(key, value);
    if (r.outcome == Outcome::ok) {
      history.complete_ok(h, r.value);
    } else {
      history.complete_unknown(h);
      // A refusal would be a bug; a session that could not be opened (its
      // opening get timed out) means this op was never sent, which the
      // history's "unknown" covers.
      const bool not_sent = r.error.rfind("could not open a session", 0) == 0;
      EXPECT_TRUE(r.outcome != Outcome::rejected || not_sent)
          << "client " << index << ": " << r.error;
    }
  }
}

void run_nemesis_scenario(int nodes, seconds duration, std::uint64_t seed) {
  test::ProcessCluster cluster(nodes, {"--fault-injection", "--log-level", "error"});
  ASSERT_TRUE(cluster.started());
  zmq::context_t ctx(1);
  HistoryRecorder history;
  std::atomic<bool> stop{false};
  const int clients = 2 * nodes;
  const int keys = 4;
  std::vector<std::thread> threads;
  for (int c = 0; c < clients; ++c) {
    // Odd clients talk to one node only; even ones to all, starting anywhere.
    std::vector<std::string> eps = cluster.endpoints();
    std::rotate(eps.begin(), eps.begin() + c % nodes, eps.end());
    if (c % 2 == 1) eps.resize(1);
    threads.emplace_back(run_client, std::ref(ctx), eps, cluster.curve(), c, keys, std::ref(stop), std::ref(history));
  }

  Nemesis nemesis(cluster, ctx, seed);
  const auto end = SteadyClock::now() + duration;
  std::mt19937_64 rng(seed);
  while (SteadyClock::now() < end) {
    nemesis.step();
    std::this_thread::sleep_for(milliseconds(500 + rng() % 1000));
  }
  nemesis.heal();
  stop = true;
  for (std::thread& t : threads) t.join();

  // After healing, a majority is up and connected: every key must be readable.
  std::vector<std::string> live;
  for (int i = 0; i < nodes; ++i) {
    if (!nemesis.dead(i)) live.push_back(cluster.endpoints()[static_cast<std::size_t>(i)]);
  }
  Client reader(ctx, ClientOptions{.endpoints = live, .curve = cluster.curve(), .deadline = seconds(30)});
  for (int k = 0; k < keys; ++k) {
    const std::string key = "k" + std::to_string(k);
    const std::size_t h = history.invoke(reader.id(), "get", key, "");
    const CallResult r = reader.get(key);
    ASSERT_TRUE(r.ok()) << "the healed cluster did not serve get " << key << ": " << r.error
                        << "\n" << cluster.logs();
    history.complete_ok(h, r.value);
  }

  // The live replicas converge on one applied point.
  const auto converge_by = SteadyClock::now() + seconds(30);
  bool converged = false;
  std::string last_view;
  while (!converged && SteadyClock::now() < converge_by) {
    std::set<InstanceId> applied;
    last_view.clear();
    for (const std::string& ep : live) {
      Result<StatusReply> s = reader.status(ep, milliseconds(1000));
      applied.insert(s.ok() ? s.value().applied_below : 0);
      last_view += ep + "=" + (s.ok() ? std::to_string(s.value().applied_below) : "?") + " ";
    }
    converged = applied.size() == 1 && *applied.begin() > 0;
    if (!converged) std::this_thread::sleep_for(milliseconds(200));
  }
  EXPECT_TRUE(converged) << "live nodes did not converge: " << last_view;

  const std::vector<HistoryOp> ops = history.ops();
  const auto ok_ops = std::count_if(ops.begin(), ops.end(), [](const HistoryOp& o) {
    return o.outcome == HistoryOutcome::ok;
  });
  const NemesisStats& st = nemesis.stats;
  std::cout << nodes << " nodes, seed " << seed << ": " << ops.size() << " ops (" << ok_ops
            << " ok, " << ops.size() - static_cast<std::size_t>(ok_ops) << " unknown); "
            << st.partitions << " partitions, " << st.pauses << " pauses, " << st.kills
            << " kills, " << st.drops << " drop phases, " << st.heals << " heals\n";
  EXPECT_GT(ok_ops, 50) << "the clients got almost nothing done";
  EXPECT_GT(st.partitions + st.pauses + st.kills + st.drops, 3) << "the nemesis barely acted";

  const LinearizabilityResult lin = check_linearizable(ops);
  if (!lin.ok()) {
    const std::string path = (std::filesystem::temp_directory_path() /
                              ("kvpaxos-nemesis-" + std::to_string(nodes) + "-" +
                               std::to_string(seed) + ".jsonl")).string();
    std::string error;
    const bool written = write_jsonl(path, ops, &error);
    ADD_FAILURE() << "history is " << to_string(lin.verdict) << " at key " << lin.key << ":\n"
                  << lin.explanation << "\nhistory: " << (written ? path : error);
  }
}

TEST(Nemesis, ThreeNodesStayLinearizableUnderPartitionsPausesKillsAndDrops) {
  run_nemesis_scenario(3, seconds(25), 3);
}

TEST(Nemesis, FiveNodesStayLinearizableUnderPartitionsPausesKillsAndDrops) {
  run_nemesis_scenario(5, seconds(25), 5);
}

}  // namespace
}  // namespace kvpaxos
