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
#include <functional>
#include <map>
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

// After healing: every key k0..k{keys-1} must be readable (the cluster
// serves again); the reads go into the history.
void read_every_key(Client& reader, int keys, HistoryRecorder& history,
                    const test::ProcessCluster& cluster) {
  for (int k = 0; k < keys; ++k) {
    const std::string key = "k" + std::to_string(k);
    const std::size_t h = history.invoke(reader.id(), "get", key, "");
    const CallResult r = reader.get(key);
    ASSERT_TRUE(r.ok()) << "the healed cluster did not serve get " << key << ": " << r.error
                        << "\n" << cluster.logs();
    history.complete_ok(h, r.value);
  }
}

// The replicas at `live` converge on one applied point and revision (30 s
// at most); `who` names them in the failure.
void expect_converged(Client& reader, const std::vector<std::string>& live, const char* who) {
  const auto converge_by = SteadyClock::now() + seconds(30);
  bool converged = false;
  std::string last_view;
  while (!converged && SteadyClock::now() < converge_by) {
    std::set<std::pair<InstanceId, std::uint64_t>> seen;
    last_view.clear();
    for (const std::string& ep : live) {
      Result<StatusReply> s = reader.status(ep, milliseconds(1000));
      seen.insert(s.ok() ? std::pair<InstanceId, std::uint64_t>{s->applied_below, s->revision}
                         : std::pair<InstanceId, std::uint64_t>{0, 0});
      last_view += ep + "=" + (s.ok() ? std::to_string(s->applied_below) : "?") + " ";
    }
    converged = seen.size() == 1 && seen.begin()->first > 0;
    if (!converged) std::this_thread::sleep_for(milliseconds(200));
  }
  EXPECT_TRUE(converged) << who << " did not converge: " << last_view;
}

// Ops answered ok.
std::size_t ok_count(const std::vector<HistoryOp>& ops) {
  return static_cast<std::size_t>(std::count_if(ops.begin(), ops.end(), [](const HistoryOp& o) {
    return o.outcome == HistoryOutcome::ok;
  }));
}

// The history is linearizable; if not, it is written to
// $TMPDIR/kvpaxos-nemesis-<name>.jsonl (for lincheck) and the failure says so.
void expect_linearizable(const std::vector<HistoryOp>& ops, const std::string& name) {
  const LinearizabilityResult lin = check_linearizable(ops);
  if (lin.ok()) return;
  const std::string path =
      (std::filesystem::temp_directory_path() / ("kvpaxos-nemesis-" + name + ".jsonl")).string();
  std::string error;
  const bool written = write_jsonl(path, ops, &error);
  ADD_FAILURE() << "history is " << to_string(lin.verdict) << " at key " << lin.key << ":\n"
                << lin.explanation << "\nhistory: " << (written ? path : error);
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
  read_every_key(reader, keys, history, cluster);
  if (::testing::Test::HasFatalFailure()) return;

  expect_converged(reader, live, "the live nodes");

  const std::vector<HistoryOp> ops = history.ops();
  const std::size_t ok_ops = ok_count(ops);
  const NemesisStats& st = nemesis.stats;
  std::cout << nodes << " nodes, seed " << seed << ": " << ops.size() << " ops (" << ok_ops
            << " ok, " << ops.size() - ok_ops << " unknown); "
            << st.partitions << " partitions, " << st.pauses << " pauses, " << st.kills
            << " kills, " << st.drops << " drop phases, " << st.heals << " heals\n";
  EXPECT_GT(ok_ops, 50u) << "the clients got almost nothing done";
  EXPECT_GT(st.partitions + st.pauses + st.kills + st.drops, 3) << "the nemesis barely acted";

  expect_linearizable(ops, std::to_string(nodes) + "-" + std::to_string(seed));
}

TEST(Nemesis, ThreeNodesStayLinearizableUnderPartitionsPausesKillsAndDrops) {
  run_nemesis_scenario(3, seconds(25), 3);
}

