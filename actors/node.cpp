#include "actors/node.hpp"

#include "actors/acceptor.hpp"
#include "actors/applier.hpp"
#include "actors/learner.hpp"
#include "actors/paxos_peer.hpp"
#include "actors/runner.hpp"
#include "messages/codec.hpp"

namespace kvpaxos {

Node::Node(NodeConfig config)
    : config_(std::move(config)), traffic_(std::make_unique<PeerTrafficStats>()) {}

Node::~Node() {
  // Clients first, then the state machine and Paxos, then the network.
  front_door_.reset();
  while (!actors_.empty()) actors_.pop_back();
  paxos_.reset();
  control_.reset();
  peer_link_.reset();
}

Result<std::unique_ptr<Node>> Node::start(zmq::context_t& ctx, NodeConfig config) {
  const std::size_t n = config.members.size();
  if (n == 0 || n > kMaxClusterSize) return Error{"a cluster has 1 to 63 nodes"};
  if (config.self >= n) return Error{"node id is not in the cluster"};

  std::unique_ptr<Node> node(new Node(std::move(config)));
  const NodeConfig& c = node->config_;
  const NodeId self = c.self;
  const std::string& ns = c.inproc_namespace;
  const std::string prefix = c.members[self].name + " ";
  std::vector<std::string> names;
  std::vector<std::string> endpoints;
  for (const Member& m : c.members) {
    names.push_back(m.name);
    endpoints.push_back(m.endpoint);
  }

  try {
    node->peer_link_ = std::make_unique<PeerLinkThread>(ctx, ns, self, names, endpoints,
                                                        c.seed * 7919 + 1, *node->traffic_, prefix);
  } catch (const zmq::error_t& e) {
    return Error{"cannot listen for peers on " + endpoints[self] + ": " + e.what() +
                 " (is another kvpaxosd using that address?)"};
  }
  if (!c.client_endpoint.empty()) {
    try {
      node->front_door_ = std::make_unique<FrontDoorThread>(ctx, ns, self, c.client_endpoint,
                                                            c.fault_injection, prefix);
    } catch (const zmq::error_t& e) {
      return Error{"cannot listen for clients on " + c.client_endpoint + ": " + e.what() +
                   " (is another kvpaxosd using that address?)"};
    }
  }

  const bool kv = !c.client_endpoint.empty();
  node->actors_.push_back(std::make_unique<ActorThread>(
      ctx, ns, self, Actor::acceptor, std::make_unique<Acceptor>(), prefix));
  node->actors_.push_back(std::make_unique<ActorThread>(
      ctx, ns, self, Actor::proposer,
      std::make_unique<Proposer>(self, n, c.seed * 104729 + self, c.proposer_timing), prefix));
  node->actors_.push_back(std::make_unique<ActorThread>(
      ctx, ns, self, Actor::learner,
      std::make_unique<Learner>(self, n, LearnerOptions{.deliver_to_applier = kv}), prefix));
  if (kv) {
    ApplierOptions options{.name = c.members[self].name,
                           .fault_injection = c.fault_injection,
                           .hole_timeout = c.hole_timeout};
    node->actors_.push_back(std::make_unique<ActorThread>(
        ctx, ns, self, Actor::applier, std::make_unique<Applier>(self, std::move(options)), prefix));
  } else {
    node->paxos_ = std::make_unique<PaxosPeer>(ctx, ns, self);
  }

  node->control_ = std::make_unique<zmq::socket_t>(ctx, zmq::socket_type::push);
  node->control_->set(zmq::sockopt::linger, 0);
  node->control_->connect(inproc_endpoint(ns, self, Actor::peer_link));
  return node;
}

void Node::send_control(Actor to, const std::string& body) {
  const std::lock_guard<std::mutex> lock(control_mu_);
  const FrameHeader h{{config_.self, to}, {config_.self, Actor::control}, 0, 0};
  send_frames(*control_, encode_header(h), body, /*wait=*/true);
}

void Node::set_reachable(const std::vector<NodeId>& peers) {
  FaultRequest r{.set_reach = true, .reach_all = false};
  for (NodeId p : peers) r.reach.push_back(config_.members.at(p).name);
  send_control(Actor::peer_link, encode(FaultFromClient{{}, std::move(r)}));
}

void Node::reach_all() {
  send_control(Actor::peer_link,
               encode(FaultFromClient{{}, FaultRequest{.set_reach = true, .reach_all = true}}));
}

void Node::set_drop_rate(double rate) {
  send_control(Actor::peer_link,
               encode(FaultFromClient{{}, FaultRequest{.set_drop = true, .drop_rate = rate}}));
}

PaxosPeer& Node::paxos() { return *paxos_; }

std::string Node::client_endpoint() const { return front_door_ ? front_door_->endpoint() : ""; }

}  // namespace kvpaxos
