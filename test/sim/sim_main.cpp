// kvpaxos_sim: explore many seeds of the deterministic simulator, or replay one.
//
//   kvpaxos_sim --seeds 10000               # seeds 1..10000, 3 nodes
//   kvpaxos_sim --seed 4711 --nodes 5 -v    # replay one seed exactly
//
// Prints progress about once a second and, for every failing seed, the
// violation and the command that replays it. Exit 0 when every seed passed,
// 1 when one failed, 2 for usage errors.
#include <chrono>
#include <cstdio>
#include <algorithm>
#include <iostream>
#include <vector>

#include <CLI/CLI.hpp>

#include "sim/simulation.hpp"

int main(int argc, char** argv) {
  using namespace kvpaxos;
  CLI::App app{"Deterministic simulation of a kvpaxos cluster under faults"};
  sim::SimConfig base;
  std::uint64_t seeds = 1;
  std::string bug = "none";
  std::string history_dir;
  bool verbose = false;
  bool client_report = false;
  app.add_option("--seed", base.seed, "First seed (each run is a pure function of its seed)")
      ->capture_default_str();
  app.add_option("--seeds", seeds, "How many consecutive seeds to run")->capture_default_str()
      ->check(CLI::Range(std::uint64_t{1}, std::uint64_t{100'000'000}));
  app.add_option("--nodes", base.nodes, "Cluster size")->capture_default_str()
      ->check(CLI::Range(1, 9));
  app.add_option("--clients", base.clients, "Concurrent clients")->capture_default_str()
      ->check(CLI::Range(1, 64));
  app.add_option("--keys", base.keys, "Key space")->capture_default_str()->check(CLI::Range(1, 1000));
  app.add_option("--active-ms", base.active_ms, "Virtual ms of client load and faults per seed")
      ->capture_default_str()->check(CLI::Range(100, 3'600'000));
  app.add_flag("!--no-nemesis", base.nemesis, "Run without faults");
  app.add_flag("!--basic-paxos", base.multi_paxos,
               "Proposers run phase 1 in every instance (no Multi-Paxos leader)");
  app.add_option("--bug", bug,
                 "Plant a bug to see it caught: none | amnesiac-acceptor | join-without-vote-floor "
                 "| execute-expired-sessions | reply-before-sync | restart-without-ballot-rule "
                 "| delete-keeps-revision | watch-skips-event-on-resume | no-accepted-probe "
                 "| no-window | count-non-voters | stale-range-quorum | reused-id (the last four "
                 "with --reconfig)")
      ->capture_default_str()
      ->check(CLI::IsMember({"none", "amnesiac-acceptor", "join-without-vote-floor",
                             "execute-expired-sessions", "reply-before-sync",
                             "restart-without-ballot-rule", "delete-keeps-revision",
                             "watch-skips-event-on-resume", "no-accepted-probe", "no-window",
                             "count-non-voters",
                             "stale-range-quorum", "reused-id"}));
  app.add_option("--max-sessions", base.max_sessions,
                 "Sessions each applier keeps (0: 2 in every fourth seed, else the default)")
      ->capture_default_str();
  app.add_flag("--crash-restart", base.crash_restarts,
               "Crash nodes and restart them from their simulated disks every 40-250 ms "
               "(one in ten: the whole cluster)");
  app.add_flag("--frequent-rebuilds", base.frequent_rebuilds,
               "Rebuild node 0 from nothing (as kvpaxosd --join) every 30 virtual ms");
  app.add_option("--history-dir", history_dir,
                 "Write each failing seed's client history here as seed-N.jsonl (see lincheck)");
  app.add_flag("--partial-partition", base.partial_partition,
               "While clients run, n1 and n2 cannot reach each other (n3 reaches both)");
  app.add_option("--client-deadline-ms", base.client_deadline_ms,
                 "A call unanswered this long ends with an unknown outcome")
      ->capture_default_str()->check(CLI::Range(100, 3'600'000));
  app.add_flag("--client-report", client_report,
               "Per seed and node: how the clients sticking to that node fared (ops answered, "
               "ops that ran out of their deadline, slowest answer)");
  app.add_flag("!--no-watchers", base.watchers,
               "Run without the simulated watchers (one or two per seed, checked against the log)");
  app.add_flag("--reconfig", base.reconfig,
               "Change the membership while clients run: add learners (some never start), "
               "promote, remove (the leader too), replace and move members, every 150-450 ms");
  app.add_flag("--reconfig-disjoint", base.reconfig_disjoint,
               "With --reconfig: every seed replaces each voter it started with, one replace at "
               "a time, until no original voter is left (else one seed in four does)");
  app.add_flag("-v,--verbose", verbose, "One summary line per seed");
  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    return app.exit(e) == 0 ? 0 : 2;
  }
  if (base.reconfig && (base.frequent_rebuilds || bug == "join-without-vote-floor")) {
    std::cerr << "--frequent-rebuilds and --bug join-without-vote-floor rebuild node 0 in place "
                 "(kvpaxosd --join, same id), which --reconfig does not model: it replaces a lost "
                 "member under a new id. Drop one of them.\n";
    return 2;
  }
  if (base.reconfig_disjoint && !base.reconfig) {
    std::cerr << "--reconfig-disjoint needs --reconfig\n";
    return 2;
  }
  if (bug == "amnesiac-acceptor") base.bug = sim::PlantedBug::amnesiac_acceptor;
  if (bug == "join-without-vote-floor") base.bug = sim::PlantedBug::join_without_vote_floor;
  if (bug == "execute-expired-sessions") base.bug = sim::PlantedBug::execute_expired_sessions;
  if (bug == "reply-before-sync") base.bug = sim::PlantedBug::reply_before_sync;
  if (bug == "restart-without-ballot-rule") base.bug = sim::PlantedBug::restart_without_ballot_rule;
  if (bug == "delete-keeps-revision") base.bug = sim::PlantedBug::delete_keeps_revision;
  if (bug == "watch-skips-event-on-resume") {
    base.bug = sim::PlantedBug::watch_skips_event_on_resume;
  }
  if (bug == "no-accepted-probe") base.bug = sim::PlantedBug::no_accepted_probe;
  if (bug == "no-window") base.bug = sim::PlantedBug::no_window;
  if (bug == "count-non-voters") base.bug = sim::PlantedBug::count_non_voters;
  if (bug == "stale-range-quorum") base.bug = sim::PlantedBug::stale_range_quorum;
  if (bug == "reused-id") base.bug = sim::PlantedBug::reused_id;


  std::uint64_t failed = 0, ops = 0, unknown = 0, faults = 0, messages = 0;
  sim::SimStats reconfig;  // --reconfig: the membership stats summed over the seeds
  // --client-report: per node, over the sticky clients of that node.
  struct Sticky {
    std::uint64_t ok = 0, unknown = 0, starved_seeds = 0;
    std::int64_t max_ns = 0;
    std::vector<std::int64_t> latencies_ns;
  };
  std::vector<Sticky> sticky(static_cast<std::size_t>(base.nodes));
  const auto started = std::chrono::steady_clock::now();
  auto last_progress = started;
  for (std::uint64_t i = 0; i < seeds; ++i) {
    sim::SimConfig config = base;
    config.seed = base.seed + i;
    const sim::SimResult r = sim::run_simulation(config);
    ops += r.stats.ops_ok + r.stats.ops_unknown;
    unknown += r.stats.ops_unknown;
    faults += r.stats.partitions + r.stats.pauses + r.stats.crashes + r.stats.rebuilds;
    messages += r.stats.messages;
    reconfig += r.stats;
    if (verbose || !r.ok) std::cout << sim::summary(config, r) << "\n";
    if (client_report) {
      // The simulator's client c has id seed*1000 + c + 1, talks to node
      // c % nodes, and sticks to it when c is odd.
      std::vector<Sticky> here(static_cast<std::size_t>(config.nodes));
      for (const HistoryOp& h : r.history) {
        const std::uint64_t c = (h.client - 1) % 1000;
        if (c % 2 == 0) continue;
        Sticky& s = here[c % static_cast<std::uint64_t>(config.nodes)];
        if (h.outcome == HistoryOutcome::ok) {
          ++s.ok;
          const std::int64_t ns = h.return_ns - h.invoke_ns;
          s.max_ns = std::max(s.max_ns, ns);
          s.latencies_ns.push_back(ns);
        } else {
          ++s.unknown;
        }
      }
      std::cout << "seed " << config.seed << " sticky clients:";
      for (std::size_t n = 0; n < here.size(); ++n) {
        const Sticky& s = here[n];
        if (s.ok + s.unknown == 0) continue;
        std::cout << " n" << n + 1 << " ok " << s.ok << " unknown " << s.unknown << " max "
                  << s.max_ns / 1'000'000 << " ms;";
        Sticky& all = sticky[n];
        all.ok += s.ok;
        all.unknown += s.unknown;
        all.starved_seeds += s.unknown > 0 ? 1 : 0;
        all.max_ns = std::max(all.max_ns, s.max_ns);
        all.latencies_ns.insert(all.latencies_ns.end(), s.latencies_ns.begin(),
                                s.latencies_ns.end());
      }
      std::cout << "\n";
    }
    if (!r.ok) {
      ++failed;
      std::cout << "  replay: kvpaxos_sim --seed " << config.seed << " --nodes " << config.nodes
                << " --clients " << config.clients << " --keys " << config.keys
                << " --active-ms " << config.active_ms << (config.nemesis ? "" : " --no-nemesis")
                << (config.frequent_rebuilds ? " --frequent-rebuilds" : "")
                << (config.crash_restarts ? " --crash-restart" : "")
                << (config.multi_paxos ? "" : " --basic-paxos")
                << (config.partial_partition ? " --partial-partition" : "")
                << (config.reconfig ? " --reconfig" : "")
                << (config.reconfig_disjoint ? " --reconfig-disjoint" : "")
                << (config.watchers ? "" : " --no-watchers")
                << (config.max_sessions > 0 ? " --max-sessions " + std::to_string(config.max_sessions) : "")
                << " --bug " << bug << " -v\n";
      if (!history_dir.empty()) {
        const std::string path = history_dir + "/seed-" + std::to_string(config.seed) + ".jsonl";
        std::string error;
        if (write_jsonl(path, r.history, &error)) {
          std::cout << "  history: " << path << "\n";
        } else {
          std::cout << "  could not write the history: " << error << "\n";
        }
      }
    }
    const auto now = std::chrono::steady_clock::now();
    if (now - last_progress >= std::chrono::seconds(1)) {
      last_progress = now;
      std::cerr << "[" << i + 1 << "/" << seeds << " seeds] " << failed << " failed, " << ops
                << " ops checked\n";
    }
  }
  const double secs = std::chrono::duration<double>(std::chrono::steady_clock::now() - started).count();
  std::cout << seeds << " seeds (" << base.seed << ".." << base.seed + seeds - 1 << ", "
            << base.nodes << " nodes): " << failed << " failed; " << ops << " client ops checked ("
            << unknown << " with unknown outcome), " << faults << " faults injected, " << messages
            << " peer messages; " << secs << " s\n";
  if (base.reconfig) {
    const sim::SimStats& t = reconfig;
    std::cout << "membership: " << t.member_changes << " changes (" << t.member_refusals
              << " refused), " << t.never_started << " learners never started, "
              << t.unstarted_removed << " unstarted learners removed, " << t.removed_stopped
              << " removed members stopped, up to " << t.max_voters << " voters; "
              << t.grown_to_five << " grown 1 to 5, " << t.shrunk_to_three << " shrunk 5 to 3, "
              << t.same_name_replacements << " replaced under the same name, "
              << t.disjoint_replacements << " disjoint replacements, " << t.last_words_lost
              << " leaders lost with their last decisions, " << t.window_restarts
              << " cluster restarts inside a window (" << t.cluster_restarts
              << " cluster restarts, " << t.restarts << " node restarts in all); "
              << t.choices_checked << " choices and " << t.phase1_checked
              << " accepts checked against their instance's voters\n";
  }
  if (client_report) {
    for (std::size_t n = 0; n < sticky.size(); ++n) {
      Sticky& s = sticky[n];
      if (s.ok + s.unknown == 0) continue;
      std::sort(s.latencies_ns.begin(), s.latencies_ns.end());
      auto pct = [&s](double q) -> std::int64_t {
        if (s.latencies_ns.empty()) return 0;
        return s.latencies_ns[static_cast<std::size_t>(q * static_cast<double>(s.latencies_ns.size() - 1))] /
               1'000'000;
      };
      std::cout << "sticky clients of n" << n + 1 << ": " << s.starved_seeds << " of " << seeds
                << " seeds had an op run out of its deadline; " << s.ok << " ops ok, " << s.unknown
                << " unknown; latency p50 " << pct(0.5) << " ms, p99 " << pct(0.99)
                << " ms, max " << s.max_ns / 1'000'000 << " ms; "
                << std::count_if(s.latencies_ns.begin(), s.latencies_ns.end(),
                                 [](std::int64_t ns) { return ns > 1'000'000'000; })
                << " ops took over 1 s\n";
    }
  }
  return failed == 0 ? 0 : 1;
}
