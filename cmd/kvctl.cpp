// kvctl: the command-line client of kvpaxos.
//
//   kvctl --endpoints 127.0.0.1:7201,127.0.0.1:7202 [--timeout 5s] [-w text|json] CMD
//     put KEY VALUE | append KEY VALUE   prints OK   (VALUE "-" reads stdin)
//     get KEY                            prints the value and a newline
//     get KEY [--prefix | --from-key | --to END] [--limit N] [--keys-only | --count-only]
//                                        each key and its value on lines of their own
//         [--rev-header]                 first a line "revision: R"
//     del KEY [--prefix | --from-key | --to END]   prints how many keys it deleted
//     txn < FILE                         etcdctl's txn grammar (cmd/txn_grammar.hpp):
//                                        compares, blank line, success ops, blank line,
//                                        failure ops; prints SUCCESS or FAILURE and
//                                        each op's result
//     watch KEY [--prefix | --from-key | --to END] [--rev N] [--count N]
//                                        each change as it happens: PUT, key, value /
//                                        DELETE, key (-w json: one object a line),
//                                        until interrupted
//     member list                        the configuration through the log: epoch,
//                                        pending change, id, name, role, whether
//                                        it answers kvctl, applied, lag, addresses
//     member add NAME --peer-addr H:P [--client-addr H:P] [--peer-key FILE]
//                                        a learner; prints its id, the epoch, the
//                                        instance it is in from and its kvpaxosd line
//     member promote NAME|ID [--wait DURATION] [--force]
//     member replace OLD NEW [--wait DURATION] [--force]
//                                        only once the learner answers and is caught
//                                        up (--wait: kvctl waits for it, with its
//                                        progress on stderr)
//     member remove NAME|ID [--force]    refused when the voters that remain, counting
//                                        only those that answer kvctl, are not a
//                                        majority of them (so is a replace)
//     member update NAME|ID [--peer-addr H:P] [--client-addr H:P] [--peer-key FILE]
//                                        each reads the epoch first and changes only
//                                        that epoch (a concurrent change makes it fail)
//     status                             each endpoint's own view of the log, with
//                                        its member id and role (voter, learner,
//                                        removed; unknown when the configuration
//                                        cannot be read)
//     fault reach NAME,...|all           (nodes started with --fault-injection)
//     fault drop RATE
//     keygen NAME [--dir DIR]            writes DIR/NAME.key and DIR/NAME.key_secret
//     snapshot save FILE                 a backup of the one --endpoints node's state,
//                                        taken after every write acknowledged before
//                                        (with keys: an --admin-keys key only)
//     snapshot status FILE               its instance, revision, keys, size, checksum
//                                        (no cluster needed; -w json: one object)
//   [--server-key FILE.key --key FILE.key_secret]   CURVE (or $KVCTL_SERVER_KEY, $KVCTL_KEY)
//
// -w json prints one object: put and append {"ok":true,"revision":R}; get
// {"revision":R,"count":N,"more":b,"kvs":[{"key","value","create_revision",
// "mod_revision","version"}...]} and, for KEY without flags, also its "key"
// and "value" (as before ranges); del {"deleted":N,"revision":R}; txn {"succeeded":b,"revision":R,
// "responses":[...]}; member list {"epoch","alpha","pending_from","members":[...]},
// a member change {"id","epoch","effective_from"}.
//
// Exit status: 0 success; 1 the cluster did not answer in time (outcome
// unknown) or a node refused the request (a member change the cluster
// refused prints why); 2 usage error (a txn that does not parse is one,
// and nothing is sent).
#include <algorithm>
#include <atomic>
#include <csignal>
#include <cstdio>
#include <cstdlib>
#include <future>
#include <iostream>
#include <iterator>
#include <map>
#include <sstream>
#include <thread>

#include <CLI/CLI.hpp>

#include "client/client.hpp"
#include "client/watch.hpp"
#include "cmd/bench.hpp"
#include "cmd/flag_sources.hpp"
#include "cmd/kv_output.hpp"
#include "cmd/member_health.hpp"
#include "cmd/snapshot_cmd.hpp"
#include "cmd/txn_grammar.hpp"
#include "messages/key_file.hpp"
#include "kvpaxos_version.hpp"

