// Simulation: a whole kvpaxos cluster in one thread, deterministically.
//
// Runs the sans-I/O logic of every node (acceptor, proposer, learner, applier,
// front door, peer link) against a virtual clock and a seeded network that
// drops, duplicates, delays, reorders and partitions peer messages; nodes are
// paused (as by SIGSTOP), crashed for good, crashed and restarted from their
// simulated disks (unsynced writes lost, sometimes a torn last record; the
// whole cluster at once too), and rebuilt: a node loses all its state
// (acceptor, log, applied data) and rejoins as kvpaxosd --join does, with a
// vote floor from every other node's JoinInfo. Each node's logic is built by
// kvpaxosd's own factory (actors/node) from what its disk holds, and its
// Writes are persisted, with a simulated fsync delay, before its messages go. Simulated clients behave like client/Client: one
// request outstanding, retry at the next node with the same seq, an overall
// deadline after which the outcome is unknown. Half of them stick to one node,
// as kvctl with one endpoint does, so calls into a minority end unknown. Each
// op touches one key: get, put, append, a delete of the key, or a
// compare-and-swap txn (value == expected ? put : get).
//
// Everything that happens is a function of the seed: the same SimConfig gives
// the same run, event for event (trace_hash() proves it), so a failing seed is
// a reproducible bug report.
//
// Checked after every event (first violation stops the run):
//   - no instance is decided with two values anywhere (every Decided message
//     and every Apply is compared with the first value seen for it);
//   - each node applies instances 0, 1, 2, ... in order, each with the value
//     decided for it, so every applied sequence is a prefix of one history;
//   - no learner counts a conflict;
//   - every logic's check_invariants() holds after each of its events;
//   - an acceptor's answers leave only once its records are synced.
// Checked at the end, after healing and a quiet period:
//   - every live node applied the whole log and holds the same state, equal to
//     a reference replay of the decided log (the exactly-once rule): keys,
//     values, each key's create/mod revision and version, the store revision;
//   - each acknowledged op's reply revision is the one the replay reached when
//     it ran, no two acknowledged writes share one, and an op invoked after
//     another returned has a revision at least as high (above, if a write);
//   - every acknowledged op was executed exactly once in that log, every
//     unknown one at most once, and a put's or append's argument never twice;
//   - the client history is linearizable (test/history's checker);
//   - every watcher received exactly the log's change events in its range,
//     in revision order, none twice, with no gap but those a compaction
//     cancel excused (the node really no longer held the revision), up to
//     the last revision.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "test/history/history.hpp"