TEST(Nemesis, FiveNodesStayLinearizableUnderPartitionsPausesKillsAndDrops) {
  run_nemesis_scenario(5, seconds(25), 5);
}

// ---- membership changes among the faults (issue 14)

// The operator of the membership nemesis: reads the configuration through
// the log and changes it the way kvctl does (compare-and-swap on the epoch),
// retrying while a change is pending or an answer is lost; `done` says from
// a configuration whether the change took (an unknown outcome may have).
class MemberOperator {
 public:
  MemberOperator(zmq::context_t& ctx, test::ProcessCluster& cluster, int capacity)
      : cluster_(cluster), admin_(ctx, ClientOptions{.endpoints = all_endpoints(cluster, capacity),
                                                     .curve = cluster.curve(),
                                                     .deadline = seconds(4)}) {}

  // Up to `attempts` tries of 4 s each.
  std::optional<MemberResult> list(int attempts = 10) {
    for (int attempt = 0; attempt < attempts; ++attempt) {
      const CallResult r = admin_.member(MemberChange{.kind = MemberChangeKind::list});
      if (r.ok()) return r.result.member;
      last_error = "member list: " + r.error;
    }
    return std::nullopt;
  }

  // True once `done` holds, false after 40 s. After 15 s, on_stuck() once
  // (the test heals: a partition may have left no majority). One try of the
  // list at a time: ten (40 s) without a majority used to end the loop
  // before the heal, and the run failed with the partition still in place.
  bool change(MemberChange c, const std::function<bool(const Config&)>& done) {
    const auto start = SteadyClock::now();
    bool unstuck = false;
    while (SteadyClock::now() < start + seconds(40)) {
      if (!unstuck && SteadyClock::now() > start + seconds(15) && on_stuck) {
        unstuck = true;
        on_stuck();
      }
      const std::optional<MemberResult> now = list(1);
      if (!now) continue;
      if (done(now->config)) return true;
      if (now->pending_from != 0) {
        last_error = "epoch " + std::to_string(now->epoch) + " still pending, in force from " +
                     std::to_string(now->pending_from);
        std::this_thread::sleep_for(milliseconds(200));
        continue;
      }
      c.expected_epoch = now->epoch;
      if (c.kind == MemberChangeKind::promote || c.kind == MemberChangeKind::replace) {
        const MemberEntry* learner =
            now->config.find(c.kind == MemberChangeKind::replace ? c.other : c.target);
        if (learner != nullptr) c.incarnation = learner->incarnation;
      }
      const CallResult r = admin_.member(c);
      if (r.ok() && r.result.member.error.empty()) return true;
      last_error = r.ok() ? "refused: " + r.result.member.error : r.error;
      if (r.ok()) std::this_thread::sleep_for(milliseconds(200));  // refused: read again
    }
    return false;
  }

  // The "n1=HOST:PORT,..." a new member's --cluster names.
  static std::string cluster_flag(const Config& config) {
    std::string out;
    for (const MemberEntry& m : config.members) {
      std::string peer = m.peer_endpoint;
      if (peer.rfind("tcp://", 0) == 0) peer.erase(0, 6);
      out += (out.empty() ? "" : ",") + m.name + "=" + peer;
    }
    return out;
  }

  static std::vector<std::string> all_endpoints(const test::ProcessCluster& cluster, int capacity) {
    std::vector<std::string> eps;
    for (int i = 0; i < capacity; ++i) eps.push_back(cluster.client_endpoint_of(i));
    return eps;
  }

  Client& client() { return admin_; }
  std::function<void()> on_stuck;
  std::string last_error;  // of the last change that did not go through

 private:
  test::ProcessCluster& cluster_;
  Client admin_;
};

