#include "process/process_cluster.hpp"

#include <arpa/inet.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <random>
#include <sstream>
#include <thread>

#include "client/client.hpp"

namespace kvpaxos::test {
namespace {

bool port_free(int port) {
  const int fd = ::socket(AF_INET, SOCK_STREAM, 0);
  if (fd < 0) return false;
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_port = htons(static_cast<std::uint16_t>(port));
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  const bool ok = ::bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) == 0;
  ::close(fd);
  return ok;
}

// A base port with base+1..base+n (peers) and base+101..base+100+n (clients) free.
int pick_base(int n, std::mt19937& rng) {
  for (int attempt = 0; attempt < 100; ++attempt) {
    const int base = 10000 + static_cast<int>(rng() % 98) * 100;
    bool ok = true;
    for (int i = 1; i <= n && ok; ++i) ok = port_free(base + i) && port_free(base + 100 + i);
    if (ok) return base;
  }
  return 0;
}

}  // namespace

void use_client_key(zmq::socket_t& dealer, const std::optional<ClientCurve>& curve) {
  if (curve) make_curve_client(dealer, curve->own, curve->server_keys.front());
}

ProcessCluster::ProcessCluster(int nodes, std::vector<std::string> extra_flags, bool durable,
                               Keys keys, int open_file_limit, int spare)
    : open_file_limit_(open_file_limit),
      capacity_(nodes + spare),
      durable_(durable),
      extra_flags_(std::move(extra_flags)),
      first_nodes_(nodes) {
  char tmpl[] = "/tmp/kvpaxos-proc-XXXXXX";
  dir_ = ::mkdtemp(tmpl) ? tmpl : "/tmp";
  if (keys == Keys::on) key_flags_ = make_keys(nodes);
  for (int attempt = 0; attempt < 5 && !started_; ++attempt) {
    started_ = launch(nodes);
    if (!started_) kill_all();
  }
  if (!started_) ADD_FAILURE() << "cluster of " << nodes << " did not start in 5 tries\n" << logs();
}

ProcessCluster::~ProcessCluster() {
  kill_all();
  // KVPAXOS_KEEP_TEST_DIRS=1 keeps the logs and data dirs to look at.
  if (std::getenv("KVPAXOS_KEEP_TEST_DIRS") != nullptr) {
    std::cerr << "ProcessCluster: kept " << dir_ << "\n";
    return;
  }
  std::error_code ignored;
  if (dir_ != "/tmp") std::filesystem::remove_all(dir_, ignored);
}

std::vector<std::string> ProcessCluster::make_keys(int nodes) {
  const std::string keys = keys_dir();
  auto made = [](const Result<bool>& r) {
    if (!r.ok()) ADD_FAILURE() << r.error();
  };
  std::error_code ec;
  // The first nodes' pairs in keys_dir()/peer; a spare's in its own dir:
  // nothing of it is copied to the first nodes (its key travels in member add).
  for (int i = 0; i < capacity_; ++i) {
    const CurveKey key = generate_curve_key();
    peer_public_keys_.push_back(key.public_key);
    made(write_key_files(peer_keys_dir(i), name(i), key));
  }
  const CurveKey port = generate_curve_key();
  made(write_key_files(keys + "/client-port", "cluster", port));
  const CurveKey alice = generate_curve_key();
  made(write_key_files(keys, "alice", alice));
  const auto alice_in = [&](const std::string& dir) {
    std::filesystem::create_directories(dir, ec);
    std::filesystem::copy_file(keys + "/alice.key", dir + "/alice.key", ec);
    if (ec) ADD_FAILURE() << "cannot copy alice.key to " << dir << ": " << ec.message();
  };
  alice_in(keys + "/clients");
  curve_ = ClientCurve{{port.public_key}, alice};
  std::vector<std::string> flags = {"--client-key", keys + "/client-port/cluster.key_secret",
                                    "--client-keys", keys + "/clients"};
  if (capacity_ > nodes) {  // membership changes: alice is the operator
    alice_in(keys + "/admins");
    flags.insert(flags.end(), {"--admin-keys", keys + "/admins"});
  }
  return flags;
}

