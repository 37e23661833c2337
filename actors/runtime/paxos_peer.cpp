#include "actors/runtime/paxos_peer.hpp"

#include <algorithm>

#include "actors/runtime/runner.hpp"
#include "messages/codec.hpp"

namespace kvpaxos {
namespace {
constexpr auto kQueryTimeout = std::chrono::seconds(5);
}

PaxosPeer::PaxosPeer(zmq::context_t& ctx, const std::string& inproc_namespace, NodeId self)
    : self_(self),
      ns_(inproc_namespace),
      inbox_(ctx, zmq::socket_type::pull),
      to_proposer_(ctx, zmq::socket_type::push),
      to_learner_(ctx, zmq::socket_type::push) {
  for (zmq::socket_t* s : {&inbox_, &to_proposer_, &to_learner_}) {
    s->set(zmq::sockopt::linger, 0);
    s->set(zmq::sockopt::sndhwm, 0);
    s->set(zmq::sockopt::rcvhwm, 0);
  }
  inbox_.bind(inproc_endpoint(ns_, self_, Actor::control));
  to_proposer_.connect(inproc_endpoint(ns_, self_, Actor::proposer));
  to_learner_.connect(inproc_endpoint(ns_, self_, Actor::learner));
}

void PaxosPeer::send(Actor to, const Body& body) {
  zmq::socket_t& s = to == Actor::proposer ? to_proposer_ : to_learner_;
  const FrameHeader h{{self_, to}, {self_, Actor::control}, 0, 0};
  send_frames(s, encode_header(h), encode(body), /*wait=*/true);
}

void PaxosPeer::start(std::int64_t seq, std::string value) {
  if (seq < 0) return;
  const std::lock_guard<std::mutex> lock(mu_);
  max_started_ = std::max(max_started_, seq);
  send(Actor::proposer, Propose{static_cast<InstanceId>(seq), std::move(value)});
}

void PaxosPeer::done(std::int64_t seq) {
  if (seq < 0) return;
  const std::lock_guard<std::mutex> lock(mu_);
  send(Actor::learner, LocalDone{static_cast<InstanceId>(seq) + 1});
}

std::optional<InstanceReport> PaxosPeer::query(InstanceId instance) {
  const std::uint64_t token = next_token_++;
  send(Actor::learner, InstanceQuery{token, instance});
  const Time deadline = Clock::now() + kQueryTimeout;
  while (Clock::now() < deadline) {
    zmq::pollitem_t items[] = {{inbox_.handle(), 0, ZMQ_POLLIN, 0}};
    zmq::poll(items, 1, std::chrono::milliseconds(100));
    if ((items[0].revents & ZMQ_POLLIN) == 0) continue;
    zmq::message_t header;
    zmq::message_t body;
    if (!inbox_.recv(header, zmq::recv_flags::none) || !header.more()) continue;
    if (!inbox_.recv(body, zmq::recv_flags::none)) continue;
    Result<Body> decoded = decode(body.to_string_view());
    if (!decoded.ok()) continue;
    auto* report = std::get_if<InstanceReport>(&decoded.value());
    if (report != nullptr && report->token == token) return std::move(*report);
  }
  return std::nullopt;
}

std::pair<InstanceState, std::string> PaxosPeer::status(std::int64_t seq) {
  if (seq < 0) return {InstanceState::forgotten, {}};
  const std::lock_guard<std::mutex> lock(mu_);
  std::optional<InstanceReport> r = query(static_cast<InstanceId>(seq));
  if (!r) return {InstanceState::pending, {}};
  return {r->state, std::move(r->value)};
}

std::int64_t PaxosPeer::max() {
  const std::lock_guard<std::mutex> lock(mu_);
  std::optional<InstanceReport> r = query(0);
  const std::int64_t decided = r ? static_cast<std::int64_t>(r->decided_below) - 1 : -1;
  return std::max(max_started_, decided);
}

std::int64_t PaxosPeer::min() {
  const std::lock_guard<std::mutex> lock(mu_);
  std::optional<InstanceReport> r = query(0);
  return r ? static_cast<std::int64_t>(r->forget_below) : 0;
}

}  // namespace kvpaxos
