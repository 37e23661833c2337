// kvpaxosd: one kvpaxos node.
//
//   kvpaxosd --name n1 --cluster n1=127.0.0.1:7101,n2=127.0.0.1:7102,n3=127.0.0.1:7103
//            --client-addr 127.0.0.1:7201 [--listen-peer-addr IP:PORT] [--listen-client-addr IP:PORT]
//            [--data-dir DIR
//            [--initial-cluster-state new|existing | --first-start | --join]] [--cluster-token T]
//            [--pipeline N] [--basic-paxos] [--snapshot-every N] [--fault-injection] [--log-level LEVEL]
//            [--log-format text|json]
//            [--peer-keys DIR --client-key FILE [--client-keys DIR] [--admin-keys DIR] | --insecure]
//            [--config-file FILE.toml] [--dump-config]   (every flag also as KVPAXOS_FLAG_NAME)
//
//   kvpaxosd restore FILE --data-dir DIR --name n1 --cluster ... [--cluster-token T]
//            seeds DIR for a node of a NEW cluster from a kvctl snapshot save file
//            (then start every node as usual, without --initial-cluster-state).
//
// Secure by default: without keys every address must be loopback, unless
// --insecure is given (docs/security.md).
// An empty --data-dir needs --initial-cluster-state new (alias --first-start:
// a new cluster), existing (a member just added with kvctl member add) or
// --join (a node that lost its data dir); see docs/architecture.md,
// "Durability" and "Membership".
// Under systemd (Type=notify, deploy/systemd/) it reports READY=1 once its
// data dir is recovered and its ports are bound, and STOPPING=1 on a signal.
// Exit status: 0 after SIGTERM/SIGINT, 2 for bad flags, an address in use or
// a data dir that must not be used as it is, 4 once the node learned it was
// removed from the cluster (it leaves a tombstone in its data dir), 1 for any
// other start-up failure.
#include <malloc.h>
#include <unistd.h>

#include <algorithm>
#include <csignal>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <iterator>
#include <map>
#include <optional>
#include <random>
#include <string_view>
#include <thread>

#include <CLI/CLI.hpp>

#include "actors/core/cluster_config.hpp"
#include "actors/kv/config_state.hpp"
#include "actors/kv/snapshot_record.hpp"
#include "actors/runtime/listen_address.hpp"
#include "actors/runtime/logger.hpp"
#include "actors/runtime/node.hpp"
#include "actors/runtime/sd_notify.hpp"
#include "actors/security/transport_security.hpp"
#include "actors/storage/backup_file.hpp"
#include "actors/storage/segmented_log.hpp"
#include "cmd/flag_sources.hpp"
#include "kvpaxos_version.hpp"

