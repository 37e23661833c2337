#include "sim/simulation.hpp"

#include <algorithm>
#include <compare>
#include <cstdio>
#include <cstdlib>
#include <functional>
#include <map>
#include <set>
#include <memory>
#include <optional>
#include <queue>
#include <random>
#include <sstream>
#include <unordered_map>

#include "actors/core/quorum.hpp"
#include "actors/kv/applier.hpp"
#include "actors/kv/config_state.hpp"
#include "actors/kv/front_door.hpp"
#include "actors/net/peer_link.hpp"
#include "actors/node/node_logic.hpp"
#include "actors/paxos/acceptor.hpp"
#include "actors/paxos/join.hpp"
#include "actors/paxos/learner.hpp"
#include "actors/paxos/proposer.hpp"
#include "actors/storage/record_log.hpp"
#include "messages/codec.hpp"
#include "messages/kv_op.hpp"
#include "test/history/linearizability.hpp"

namespace kvpaxos::sim {
namespace {

using std::chrono::microseconds;

constexpr Actor kTicking[] = {Actor::acceptor, Actor::proposer, Actor::learner, Actor::applier};

// Network conditions; the nemesis changes them while clients run.
struct Weather {
  double drop = 0.0;       // per peer message
  double duplicate = 0.0;  // per peer message that is not dropped
  std::int64_t min_delay_us = 100;
  std::int64_t max_delay_us = 2000;
};

// A node's disk: what its acceptor and learner persisted (MemoryLog loses
// the unsynced tail on a crash, sometimes mid-record) and its snapshot file
// (replaced whole, as write_file_atomically does).
struct SimDisk {
  MemoryLog acceptor;
  MemoryLog decided;
  std::optional<std::string> snapshot;
};

struct SimNode {
  std::unique_ptr<Acceptor> acceptor = std::make_unique<Acceptor>();
  std::unique_ptr<Proposer> proposer;
  std::unique_ptr<Learner> learner;
  std::unique_ptr<Applier> applier;
  std::unique_ptr<FrontDoor> front_door;
  std::unique_ptr<PeerLink> link;
  SimDisk disk;
  bool crashed = false;
  bool restarting = false;  // crashed, and will start again from its disk
  // Bumped by a crash, a restart and a rebuild: the old process's inproc
  // queues, timers and pending syncs die with it.
  std::uint64_t incarnation = 0;
  Time paused_until{};
  InstanceId next_apply = 0;  // what the learner must hand the applier next
  // Inproc pipes are FIFO: the time of the last delivery per (from, to) actor.
  std::map<std::pair<Actor, Actor>, Time> pipe_clock;
  // Per actor: when its last batch's sync completes; later output waits.
  std::map<Actor, Time> persist_clock;
  // Since its last restart: the highest round its acceptor had seen then.
  std::optional<std::uint64_t> restart_round_floor;
  // Membership (SimConfig::reconfig). A member added while the cluster runs
  // starts empty (joining: it asks for a snapshot first) from `contact`, the
  // configuration it was told at its start, as kvpaxosd
  // --initial-cluster-state existing learns it from the cluster; it has its
  // own random incarnation, which promotions name. A removed member stops
  // once it has applied its removal (kvpaxosd exits with a tombstone).
  bool joining = false;
  std::optional<ConfigHistory> contact;
  std::uint64_t member_incarnation = 0;
  bool removed = false;
  // Its name (kvpaxosd --name): "n<id+1>", or the name of a removed member
  // it replaces under a new id.
  std::string name;
  // The configurations its acceptor was last told of (ConfigUpdate).
  std::optional<ConfigHistory> acceptor_history;
};

// The simulated kvctl of the reconfiguration nemesis: one member op at a
// time, retried at the next node with the same seq until its deadline.
struct SimAdmin {
  ClientId id = 0;
  std::uint64_t seq = 0;
  std::uint64_t acked = 0;
  bool busy = false;
  ClientRequest request;
  NodeId target = 0;
  Time deadline{};
  std::uint64_t attempt = 0;
  // What to do once the change is applied: start the node added (or not).
  bool start_added = true;
  // A voter crashed for good, to be removed while it is down.
  std::optional<NodeId> dead;
  // Once this change is applied: crash the whole cluster while some node is
  // still inside its alpha window.
  bool restart_in_window = false;
  // This change removes a learner that never started.
  bool unstarted = false;
  // The scenario it works through (SimConfig::reconfig), step by step.
  enum class Plan { random, grow, shrink, same_name, disjoint };
  Plan plan = Plan::random;
  // same_name: the member removed (its data dir lost), whose name and peer
  // endpoint a new learner takes once the removal is applied.
  std::optional<MemberEntry> replaced;
  bool replaced_removed = false;
  int tries = 0;  // adds under that name asked
  // disjoint: the voters of the configuration the replacement started from.
  std::set<NodeId> disjoint_from;
};

// Acceptances of one ballot in one instance: the value its Accept carried
// and the acceptors that answered ok.
struct AcceptRecord {
  std::string value;
  std::set<NodeId> by;
};

struct SimClient {
  ClientId id = 0;
  std::uint64_t seq = 0;
  std::uint64_t acked = 0;
  bool busy = false;
  ClientRequest request;
  std::size_t history_index = 0;
  int target = 0;
  // Talks to one node only (kvctl with one endpoint): when that node is cut
  // off, its calls end with an unknown outcome, and may still take effect.
  bool sticky = false;
  std::int64_t attempt_timeout_us = 0;
  Time attempt_deadline{};
  Time call_deadline{};
  std::uint64_t attempt = 0;  // tells a stale timeout event from the live one
  int sends = 0;              // copies of this call's request sent
  int generation = 0;         // sessions this client started after its first
  // The value this client last saw at each key (read, written, deleted):
  // what its cases expect most of the time.
  std::map<std::string, std::string> seen;
};

// A watcher, as client/WatchStream behaves: one watch at one node at a
// time; it acknowledges every response but the creation, and on silence, a
// refusal or a cancel without compact_revision it creates the watch again at
// the next node, with a new watch_id, from the revision after the last it
// has seen everything up to. A compaction cancel makes it go on from
// compact_revision at the same node, as a user would after reading again.
struct SimWatcher {
  std::string key;  // the range watched, as WatchRequest has it
  std::string range_end;
  int target = 0;  // the node it watches at
  std::uint64_t watch_id = 0;  // the current watch's; older ones' responses are ignored
  std::uint64_t watch_start = 1;  // the revision the current watch was asked to start at
  // Every change in range up to this was delivered (WatchStream::revision()).
  std::uint64_t revision = 0;
  // What the current watch's stream has covered: its start - 1, then the
  // highest revision it sent an event at or claimed to have looked to.
  std::uint64_t stream_covered = 0;
  Time last_heard{};  // from the current watch (or when it was asked for)
  std::vector<WatchEvent> delivered;
  // Revisions [first, last] a node's compacted history excused.
  std::vector<std::pair<std::uint64_t, std::uint64_t>> excused;
  // Each connection is FIFO both ways: the time of its last delivery, by node.
  std::map<NodeId, Time> to_node_clock;
  std::map<NodeId, Time> from_node_clock;
};

// The watchers' timing: nodes send progress every kWatchProgress while a
// watch is idle, so kWatchSilence without a message means the node is gone.
constexpr auto kWatchProgress = std::chrono::milliseconds(50);
constexpr auto kWatchSilence = std::chrono::milliseconds(300);

std::string describe_event(const WatchEvent& e) {
  return std::string(e.type == EventType::put ? "PUT" : "DELETE") + " \"" + e.kv.key + "\"" +
         (e.type == EventType::put ? " = \"" + e.kv.value + "\"" : "") + " at revision " +
         std::to_string(e.kv.mod_revision) + " (create " + std::to_string(e.kv.create_revision) +
         ", version " + std::to_string(e.kv.version) + ")";
}

// ------------------------------------------------- the reference replay

// The data model of docs/protocol.md ("Data model", "Revisions"), written
// apart from KvStateMachine so that the two can be compared: the revision
// moves by one per put, append, key deleted and such write of a txn; a key's
// create_revision is that of the write that created it, mod_revision that of
// its last write, version its writes since it was created.
struct ReferenceStore {
  KvMap kv;
  std::uint64_t revision = 0;
  // Every change in order, as a watch of every key would see it: the one at
  // revision r is events[r - 1].
  std::vector<WatchEvent> events;

  void execute(const KvOp& op) {
    if (op.op != OpKind::txn) {
      run(op.op, op.key, op.value, op.range_end);
      return;
    }
    const bool held =
        std::all_of(op.compares.begin(), op.compares.end(), [this](const Compare& c) {
          return holds(c);
        });
    for (const RequestOp& o : held ? op.success : op.failure) {
      run(o.op, o.key, o.value, o.range_end);
    }
  }

 private:
  void run(OpKind op, const std::string& key, const std::string& value,
           const std::string& range_end) {
    if (op == OpKind::put || op == OpKind::append) write(key, value, op == OpKind::append);
    if (op == OpKind::delete_range) erase(key, range_end);
  }

  void write(const std::string& key, const std::string& value, bool append) {
    KeyEntry& e = kv[key];
    ++revision;
    if (e.version == 0) e.create_revision = revision;  // absent keys have none
    e.value = append ? e.value + value : value;
    e.mod_revision = revision;
    ++e.version;
    events.push_back({EventType::put, {key, e.value, e.create_revision, revision, e.version}});
  }

  // range_end: empty, the key alone; "\0", every key from it; else [key, range_end).
  static bool covers(const std::string& k, const std::string& key, const std::string& range_end) {
    if (range_end.empty()) return k == key;
    if (range_end == std::string(1, '\0')) return k >= key;
    return k >= key && k < range_end;
  }

  void erase(const std::string& key, const std::string& range_end) {
    std::vector<std::string> doomed;
    for (const auto& [k, e] : kv) {
      if (covers(k, key, range_end)) doomed.push_back(k);
    }
    for (const std::string& k : doomed) {
      ++revision;
      kv.erase(k);
      events.push_back({EventType::del, {k, {}, 0, revision, 0}});
    }
  }

  // An absent key compares as value "", version 0, create and mod 0.
  bool holds(const Compare& c) const {
    const auto it = kv.find(c.key);
    const KeyEntry e = it == kv.end() ? KeyEntry{} : it->second;
    std::uint64_t number = e.version;
    if (c.target == CompareTarget::create_revision) number = e.create_revision;
    if (c.target == CompareTarget::mod_revision) number = e.mod_revision;
    const std::strong_ordering order = c.target == CompareTarget::value
                                           ? e.value.compare(c.value) <=> 0
                                           : number <=> c.number;
    switch (c.op) {
      case CompareOp::equal: return order == 0;
      case CompareOp::not_equal: return order != 0;
      case CompareOp::less: return order < 0;
      case CompareOp::greater: return order > 0;
    }
    return false;
  }
};

std::string describe_entry(const KvMap& kv, const std::string& key) {
  const auto it = kv.find(key);
  if (it == kv.end()) return "no such key";
  const KeyEntry& e = it->second;
  return "\"" + e.value + "\" (create " + std::to_string(e.create_revision) + ", mod " +
         std::to_string(e.mod_revision) + ", version " + std::to_string(e.version) + ")";
}

// The first key (in order) whose entry differs between the two maps.
std::string first_difference(const KvMap& node, const KvMap& expected) {
  std::set<std::string> keys;
  for (const auto& [k, e] : node) keys.insert(k);
  for (const auto& [k, e] : expected) keys.insert(k);
  for (const std::string& k : keys) {
    const auto a = node.find(k);
    const auto b = expected.find(k);
    if (a == node.end() || b == expected.end() || a->second != b->second) {
      return "key \"" + k + "\": it holds " + describe_entry(node, k) + ", the log gives " +
             describe_entry(expected, k);
    }
  }
  return "the same keys";
}

// The exactly-once rule as KvStateMachine applies it (actors/kv), written
// apart: which op of a decided entry runs, by session, with the least
// recently used sessions evicted past max_sessions after each instance.
struct ReplaySessions {
  std::unordered_map<ClientId, std::pair<std::uint64_t, std::size_t>> sessions;  // seq, instance
  std::set<std::pair<std::size_t, ClientId>> by_age;

  bool admit(const KvOp& k, std::size_t instance) {
    if (k.noop) return false;
    auto s = sessions.find(k.client_id);
    if (s == sessions.end() && k.seq > 1) return false;
    if (s == sessions.end()) s = sessions.emplace(k.client_id, std::pair{0, instance}).first;
    if (k.seq <= s->second.first) return false;
    if (k.ack > s->second.first) return false;  // acknowledges a reply of an evicted session
    by_age.erase({s->second.second, k.client_id});
    by_age.insert({instance, k.client_id});
    s->second = {k.seq, instance};
    return true;
  }
  void end_instance(std::size_t instance, std::size_t max_sessions) {
    while (sessions.size() > max_sessions && !by_age.empty() && by_age.begin()->first < instance) {
      sessions.erase(by_age.begin()->second);
      by_age.erase(by_age.begin());
    }
  }
};

class Simulation {
 public:
  explicit Simulation(const SimConfig& config);
  SimResult run();

 private:
  // ---- the event loop
  void at(Time t, std::function<void()> fn) { events_.push({t, next_order_++, std::move(fn)}); }
  Time now() const { return now_; }
  std::int64_t ms_since_start() const {
    return std::chrono::duration_cast<std::chrono::milliseconds>(now_ - start_).count();
  }
  void violation(const std::string& what);
  void trace(std::uint64_t a, std::uint64_t b = 0);

  // ---- nodes and messages
  void build();
  NodeSpec spec(NodeId node);
  // Builds the node's logic from its disk with kvpaxosd's factory.
  void make_actors(NodeId node);
  void schedule_ticks(NodeId node);
  MemoryLog* disk_log(NodeId node, Actor actor);
  // What the runner does after a batch: check the logic's invariants,
  // persist its Writes (the sync takes disk time) and only then send.
  void commit(NodeId node, Actor actor, Outbox& out);
  void release_synced(NodeId node, Actor actor, std::uint64_t incarnation, Outbox held);
  void save_snapshot(NodeId node, InstanceId applied_below, std::string bytes);
  ActorLogic* logic(NodeId node, Actor actor);
  void deliver(Address to, Address from, Body body);
  void route(NodeId node, Actor from, Outbox& out);
  static const char* refused_correct_input(const SimNode& n);
  void send_local(NodeId node, Actor from, Outbound o);
  void check_restart_ballots(NodeId node, const Outbox& out);
  void send_peer(PeerFrame frame);
  void arrive_peer(PeerFrame frame);
  void tick(NodeId node, Actor actor, std::uint64_t incarnation);
  void flush(NodeId node, Actor actor);
  void tick_link(NodeId node, std::uint64_t incarnation);
  // Ids the configuration handed out whose node never started have no slot
  // (or a placeholder, crashed): nothing reaches them.
  bool runnable(NodeId node) const { return node < nodes_.size() && !nodes_[node].crashed; }
  bool paused(NodeId node) const { return now_ < nodes_[node].paused_until; }
  bool connected(NodeId a, NodeId b) const {
    if (a >= side_.size() || b >= side_.size()) return false;
    if (config_.partial_partition && active_ && ((a == 0 && b == 1) || (a == 1 && b == 0))) {
      return false;
    }
    return side_[a] == side_[b];
  }

  // ---- safety checks on the fly
  void observe_decided(InstanceId instance, const std::string& value, const char* where);
  void observe_apply(NodeId node, const Apply& a);