namespace {

using namespace kvpaxos;

constexpr int kExitOk = 0;
constexpr int kExitFailed = 1;
constexpr int kExitUsage = 2;

// How long kvctl waits for a node's status when it checks who is up.
constexpr std::chrono::milliseconds kProbeTimeout{1000};
// How long kvctl status tries to read the configuration (for the roles).
constexpr std::chrono::milliseconds kStatusConfigDeadline{1000};

std::vector<std::string> split(const std::string& text, char sep = ',') {
  std::vector<std::string> parts;
  std::stringstream in(text);
  for (std::string part; std::getline(in, part, sep);) {
    if (!part.empty()) parts.push_back(part);
  }
  return parts;
}

// "5s", "500ms", "2m" or a bare number of seconds.
std::optional<std::chrono::milliseconds> parse_duration(const std::string& text) {
  std::size_t used = 0;
  double number = 0;
  try {
    number = std::stod(text, &used);
  } catch (const std::exception&) {
    return std::nullopt;
  }
  const std::string unit = text.substr(used);
  double scale = 0;
  if (unit.empty() || unit == "s") scale = 1000;
  else if (unit == "ms") scale = 1;
  else if (unit == "m") scale = 60000;
  else return std::nullopt;
  // A week at most: longer is a typo, and "inf" or 1e300 would overflow.
  constexpr double kMaxMs = 7.0 * 24 * 3600 * 1000;
  if (!(number > 0) || !(number * scale <= kMaxMs)) return std::nullopt;
  return std::chrono::milliseconds(std::max<std::int64_t>(1, static_cast<std::int64_t>(number * scale)));
}

// "127.0.0.1:7201", "db1.example:7201", "[::1]:7201", or "tcp://" before any.
bool valid_host_port(std::string ep) {
  if (ep.rfind("tcp://", 0) == 0) ep = ep.substr(6);
  const std::size_t colon = ep.rfind(':');
  if (colon == std::string::npos || colon == 0 || colon + 1 == ep.size()) return false;
  const std::string port = ep.substr(colon + 1);
  if (port.size() > 5 || port.find_first_not_of("0123456789") != std::string::npos) return false;
  const int number = std::stoi(port);
  return number >= 1 && number <= 65535;
}

struct Options {
  std::string endpoints;
  std::string timeout = "5s";
  std::string format = "text";
  std::string key;
  std::string value;
  // get, del
  KeySpan span;
  std::uint64_t watch_rev = 0;
  std::uint64_t watch_count = 0;
  std::uint64_t limit = 0;
  bool limited = false;  // --limit was given (even as 0)
  bool keys_only = false;
  bool count_only = false;
  bool rev_header = false;
  std::string fault_what;
  std::string fault_arg;
  // bench
  int bench_clients = 64;
  std::string bench_duration = "10s";
  std::size_t bench_value_bytes = 100;
  std::uint64_t bench_keys = 1000;
  std::string bench_mix = "put=100";
  // CURVE
  std::string server_key;
  std::string client_key;
  std::string keygen_name;
  std::string keygen_dir = ".";
  std::string snapshot_file;  // snapshot save, status
  // member
  std::string member_name;   // add: the new one's; the target of the others
  std::string member_other;  // replace: the learner taking the target's place
  std::string peer_addr;
  std::string client_addr;
  std::string peer_key_file;  // add, update: the member's public key file (NAME.key)
  bool force = false;  // promote, remove, replace: skip the liveness checks
  std::string wait;    // promote, replace: --wait DURATION as given
  std::optional<std::chrono::milliseconds> wait_for;  // ... and parsed
};

int fail(const std::string& message, int code) {
  std::cerr << "kvctl: " << message << "\n";
  return code;
}

int run_write(Client& client, const std::string& op, const Options& o) {
  std::string value = o.value;
  if (value == "-") {
    value.assign(std::istreambuf_iterator<char>(std::cin), std::istreambuf_iterator<char>());
  }
  const CallResult r = op == "put" ? client.put(o.key, value) : client.append(o.key, value);
  if (!r.ok()) return fail(r.error, kExitFailed);
  if (o.format == "json") {
    std::cout << "{\"ok\":true,\"revision\":" << r.result.revision << "}\n";
  } else {
    std::cout << "OK\n";
  }
  return kExitOk;
}

// --to END names [KEY, END): END must sort after KEY (the node refuses it
// otherwise, as a request it cannot run).
int check_span(const Options& o) {
  if (o.span.to.empty() || o.span.to > o.key) return kExitOk;
  return fail("--to '" + o.span.to + "' must sort after the key '" + o.key +
                  "' (the keys in [KEY, END) are meant)",
              kExitUsage);
}

std::uint8_t range_flags(const Options& o) {
  return static_cast<std::uint8_t>((o.keys_only ? kRangeKeysOnly : 0) |
                                   (o.count_only ? kRangeCountOnly : 0));
}

// Plain `get KEY` in text prints the value alone, as it always has; every
// other get is a range read.
int run_get(Client& client, const Options& o) {
  const bool one_key = !o.span.prefix && !o.span.from_key && o.span.to.empty();
  const bool plain = one_key && !o.limited && !o.keys_only && !o.count_only;
  if (plain && o.format != "json") {
    const CallResult r = client.get(o.key);
    if (!r.ok()) return fail(r.error, kExitFailed);
    if (o.rev_header) std::cout << "revision: " << r.result.revision << "\n";
    std::cout << r.value << "\n";
    return kExitOk;
  }
  const CallResult r = client.range(o.key, range_end_of(o.key, o.span), o.limit, range_flags(o));
  if (!r.ok()) return fail(r.error, kExitFailed);
  if (o.format == "json") {
    std::cout << range_json(r.result, plain ? &o.key : nullptr);
    return kExitOk;
  }
  if (o.rev_header) std::cout << "revision: " << r.result.revision << "\n";
  std::cout << range_text(r.result.kvs, r.result.count, range_flags(o));
  return kExitOk;
}

int run_del(Client& client, const Options& o) {
  const CallResult r = client.del(o.key, range_end_of(o.key, o.span));
  if (!r.ok()) return fail(r.error, kExitFailed);
  if (o.format == "json") {
    std::cout << "{\"deleted\":" << r.result.count << ",\"revision\":" << r.result.revision
              << "}\n";
  } else {
    std::cout << r.result.count << "\n";
  }
  return kExitOk;
}

// The transaction is read and parsed whole before anything is sent.
int run_txn(Client& client, const Options& o) {
  const std::string text(std::istreambuf_iterator<char>(std::cin),
                         std::istreambuf_iterator<char>{});
  TxnParse parsed = parse_txn(text);
  if (const TxnSyntaxError* e = std::get_if<TxnSyntaxError>(&parsed)) {
    return fail("txn: " + e->to_string() + " (see kvctl txn --help)", kExitUsage);
  }
  const TxnSpec& txn = std::get<TxnSpec>(parsed);
  const CallResult r = client.txn(txn.compares, txn.success, txn.failure);
  if (!r.ok()) return fail(r.error, kExitFailed);
  std::cout << (o.format == "json" ? txn_json(r.result) : txn_text(txn, r.result));
  return kExitOk;
}

// Each endpoint's own view, with its member id and role from the
// configuration read through the log; when that read fails, each node's view
// all the same (roles "unknown"). The nodes are asked while the
// configuration is read, so the read costs time only when the cluster has no
// majority (kStatusConfigDeadline at most).
int run_status(Client& client, const std::vector<std::string>& endpoints,
               std::chrono::milliseconds timeout, const Options& o) {
  std::vector<std::future<Result<StatusReply>>> replies;
  for (const std::string& ep : endpoints) {
    replies.push_back(std::async(std::launch::async, [&client, ep, timeout] {
      return client.status(ep, timeout);
    }));
  }
  std::optional<Config> config;
  const CallResult listed = client.member(MemberChange{.kind = MemberChangeKind::list});
  if (listed.ok()) {
    config = listed.result.member.config;
  } else {
    std::cerr << "kvctl: roles unknown: the configuration could not be read through the log ("
              << listed.error << ")\n";
  }
  const bool json = o.format == "json";
  if (!json) std::cout << status_text_header();
  int rc = kExitOk;
  std::string out = "[";
  for (std::size_t i = 0; i < endpoints.size(); ++i) {
    const std::string& ep = endpoints[i];
    const Result<StatusReply> s = replies[i].get();
    if (!s.ok()) rc = kExitFailed;
    const StatusReply* reply = s.ok() ? &s.value() : nullptr;
    const StatusIdentity who = status_identity(config ? &*config : nullptr, ep, reply);
    const std::string error = s.ok() ? std::string() : s.error();
    if (json) {
      out += (out.size() > 1 ? "," : "") + status_json(ep, reply, error, who);
      continue;
    }
    std::cout << status_text_line(ep, reply, who);
    if (!s.ok()) std::cerr << "kvctl: " << s.error() << "\n";
  }
  if (json) std::cout << out << "]\n";
  return rc;
}

int run_fault(Client& client, const std::vector<std::string>& endpoints,
              std::chrono::milliseconds timeout, const Options& o) {
  FaultRequest request;
  if (o.fault_what == "reach") {
    request.set_reach = true;
    request.reach_all = o.fault_arg == "all";
    if (!request.reach_all) request.reach = split(o.fault_arg);
  } else if (o.fault_what == "drop") {
    std::optional<double> rate;
    try {
      std::size_t used = 0;
      rate = std::stod(o.fault_arg, &used);
      if (used != o.fault_arg.size()) rate.reset();
    } catch (const std::exception&) {
    }
    if (!rate || *rate < 0.0 || *rate > 1.0) {
      return fail("fault drop takes a fraction between 0 and 1, e.g. 0.2 (see kvctl --help)",
                  kExitUsage);
    }
    request.set_drop = true;
    request.drop_rate = *rate;
  } else {
    return fail("fault takes 'reach NAMES|all' or 'drop RATE' (see kvctl --help)", kExitUsage);
  }
  int rc = kExitOk;
  for (const std::string& ep : endpoints) {
    Result<FaultReply> r = client.fault(ep, request, timeout);
    if (!r.ok()) {
      rc = fail(r.error(), kExitFailed);
      continue;
    }
    std::string reach;
    for (const std::string& n : r->reach) reach += (reach.empty() ? "" : ",") + n;
    if (o.format == "json") {
      std::cout << "{\"endpoint\":" << json_string(ep) << ",\"reach\":" << json_string(reach)
                << ",\"drop\":" << r->drop_rate << "}\n";
    } else {
      std::cout << ep << ": reach " << reach << ", drop " << r->drop_rate << "\n";
    }
  }
  return rc;
}

// NAME or ID of a member of `config`.
Result<NodeId> member_id(const Config& config, const std::string& name) {
  if (const MemberEntry* m = config.find_name(name)) return m->id;
  if (!name.empty() && name.find_first_not_of("0123456789") == std::string::npos &&
      name.size() < 10 && config.is_member(static_cast<NodeId>(std::stoul(name)))) {
    return static_cast<NodeId>(std::stoul(name));
  }
  std::string names;
  for (const MemberEntry& m : config.members) names += (names.empty() ? "" : ", ") + m.name;
  return Error{"no member is named " + name + " (members: " + names + ")"};
}

// The change the command names, against the configuration just read: names
// resolved to ids, expected_epoch the epoch read.
Result<MemberChange> member_change(const std::string& command, const MemberResult& now,
                                   const Options& o) {
  MemberChange c{.expected_epoch = now.epoch};
  if (!o.peer_addr.empty()) c.peer_endpoint = client_endpoint(o.peer_addr);
  if (!o.client_addr.empty()) c.client_endpoint = client_endpoint(o.client_addr);
  if (!o.peer_key_file.empty()) {
    Result<CurveKey> key = read_public_key_file(o.peer_key_file);
    if (!key.ok()) return Error{"--peer-key: " + key.error()};
    c.peer_key = key->public_key;
  }
  if (command == "add") {
    c.kind = MemberChangeKind::add_learner;
    c.name = o.member_name;
    return c;
  }
  Result<NodeId> target = member_id(now.config, o.member_name);
  if (!target.ok()) return Error{target.error()};
  c.target = target.value();
  if (command == "promote") c.kind = MemberChangeKind::promote;
  if (command == "remove") c.kind = MemberChangeKind::remove;
  if (command == "update") c.kind = MemberChangeKind::update;
  if (command == "replace") {
    Result<NodeId> other = member_id(now.config, o.member_other);
    if (!other.ok()) return Error{other.error()};
    c.kind = MemberChangeKind::replace;
    c.other = other.value();
  }
  // A promotion names the learner's incarnation as its member entry has it.
  const NodeId promoted = c.kind == MemberChangeKind::replace ? c.other : c.target;
  if (c.kind == MemberChangeKind::promote || c.kind == MemberChangeKind::replace) {
    c.incarnation = now.config.find(promoted)->incarnation;
  }
  return c;
}

const char* member_done(const std::string& command) {
  if (command == "add") return "added learner";
  if (command == "promote") return "promoted";
  if (command == "remove") return "removed";
  if (command == "replace") return "replaced";
  return "updated";
}

// Every address kvctl knows a member at: the endpoints it was given and the
// client addresses in the configuration, each once (as HOST:PORT).
std::vector<std::string> probe_addresses(const Config& config,
                                         const std::vector<std::string>& endpoints) {
  std::vector<std::string> addresses;
  const auto add = [&](const std::string& endpoint) {
    const std::string address = address_of(client_endpoint(endpoint));
    if (std::find(addresses.begin(), addresses.end(), address) == addresses.end()) {
      addresses.push_back(address);
    }
  };
  for (const std::string& ep : endpoints) add(ep);
  for (const MemberEntry& m : config.members) {
    if (!m.client_endpoint.empty()) add(m.client_endpoint);
  }
  return addresses;
}

// Asks each address for its status, all at once, a second at most: who
// answers (by the member id its reply names), what it has applied, where.
// A member that did not answer gets the error of its own client address.
ClusterHealth probe_health(Client& client, const Config& config,
                           const std::vector<std::string>& endpoints) {
  const std::vector<std::string> addresses = probe_addresses(config, endpoints);
  std::vector<std::future<Result<StatusReply>>> replies;
  for (const std::string& address : addresses) {
    replies.push_back(std::async(std::launch::async, [&client, address] {
      return client.status(address, kProbeTimeout);
    }));
  }
  ClusterHealth health;
  std::map<std::string, std::string> errors;  // by address
  for (std::size_t i = 0; i < addresses.size(); ++i) {
    const Result<StatusReply> s = replies[i].get();
    if (!s.ok()) {
      errors[addresses[i]] = s.error();
      continue;
    }
    MemberHealth& h = health[s->node];
    if (h.reachable) continue;  // two addresses of one node: the first answer
    h = MemberHealth{.reachable = true, .applied_below = s->applied_below,
                     .client_endpoint = client_endpoint(addresses[i])};
  }
  for (const MemberEntry& m : config.members) {
    if (is_reachable(health, m.id) || m.client_endpoint.empty()) continue;
    health[m.id] = MemberHealth{.client_endpoint = m.client_endpoint,
                                .error = errors[address_of(m.client_endpoint)]};
  }
  return health;
}

// Re-checks the learner every kPromoteRecheck until it is ready or `wait`
// has passed (none: checks once), with its progress on stderr at most once a
// second. Empty: ready; otherwise why not, with the numbers. `health` is
// what kvctl found last.
constexpr std::chrono::milliseconds kPromoteRecheck{500};
constexpr std::chrono::milliseconds kProgressEvery{1000};

std::string wait_until_ready(Client& client, const Config& config, NodeId learner, const Options& o,
                             const std::vector<std::string>& endpoints, ClusterHealth& health) {
  const std::optional<std::chrono::milliseconds>& wait = o.wait_for;
  using SteadyClock = std::chrono::steady_clock;
  const auto start = SteadyClock::now();
  auto last_progress = start - kProgressEvery;
  for (;;) {
    const auto checked = SteadyClock::now();
    const PromotionCheck check = promotion_check(config, health, learner);
    if (check.readiness == Readiness::ready) return {};
    const bool worth_waiting =
        check.readiness == Readiness::behind || check.readiness == Readiness::not_answering;
    if (!worth_waiting) return check.problem;
    if (!wait) return check.problem + ", or wait for it with --wait DURATION";
    if (checked - start >= *wait) return check.problem + " (waited " + o.wait + ")";
    if (checked - last_progress >= kProgressEvery) {
      std::cerr << "kvctl: " << promotion_progress(*config.find(learner), check) << ", waiting\n";
      last_progress = checked;
    }
    std::this_thread::sleep_until(std::min(checked + kPromoteRecheck, start + *wait));
    health = probe_health(client, config, endpoints);
  }
}

// The liveness checks of a change (--force skips them): a learner to be
// promoted answers and is caught up (with --wait, kvctl waits until it is),
// and the voters the change leaves have a live majority. Empty: go ahead.
std::string liveness_problem(Client& client, const MemberResult& now, const MemberChange& change,
                             const Options& o, const std::vector<std::string>& endpoints) {
  const bool promotes =
      change.kind == MemberChangeKind::promote || change.kind == MemberChangeKind::replace;
  if (!promotes && change.kind != MemberChangeKind::remove) return {};
  ClusterHealth health = probe_health(client, now.config, endpoints);
  if (promotes) {
    const NodeId learner = change.kind == MemberChangeKind::replace ? change.other : change.target;
    const std::string behind =
        wait_until_ready(client, now.config, learner, o, endpoints, health);
    if (!behind.empty()) return behind;
  }
  return live_majority_problem(config_after(now.config, change), health);
}

// list, or a change: the configuration is read through the log first (its
// epoch goes into the change, so two operators cannot both change it).
int run_member(Client& client, const std::string& command, const Options& o,
               const std::vector<std::string>& endpoints) {
  // A cluster with keys (kvctl talks to it with --server-key) lets peers in
  // by the keys of its configuration: a member added without one could
  // never connect.
  if (command == "add" && !o.server_key.empty() && o.peer_key_file.empty()) {
    return fail("member add: this cluster runs with keys (--server-key), so the new member's "
                "public key is part of its entry: make a pair (kvctl keygen " + o.member_name +
                ") and give --peer-key " + o.member_name + ".key", kExitUsage);
  }
  const CallResult listed = client.member(MemberChange{.kind = MemberChangeKind::list});
  if (!listed.ok()) return fail(listed.error, kExitFailed);
  const MemberResult& now = listed.result.member;
  const bool json = o.format == "json";
  if (command == "list") {
    const ClusterHealth health = probe_health(client, now.config, endpoints);
    std::cout << (json ? member_list_json(now, health) : member_list_text(now, health));
    return kExitOk;
  }
  Result<MemberChange> change = member_change(command, now, o);
  if (!change.ok()) return fail(change.error(), kExitFailed);
  if (!o.force) {
    const std::string problem = liveness_problem(client, now, change.value(), o, endpoints);
    if (!problem.empty()) {
      return fail("member " + command + " refused: " + problem + "; or skip this check with --force",
                  kExitFailed);
    }
  }
  const CallResult r = client.member(change.value());
  if (!r.ok()) return fail(r.error, kExitFailed);
  const MemberResult& done = r.result.member;
  if (!done.error.empty()) return fail("member " + command + " refused: " + done.error, kExitFailed);
  if (json) {
    std::cout << member_change_json(done);
    return kExitOk;
  }
  // A replace names the learner that took the voter's place first.
  const std::string what = command == "replace" ? o.member_other + " " + member_done(command)
                                                : std::string(member_done(command));
  std::cout << member_change_text(what, done, &now.config);
  if (command == "add") {
    std::cout << "start it with:\n  " << start_command(done, done.id, !o.peer_key_file.empty());
  }
  return kExitOk;
}

}  // namespace