namespace kvpaxos::sim {

// A bug planted on purpose, to prove the checks catch what they are for.
enum class PlantedBug {
  none,
  // One node's acceptor loses every promise and accepted value now and then,
  // as a node restarted without durability would.
  amnesiac_acceptor,
  // Node 0 is rebuilt (kvpaxosd --join) every 30 ms, but its acceptor gets
  // no vote floor: it votes at once in instances its lost self voted in.
  join_without_vote_floor,
  // Appliers run ops of clients whose session was evicted (seq > 1 with no
  // session) instead of answering session_expired: a retried or re-proposed
  // op that ran before the eviction runs again.
  execute_expired_sessions,
  // The runner sends an acceptor's replies before the sync of the records
  // behind them completes: a crash then loses promises already answered.
  reply_before_sync,
  // A restarted proposer does not start above the rounds its own acceptor
  // saw: it reuses ballots it already used, with other values.
  restart_without_ballot_rule,
  // Every applier's deletes remove keys without moving the store's
  // revision: the delete is answered with the revision of the write before
  // it, and every replica agrees on the wrong count.
  delete_keeps_revision,
  // Every node's WatchHub skips one event when a watch is created from a
  // revision it has already applied: a watcher resuming after a fail-over
  // misses the first change it asked for.
  watch_skips_event_on_resume,
  // Idle appliers never ask their acceptor what it accepted: a value chosen
  // whose Decided reached only a node lost since (crashed for good, removed)
  // stays unlearned by the live nodes while no request comes.
  no_accepted_probe,
  // With reconfig: a membership change governs from the instance after the
  // one that decided it (no alpha window), so instances a proposer started
  // under the old configuration are decided under two.
  no_window,
  // With reconfig: proposers count promises and acceptances from learners
  // as votes.
  count_non_voters,
  // With reconfig: a leader uses its range promise in the instances of a
  // new configuration when a majority of the old one's voters promised.
  stale_range_quorum,
  // With reconfig: every applier's ConfigState gives an added member the id
  // one past the highest current member's instead of next_member_id, so the
  // id of a removed member that had the highest one is handed out again
  // (its old votes and ballots would count for the newcomer).
  reused_id,
};

struct SimConfig {
  std::uint64_t seed = 1;
  int nodes = 3;
  int clients = 4;
  int keys = 3;
  // Virtual time during which clients start new ops and the nemesis acts.
  std::int64_t active_ms = 4000;
  // After healing: how long live nodes get to converge before that counts as
  // a liveness failure.
  std::int64_t settle_ms = 60000;
  // A client call without an answer by then ends with an unknown outcome.
  std::int64_t client_deadline_ms = 1500;
  bool nemesis = true;
  PlantedBug bug = PlantedBug::none;
  // Node 0 loses its whole state and is rebuilt with a vote floor (as
  // kvpaxosd --join does) every 30 ms while clients run: the control run for
  // join_without_vote_floor. The nemesis also rebuilds nodes now and then.
  // Neither with reconfig, which replaces a lost member under a new id.
  bool frequent_rebuilds = false;
  // Nodes crash and restart from their simulated disks every 40-250 ms
  // (one in ten times the whole cluster), besides the nemesis's own
  // crash-restarts.
  bool crash_restarts = false;
  // Proposers lead with a range promise (the default) or run basic Paxos.
  bool multi_paxos = true;
  // A partial partition while clients run: n1 and n2 cannot reach each other,
  // every other link works (n3 reaches both). Healed with everything else.
  bool partial_partition = false;
  // Sessions each applier keeps. 0: every fourth seed (seed % 4 == 2) keeps
  // 2, so that sessions are evicted while clients run, the others the
  // default; execute_expired_sessions keeps 2 in every seed.
  std::size_t max_sessions = 0;
  // Simulated watchers (one, or two in odd seeds): each watches every key or
  // one key's prefix from revision 1, fails over as client/WatchStream does,
  // and must receive exactly the log's changes in its range (final_checks).
  bool watchers = true;
  // The reconfiguration nemesis: a simulated kvctl changes the membership
  // every 150-450 ms while clients run, among every other fault: it adds
  // learners (one in six never starts; the others start empty and get a
  // snapshot), promotes caught-up ones, removes voters (the leader among
  // them, and a voter it crashes for good first), replaces a voter by a
  // learner, moves a member's endpoint, and sometimes sends two changes at
  // once (one must fail its epoch check). It keeps a live majority of the
  // voters, as kvctl's strict check does. Checked after every event, besides
  // the rest: at most one value is chosen per instance across all
  // configurations (from the acceptors' Accepted and the voters of that
  // instance's configuration, as the decided log defines them), each
  // Decided is backed by a majority of that instance's voters, every node
  // agrees with the log on each instance's configuration, no proposer runs
  // an instance whose configuration it cannot know, no member id is handed
  // out twice, and removed members stop and are not answered.
  //
  // Besides the random changes, each seed's nemesis runs scenarios (chosen
  // by the seed, counted in SimStats): a cluster that starts as one node
  // grows to three and five voters and shrinks back to three (every fourth
  // seed, and every seed of nodes = 1); a voter crashed for good, its data
  // dir lost, removed and replaced by a learner under its name, which must
  // get a fresh id; a never-started learner removed; the whole cluster
  // crashed and restarted from its disks while a change is inside its
  // alpha window; and a disjoint replacement of every voter, one replace at
  // a time, until no voter of the configuration it started from is left.
  bool reconfig = false;
  // With reconfig: every seed runs the disjoint replacement (else one seed
  // in four does).
  bool reconfig_disjoint = false;
};

struct SimStats {
  std::uint64_t events = 0;
  std::uint64_t messages = 0;
  std::uint64_t dropped = 0;
  std::uint64_t duplicated = 0;
  std::uint64_t partitions = 0;
  std::uint64_t pauses = 0;
  std::uint64_t crashes = 0;
  std::uint64_t restarts = 0;  // a node crashed and started again from its disk
  std::uint64_t cluster_restarts = 0;  // ... every node at once
  std::uint64_t graceful_stops = 0;    // ... after a StepDown (kvpaxosd on SIGTERM)
  std::uint64_t shutting_down_retries = 0;  // a client sent on at once by a stopping node
  std::uint64_t torn_tails = 0;  // restarts that cut a torn record off a log
  std::uint64_t snapshots_saved = 0;
  std::uint64_t rebuilds = 0;  // a node lost its state and rejoined (--join)
  std::uint64_t snapshots_installed = 0;
  std::uint64_t ops_ok = 0;
  std::uint64_t ops_unknown = 0;
  std::uint64_t sessions_expired = 0;  // replies session_expired a client got
  // Acknowledged ops of the data model: keys deletes removed, cases that put
  // and cases whose compare failed.
  std::uint64_t keys_deleted = 0;
  std::uint64_t cas_succeeded = 0;
  std::uint64_t cas_failed = 0;
  // Watchers: events delivered (each once, in order), watches created again
  // at another node, and gaps a node's compacted history excused.
  std::uint64_t watch_events = 0;
  std::uint64_t watch_failovers = 0;
  std::uint64_t watch_compactions = 0;
  // The reconfiguration nemesis: changes applied, refused (an epoch that
  // moved, a pending change), members added that never started, removed
  // members that stopped, instances whose choice was checked against their
  // configuration's voters, and the largest voter set.
  std::uint64_t member_changes = 0;
  std::uint64_t member_refusals = 0;
  std::uint64_t never_started = 0;
  std::uint64_t removed_stopped = 0;
  std::uint64_t choices_checked = 0;
  std::uint64_t max_voters = 0;
  // Scenarios of the reconfiguration nemesis (SimConfig::reconfig), each
  // counted when it completed: a one-node cluster grown to five voters, and
  // shrunk back to three; a removed member replaced under its own name (a
  // fresh id); a never-started learner removed; whole-cluster restarts while
  // a change was inside its alpha window; disjoint replacements of every
  // voter of a configuration; and the Accepts whose ballot's promises were
  // checked against a majority of their instance's voters.
  std::uint64_t grown_to_five = 0;
  std::uint64_t shrunk_to_three = 0;
  std::uint64_t same_name_replacements = 0;
  std::uint64_t unstarted_removed = 0;
  std::uint64_t window_restarts = 0;
  std::uint64_t disjoint_replacements = 0;
  // The leader lost for good at the end of the load with its last
  // decisions (its Decided frames dropped for the last 150 ms): counted
  // when it had decided more than any other node knew.
  std::uint64_t last_words_lost = 0;
  std::uint64_t phase1_checked = 0;
  // The cluster size the run started with (a growth seed starts with one).
  std::uint64_t started_nodes = 0;
  std::uint64_t instances = 0;  // decided log length at the end
  std::int64_t virtual_ms = 0;

  // Adds another run's counts: sums, but the largest max_voters and
  // started_nodes (totals over seeds).
  SimStats& operator+=(const SimStats& o);
};

struct SimResult {
  bool ok = true;
  std::string violation;  // the first one, with the virtual time it happened
  SimStats stats;
  std::uint64_t trace_hash = 0;  // of every event in order: same seed, same hash
  std::vector<HistoryOp> history;
};

SimResult run_simulation(const SimConfig& config);

// One line for logs: "seed 17: ok, 412 ops (3 unknown), 530 instances, ...".
std::string summary(const SimConfig& config, const SimResult& result);

}  // namespace kvpaxos::sim
