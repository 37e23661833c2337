#include "actors/net/peer_link.hpp"

#include <algorithm>
#include <cstring>

#include "actors/core/quorum.hpp"

namespace kvpaxos {

namespace {
ConfigHistory named(const std::vector<std::string>& names) {
  ConfigHistory h = ConfigHistory::fixed(names.size());
  for (MemberEntry& m : h.entries.front().config.members) m.name = names.at(m.id);
  return h;
}
constexpr std::string_view kLinkTag = "kvp1";
constexpr Duration kNoticeInterval = std::chrono::seconds(1);

void put_be(std::string& out, std::uint64_t v, int bytes) {
  for (int i = bytes - 1; i >= 0; --i) out.push_back(static_cast<char>((v >> (8 * i)) & 0xff));
}

std::string names_of(const Config& c) {
  std::string out;
  for (const MemberEntry& m : c.members) out += (out.empty() ? "" : ", ") + m.name;
  return out.empty() ? std::string("none") : out;
}
}  // namespace

std::string link_identity(std::uint64_t cluster_id, NodeId self, std::uint32_t salt) {
  std::string id(kLinkTag);
  put_be(id, cluster_id, 8);
  put_be(id, self, 4);
  put_be(id, salt, 4);
  return id;  // 20 bytes; libzmq's own routing ids are 5 and start with a zero byte
}

std::uint64_t cluster_of_link(std::string_view routing_id) {
  if (routing_id.size() != 20 || routing_id.substr(0, kLinkTag.size()) != kLinkTag) return 0;
  std::uint64_t v = 0;
  for (std::size_t i = 0; i < 8; ++i) v = v << 8 | static_cast<unsigned char>(routing_id[4 + i]);
  return v;
}

std::uint64_t make_cluster_id(const std::vector<std::string>& names,
                              const std::vector<std::string>& endpoints, std::string_view token) {
  // FNV-1a over "token\0name=endpoint\0...": stable across releases and
  // platforms (it is written into data dirs).
  std::uint64_t h = 14695981039346656037ULL;
  auto mix = [&h](std::string_view bytes) {
    for (unsigned char c : bytes) {
      h ^= c;
      h *= 1099511628211ULL;
    }
    h ^= 0;
    h *= 1099511628211ULL;
  };
  mix(token);
  for (std::size_t i = 0; i < names.size(); ++i) {
    mix(names[i] + "=" + (i < endpoints.size() ? endpoints[i] : std::string()));
  }
  return h == 0 ? 1 : h;
}

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
  const std::map<NodeId, PeerAddress> removed_before = removed_members();
  // A member in one entry and not in the next is removed from that next
  // entry's instance on.
  for (std::size_t k = 1; k < config.entries.size(); ++k) {
    const ConfigAt& after = config.entries[k];
    for (const MemberEntry& m : config.entries[k - 1].config.members) {
      if (m.id == self_ || after.config.is_member(m.id) || removed_.count(m.id) != 0) continue;
      removed_[m.id] = Removal{m.name, after.config.epoch, after.from, {}, m.peer_key};
    }
  }
  // Removals the entries no longer show (trimmed, or before a snapshot).
  for (const RemovedMember& m : config.removed) {
    if (m.id == self_ || config.is_member(m.id) || removed_.count(m.id) != 0) continue;
    removed_[m.id] = Removal{m.name, m.epoch, m.from, {}, m.peer_key};
  }
  // A peer gone without this node seeing both sides (a snapshot installed
  // past the change): removed at the oldest configuration known.
  for (const auto& [id, p] : peers_) {
    if (config.is_member(id) || removed_.count(id) != 0 || config.entries.empty()) continue;
    const ConfigAt& first = config.entries.front();
    const std::vector<std::string>& keys = p.address.config_keys;
    removed_[id] = Removal{p.address.name, first.config.epoch, first.from, {},
                           keys.empty() ? std::string() : keys.front()};
  }
  while (removed_.size() > kMaxRemovals) removed_.erase(removed_.begin());
  history_ = config;
  std::map<NodeId, Peer> next;
  for (const ConfigAt& e : config.entries) {
    for (const MemberEntry& m : e.config.members) {
      if (m.id == self_) {
        self_name_ = m.name;
        continue;
      }
      auto old = peers_.find(m.id);
      const bool seen = next.count(m.id) != 0;  // in an earlier entry of this history
      Peer& p = next[m.id];
      if (!seen && old != peers_.end()) p = old->second;
      if (!seen) p.address.config_keys.clear();
      p.address.name = m.name;
      p.address.endpoint = m.peer_endpoint;
      // Later entries first: the key to pin is the latest one.
      std::vector<std::string>& keys = p.address.config_keys;
      if (!m.peer_key.empty() && std::find(keys.begin(), keys.end(), m.peer_key) == keys.end()) {
        keys.insert(keys.begin(), m.peer_key);
      }
      if (old == peers_.end()) p.reachable = in_reach(m.name);
    }
  }
  bool same = next.size() == peers_.size();
  for (auto a = next.begin(), b = peers_.begin(); same && a != next.end(); ++a, ++b) {
    same = a->first == b->first && a->second.address == b->second.address;
  }
  peers_ = std::move(next);
  // The runner lets removed members' keys in too (removed_members()).
  if (removed_members() != removed_before) same = false;
  if (!same) ++generation_;
}