int run_keygen(const Options& o) {
  const CurveKey key = generate_curve_key();
  if (key.public_key.empty()) return fail("this libzmq has no CURVE support", kExitFailed);
  Result<bool> written = write_key_files(o.keygen_dir, o.keygen_name, key);
  if (!written.ok()) return fail(written.error(), kExitFailed);
  const std::string base = (o.keygen_dir == "." ? "" : o.keygen_dir + "/") + o.keygen_name;
  std::cout << "wrote " << base << ".key (public: give it to whoever must accept this key) and "
            << base << ".key_secret (secret, mode 0600: keep it where only its owner reads it)\n";
  return kExitOk;
}

// --server-key and --key: both or neither.
Result<std::optional<ClientCurve>> load_client_curve(const Options& o) {
  if (o.server_key.empty() && o.client_key.empty()) return std::optional<ClientCurve>();
  if (o.server_key.empty() || o.client_key.empty()) {
    return Error{"--server-key and --key go together: the cluster's client public key (.key) and "
                 "this client's key pair (.key_secret)"};
  }
  ClientCurve curve;
  for (const std::string& file : split(o.server_key)) {
    Result<CurveKey> server = read_public_key_file(file);
    if (!server.ok()) return Error{"--server-key: " + server.error()};
    curve.server_keys.push_back(server->public_key);
  }
  Result<CurveKey> own = read_secret_key_file(o.client_key);
  if (!own.ok()) return Error{"--key: " + own.error()};
  curve.own = own.value();
  return std::optional<ClientCurve>(std::move(curve));
}