  // ---- membership (SimConfig::reconfig)
  // The nodes clients, watchers and the nemesis may pick: started, not removed.
  std::vector<NodeId> live_members() const;
  NodeId next_node_after(NodeId node) const;
  NodeId pick_member();
  // The decided log's configurations, replayed as instances are first applied.
  void reference_apply(InstanceId instance, const std::string& value);
  const Config& reference_at(InstanceId instance) const;
  InstanceId reference_known_below() const { return applied_log_.size() + ref_config_->alpha(); }
  // What the proposers and acceptors sent, against the reference voters.
  void observe_paxos(NodeId node, Actor from, const Outbox& out);
  void check_silence_to_removed(NodeId node, const Outbox& out);
  void evaluate_choice(InstanceId instance, const Ballot& ballot);
  void check_config_update(NodeId node, const ConfigUpdate& u);
  void retire_removed();
  void admin_step();
  std::optional<MemberChange> planned_change(const Config& c);
  std::optional<MemberChange> random_change(const Config& c);
  std::optional<MemberChange> remove_unstarted(const Config& c);
  MemberChange promote_change(const Config& c, NodeId learner);
  std::optional<MemberChange> grow_step(const Config& c);
  std::optional<MemberChange> shrink_step(const Config& c);
  std::optional<MemberChange> same_name_step(const Config& c);
  std::optional<MemberChange> disjoint_step(const Config& c);
  MemberChange add_change(const Config& c, const std::string& name);
  std::optional<MemberChange> remove_change(const Config& c, NodeId target, bool may_kill);
  std::optional<MemberChange> replace_change(const Config& c, NodeId target, NodeId learner);
  std::vector<NodeId> ready_learners(const Config& c) const;
  bool others_caught_up(const Config& c, NodeId leaving) const;
  bool survives_without(NodeId target) const;
  void restart_in_window(const MemberResult& m);
  void check_phase1(NodeId node, InstanceId instance, const Ballot& ballot);
  void admin_send();
  void admin_timeout(std::uint64_t attempt);
  void admin_reply(const ClientReply& r);
  void admin_change(MemberChange change);
  void start_member(NodeId id, const std::string& name);
  bool caught_up(NodeId id) const;
  std::size_t live_voters(const Config& c) const;

  // ---- clients
  void client_next(int c);
  void make_cas(SimClient& cl, HistoryOp& h);
  void client_send(int c);
  void client_timeout(int c, std::uint64_t attempt);
  void client_reply(int c, const ClientReply& r);
  bool record_reply(SimClient& cl, const ClientReply& r);
  void client_session_expired(int c);
  std::size_t max_sessions() const;  // each applier's, as configured for this seed
  void to_client(NodeId node, const ToClient& m);

  // ---- watchers
  void start_watchers();
  void watcher_open(int w);
  void watcher_send(int w, const WatchRequest& request);
  void watcher_check(int w);
  void watcher_fail_over(int w);
  void to_watcher(NodeId node, const ToClient& m);
  void watcher_receive(int w, NodeId node, WatchResponse r);
  void watcher_compacted(SimWatcher& sw, NodeId node, const WatchResponse& r);
  bool watcher_stream_ok(SimWatcher& sw, NodeId node, const WatchResponse& r);
  bool watchers_caught_up() const;
  bool check_watchers(const ReferenceStore& expected);

  // ---- nemesis
  void nemesis_step();
  void heal();
  void mute_leader();
  void lose_muted_leader();
  void lose_for_good(NodeId i);
  InstanceId decided_without(NodeId target) const;
  void amnesia_step();
  bool rebuild(NodeId node);
  void rebuild_step();
  // The process stops (its unsynced writes go, maybe mid-record) and starts
  // again from its disk after `down`.
  void crash(NodeId node);
  void crash_restart(NodeId node, Duration down);
  // kvpaxosd on SIGTERM: the node steps down (StepDown from its control),
  // runs on for `grace`, then stops and restarts after `down`.
  void graceful_restart(NodeId node, Duration grace, Duration down);
  void restart(NodeId node);
  void cluster_restart();
  void crash_restart_step();

  // ---- the end
  // What a client was told of an acknowledged op besides its output.
  struct AckedRevision {
    std::uint64_t revision = 0;
    bool wrote = false;  // it changed the store (a put, an append, a delete that found the key,
                         // a cas that succeeded)
  };
  struct Replay {
    ReferenceStore store;
    // Per (client, seq) that ran: the store's revision after each run.
    std::map<std::pair<ClientId, std::uint64_t>, std::vector<std::uint64_t>> runs;
  };
  bool settled() const;
  void final_checks();
  std::optional<Replay> replay_log();
  bool check_node_states(const ReferenceStore& expected);
  bool check_exactly_once(const std::vector<HistoryOp>& history, const Replay& replay);
  bool check_reply_revisions(const std::vector<HistoryOp>& all, const Replay& replay);

  SimConfig config_;
  std::mt19937_64 rng_;
  struct Event {
    Time t;
    std::uint64_t order;
    std::function<void()> fn;
    bool operator>(const Event& o) const { return std::tie(t, order) > std::tie(o.t, o.order); }
  };
  std::priority_queue<Event, std::vector<Event>, std::greater<>> events_;
  std::uint64_t next_order_ = 0;
  std::uint64_t next_session_id_ = 0;  // for clients starting a new session
  // History indices answered session_expired; each is its client id's last op.
  std::set<std::size_t> expired_ops_;
  std::map<std::size_t, AckedRevision> acked_revisions_;  // by history index
  const Time start_ = Time{} + std::chrono::hours(1);
  Time now_ = start_;
  bool active_ = true;  // clients start new ops, nemesis acts

  std::vector<SimNode> nodes_;
  std::vector<int> side_;  // partition: nodes talk only within their side
  Weather weather_;
  std::vector<SimClient> clients_;
  std::vector<SimWatcher> watchers_;
  HistoryRecorder history_;

  std::map<InstanceId, std::string> chosen_;
  std::vector<std::string> applied_log_;  // chosen_ in order, as applied by anyone
  SimResult result_;