std::string ProcessCluster::peer_keys_dir(int i) const {
  return i < first_nodes_ ? keys_dir() + "/peer" : keys_dir() + "/" + name(i);
}

std::string ProcessCluster::client_endpoint_of(int i) const {
  return "127.0.0.1:" + std::to_string(base_ + 101 + i);
}

std::string ProcessCluster::peer_endpoint_of(int i) const {
  return "127.0.0.1:" + std::to_string(base_ + 1 + i);
}

// Node i's flags: its name and ports, the keys, the cluster's flags, its
// data dir (emptied) when durable.
std::vector<std::string> ProcessCluster::node_args(int i, const std::string& cluster) const {
  std::vector<std::string> args = {KVPAXOSD_PATH, "--name", name(i), "--cluster", cluster,
                                   "--client-addr", client_endpoint_of(i)};
  if (!key_flags_.empty()) args.insert(args.end(), {"--peer-keys", peer_keys_dir(i)});
  args.insert(args.end(), key_flags_.begin(), key_flags_.end());
  args.insert(args.end(), extra_flags_.begin(), extra_flags_.end());
  if (durable_) {
    std::error_code ignored;
    std::filesystem::remove_all(data_dir(i), ignored);
    args.insert(args.end(), {"--data-dir", data_dir(i)});
  }
  return args;
}

bool ProcessCluster::launch(int nodes) {
  std::mt19937 rng(std::random_device{}());
  base_ = pick_base(capacity_, rng);
  if (base_ == 0) return false;
  std::string cluster;
  endpoints_.clear();
  peer_endpoints_.clear();
  args_.clear();
  exit_status_.clear();
  for (int i = 0; i < nodes; ++i) {
    peer_endpoints_.push_back(peer_endpoint_of(i));
    cluster += (cluster.empty() ? "" : ",") + name(i) + "=" + peer_endpoints_.back();
    endpoints_.push_back(client_endpoint_of(i));
  }
  for (int i = 0; i < nodes; ++i) {
    args_.push_back(node_args(i, cluster));
    exit_status_.push_back(-1);
    pids_.push_back(durable_ ? spawn(i, {"--first-start"}) : spawn(i));
  }
  std::vector<int> all(static_cast<std::size_t>(nodes));
  for (int i = 0; i < nodes; ++i) all[static_cast<std::size_t>(i)] = i;
  return wait_until_serving(all);
}

pid_t ProcessCluster::spawn(int i, const std::vector<std::string>& added_flags) {
  std::vector<std::string> args = args_.at(static_cast<std::size_t>(i));
  args.insert(args.end(), added_flags.begin(), added_flags.end());
  const std::string log = dir_ + "/" + name(i) + ".log";
  const pid_t pid = ::fork();
  if (pid == 0) {
    // A test process that dies (a sanitizer abort, a crash) takes its nodes
    // with it; orphans would hold ctest's output pipe open until its timeout.
    ::prctl(PR_SET_PDEATHSIG, SIGKILL);
    std::vector<char*> argv;
    for (auto& a : args) argv.push_back(a.data());
    argv.push_back(nullptr);
    if (FILE* f = std::freopen(log.c_str(), "a", stderr)) (void)f;
    if (open_file_limit_ > 0) {
      const rlimit limit{static_cast<rlim_t>(open_file_limit_), static_cast<rlim_t>(open_file_limit_)};
      if (::setrlimit(RLIMIT_NOFILE, &limit) != 0) ::_exit(126);
    }
    ::execv(KVPAXOSD_PATH, argv.data());
    ::_exit(127);
  }
  return pid;
}

