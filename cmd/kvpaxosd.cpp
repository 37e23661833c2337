// kvpaxosd: one kvpaxos node.
//
//   kvpaxosd --name n1 --cluster n1=127.0.0.1:7101,n2=127.0.0.1:7102,n3=127.0.0.1:7103
//            --client-addr 127.0.0.1:7201 [--data-dir DIR [--first-start | --join]]
//            [--pipeline N] [--basic-paxos] [--snapshot-every N] [--fault-injection] [--log-level LEVEL]
//            [--peer-keys DIR --client-key FILE [--client-keys DIR] | --insecure]
//
// Secure by default: without keys every address must be loopback, unless
// --insecure is given (docs/security.md).
// An empty --data-dir needs --first-start (a new cluster) or --join (a node
// that lost its data dir); see docs/architecture.md, "Durability".
// Exit status: 0 after SIGTERM/SIGINT, 2 for bad flags, an address in use or
// a data dir that must not be used as it is, 1 for any other start-up failure.
#include <malloc.h>
#include <unistd.h>

#include <csignal>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <iterator>
#include <random>
#include <thread>

#include <CLI/CLI.hpp>

#include "actors/core/cluster_config.hpp"
#include "actors/runtime/logger.hpp"
#include "actors/runtime/node.hpp"
#include "actors/security/transport_security.hpp"
#include "actors/storage/segmented_log.hpp"