// Three durable nodes grow to five voters, lose the leader and two more of
// the first start (one by replace), and gain another, through kvpaxosd
// --initial-cluster-state existing, while clients run and, between the
// changes, partitions among the members, pauses (SIGSTOP), crash-restarts
// (SIGKILL, then a start from the data dir) and message drops go on. Then:
// every key readable, the final members converge, every removed node exited
// with status 4, and the history is linearizable. With CURVE keys on every
// link: each new member comes with its own pair (member add --peer-key), and
// a removed member must still hear that it was removed (the notice travels
// on a key its peers no longer take for anything else).
TEST(Nemesis, MembershipChangesAmongPartitionsPausesCrashesAndDropsStayLinearizable) {
  constexpr int kFirst = 3;
  constexpr int kCapacity = 7;
  test::ProcessCluster cluster(kFirst, {"--fault-injection", "--log-level", "info"},
                               /*durable=*/true, test::Keys::on, 0, kCapacity - kFirst);
  ASSERT_TRUE(cluster.started());
  zmq::context_t ctx(1);
  MemberOperator op(ctx, cluster, kCapacity);
  HistoryRecorder history;
  std::atomic<bool> stop{false};
  const int keys = 8;  // more keys, shorter per-key histories for the checker
  std::vector<std::thread> threads;
  for (int c = 0; c < 6; ++c) {
    std::vector<std::string> eps = MemberOperator::all_endpoints(cluster, kCapacity);
    std::rotate(eps.begin(), eps.begin() + c % kFirst, eps.end());
    threads.emplace_back(run_client, std::ref(ctx), eps, cluster.curve(), c, keys, std::ref(stop),
                         std::ref(history));
  }

  std::mt19937_64 rng(14);
  NemesisStats st;
  std::set<int> removed;       // node indexes (n{i+1})
  std::optional<int> crashed;  // SIGKILLed at the last step, restarted at the next
  Config config;
  const auto index_of = [&](NodeId id) {
    const MemberEntry* m = config.find(id);
    return m == nullptr ? -1 : std::stoi(m->name.substr(1)) - 1;
  };
  const auto id_of = [&](int i) -> NodeId {
    for (const MemberEntry& m : config.members) {
      if (m.name == cluster.name(i)) return m.id;
    }
    ADD_FAILURE() << cluster.name(i) << " is no member";
    return kNoNode;
  };
  const auto fault = [&](int i, const FaultRequest& r) {
    (void)op.client().fault(cluster.client_endpoint_of(i), r, milliseconds(1000));
  };
  const auto heal = [&] {
    ++st.heals;
    // Removed nodes too: one still partitioned could never hear it was removed.
    for (int i = 0; i < cluster.size(); ++i) {
      if (cluster.alive(i)) {
        fault(i, FaultRequest{.set_reach = true, .reach_all = true, .set_drop = true, .drop_rate = 0});
      }
    }
  };
  op.on_stuck = heal;
  // A node crashed at the last step starts again from its data dir; one
  // removed meanwhile exits 4 instead of serving.
  const auto restart_crashed = [&] {
    if (!crashed) return;
    const bool serving = cluster.restart(*crashed);
    EXPECT_TRUE(serving || removed.count(*crashed)) << cluster.name(*crashed)
                                                    << " did not restart\n" << cluster.logs();
    crashed.reset();
  };
  const auto refresh = [&] {
    const std::optional<MemberResult> now = op.list();
    if (now) config = now->config;
  };
  // What each node says, for failure messages.
  const auto views = [&] {
    std::string out;
    for (int i = 0; i < cluster.size(); ++i) {
      out += cluster.name(i) + ": ";
      if (!cluster.alive(i)) {
        out += "down (exit " + std::to_string(cluster.exit_status(i)) + ")\n";
        continue;
      }
      Result<StatusReply> s = op.client().status(cluster.client_endpoint_of(i), milliseconds(500));
      out += s.ok() ? "applied " + std::to_string(s->applied_below) + ", decided " +
                          std::to_string(s->decided_below) + ", leader " +
                          std::to_string(s->leader) + ", epoch " + std::to_string(s->epoch)
                    : "no status: " + s.error();
      // The faults in force there (a request that sets nothing only reads them).
      Result<FaultReply> f = op.client().fault(cluster.client_endpoint_of(i), FaultRequest{},
                                               milliseconds(500));
      if (f.ok()) {
        std::string reach;
        for (const std::string& name : f->reach) reach += (reach.empty() ? "" : ",") + name;
        out += "; reaches " + reach + ", drops " + std::to_string(f->drop_rate);
      }
      out += "\n";
    }
    return out;
  };
  // One fault among the members (or a heal), after restarting the node the
  // last step crashed.
  const auto nemesis_step = [&] {
    restart_crashed();
    refresh();
    std::vector<int> members;
    for (const MemberEntry& m : config.members) {
      const int i = index_of(m.id);
      if (i >= 0 && i < cluster.size() && cluster.alive(i)) members.push_back(i);
    }
    if (members.empty()) return;
    const int target = members[rng() % members.size()];
    const int roll = static_cast<int>(rng() % 100);
    if (roll < 25) {
      ++st.partitions;
      std::map<int, int> side;
      for (int i : members) side[i] = static_cast<int>(rng() % 2);
      for (int i : members) {
        FaultRequest r{.set_reach = true, .reach_all = false};
        for (int j : members) {
          if (side[j] == side[i]) r.reach.push_back(cluster.name(j));
        }
        fault(i, r);
      }
    } else if (roll < 45) {
      ++st.pauses;
      cluster.signal(target, SIGSTOP);
      std::this_thread::sleep_for(milliseconds(300 + rng() % 1200));
      cluster.signal(target, SIGCONT);
    } else if (roll < 60 && config.is_voter(id_of(target))) {
      ++st.kills;
      cluster.kill(target);
      crashed = target;
    } else if (roll < 75) {
      ++st.drops;
      fault(target, FaultRequest{.set_drop = true, .drop_rate = 0.2});
    } else {
      heal();
    }
  };
  const auto between_changes = [&] {
    for (int k = 0; k < 2; ++k) {
      nemesis_step();
      std::this_thread::sleep_for(milliseconds(300 + rng() % 600));
    }
  };
  const auto is_member = [](const std::string& name) {
    return [name](const Config& c) {
      return std::any_of(c.members.begin(), c.members.end(),
                         [&](const MemberEntry& m) { return m.name == name; });
    };
  };
  int changes = 0;
  const auto add = [&](int i) {
    const std::string name = cluster.name(i);
    ASSERT_TRUE(op.change(MemberChange{.kind = MemberChangeKind::add_learner, .name = name,
                                       .peer_endpoint = "tcp://" + cluster.peer_endpoint_of(i),
                                       .client_endpoint = "tcp://" + cluster.client_endpoint_of(i),
                                       .peer_key = cluster.peer_key(i)},
                          is_member(name)))
        << "adding " << name << ": " << op.last_error << "\n" << views() << cluster.logs();
    ++changes;
    refresh();
    ASSERT_EQ(cluster.add_node(MemberOperator::cluster_flag(config)), i);
  };
  // Promotion waits (up to 30 s, healing halfway) until the learner serves:
  // kvctl's check, so the quorum does not grow by a vote that cannot come.
  const auto wait_serving = [&](int i) {
    for (int k = 0; k < 150; ++k) {
      if (k == 75) heal();
      if (op.client().status(cluster.client_endpoint_of(i), milliseconds(200)).ok()) return;
    }
    ADD_FAILURE() << cluster.name(i) << " never served\n" << cluster.logs();
  };
  const auto promote = [&](int i) {
    wait_serving(i);
    refresh();
    const NodeId id = id_of(i);
    ASSERT_TRUE(op.change(MemberChange{.kind = MemberChangeKind::promote, .target = id},
                          [id](const Config& c) { return c.is_voter(id); }))
        << "promoting " << cluster.name(i) << ": " << op.last_error << "\n" << views() << cluster.logs();
    ++changes;
  };
  const auto remove = [&](int i) {
    refresh();
    const NodeId id = id_of(i);
    ASSERT_TRUE(op.change(MemberChange{.kind = MemberChangeKind::remove, .target = id},
                          [id](const Config& c) { return !c.is_member(id); }))
        << "removing " << cluster.name(i) << ": " << op.last_error << "\n" << views() << cluster.logs();
    ++changes;
    removed.insert(i);
  };
  const auto replace = [&](int old_node, int new_node) {
    wait_serving(new_node);
    refresh();
    const NodeId gone = id_of(old_node);
    const NodeId in = id_of(new_node);
    ASSERT_TRUE(op.change(MemberChange{.kind = MemberChangeKind::replace, .target = gone, .other = in},
                          [gone, in](const Config& c) { return !c.is_member(gone) && c.is_voter(in); }))
        << "replacing " << cluster.name(old_node) << ": " << op.last_error << "\n" << views() << cluster.logs();
    ++changes;
    removed.insert(old_node);
  };
  const auto leader = [&]() -> int {
    for (int i = 0; i < cluster.size(); ++i) {
      if (removed.count(i) || !cluster.alive(i)) continue;
      Result<StatusReply> s = op.client().status(cluster.client_endpoint_of(i), milliseconds(500));
      if (s.ok() && config.is_voter(s->leader)) return index_of(s->leader);
    }
    return 0;
  };

  // The plan: 3 -> 5 voters, the leader out, an original voter replaced,
  // another removed, one more added: 4 voters, none of the first start.
  add(3);
  between_changes();
  promote(3);
  between_changes();
  add(4);
  between_changes();
  promote(4);
  between_changes();
  refresh();
  remove(leader());
  between_changes();
  add(5);
  between_changes();
  for (int i = 0; i < kFirst; ++i) {
    if (!removed.count(i)) {
      replace(i, 5);
      break;
    }
  }
  between_changes();
  for (int i = 0; i < kFirst; ++i) {
    if (!removed.count(i)) {
      remove(i);
      break;
    }
  }
  between_changes();
  add(6);
  between_changes();
  promote(6);
  between_changes();

  restart_crashed();
  heal();
  stop = true;
  for (std::thread& t : threads) t.join();
  refresh();

  // Every removed node learns it and exits with status 4 (once healed).
  for (int i : removed) {
    int status = -1;
    for (int k = 0; k < 300 && cluster.alive(i); ++k) std::this_thread::sleep_for(milliseconds(100));
    status = cluster.exit_status(i);
    EXPECT_EQ(status, 4) << cluster.name(i) << " was removed but "
                         << (cluster.alive(i) ? "still runs" : "exited otherwise") << "\n"
                         << cluster.logs();
  }

  std::vector<std::string> live;
  for (const MemberEntry& m : config.members) {
    live.push_back(cluster.client_endpoint_of(index_of(m.id)));
  }
  EXPECT_EQ(config.voter_count(), 4u);
  Client reader(ctx, ClientOptions{.endpoints = live, .curve = cluster.curve(), .deadline = seconds(30)});
  read_every_key(reader, keys, history, cluster);
  if (::testing::Test::HasFatalFailure()) return;
  expect_converged(reader, live, "the members");

  const std::vector<HistoryOp> ops = history.ops();
  const std::size_t ok_ops = ok_count(ops);
  std::cout << "membership nemesis: " << changes << " changes, " << ops.size() << " ops ("
            << ok_ops << " ok); " << st.partitions << " partitions, " << st.pauses << " pauses, "
            << st.kills << " crash-restarts, " << st.drops << " drop phases, " << st.heals
            << " heals\n";
  EXPECT_GT(ok_ops, 50u) << "the clients got almost nothing done";
  expect_linearizable(ops, "membership");
}

}  // namespace
}  // namespace kvpaxos