bool ProcessCluster::wait_until_serving(const std::vector<int>& nodes) {
  Client probe(ctx_, ClientOptions{.endpoints = endpoints_, .curve = curve_});
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(20);
  std::vector<char> up(nodes.size(), 0);
  while (std::chrono::steady_clock::now() < deadline) {
    bool all = true;
    for (std::size_t k = 0; k < nodes.size(); ++k) {
      const int i = nodes[k];
      if (!alive(i)) return false;  // most likely a port taken since pick_base
      if (!up[k]) {
        up[k] = probe.status(endpoints_[static_cast<std::size_t>(i)], std::chrono::milliseconds(200)).ok();
      }
      all = all && up[k];
    }
    if (all) return true;
  }
  return false;
}

void ProcessCluster::kill(int i) {
  pid_t& pid = pids_.at(static_cast<std::size_t>(i));
  if (pid <= 0) return;
  ::kill(pid, SIGKILL);
  ::waitpid(pid, nullptr, 0);
  pid = -1;
}

bool ProcessCluster::restart(int i, const std::vector<std::string>& added_flags) {
  kill(i);
  exit_status_.at(static_cast<std::size_t>(i)) = -1;
  pids_.at(static_cast<std::size_t>(i)) = spawn(i, added_flags);
  return wait_until_serving({i});
}

int ProcessCluster::add_node(const std::string& cluster) {
  const int i = size();
  if (i >= capacity_) {
    ADD_FAILURE() << "add_node: no spare node left (" << capacity_ << " in all)";
    return i;
  }
  if (!key_flags_.empty()) {
    // The public keys of the members it is told to ask, as an operator
    // copies them.
    std::stringstream names(cluster);
    for (std::string item; std::getline(names, item, ',');) {
      const std::string member = item.substr(0, item.find('='));
      const int j = member.size() > 1 ? std::atoi(member.c_str() + 1) - 1 : -1;
      if (j < 0 || j >= capacity_) continue;
      std::ofstream(peer_keys_dir(i) + "/" + member + ".key")
          << format_key_file(CurveKey{peer_key(j), ""}, /*secret=*/false);
    }
  }
  peer_endpoints_.push_back(peer_endpoint_of(i));
  endpoints_.push_back(client_endpoint_of(i));
  args_.push_back(node_args(i, cluster));
  exit_status_.push_back(-1);
  pids_.push_back(spawn(i, {"--initial-cluster-state", "existing"}));
  return i;
}

int ProcessCluster::exit_status(int i) {
  alive(i);
  return exit_status_.at(static_cast<std::size_t>(i));
}

bool ProcessCluster::alive(int i) {
  const pid_t pid = pids_.at(static_cast<std::size_t>(i));
  if (pid <= 0) return false;
  int status = 0;
  if (::waitpid(pid, &status, WNOHANG) == 0) return true;
  pids_[static_cast<std::size_t>(i)] = -1;  // reaped
  exit_status_[static_cast<std::size_t>(i)] = WIFEXITED(status) ? WEXITSTATUS(status) : -1;
  return false;
}

void ProcessCluster::signal(int i, int sig) {
  const pid_t pid = pids_.at(static_cast<std::size_t>(i));
  if (pid > 0) ::kill(pid, sig);
}

std::string ProcessCluster::logs() const {
  std::ostringstream out;
  for (int i = 0; i < size(); ++i) {
    std::ifstream in(dir_ + "/" + name(i) + ".log");
    std::vector<std::string> lines;
    for (std::string line; std::getline(in, line);) lines.push_back(line);
    out << "--- " << name(i) << "\n";
    for (std::size_t k = lines.size() > 20 ? lines.size() - 20 : 0; k < lines.size(); ++k)
      out << lines[k] << "\n";
  }
  return out.str();
}

void ProcessCluster::kill_all() {
  for (pid_t pid : pids_) {
    if (pid <= 0) continue;
    ::kill(pid, SIGCONT);
    ::kill(pid, SIGKILL);
    ::waitpid(pid, nullptr, 0);
  }
  pids_.clear();
}

}  // namespace kvpaxos::test