namespace {

using namespace kvpaxos;

constexpr int kExitUsage = 2;

struct Flags {
  std::string name;
  std::string cluster;
  std::string client_addr;
  std::string data_dir;
  std::string log_level = "info";
  // The flags that are NodeConfig fields set them here, from its defaults.
  NodeConfig node;
  bool first_start = false;
  bool join = false;
  int join_timeout_s = 60;
  std::string peer_keys;
  std::string client_key;
  std::string client_keys;
  bool insecure = false;
  int watch_progress_ms = 2000;
};

[[noreturn]] void usage_error(const std::string& message) {
  std::cerr << "kvpaxosd: " << message << " (see kvpaxosd --help)\n";
  std::exit(kExitUsage);
}

enum class DirState {
  fresh,  // no marker: never served (or a first start that crashed before serving)
  node,   // this node's state
  lost,   // a marker, but no acceptor log: the promises are gone
};

DirState inspect_data_dir(const std::string& dir) {
  namespace fs = std::filesystem;
  std::error_code ec;
  if (!fs::exists(fs::path(dir) / "kvpaxos-node", ec)) return DirState::fresh;
  for (const auto& e : fs::directory_iterator(fs::path(dir) / "acceptor", ec)) {
    const std::string name = e.path().filename().string();
    if (name.rfind("acceptor-", 0) == 0 && e.path().extension() == ".log") return DirState::node;
  }
  return DirState::lost;
}

// A data dir belongs to one node of one cluster: its acceptor promises are
// only valid there. The marker file records whose it is; a restart with the
// same name and cluster recovers from it, anything else is refused.
Result<bool> claim_data_dir(const std::string& dir, const std::string& name,
                            const std::string& cluster) {
  namespace fs = std::filesystem;
  std::error_code ec;
  fs::create_directories(dir, ec);
  if (ec) return Error{"cannot create --data-dir " + dir + ": " + ec.message()};
  const fs::path marker = fs::path(dir) / "kvpaxos-node";
  const std::string identity = "name=" + name + "\ncluster=" + cluster + "\n";
  if (fs::exists(marker)) {
    std::ifstream in(marker);
    const std::string found((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
    if (found == identity) return true;
    return Error{"--data-dir " + dir + " belongs to another node or cluster (" + marker.string() +
                 " says: " + found.substr(0, found.find('\n')) + "); give this node its own "
                 "data dir, or start it with the --name and --cluster it had"};
  }
  {
    FILE* out = std::fopen((marker.string() + ".tmp").c_str(), "w");
    const bool written = out != nullptr && std::fputs(identity.c_str(), out) >= 0 &&
                         std::fflush(out) == 0 && ::fsync(fileno(out)) == 0;
    if (out != nullptr) std::fclose(out);
    if (!written) return Error{"cannot write " + marker.string() + ".tmp"};
  }
  fs::rename(marker.string() + ".tmp", marker, ec);
  if (ec) return Error{"cannot write " + marker.string() + ": " + ec.message()};
  Result<bool> synced = sync_directory(dir);
  if (!synced.ok()) return synced;
  return true;
}

// "127.0.0.1:7101", "localhost:7101", "[::1]:7101": nothing off this host
// can reach it, so plain tcp there exposes nothing.
bool is_loopback(const std::string& host_port) {
  const std::string host = host_port.substr(0, host_port.rfind(':'));
  return host.rfind("127.", 0) == 0 || host == "localhost" || host == "[::1]" || host == "::1";
}

// Keys, or the reason there are none (loopback only, or --insecure).
std::shared_ptr<const TransportSecurity> build_security(const Flags& f, const NodeConfig& config) {
  const bool keyed = !f.peer_keys.empty() || !f.client_key.empty();
  if (keyed && (f.peer_keys.empty() || f.client_key.empty())) {
    usage_error("--peer-keys and --client-key go together: every tcp link is encrypted or none is");
  }
  if (!f.client_keys.empty() && !keyed) usage_error("--client-keys needs --peer-keys and --client-key");
  if (keyed && f.insecure) usage_error("--insecure and key flags exclude each other");
  if (!keyed) {
    std::string exposed;
    for (const Member& m : config.members) {
      const std::string addr = m.endpoint.substr(m.endpoint.find("://") + 3);
      if (!is_loopback(addr)) exposed += (exposed.empty() ? "" : ", ") + addr;
    }
    if (!is_loopback(f.client_addr)) exposed += (exposed.empty() ? "" : ", ") + f.client_addr;
    if (!exposed.empty() && !f.insecure) {
      usage_error("no keys, but " + exposed + " can be reached from other hosts; give --peer-keys "
                  "DIR and --client-key FILE (kvctl keygen makes them; see docs/security.md), or "
                  "--insecure to run unencrypted and unauthenticated on a network you trust");
    }
    if (f.insecure) {
      log::warn(f.name + " --insecure: peer and client links are plain tcp; anyone who reaches " +
                (exposed.empty() ? std::string("these ports") : exposed) +
                " can read and write every key and disrupt the cluster");
    }
    return nullptr;
  }
  std::vector<std::string> names;
  for (const Member& m : config.members) names.push_back(m.name);
  Result<TransportSecurity> loaded =
      load_transport_security(names, config.self, f.peer_keys, f.client_key, f.client_keys);
  if (!loaded.ok()) usage_error(loaded.error());
  if (f.client_keys.empty()) {
    log::warn(f.name + " client port: any client that knows the cluster's client public key may "
              "connect (encrypted, not authorised); give --client-keys DIR to allow only the "
              "clients whose keys it holds");
  }
  return std::make_shared<const TransportSecurity>(std::move(loaded.value()));
}

NodeConfig build_config(const Flags& f) {
  Result<std::vector<Member>> members = parse_cluster(f.cluster);
  if (!members.ok()) usage_error(members.error());
  Result<NodeId> self = find_member(members.value(), f.name);
  if (!self.ok()) usage_error(self.error());
  Result<std::string> client = tcp_endpoint(f.client_addr);
  if (!client.ok()) usage_error("--client-addr " + client.error());
  for (const Member& m : members.value()) {
    if (m.endpoint == client.value()) {
      usage_error("--client-addr " + f.client_addr + " is also the peer address of node " + m.name);
    }
  }
  NodeConfig config = f.node;
  config.members = std::move(members.value());
  config.self = self.value();
  config.client_endpoint = std::move(client.value());
  config.inproc_namespace = "kvpaxosd-" + f.name;
  config.seed = std::random_device{}();
  config.watch_progress_interval = std::chrono::milliseconds(f.watch_progress_ms);
  if (Result<bool> valid = config.validate(); !valid.ok()) usage_error(valid.error());
  return config;
}

// --join: learn from every other node how far the log has gone, then create
// the acceptor state with that vote floor (durably) before anything else. A
// crash part-way leaves no marker file, so the next --join starts over.
Result<bool> rebuild_data_dir(zmq::context_t& ctx, NodeConfig& config, const Flags& f) {
  namespace fs = std::filesystem;
  std::error_code ec;
  for (const char* leftover : {"kvpaxos-node", "acceptor", "decided", "snapshot", "snapshot.tmp"}) {
    fs::remove_all(fs::path(f.data_dir) / leftover, ec);
    if (ec) return Error{"cannot clear " + (fs::path(f.data_dir) / leftover).string() + ": " + ec.message()};
  }
  fs::create_directories(f.data_dir, ec);
  if (ec) return Error{"cannot create --data-dir " + f.data_dir + ": " + ec.message()};
  log::info(f.name + " --join: asking every other node how far the log has gone");
  Result<JoinBarrier> barrier = gather_join_barrier(
      ctx, config, std::chrono::seconds(f.join_timeout_s),
      [&](const std::string& line) { log::info(f.name + " --join: " + line); });
  if (!barrier.ok()) return Error{barrier.error()};
  Result<bool> written = write_vote_floor(f.data_dir, barrier->vote_floor, barrier->max_round);
  if (!written.ok()) return written;
  Result<bool> claimed = claim_data_dir(f.data_dir, f.name, f.cluster);
  if (!claimed.ok()) return claimed;
  config.initial_round = barrier->max_round;
  log::info(f.name + " --join: will not vote in instances below " +
            std::to_string(barrier->vote_floor) + " (its lost data dir may have voted there); "
            "learning the state from its peers");
  return true;
}

// Waits for SIGTERM or SIGINT. Meanwhile, once a second, hands the memory
// the actors freed back to the system: the allocator keeps large blocks for
// reuse (see Node), so a burst of large values does not stay resident.
int wait_for_signal() {
  sigset_t signals;
  sigemptyset(&signals);
  sigaddset(&signals, SIGTERM);
  sigaddset(&signals, SIGINT);
  const timespec second{1, 0};
  for (;;) {
    const int received = sigtimedwait(&signals, nullptr, &second);
    if (received > 0) return received;
    malloc_trim(0);
  }
}

}  // namespace

int main(int argc, char** argv) {
  Flags f;
  CLI::App app{"kvpaxosd: one node of a kvpaxos replicated key/value store"};
  app.add_option("--name", f.name, "This node's name; must appear in --cluster")->required();
  app.add_option("--cluster", f.cluster,
                 "Every node of the cluster as NAME=HOST:PORT,... (peer addresses, same order "
                 "and content on every node)")
      ->required();
  app.add_option("--client-addr", f.client_addr,
                 "HOST:PORT where this node accepts clients (kvctl), e.g. 127.0.0.1:7201")
      ->required();
  CLI::Option* data_dir = app.add_option("--data-dir", f.data_dir,
                 "Directory for this node's durable state (acceptor log, snapshots). A node "
                 "restarted with the same --data-dir, --name and --cluster recovers every "
                 "promise and applied write. Without it, state lives in memory only");
  app.add_flag("!--basic-paxos", f.node.proposer_options.multi_paxos,
               "Run phase 1 in every log instance instead of leading with one range "
               "promise (Multi-Paxos); for comparison");
  app.add_option("--pipeline", f.node.pipeline,
                 "Log instances this node keeps in flight at once (a second one only behind a "
                 "full batch of 1024 ops or 1 MiB); client requests arriving meanwhile are "
                 "batched into the next one; 1 to " + std::to_string(NodeConfig::kMaxPipeline))
      ->capture_default_str();
  app.add_option("--snapshot-every", f.node.snapshot_every,
                 "With --data-dir: write a snapshot every this many applied log instances "
                 "(also after max(64 MiB, the state size) applied and after 2 s idle); log "
                 "instances below what a majority of nodes has snapshotted are forgotten")
      ->capture_default_str();
  app.add_option("--watch-history-revisions", f.node.watch_history_revisions,
                 "Changes kept for watches that start at an earlier revision or resume after a "
                 "fail-over; a watch from before the oldest kept gets 'compacted'")
      ->capture_default_str()->check(CLI::Range(std::size_t{1}, std::size_t{1} << 30));
  app.add_option("--watch-history-bytes", f.node.watch_history_bytes,
                 "At most this many bytes of keys and values in that history")
      ->capture_default_str()->check(CLI::Range(std::size_t{1}, std::size_t{1} << 40));
  app.add_option("--watch-progress-ms", f.watch_progress_ms,
                 "An idle watch hears the current revision this often (milliseconds), so its "
                 "client can tell a quiet key from a dead stream")
      ->capture_default_str()->check(CLI::Range(10, 3'600'000));
  app.add_flag("--first-start", f.first_start,
               "The first start of a new cluster: needed with an empty --data-dir. Waits until "
               "a majority of the nodes is up and refuses if any already has a log. Never use "
               "it for a node that lost its data dir (use --join): it would vote without the "
               "promises it made");
  CLI::Option* join = app.add_flag(
      "--join", f.join,
      "Rebuild this node after its --data-dir was lost: ask every other node (all must be up) "
      "how far the log has gone, never vote in instances below that (the lost data dir may have "
      "voted there), and learn the state from a peer's snapshot and the log");
  join->excludes("--first-start");
  app.add_option("--join-timeout", f.join_timeout_s,
                 "With --join: seconds to wait for every other node to answer; with "
                 "--first-start: for a majority of the nodes to be up")
      ->capture_default_str()
      ->check(CLI::Range(1, 3600));
  app.add_flag("--fault-injection", f.node.fault_injection,
               "Accept 'kvctl fault' commands (partitions, message drops) for tests");
  app.add_option("--log-level", f.log_level, "error, warn, info or debug")
      ->check(CLI::IsMember({"error", "warn", "info", "debug"}));
  app.add_option("--peer-keys", f.peer_keys,
                 "Directory of CURVE keys for the peer port: NAME.key of every node in --cluster "
                 "and this node's NAME.key_secret (kvctl keygen makes them). Only those node keys "
                 "may connect; a further NAME.OTHER.key is accepted from node NAME too (key "
                 "rotation)");
  app.add_option("--client-key", f.client_key,
                 "The .key_secret file the client port presents; the same on every node, so "
                 "clients pin one public key for the cluster");
  app.add_option("--client-keys", f.client_keys,
                 "Directory of the public keys (*.key) of the clients allowed to connect; without "
                 "it any client that knows the cluster's client public key may connect");
  app.add_flag("--insecure", f.insecure,
               "Allow plain, unauthenticated tcp on addresses other hosts can reach (without "
               "keys, kvpaxosd otherwise refuses any non-loopback address)");
  try {
    app.parse(argc, argv);
  } catch (const CLI::CallForHelp& e) {
    return app.exit(e);
  } catch (const CLI::ParseError& e) {
    usage_error(e.what());
  }

  if (data_dir->count() > 0 && f.data_dir.empty()) {
    usage_error("--data-dir is empty; name a directory, or leave the flag out to keep state in "
                "memory only");
  }
  if (f.join && f.data_dir.empty()) usage_error("--join needs the --data-dir to rebuild into");
  log::Level level = log::Level::info;
  log::parse_level(f.log_level, level);
  log::set_level(level);
  NodeConfig config = build_config(f);
  config.security = build_security(f, config);
  // Signals go to sigwait here, never to an actor thread.
  sigset_t signals;
  sigemptyset(&signals);
  sigaddset(&signals, SIGTERM);
  sigaddset(&signals, SIGINT);
  pthread_sigmask(SIG_BLOCK, &signals, nullptr);
  zmq::context_t ctx(1);
  const DirState state = f.data_dir.empty() ? DirState::node : inspect_data_dir(f.data_dir);
  const bool fresh = state != DirState::node;
  if (state == DirState::lost) {
    // Whose marker is it? Another node's data dir is refused as such.
    Result<bool> mine = claim_data_dir(f.data_dir, f.name, f.cluster);
    if (!mine.ok()) {
      std::cerr << "kvpaxosd: " << mine.error() << "\n";
      return kExitUsage;
    }
  }
  if (f.join) {
    if (!fresh) {
      std::cerr << "kvpaxosd: --join rebuilds a node whose data dir was lost, but " << f.data_dir
                << " holds this node's acceptor log; restart without --join\n";
      return kExitUsage;
    }
    if (config.members.size() < 3) {
      usage_error("--join needs a cluster of at least 3 nodes: with " +
                  std::to_string(config.members.size()) + ", an instance the lost node voted in "
                  "could never be decided again");
    }
    Result<bool> joined = rebuild_data_dir(ctx, config, f);
    if (!joined.ok()) {
      std::cerr << "kvpaxosd: --join: " << joined.error() << "\n";
      return 1;
    }
  } else if (state == DirState::lost) {
    std::cerr << "kvpaxosd: " << f.data_dir << "/kvpaxos-node says this node ran before, but "
              << "its acceptor log (" << f.data_dir << "/acceptor) is gone, and with it the "
              << "promises it made; rebuild it with --join (every other node must be up)\n";
    return kExitUsage;
  } else if (state == DirState::fresh) {
    // Fail closed: an empty data dir is either a new cluster (--first-start)
    // or a node that lost its disk, which must not vote as if it never had.
    if (!f.first_start) {
      std::cerr << "kvpaxosd: --data-dir " << f.data_dir << " holds no node state; start a new "
                << "cluster with --first-start on each node (the first time only), or rebuild "
                << "a node that lost its data dir with --join\n";
      return kExitUsage;
    }
    if (config.members.size() > 1) {
      Result<PeerSurvey> survey = survey_peers(
          ctx, config, std::chrono::seconds(f.join_timeout_s),
          [&](const std::string& line) { log::info(f.name + " --first-start: " + line); });
      if (!survey.ok()) {
        std::cerr << "kvpaxosd: " << survey.error() << "\n";
        return kExitUsage;
      }
      if (survey->furthest_decided > 0) {
        std::cerr << "kvpaxosd: --first-start, but the cluster already has a log ("
                  << survey->furthest_name << " is at instance " << survey->furthest_decided
                  << "); if " << f.name << " lost its data dir, rebuild it with --join "
                  << "(every other node must be up)\n";
        return kExitUsage;
      }
      if (survey->heard < survey->needed) {
        std::cerr << "kvpaxosd: --first-start: heard " << survey->heard << " of the "
                  << config.members.size() - 1 << " other nodes in " << f.join_timeout_s
                  << "s; a new cluster starts once a majority of its nodes is up (start "
                  << survey->needed << " of the others, each with --first-start)\n";
        return 1;
      }
    }
    // The acceptor log exists before the marker: a marker without one means
    // the log was lost.
    Result<bool> created = write_vote_floor(f.data_dir, 0, 0);
    if (!created.ok()) {
      std::cerr << "kvpaxosd: " << created.error() << "\n";
      return 1;
    }
  }
  if (!f.data_dir.empty()) {
    Result<bool> claimed = claim_data_dir(f.data_dir, f.name, f.cluster);
    if (!claimed.ok()) {
      std::cerr << "kvpaxosd: " << claimed.error() << "\n";
      return kExitUsage;
    }
    config.data_dir = f.data_dir;
  }

  Result<std::unique_ptr<Node>> node = Node::start(ctx, config);
  // The survey's socket may hold the peer port a moment after closing.
  for (int i = 0; fresh && !node.ok() && i < 20; ++i) {
    if (node.error_kind() != ErrorKind::address_in_use) break;
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
    node = Node::start(ctx, config);
  }
  if (!node.ok()) {
    std::cerr << "kvpaxosd: " << node.error() << "\n";
    return kExitUsage;
  }
  log::info(f.name + " serving clients on " + config.client_endpoint + ", peers on " +
            config.members[config.self].endpoint + " (" + std::to_string(config.members.size()) +
            "-node cluster" + (config.fault_injection ? ", fault injection on" : "") + ")");
  const int sig = wait_for_signal();
  log::info(f.name + " stopping on signal " + std::to_string(sig));
  node.value().reset();
  ctx.close();
  return 0;
}
