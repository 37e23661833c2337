#include "cluster/cluster.hpp"

#include <algorithm>
#include <cmath>
#include <sstream>
#include <stdexcept>
#include <thread>

#include <zmq_addon.hpp>

#include "actors/core/quorum.hpp"
#include "actors/runtime/runner.hpp"
#include "messages/codec.hpp"

namespace kvpaxos::testing {
namespace {

std::atomic<std::uint64_t> g_cluster_counter{0};
constexpr auto kFaultDeadline = std::chrono::seconds(30);

std::string node_name(std::size_t i) { return "n" + std::to_string(i + 1); }

// Waits for one message on `s`; false at the deadline.
bool poll_in(zmq::socket_t& s, Time deadline) {
  while (Clock::now() < deadline) {
    zmq::pollitem_t items[] = {{s.handle(), 0, ZMQ_POLLIN, 0}};
    zmq::poll(items, 1, std::chrono::milliseconds(100));
    if ((items[0].revents & ZMQ_POLLIN) != 0) return true;
  }
  return false;
}

FaultReply check_reply(NodeId node, Result<Body> body) {
  if (!body.ok()) {
    throw std::runtime_error("fault injection on node " + std::to_string(node) +
                             ": undecodable answer: " + body.error());
  }
  if (auto* reply = std::get_if<FaultReply>(&body.value())) {
    if (reply->code != ReplyCode::ok) {
      throw std::runtime_error("fault injection on node " + std::to_string(node) +
                               " refused: " + reply->error);
    }
    return std::move(*reply);
  }
  if (auto* error = std::get_if<ErrorReply>(&body.value())) {
    throw std::runtime_error("fault injection on node " + std::to_string(node) +
                             " refused: " + error->error);
  }
  throw std::runtime_error("fault injection on node " + std::to_string(node) +
                           ": unexpected answer " + to_string(type_of(body.value())));
}

std::string shorten(const std::string& value) {
  if (value.size() <= 24) return "\"" + value + "\"";
  return "\"" + value.substr(0, 16) + "...\" (" + std::to_string(value.size()) + " bytes)";
}

}  // namespace

Cluster::Cluster(ClusterOptions options)
    : options_(options),
      ns_("test-cluster-" + std::to_string(g_cluster_counter.fetch_add(1))),
      ctx_(1) {
  std::vector<Member> members;
  for (std::size_t i = 0; i < options.nodes; ++i) {
    members.push_back({node_name(i), "inproc://" + ns_ + "/peer/" + std::to_string(i)});
  }
  for (std::size_t i = 0; i < options.nodes; ++i) {
    const auto self = static_cast<NodeId>(i);
    if (!options.kv_service) {
      // Bound before the node starts, so the peer link's first FaultReply
      // always has somewhere to go.
      auto from = std::make_unique<zmq::socket_t>(ctx_, zmq::socket_type::pull);
      from->set(zmq::sockopt::linger, 0);
      from->bind(inproc_endpoint(ns_, self, Actor::front_door));
      fault_from_.push_back(std::move(from));
    }
    NodeConfig c;
    c.members = members;
    c.self = self;
    c.client_endpoint = options.kv_service ? "tcp://127.0.0.1:*" : "";
    c.fault_injection = true;
    c.inproc_namespace = ns_;
    c.seed = options.seed * 1000 + i;
    c.proposer_options = options.proposer_options;
    if (options.watch_history_bytes != 0) c.watch_history_bytes = options.watch_history_bytes;
    Result<std::unique_ptr<Node>> node = Node::start(ctx_, c);
    if (!node.ok()) throw std::runtime_error("cannot start test node: " + node.error());
    if (options.kv_service) client_endpoints_.push_back(node.value()->client_endpoint());
    nodes_.push_back(std::move(node.value()));

    auto to = std::make_unique<zmq::socket_t>(
        ctx_, options.kv_service ? zmq::socket_type::dealer : zmq::socket_type::push);
    to->set(zmq::sockopt::linger, 0);
    to->connect(options.kv_service ? client_endpoints_.back()
                                   : inproc_endpoint(ns_, self, Actor::peer_link));
    fault_to_.push_back(std::move(to));
  }
}

Cluster::~Cluster() {
  nodes_.clear();
  fault_to_.clear();
  fault_from_.clear();
  ctx_.close();
}

FaultReply Cluster::apply_fault(NodeId node, const FaultRequest& request) {
  const std::lock_guard<std::mutex> lock(fault_mu_);
  return options_.kv_service ? apply_fault_tcp(node, request) : apply_fault_inproc(node, request);
}

// What the front door would do for a `kvctl fault`: a FaultFromClient with a
// route to the peer link, whose answer comes back as a ToClient to the front
// door's inbox, here bound by the harness.
FaultReply Cluster::apply_fault_inproc(NodeId node, const FaultRequest& request) {
  const std::string route = "cluster-fault-" + std::to_string(next_fault_++);
  const FrameHeader h{{node, Actor::peer_link}, {node, Actor::front_door}, 0, 0};
  send_frames(*fault_to_.at(node), encode_header(h), encode(FaultFromClient{route, request}),
              /*wait=*/true);
  zmq::socket_t& from = *fault_from_.at(node);
  const Time deadline = Clock::now() + kFaultDeadline;
  while (poll_in(from, deadline)) {
    std::vector<zmq::message_t> frames;
    if (!zmq::recv_multipart(from, std::back_inserter(frames), zmq::recv_flags::dontwait)) continue;
    if (frames.size() != 2) continue;
    Result<Body> body = decode(frames[1].to_string_view());
    if (!body.ok()) continue;
    auto* reply = std::get_if<ToClient>(&body.value());
    if (reply == nullptr || reply->route != route) continue;  // a late answer to an old request
    return check_reply(node, decode(reply->body));
  }
  throw std::runtime_error("node " + std::to_string(node) +
                           " did not apply a fault-injection change within 30 s");
}

FaultReply Cluster::apply_fault_tcp(NodeId node, const FaultRequest& request) {
  zmq::socket_t& s = *fault_to_.at(node);
  const std::string body = encode(request);
  s.send(zmq::buffer(body), zmq::send_flags::none);
  if (!poll_in(s, Clock::now() + kFaultDeadline)) {
    throw std::runtime_error("node " + std::to_string(node) +
                             " did not answer a fault-injection request within 30 s");
  }
  zmq::message_t reply;
  if (!s.recv(reply, zmq::recv_flags::dontwait)) {
    throw std::runtime_error("node " + std::to_string(node) + ": lost a fault-injection answer");
  }
  return check_reply(node, decode(reply.to_string_view()));
}

void Cluster::set_reachable(NodeId node, const std::vector<NodeId>& peers) {
  FaultRequest r{.set_reach = true, .reach_all = false};
  for (NodeId p : peers) r.reach.push_back(node_name(p));
  apply_fault(node, r);
}

void Cluster::reach_all(NodeId node) {
  apply_fault(node, FaultRequest{.set_reach = true, .reach_all = true});
}

void Cluster::partition(const std::vector<std::vector<NodeId>>& groups) {
  std::vector<bool> placed(nodes_.size(), false);
  for (const auto& group : groups) {
    for (NodeId member : group) {
      set_reachable(member, group);
      placed.at(member) = true;
    }
  }
  for (std::size_t i = 0; i < nodes_.size(); ++i) {
    if (!placed[i]) set_reachable(static_cast<NodeId>(i), {});
  }
}

void Cluster::heal() {
  for (std::size_t i = 0; i < nodes_.size(); ++i) reach_all(static_cast<NodeId>(i));
}

void Cluster::set_unreliable(bool unreliable, double drop_rate) {
  const double per_side = unreliable ? 1.0 - std::sqrt(1.0 - std::clamp(drop_rate, 0.0, 1.0)) : 0.0;
  for (std::size_t i = 0; i < nodes_.size(); ++i) {
    apply_fault(static_cast<NodeId>(i), FaultRequest{.set_drop = true, .drop_rate = per_side});
  }
}

std::uint64_t Cluster::paxos_messages_sent() const {
  std::uint64_t total = 0;
  for (const auto& n : nodes_) total += n->traffic().paxos_sent.load();
  return total;
}

// ------------------------------------------------------------ Paxos checks

std::string InstanceView::describe() const {
  std::ostringstream s;
  s << "seq " << seq << ":";
  for (std::size_t i = 0; i < states.size(); ++i) {
    s << " n" << i << "=";
    switch (states[i]) {
      case InstanceState::decided: s << "decided"; break;
      case InstanceState::pending: s << "pending"; break;
      case InstanceState::forgotten: s << "forgotten"; break;
    }
  }
  if (value) s << " value " << shorten(*value);
  if (conflict) s << " CONFLICTING DECISIONS";
  return s.str();
}

InstanceView inspect(Cluster& cluster, std::int64_t seq) {
  InstanceView view{.seq = seq};
  std::ostringstream conflicts;
  for (std::size_t i = 0; i < cluster.size(); ++i) {
    auto [state, value] = cluster.peer(i).status(seq);
    view.states.push_back(state);
    if (state == InstanceState::forgotten) ++view.forgotten;
    if (state != InstanceState::decided) continue;
    ++view.decided;
    if (!view.value) {
      view.value = std::move(value);
    } else if (*view.value != value) {
      view.conflict = true;
      conflicts << " n" << i << " decided " << shorten(value);
    }
  }
  if (view.conflict) {
    ADD_FAILURE() << "safety violated: " << view.describe() << ";" << conflicts.str();
  }
  return view;
}

std::size_t ndecided(Cluster& cluster, std::int64_t seq) { return inspect(cluster, seq).decided; }

bool eventually(const std::function<bool()>& condition, std::chrono::milliseconds deadline) {
  const Time until = Clock::now() + deadline;
  auto pause = std::chrono::milliseconds(1);
  for (;;) {
    if (condition()) return true;
    if (Clock::now() >= until) return false;
    std::this_thread::sleep_for(pause);
    pause = std::min(pause * 2, std::chrono::milliseconds(20));
  }
}

::testing::AssertionResult wait_decided(Cluster& cluster, std::int64_t seq, std::size_t wanted,
                                        std::chrono::milliseconds deadline) {
  InstanceView last;
  const bool reached = eventually(
      [&] {
        last = inspect(cluster, seq);
        return last.conflict || last.decided >= wanted;
      },
      deadline);
  if (last.conflict) return ::testing::AssertionFailure() << "disagreement: " << last.describe();
  if (!reached) {
    return ::testing::AssertionFailure()
           << "only " << last.decided << " of the " << wanted << " wanted peers decided within "
           << deadline.count() << " ms: " << last.describe();
  }
  return ::testing::AssertionSuccess();
}

::testing::AssertionResult wait_majority(Cluster& cluster, std::int64_t seq,
                                         std::chrono::milliseconds deadline) {
  return wait_decided(cluster, seq, majority(cluster.size()), deadline);
}

std::optional<std::string> wait_value(Cluster& cluster, std::int64_t seq,
                                      std::chrono::milliseconds deadline) {
  ::testing::AssertionResult ok = wait_decided(cluster, seq, cluster.size(), deadline);
  if (!ok) {
    ADD_FAILURE() << ok.message();
    return std::nullopt;
  }
  return inspect(cluster, seq).value;
}

::testing::AssertionResult agreement(Cluster& cluster, std::int64_t from, std::int64_t to) {
  for (std::int64_t seq = from; seq <= to; ++seq) {
    const InstanceView view = inspect(cluster, seq);
    if (view.conflict) return ::testing::AssertionFailure() << "disagreement: " << view.describe();
  }
  return ::testing::AssertionSuccess();
}

std::vector<std::int64_t> mins(Cluster& cluster) {
  std::vector<std::int64_t> out;
  for (std::size_t i = 0; i < cluster.size(); ++i) out.push_back(cluster.peer(i).min());
  return out;
}

std::vector<std::int64_t> maxes(Cluster& cluster) {
  std::vector<std::int64_t> out;
  for (std::size_t i = 0; i < cluster.size(); ++i) out.push_back(cluster.peer(i).max());
  return out;
}

}  // namespace kvpaxos::testing
