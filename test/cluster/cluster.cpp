#include "cluster/cluster.hpp"

#include <stdexcept>

namespace kvpaxos::testing {
namespace {
std::atomic<std::uint64_t> g_cluster_counter{0};
}

Cluster::Cluster(ClusterOptions options) : ctx_(1) {
  const std::string ns = "test-cluster-" + std::to_string(g_cluster_counter.fetch_add(1));
  std::vector<Member> members;
  for (std::size_t i = 0; i < options.nodes; ++i) {
    members.push_back({"n" + std::to_string(i + 1), "inproc://" + ns + "/peer/" + std::to_string(i)});
  }
  for (std::size_t i = 0; i < options.nodes; ++i) {
    NodeConfig c;
    c.members = members;
    c.self = static_cast<NodeId>(i);
    c.client_endpoint = options.kv_service ? "tcp://127.0.0.1:*" : "";
    c.fault_injection = true;
    c.inproc_namespace = ns;
    c.seed = options.seed * 1000 + i;
    Result<std::unique_ptr<Node>> node = Node::start(ctx_, c);
    if (!node.ok()) throw std::runtime_error("cannot start test node: " + node.error());
    if (options.kv_service) client_endpoints_.push_back(node.value()->client_endpoint());
    nodes_.push_back(std::move(node.value()));
  }
}

Cluster::~Cluster() {
  nodes_.clear();
  ctx_.close();
}

void Cluster::partition(const std::vector<std::vector<NodeId>>& groups) {
  std::vector<bool> placed(nodes_.size(), false);
  for (const auto& group : groups) {
    for (NodeId member : group) {
      nodes_.at(member)->set_reachable(group);
      placed[member] = true;
    }
  }
  for (std::size_t i = 0; i < nodes_.size(); ++i) {
    if (!placed[i]) nodes_[i]->set_reachable({});
  }
}

void Cluster::heal() {
  for (auto& n : nodes_) n->reach_all();
}

void Cluster::set_unreliable(bool unreliable, double drop_rate) {
  for (auto& n : nodes_) n->set_drop_rate(unreliable ? drop_rate : 0.0);
}

std::uint64_t Cluster::paxos_messages_sent() const {
  std::uint64_t total = 0;
  for (const auto& n : nodes_) total += n->traffic().paxos_sent.load();
  return total;
}

}  // namespace kvpaxos::testing