int run_bench(const std::vector<std::string>& endpoints, std::chrono::milliseconds timeout,
              const std::optional<ClientCurve>& curve, const Options& o) {
  const std::optional<std::chrono::milliseconds> duration = parse_duration(o.bench_duration);
  if (!duration || duration->count() <= 0) {
    return fail("--duration '" + o.bench_duration + "' is not a duration like 10s or 1m", kExitUsage);
  }
  Result<bench::Mix> mix = bench::parse_mix(o.bench_mix);
  if (!mix.ok()) return fail("--mix: " + mix.error(), kExitUsage);
  const bench::Config config{.endpoints = endpoints,
                             .clients = o.bench_clients,
                             .duration = *duration,
                             .value_bytes = o.bench_value_bytes,
                             .keys = o.bench_keys,
                             .mix = mix.value(),
                             .deadline = timeout,
                             .json = o.format == "json",
                             .curve = curve};
  zmq::context_t ctx(2);
  const bench::Report r = bench::run(config, bench::kvpaxos_sessions(ctx, config));
  std::cout << (config.json ? bench::format_json(config, r) : bench::format_text(config, r));
  if (r.ok == 0) return fail("no operation succeeded; is the cluster running at " + o.endpoints + "?", kExitFailed);
  return kExitOk;
}