namespace {

using namespace kvpaxos;

constexpr int kExitUsage = 2;
constexpr int kExitRemoved = 4;
constexpr const char* kMarkerFile = "kvpaxos-node";
constexpr const char* kContactFile = "member-contact";
constexpr const char* kTombstoneFile = "kvpaxos-removed";
// How long a stopping node keeps running after it stepped down.
constexpr auto kStepDownGrace = std::chrono::milliseconds(300);

struct Flags {
  std::string name;
  std::string cluster;
  std::string client_addr;
  std::string listen_peer_addr;
  std::string listen_client_addr;
  std::string metrics_addr;  // empty: no metrics endpoint
  std::string data_dir;
  std::string log_level = "info";
  std::string log_format = "text";
  // The flags that are NodeConfig fields set them here, from its defaults.
  NodeConfig node;
  bool first_start = false;
  std::string initial_cluster_state;  // new | existing
  std::string cluster_token;
  bool join = false;
  int join_timeout_s = 60;
  std::string peer_keys;
  std::string client_key;
  std::string client_keys;
  std::string admin_keys;
  bool insecure = false;
  int watch_progress_ms = 2000;
  bool basic_paxos = false;
  bool dump_config = false;
};

[[noreturn]] void usage_error(const std::string& message) {
  std::cerr << "kvpaxosd: " << message << " (see kvpaxosd --help)\n";
  std::exit(kExitUsage);
}

// Tells systemd (Type=notify) how far start-up or shutdown has come; does
// nothing without $NOTIFY_SOCKET. A failed send is logged, once: the node
// serves all the same.
void notify_systemd(const std::string& state) {
  static bool warned = false;
  Result<bool> sent = notify_service_manager(state);
  if (sent.ok() || warned) return;
  warned = true;
  log::warn(sent.error() + "; going on without telling the service manager");
}

// Before a wait for other nodes of up to `timeout_s`: says what it waits for,
// and gives systemd that much more start time than its TimeoutStartSec.
void notify_waiting(const std::string& what, int timeout_s) {
  notify_systemd("STATUS=" + what + "\nEXTEND_TIMEOUT_USEC=" +
                 std::to_string((std::int64_t{timeout_s} + 30) * 1'000'000));
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

// A data dir belongs to one member of one cluster: its acceptor promises
// are only valid there. The marker file (kvpaxos-node) records whose it is;
// a restart under the same name recovers from it, anything else is refused.
//
// Version 2 (with membership change), one key=value a line: version=2,
// name, id (the member id), cluster (the --cluster list of the cluster's
// first start, for its members; empty for a member added later),
// cluster-id, incarnation, joined (1: added later; its first configurations
// are in member-contact). Version 1 (earlier releases) holds name= and
// cluster= only: its id is its index in that list, its cluster id comes from
// the list, and it is read as it is, never rewritten.
struct Marker {
  int version = 2;
  std::string name;
  NodeId id = 0;
  std::string cluster;
  std::uint64_t cluster_id = 0;
  std::uint64_t incarnation = 0;
  bool joined = false;
};

std::string hex64(std::uint64_t v) {
  char text[17];
  std::snprintf(text, sizeof text, "%016llx", static_cast<unsigned long long>(v));
  return text;
}

// The cluster id of a first configuration given as a --cluster list.
Result<std::uint64_t> cluster_id_of(const std::string& cluster, const std::string& token) {
  Result<std::vector<Member>> members = parse_cluster(cluster);
  if (!members.ok()) return Error{members.error()};
  std::vector<std::string> names;
  std::vector<std::string> endpoints;
  for (const Member& m : members.value()) {
    names.push_back(m.name);
    endpoints.push_back(m.endpoint);
  }
  return make_cluster_id(names, endpoints, token);
}

Result<Marker> read_marker(const std::string& dir) {
  const std::string path = (std::filesystem::path(dir) / kMarkerFile).string();
  std::ifstream in(path);
  if (!in) return Error{"cannot read " + path};
  std::map<std::string, std::string> kv;
  for (std::string line; std::getline(in, line);) {
    const std::size_t eq = line.find('=');
    if (eq != std::string::npos) kv[line.substr(0, eq)] = line.substr(eq + 1);
  }
  Marker m;
  m.name = kv["name"];
  m.cluster = kv["cluster"];
  auto number = [&](const char* key, int base, std::uint64_t& out) -> bool {
    const std::string& text = kv[key];
    char* end = nullptr;
    out = std::strtoull(text.c_str(), &end, base);
    return !text.empty() && end != nullptr && *end == '\0';
  };
  if (kv.count("version") == 0) {
    m.version = 1;
    Result<std::vector<Member>> members = parse_cluster(m.cluster);
    if (!members.ok()) return Error{path + ": " + members.error()};
    Result<NodeId> id = find_member(members.value(), m.name);
    if (!id.ok()) return Error{path + ": " + id.error()};
    m.id = id.value();
    Result<std::uint64_t> cid = cluster_id_of(m.cluster, "");
    if (!cid.ok()) return Error{cid.error()};
    m.cluster_id = cid.value();
    return m;
  }
  std::uint64_t version = 0;
  std::uint64_t id = 0;
  std::uint64_t joined = 0;
  if (!number("version", 10, version) || version != 2 || !number("id", 10, id) ||
      !number("cluster-id", 16, m.cluster_id) || !number("incarnation", 10, m.incarnation) ||
      !number("joined", 10, joined) || m.name.empty() || id >= kNoNode) {
    return Error{path + " is damaged or of a newer release (expected version=2 with name, id, "
                 "cluster-id, incarnation and joined)"};
  }
  m.id = static_cast<NodeId>(id);
  m.joined = joined != 0;
  return m;
}

// Atomically: a temp file, fsynced, renamed, and the directory fsynced.
Result<bool> write_marker(const std::string& dir, const Marker& m) {
  namespace fs = std::filesystem;
  std::error_code ec;
  fs::create_directories(dir, ec);
  if (ec) return Error{"cannot create --data-dir " + dir + ": " + ec.message()};
  const fs::path marker = fs::path(dir) / kMarkerFile;
  const std::string text = "version=2\nname=" + m.name + "\nid=" + std::to_string(m.id) +
                           "\ncluster=" + m.cluster + "\ncluster-id=" + hex64(m.cluster_id) +
                           "\nincarnation=" + std::to_string(m.incarnation) +
                           "\njoined=" + (m.joined ? "1" : "0") + "\n";
  {
    FILE* out = std::fopen((marker.string() + ".tmp").c_str(), "w");
    const bool written = out != nullptr && std::fputs(text.c_str(), out) >= 0 &&
                         std::fflush(out) == 0 && ::fsync(fileno(out)) == 0;
    if (out != nullptr) std::fclose(out);
    if (!written) return Error{"cannot write " + marker.string() + ".tmp"};
  }
  fs::rename(marker.string() + ".tmp", marker, ec);
  if (ec) return Error{"cannot write " + marker.string() + ": " + ec.message()};
  return sync_directory(dir);
}

// The marker must be this node's: same name, and (when a token is given)
// the cluster id its first configuration and the token make.
Result<bool> check_marker(const Marker& m, const std::string& dir, const Flags& f) {
  if (m.name != f.name) {
    return Error{"--data-dir " + dir + " belongs to another node (" + dir + "/" + kMarkerFile +
                 " says name=" + m.name + "); give this node its own data dir, or start it "
                 "with the --name it had"};
  }
  if (!f.cluster_token.empty()) {
    if (m.joined) return true;  // a joined member took the id its cluster gave it
    Result<std::uint64_t> id = cluster_id_of(m.cluster, f.cluster_token);
    if (!id.ok() || id.value() != m.cluster_id) {
      return Error{"--data-dir " + dir + " belongs to another cluster: its first configuration "
                   "and this --cluster-token make another cluster id than the " +
                   hex64(m.cluster_id) + " it was started with; give the token it was started "
                   "with, or this node its own data dir"};
    }
  }
  return true;
}

// A removed member's data dir: the one line that says why it must not start.
std::optional<std::string> tombstone(const std::string& dir) {
  Result<FileRead> read = read_checked_file((std::filesystem::path(dir) / kTombstoneFile).string());
  if (!read.ok()) return "(unreadable: " + read.error() + ")";
  if (!read->found) return std::nullopt;
  return read->bytes;
}

// Keys, or the reason there are none (loopback only, or --insecure). With
// `every_name` (a cluster's first start), --peer-keys must hold the key of
// every node of --cluster; later, only this node's pair must be there, since
// the keys of members added since are in the configuration.
std::shared_ptr<const TransportSecurity> build_security(const Flags& f, const NodeConfig& config,
                                                        bool every_name) {
  const bool keyed = !f.peer_keys.empty() || !f.client_key.empty();
  if (keyed && (f.peer_keys.empty() || f.client_key.empty())) {
    usage_error("--peer-keys and --client-key go together: every tcp link is encrypted or none is");
  }
  if (!f.client_keys.empty() && !keyed) usage_error("--client-keys needs --peer-keys and --client-key");
  if (!f.admin_keys.empty() && !keyed) usage_error("--admin-keys needs --peer-keys and --client-key");
  if (keyed && f.insecure) usage_error("--insecure and key flags exclude each other");
  if (!keyed) {
    // Every address in --cluster, this node's client address and what it
    // binds: nothing off this host may reach a plain tcp port.
    std::string exposed;
    auto check = [&exposed](const std::string& endpoint) {
      if (endpoint.empty() || is_loopback_endpoint(endpoint)) return;
      exposed += (exposed.empty() ? "" : ", ") + endpoint.substr(endpoint.find("://") + 3);
    };
    for (const Member& m : config.members) check(m.endpoint);
    check(config.client_endpoint);
    check(config.listen_peer_endpoint);
    check(config.listen_client_endpoint);
    if (!exposed.empty() && !f.insecure) {
      usage_error("no keys, but " + exposed + " can be reached from other hosts; give --peer-keys "
                  "DIR and --client-key FILE (kvctl keygen makes them; see docs/security.md), or "
                  "--insecure to run unencrypted and unauthenticated on a network you trust");
    }
    if (f.insecure) {
      log::warn("--insecure: peer and client links are plain tcp; anyone who reaches " +
                (exposed.empty() ? std::string("these ports") : exposed) +
                " can read and write every key and disrupt the cluster");
    }
    return nullptr;
  }
  std::vector<std::string> names;
  for (const Member& m : config.members) names.push_back(m.name);
  Result<TransportSecurity> loaded =
      load_transport_security(names, config.self, f.peer_keys, f.client_key, f.client_keys,
                              every_name);
  if (!loaded.ok()) usage_error(loaded.error());
  if (!f.admin_keys.empty()) {
    if (Result<bool> admins = load_admin_keys(loaded.value(), f.admin_keys); !admins.ok()) {
      usage_error(admins.error());
    }
  }
  if (f.client_keys.empty()) {
    log::warn("client port: any client that knows the cluster's client public key may "
              "connect (encrypted, not authorised); give --client-keys DIR to allow only the "
              "clients whose keys it holds");
  }
  return std::make_shared<const TransportSecurity>(std::move(loaded.value()));
}

// What this node binds for one of its ports: the --listen-* flag's address
// when it is given (a name resolved), else the advertised endpoint, its host
// name resolved (libzmq binds only addresses). Empty: bind the advertised
// endpoint as it is.
std::string listen_endpoint(const std::string& listen_flag, const std::string& listen_addr,
                            const std::string& advertised_flag, const std::string& advertised) {
  if (!listen_addr.empty()) {
    Result<std::string> endpoint = tcp_endpoint(listen_addr);
    if (!endpoint.ok()) usage_error(listen_flag + " " + endpoint.error());
    Result<std::string> bound = resolve_for_bind(endpoint.value());
    if (!bound.ok()) usage_error(listen_flag + " " + listen_addr + ": " + bound.error());
    return bound.value();
  }
  if (advertised.empty() || binds_as_given(advertised)) return "";
  Result<std::string> bound = resolve_for_bind(advertised);
  if (!bound.ok()) {
    usage_error(advertised_flag + " " + advertised.substr(advertised.find("://") + 3) + ": " +
                bound.error() + "; fix the name (DNS, /etc/hosts) or give " + listen_flag +
                " IP:PORT (e.g. 0.0.0.0:PORT) to bind apart from the advertised name");
  }
  return bound.value();
}

// This node's peer port: --listen-peer-addr, or its address in the
// configuration (--cluster, or what kvctl member add recorded) resolved.
// Known only once the data dir said who this node is.
void settle_peer_listen_endpoint(NodeConfig& config, const Flags& f) {
  if (!f.listen_peer_addr.empty()) return;  // build_config took it
  config.listen_peer_endpoint =
      listen_endpoint("--listen-peer-addr", "", "this node's peer address",
                      config.self_endpoint());
}

// A data dir that holds a node's marker says who the node is: its --name
// need not be in --cluster then (after the first start --cluster only says
// where peers are), and main() takes the id and members from the marker.
NodeConfig build_config(const Flags& f, bool has_marker) {
  Result<std::vector<Member>> members = parse_cluster(f.cluster);
  if (!members.ok()) usage_error(members.error());
  Result<NodeId> self = find_member(members.value(), f.name);
  if (!self.ok() && !has_marker) usage_error(self.error());
  Result<std::string> client = tcp_endpoint(f.client_addr);
  if (!client.ok()) usage_error("--client-addr " + client.error());
  for (const Member& m : members.value()) {
    if (m.endpoint == client.value()) {
      usage_error("--client-addr " + f.client_addr + " is also the peer address of node " + m.name);
    }
  }
  NodeConfig config = f.node;
  config.members = std::move(members.value());
  config.self = self.ok() ? self.value() : kNoNode;
  config.client_endpoint = std::move(client.value());
  config.listen_client_endpoint = listen_endpoint("--listen-client-addr", f.listen_client_addr,
                                                  "--client-addr", config.client_endpoint);
  if (!f.metrics_addr.empty()) {
    Result<std::string> metrics = tcp_endpoint(f.metrics_addr);
    if (!metrics.ok()) usage_error("--listen-metrics-addr " + metrics.error());
    if (metrics.value() == config.client_endpoint) {
      usage_error("--listen-metrics-addr " + f.metrics_addr + " is also --client-addr");
    }
    for (const Member& m : config.members) {
      if (m.endpoint == metrics.value()) {
        usage_error("--listen-metrics-addr " + f.metrics_addr + " is also the peer address of node " +
                    m.name);
      }
    }
    Result<std::string> bound = resolve_for_bind(metrics.value());
    if (!bound.ok()) usage_error("--listen-metrics-addr " + f.metrics_addr + ": " + bound.error());
    config.metrics_endpoint = std::move(bound.value());
  }
  config.inproc_namespace = "kvpaxosd-" + f.name;
  config.seed = std::random_device{}();
  config.watch_progress_interval = std::chrono::milliseconds(f.watch_progress_ms);
  if (!f.listen_peer_addr.empty()) {
    config.listen_peer_endpoint = listen_endpoint("--listen-peer-addr", f.listen_peer_addr, "", "");
  }
  if (!self.ok()) return config;  // checked once the marker said who this is
  settle_peer_listen_endpoint(config, f);  // main settles it again if a marker moves it
  if (Result<bool> valid = config.validate(); !valid.ok()) usage_error(valid.error());
  return config;
}

// --join: learn from every other node how far the log has gone, then create
// the acceptor state with that vote floor (durably) before anything else. A
// crash part-way leaves no marker file, so the next --join starts over.
// `marker` is what the lost data dir's marker said, if it survived.
Result<bool> rebuild_data_dir(zmq::context_t& ctx, NodeConfig& config, const Flags& f,
                              Marker marker) {
  namespace fs = std::filesystem;
  std::error_code ec;
  for (const char* leftover : {kMarkerFile, "acceptor", "decided", "snapshot", "snapshot.tmp"}) {
    fs::remove_all(fs::path(f.data_dir) / leftover, ec);
    if (ec) return Error{"cannot clear " + (fs::path(f.data_dir) / leftover).string() + ": " + ec.message()};
  }
  fs::create_directories(f.data_dir, ec);
  if (ec) return Error{"cannot create --data-dir " + f.data_dir + ": " + ec.message()};
  log::info("--join: asking every other node how far the log has gone");
  notify_waiting("--join: asking every other node how far the log has gone", f.join_timeout_s);
  Result<JoinBarrier> barrier = gather_join_barrier(
      ctx, config, std::chrono::seconds(f.join_timeout_s),
      [](const std::string& line) { log::info("--join: " + line); });
  if (!barrier.ok()) return Error{barrier.error()};
  Result<bool> written = write_vote_floor(f.data_dir, barrier->vote_floor, barrier->max_round);
  if (!written.ok()) return written;
  Result<bool> claimed = write_marker(f.data_dir, marker);
  if (!claimed.ok()) return claimed;
  config.initial_round = barrier->max_round;
  log::info("--join: will not vote in instances below " + std::to_string(barrier->vote_floor) +
                " (its lost data dir may have voted there); learning the state from its peers",
            {{"instance", barrier->vote_floor}});
  return true;
}

// --initial-cluster-state existing on an empty data dir: a member that
// `kvctl member add` added. Asks the others who it is, then writes its
// acceptor state, its first configurations and its marker (last: without
// it the next start asks again). Returns the marker written.
Result<Marker> join_as_new_member(zmq::context_t& ctx, NodeConfig& config, const Flags& f) {
  std::vector<Member> seeds;
  for (NodeId i = 0; i < config.members.size(); ++i) {
    if (i != config.self) seeds.push_back(config.members[i]);
  }
  const std::string endpoint = config.members.at(config.self).endpoint;
  notify_waiting("--initial-cluster-state existing: asking the members who this node is",
                 f.join_timeout_s);
  Result<MemberInfo> info = ask_membership(
      ctx, f.name, endpoint, seeds, std::chrono::seconds(f.join_timeout_s),
      [](const std::string& line) { log::info("--initial-cluster-state existing: " + line); },
      config.security.get());
  if (!info.ok()) return Error{info.error()};
  Marker m;
  m.name = f.name;
  m.id = info->id;
  m.cluster_id = info->cluster_id;
  m.incarnation = std::random_device{}() | (std::uint64_t{std::random_device{}()} << 32) | 1;
  m.joined = true;
  ConfigHistory contact = info->history;
  contact.known_below = 0;  // nothing may be proposed before its snapshot is installed
  Result<bool> created = write_vote_floor(f.data_dir, 0, 0);
  if (!created.ok()) return Error{created.error()};
  msgpack::sbuffer packed;
  msgpack::pack(packed, contact);
  Result<bool> saved = write_file_atomically(f.data_dir, kContactFile,
                                             std::string_view(packed.data(), packed.size()));
  if (!saved.ok()) return Error{saved.error()};
  Result<bool> marked = write_marker(f.data_dir, m);
  if (!marked.ok()) return Error{marked.error()};
  return m;
}

// A member that joined later, restarted: its id and first configurations
// from its data dir; `joining` until it has a snapshot.
Result<bool> load_joined_member(NodeConfig& config, const Flags& f, const Marker& m) {
  const std::string path = (std::filesystem::path(f.data_dir) / kContactFile).string();
  Result<FileRead> read = read_checked_file(path);
  if (!read.ok()) return Error{read.error()};
  if (!read->found) return Error{path + " is missing; the data dir of a member that joined later holds it"};
  ConfigHistory contact;
  try {
    msgpack::object_handle oh = msgpack::unpack(read->bytes.data(), read->bytes.size());
    oh.get().convert(contact);
  } catch (const std::exception& e) {
    return Error{path + " is damaged: " + e.what()};
  }
  if (contact.entries.empty() || contact.latest().find(m.id) == nullptr) {
    return Error{path + " does not name member " + std::to_string(m.id)};
  }
  config.self = m.id;
  config.contact = std::move(contact);
  std::error_code ec;
  config.joining = !std::filesystem::exists(std::filesystem::path(f.data_dir) / "snapshot", ec);
  config.member_incarnation = m.incarnation;
  return true;
}

// Waits for SIGTERM or SIGINT (returns the signal), or for the node to learn
// it was removed (returns 0). Meanwhile, once a second, hands the memory the
// actors freed back to the system: the allocator keeps large blocks for
// reuse (see Node), so a burst of large values does not stay resident.
int wait_for_signal_or_removal(const Node& node) {
  sigset_t signals;
  sigemptyset(&signals);
  sigaddset(&signals, SIGTERM);
  sigaddset(&signals, SIGINT);
  const timespec tick{0, 200'000'000};
  for (int i = 0;; ++i) {
    const int received = sigtimedwait(&signals, nullptr, &tick);
    if (received > 0) return received;
    if (node.removed_epoch() != 0) return 0;
    if (i % 5 == 0) malloc_trim(0);
  }
}


// ------------------------------------------------------------ kvpaxosd restore
//
// Seeds the data dir of one node of a NEW cluster from a kvctl snapshot save
// file. The new cluster shares nothing with the old one but the data:
//   - its identity is its own: the marker holds the cluster id of the new
//     --cluster list and --cluster-token, so its peer links refuse the old
//     cluster's nodes (and theirs refuse it);
//   - its acceptor log starts empty and its log at instance 0: no promise or
//     ballot of the old cluster comes back (only an empty or new data dir is
//     taken, never an existing node's);
//   - the state is the snapshot's keys, values and revisions (the store's
//     revision goes on from the snapshot's); the dedup sessions are dropped
//     (a client of the old cluster starts a new session with its first
//     request to the new one; a retry of an old request is refused as
//     session_expired, never run twice);
//   - the membership is the new --cluster list (a bootstrap configuration,
//     epoch 0), not the snapshot's; only alpha is kept.
// Restore every member of the new cluster from the same file, then start
// each as usual (no --initial-cluster-state: the data dir holds its state).

struct RestoreFlags {
  std::string file;
  std::string data_dir;
  std::string name;
  std::string cluster;
  std::string cluster_token;
};

// An absent or empty directory; anything in it may be another node's state.
Result<bool> check_restore_target(const std::string& dir) {
  namespace fs = std::filesystem;
  std::error_code ec;
  if (!fs::exists(dir, ec)) return true;
  if (!fs::is_directory(dir, ec)) return Error{"--data-dir " + dir + " is not a directory"};
  if (!fs::is_empty(dir, ec) || ec) {
    return Error{"--data-dir " + dir + " is not empty; restore seeds a new node and never writes "
                 "over a data dir (its promises and ballots must not come back): give an empty "
                 "or new directory"};
  }
  return true;
}

// The snapshot as the new cluster's first state: log instance 0, no
// sessions, the new cluster's bootstrap configuration.
Result<std::string> restored_snapshot(const BackupFile& backup, const std::vector<Member>& members) {
  Result<SnapshotRecord> record = parse_snapshot(backup.payload);
  if (!record.ok()) return Error{"the snapshot in the file does not parse: " + record.error()};
  SnapshotRecord r = std::move(record.value());
  if (r.kv.size() != backup.meta.keys || r.revision != backup.meta.revision) {
    return Error{"the snapshot holds " + std::to_string(r.kv.size()) + " keys at revision " +
                 std::to_string(r.revision) + ", its metadata says " +
                 std::to_string(backup.meta.keys) + " at " + std::to_string(backup.meta.revision)};
  }
  std::vector<std::string> names;
  std::vector<std::string> endpoints;
  for (const Member& m : members) {
    names.push_back(m.name);
    endpoints.push_back(m.endpoint);
  }
  const std::uint64_t alpha = r.has_config() ? r.config.alpha : kDefaultAlpha;
  r.format = kSnapshotFormat;
  r.applied_below = 0;
  r.sessions.clear();
  r.undecodable_entries = 0;
  r.config = ConfigState(bootstrap_members(names, endpoints), alpha).record();
  std::string bytes = encode_snapshot(r);
  if (Result<SnapshotRecord> check = parse_snapshot(bytes); !check.ok()) {
    return Error{"the restored snapshot does not parse: " + check.error()};
  }
  return bytes;
}

// The acceptor log first, then the snapshot, then the marker: a restore cut
// short leaves no marker, and the next start refuses the data dir.
Result<bool> write_restored_dir(const RestoreFlags& f, const Marker& marker,
                                const std::string& snapshot) {
  std::error_code ec;
  std::filesystem::create_directories(f.data_dir, ec);
  if (ec) return Error{"cannot create --data-dir " + f.data_dir + ": " + ec.message()};
  if (Result<bool> acceptor = write_vote_floor(f.data_dir, 0, 0); !acceptor.ok()) return acceptor;
  if (Result<bool> saved = write_file_atomically(f.data_dir, "snapshot", snapshot); !saved.ok()) {
    return saved;
  }
  return write_marker(f.data_dir, marker);
}

int run_restore(int argc, char** argv) {
  RestoreFlags f;
  CLI::App app{"Seed the data dir of a node of a NEW cluster from a file kvctl snapshot save "
               "wrote", "kvpaxosd restore"};
  app.add_option("file", f.file, "The snapshot file")->required();
  app.add_option("--data-dir", f.data_dir, "The new node's data dir: absent or empty")->required();
  app.add_option("--name", f.name, "The new node's name; must appear in --cluster")->required();
  app.add_option("--cluster", f.cluster,
                 "The NEW cluster as NAME=HOST:PORT,..., the list every node of it starts with; "
                 "its membership (the snapshot's is not used)")
      ->required();
  app.add_option("--cluster-token", f.cluster_token,
                 "Mixed into the new cluster's id with --cluster; give every node of it the same "
                 "token here and when starting it, and one the old cluster does not use");
  try {
    app.parse(argc, argv);
  } catch (const CLI::Success& e) {
    return app.exit(e);
  } catch (const CLI::ParseError& e) {
    usage_error(std::string("restore: ") + e.what());
  }
  Result<std::vector<Member>> members = parse_cluster(f.cluster);
  if (!members.ok()) usage_error("restore: --cluster: " + members.error());
  Result<NodeId> self = find_member(members.value(), f.name);
  if (!self.ok()) usage_error("restore: " + self.error());
  if (Result<bool> empty = check_restore_target(f.data_dir); !empty.ok()) {
    std::cerr << "kvpaxosd restore: " << empty.error() << "\n";
    return kExitUsage;
  }
  Result<BackupFile> backup = read_backup_file(f.file);
  if (!backup.ok()) {
    std::cerr << "kvpaxosd restore: " << backup.error() << "\n";
    return 1;
  }
  Result<std::string> snapshot = restored_snapshot(backup.value(), members.value());
  if (!snapshot.ok()) {
    std::cerr << "kvpaxosd restore: " << f.file << ": " << snapshot.error() << "\n";
    return 1;
  }
  Result<std::uint64_t> cluster_id = cluster_id_of(f.cluster, f.cluster_token);
  if (!cluster_id.ok()) usage_error("restore: " + cluster_id.error());
  if (cluster_id.value() == backup->meta.cluster_id) {
    std::cerr << "kvpaxosd restore: --cluster and --cluster-token make the id of the cluster the "
              << "snapshot came from (" << hex64(cluster_id.value()) << "); its nodes would take "
              << "the new one's for theirs: give a --cluster-token the old cluster does not use\n";
    return kExitUsage;
  }
  const Marker marker{.name = f.name, .id = self.value(), .cluster = f.cluster,
                      .cluster_id = cluster_id.value()};
  if (Result<bool> written = write_restored_dir(f, marker, snapshot.value()); !written.ok()) {
    std::cerr << "kvpaxosd restore: " << written.error() << "\n";
    return 1;
  }
  std::cout << "restored " << f.data_dir << " for " << f.name << " (member " << self.value()
            << " of " << members->size() << ", cluster id " << hex64(cluster_id.value())
            << ") from " << f.file << ": " << backup->meta.keys << " keys at revision "
            << backup->meta.revision << " (instance " << backup->meta.applied_below << " of "
            << backup->meta.source << "'s log); start it with the same --name, --cluster, "
            << "--cluster-token and --data-dir\n";
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  if (argc > 1 && std::string_view(argv[1]) == "restore") return run_restore(argc - 1, argv + 1);
  Flags f;
  CLI::App app{"kvpaxosd: one node of a kvpaxos replicated key/value store"};
  app.set_version_flag("--version", "kvpaxosd " KVPAXOS_VERSION);
  app.set_config("--config-file", "",
                 "TOML file of flags: the long names without the dashes, e.g. "
                 "client-addr = \"127.0.0.1:7201\"; a key that names no flag is an error; leave out "
                 "the flags that are off. "
                 "KVPAXOS_* variables and the command line win over it")
      ->check(CLI::ExistingFile);
  app.allow_config_extras(CLI::config_extras_mode::error);
  app.add_flag("--dump-config", f.dump_config,
               "Print the flags in effect (command line, KVPAXOS_* variables, --config-file "
               "and defaults) as a --config-file and exit")
      ->configurable(false);
  app.footer("Every flag can also be set in the environment as KVPAXOS_ and its name in "
             "capitals, dashes as underscores (KVPAXOS_CLIENT_ADDR=127.0.0.1:7201), or in a "
             "--config-file. Key material is never a flag's value: the key flags name files.");
  app.add_option("--name", f.name, "This node's name; must appear in --cluster")->required();
  app.add_option("--cluster", f.cluster,
                 "Every node of the cluster as NAME=HOST:PORT,... (peer addresses, same order "
                 "and content on every node)")
      ->required();
  app.add_option("--client-addr", f.client_addr,
                 "HOST:PORT where clients (kvctl) reach this node, e.g. 127.0.0.1:7201; a host "
                 "name is bound as the address it resolves to here, unless --listen-client-addr")
      ->required();
  app.add_option("--listen-peer-addr", f.listen_peer_addr,
                 "IP:PORT to bind the peer port on (e.g. 0.0.0.0:7101) when it is not this "
                 "node's address in --cluster, which others connect to (a host name there is "
                 "bound as the address it resolves to here)");
  app.add_option("--listen-client-addr", f.listen_client_addr,
                 "IP:PORT to bind the client port on (e.g. 0.0.0.0:7201) when it is not "
                 "--client-addr");
  app.add_option("--listen-metrics-addr", f.metrics_addr,
                 "HOST:PORT for plain HTTP GET /metrics (Prometheus), /livez, /readyz and "
                 "/health, e.g. 127.0.0.1:9201; off when not given. No TLS, no auth (the "
                 "numbers are not secret): firewall it to your monitoring");
  CLI::Option* data_dir = app.add_option("--data-dir", f.data_dir,
                 "Directory for this node's durable state (acceptor log, snapshots). A node "
                 "restarted with the same --data-dir, --name and --cluster recovers every "
                 "promise and applied write. Without it, state lives in memory only");
  app.add_flag("--basic-paxos", f.basic_paxos,
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
  CLI::Option* state_flag = app.add_option(
      "--initial-cluster-state", f.initial_cluster_state,
      "With an empty --data-dir (ignored once it holds this node's state): 'new' for the first "
      "start of a new cluster (every member in --cluster, each started with 'new'; waits until a "
      "majority is up and refuses if any already has a log); 'existing' for a member that "
      "'kvctl member add' just added (it asks the members in --cluster who it is, then catches "
      "up from a snapshot; --cluster is the line kvctl member add printed). Never use either for "
      "a voter that lost its data dir (use --join): it would vote without the promises it made");
  state_flag->check(CLI::IsMember({"new", "existing"}));
  app.add_flag("--first-start", f.first_start, "The same as --initial-cluster-state new");
  app.add_option("--cluster-token", f.cluster_token,
                 "With --initial-cluster-state new: mixed into the cluster id (from the "
                 "--cluster list and this token), which every peer link checks, so that nodes "
                 "of two clusters started from the same list cannot talk. Give every member the "
                 "same token");
  CLI::Option* join = app.add_flag(
      "--join", f.join,
      "Rebuild this node after its --data-dir was lost: ask every other node (all must be up) "
      "how far the log has gone, never vote in instances below that (the lost data dir may have "
      "voted there), and learn the state from a peer's snapshot and the log");
  join->excludes("--first-start");
  join->excludes(state_flag);
  state_flag->excludes("--first-start");
  app.add_option("--join-timeout", f.join_timeout_s,
                 "With --join: seconds to wait for every other node to answer; with "
                 "--initial-cluster-state new: for a majority of the nodes to be up; with "
                 "existing: for a member to say who this node is")
      ->capture_default_str()
      ->check(CLI::Range(1, 3600));
  app.add_flag("--fault-injection", f.node.fault_injection,
               "Accept 'kvctl fault' commands (partitions, message drops) for tests");
  app.add_option("--log-level", f.log_level, "error, warn, info or debug")
      ->capture_default_str()
      ->check(CLI::IsMember({"error", "warn", "info", "debug"}));
  app.add_option("--log-format", f.log_format,
                 "text (for people) or json (one object per line: time, level, node, actor, msg "
                 "and the line's fields; for journald, Loki or Elasticsearch shippers)")
      ->capture_default_str()
      ->check(CLI::IsMember({"text", "json"}));
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
  app.add_option("--admin-keys", f.admin_keys,
                 "Directory of the public keys (*.key) of the clients that may make admin "
                 "requests (kvctl snapshot save); they may connect as clients too. Without it, "
                 "a node with keys refuses every snapshot save");
  app.add_flag("--insecure", f.insecure,
               "Allow plain, unauthenticated tcp on addresses other hosts can reach (without "
               "keys, kvpaxosd otherwise refuses any non-loopback address)");
  read_flags_from_environment(app, "KVPAXOS", {"help", "version", "dump-config"});
  const bool file_flag_given = std::any_of(argv + 1, argv + argc, [](const char* arg) {
    return std::string_view(arg).starts_with("--config-file");
  });
  if (!file_flag_given) {
    if (std::optional<std::string> bad = read_config_file_from_environment(app, "KVPAXOS")) {
      usage_error(*bad);
    }
  }
  // --dump-config prints whatever is given, so it also makes a template.
  if (std::find(argv + 1, argv + argc, std::string_view("--dump-config")) != argv + argc) {
    for (CLI::Option* option : app.get_options()) option->required(false);
  }
  try {
    app.parse(argc, argv);
  } catch (const CLI::Success& e) {  // --help, --version: printed, exit 0
    return app.exit(e);
  } catch (const CLI::ParseError& e) {
    const CLI::Option* config = app.get_config_ptr();
    usage_error(describe_parse_error(e, config->count() > 0 ? config->results().front() : ""));
  }
  if (f.dump_config) {
    std::cout << dump_config(app);
    return 0;
  }
  f.node.proposer_options.multi_paxos = !f.basic_paxos;

  if (data_dir->count() > 0 && f.data_dir.empty()) {
    usage_error("--data-dir is empty; name a directory, or leave the flag out to keep state in "
                "memory only");
  }
  if (f.join && f.data_dir.empty()) usage_error("--join needs the --data-dir to rebuild into");
  log::Level level = log::Level::info;
  log::parse_level(f.log_level, level);
  log::set_level(level);
  log::Format format = log::Format::text;
  log::parse_format(f.log_format, format);
  log::set_format(format);
  log::set_process_node(f.name);
  if (f.first_start) f.initial_cluster_state = "new";
  const bool has_marker =
      !f.data_dir.empty() && std::filesystem::exists(std::filesystem::path(f.data_dir) / kMarkerFile);
  NodeConfig config = build_config(f, has_marker);
  const bool joining_later = f.initial_cluster_state == "existing";
  if (joining_later && f.data_dir.empty()) {
    usage_error("--initial-cluster-state existing needs a --data-dir: a member added to a running "
                "cluster keeps its id and state there");
  }
  if (config.self == kNoNode && !f.peer_keys.empty()) {
    usage_error("--name " + f.name + " is not in --cluster; with keys every node names itself "
                "there, as it did at its first start");
  }
  config.security = build_security(f, config, /*every_name=*/!has_marker && !joining_later);
  // Signals go to sigwait here, never to an actor thread.
  sigset_t signals;
  sigemptyset(&signals);
  sigaddset(&signals, SIGTERM);
  sigaddset(&signals, SIGINT);
  pthread_sigmask(SIG_BLOCK, &signals, nullptr);
  zmq::context_t ctx(1);
  if (!f.data_dir.empty()) {
    if (std::optional<std::string> gone = tombstone(f.data_dir)) {
      std::cerr << "kvpaxosd: --data-dir " << f.data_dir << " belongs to a removed member ("
                << f.data_dir << "/" << kTombstoneFile << ": " << *gone << "); a removed member "
                << "does not come back: wipe the data dir and add the machine as a new member "
                << "(kvctl member add)\n";
      return kExitUsage;
    }
  }
  const DirState state = f.data_dir.empty() ? DirState::node : inspect_data_dir(f.data_dir);
  const bool fresh = state != DirState::node;
  // The marker of this data dir, or the one it is about to get.
  Marker marker;
  marker.name = f.name;
  marker.id = config.self;
  marker.cluster = f.cluster;
  if (Result<std::uint64_t> id = cluster_id_of(f.cluster, f.cluster_token); id.ok()) {
    marker.cluster_id = id.value();
  }
  if (state != DirState::fresh && !f.data_dir.empty()) {
    Result<Marker> found = read_marker(f.data_dir);
    Result<bool> mine = found.ok() ? check_marker(found.value(), f.data_dir, f) : Result<bool>(Error{found.error()});
    if (!mine.ok()) {
      std::cerr << "kvpaxosd: " << mine.error() << "\n";
      return kExitUsage;
    }
    marker = found.value();
    if (marker.joined && state == DirState::lost) {
      std::cerr << "kvpaxosd: " << f.data_dir << " held member " << marker.id << " (" << f.name
                << "), which joined the cluster later, but its acceptor log is gone; remove it "
                << "(kvctl member remove " << f.name << "), wipe the data dir and add it again\n";
      return kExitUsage;
    }
    if (marker.joined) {
      Result<bool> loaded = load_joined_member(config, f, marker);
      if (!loaded.ok()) {
        std::cerr << "kvpaxosd: " << loaded.error() << "\n";
        return kExitUsage;
      }
    } else {
      // A member of the first configuration: its id and the bootstrap list
      // are the first start's; --cluster now only says where peers are.
      Result<std::vector<Member>> first = parse_cluster(marker.cluster);
      if (!first.ok() || marker.id >= first->size()) {
        std::cerr << "kvpaxosd: " << f.data_dir << "/" << kMarkerFile << " names no member "
                  << marker.id << " in its cluster list\n";
        return kExitUsage;
      }
      if (marker.cluster != f.cluster) {
        log::info("--cluster differs from this cluster's first start; the members come from the "
                  "log and its snapshot (kvctl member list), the list of the first start from "
                  "the marker file",
                  {{"file", f.data_dir + "/" + kMarkerFile}});
      }
      config.members = std::move(first.value());
      config.self = marker.id;
    }
  }
  config.cluster_id = marker.cluster_id;
  if (Result<bool> valid = config.validate(); !valid.ok()) usage_error(valid.error());
  settle_peer_listen_endpoint(config, f);
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
    Result<bool> joined = rebuild_data_dir(ctx, config, f, marker);
    if (!joined.ok()) {
      std::cerr << "kvpaxosd: --join: " << joined.error() << "\n";
      return 1;
    }
  } else if (state == DirState::lost) {
    std::cerr << "kvpaxosd: " << f.data_dir << "/" << kMarkerFile << " says this node ran before, "
              << "but its acceptor log (" << f.data_dir << "/acceptor) is gone, and with it the "
              << "promises it made; rebuild it with --join (every other node must be up)\n";
    return kExitUsage;
  } else if (state == DirState::fresh && joining_later) {
    Result<Marker> joined = join_as_new_member(ctx, config, f);
    if (!joined.ok()) {
      std::cerr << "kvpaxosd: --initial-cluster-state existing: " << joined.error() << "\n";
      return 1;
    }
    // From the files just written, the way a restart reads them.
    Result<bool> loaded = load_joined_member(config, f, joined.value());
    if (!loaded.ok()) {
      std::cerr << "kvpaxosd: " << loaded.error() << "\n";
      return 1;
    }
    config.cluster_id = joined->cluster_id;
    settle_peer_listen_endpoint(config, f);  // the address the cluster recorded
  } else if (state == DirState::fresh) {
    // Fail closed: an empty data dir is either a new cluster (new) or a
    // node that lost its disk, which must not vote as if it never had.
    if (f.initial_cluster_state != "new") {
      std::cerr << "kvpaxosd: --data-dir " << f.data_dir << " holds no node state; start a new "
                << "cluster with --initial-cluster-state new on each node (the first time only), "
                << "start a member that kvctl member add added with --initial-cluster-state "
                << "existing, or rebuild a node that lost its data dir with --join\n";
      return kExitUsage;
    }
    if (config.members.size() > 1) {
      notify_waiting("--initial-cluster-state new: waiting for a majority of the nodes",
                     f.join_timeout_s);
      Result<PeerSurvey> survey = survey_peers(
          ctx, config, std::chrono::seconds(f.join_timeout_s),
          [](const std::string& line) { log::info("--first-start: " + line); });
      if (!survey.ok()) {
        std::cerr << "kvpaxosd: " << survey.error() << "\n";
        return kExitUsage;
      }
      if (survey->furthest_decided > 0) {
        std::cerr << "kvpaxosd: --initial-cluster-state new, but the cluster already has a log ("
                  << survey->furthest_name << " is at instance " << survey->furthest_decided
                  << "); if " << f.name << " lost its data dir, rebuild it with --join "
                  << "(every other node must be up); if it is a new member, add it with kvctl "
                  << "member add and start it with --initial-cluster-state existing\n";
        return kExitUsage;
      }
      if (survey->heard < survey->needed) {
        std::cerr << "kvpaxosd: --initial-cluster-state new: heard " << survey->heard << " of the "
                  << config.members.size() - 1 << " other nodes in " << f.join_timeout_s
                  << "s; a new cluster starts once a majority of its nodes is up (start "
                  << survey->needed << " of the others, each with --initial-cluster-state new)\n";
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
    Result<bool> claimed = write_marker(f.data_dir, marker);
    if (!claimed.ok()) {
      std::cerr << "kvpaxosd: " << claimed.error() << "\n";
      return 1;
    }
  }
  if (!f.data_dir.empty()) config.data_dir = f.data_dir;

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
  const std::size_t members = config.contact ? config.contact->latest().members.size()
                                             : config.members.size();
  auto bound = [](const std::string& advertised, const std::string& listen) {
    return listen.empty() || listen == advertised ? advertised
                                                  : advertised + " (bound " + listen + ")";
  };
  log::info("serving clients on " +
            bound(config.client_endpoint, config.listen_client_endpoint) + ", peers on " +
            bound(config.self_endpoint(), config.listen_peer_endpoint) + " (member " +
            std::to_string(config.self) + " of a " +
            std::to_string(members) + "-member configuration" +
            (config.joining ? ", catching up from a snapshot first" : "") +
            (config.fault_injection ? ", fault injection on" : "") + ")" +
            (config.metrics_endpoint.empty()
                 ? std::string()
                 : "; metrics on http://" + node.value()->metrics_endpoint().substr(6)));
  // Node::start returned: the data dir is recovered and both ports are bound.
  notify_systemd("READY=1\nSTATUS=serving clients on " + f.client_addr + ", peers on " +
                 config.self_endpoint().substr(config.self_endpoint().find("://") + 3));
  const int sig = wait_for_signal_or_removal(*node.value());
  if (sig == 0) {
    notify_systemd("STOPPING=1\nSTATUS=removed from the cluster; exiting");
    const std::uint64_t epoch = node.value()->removed_epoch();
    const InstanceId from = node.value()->removed_from();
    node.value().reset();
    const std::string why = "removed from the cluster at epoch " + std::to_string(epoch) +
                            " (in force from instance " + std::to_string(from) + ")";
    if (!f.data_dir.empty()) {
      Result<bool> written = write_file_atomically(f.data_dir, kTombstoneFile, why);
      if (!written.ok()) {
        log::error("cannot write the tombstone",
                   {{"file", f.data_dir + "/" + kTombstoneFile}, {"error", written.error()}});
      }
    }
    if (f.data_dir.empty()) {
      log::warn(why + "; exiting", {{"epoch", epoch}, {"instance", from}});
    } else {
      log::warn(why + "; exiting, its data dir is retired",
                {{"epoch", epoch}, {"instance", from}, {"tombstone", f.data_dir + "/" + kTombstoneFile}});
    }
    ctx.close();
    return kExitRemoved;
  }
  // A graceful stop: the lead and this node's clients move to the other
  // members at once instead of after a forward timeout (a rolling restart
  // costs no stall). The ops already in flight here get a moment to be
  // decided and answered; the acceptor keeps voting meanwhile.
  log::info("stopping on a signal: stepping down (the lead and the clients move to the other "
            "members)",
            {{"signal", sig == SIGINT ? "SIGINT" : "SIGTERM"}});
  notify_systemd("STOPPING=1\nSTATUS=stopping on signal " + std::to_string(sig) +
                 ", stepping down");
  node.value()->step_down();
  std::this_thread::sleep_for(kStepDownGrace);
  node.value().reset();
  ctx.close();
  return 0;
}