bool PeerLink::in_reach(const std::string& name) const {
  return reach_all_ || reach_.count(name) != 0;
}

Time PeerLink::last_heard(NodeId peer) const {
  auto p = peers_.find(peer);
  return p == peers_.end() ? Time{} : p->second.last_heard;
}

bool PeerLink::reachable(NodeId peer) const {
  auto it = peers_.find(peer);
  return it != peers_.end() && it->second.reachable;
}

MemberKeys member_keys(const std::map<NodeId, PeerAddress>& members,
                       const std::function<std::vector<std::string>(const std::string&)>& key_files,
                       bool planted_bug_files_too) {
  MemberKeys out;
  for (const auto& [id, m] : members) {
    std::vector<std::string> keys = m.config_keys;
    if (keys.empty() || planted_bug_files_too) {
      for (const std::string& k : key_files(m.name)) {
        if (std::find(keys.begin(), keys.end(), k) == keys.end()) keys.push_back(k);
      }
    }
    if (!keys.empty()) out[id] = std::move(keys);
  }
  return out;
}

std::map<NodeId, PeerAddress> PeerLink::removed_members() const {
  std::map<NodeId, PeerAddress> out;
  for (const auto& [id, r] : removed_) {
    PeerAddress a{r.name, {}, {}};
    if (!r.peer_key.empty()) a.config_keys.push_back(r.peer_key);
    out.emplace(id, std::move(a));
  }
  return out;
}

