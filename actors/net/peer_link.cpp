#include "actors/net/peer_link.hpp"

#include <algorithm>

namespace kvpaxos {

PeerLink::PeerLink(NodeId self, std::vector<std::string> names, std::uint64_t seed,
                   Duration heartbeat_interval)
    : self_(self),
      n_(names.size()),
      names_(std::move(names)),
      rng_(seed),
      heartbeat_interval_(heartbeat_interval),
      reachable_(n_, true),
      last_sent_(n_),
      peer_progress_(n_) {}

bool PeerLink::drop() {
  if (drop_rate_ <= 0.0) return false;
  const bool lost = std::uniform_real_distribution<double>(0.0, 1.0)(rng_) < drop_rate_;
  if (lost) ++dropped_;
  return lost;
}

std::optional<PeerFrame> PeerLink::outbound(PeerFrame f, Time now) {
  const NodeId peer = f.header.to.node;
  if (peer >= n_ || peer == self_ || !reachable_[peer] || drop()) return std::nullopt;
  f.header.done_below = local_.done_below;
  f.header.decided_below = local_.decided_below;
  f.header.forget_below = local_.forget_below;
  last_sent_[peer] = now;
  return f;
}

std::optional<PeerFrame> PeerLink::inbound(PeerFrame f, Time, Outbox& out,
                                           std::optional<NodeId> sender) {
  const NodeId peer = f.header.from.node;
  if (sender && *sender != peer) {
    ++refused_.forged_sender;
    return std::nullopt;
  }
  if (peer >= n_ || peer == self_ || f.header.to.node != self_) {
    ++refused_.wrong_receiver;
    return std::nullopt;
  }
  if (!reachable_[peer] || drop()) return std::nullopt;
  note_progress(peer, f.header, out);
  switch (f.header.to.actor) {
    case Actor::acceptor:
    case Actor::proposer:
    case Actor::learner:
    case Actor::applier:  // snapshot transfer only; the applier ignores anything else from peers
      return f;
    case Actor::peer_link:
      return std::nullopt;  // heartbeats end here
    default:
      ++refused_.not_for_peers;
      return std::nullopt;
  }
}

// A peer's progress only grows: a lower value than already heard (a late
// frame, or a peer that restarted without its data dir) is kept out, since
// forgetting and snapshot decisions were already taken on the higher one.
void PeerLink::note_progress(NodeId peer, const FrameHeader& h, Outbox& out) {
  LocalProgress& known = peer_progress_[peer];
  if (h.done_below < known.done_below || h.decided_below < known.decided_below ||
      h.forget_below < known.forget_below) {
    ++refused_.stale_progress;
  }
  if (h.done_below <= known.done_below && h.decided_below <= known.decided_below &&
      h.forget_below <= known.forget_below) {
    return;
  }
  known.done_below = std::max(known.done_below, h.done_below);
  known.decided_below = std::max(known.decided_below, h.decided_below);
  known.forget_below = std::max(known.forget_below, h.forget_below);
  out.push_back({{self_, Actor::learner},
                 PeerProgress{peer, known.done_below, known.decided_below, known.forget_below}});
}

void PeerLink::handle(const Address&, Body body, Time, Outbox& out) {
  if (auto* p = std::get_if<LocalProgress>(&body)) {
    local_ = *p;
  } else if (auto* f = std::get_if<FaultFromClient>(&body)) {
    FaultReply reply = apply_fault(f->request);
    if (!f->route.empty()) {
      out.push_back({{self_, Actor::front_door}, ToClient{f->route, encode(reply)}});
    }
  }
}

FaultReply PeerLink::apply_fault(const FaultRequest& r) {
  FaultReply reply;
  if (r.set_reach) {
    std::vector<bool> next(n_, r.reach_all);
    next[self_] = true;
    for (const std::string& name : r.reach) {
      auto it = std::find(names_.begin(), names_.end(), name);
      if (it == names_.end()) {
        reply.code = ReplyCode::unknown_node;
        reply.error = "no node named '" + name + "' in the cluster";
        reply.reach = reach_names();
        reply.drop_rate = drop_rate_;
        return reply;
      }
      next[static_cast<std::size_t>(it - names_.begin())] = true;
    }
    reachable_ = std::move(next);
  }
  if (r.set_drop) drop_rate_ = std::clamp(r.drop_rate, 0.0, 1.0);
  reply.reach = reach_names();
  reply.drop_rate = drop_rate_;
  return reply;
}

std::vector<std::string> PeerLink::reach_names() const {
  std::vector<std::string> names;
  for (std::size_t i = 0; i < n_; ++i) {
    if (reachable_[i]) names.push_back(names_[i]);
  }
  return names;
}

std::vector<PeerFrame> PeerLink::tick(Time now) {
  std::vector<PeerFrame> beats;
  for (NodeId peer = 0; peer < n_; ++peer) {
    if (peer == self_ || now - last_sent_[peer] < heartbeat_interval_) continue;
    PeerFrame f{{{peer, Actor::peer_link}, {self_, Actor::peer_link}, 0, 0}, encode(Heartbeat{})};
    if (auto sent = outbound(std::move(f), now)) beats.push_back(std::move(*sent));
    last_sent_[peer] = now;  // a dropped heartbeat still waits its turn
  }
  return beats;
}

}  // namespace kvpaxos