std::atomic<bool> interrupted{false};

// Events as they come until SIGINT or SIGTERM (or --count events); the
// stream fails over between the endpoints by itself. Exit 1 when the watch
// cannot go on (compacted: the message says from which revision to read).
// One node's state: the barrier read and the snapshot must meet the same node.
int run_snapshot_save(const std::vector<std::string>& endpoints, std::chrono::milliseconds timeout,
                      const std::optional<ClientCurve>& curve, const Options& o) {
  if (endpoints.size() != 1) {
    return fail("snapshot save reads one node's state: give exactly one --endpoints address "
                "(got " + std::to_string(endpoints.size()) + ")", kExitUsage);
  }
  zmq::context_t ctx(1);
  Client client(ctx, ClientOptions{.endpoints = endpoints,
                                   .curve = curve,
                                   .deadline = timeout,
                                   .attempt_timeout = timeout});
  Result<std::string> saved =
      snapshot_cmd::save(client, endpoints.front(), o.snapshot_file, timeout, std::cerr);
  if (!saved.ok()) return fail(saved.error(), kExitFailed);
  std::cout << saved.value() << "\n";
  return kExitOk;
}

int run_watch(const std::vector<std::string>& endpoints, std::chrono::milliseconds timeout,
              const std::optional<ClientCurve>& curve, const Options& o) {
  std::signal(SIGINT, [](int) { interrupted = true; });
  std::signal(SIGTERM, [](int) { interrupted = true; });
  zmq::context_t ctx(1);
  WatchStream watch(ctx,
                    ClientOptions{.endpoints = endpoints, .curve = curve, .deadline = timeout,
                                  .attempt_timeout = std::min(timeout, std::chrono::milliseconds(500)),
                                  .learn_members_every = kLearnMembersEvery},
                    WatchOptions{.key = o.key, .range_end = range_end_of(o.key, o.span),
                                 .start_revision = o.watch_rev});
  std::uint64_t printed = 0;
  while (!interrupted && (o.watch_count == 0 || printed < o.watch_count)) {
    Result<WatchBatch> b = watch.next(std::chrono::milliseconds(200));
    if (!b.ok()) return fail(b.error(), kExitFailed);
    for (const WatchEvent& e : b->events) {
      std::cout << (o.format == "json" ? event_json(e) : event_text(e));
      if (o.watch_count != 0 && ++printed == o.watch_count) break;
    }
    std::cout.flush();
  }
  return kExitOk;
}