std::map<NodeId, PeerAddress> PeerLink::members() const {
  std::map<NodeId, PeerAddress> out;
  for (const auto& [id, p] : peers_) out.emplace(id, p.address);
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

std::optional<PeerFrame> PeerLink::inbound(PeerFrame f, Time now, Outbox& out,
                                           std::optional<NodeId> sender, std::uint64_t cluster) {
  const NodeId id = f.header.from.node;
  if (cluster != 0 && cluster_id_ != 0 && cluster != cluster_id_) {
    ++refused_.other_cluster;
    return std::nullopt;
  }
  if (id == kNoNode) {
    if (f.header.to.actor == Actor::peer_link) {
      answer_query(f, sender);
    } else {
      ++refused_.not_a_member;
    }
    return std::nullopt;
  }
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
    // Told only once this node is done with every instance before the
    // removal (with a data dir: a snapshot on disk covers them). Told
    // earlier, the removed node could stop while this one, restarted from
    // an older snapshot with a torn decided log, still needed it for an
    // instance of a configuration it was a voter of (kvpaxos_sim --reconfig
    // --crash-restart seed 2828: a two-voter configuration, the log stuck).
    auto r = removed_.find(id);
    if (r != removed_.end() && local_.done_below >= r->second.effective_from &&
        (!r->second.last_notice || now - *r->second.last_notice >= kNoticeInterval)) {
      r->second.last_notice = now;
      // The voters named are this node's latest: those of the configuration
      // right after the removal may have been removed since, and never make
      // a majority again (kvpaxos_sim --reconfig --crash-restart seed 2522).
      answers_.push_back(answer_to(
          id, Removed{id, r->second.epoch, r->second.effective_from, history_.latest().voters()}));
    }
    return std::nullopt;
  }
  if (!peer->second.reachable || drop()) return std::nullopt;
  peer->second.last_heard = now;
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

std::vector<PeerFrame> PeerLink::take_answers() {
  std::vector<PeerFrame> out;
  out.swap(answers_);
  return out;
}

PeerFrame PeerLink::answer_to(NodeId to, Body body) const {
  return PeerFrame{{{to, Actor::peer_link}, {self_, Actor::peer_link}, local_.done_below,
                    local_.decided_below, local_.forget_below},
                   encode(body)};
}

// Who is asking, by name and address: only a learner may start empty (a
// voter that lost its data dir would vote without its promises).
void PeerLink::answer_query(const PeerFrame& f, std::optional<NodeId> sender) {
  Result<Body> body = decode(f.body);
  const MemberQuery* q = body.ok() ? std::get_if<MemberQuery>(&body.value()) : nullptr;
  if (q == nullptr) {
    ++refused_.not_a_member;
    return;
  }
  MemberInfo info;
  info.alpha = alpha_;
  info.cluster_id = cluster_id_;
  if (history_.entries.empty()) {
    info.error = self_name_ + " does not know the configuration yet; ask another member";
    answers_.push_back(answer_to(kNoNode, std::move(info)));
    return;
  }
  const Config& latest = history_.latest();
  const std::string epoch = "epoch " + std::to_string(latest.epoch);
  const MemberEntry* m = latest.find_name(q->name);
  if (m == nullptr) {
    info.error = "no member named " + q->name + " in " + epoch + " (members: " + names_of(latest) +
                 "); add it first with kvctl member add " + q->name + " --peer-addr ... "
                 "--client-addr ...";
    for (const auto& [id, r] : removed_) {
      if (r.name == q->name) {
        info.error = q->name + " (member " + std::to_string(id) + ") was removed at epoch " +
                     std::to_string(r.epoch) + "; a removed member does not come back: add it "
                     "again (kvctl member add) to get a new member id";
      }
    }
  } else if (m->id == self_) {
    info.error = q->name + " is the name of the node that answers (" + epoch + ")";
  } else if (sender && *sender != m->id) {
    ++refused_.forged_sender;
    info.error = "the key this connection came with is member " + std::to_string(*sender) +
                 "'s, not " + q->name + "'s; start " + q->name + " with the key pair whose "
                 "public key kvctl member add --peer-key gave";
  } else if (m->peer_endpoint != q->peer_endpoint) {
    info.error = "member " + q->name + " has the peer address " + m->peer_endpoint + " in " +
                 epoch + ", not " + q->peer_endpoint + "; start it with that address, or move it "
                 "first with kvctl member update " + q->name + " --peer-addr ...";
  } else if (m->role == MemberRole::voter) {
    info.error = q->name + " is a voter in " + epoch + ": a voter that lost its data dir must not "
                 "vote with a blank acceptor; rebuild it with --join, or replace it (kvctl member "
                 "add a new member, then kvctl member replace " + q->name + " NEW)";
  } else {
    info.id = m->id;
    info.history = history_;
  }
  answers_.push_back(answer_to(kNoNode, std::move(info)));
}

void PeerLink::answered(const PeerFrame& f, NodeId peer) {
  if (f.header.from.node != peer || f.header.to.node != self_) {
    ++refused_.forged_sender;
    return;
  }
  Result<Body> body = decode(f.body);
  const Removed* r = body.ok() ? std::get_if<Removed>(&body.value()) : nullptr;
  if (r == nullptr || r->id != self_) {
    ++refused_.not_for_peers;
    return;
  }
  notices_[peer] = *r;
}

// The latest removal a majority of its own voters reported.
std::optional<Retirement> PeerLink::retirement() const {
  std::optional<Retirement> found;
  for (const auto& [from, notice] : notices_) {
    if (found && found->epoch >= notice.epoch) continue;
    Retirement r{notice.epoch, notice.effective_from, {}};
    for (NodeId voter : notice.voters) {
      auto said = notices_.find(voter);
      if (said == notices_.end() || said->second.epoch < notice.epoch) continue;
      auto p = peers_.find(voter);
      r.told_by.push_back(p != peers_.end() ? p->second.address.name : "member " + std::to_string(voter));
    }
    if (is_majority(r.told_by.size(), notice.voters.size())) found = std::move(r);
  }
  return found;
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
    if (c->alpha != 0) alpha_ = c->alpha;
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
                                     [&](const auto& p) { return p.second.address.name == name; });
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
    for (auto& [id, p] : peers_) p.reachable = in_reach(p.address.name);
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
    if (p.reachable) names.push_back(p.address.name);
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
