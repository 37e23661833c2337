// In-process clusters for the seed scenarios: every node's actor threads in
// this test process, nodes talking over inproc:// endpoints, with the peer
// link's fault injection for partitions, deaf peers and unreliable networks.
#pragma once

#include <atomic>
#include <memory>
#include <string>
#include <vector>

#include <zmq.hpp>

#include "actors/node.hpp"
#include "actors/paxos_peer.hpp"

namespace kvpaxos::testing {

struct ClusterOptions {
  std::size_t nodes = 3;
  bool kv_service = false;     // applier + front door on tcp://127.0.0.1:<ephemeral>
  std::uint64_t seed = 1;
};

class Cluster {
 public:
  explicit Cluster(ClusterOptions options);
  ~Cluster();

  std::size_t size() const { return nodes_.size(); }
  Node& node(std::size_t i) { return *nodes_.at(i); }
  PaxosPeer& peer(std::size_t i) { return nodes_.at(i)->paxos(); }
  // Client endpoints (kv_service only), e.g. "tcp://127.0.0.1:40123".
  const std::vector<std::string>& client_endpoints() const { return client_endpoints_; }
  zmq::context_t& context() { return ctx_; }

  // Each group can talk only among itself; nodes in no group hear nobody.
  void partition(const std::vector<std::vector<NodeId>>& groups);
  void heal();
  void set_unreliable(bool unreliable, double drop_rate = 0.15);
  // Peer messages sent by all nodes (Prepare/Promise/Accept/Accepted/Decided).
  std::uint64_t paxos_messages_sent() const;

 private:
  zmq::context_t ctx_;
  std::vector<std::unique_ptr<Node>> nodes_;
  std::vector<std::string> client_endpoints_;
};

}  // namespace kvpaxos::testing