  // Membership: the reference replay of the configuration (the same
  // ConfigState the appliers run, fed the decided log in order through the
  // exactly-once rule), every configuration with the instance it governs
  // from, the ids handed out, and where each removed member's removal
  // governs from.
  std::optional<ConfigState> ref_config_;
  ReplaySessions ref_sessions_;
  std::vector<ConfigAt> ref_history_;
  std::set<NodeId> ids_seen_;
  std::map<NodeId, InstanceId> removed_from_;
  std::map<std::pair<InstanceId, Ballot>, AcceptRecord> accepts_;
  // Phase 1 as the acceptors answered it: ok Promises by (instance, ballot),
  // and ok PromiseFroms by ballot (acceptor -> the range's first instance).
  std::map<std::pair<InstanceId, Ballot>, std::set<NodeId>> promises_;
  std::map<Ballot, std::map<NodeId, InstanceId>> range_promises_;
  std::map<InstanceId, std::string> chosen_by_voters_;
  std::set<std::pair<InstanceId, Ballot>> awaiting_config_;
  SimAdmin admin_;
  // The last-words scenario's leader: its Decided frames are dropped.
  std::optional<NodeId> muted_;
  std::set<NodeId> starting_;  // added learners whose first start is scheduled
};

// The scenarios of the reconfiguration nemesis that shape a whole run: a
// seed in four (and every one of nodes = 1) starts as a single node and
// grows; another in four (every seed with reconfig_disjoint) replaces every
// voter it started with.
Simulation::Simulation(const SimConfig& config) : config_(config), rng_(config.seed) {
  if (!config_.reconfig) return;
  if (config_.nodes == 1 || config_.seed % 4 == 1) {
    config_.nodes = 1;
    admin_.plan = SimAdmin::Plan::grow;
  } else if (config_.reconfig_disjoint || config_.seed % 4 == 3) {
    admin_.plan = SimAdmin::Plan::disjoint;
  }
  result_.stats.started_nodes = static_cast<std::uint64_t>(config_.nodes);
}

void Simulation::violation(const std::string& what) {
  if (!result_.ok) return;
  result_.ok = false;
  result_.violation = "at " + std::to_string(ms_since_start()) + " ms: " + what;
}

void Simulation::trace(std::uint64_t a, std::uint64_t b) {
  // FNV-1a over the event stream: equal seeds must give equal hashes.
  for (std::uint64_t v : {a, b, static_cast<std::uint64_t>((now_ - start_).count())}) {
    result_.trace_hash ^= v;
    result_.trace_hash *= 1099511628211ULL;
  }
}

NodeSpec Simulation::spec(NodeId i) {
  const auto n = static_cast<std::size_t>(config_.nodes);
  NodeSpec spec{.self = i,
                .kv = true,
                .seed = config_.seed,
                .incarnation = nodes_[i].incarnation,
                .proposer = {.multi_paxos = config_.multi_paxos},
                .learner = {.forget_with_majority = true}};
  for (std::size_t j = 0; j < n; ++j) {
    spec.names.push_back("n" + std::to_string(j + 1));
    spec.peer_endpoints.push_back("inproc://sim/peer/n" + std::to_string(j + 1));
  }
  // Membership: a member added later starts from what the cluster told it.
  // Only while its data dir holds no snapshot yet: restarted after one, it
  // recovers from it as any member does.
  spec.joining = nodes_[i].joining && !nodes_[i].disk.snapshot;
  spec.name = nodes_[i].name.empty() ? "n" + std::to_string(i + 1) : nodes_[i].name;
  if (spec.joining) spec.contact = nodes_[i].contact;
  spec.member_incarnation = nodes_[i].member_incarnation;
  spec.applier.bug_no_window = config_.bug == PlantedBug::no_window;
  if (config_.bug == PlantedBug::no_accepted_probe) spec.applier.accepted_probe = std::chrono::hours(1000);
  spec.applier.bug_reused_id = config_.bug == PlantedBug::reused_id;
  spec.proposer.bug_count_non_voters = config_.bug == PlantedBug::count_non_voters;
  spec.proposer.bug_stale_range_quorum = config_.bug == PlantedBug::stale_range_quorum;
  // Every third seed forgets as soon as a majority is done (no values kept for
  // lagging nodes), so that lagging nodes take the snapshot path often: with
  // the default margin they mostly catch up from the log.
  if (config_.seed % 3 == 0 && !config_.partial_partition) spec.learner.keep_for_laggards = 0;
  ApplierOptions& applier = spec.applier;
  if (config_.seed % 2 == 1) {
    // Batches of 1-3 ops and 2-3 instances in flight: with the default 1024
    // ops a batch is never full here, and no second instance would go out.
    applier.max_in_flight = 2 + config_.seed / 2 % 2;
    applier.max_batch_ops = 1 + config_.seed / 4 % 3;
  }
  applier.max_sessions = max_sessions();
  applier.bug_execute_expired = config_.bug == PlantedBug::execute_expired_sessions;
  applier.bug_delete_keeps_revision = config_.bug == PlantedBug::delete_keeps_revision;
  // Snapshots to the simulated disk every 32 to 128 instances, as kvpaxosd
  // writes them under --data-dir (every 10,000 there).
  applier.snapshot_every = 32 + config_.seed % 4 * 32;
  applier.save_snapshot = [this, i](InstanceId below, std::string bytes) {
    save_snapshot(i, below, std::move(bytes));
  };
  applier.data_dir_bytes = [this, i] {
    const SimDisk& d = nodes_[i].disk;
    return d.acceptor.bytes_on_disk() + d.decided.bytes_on_disk() +
           (d.snapshot ? d.snapshot->size() : 0);
  };
  // Watches: progress often enough for the watchers' silence timeout, silent
  // (abandoned) watches dropped within a second, and a history of 50-500
  // events, small windows and responses, so that compaction cancels, full
  // windows and split responses happen.
  WatchLimits& watch = applier.watch;
  watch.progress_interval = kWatchProgress;
  watch.client_timeout = std::chrono::seconds(1);
  watch.history_events = 50 + config_.seed * 7919 % 451;
  watch.window_bytes = std::size_t{1024} << (config_.seed % 4);
  watch.max_response_bytes = std::size_t{256} << (config_.seed / 4 % 3);
  watch.bug_skip_event_on_resume = config_.bug == PlantedBug::watch_skips_event_on_resume;
  spec.planted_bug_no_restart_round = config_.bug == PlantedBug::restart_without_ballot_rule;
  return spec;
}

void Simulation::make_actors(NodeId i) {
  SimNode& node = nodes_[i];
  StoredState stored{.durable = true};
  Result<MemoryLog::Read> acceptor = node.disk.acceptor.open();
  Result<MemoryLog::Read> decided = node.disk.decided.open();
  if (!acceptor.ok() || !decided.ok()) {
    violation("n" + std::to_string(i + 1) + "'s disk does not read back: " +
              (acceptor.ok() ? decided.error() : acceptor.error()));
  } else {
    if (acceptor->torn_bytes + decided->torn_bytes > 0) ++result_.stats.torn_tails;
    stored.acceptor_records = std::move(acceptor->records);
    stored.decided_records = std::move(decided->records);
    stored.snapshot = node.disk.snapshot;
  }
  // A removed member restarts like any other until it was told (then
  // retire_removed stopped it for good, as its tombstone does kvpaxosd).
  Result<NodeLogic> built = build_node_logic(spec(i), stored);
  if (!built.ok()) {
    violation("n" + std::to_string(i + 1) + " does not restart from its disk: " + built.error());
    built = build_node_logic(spec(i), StoredState{.durable = true});
    if (!built.ok()) {
      node.crashed = true;
      return;
    }
  }
  if (!built->decided_log_error.empty()) node.disk.decided = MemoryLog{};
  node.acceptor = std::move(built->acceptor);
  node.proposer = std::move(built->proposer);
  node.learner = std::move(built->learner);
  node.applier = std::move(built->applier);
  node.front_door = std::make_unique<FrontDoor>(i, false);
  node.link = std::make_unique<PeerLink>(i, built->config, built->link_seed);
  node.acceptor_history = built->config;
  node.next_apply = node.applier->applied_below();
  node.pipe_clock.clear();
  node.persist_clock.clear();
}

void Simulation::schedule_ticks(NodeId i) {
  const std::uint64_t incarnation = nodes_[i].incarnation;
  for (Actor a : kTicking) {
    const auto first = microseconds(std::uniform_int_distribution<int>(0, 10000)(rng_));
    at(now_ + first, [this, i, a, incarnation] { tick(i, a, incarnation); });
  }
  at(now_ + microseconds(i * 997), [this, i, incarnation] { tick_link(i, incarnation); });
}

void Simulation::build() {
  const auto n = static_cast<std::size_t>(config_.nodes);
  nodes_.resize(n);
  side_.assign(n, 0);
  ref_config_.emplace(bootstrap_members(spec(0).names, spec(0).peer_endpoints), spec(0).alpha);
  // The reference runs the appliers' ConfigState, planted bug included: the
  // check that no id is handed out twice must catch reused_id by itself,
  // not by the nodes disagreeing with a correct reference.
  ref_config_->set_bug_reused_id(config_.bug == PlantedBug::reused_id);
  ref_history_ = {ConfigAt{0, ref_config_->latest()}};
  for (NodeId i = 0; i < n; ++i) ids_seen_.insert(i);
  if (admin_.plan == SimAdmin::Plan::disjoint) {
    for (NodeId i = 0; i < n; ++i) admin_.disjoint_from.insert(i);
  }
  result_.stats.max_voters = n;
  admin_.id = config_.seed * 1000 + 999;
  for (NodeId i = 0; i < n; ++i) {
    make_actors(i);
    schedule_ticks(i);
  }
}

MemoryLog* Simulation::disk_log(NodeId node, Actor actor) {
  if (actor == Actor::acceptor && nodes_[node].acceptor->durable()) return &nodes_[node].disk.acceptor;
  if (actor == Actor::learner) return &nodes_[node].disk.decided;
  return nullptr;
}

void Simulation::commit(NodeId node, Actor actor, Outbox& out) {
  SimNode& n = nodes_[node];
  ActorLogic* l = logic(node, actor);
  if (l == nullptr) {
    route(node, actor, out);
    return;
  }
  if (std::string bad = l->check_invariants(); !bad.empty()) {
    violation("n" + std::to_string(node + 1) + " " + bad);
  }
  Writes writes = l->take_writes();
  MemoryLog* log = disk_log(node, actor);
  Time& ready = n.persist_clock[actor];
  Time release = std::max(ready, now_);
  if (log != nullptr && !writes.empty()) {
    if (writes.replace) {
      (void)log->rewrite(writes.records);
    } else {
      for (const std::string& r : writes.records) log->append(r);
    }
    release += microseconds(std::uniform_int_distribution<int>(20, 400)(rng_));  // the fsync
  }
  ready = release;
  // Output without writes of its own still waits for an earlier sync (one
  // due now has not run yet when its log still holds unsynced bytes).
  if (release == now_ && (log == nullptr || !log->has_unsynced())) {
    route(node, actor, out);
    return;
  }
  const std::uint64_t incarnation = n.incarnation;
  if (config_.bug == PlantedBug::reply_before_sync) {
    route(node, actor, out);  // the planted bug: the replies leave before the sync
    at(release, [this, node, actor, incarnation] {
      if (nodes_[node].incarnation != incarnation) return;
      if (MemoryLog* m = disk_log(node, actor)) (void)m->sync(true);
    });
    return;
  }
  Outbox held = std::move(out);
  out.clear();
  at(release, [this, node, actor, incarnation, held = std::move(held)]() mutable {
    release_synced(node, actor, incarnation, std::move(held));
  });
}

void Simulation::release_synced(NodeId node, Actor actor, std::uint64_t incarnation, Outbox held) {
  // A process that died before its sync completed never sent the batch.
  if (nodes_[node].incarnation != incarnation) return;
  if (paused(node)) {  // a stopped process finishes its fsync when it runs again
    at(nodes_[node].paused_until + microseconds(1),
       [this, node, actor, incarnation, h = std::move(held)]() mutable {
         release_synced(node, actor, incarnation, std::move(h));
       });
    return;
  }
  if (MemoryLog* m = disk_log(node, actor)) (void)m->sync(true);
  route(node, actor, held);
}

void Simulation::save_snapshot(NodeId i, InstanceId applied_below, std::string bytes) {
  // The snapshot writer's thread: the file is written and synced a while
  // later, then the applier hears SnapshotSaved. A crash before that keeps
  // the previous file.
  const std::uint64_t incarnation = nodes_[i].incarnation;
  const auto took = std::chrono::milliseconds(std::uniform_int_distribution<int>(1, 30)(rng_));
  at(now_ + took, [this, i, incarnation, applied_below, b = std::move(bytes)]() mutable {
    SimNode& n = nodes_[i];
    if (n.incarnation != incarnation || n.crashed) return;
    n.disk.snapshot = std::move(b);
    ++result_.stats.snapshots_saved;
    deliver({i, Actor::applier}, {i, Actor::applier}, SnapshotSaved{applied_below, {}});
  });
}

ActorLogic* Simulation::logic(NodeId node, Actor actor) {
  SimNode& n = nodes_[node];
  switch (actor) {
    case Actor::acceptor: return n.acceptor.get();
    case Actor::proposer: return n.proposer.get();
    case Actor::learner: return n.learner.get();
    case Actor::applier: return n.applier.get();
    default: return nullptr;
  }
}

void Simulation::deliver(Address to, Address from, Body body) {
  if (!runnable(to.node)) return;
  if (paused(to.node)) {
    // A stopped process does not read its sockets; the message waits, and
    // dies with the process if it is rebuilt the moment its pause ends.
    at(nodes_[to.node].paused_until + microseconds(1),
       [this, to, from, b = std::move(body), incarnation = nodes_[to.node].incarnation]() mutable {
         if (nodes_[to.node].incarnation == incarnation) deliver(to, from, std::move(b));
       });
    return;
  }
  ++result_.stats.events;
  trace(static_cast<std::uint64_t>(to.node) << 8 | static_cast<std::uint64_t>(to.actor),
        body.index());
  const bool applies = std::holds_alternative<Apply>(body);
  if (const auto* u = std::get_if<ConfigUpdate>(&body); u && to.actor == Actor::acceptor) {
    nodes_[to.node].acceptor_history = u->history;
  }
  Outbox out;
  if (to.actor == Actor::peer_link) {
    nodes_[to.node].link->handle(from, std::move(body), now_, out);
  } else if (ActorLogic* l = logic(to.node, to.actor)) {
    if (to.actor == Actor::applier) {
      if (auto* a = std::get_if<Apply>(&body)) observe_apply(to.node, *a);
    }
    if (auto* d = std::get_if<Decided>(&body)) observe_decided(d->instance, d->value, "Decided");
    if (auto* i = std::get_if<SnapshotInstalled>(&body); i && to.actor == Actor::learner) {
      // The applier jumped to a peer's snapshot; it applies from there on.
      nodes_[to.node].next_apply = std::max(nodes_[to.node].next_apply, i->instance);
      ++result_.stats.snapshots_installed;
    }
    l->handle(from, std::move(body), now_, out);
    if (to.actor == Actor::acceptor) check_silence_to_removed(to.node, out);
    // A runner flushes once its inbox is empty: often at once, sometimes
    // after a burst, so that held-back messages (the applier's forwards)
    // get merged, and can meet a change of leader, here too.
    if (std::uniform_int_distribution<int>(0, 1)(rng_) == 0) {
      l->flush(now_, out);
    } else {
      const auto later = microseconds(std::uniform_int_distribution<int>(5, 500)(rng_));
      at(now_ + later, [this, node = to.node, actor = to.actor] { flush(node, actor); });
    }
  }
  if (to.actor == Actor::peer_link) {
    route(to.node, to.actor, out);
  } else {
    commit(to.node, to.actor, out);
  }
  if (to.actor == Actor::applier && config_.reconfig && applies) {
    retire_removed();
    if (!runnable(to.node)) return;
  }
  if (nodes_[to.node].learner->conflicts() != 0) {
    violation("learner of n" + std::to_string(to.node + 1) + " saw two values for one instance");
  }
  if (const char* what = refused_correct_input(nodes_[to.node])) {
    violation("n" + std::to_string(to.node + 1) + " refused a correct peer's input: " + what);
  }
}

// The checks on peer input refuse only what no correct node sends; every
// node here is correct. (Late or duplicated snapshot chunks, a Decided far
// ahead of a lagging node and duplicated catch-up requests do come from
// correct peers, and are not listed.)
const char* Simulation::refused_correct_input(const SimNode& n) {
  if (n.acceptor->refused().total() != 0) return "acceptor";
  if (n.proposer->refused().total() != 0) return "proposer";
  if (n.learner->refused().local_only_from_peer != 0) return "learner";
  const ApplierRefusals& a = n.applier->refused();
  if (a.local_only_from_peer + a.chunk_malformed + a.chunk_changed + a.snapshot_rejected != 0) {
    return "applier";
  }
  return nullptr;
}

void Simulation::route(NodeId node, Actor from, Outbox& out) {
  // Synced before sent: an acceptor's answer promises what its disk holds.
  if (from == Actor::acceptor && !out.empty() && nodes_[node].acceptor->durable() &&
      nodes_[node].disk.acceptor.has_unsynced()) {
    violation("n" + std::to_string(node + 1) + "'s acceptor answered before its records were "
              "synced");
  }
  if (from == Actor::proposer) check_restart_ballots(node, out);
  observe_paxos(node, from, out);
  for (Outbound& o : out) {
    if (o.to.node == node) {
      send_local(node, from, std::move(o));
      continue;
    }
    if (auto* d = std::get_if<Decided>(&o.body)) observe_decided(d->instance, d->value, "Decided");
    const FrameHeader h{o.to, {node, from}, 0, 0};
    if (auto f = nodes_[node].link->outbound(PeerFrame{h, encode(o.body)}, now_)) {
      send_peer(std::move(*f));
    }
  }
  out.clear();
}

// The restart ballot rule: a restarted proposer's own ballots are above
// every round its durable acceptor had seen when it started (so it never
// reuses a ballot of its earlier self: a late Accept at it could meet a new
// value at the same ballot).
void Simulation::check_restart_ballots(NodeId node, const Outbox& out) {
  const std::optional<std::uint64_t> floor = nodes_[node].restart_round_floor;
  if (!floor) return;
  for (const Outbound& o : out) {
    const Ballot* b = nullptr;
    if (const auto* p = std::get_if<Prepare>(&o.body)) b = &p->ballot;
    if (const auto* p = std::get_if<PrepareFrom>(&o.body)) b = &p->ballot;
    if (const auto* a = std::get_if<Accept>(&o.body)) b = &a->ballot;
    if (b != nullptr && b->node == node && b->round <= *floor) {
      violation("n" + std::to_string(node + 1) + "'s restarted proposer used round " +
                std::to_string(b->round) + ", not above the " + std::to_string(*floor) +
                " its acceptor had seen");
      return;
    }
  }
}

void Simulation::send_local(NodeId node, Actor from, Outbound o) {
  if (o.to.actor == Actor::front_door) {
    if (auto* m = std::get_if<ToClient>(&o.body)) to_client(node, *m);
    return;
  }
  if (o.to.actor == Actor::control) return;
  if (const auto* u = std::get_if<ConfigUpdate>(&o.body); u && from == Actor::applier) {
    check_config_update(node, *u);
  }
  // inproc: a short hop, first in first out per pipe.
  Time& last = nodes_[node].pipe_clock[{from, o.to.actor}];
  const auto hop = microseconds(std::uniform_int_distribution<int>(5, 200)(rng_));
  last = std::max(last, now_ + hop);
  at(last, [this, node, from, to = o.to, b = std::move(o.body),
            incarnation = nodes_[node].incarnation]() mutable {
    // A rebuilt node is a new process: its old inproc queues died with it.
    if (nodes_[node].incarnation != incarnation) return;
    deliver(to, {node, from}, std::move(b));
  });
}

namespace {
bool carries_decided(const PeerFrame& frame) {
  Result<Body> body = decode(frame.body);
  return body.ok() && std::holds_alternative<Decided>(body.value());
}
}  // namespace

void Simulation::send_peer(PeerFrame frame) {
  ++result_.stats.messages;
  const NodeId a = frame.header.from.node;
  const NodeId b = frame.header.to.node;
  if (b >= nodes_.size() || (muted_ == a && carries_decided(frame))) {
    ++result_.stats.dropped;  // a member that never started, or a muted Decided
    return;
  }
  std::uniform_real_distribution<double> coin(0.0, 1.0);
  if (!connected(a, b) || coin(rng_) < weather_.drop) {
    ++result_.stats.dropped;
    return;
  }
  const int copies = coin(rng_) < weather_.duplicate ? 2 : 1;
  if (copies == 2) ++result_.stats.duplicated;
  for (int i = 0; i < copies; ++i) {
    const auto delay = microseconds(std::uniform_int_distribution<std::int64_t>(
        weather_.min_delay_us, weather_.max_delay_us)(rng_));
    at(now_ + delay, [this, frame] { arrive_peer(frame); });
  }
}

void Simulation::arrive_peer(PeerFrame frame) {
  const NodeId to = frame.header.to.node;
  if (!runnable(to)) return;
  if (paused(to)) {
    at(nodes_[to].paused_until + microseconds(1), [this, frame] { arrive_peer(frame); });
    return;
  }
  // A partition that starts while a message is in flight cuts it too.
  if (!connected(frame.header.from.node, to)) {
    ++result_.stats.dropped;
    return;
  }
  Outbox out;
  const NodeId sender = frame.header.from.node;
  auto passed = nodes_[to].link->inbound(std::move(frame), now_, out);
  route(to, Actor::peer_link, out);
  // Answers on the sender's connection (a Removed notice), at once: the
  // simulator retires removed members itself (retire_removed).
  for (const PeerFrame& a : nodes_[to].link->take_answers()) {
    if (runnable(sender)) nodes_[sender].link->answered(a, to);
  }
  if (!passed) return;
  Result<Body> body = decode(passed->body);
  if (!body.ok()) {
    violation("a peer frame did not decode: " + body.error());
    return;
  }
  deliver(passed->header.to, passed->header.from, std::move(body.value()));
}

void Simulation::flush(NodeId node, Actor actor) {
  if (!runnable(node) || paused(node)) return;  // a paused node flushes when it delivers again
  ActorLogic* l = logic(node, actor);
  if (l == nullptr) return;
  Outbox out;
  l->flush(now_, out);
  commit(node, actor, out);
}

void Simulation::tick(NodeId node, Actor actor, std::uint64_t incarnation) {
  if (!runnable(node) || nodes_[node].incarnation != incarnation) return;  // that process is gone
  ActorLogic* l = logic(node, actor);
  if (!paused(node)) {
    ++result_.stats.events;
    trace(0xff00 | static_cast<std::uint64_t>(actor), node);
    Outbox out;
    l->tick(now_, out);
    l->flush(now_, out);
    commit(node, actor, out);
  }
  at(now_ + l->tick_interval(),
     [this, node, actor, incarnation] { tick(node, actor, incarnation); });
}

void Simulation::tick_link(NodeId node, std::uint64_t incarnation) {
  if (!runnable(node) || nodes_[node].incarnation != incarnation) return;
  if (!paused(node)) {
    for (PeerFrame& f : nodes_[node].link->tick(now_)) send_peer(std::move(f));
  }
  at(now_ + std::chrono::milliseconds(10),
     [this, node, incarnation] { tick_link(node, incarnation); });
}

void Simulation::observe_decided(InstanceId instance, const std::string& value, const char* where) {
  // Every decision went through Accepted from a majority of its instance's
  // voters (the configuration is known here: a proposer runs only instances
  // whose configuration its applier knows, and the log is at least there).
  if (instance < reference_known_below() && !chosen_by_voters_.contains(instance)) {
    violation(std::string(where) + " of instance " + std::to_string(instance) +
              " without Accepted from a majority of its voters (" +
              std::to_string(reference_at(instance).voter_count()) + " in epoch " +
              std::to_string(reference_at(instance).epoch) + ")");
  } else if (auto c = chosen_by_voters_.find(instance);
             c != chosen_by_voters_.end() && c->second != value) {
    violation(std::string(where) + " of instance " + std::to_string(instance) +
              " carries another value than its voters chose");
  }
  auto [it, fresh] = chosen_.try_emplace(instance, value);
  if (!fresh && it->second != value) {
    violation(std::string(where) + " of instance " + std::to_string(instance) +
              " carries a different value than was decided before");
  }
}

void Simulation::observe_apply(NodeId node, const Apply& a) {
  SimNode& n = nodes_[node];
  if (a.instance < n.next_apply && n.applier->applied_below() >= n.next_apply) {
    // Sent before a snapshot moved the applier past it; the applier ignores
    // it. Its value must still be the decided one.
    observe_decided(a.instance, a.value, "Apply");
    return;
  }
  if (a.instance != n.next_apply) {
    violation("n" + std::to_string(node + 1) + " applied instance " + std::to_string(a.instance) +
              " but " + std::to_string(n.next_apply) + " was next");
    return;
  }
  ++n.next_apply;
  observe_decided(a.instance, a.value, "Apply");
  if (a.instance == applied_log_.size()) {
    applied_log_.push_back(a.value);
    reference_apply(a.instance, a.value);
  }
}

// ------------------------------------------------------------- membership

std::vector<NodeId> Simulation::live_members() const {
  std::vector<NodeId> ids;
  for (NodeId i = 0; i < nodes_.size(); ++i) {
    if (nodes_[i].link && !nodes_[i].removed) ids.push_back(i);
  }
  return ids;
}

// Clients and watchers go round the members in id order.
NodeId Simulation::next_node_after(NodeId node) const {
  if (!config_.reconfig) return static_cast<NodeId>((node + 1) % static_cast<NodeId>(config_.nodes));
  const std::vector<NodeId> ids = live_members();
  auto it = std::upper_bound(ids.begin(), ids.end(), node);
  return it == ids.end() ? ids.front() : *it;
}

NodeId Simulation::pick_member() {
  const std::vector<NodeId> ids = live_members();
  return ids[std::uniform_int_distribution<std::size_t>(0, ids.size() - 1)(rng_)];
}

const Config& Simulation::reference_at(InstanceId instance) const {
  auto it = std::upper_bound(ref_history_.begin(), ref_history_.end(), instance,
                             [](InstanceId v, const ConfigAt& e) { return v < e.from; });
  return std::prev(it)->config;
}

// Instance `instance` was applied somewhere for the first time: run its
// member ops on the reference configuration, as every applier must.
void Simulation::reference_apply(InstanceId instance, const std::string& value) {
  Result<LogEntry> entry = decode_entry(value);
  if (entry.ok()) {
    for (const KvOp& k : entry->ops) {
      if (!ref_sessions_.admit(k, instance) || k.op != OpKind::member) continue;
      Result<MemberChange> change = k.member_change();
      if (!change.ok()) continue;
      const std::uint64_t epoch = ref_config_->epoch();
      const MemberResult r = ref_config_->apply(*change, instance);
      if (!r.error.empty() || ref_config_->epoch() == epoch) continue;
      ++result_.stats.member_changes;
      const Config& next = ref_config_->latest();
      for (const MemberEntry& m : next.members) {
        if (reference_at(instance).is_member(m.id)) continue;
        if (!ids_seen_.insert(m.id).second) {
          violation("member id " + std::to_string(m.id) + " was handed out again (to " + m.name +
                    ") at instance " + std::to_string(instance));
        }
      }
      for (const MemberEntry& m : ref_history_.back().config.members) {
        if (!next.is_member(m.id)) removed_from_[m.id] = r.effective_from;
      }
      ref_history_.push_back(ConfigAt{r.effective_from, next});
      result_.stats.max_voters = std::max<std::uint64_t>(result_.stats.max_voters, next.voter_count());
    }
  }
  ref_sessions_.end_instance(instance, max_sessions());
  // Choices waiting for this instance's configuration to be known.
  const InstanceId known = reference_known_below();
  for (auto it = awaiting_config_.begin(); it != awaiting_config_.end();) {
    if (it->first >= known) {
      ++it;
      continue;
    }
    const auto [i, b] = *it;
    it = awaiting_config_.erase(it);
    evaluate_choice(i, b);
  }
}

// Accept values by ballot, and Accepted from acceptors; the window rule for
// the instances a proposer runs; no acceptor answers a member removed where
// its node already applied the removal.
void Simulation::observe_paxos(NodeId node, Actor from, const Outbox& out) {
  if (from == Actor::proposer) {
    const InstanceId window = nodes_[node].applier->applied_below() + ref_config_->alpha();
    for (const Outbound& o : out) {
      InstanceId instance = 0;
      if (const auto* a = std::get_if<Accept>(&o.body)) {
        instance = a->instance;
        auto [rec, fresh] = accepts_.try_emplace({a->instance, a->ballot}, AcceptRecord{a->value, {}});
        if (!fresh && rec->second.value != a->value) {
          violation("ballot " + to_string(a->ballot) + " carried two values in instance " +
                    std::to_string(a->instance));
        }
        if (fresh) check_phase1(node, a->instance, a->ballot);
      } else if (const auto* p = std::get_if<Prepare>(&o.body)) {
        instance = p->instance;
      } else {
        continue;
      }
      if (config_.reconfig && instance >= window && config_.bug != PlantedBug::no_window) {
        violation("n" + std::to_string(node + 1) + "'s proposer ran instance " +
                  std::to_string(instance) + ", past its window (applied " +
                  std::to_string(window - ref_config_->alpha()) + " + alpha)");
      }
    }
    return;
  }
  if (from != Actor::acceptor) return;
  for (const Outbound& o : out) {
    if (const auto* p = std::get_if<Promise>(&o.body); p && p->ok) {
      promises_[{p->instance, p->ballot}].insert(node);
    }
    if (const auto* p = std::get_if<PromiseFrom>(&o.body); p && p->ok) {
      auto [it, fresh] = range_promises_[p->ballot].try_emplace(node, p->from);
      if (!fresh) it->second = std::min(it->second, p->from);
    }
    const auto* a = std::get_if<Accepted>(&o.body);
    if (a == nullptr || !a->ok) continue;
    auto rec = accepts_.find({a->instance, a->ballot});
    if (rec == accepts_.end()) continue;  // an Accept sent before this run's checks: none
    rec->second.by.insert(node);
    if (a->instance < reference_known_below()) {
      evaluate_choice(a->instance, a->ballot);
    } else {
      awaiting_config_.insert({a->instance, a->ballot});
    }
  }
}

// Phase 2 follows phase 1: the first Accept of a ballot in an instance
// goes out only once a majority of that instance's voters promised the
// ballot there (a Promise for the instance, or a PromiseFrom of a range
// starting at or below it). Else a value chosen at a lower ballot by those
// voters could be overwritten: the proposer never heard of it. The
// promises counted are those sent, a superset of those the proposer
// received, so a correct proposer always passes.
void Simulation::check_phase1(NodeId node, InstanceId instance, const Ballot& ballot) {
  if (instance >= reference_known_below()) return;  // the window check reports it
  const Config& c = reference_at(instance);
  const auto per_instance = promises_.find({instance, ballot});
  const auto ranged = range_promises_.find(ballot);
  std::size_t promised = 0;
  for (NodeId v : c.voters()) {
    const bool by_prepare = per_instance != promises_.end() && per_instance->second.contains(v);
    bool by_range = false;
    if (ranged != range_promises_.end()) {
      const auto r = ranged->second.find(v);
      by_range = r != ranged->second.end() && r->second <= instance;
    }
    if (by_prepare || by_range) ++promised;
  }
  ++result_.stats.phase1_checked;
  if (!is_majority(promised, c.voter_count())) {
    violation("n" + std::to_string(node + 1) + "'s proposer sent Accept for instance " +
              std::to_string(instance) + " at ballot " + to_string(ballot) + " with promises " +
              "from " + std::to_string(promised) + " of its " + std::to_string(c.voter_count()) +
              " voters (epoch " + std::to_string(c.epoch) + ")");
  }
}

// What an acceptor answers as it answers (its output waits for its sync):
// nothing to a member it knows was removed, that is, one in none of the
// configurations it was told of, below the highest id it knows.
void Simulation::check_silence_to_removed(NodeId node, const Outbox& out) {
  const std::optional<ConfigHistory>& known = nodes_[node].acceptor_history;
  if (!known) return;
  const std::vector<NodeId> ids = known->all_members();
  for (const Outbound& o : out) {
    if (ids.empty() || o.to.node >= ids.back() || known->is_member(o.to.node)) continue;
    if (std::holds_alternative<Promise>(o.body) || std::holds_alternative<PromiseFrom>(o.body) ||
        std::holds_alternative<Accepted>(o.body)) {
      violation("n" + std::to_string(node + 1) + "'s acceptor answered removed member " +
                std::to_string(o.to.node) + " after applying its removal");
      return;
    }
  }
}

// Chosen: accepted at one ballot by a majority of the voters of the
// instance's configuration. Two values chosen for one instance, in any two
// configurations, is the violation Paxos exists to prevent.
void Simulation::evaluate_choice(InstanceId instance, const Ballot& ballot) {
  const AcceptRecord& rec = accepts_.at({instance, ballot});
  const std::vector<NodeId> voters = reference_at(instance).voters();
  const auto count = static_cast<std::size_t>(std::count_if(
      voters.begin(), voters.end(), [&](NodeId v) { return rec.by.count(v) != 0; }));
  if (!is_majority(count, voters.size())) return;
  auto [it, fresh] = chosen_by_voters_.try_emplace(instance, rec.value);
  if (fresh) ++result_.stats.choices_checked;
  if (!fresh && it->second != rec.value) {
    violation("two values were chosen for instance " + std::to_string(instance) +
              " by majorities of its voters (the second at ballot " + to_string(ballot) + ")");
  }
}

// A node's view of the configurations is the log's.
void Simulation::check_config_update(NodeId node, const ConfigUpdate& u) {
  if (u.alpha != ref_config_->alpha()) {
    violation("n" + std::to_string(node + 1) + " runs alpha " + std::to_string(u.alpha) +
              ", the cluster " + std::to_string(ref_config_->alpha()));
  }
  if (u.history.known_below > reference_known_below()) {
    violation("n" + std::to_string(node + 1) + " claims to know the configuration below " +
              std::to_string(u.history.known_below) + ", the log only below " +
              std::to_string(reference_known_below()));
    return;
  }
  for (std::size_t e = 0; e < u.history.entries.size(); ++e) {
    const ConfigAt& entry = u.history.entries[e];
    const InstanceId end = e + 1 < u.history.entries.size() ? u.history.entries[e + 1].from
                                                            : u.history.known_below;
    // Each instance the entry governs here, at the ends of its range and
    // where the reference changes.
    for (InstanceId j : {entry.from, end == 0 ? 0 : end - 1}) {
      if (j < entry.from || j >= u.history.known_below) continue;
      if (reference_at(j) != entry.config) {
        violation("n" + std::to_string(node + 1) + " has epoch " +
                  std::to_string(entry.config.epoch) + " at instance " + std::to_string(j) +
                  ", the log epoch " + std::to_string(reference_at(j).epoch));
        return;
      }
    }
  }
}

// A removed member stays up, serving its acceptor and its learner to the
// members that have not passed its removal yet (the old configuration's
// instances may need it: Lamport's rule for retiring a configuration), and
// stops for good once every member of the configuration after its removal
// that is up (or coming back) has applied past the point it governs from. A
// member behind that point may know no other member to learn from: nothing
// tells a node the endpoints of members added after what it applied. Here
// the simulator stops it, as an operator would after `kvctl member list`;
// kvpaxosd does not stop by itself yet.
void Simulation::retire_removed() {
  for (const auto& [id, from] : removed_from_) {
    if (id >= nodes_.size() || !nodes_[id].link || nodes_[id].removed) continue;
    // As PeerLink decides it: a removed node stops once a majority of the
    // voters a notice names told it, and a voter tells it only once it is
    // done (durably, with a disk) with every instance before the removal;
    // a notice names the sender's latest voters (those right after the
    // removal, or of a later configuration).
    auto majority_told = [&](const std::vector<NodeId>& voters) {
      const auto told = std::count_if(voters.begin(), voters.end(), [&](NodeId v) {
        return v < nodes_.size() && nodes_[v].link && !nodes_[v].removed && !nodes_[v].crashed &&
               nodes_[v].learner->done_below() >= from;
      });
      return is_majority(static_cast<std::size_t>(told), voters.size());
    };
    if (!majority_told(reference_at(from).voters()) &&
        !majority_told(ref_history_.back().config.voters())) {
      continue;
    }
    nodes_[id].removed = true;
    crash(id);
    nodes_[id].restarting = false;  // also one that was down, due to restart: it stays down
    ++result_.stats.removed_stopped;
  }
}

std::size_t Simulation::live_voters(const Config& c) const {
  std::size_t live = 0;
  for (NodeId v : c.voters()) {
    if (v < nodes_.size() && nodes_[v].link && !nodes_[v].removed &&
        (!nodes_[v].crashed || nodes_[v].restarting)) {
      ++live;
    }
  }
  return live;
}

// A learner may be promoted once it is running and within a few instances
// of the log (kvctl member promote's check).
bool Simulation::caught_up(NodeId id) const {
  if (id >= nodes_.size() || !nodes_[id].link || nodes_[id].crashed || nodes_[id].removed) {
    return false;
  }
  return nodes_[id].applier->applied_below() + 16 >= applied_log_.size();
}

std::vector<NodeId> Simulation::ready_learners(const Config& c) const {
  std::vector<NodeId> ready;
  for (const MemberEntry& m : c.members) {
    if (m.role == MemberRole::learner && caught_up(m.id)) ready.push_back(m.id);
  }
  return ready;
}

// Removals wait until every other started member is caught up: a member
// that lags behind the departure of every member it knows cannot find the
// new ones (nothing tells it their endpoints yet), so it would never catch
// up. kvctl's strict check is to refuse such a removal.
bool Simulation::others_caught_up(const Config& c, NodeId leaving) const {
  return std::all_of(c.members.begin(), c.members.end(), [&](const MemberEntry& m) {
    const bool started = m.id < nodes_.size() && nodes_[m.id].link && !nodes_[m.id].removed;
    return m.id == leaving || !started || caught_up(m.id);
  });
}

void Simulation::admin_step() {
  if (!active_) return;
  // A scenario under way goes on at the pace of a script (a change, then
  // the next once it is applied); random changes come every 150-450 ms.
  const bool scripted = admin_.plan != SimAdmin::Plan::random;
  const int next_ms = scripted ? std::uniform_int_distribution<int>(40, 120)(rng_)
                               : std::uniform_int_distribution<int>(150, 450)(rng_);
  at(now_ + std::chrono::milliseconds(next_ms), [this] { admin_step(); });
  if (admin_.busy) return;
  const Config& c = ref_config_->latest();
  admin_.start_added = true;
  admin_.unstarted = false;
  std::optional<MemberChange> change = planned_change(c);
  if (!change) return;
  if (admin_.dead) lose_for_good(*admin_.dead);
  // One change in five: once applied, the whole cluster crashes and
  // restarts inside its window.
  admin_.restart_in_window = std::uniform_int_distribution<int>(0, 4)(rng_) == 0;
  const MemberChangeKind kind = change->kind;
  const std::uint64_t epoch = c.epoch;
  const NodeId first = c.members.front().id;
  admin_change(std::move(*change));
  // Now and then a second operator races the first with the same epoch:
  // one of the two must be refused.
  if (std::uniform_int_distribution<int>(0, 9)(rng_) == 0 && kind != MemberChangeKind::update) {
    MemberChange rival{.kind = MemberChangeKind::update, .expected_epoch = epoch,
                       .target = first,
                       .client_endpoint = "inproc://sim/client/rival." + std::to_string(epoch)};
    ClientRequest r{.client_id = admin_.id + 1'000'000'000ull + admin_.seq, .seq = 1,
                    .op = OpKind::member, .member = rival};
    const NodeId node = pick_member();
    at(now_ + microseconds(std::uniform_int_distribution<int>(0, 2000)(rng_)),
       [this, node, frame = encode(r)] {
         if (!runnable(node) || paused(node)) return;
         Outbox out;
         nodes_[node].front_door->on_client_frame("a-rival", frame, out);
         route(node, Actor::front_door, out);
       });
  }
}

// The change the scenario under way asks for next, or a random one; none
// while a scenario waits (for a learner to catch up, a voter to come back).
std::optional<MemberChange> Simulation::planned_change(const Config& c) {
  switch (admin_.plan) {
    case SimAdmin::Plan::grow: return grow_step(c);
    case SimAdmin::Plan::shrink: return shrink_step(c);
    case SimAdmin::Plan::same_name: return same_name_step(c);
    case SimAdmin::Plan::disjoint: return disjoint_step(c);
    case SimAdmin::Plan::random: break;
  }
  return random_change(c);
}

std::optional<MemberChange> Simulation::random_change(const Config& c) {
  const std::size_t voters = c.voter_count();
  const std::size_t learners = c.members.size() - voters;
  const std::vector<NodeId> ready = ready_learners(c);
  const int roll = std::uniform_int_distribution<int>(0, 99)(rng_);
  if (roll < 8 && voters >= 2) {
    admin_.plan = SimAdmin::Plan::same_name;
    admin_.replaced.reset();
    admin_.replaced_removed = false;
    admin_.tries = 0;
    return same_name_step(c);
  }
  if (roll < 14) {
    if (std::optional<MemberChange> u = remove_unstarted(c)) return u;
  }
  // Grow towards five voters, shrink back to one now and then.
  if (learners < 2 && (roll < 35 || voters == 1)) {
    admin_.start_added = std::uniform_int_distribution<int>(0, 5)(rng_) != 0;
    return add_change(c, "");
  }
  if (!ready.empty() && roll < 70 && voters < 5) {
    return promote_change(
        c, ready[std::uniform_int_distribution<std::size_t>(0, ready.size() - 1)(rng_)]);
  }
  const std::vector<NodeId> vs = c.voters();
  const NodeId voter = vs[std::uniform_int_distribution<std::size_t>(0, vs.size() - 1)(rng_)];
  if (!ready.empty() && roll < 80) return replace_change(c, voter, ready.front());
  if (voters > 1 && roll < 95) {
    // Remove a voter: the leader, a random one, or one crashed for good first.
    const NodeId target = roll < 85 ? nodes_[pick_member()].applier->leader() : voter;
    return remove_change(c, target, roll >= 90);
  }
  const std::vector<NodeId> ids = c.member_ids();
  const NodeId target = ids[std::uniform_int_distribution<std::size_t>(0, ids.size() - 1)(rng_)];
  return MemberChange{.kind = MemberChangeKind::update, .expected_epoch = c.epoch, .target = target,
                      .client_endpoint = "inproc://sim/client/" + c.find(target)->name + "." +
                                         std::to_string(c.epoch + 1)};
}

// A learner (named "n<id+1>", or `name`), at its own endpoints.
MemberChange Simulation::add_change(const Config& c, const std::string& name) {
  MemberChange change{.kind = MemberChangeKind::add_learner, .expected_epoch = c.epoch};
  change.name = name.empty() ? "n" + std::to_string(ref_config_->next_member_id() + 1) : name;
  change.peer_endpoint = "inproc://sim/peer/" + change.name;
  change.client_endpoint = "inproc://sim/client/" + change.name;
  return change;
}

MemberChange Simulation::promote_change(const Config& c, NodeId learner) {
  return MemberChange{.kind = MemberChangeKind::promote, .expected_epoch = c.epoch,
                      .target = learner, .incarnation = nodes_[learner].member_incarnation};
}

// The strict check: the voters left, live, must be a majority of the new
// set. `may_kill`: the voter crashes for good first (when the others
// still make that majority), to be removed while it is down.
std::optional<MemberChange> Simulation::remove_change(const Config& c, NodeId target,
                                                      bool may_kill) {
  const std::size_t voters = c.voter_count();
  if (!c.is_voter(target) || voters < 2 || !others_caught_up(c, target)) return std::nullopt;
  const bool target_live = live_voters(Config{0, {*c.find(target)}}) == 1;
  const std::size_t live_after = live_voters(c) - (target_live ? 1 : 0);
  if (live_after < majority(voters - 1)) return std::nullopt;
  if (may_kill && target_live && voters > 2 && survives_without(target)) admin_.dead = target;
  return MemberChange{.kind = MemberChangeKind::remove, .expected_epoch = c.epoch,
                      .target = target};
}

// A voter lost for good must leave a live majority in every configuration
// that still governs an instance not decided yet, not only in the latest:
// an undecided instance of a two-voter configuration with one voter gone
// can never be decided, and the log stops there for good (no Paxos gets a
// majority of two from one). The live `target` is counted as gone. Not
// decided yet means: as far as the nodes that stay know. An instance only
// the target learned is chosen, but a new ballot there needs a majority of
// its voters again (seed 2445 lost the second of two voters that way, with
// 63 instances only it had learned).
bool Simulation::survives_without(NodeId target) const {
  const InstanceId undecided_from =
      std::min<InstanceId>(decided_without(target), applied_log_.size());
  for (std::size_t e = 0; e < ref_history_.size(); ++e) {
    if (e + 1 < ref_history_.size() && ref_history_[e + 1].from <= undecided_from) continue;
    const Config& c = ref_history_[e].config;
    const std::size_t live = live_voters(c) - (c.is_voter(target) ? 1 : 0);
    if (live < majority(c.voter_count())) return false;
  }
  return true;
}

std::optional<MemberChange> Simulation::replace_change(const Config& c, NodeId target,
                                                       NodeId learner) {
  if (!c.is_voter(target) || !others_caught_up(c, target)) return std::nullopt;
  const bool target_live = live_voters(Config{0, {*c.find(target)}}) == 1;
  if (live_voters(c) - (target_live ? 1 : 0) + 1 < majority(c.voter_count())) return std::nullopt;
  return MemberChange{.kind = MemberChangeKind::replace, .expected_epoch = c.epoch,
                      .target = target, .other = learner,
                      .incarnation = nodes_[learner].member_incarnation};
}

// A learner that was added but never started (its start line never run)
// is removed: nothing counted on it, and its slot is wanted.
std::optional<MemberChange> Simulation::remove_unstarted(const Config& c) {
  for (const MemberEntry& m : c.members) {
    if (m.role != MemberRole::learner || starting_.contains(m.id)) continue;
    if (m.id < nodes_.size() && nodes_[m.id].link) continue;
    admin_.unstarted = true;
    return MemberChange{.kind = MemberChangeKind::remove, .expected_epoch = c.epoch,
                        .target = m.id};
  }
  return std::nullopt;
}

// Growth from one voter: learners added (and started) and promoted once
// caught up, through two, three and four voters to five.
std::optional<MemberChange> Simulation::grow_step(const Config& c) {
  const std::size_t voters = c.voter_count();
  if (voters >= 5) {
    ++result_.stats.grown_to_five;
    admin_.plan = SimAdmin::Plan::shrink;
    return shrink_step(c);
  }
  if (std::optional<MemberChange> u = remove_unstarted(c)) return u;
  const std::vector<NodeId> ready = ready_learners(c);
  if (!ready.empty()) return promote_change(c, ready.front());
  const std::size_t learners = c.members.size() - voters;
  if (learners < 2 && voters + learners < 5) return add_change(c, "");
  return std::nullopt;  // the learners are catching up
}

// Back from five voters to three, a random voter at a time (the leader too).
std::optional<MemberChange> Simulation::shrink_step(const Config& c) {
  if (c.voter_count() <= 3) {
    ++result_.stats.shrunk_to_three;
    admin_.plan = SimAdmin::Plan::random;
    if (config_.reconfig_disjoint) {
      admin_.plan = SimAdmin::Plan::disjoint;
      const std::vector<NodeId> vs = c.voters();
      admin_.disjoint_from = std::set<NodeId>(vs.begin(), vs.end());
    }
    return std::nullopt;
  }
  const std::vector<NodeId> vs = c.voters();
  return remove_change(c, vs[std::uniform_int_distribution<std::size_t>(0, vs.size() - 1)(rng_)],
                       false);
}

// A voter's machine is lost: the voter is removed (crashed for good and
// its disk wiped first, when the strict check allows) and, once the
// removal is applied, a learner takes its name and peer endpoint. The
// configuration must give the newcomer a fresh id (the check that no id is
// handed out twice), and the old incarnation's votes, ballots and removal
// stay its own: it is never answered again (check_silence_to_removed).
std::optional<MemberChange> Simulation::same_name_step(const Config& c) {
  const auto give_up = [this] {
    admin_.plan = SimAdmin::Plan::random;
    admin_.replaced.reset();
    admin_.replaced_removed = false;
    return std::nullopt;
  };
  if (!admin_.replaced) {
    const std::vector<NodeId> vs = c.voters();
    const NodeId target = vs[std::uniform_int_distribution<std::size_t>(0, vs.size() - 1)(rng_)];
    std::optional<MemberChange> change = remove_change(c, target, true);
    if (!change) return give_up();
    admin_.replaced = *c.find(target);
    return change;
  }
  // The removal was refused or its outcome is unknown; or the add keeps
  // being refused (a change still pending, the name taken by an add whose
  // reply was lost).
  if (!admin_.replaced_removed || ++admin_.tries > 6) return give_up();
  if (c.members.size() - c.voter_count() >= kMaxLearners) return remove_unstarted(c);
  MemberChange change = add_change(c, admin_.replaced->name);
  change.peer_endpoint = admin_.replaced->peer_endpoint;
  return change;
}

// Every voter of the configuration the scenario started from replaced by a
// new member, one replace at a time (the voter count stays): the end
// configuration shares no voter with the first, which is safe because each
// instance is decided by the voters of its own configuration alone.
std::optional<MemberChange> Simulation::disjoint_step(const Config& c) {
  std::vector<NodeId> left;  // voters of the first configuration still voting
  for (NodeId v : c.voters()) {
    if (admin_.disjoint_from.contains(v)) left.push_back(v);
  }
  if (left.empty()) {
    ++result_.stats.disjoint_replacements;
    admin_.plan = SimAdmin::Plan::random;
    return std::nullopt;
  }
  if (std::optional<MemberChange> u = remove_unstarted(c)) return u;
  const std::vector<NodeId> ready = ready_learners(c);
  if (ready.empty()) {
    if (c.members.size() - c.voter_count() < kMaxLearners) return add_change(c, "");
    return std::nullopt;  // the learners are catching up
  }
  const NodeId target = left[std::uniform_int_distribution<std::size_t>(0, left.size() - 1)(rng_)];
  return replace_change(c, target, ready.front());
}

// The whole cluster crashes and restarts from its disks while the change
// just applied is inside its window: some node has applied the instance
// that decided it but not yet the one it governs from. Every node must come
// back with the pending configuration, from its snapshot and decided log.
void Simulation::restart_in_window(const MemberResult& m) {
  if (!active_) return;  // the faults are healed: a reply that came late
  const std::uint64_t alpha = ref_config_->alpha();
  const InstanceId decided_in = m.effective_from >= alpha ? m.effective_from - alpha : 0;
  bool inside = false;
  for (NodeId i = 0; i < nodes_.size(); ++i) {
    if (!runnable(i) || nodes_[i].removed) continue;
    const InstanceId applied = nodes_[i].applier->applied_below();
    inside = inside || (applied > decided_in && applied < m.effective_from);
  }
  if (!inside) return;
  ++result_.stats.window_restarts;
  cluster_restart();
}

void Simulation::admin_change(MemberChange change) {
  admin_.busy = true;
  ++admin_.seq;
  admin_.request = ClientRequest{.client_id = admin_.id, .seq = admin_.seq, .ack = admin_.acked,
                                 .op = OpKind::member, .member = std::move(change)};
  admin_.deadline = now_ + std::chrono::seconds(3);
  admin_.target = pick_member();
  admin_send();
}

void Simulation::admin_send() {
  const std::uint64_t attempt = ++admin_.attempt;
  at(now_ + std::chrono::milliseconds(300), [this, attempt] { admin_timeout(attempt); });
  const NodeId node = admin_.target;
  at(now_ + microseconds(std::uniform_int_distribution<int>(50, 500)(rng_)),
     [this, node, frame = encode(admin_.request)] {
       if (!runnable(node) || paused(node)) return;
       Outbox out;
       nodes_[node].front_door->on_client_frame("a", frame, out);
       route(node, Actor::front_door, out);
     });
}

void Simulation::admin_timeout(std::uint64_t attempt) {
  if (!admin_.busy || admin_.attempt != attempt) return;
  if (now_ >= admin_.deadline) {
    // Outcome unknown: a change may still be applied. An add that was is a
    // learner that never starts; a removal of a dead voter leaves it dead.
    // A scenario does not build on an unknown outcome.
    admin_.busy = false;
    admin_.dead.reset();
    if (admin_.plan == SimAdmin::Plan::same_name) admin_.replaced_removed = false;
    return;
  }
  admin_.target = next_node_after(admin_.target);
  admin_send();
}

void Simulation::admin_reply(const ClientReply& r) {
  if (!admin_.busy || r.client_id != admin_.id || r.seq != admin_.seq) return;
  if (r.code != ReplyCode::ok) return;  // refused at the door (shutting down...): it times out
  admin_.busy = false;
  admin_.acked = r.seq;
  admin_.dead.reset();
  const MemberResult& m = r.member;
  if (!m.error.empty()) {
    ++result_.stats.member_refusals;
    return;
  }
  const MemberChange& asked = admin_.request.member;
  if (admin_.unstarted) ++result_.stats.unstarted_removed;
  const bool replacing = admin_.plan == SimAdmin::Plan::same_name && admin_.replaced;
  if (replacing && asked.kind == MemberChangeKind::remove && asked.target == admin_.replaced->id) {
    admin_.replaced_removed = true;
  }
  if (admin_.restart_in_window) restart_in_window(m);
  if (asked.kind != MemberChangeKind::add_learner) return;
  if (replacing && admin_.replaced_removed && asked.name == admin_.replaced->name) {
    if (m.id <= admin_.replaced->id) {
      violation(asked.name + " replaced member id " + std::to_string(admin_.replaced->id) +
                " under its name and got id " + std::to_string(m.id) + ", not a fresh one");
    }
    ++result_.stats.same_name_replacements;
    admin_.plan = SimAdmin::Plan::random;
    admin_.replaced.reset();
    admin_.replaced_removed = false;
  }
  if (!admin_.start_added) {
    ++result_.stats.never_started;
    return;
  }
  const NodeId id = m.id;
  starting_.insert(id);
  at(now_ + std::chrono::milliseconds(std::uniform_int_distribution<int>(0, 300)(rng_)),
     [this, id, name = asked.name] { start_member(id, name); });
}

// A new member's first start: an empty data dir, the configuration as the
// cluster gave it, and a snapshot to come.
void Simulation::start_member(NodeId id, const std::string& name) {
  starting_.erase(id);
  if (id < nodes_.size() && nodes_[id].link) return;
  if (id >= nodes_.size()) {
    const std::size_t first_new = nodes_.size();
    nodes_.resize(id + 1);
    side_.resize(id + 1, 0);
    for (std::size_t k = first_new; k < id; ++k) nodes_[k].crashed = true;  // never started
  }
  SimNode& n = nodes_[id];
  n.name = name;
  n.joining = true;
  n.contact = ref_config_->history(applied_log_.size());
  n.contact->known_below = 0;  // nothing may be proposed before the snapshot
  n.member_incarnation = rng_() | 1;  // written into its data dir at its first start
  make_actors(id);
  schedule_ticks(id);
  trace(0xadd, id);
}

// ------------------------------------------------------------------ clients

void Simulation::client_next(int c) {
  SimClient& cl = clients_[static_cast<std::size_t>(c)];
  // Nothing after healing: what a node lost for good decided last, the
  // others learn idle (Applier::probe_accepted), not by a next request.
  if (!active_) return;
  std::uniform_int_distribution<int> pick(0, 99);
  const int roll = pick(rng_);
  // A session opens with a get, as the client library's do: a late copy of
  // seq 1 may run again once the session is evicted, which a get survives.
  const OpKind op = cl.seq == 0 ? OpKind::get
                    : roll < 35 ? OpKind::append
                    : roll < 55 ? OpKind::put
                    : roll < 63 ? OpKind::delete_range
                    : roll < 75 ? OpKind::txn
                                : OpKind::get;
  const std::string key = "k" + std::to_string(std::uniform_int_distribution<int>(
                                    0, config_.keys - 1)(rng_));
  ++cl.seq;
  // Every written value is unique, so the checker can tell each write apart.
  const std::string session =
      cl.generation == 0 ? "" : "g" + std::to_string(cl.generation) + ".";
  const bool writes = op == OpKind::put || op == OpKind::append || op == OpKind::txn;
  const std::string value =
      writes ? "c" + std::to_string(c) + "." + session + std::to_string(cl.seq) + ";" : "";
  // Each op touches one key, so the history's keys stay independent.
  static const char* const kOpName[] = {"", "get", "put", "append", "delete", "range", "cas"};
  HistoryOp h{.client = cl.id,
              .op = kOpName[static_cast<int>(op)],
              .key = key,
              .value = value,
              .invoke_ns = (now_ - start_).count()};
  cl.request = ClientRequest{cl.id, cl.seq, cl.acked, op, key, value};
  if (op == OpKind::txn) make_cas(cl, h);
  cl.busy = true;
  cl.history_index = history_.invoke(std::move(h));
  cl.attempt_timeout_us = 250'000;
  cl.call_deadline = now_ + std::chrono::milliseconds(config_.client_deadline_ms);
  cl.sends = 0;
  client_send(c);
}

// A compare-and-swap as a txn: if the key's value is `expected`, put the new
// value, else get it. `expected` is mostly what this client last saw there
// (often stale: others write too), else "" (an absent key's value) or a
// value nobody writes, so both branches run.
void Simulation::make_cas(SimClient& cl, HistoryOp& h) {
  const int guess = std::uniform_int_distribution<int>(0, 9)(rng_);
  const auto seen = cl.seen.find(h.key);
  h.expected = guess >= 8                               ? "never written"
               : guess >= 6 || seen == cl.seen.end() ? ""
                                                     : seen->second;
  ClientRequest& r = cl.request;
  r.compares = {Compare{.target = CompareTarget::value,
                        .op = CompareOp::equal,
                        .key = h.key,
                        .value = h.expected}};
  r.success = {RequestOp{.op = OpKind::put, .key = h.key, .value = h.value}};
  r.failure = {RequestOp{.op = OpKind::get, .key = h.key}};
  r.key.clear();  // a txn names its keys in its compares and ops
  r.value.clear();
}

void Simulation::client_send(int c) {
  SimClient& cl = clients_[static_cast<std::size_t>(c)];
  // A sticky client whose node was removed is pointed elsewhere, as a user
  // would after `kvctl member remove`.
  if (config_.reconfig && nodes_[static_cast<NodeId>(cl.target)].removed) {
    cl.target = static_cast<int>(next_node_after(static_cast<NodeId>(cl.target)));
  }
  const auto node = static_cast<NodeId>(cl.target);
  const std::uint64_t attempt = ++cl.attempt;
  ++cl.sends;
  cl.attempt_deadline = now_ + microseconds(cl.attempt_timeout_us);
  at(cl.attempt_deadline, [this, c, attempt] { client_timeout(c, attempt); });
  const std::string frame = encode(cl.request);
  const auto delay = microseconds(std::uniform_int_distribution<int>(50, 500)(rng_));
  at(now_ + delay, [this, c, node, frame] {
    if (!runnable(node)) return;
    if (paused(node)) return;  // the client's connection times out instead
    Outbox out;
    nodes_[node].front_door->on_client_frame("c" + std::to_string(c), frame, out);
    route(node, Actor::front_door, out);
  });
}

void Simulation::client_timeout(int c, std::uint64_t attempt) {
  SimClient& cl = clients_[static_cast<std::size_t>(c)];
  if (!cl.busy || cl.attempt != attempt) return;
  if (now_ >= cl.call_deadline) {
    history_.complete_unknown(cl.history_index);
    ++result_.stats.ops_unknown;
    cl.busy = false;
    at(now_ + std::chrono::milliseconds(1), [this, c] { client_next(c); });
    return;
  }
  if (!cl.sticky) cl.target = static_cast<int>(next_node_after(static_cast<NodeId>(cl.target)));
  cl.attempt_timeout_us = std::min<std::int64_t>(cl.attempt_timeout_us * 3 / 2, 1'000'000);
  client_send(c);
}

void Simulation::to_client(NodeId node, const ToClient& m) {
  nodes_[node].front_door->on_reply(m);  // as the FrontDoorThread does
  if (m.route.starts_with("w")) {
    to_watcher(node, m);
    return;
  }
  if (m.route.starts_with("a")) {  // the admin, or its rival
    Result<Body> body = decode(m.body);
    if (auto* reply = body.ok() ? std::get_if<ClientReply>(&body.value()) : nullptr;
        reply != nullptr && m.route == "a") {
      at(now_ + microseconds(std::uniform_int_distribution<int>(50, 500)(rng_)),
         [this, r = *reply] { admin_reply(r); });
    }
    return;
  }
  const int c = std::stoi(m.route.substr(1));
  Result<Body> body = decode(m.body);
  if (!body.ok()) {
    violation("a reply to a client did not decode: " + body.error());
    return;
  }
  auto* reply = std::get_if<ClientReply>(&body.value());
  if (reply == nullptr) {
    violation("n" + std::to_string(node + 1) + " answered a valid request with something else");
    return;
  }
  const auto delay = microseconds(std::uniform_int_distribution<int>(50, 500)(rng_));
  at(now_ + delay, [this, c, r = *reply] { client_reply(c, r); });
}

void Simulation::client_reply(int c, const ClientReply& r) {
  SimClient& cl = clients_[static_cast<std::size_t>(c)];
  // A late duplicate, or a reply to this client's previous session.
  if (!cl.busy || r.seq != cl.request.seq || r.client_id != cl.id) return;
  if (r.code == ReplyCode::session_expired) {
    client_session_expired(c);
    return;
  }
  if (r.code == ReplyCode::shutting_down) {
    // A node stepping down: the same request at the next node, now, as
    // client/client.cpp does (sticky or not: this node is going away).
    if (now_ >= cl.call_deadline) {
      client_timeout(c, cl.attempt);
      return;
    }
    ++result_.stats.shutting_down_retries;
    cl.target = static_cast<int>(next_node_after(static_cast<NodeId>(cl.target)));
    client_send(c);
    return;
  }
  if (r.code != ReplyCode::ok) {
    violation("client " + std::to_string(c) + " seq " + std::to_string(r.seq) + " got " +
              to_string(r.code) + ": " + r.error);
    return;
  }
  if (!record_reply(cl, r)) return;
  ++result_.stats.ops_ok;
  cl.acked = r.seq;
  cl.busy = false;
  const auto think = microseconds(std::uniform_int_distribution<int>(0, 20000)(rng_));
  at(now_ + think, [this, c] { client_next(c); });
}

// The history's output of an acknowledged op (delete: the count; cas: the
// branch and a failure's read) and its revision, for final_checks.
bool Simulation::record_reply(SimClient& cl, const ClientReply& r) {
  const ClientRequest& q = cl.request;
  const std::string& key = q.op == OpKind::txn ? q.compares.front().key : q.key;
  std::string output = r.value;
  bool wrote = q.op == OpKind::put || q.op == OpKind::append;
  if (q.op == OpKind::delete_range) {
    output = std::to_string(r.count);
    wrote = r.count > 0;
    result_.stats.keys_deleted += r.count;
  }
  if (q.op == OpKind::txn) {
    if (r.responses.size() != 1) {
      violation("a cas of client " + std::to_string(r.client_id) + " seq " +
                std::to_string(r.seq) + " got " + std::to_string(r.responses.size()) +
                " responses, not one");
      return false;
    }
    output = r.succeeded ? "" : r.responses.front().value;
    wrote = r.succeeded;
    ++(r.succeeded ? result_.stats.cas_succeeded : result_.stats.cas_failed);
  }
  if (q.op == OpKind::get || (q.op == OpKind::txn && !r.succeeded)) cl.seen[key] = output;
  if (q.op == OpKind::put) cl.seen[key] = q.value;
  if (q.op == OpKind::txn && r.succeeded) cl.seen[key] = q.success.front().value;
  if (q.op == OpKind::delete_range) cl.seen[key] = "";
  history_.complete_ok(cl.history_index, output, (now_ - start_).count(), r.succeeded);
  acked_revisions_[cl.history_index] = {r.revision, wrote};
  return true;
}

// As the client library does: the outcome is unknown (a late copy of the
// op may still run, see docs/architecture.md), and the next op starts a new
// session (new id, seq 1).
void Simulation::client_session_expired(int c) {
  SimClient& cl = clients_[static_cast<std::size_t>(c)];
  ++result_.stats.sessions_expired;
  ++result_.stats.ops_unknown;
  history_.complete_unknown(cl.history_index);
  expired_ops_.insert(cl.history_index);
  cl.id = (ClientId{1} << 40) + next_session_id_++;
  cl.seq = 0;
  cl.acked = 0;
  ++cl.generation;
  cl.busy = false;
  at(now_ + std::chrono::milliseconds(1), [this, c] { client_next(c); });
}

std::size_t Simulation::max_sessions() const {
  if (config_.max_sessions > 0) return config_.max_sessions;
  if (config_.bug == PlantedBug::execute_expired_sessions || config_.seed % 4 == 2) return 2;
  return ApplierOptions{}.max_sessions;
}

// ----------------------------------------------------------------- watchers

// One watcher of every key, and in odd seeds one of a key's prefix, each
// from revision 1 at its own node.
void Simulation::start_watchers() {
  if (!config_.watchers) return;
  const int count = 1 + static_cast<int>(config_.seed % 2);
  for (int w = 0; w < count; ++w) {
    SimWatcher sw;
    if (w == 0) {
      sw.range_end = std::string(1, '\0');
    } else {
      sw.key = "k" + std::to_string(config_.seed / 2 % static_cast<std::uint64_t>(config_.keys));
      sw.range_end = prefix_end(sw.key);
    }
    sw.target = (w + 1) % config_.nodes;
    watchers_.push_back(std::move(sw));
    at(now_ + std::chrono::milliseconds(w + 1), [this, w] {
      watcher_open(w);
      watcher_check(w);
    });
  }
}

// A new watch at the current target from the revision after the last one
// everything was delivered up to.
void Simulation::watcher_open(int w) {
  SimWatcher& sw = watchers_[static_cast<std::size_t>(w)];
  ++sw.watch_id;
  sw.watch_start = sw.revision + 1;
  sw.stream_covered = sw.revision;
  sw.last_heard = now_;
  watcher_send(w, WatchRequest{.watch_id = sw.watch_id,
                               .key = sw.key,
                               .range_end = sw.range_end,
                               .start_revision = sw.revision + 1});
}

void Simulation::watcher_send(int w, const WatchRequest& request) {
  SimWatcher& sw = watchers_[static_cast<std::size_t>(w)];
  const auto node = static_cast<NodeId>(sw.target);
  Time& last = sw.to_node_clock[node];
  last = std::max(last, now_ + microseconds(std::uniform_int_distribution<int>(50, 500)(rng_)));
  at(last, [this, w, node, frame = encode(request)] {
    if (!runnable(node) || paused(node)) return;  // lost with the connection; silence tells
    Outbox out;
    nodes_[node].front_door->on_client_frame("w" + std::to_string(w), frame, out);
    route(node, Actor::front_door, out);
  });
}

// Every 10 ms: a node silent for kWatchSilence is given up for the next.
void Simulation::watcher_check(int w) {
  if (now_ - watchers_[static_cast<std::size_t>(w)].last_heard >= kWatchSilence) {
    watcher_fail_over(w);
  }
  at(now_ + std::chrono::milliseconds(10), [this, w] { watcher_check(w); });
}

void Simulation::watcher_fail_over(int w) {
  SimWatcher& sw = watchers_[static_cast<std::size_t>(w)];
  sw.target = static_cast<int>(next_node_after(static_cast<NodeId>(sw.target)));
  ++result_.stats.watch_failovers;
  watcher_open(w);
}

// A node's response to a watcher: checked against the node's state as it
// leaves, then delivered in order on the watcher's connection.
void Simulation::to_watcher(NodeId node, const ToClient& m) {
  const int w = std::stoi(m.route.substr(1));
  Result<Body> body = decode(m.body);
  if (!body.ok()) {
    violation("a reply to a watcher did not decode: " + body.error());
    return;
  }
  SimWatcher& sw = watchers_[static_cast<std::size_t>(w)];
  Time& last = sw.from_node_clock[node];
  last = std::max(last, now_ + microseconds(std::uniform_int_distribution<int>(50, 500)(rng_)));
  if (auto* e = std::get_if<ErrorReply>(&body.value())) {
    if (e->code == ReplyCode::bad_request) {
      violation("n" + std::to_string(node + 1) + " refused a valid watch request: " + e->error);
      return;
    }
    at(last, [this, w, node] {  // overloaded: as WatchStream, the next node
      if (node == static_cast<NodeId>(watchers_[static_cast<std::size_t>(w)].target)) {
        watcher_fail_over(w);
      }
    });
    return;
  }
  auto* r = std::get_if<WatchResponse>(&body.value());
  if (r == nullptr) {
    violation("n" + std::to_string(node + 1) + " answered a watch request with neither a "
              "WatchResponse nor an ErrorReply");
    return;
  }
  const WatchHub& hub = nodes_[node].applier->watch_hub();
  // A watch looks no further than the store, but a node behind the start a
  // watch asked for (a resume at a lagging node) says it has looked up to
  // start - 1: every change it was asked for below that, none.
  const std::uint64_t looked_max =
      std::max(nodes_[node].applier->revision(), sw.watch_start - 1);
  if (r->watch_id == sw.watch_id && node == static_cast<NodeId>(sw.target) &&
      r->revision > looked_max) {
    violation("n" + std::to_string(node + 1) + " told watch " + std::to_string(r->watch_id) +
              " (from revision " + std::to_string(sw.watch_start) + ") it had looked up to " +
              "revision " + std::to_string(r->revision) + ", past its store's " +
              std::to_string(nodes_[node].applier->revision()));
    return;
  }
  if (r->compact_revision != 0 && r->compact_revision != hub.history_start()) {
    violation("n" + std::to_string(node + 1) + " cancelled a watch as compacted to revision " +
              std::to_string(r->compact_revision) + ", but its history starts at " +
              std::to_string(hub.history_start()));
    return;
  }
  at(last, [this, w, node, r = std::move(*r)]() mutable {
    watcher_receive(w, node, std::move(r));
  });
}

void Simulation::watcher_receive(int w, NodeId node, WatchResponse r) {
  SimWatcher& sw = watchers_[static_cast<std::size_t>(w)];
  if (node != static_cast<NodeId>(sw.target) || r.watch_id != sw.watch_id) return;  // left behind
  trace(0x3a7c00 | static_cast<std::uint64_t>(w), r.revision);
  sw.last_heard = now_;
  if (r.canceled) {
    if (r.compact_revision != 0) {
      watcher_compacted(sw, node, r);
      if (result_.ok) watcher_open(w);
    } else {
      watcher_fail_over(w);  // dropped or refused there: elsewhere
    }
    return;
  }
  if (!watcher_stream_ok(sw, node, r)) return;
  for (const WatchEvent& e : r.events) {
    if (e.kv.mod_revision <= sw.revision) continue;  // seen before a fail-over
    sw.delivered.push_back(e);
    sw.revision = e.kv.mod_revision;
    ++result_.stats.watch_events;
  }
  sw.revision = std::max(sw.revision, r.revision);
  if (!r.created) {
    watcher_send(w,
                 WatchRequest{.watch_id = sw.watch_id, .ack = true, .ack_revision = sw.revision});
  }
}

// A compaction cancel is legal only where the node lacks the next revision
// the watcher needs; the revisions up to compact_revision are then excused.
void Simulation::watcher_compacted(SimWatcher& sw, NodeId node, const WatchResponse& r) {
  if (r.compact_revision <= sw.revision + 1) {
    violation("n" + std::to_string(node + 1) + " cancelled watch " + std::to_string(r.watch_id) +
              " as compacted to revision " + std::to_string(r.compact_revision) +
              ", but the watcher needed " + std::to_string(sw.revision + 1) + ", which it holds");
    return;
  }
  ++result_.stats.watch_compactions;
  sw.excused.emplace_back(sw.revision + 1, r.compact_revision - 1);
  sw.revision = r.compact_revision - 1;
}

// One watch's stream: the creation confirms the start asked for, events lie
// in the range, each above everything the stream covered before (its start
// included), and a response covers at least its own events.
bool Simulation::watcher_stream_ok(SimWatcher& sw, NodeId node, const WatchResponse& r) {
  const std::string where =
      "n" + std::to_string(node + 1) + "'s watch " + std::to_string(r.watch_id) +
      (sw.key.empty() ? " of every key" : " of prefix \"" + sw.key + "\"");
  if (r.created && r.revision != sw.stream_covered) {
    violation(where + " was created at revision " + std::to_string(r.revision) + ", not " +
              std::to_string(sw.stream_covered));
    return false;
  }
  std::uint64_t covered = sw.stream_covered;
  for (const WatchEvent& e : r.events) {
    if (!in_range(e.kv.key, sw.key, sw.range_end)) {
      violation(where + " sent an event out of its range: " + describe_event(e));
      return false;
    }
    if (e.kv.mod_revision <= covered) {
      violation(where + " sent " + describe_event(e) + " after it had covered revision " +
                std::to_string(covered));
      return false;
    }
    covered = e.kv.mod_revision;
  }
  if (r.revision < covered) {
    violation(where + " said it had looked up to revision " + std::to_string(r.revision) +
              ", below what it had covered: " + std::to_string(covered));
    return false;
  }
  sw.stream_covered = r.revision;
  return true;
}

// ------------------------------------------------------------------ nemesis

void Simulation::nemesis_step() {
  if (!active_) return;
  std::uniform_int_distribution<int> pick(0, 99);
  const int roll = pick(rng_);
  const int n = config_.nodes;
  // With membership changes the nodes come and go: a live member is picked,
  // nodes are not crashed for good (the admin does that, to remove them)
  // nor rebuilt in place (--join keeps the id; replacing takes a new one).
  const auto any_node = [&] {
    return config_.reconfig ? pick_member() : static_cast<NodeId>(pick(rng_) % n);
  };
  const int max_crashed = static_cast<int>(tolerated_failures(static_cast<std::size_t>(n)));
  const int crashed = static_cast<int>(
      std::count_if(nodes_.begin(), nodes_.end(), [](const SimNode& s) { return s.crashed; }));
  // A rebuilt node abstains below its vote floor until that part of the log
  // is decided; a node lost for good meanwhile would be a second lost node
  // (a majority of three), which no configuration survives. No crash then.
  const bool repairing = std::any_of(nodes_.begin(), nodes_.end(), [](const SimNode& s) {
    return !s.crashed && s.acceptor->repairing();
  });
  if (roll < 30) {
    // A random partition: every node on side 0 or 1.
    ++result_.stats.partitions;
    for (int& s : side_) s = pick(rng_) % 2;
  } else if (roll < 45) {
    heal();
  } else if (roll < 60) {
    ++result_.stats.pauses;
    const auto node = any_node();
    const Time until =
        now_ + std::chrono::milliseconds(std::uniform_int_distribution<int>(50, 2000)(rng_));
    nodes_[node].paused_until = std::max(nodes_[node].paused_until, until);
  } else if (roll < 64 && crashed < max_crashed && !repairing && !config_.reconfig) {
    ++result_.stats.crashes;
    crash(static_cast<NodeId>(pick(rng_) % n));
  } else if (roll < 68 && !config_.reconfig) {
    rebuild(static_cast<NodeId>(pick(rng_) % n));
  } else if (roll < 72) {
    const auto node = any_node();
    crash_restart(node, std::chrono::milliseconds(std::uniform_int_distribution<int>(5, 600)(rng_)));
  } else if (roll < 75) {
    const auto node = any_node();
    graceful_restart(node, std::chrono::milliseconds(std::uniform_int_distribution<int>(0, 300)(rng_)),
                     std::chrono::milliseconds(std::uniform_int_distribution<int>(5, 600)(rng_)));
  } else if (roll < 77) {
    cluster_restart();
  } else if (roll < 87) {
    weather_.drop = std::uniform_real_distribution<double>(0.0, 0.4)(rng_);
    weather_.duplicate = std::uniform_real_distribution<double>(0.0, 0.2)(rng_);
  } else {
    weather_.max_delay_us = std::uniform_int_distribution<std::int64_t>(500, 50'000)(rng_);
  }
  const auto next = std::chrono::milliseconds(std::uniform_int_distribution<int>(100, 800)(rng_));
  at(now_ + next, [this] { nemesis_step(); });
}

// How far the live nodes but `target` have learned the log: the most any of
// them has (the others catch up from it).
InstanceId Simulation::decided_without(NodeId target) const {
  InstanceId decided = 0;
  for (NodeId i = 0; i < nodes_.size(); ++i) {
    if (i != target && runnable(i)) decided = std::max(decided, nodes_[i].learner->decided_below());
  }
  return decided;
}

// Down for good, its data dir lost; also a node that was down already, due
// to restart: it must never come back (with an empty disk it would be an
// acceptor that forgot its promises). crash() does nothing to a node that
// is down already, so its pending restart is called off here.
void Simulation::lose_for_good(NodeId i) {
  crash(i);
  nodes_[i].restarting = false;
  nodes_[i].disk = SimDisk{};
  ++result_.stats.crashes;
}

// The last-words scenario (--reconfig, every third seed): for the last
// 150 ms of the load every Decided the leader sends (its proposer's and its
// learner's catch-up answers) is lost, and then so is the leader, for good,
// as a machine that dies. What it decided alone is chosen, so a majority of
// its voters accepted it: the others must learn it while idle, with no
// request to come (Applier::probe_accepted), or they never converge.
void Simulation::mute_leader() {
  if (!active_ || admin_.dead || live_members().empty()) return;
  const NodeId leader = nodes_[pick_member()].applier->leader();
  const Config& c = ref_config_->latest();
  if (leader >= nodes_.size() || !runnable(leader) || nodes_[leader].removed ||
      !c.is_voter(leader) || c.voter_count() < 3 || !survives_without(leader)) {
    return;
  }
  muted_ = leader;
}

void Simulation::lose_muted_leader() {
  if (!muted_) return;
  const NodeId leader = *muted_;
  muted_.reset();
  if (admin_.dead || !runnable(leader) || !survives_without(leader)) return;
  const InstanceId others = decided_without(leader);
  lose_for_good(leader);
  // Counted when it decided more than any other node knows.
  if (nodes_[leader].learner->decided_below() > others) ++result_.stats.last_words_lost;
}

void Simulation::heal() {
  std::fill(side_.begin(), side_.end(), 0);
  weather_ = Weather{};
  if (!active_) {
    for (NodeId i = 0; i < nodes_.size(); ++i) restart(i);
  }
  // Pauses run out by themselves: ending one early would overtake the
  // messages already queued for its end and reorder an inproc pipe.
}

// A node lost its data dir and is rebuilt (kvpaxosd --join): only while
// every other node can answer and none is itself still repairing, and not
// while this one is paused (its process must be gone first). In-flight peer messages from and to its lost self stay
// in the network. Returns whether it happened.
bool Simulation::rebuild(NodeId i) {
  SimNode& node = nodes_[i];
  if (node.crashed || paused(i)) return false;
  // kvpaxosd --join's own rule (JoinSurvey): every other node must answer,
  // none may be repairing, and the floor and round are the maxima of the
  // answers. Here the answers come at once (a crashed node's never), so one
  // round of queries decides.
  std::vector<Member> members;
  for (NodeId j = 0; j < nodes_.size(); ++j) {
    members.push_back({"n" + std::to_string(j + 1), "sim"});
  }
  JoinSurvey survey(i, bootstrap_history(members), std::chrono::seconds(60), now_);
  Outbox queries;
  survey.tick(now_, queries);
  for (const Outbound& query : queries) {
    const SimNode& peer = nodes_[query.to.node];
    if (peer.crashed) continue;
    survey.handle(query.to, query.to.actor == Actor::acceptor ? peer.acceptor->join_info()
                                                              : peer.proposer->join_info());
  }
  if (!survey.done()) return false;
  const Result<JoinBarrier> barrier = survey.result();
  if (!barrier.ok()) return false;
  const InstanceId floor = barrier->vote_floor;
  const std::uint64_t round = barrier->max_round;
  ++result_.stats.rebuilds;
  ++node.incarnation;
  node.disk = SimDisk{};  // the data dir is gone
  // With it the lost self's accepts at and above the floor: no live
  // proposer can count them (an Accept from another proposer there would
  // have raised the floor; the lost self's own tallies died with it, and
  // the peers' Accepted for its ballots reach a proposer that never runs
  // them again), and the new acceptor votes there afresh. Counted on, its
  // late Accepts made a peer "choose" with a vote that no longer existed.
  // Below the floor the node abstains: a late Accepted from its lost self
  // may still complete a majority there, so those votes stay.
  for (auto& [key, rec] : accepts_) {
    if (key.first >= floor) rec.by.erase(i);
  }
  node.restart_round_floor.reset();
  make_actors(i);
  // Without the range promise in start_rebuilt a leader that counted its
  // lost self's promise could still run phase 2 alone; the simulator hit
  // that in 1 of 5000 seeds at one point, so the proof is a unit test
  // (MultiPaxosRebuilt.WithoutTheRangePromiseTwoValuesAreChosen).
  if (config_.bug != PlantedBug::join_without_vote_floor) node.acceptor->start_rebuilt(floor, round);
  // kvpaxosd --join writes the floor to the new data dir before it starts.
  (void)persist(node.disk.acceptor, node.acceptor->take_writes(), /*to_disk=*/true);
  node.proposer->raise_round(round);
  schedule_ticks(i);
  trace(0xbeef, i);
  return true;
}

void Simulation::crash(NodeId i) {
  SimNode& n = nodes_[i];
  if (n.crashed) return;
  n.crashed = true;
  n.restarting = false;
  ++n.incarnation;
  // Of what was appended and not yet synced, a prefix of any length made it
  // to the platter: whole records, none, or one cut in the middle.
  for (MemoryLog* log : {&n.disk.acceptor, &n.disk.decided}) {
    log->crash(std::uniform_int_distribution<std::uint64_t>(0, log->unsynced_bytes())(rng_));
  }
  trace(0xdead, i);
}

void Simulation::crash_restart(NodeId i, Duration down) {
  if (nodes_[i].crashed) return;
  crash(i);
  ++result_.stats.restarts;
  nodes_[i].restarting = true;
  at(now_ + down, [this, i] { restart(i); });
}

void Simulation::restart(NodeId i) {
  SimNode& n = nodes_[i];
  if (!n.crashed || !n.restarting) return;
  ++n.incarnation;
  make_actors(i);  // from the disk, through kvpaxosd's recovery
  n.restart_round_floor = n.acceptor->join_info().max_round;
  n.crashed = false;
  n.restarting = false;
  n.paused_until = Time{};
  schedule_ticks(i);
  trace(0xcafe, i);
}

void Simulation::graceful_restart(NodeId i, Duration grace, Duration down) {
  if (nodes_[i].crashed || !nodes_[i].applier) return;
  ++result_.stats.graceful_stops;
  deliver({i, Actor::applier}, {i, Actor::control}, StepDown{});
  at(now_ + grace, [this, i, down, incarnation = nodes_[i].incarnation] {
    if (nodes_[i].incarnation == incarnation) crash_restart(i, down);
  });
}

// Every live node at once (a power cut): each comes back at its own time.
void Simulation::cluster_restart() {
  ++result_.stats.cluster_restarts;
  for (NodeId i = 0; i < nodes_.size(); ++i) {
    crash_restart(i, std::chrono::milliseconds(std::uniform_int_distribution<int>(20, 400)(rng_)));
  }
}

void Simulation::crash_restart_step() {
  if (!active_) return;
  if (std::uniform_int_distribution<int>(0, 9)(rng_) == 0) {
    cluster_restart();
  } else {
    const auto node = config_.reconfig ? pick_member()
                                       : static_cast<NodeId>(std::uniform_int_distribution<int>(
                                             0, config_.nodes - 1)(rng_));
    const auto down = std::chrono::milliseconds(std::uniform_int_distribution<int>(1, 300)(rng_));
    if (std::uniform_int_distribution<int>(0, 2)(rng_) == 0) {  // a rolling restart's SIGTERM
      graceful_restart(node, std::chrono::milliseconds(std::uniform_int_distribution<int>(0, 300)(rng_)),
                       down);
    } else {
      crash_restart(node, down);
    }
  }
  at(now_ + std::chrono::milliseconds(std::uniform_int_distribution<int>(40, 250)(rng_)),
     [this] { crash_restart_step(); });
}

void Simulation::rebuild_step() {
  if (!active_) return;
  rebuild(0);
  at(now_ + std::chrono::milliseconds(30), [this] { rebuild_step(); });
}

void Simulation::amnesia_step() {
  // The planted bug: node 0 forgets what it promised and accepted.
  nodes_[0].acceptor = std::make_unique<Acceptor>(0, nodes_.size());
  at(now_ + std::chrono::milliseconds(30), [this] { amnesia_step(); });
}

// ------------------------------------------------------------------ the end

bool Simulation::settled() const {
  for (const SimClient& c : clients_) {
    if (c.busy) return false;
  }
  std::optional<InstanceId> applied;
  for (const SimNode& n : nodes_) {
    if (n.crashed && n.restarting) return false;  // it comes back, and must catch up too
    if (n.crashed) continue;
    if (applied && *applied != n.applier->applied_below()) return false;
    applied = n.applier->applied_below();
    // Every instance any node applied, this one too: a node rebuilt after
    // applying the last instance alone leaves the others to learn it from
    // a proposer still at work there.
    if (*applied != applied_log_.size()) return false;
    if (n.learner->decided_below() != *applied) return false;
  }
  return watchers_caught_up();
}

// Every watcher has seen every change up to the live nodes' revision.
bool Simulation::watchers_caught_up() const {
  for (const SimWatcher& sw : watchers_) {
    for (const SimNode& n : nodes_) {
      if (!n.crashed && sw.revision < n.applier->revision()) return false;
    }
  }
  return true;
}

// Each watcher received exactly the log's changes in its range, in order,
// each once, but for the gaps compaction cancels excused, up to the end.
bool Simulation::check_watchers(const ReferenceStore& expected) {
  for (std::size_t w = 0; w < watchers_.size(); ++w) {
    const SimWatcher& sw = watchers_[w];
    const std::string who = "watcher w" + std::to_string(w);
    const auto excused = [&sw](std::uint64_t revision) {
      return std::any_of(sw.excused.begin(), sw.excused.end(), [revision](const auto& gap) {
        return gap.first <= revision && revision <= gap.second;
      });
    };
    std::vector<const WatchEvent*> want;
    for (const WatchEvent& e : expected.events) {
      if (in_range(e.kv.key, sw.key, sw.range_end) && !excused(e.kv.mod_revision)) {
        want.push_back(&e);
      }
    }
    for (std::size_t i = 0; i < std::max(want.size(), sw.delivered.size()); ++i) {
      const WatchEvent* got = i < sw.delivered.size() ? &sw.delivered[i] : nullptr;
      if (got != nullptr && i < want.size() && *got == *want[i]) continue;
      violation(who + "'s event " + std::to_string(i + 1) + " is " +
                (got != nullptr ? describe_event(*got) : "missing") + "; the log's is " +
                (i < want.size() ? describe_event(*want[i]) : "none") + " (" +
                std::to_string(sw.excused.size()) + " compaction gaps excused)");
      return false;
    }
    if (sw.revision != expected.revision) {
      violation(who + " saw every change up to revision " + std::to_string(sw.revision) +
                ", the log ends at " + std::to_string(expected.revision));
      return false;
    }
  }
  return true;
}

// Replay the decided log with the exactly-once rule: (client, seq) runs the
// first time it appears with a seq above its session's last executed one.
// Sessions are bounded (docs/architecture.md, "Bounded sessions"): only
// seq 1 starts one; past max_sessions, at the end of each instance, the
// least recently used (by instance, then client id) go, except those the
// instance touched.
std::optional<Simulation::Replay> Simulation::replay_log() {
  Replay replay;
  ReplaySessions sessions;
  for (std::size_t i = 0; i < applied_log_.size(); ++i) {
    Result<LogEntry> entry = decode_entry(applied_log_[i]);
    if (!entry.ok()) {
      violation("instance " + std::to_string(i) + " holds an undecodable entry");
      return std::nullopt;
    }
    for (const KvOp& k : entry->ops) {
      if (!sessions.admit(k, i)) continue;
      if (k.op == OpKind::member) continue;  // the configuration's, not the store's
      replay.store.execute(k);
      replay.runs[{k.client_id, k.seq}].push_back(replay.store.revision);
    }
    sessions.end_instance(i, max_sessions());
  }
  return replay;
}

// Every live node applied the whole log and holds what the replay gives:
// the same keys, values and revisions, and the same store revision.
bool Simulation::check_node_states(const ReferenceStore& expected) {
  for (NodeId i = 0; i < nodes_.size(); ++i) {
    const SimNode& n = nodes_[i];
    if (n.crashed) continue;
    const std::string node = "n" + std::to_string(i + 1);
    if (n.applier->applied_below() != applied_log_.size()) {
      violation(node + " applied " + std::to_string(n.applier->applied_below()) + " of " +
                std::to_string(applied_log_.size()) + " instances");
      return false;
    }
    if (n.applier->data() != expected.kv) {
      violation(node + " holds a state that differs from the decided log: " +
                first_difference(n.applier->data(), expected.kv));
      return false;
    }
    if (n.applier->revision() != expected.revision) {
      violation(node + " is at revision " + std::to_string(n.applier->revision()) +
                ", the decided log at " + std::to_string(expected.revision));
      return false;
    }
  }
  return true;
}

// Every acknowledged write ran exactly once in the log, every unknown one at
// most once (a get may run twice: a late copy of a session's opening get).
bool Simulation::check_exactly_once(const std::vector<HistoryOp>& history, const Replay& replay) {
  std::unordered_map<std::uint64_t, std::uint64_t> seq_of_client;
  for (const HistoryOp& h : history) {
    const std::uint64_t seq = ++seq_of_client[h.client];
    if (h.op == "get") continue;
    auto it = replay.runs.find({h.client, seq});
    const std::size_t runs = it == replay.runs.end() ? 0 : it->second.size();
    if ((h.outcome == HistoryOutcome::ok && runs != 1) || runs > 1) {
      violation(to_string(h.outcome) + std::string(" ") + h.op + " of client " +
                std::to_string(h.client) + " seq " + std::to_string(seq) + " ran " +
                std::to_string(runs) + " times");
      return false;
    }
  }
  return true;
}

// The revisions the clients were told, against the log and real time: each
// acknowledged op's is the revision the replay reached when it ran; no two
// acknowledged writes (ops that changed the store) share one; and if A
// returned before B was invoked, B's is at least A's, and above it when B
// is a write.
bool Simulation::check_reply_revisions(const std::vector<HistoryOp>& all, const Replay& replay) {
  struct Acked {
    const HistoryOp* op;
    std::uint64_t seq;
    AckedRevision reply;
  };
  std::vector<Acked> acked;
  std::unordered_map<std::uint64_t, std::uint64_t> seq_of_client;
  for (std::size_t i = 0; i < all.size(); ++i) {
    const std::uint64_t seq = ++seq_of_client[all[i].client];
    const auto reply = acked_revisions_.find(i);
    if (reply != acked_revisions_.end()) acked.push_back({&all[i], seq, reply->second});
  }
  const auto name = [](const Acked& a) {
    return a.op->op + " of client " + std::to_string(a.op->client) + " seq " +
           std::to_string(a.seq) + " (revision " + std::to_string(a.reply.revision) + ")";
  };
  std::map<std::uint64_t, const Acked*> writes;
  for (const Acked& a : acked) {
    const auto runs = replay.runs.find({a.op->client, a.seq});
    if (runs == replay.runs.end() || std::find(runs->second.begin(), runs->second.end(),
                                               a.reply.revision) == runs->second.end()) {
      violation("the " + name(a) + " was answered with a revision no run of it in the log had");
      return false;
    }
    if (!a.reply.wrote) continue;
    if (const auto [it, fresh] = writes.emplace(a.reply.revision, &a); !fresh) {
      violation("two acknowledged writes share a revision: the " + name(*it->second) +
                " and the " + name(a));
      return false;
    }
  }
  // By return time, with the highest revision returned so far.
  std::vector<const Acked*> by_return;
  for (const Acked& a : acked) by_return.push_back(&a);
  std::sort(by_return.begin(), by_return.end(), [](const Acked* a, const Acked* b) {
    return a->op->return_ns < b->op->return_ns;
  });
  std::vector<const Acked*> highest(by_return.size());
  for (std::size_t i = 0; i < by_return.size(); ++i) {
    highest[i] = i > 0 && highest[i - 1]->reply.revision >= by_return[i]->reply.revision
                     ? highest[i - 1]
                     : by_return[i];
  }
  for (const Acked& b : acked) {
    const auto before = std::lower_bound(
        by_return.begin(), by_return.end(), b.op->invoke_ns,
        [](const Acked* a, std::int64_t t) { return a->op->return_ns < t; });
    if (before == by_return.begin()) continue;
    const Acked& a = *highest[static_cast<std::size_t>(before - by_return.begin()) - 1];
    if (b.reply.revision < a.reply.revision ||
        (b.reply.wrote && b.reply.revision == a.reply.revision)) {
      violation("the " + name(b) + " was invoked after the " + name(a) + " returned, but its " +
                "revision is not " + (b.reply.wrote ? "above" : "at least") + " that");
      return false;
    }
  }
  return true;
}

void Simulation::final_checks() {
  const std::optional<Replay> replay = replay_log();
  if (!replay || !check_node_states(replay->store) || !check_watchers(replay->store)) return;
  // History ops are in invocation order, so a client's n-th op has seq n.
  // An op answered session_expired that the log shows never ran is left
  // out, as a refused call is (the checker could not cope with hundreds of
  // unknown writes); one that ran stays, unknown.
  const std::vector<HistoryOp> all = history_.ops();
  std::vector<HistoryOp> history;
  {
    std::unordered_map<std::uint64_t, std::uint64_t> seq_of;
    for (std::size_t i = 0; i < all.size(); ++i) {
      const std::uint64_t seq = ++seq_of[all[i].client];
      if (expired_ops_.contains(i) && !replay->runs.contains({all[i].client, seq})) continue;
      history.push_back(all[i]);
    }
  }
  if (!check_exactly_once(history, *replay) || !check_reply_revisions(all, *replay)) return;
  LinearizabilityResult lin = check_linearizable(history);
  if (lin.verdict != LinearizabilityVerdict::linearizable) {
    violation("history is not linearizable (key " + lin.key + "): " + lin.explanation);
  }
}

SimResult Simulation::run() {
  build();
  for (int c = 0; c < config_.clients; ++c) {
    SimClient cl;
    cl.id = config_.seed * 1000 + static_cast<ClientId>(c) + 1;
    cl.target = c % config_.nodes;
    cl.sticky = c % 2 == 1;
    clients_.push_back(cl);
    at(now_ + std::chrono::milliseconds(c), [this, c] { client_next(c); });
  }
  start_watchers();
  if (config_.nemesis) at(now_ + std::chrono::milliseconds(200), [this] { nemesis_step(); });
  if (config_.reconfig) at(now_ + std::chrono::milliseconds(300), [this] { admin_step(); });
  if (std::getenv("KVSIM_TRACE") != nullptr) {
    // Diagnosis: every N virtual ms, per node: applied, decided, held from,
    // forgotten below, the leader it follows, waiting requests, campaigns,
    // and its learner's view of each peer (decided below / held from).
    const int every = std::max(1, std::atoi(std::getenv("KVSIM_TRACE")));
    for (int t = every; t < config_.active_ms; t += every) {
      at(now_ + std::chrono::milliseconds(t), [this, t] {
        std::string line = "t=" + std::to_string(t);
        for (NodeId i = 0; i < nodes_.size(); ++i) {
          const SimNode& n = nodes_[i];
          if (!n.applier) continue;
          line += " | n" + std::to_string(i + 1) + " app " +
                  std::to_string(n.applier->applied_below()) + " dec " +
                  std::to_string(n.learner->decided_below()) + " held " +
                  std::to_string(n.learner->held_from()) + " fgt " +
                  std::to_string(n.learner->forget_below()) + " done " +
                  std::to_string(n.learner->done_below()) + " nxt " +
                  std::to_string(n.learner->next_deliver()) + " ldr n" +
                  std::to_string(n.applier->leader() + 1) + " wait " +
                  std::to_string(n.applier->waiting()) + " camp " +
                  std::to_string(n.proposer->campaigns()) +
                  (n.proposer->leading() ? " LEADS" : "") + " peers[";
          for (NodeId j = 0; j < nodes_.size(); ++j) {
            if (!n.learner->tracks(j)) continue;
            line += " " + std::to_string(n.learner->peer_decided_below(j)) + "/" +
                    std::to_string(n.learner->peer_forget_below(j));
          }
          line += "]";
        }
        std::fprintf(stderr, "%s\n", line.c_str());
      });
    }
  }
  if (config_.bug == PlantedBug::amnesiac_acceptor) {
    at(now_ + std::chrono::milliseconds(30), [this] { amnesia_step(); });
  }
  if (config_.crash_restarts || config_.bug == PlantedBug::reply_before_sync ||
      config_.bug == PlantedBug::restart_without_ballot_rule) {
    at(now_ + std::chrono::milliseconds(50), [this] { crash_restart_step(); });
  }
  // Not with membership changes: a rebuild in place (kvpaxosd --join) keeps
  // the id and asks the bootstrap members; a lost member is replaced under
  // a new id instead (the same_name scenario), and a one-node cluster has
  // no other node to take a vote floor from.
  if ((config_.frequent_rebuilds || config_.bug == PlantedBug::join_without_vote_floor) &&
      !config_.reconfig) {
    at(now_ + std::chrono::milliseconds(30), [this] { rebuild_step(); });
  }
  const Time active_end = start_ + std::chrono::milliseconds(config_.active_ms);
  if (config_.reconfig && config_.seed % 3 == 0) {
    at(active_end - std::chrono::milliseconds(150), [this] { mute_leader(); });
    at(active_end - std::chrono::milliseconds(1), [this] { lose_muted_leader(); });
  }
  at(active_end, [this] {
    active_ = false;
    heal();
  });
  const Time give_up = active_end + std::chrono::milliseconds(config_.settle_ms);
  while (result_.ok && !events_.empty()) {
    Event e = events_.top();
    events_.pop();
    now_ = e.t;
    if (now_ >= give_up) {
      std::string view;
      for (NodeId i = 0; i < nodes_.size(); ++i) {
        const SimNode& n = nodes_[i];
        if (!n.applier) continue;
        view += " n" + std::to_string(i + 1) +
                (n.crashed ? "(crashed)" : "") + ": applied " +
                std::to_string(n.applier->applied_below()) + " decided " +
                std::to_string(n.learner->decided_below()) + " forgotten " +
                std::to_string(n.learner->forget_below()) + ";";
      }
      int busy = 0;
      for (const SimClient& c : clients_) busy += c.busy ? 1 : 0;
      if (config_.reconfig) {
        view += " configurations:";
        for (const ConfigAt& entry : ref_history_) {
          view += " from " + std::to_string(entry.from) + " voters";
          for (NodeId v : entry.config.voters()) view += " n" + std::to_string(v + 1);
          view += ";";
        }
      }
      for (std::size_t w = 0; w < watchers_.size(); ++w) {
        view += " w" + std::to_string(w) + " at n" + std::to_string(watchers_[w].target + 1) +
                " saw up to revision " + std::to_string(watchers_[w].revision) + ";";
      }
      violation("live nodes did not converge within " + std::to_string(config_.settle_ms) +
                " ms of healing:" + view + " " + std::to_string(busy) + " clients waiting");
      break;
    }
    e.fn();
    // Check every 100 ms of quiet time whether the run is over. A removed
    // member may be retired by a snapshot install as well as by an Apply.
    if (config_.reconfig && !active_) retire_removed();
    if (!active_ && now_ >= active_end + std::chrono::milliseconds(100) && settled()) break;
  }
  result_.stats.virtual_ms = ms_since_start();
  result_.stats.instances = applied_log_.size();
  if (result_.ok) final_checks();
  result_.history = history_.ops();
  return result_;
}

}  // namespace

SimStats& SimStats::operator+=(const SimStats& o) {
  events += o.events;
  messages += o.messages;
  dropped += o.dropped;
  duplicated += o.duplicated;
  partitions += o.partitions;
  pauses += o.pauses;
  crashes += o.crashes;
  restarts += o.restarts;
  cluster_restarts += o.cluster_restarts;
  graceful_stops += o.graceful_stops;
  shutting_down_retries += o.shutting_down_retries;
  torn_tails += o.torn_tails;
  snapshots_saved += o.snapshots_saved;
  rebuilds += o.rebuilds;
  snapshots_installed += o.snapshots_installed;
  ops_ok += o.ops_ok;
  ops_unknown += o.ops_unknown;
  sessions_expired += o.sessions_expired;
  keys_deleted += o.keys_deleted;
  cas_succeeded += o.cas_succeeded;
  cas_failed += o.cas_failed;
  watch_events += o.watch_events;
  watch_failovers += o.watch_failovers;
  watch_compactions += o.watch_compactions;
  member_changes += o.member_changes;
  member_refusals += o.member_refusals;
  never_started += o.never_started;
  removed_stopped += o.removed_stopped;
  choices_checked += o.choices_checked;
  grown_to_five += o.grown_to_five;
  shrunk_to_three += o.shrunk_to_three;
  same_name_replacements += o.same_name_replacements;
  unstarted_removed += o.unstarted_removed;
  window_restarts += o.window_restarts;
  last_words_lost += o.last_words_lost;
  disjoint_replacements += o.disjoint_replacements;
  phase1_checked += o.phase1_checked;
  instances += o.instances;
  virtual_ms += o.virtual_ms;
  max_voters = std::max(max_voters, o.max_voters);
  started_nodes = std::max(started_nodes, o.started_nodes);
  return *this;
}

SimResult run_simulation(const SimConfig& config) { return Simulation(config).run(); }

std::string summary(const SimConfig& config, const SimResult& r) {
  std::ostringstream s;
  const std::uint64_t nodes =
      r.stats.started_nodes != 0 ? r.stats.started_nodes : static_cast<std::uint64_t>(config.nodes);
  s << "seed " << config.seed << " (" << nodes << (nodes == 1 ? " node" : " nodes") << "): "
    << (r.ok ? "ok" : "VIOLATION " + r.violation) << "; " << r.stats.ops_ok << " ops ok, "
    << r.stats.ops_unknown << " unknown, " << r.stats.instances << " instances, "
    << r.stats.messages << " peer messages (" << r.stats.dropped << " dropped, "
    << r.stats.duplicated << " duplicated), " << r.stats.partitions << " partitions, "
    << r.stats.pauses << " pauses, " << r.stats.crashes << " crashes, " << r.stats.restarts
    << " restarts (" << r.stats.cluster_restarts << " of the whole cluster, "
    << r.stats.graceful_stops << " after a step-down, sending " << r.stats.shutting_down_retries
    << " requests on, "
    << r.stats.torn_tails << " torn tails read), " << r.stats.rebuilds << " rebuilds, "
    << r.stats.snapshots_saved << " snapshots saved, "
    << r.stats.snapshots_installed << " snapshots installed, " << r.stats.sessions_expired
    << " sessions expired, " << r.stats.keys_deleted << " keys deleted, "
    << r.stats.cas_succeeded << " cases succeeded, " << r.stats.cas_failed << " failed, "
    << r.stats.watch_events << " watch events (" << r.stats.watch_failovers << " fail-overs, "
    << r.stats.watch_compactions << " compaction gaps), " << r.stats.choices_checked
    << " choices checked against their voters";
  if (config.reconfig) {
    s << ", " << r.stats.member_changes << " member changes (" << r.stats.member_refusals
      << " refused, " << r.stats.never_started << " added never started, "
      << r.stats.removed_stopped << " removed stopped, up to " << r.stats.max_voters
      << " voters; " << r.stats.grown_to_five << " grown 1 to 5, " << r.stats.shrunk_to_three
      << " shrunk 5 to 3, " << r.stats.same_name_replacements << " replaced under the same name, "
      << r.stats.unstarted_removed << " unstarted learners removed, " << r.stats.window_restarts
      << " cluster restarts inside a window, " << r.stats.disjoint_replacements
      << " disjoint replacements, " << r.stats.last_words_lost << " leaders lost with their last "
      << "decisions, " << r.stats.phase1_checked << " accepts checked for phase 1)";
  }
  s << ", " << r.stats.virtual_ms << " virtual ms";
  return s.str();
}

}  // namespace kvpaxos::sim
