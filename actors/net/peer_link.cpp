#include "actors/net/peer_link.hpp"

#include <algorithm>

namespace kvpaxos {

namespace {
ConfigHistory named(const std::vector<std::string>& names) {
  ConfigHistory h = ConfigHistory::fixed(names.size());
  for (MemberEntry& m : h.entries.front().config.members) m.name = names.at(m.id);
  return h;
}
}  // namespace

PeerLink::PeerLink(NodeId self, const ConfigHistory& config, std::uint64_t seed,
                   Duration heartbeat_interval)
    : self_(self), rng_(seed), heartbeat_interval_(heartbeat_interval) {
  set_members(config);
}

PeerLink::PeerLink(NodeId self, const std::vector<std::string>& names, std::uint64_t seed,
                   Duration heartbeat_interval)
    : PeerLink(self, named(names), seed, heartbeat_interval) {}

// The latest entry naming a member gives its name and endpoint (update
// moves an endpoint); a peer that stays keeps its progress and reach.
void PeerLink::set_members(const ConfigHistory& config) {
  std::map<NodeId, Peer> next;
  for (const ConfigAt& e : config.entries) {
    for (const MemberEntry& m : e.config.members) {
      if (m.id == self_) {
        self_name_ = m.name;
        continue;
      }
      auto old = peers_.find(m.id);
      Peer& p = next[m.id];
      if (old != peers_.end()) p = old->second;
      p.name = m.name;
      p.endpoint = m.peer_endpoint;
      if (old == peers_.end()) p.reachable = in_reach(m.name);
    }
  }
  bool same = next.size() == peers_.size();
  for (auto a = next.begin(), b = peers_.begin(); same && a != next.end(); ++a, ++b) {
    same = a->first == b->first && a->second.endpoint == b->second.endpoint;
  }
  peers_ = std::move(next);
  if (!same) ++generation_;
}

bool PeerLink::in_reach(const std::string& name) const {
  return reach_all_ || reach_.count(name) != 0;
}

bool PeerLink::reachable(NodeId peer) const {
  auto it = peers_.find(peer);
  return it != peers_.end() && it->second.reachable;
}

std::map<NodeId, std::string> PeerLink::members() const {
  std::map<NodeId, std::string> out;
  for (const auto& [id, p] : peers_) out.emplace(id, p.endpoint);
  return out;
}

bool PeerLink::drop() {
  if (drop_rate_ <= 0.0) return false;
  const bool lost = std::uniform_real_distribution<double>(0.0, 1.0)(rng_) < drop_rate_;
  if (lost) ++dropped_;
  return lost;
}

std::optional<PeerFrame> PeerLink::outbound(PeerFrame f, Time now) {
  auto peer = peers_.find(f.header.to.node);
  if (peer == peers_.end() || !peer->second.reachable || drop()) return std::nullopt;
  f.header.done_below = local_.done_below;
  f.header.decided_below = local_.decided_below;
  f.header.forget_below = local_.forget_below;
  peer->second.last_sent = now;
  return f;
}

std::optional<PeerFrame> PeerLink::inbound(PeerFrame f, Time, Outbox& out,
                                           std::optional<NodeId> sender) {
  const NodeId id = f.header.from.node;
  if (sender && *sender != id) {
    ++refused_.forged_sender;
    return std::nullopt;
  }
  if (id == self_ || f.header.to.node != self_) {
    ++refused_.wrong_receiver;
    return std::nullopt;
  }
  auto peer = peers_.find(id);
  if (peer == peers_.end()) {
    ++refused_.not_a_member;
    return std::nullopt;
  }
  if (!peer->second.reachable || drop()) return std::nullopt;
  note_progress(peer->second, id, f.header, out);
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
void PeerLink::note_progress(Peer& peer, NodeId id, const FrameHeader& h, Outbox& out) {
  LocalProgress& known = peer.progress;
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
                 PeerProgress{id, known.done_below, known.decided_below, known.forget_below}});
}

void PeerLink::handle(const Address& from, Body body, Time, Outbox& out) {
  if (from.node != self_) return;  // local actors only: the runner never passes a peer's
  if (auto* p = std::get_if<LocalProgress>(&body)) {
    local_ = *p;
  } else if (auto* c = std::get_if<ConfigUpdate>(&body)) {
    if (!c->history.entries.empty()) set_members(c->history);
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
    for (const std::string& name : r.reach) {
      const bool known = name == self_name_ ||
                         std::any_of(peers_.begin(), peers_.end(),
                                     [&](const auto& p) { return p.second.name == name; });
      if (!known) {
        reply.code = ReplyCode::unknown_node;
        reply.error = "no node named '" + name + "' in the cluster";
        reply.reach = reach_names();
        reply.drop_rate = drop_rate_;
        return reply;
      }
    }
    reach_all_ = r.reach_all;
    reach_ = std::set<std::string>(r.reach.begin(), r.reach.end());
    for (auto& [id, p] : peers_) p.reachable = in_reach(p.name);
  }
  if (r.set_drop) drop_rate_ = std::clamp(r.drop_rate, 0.0, 1.0);
  reply.reach = reach_names();
  reply.drop_rate = drop_rate_;
  return reply;
}

// This node first, then its reachable peers by id, as the ids were listed before.
std::vector<std::string> PeerLink::reach_names() const {
  std::vector<std::string> names;
  bool self_listed = false;
  for (const auto& [id, p] : peers_) {
    if (!self_listed && id > self_) {
      names.push_back(self_name_);
      self_listed = true;
    }
    if (p.reachable) names.push_back(p.name);
  }
  if (!self_listed) names.push_back(self_name_);
  return names;
}

std::vector<PeerFrame> PeerLink::tick(Time now) {
  std::vector<PeerFrame> beats;
  for (auto& [id, p] : peers_) {
    if (now - p.last_sent < heartbeat_interval_) continue;
    PeerFrame f{{{id, Actor::peer_link}, {self_, Actor::peer_link}, 0, 0}, encode(Heartbeat{})};
    if (auto sent = outbound(std::move(f), now)) beats.push_back(std::move(*sent));
    p.last_sent = now;  // a dropped heartbeat still waits its turn
  }
  return beats;
}

}  // namespace kvpaxos
