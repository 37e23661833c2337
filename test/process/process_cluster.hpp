// ProcessCluster: real kvpaxosd processes on 127.0.0.1 for tests that need
// whole processes (bad input on the wire, SIGSTOP/SIGKILL nemeses).
//
// Ports come from 10000..19999, below the kernel's ephemeral range, so the
// outgoing connections of tests running in parallel cannot take them; a port
// that is taken anyway makes a node exit at start-up, and the cluster is
// started again on other ports. Every node is killed when the object dies.
// Not thread-safe: drive it from the test's main thread.
#pragma once

#include <sys/types.h>

#include <chrono>
#include <string>
#include <vector>

#include <zmq.hpp>

#include "client/client.hpp"

namespace kvpaxos::test {

// With keys (the default), every link is CURVE: the cluster's node keys, a
// client-port key and one allowed client key ("alice") are made in the
// cluster's temp dir, so the secure path is the tested path.
enum class Keys { on, off };

// Sets a raw DEALER's CURVE options to present `curve` (nothing when empty),
// for tests that send frames the Client never would.
void use_client_key(zmq::socket_t& dealer, const std::optional<ClientCurve>& curve);

class ProcessCluster {
 public:
  // Starts `nodes` kvpaxosd processes (with `extra_flags`) and waits until
  // each answers `status`. Fails the calling test (ADD_FAILURE) and leaves
  // started() false if that does not happen in 5 tries.
  // With `durable`, node i runs with --data-dir data_dir(i). With
  // `open_file_limit`, every node starts with that soft and hard RLIMIT_NOFILE.
  // With `spare`, that many more nodes' ports are found free too, for
  // add_node (membership change).
  ProcessCluster(int nodes, std::vector<std::string> extra_flags, bool durable = false,
                 Keys keys = Keys::on, int open_file_limit = 0, int spare = 0);
  ~ProcessCluster();
  ProcessCluster(const ProcessCluster&) = delete;
  ProcessCluster& operator=(const ProcessCluster&) = delete;

  bool started() const { return started_; }
  int size() const { return static_cast<int>(endpoints_.size()); }
  // Client endpoints "127.0.0.1:PORT", node i at index i (names n1..nN).
  const std::vector<std::string>& endpoints() const { return endpoints_; }
  // Peer endpoints "127.0.0.1:PORT", node i at index i.
  const std::vector<std::string>& peer_endpoints() const { return peer_endpoints_; }
  std::string name(int i) const { return "n" + std::to_string(i + 1); }

  std::string data_dir(int i) const { return dir_ + "/" + name(i) + ".data"; }

  // CURVE: what an allowed client presents (empty with Keys::off), and
  // where the keys are: keys_dir()/peer (node keys), keys_dir()/client-port
  // (the client port's pair), keys_dir()/clients (allowed client keys), and
  // keys_dir()/alice.key_secret.
  const std::optional<ClientCurve>& curve() const { return curve_; }
  std::string keys_dir() const { return dir_ + "/keys"; }
  // With keys and spares: alice is in every node's --admin-keys
  // (keys_dir()/admins), so she may change the membership, and spare node i
  // has keys_dir()/NAME as its --peer-keys (peer_keys_dir(i)): its own pair
  // and, from add_node, the public keys of the members its --cluster names,
  // as an operator gives a new member (README). Its public key, for kvctl
  // member add --peer-key, is peer_key(i).
  std::string peer_key(int i) const { return peer_public_keys_.at(static_cast<std::size_t>(i)); }
  // Node i's --peer-keys: keys_dir()/peer for the first nodes, else its own.
  std::string peer_keys_dir(int i) const;

  pid_t pid(int i) const { return pids_.at(static_cast<std::size_t>(i)); }
  bool alive(int i);
  void signal(int i, int sig);  // SIGSTOP, SIGCONT, SIGKILL, ...
  // Kills node i (SIGKILL) if it runs and waits for it to exit.
  void kill(int i);
  // Starts node i again with the flags, ports and data dir it had (plus
  // `added_flags` for this start only); true once it answers status, false if
  // it exited (its log says why).
  bool restart(int i, const std::vector<std::string>& added_flags = {});
  // Membership change: the ports of node i < size() + spare, started or not.
  std::string client_endpoint_of(int i) const;
  std::string peer_endpoint_of(int i) const;
  // Starts node size() (the next spare) as a member `kvctl member add` just
  // added: --initial-cluster-state existing, --cluster `cluster` (where the
  // members are), its own data dir, the flags the others got. Returns its
  // index at once; it serves once it learned who it is.
  int add_node(const std::string& cluster);
  // The exit status of node i once it exited (-1 while it runs or was killed
  // by a signal), reaping it.
  int exit_status(int i);
  // The last lines each node logged (for failure messages).
  std::string logs() const;

 private:
  bool launch(int nodes);
  std::vector<std::string> make_keys(int nodes);
  std::vector<std::string> node_args(int i, const std::string& cluster) const;
  pid_t spawn(int i, const std::vector<std::string>& added_flags = {});
  bool wait_until_serving(const std::vector<int>& nodes);
  void kill_all();

  zmq::context_t ctx_{1};
  std::string dir_;
  std::vector<pid_t> pids_;
  std::vector<std::vector<std::string>> args_;  // per node
  int open_file_limit_ = 0;
  int base_ = 0;
  int capacity_ = 0;
  bool durable_ = false;
  std::vector<std::string> extra_flags_;
  std::vector<int> exit_status_;  // per node; -1 until it exits normally
  std::vector<std::string> endpoints_;
  std::vector<std::string> peer_endpoints_;
  std::optional<ClientCurve> curve_;
  std::vector<std::string> key_flags_;
  std::vector<std::string> peer_public_keys_;  // Z85, node i at index i (with keys)
  int first_nodes_ = 0;
  bool started_ = false;
};

}  // namespace kvpaxos::test