// get's and del's --prefix, --from-key and --to END; at most one of them.
void add_span_flags(CLI::App& cmd, KeySpan& span) {
  CLI::Option* prefix = cmd.add_flag("--prefix", span.prefix, "Every key that starts with KEY");
  CLI::Option* from_key =
      cmd.add_flag("--from-key", span.from_key, "Every key from KEY on, in byte order");
  CLI::Option* to = cmd.add_option("--to", span.to, "The keys in [KEY, END), in byte order");
  prefix->excludes(from_key)->excludes(to);
  from_key->excludes(to);
}

int main(int argc, char** argv) {
  Options o;
  CLI::App app{"kvctl: talk to a kvpaxos cluster"};
  app.set_version_flag("--version", "kvctl " KVPAXOS_VERSION);
  app.require_subcommand(1);
  app.add_option("--endpoints", o.endpoints,
                 "Client addresses of the nodes, HOST:PORT,...; "
                 "requests fail over to the next on timeout");
  app.add_option("--timeout", o.timeout,
                 "Overall deadline of a request, e.g. 5s, 500ms, 2m (default 5s); after it the "
                 "outcome is unknown");
  app.add_option("-w,--write-out", o.format, "Output format: text or json")
      ->check(CLI::IsMember({"text", "json"}));
  app.add_option("--server-key", o.server_key,
                 "The cluster's client public key (the .key of the nodes' --client-key); with "
                 "--key, every request is encrypted and the nodes are authenticated. While the "
                 "cluster's key is rotated, give the old and the new file, comma-separated");
  app.add_option("--key", o.client_key,
                 "This client's key pair (a .key_secret file, mode 0600); a node started with "
                 "--client-keys accepts it only if its .key is there");

  auto* put = app.add_subcommand(
      "put", "Set KEY to VALUE; prints OK (-w json: {\"ok\":true,\"revision\":R})");
  put->add_option("key", o.key, "Key")->required();
  put->add_option("value", o.value, "Value, or - to read it from stdin")->required();
  auto* append = app.add_subcommand(
      "append", "Append VALUE to KEY (Put when absent); prints OK (-w json: "
                "{\"ok\":true,\"revision\":R})");
  append->add_option("key", o.key, "Key")->required();
  append->add_option("value", o.value, "Value, or - to read it from stdin")->required();
  auto* get = app.add_subcommand(
      "get", "Print KEY's value (empty line when absent); with a range flag, --limit, "
             "--keys-only or --count-only, each key in byte order, then its value, on lines of "
             "their own (as etcdctl get). -w json: {\"revision\",\"count\",\"more\",\"kvs\"}, "
             "and also \"key\" and \"value\" for a get of KEY without flags");
  get->add_option("key", o.key, "Key (with --prefix, the prefix; \"\" --prefix is every key)")
      ->required();
  add_span_flags(*get, o.span);
  const CLI::Option* limit = get->add_option(
      "--limit", o.limit, "At most N keys (0: no limit); json's \"more\" says whether more are "
                          "in range");
  CLI::Option* keys_only =
      get->add_flag("--keys-only", o.keys_only, "Print the keys alone, without their values");
  get->add_flag("--count-only", o.count_only, "Print only how many keys are in range")
      ->excludes(keys_only);
  get->add_flag("--rev-header", o.rev_header,
                "Text output: first a line \"revision: R\", the store revision read at");
  auto* del = app.add_subcommand(
      "del", "Delete KEY, or the keys a range flag names; prints how many were deleted (as "
             "etcdctl del). -w json: {\"deleted\":N,\"revision\":R}");
  del->add_option("key", o.key, "Key (with --prefix, the prefix)")->required();
  add_span_flags(*del, o.span);
  auto* txn = app.add_subcommand(
      "txn", "Read a transaction from stdin in etcdctl's txn grammar and run it as one op: "
             "compares one a line (version(\"k\") = \"0\", mod(\"k\") < \"42\", "
             "create(\"k\") > \"3\", value(\"k\") != \"v\"), a blank line, the ops to run if "
             "all hold, a blank line, the ops to run otherwise (put K V, append K V, get K [flags "
             "as get's], del K [--prefix|--from-key|--to END]; \"double quotes\" with \\ escapes "
             "or 'single quotes' around words with spaces). Prints SUCCESS or FAILURE, then each "
             "op's result after a blank line. -w json: {\"succeeded\",\"revision\",\"responses\"}");
  auto* watch = app.add_subcommand(
      "watch", "Print every change to KEY (or the keys a range flag names) as it happens, in "
               "revision order, until interrupted: PUT, the key and the value, or DELETE and "
               "the key, on lines of their own (as etcdctl watch); -w json: one object a line. "
               "Fails over between the endpoints with no change missed or repeated");
  watch->add_option("key", o.key, "Key (with --prefix, the prefix)")->required();
  add_span_flags(*watch, o.span);
  watch->add_option("--rev", o.watch_rev,
                    "Start at this revision (0: with the next change); one older than the "
                    "nodes keep fails with 'compacted' and the oldest revision kept");
  watch->add_option("--count", o.watch_count, "Exit after this many events (0: never)");
  auto* status = app.add_subcommand(
      "status", "Each endpoint's name, member id and role (from the configuration read through "
                "the log; unknown when it cannot be read), reachability, applied instance, Min "
                "and Max");
  auto* fault = app.add_subcommand(
      "fault", "Fault injection (nodes run with --fault-injection): 'reach NAME,...' or "
               "'reach all', 'drop RATE'");
  fault->add_option("what", o.fault_what, "reach or drop")->required();
  fault->add_option("arg", o.fault_arg, "node names (or all) for reach; a fraction for drop")
      ->required();

  auto* member = app.add_subcommand(
      "member", "The cluster's membership, through the log: list, add (a learner), promote, "
                "remove, replace, update. A change names the epoch it read and is refused if "
                "another change came first or is still pending (exit 1, with the reason)");
  member->require_subcommand(1);
  auto* member_list = member->add_subcommand(
      "list", "Epoch, pending change and each member's id, name, role, whether it answers "
              "kvctl within a second (REACHABLE), its applied instance count (APPLIED), how far "
              "it is behind the furthest that answers (LAG) and addresses (-w json: "
              "{\"epoch\",\"alpha\",\"pending_from\",\"members\"})");
  auto* member_add = member->add_subcommand(
      "add", "Add NAME as a learner (it gets every decision and votes in nothing); prints its "
             "id, the epoch, the instance it is a member from, and the kvpaxosd command to "
             "start it with");
  member_add->add_option("name", o.member_name, "The new member's name")->required();
  member_add->add_option("--peer-addr", o.peer_addr, "HOST:PORT its peers reach it at")->required();
  member_add->add_option("--client-addr", o.client_addr, "HOST:PORT clients reach it at");
  member_add->add_option("--peer-key", o.peer_key_file,
                         "Its CURVE public key file (kvctl keygen NAME writes NAME.key); required "
                         "when the cluster runs with keys. Peers accept it from the new member "
                         "on, with no file copied to them");
  auto* member_promote =
      member->add_subcommand("promote", "Make the learner NAME (or ID) a voter");
  member_promote->add_option("name", o.member_name, "Learner name or id")->required();
  member_promote->add_flag("--force", o.force,
                           "Promote even if kvctl cannot see the learner answer and caught up");
  member_promote->add_option("--wait", o.wait,
                             "While the learner does not answer or is catching up, check again "
                             "every 500 ms for up to this long (e.g. 30s, 5m), then promote it");
  auto* member_remove = member->add_subcommand(
      "remove", "Remove the member NAME (or ID); refused (exit 1) when the voters that would "
                "remain and answer kvctl are not a majority of them");
  member_remove->add_option("name", o.member_name, "Member name or id")->required();
  member_remove->add_flag("--force", o.force,
                          "Remove even if the voters left would not have a live majority that "
                          "kvctl can see");
  auto* member_replace = member->add_subcommand(
      "replace", "Remove the voter OLD and promote the learner NEW in its place, at once");
  member_replace->add_option("old", o.member_name, "The voter going")->required();
  member_replace->add_option("new", o.member_other, "The learner taking its place")->required();
  member_replace->add_flag("--force", o.force,
                           "Replace even if kvctl cannot see the learner answer and caught up, "
                           "or the voters after it would not have a live majority kvctl can see");
  member_replace->add_option("--wait", o.wait,
                             "While the learner does not answer or is catching up, check again "
                             "every 500 ms for up to this long, then replace");
  auto* member_update = member->add_subcommand(
      "update", "Change the addresses of NAME (or ID); then restart it with the new address");
  member_update->add_option("name", o.member_name, "Member name or id")->required();
  member_update->add_option("--peer-addr", o.peer_addr, "HOST:PORT its peers reach it at");
  member_update->add_option("--client-addr", o.client_addr, "HOST:PORT clients reach it at");
  member_update->add_option("--peer-key", o.peer_key_file,
                            "A new CURVE public key file for it (re-keying): peers accept only "
                            "that key from it once the change is in force; restart it with the "
                            "new pair");

  auto* keygen = app.add_subcommand(
      "keygen", "Write a new CURVE key pair: DIR/NAME.key (public) and DIR/NAME.key_secret "
                "(secret, mode 0600), in the ZeroMQ certificate format (CZMQ, pyzmq)");
  keygen->add_option("name", o.keygen_name, "Key name, e.g. n1 or client-alice")->required();
  keygen->add_option("--dir", o.keygen_dir, "Directory to write into (created 0700)")
      ->capture_default_str();

  auto* snapshot = app.add_subcommand(
      "snapshot", "Backups: 'save FILE' fetches a snapshot of one node's state; 'status FILE' "
                  "says what a saved file holds. 'kvpaxosd restore' seeds a new cluster from one");
  snapshot->require_subcommand(1);
  auto* snapshot_save = snapshot->add_subcommand(
      "save", "Save a snapshot of the state of the node given as the one --endpoints address: "
              "taken after a read through the log there, so it holds every write acknowledged "
              "before the save began (with keys, kvctl's --key must be in the nodes' "
              "--admin-keys). The cluster keeps serving meanwhile");
  snapshot_save->add_option("file", o.snapshot_file, "File to write (must not exist)")->required();
  auto* snapshot_status = snapshot->add_subcommand(
      "status", "Print a saved snapshot's log instance, store revision, keys, size and whether "
                "its checksums hold (exit 1 when the file is damaged); talks to no node");
  snapshot_status->add_option("file", o.snapshot_file, "A file kvctl snapshot save wrote")
      ->required();

  auto* bench = app.add_subcommand(
      "bench", "Closed-loop load: N clients, each with one request outstanding, for a "
               "duration; progress each second, then ops/s and latency percentiles");
  bench->add_option("--clients", o.bench_clients, "Concurrent clients")
      ->capture_default_str()->check(CLI::Range(1, 4096));
  bench->add_option("--duration", o.bench_duration, "How long, e.g. 10s, 1m")->capture_default_str();
  bench->add_option("--value-size", o.bench_value_bytes, "Bytes per put/append value")
      ->capture_default_str()->check(CLI::Range(std::size_t{0}, std::size_t{16} << 20));
  bench->add_option("--keys", o.bench_keys, "Key space (keys bench-0 .. bench-N-1)")
      ->capture_default_str()->check(CLI::Range(std::uint64_t{1}, std::uint64_t{1} << 40));
  bench->add_option("--mix", o.bench_mix, "Op mix in percent, e.g. put=50,get=50 or "
                                          "put=20,get=70,append=10")
      ->capture_default_str();

  // The global flags only: a KVCTL_FORCE left in a shell must not skip the
  // liveness checks of every later member change.
  read_flags_from_environment(app, "KVCTL", {"help", "version"});
  app.footer("The flags before the command can also be set in the environment as KVCTL_ and "
             "the flag's name in capitals, dashes as underscores: KVCTL_ENDPOINTS, "
             "KVCTL_TIMEOUT, KVCTL_WRITE_OUT, KVCTL_SERVER_KEY, KVCTL_KEY.");
  try {
    app.parse(argc, argv);
  } catch (const CLI::Success& e) {  // --help, --version: printed, exit 0
    return app.exit(e);
  } catch (const CLI::ParseError& e) {
    return fail(std::string(e.what()) + " (see kvctl --help)", kExitUsage);
  }

  if (*keygen) return run_keygen(o);
  if (*snapshot_status) {
    Result<std::string> shown = snapshot_cmd::status(o.snapshot_file, o.format == "json");
    if (!shown.ok()) return fail(shown.error(), kExitFailed);
    std::cout << shown.value() << "\n";
    return kExitOk;
  }
  for (const std::string* addr : {&o.peer_addr, &o.client_addr}) {
    if (!addr->empty() && !valid_host_port(*addr)) {
      return fail("'" + *addr + "' is not HOST:PORT (e.g. 127.0.0.1:7104)", kExitUsage);
    }
  }
  if (*member_update && o.peer_addr.empty() && o.client_addr.empty() && o.peer_key_file.empty()) {
    return fail("member update needs --peer-addr, --client-addr or --peer-key", kExitUsage);
  }
  o.limited = limit->count() > 0;
  if ((*get || *del) && check_span(o) != kExitOk) return kExitUsage;
  const std::vector<std::string> endpoints = split(o.endpoints);
  if (endpoints.empty()) {
    return fail("no endpoints: give --endpoints HOST:PORT,... or set KVCTL_ENDPOINTS", kExitUsage);
  }
  for (const std::string& ep : endpoints) {
    if (!valid_host_port(ep)) {
      return fail("--endpoints: '" + ep + "' is not HOST:PORT (e.g. 127.0.0.1:7201)", kExitUsage);
    }
  }
  Result<std::optional<ClientCurve>> curve = load_client_curve(o);
  if (!curve.ok()) return fail(curve.error(), kExitUsage);
  if (!o.wait.empty()) {
    o.wait_for = parse_duration(o.wait);
    if (!o.wait_for) {
      return fail("--wait '" + o.wait + "' is not a duration like 30s, 500ms or 5m", kExitUsage);
    }
  }
  const std::optional<std::chrono::milliseconds> timeout = parse_duration(o.timeout);
  if (!timeout) {
    return fail("--timeout '" + o.timeout + "' is not a duration like 5s, 500ms or 2m", kExitUsage);
  }

  if (*bench) return run_bench(endpoints, *timeout, curve.value(), o);
  if (*snapshot_save) return run_snapshot_save(endpoints, *timeout, curve.value(), o);
  if (*watch) return run_watch(endpoints, *timeout, curve.value(), o);

  zmq::context_t ctx(1);
  ClientOptions options{.endpoints = endpoints,
                        .curve = curve.value(),
                        .deadline = *timeout,
                        .attempt_timeout = std::min(*timeout, std::chrono::milliseconds(500)),
                        .learn_members_every = kLearnMembersEvery};
  // status reads the configuration for the roles alone: a cluster without a
  // majority must not hold back what each node says for the whole --timeout.
  if (*status) options.deadline = std::min(options.deadline, kStatusConfigDeadline);
  Client client(ctx, options);
  if (*put) return run_write(client, "put", o);
  if (*append) return run_write(client, "append", o);
  if (*get) return run_get(client, o);
  if (*del) return run_del(client, o);
  if (*txn) return run_txn(client, o);
  if (*status) return run_status(client, endpoints, *timeout, o);
  if (*fault) return run_fault(client, endpoints, *timeout, o);
  if (*member) {
    for (const auto& [cmd, name] : {std::pair{member_list, "list"}, std::pair{member_add, "add"},
                                    std::pair{member_promote, "promote"},
                                    std::pair{member_remove, "remove"},
                                    std::pair{member_replace, "replace"},
                                    std::pair{member_update, "update"}}) {
      if (*cmd) return run_member(client, name, o, endpoints);
    }
  }
  return fail("no command (see kvctl --help)", kExitUsage);
}
