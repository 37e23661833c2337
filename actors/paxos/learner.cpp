#include "actors/paxos/learner.hpp"

#include <algorithm>
#include <exception>
#include <functional>
#include <utility>

#include "actors/core/quorum.hpp"
#include "messages/codec.hpp"

namespace kvpaxos {

Learner::Learner(NodeId self, ConfigHistory config, LearnerOptions options)
    : self_(self),
      config_(std::move(config)),
      options_(options),
      held_from_(options.first_instance),
      decided_below_(options.first_instance),
      next_deliver_(options.first_instance),
      awaiting_snapshot_(options.snapshot_first) {
  track_members();
  members_[self_].done_below = options.first_instance;
}

// A member that joins starts at zero (it counts as done with nothing until it
// reports); one that left the history no longer holds forgetting back.
void Learner::track_members() {
  const std::vector<NodeId> ids = config_.all_members();
  std::erase_if(members_, [&ids, this](const auto& entry) {
    return entry.first != self_ && !std::binary_search(ids.begin(), ids.end(), entry.first);
  });
  for (NodeId id : ids) members_.try_emplace(id);
  members_.try_emplace(self_);
}

void Learner::on_config_update(ConfigUpdate m, Outbox& out) {
  if (m.history.entries.empty()) return;
  config_ = std::move(m.history);
  track_members();
  recompute_forget_point(out);
}

void Learner::on_peer_progress(const PeerProgress& m, Outbox& out) {
  if (m.node == self_) return;
  const auto it = members_.find(m.node);
  if (it == members_.end()) {
    ++refused_.non_member;
    return;
  }
  MemberProgress& peer = it->second;
  peer.done_below = std::max(peer.done_below, m.done_below);
  peer.decided_below = std::max(peer.decided_below, m.decided_below);
  peer.forget_below = std::max(peer.forget_below, m.forget_below);
  recompute_forget_point(out);
}

InstanceId Learner::lowest_done() const {
  InstanceId lowest = ~InstanceId{0};
  for (const auto& [id, m] : members_) lowest = std::min(lowest, m.done_below);
  return lowest;
}

namespace {
// Sent to the learner only from inside its node: a peer's LocalDone or
// PeerProgress would speak for this node or for a third one, its
// SnapshotInstalled would skip the log.
bool local_only(const Body& body) {
  return std::holds_alternative<LocalDone>(body) || std::holds_alternative<PeerProgress>(body) ||
         std::holds_alternative<SnapshotInstalled>(body) ||
         std::holds_alternative<InstanceQuery>(body) || std::holds_alternative<ConfigUpdate>(body);
}
}  // namespace

void Learner::handle(const Address& from, Body body, Time now, Outbox& out) {
  if (from.node != self_ && local_only(body)) {
    ++refused_.local_only_from_peer;
    return;
  }
  if (auto* d = std::get_if<Decided>(&body)) {
    on_decided(std::move(*d), /*from_peer=*/from.node != self_, out);
  } else if (auto* c = std::get_if<CatchUpRequest>(&body)) {
    on_catch_up(from.node, *c, now, out);
  } else if (auto* l = std::get_if<LocalDone>(&body)) {
    InstanceId& done = members_.at(self_).done_below;
    done = std::max(done, l->done_below);
    recompute_forget_point(out);
  } else if (auto* p = std::get_if<PeerProgress>(&body)) {
    on_peer_progress(*p, out);
  } else if (auto* u = std::get_if<ConfigUpdate>(&body)) {
    on_config_update(std::move(*u), out);
  } else if (auto* i = std::get_if<SnapshotInstalled>(&body)) {
    on_snapshot_installed(i->instance, out);
  } else if (auto* q = std::get_if<InstanceQuery>(&body)) {
    InstanceReport r{.token = q->token, .instance = q->instance};
    if (q->instance < forget_below_) {
      r.state = InstanceState::forgotten;
    } else if (auto it = decided_.find(q->instance); it != decided_.end()) {
      r.state = InstanceState::decided;
      r.value = it->second;
    }
    r.forget_below = forget_below_;
    r.decided_below = decided_below_;
    out.push_back({from, std::move(r)});
  }
  report_progress(out);
}

Result<bool> Learner::recover(const std::vector<std::string>& records, const std::string& where) {
  persistent_ = true;
  for (const std::string& payload : records) {
    try {
      Decided d;
      msgpack::unpack(payload.data(), payload.size()).get().convert(d);
      bytes_since_rewrite_ += payload.size();
      if (d.instance < next_deliver_) continue;
      decided_below_ = std::max(decided_below_, d.instance + 1);
      auto [it, inserted] = decided_.try_emplace(d.instance, std::move(d.value));
      if (inserted) decided_bytes_ += it->second.size();
    } catch (const std::exception& e) {
      return Error{"the decided log in " + where + " holds an undecodable record: " + e.what()};
    }
  }
  return true;
}

Writes Learner::take_writes() {
  if (bytes_since_rewrite_ > 2 * decided_bytes_ + (32u << 20)) {
    pending_ = Writes{{}, /*replace=*/true};
    bytes_since_rewrite_ = 0;
    for (const auto& [instance, value] : decided_) {
      pending_.records.push_back(pack_to_string(Decided{instance, value}));
      bytes_since_rewrite_ += pending_.records.back().size();
    }
  }
  return std::exchange(pending_, Writes{});
}

void Learner::erase_decided_below(InstanceId instance) {
  for (auto it = decided_.begin(); it != decided_.end() && it->first < instance;) {
    decided_bytes_ -= it->second.size();
    it = decided_.erase(it);
  }
}

bool Learner::too_far_ahead(InstanceId instance) const {
  if (!options_.deliver_to_applier || options_.max_decided_ahead == 0) return false;
  const InstanceId base = std::max(next_deliver_, held_from_);
  return instance >= base && instance - base >= options_.max_decided_ahead;
}

// This node's own proposer is exempt from the window: it decides only what
// its applier asked for, at most a pipeline past decided_below, and a leader
// whose own decisions were dropped would wait for them with nobody to fill
// the hole.
void Learner::on_decided(Decided m, bool from_peer, Outbox& out) {
  if (m.instance < held_from_) return;
  if (from_peer && too_far_ahead(m.instance)) {
    ++refused_.decided_far_ahead;
    return;
  }
  auto [it, inserted] = decided_.try_emplace(m.instance, std::move(m.value));
  if (!inserted) {
    if (it->second != m.value && conflicts_++ == 0) first_conflict_ = m.instance;
    return;
  }
  decided_bytes_ += it->second.size();
  if (persistent_) {
    pending_.records.push_back(pack_to_string(Decided{it->first, it->second}));
    bytes_since_rewrite_ += pending_.records.back().size();
  }
  decided_below_ = std::max(decided_below_, m.instance + 1);
  out.push_back({{self_, Actor::proposer}, Learned{m.instance}});
  deliver(out);
}

void Learner::deliver(Outbox& out) {
  if (!options_.deliver_to_applier || awaiting_snapshot_) return;
  for (auto it = decided_.find(next_deliver_); it != decided_.end() && it->first == next_deliver_;
       ++it) {
    out.push_back({{self_, Actor::applier}, Apply{it->first, it->second}});
    ++next_deliver_;
  }
}

// The answer is bounded (see LearnerOptions): a 19-byte request once got
// 8 MiB back, and any number of requests got as many answers.
void Learner::on_catch_up(NodeId from, const CatchUpRequest& m, Time now, Outbox& out) {
  if (from == self_) return;
  const auto member = members_.find(from);
  if (member == members_.end()) {
    ++refused_.non_member;
    return;
  }
  std::optional<Time>& answered = member->second.catch_up_answered;
  if (answered && now - *answered < options_.catch_up_interval / 2) {
    ++refused_.catch_up_too_often;  // or a duplicate of the last request
    return;
  }
  answered = now;
  std::size_t entries = 0;
  std::size_t bytes = 0;
  for (InstanceId instance : m.instances) {
    if (entries >= options_.catch_up_max_entries) break;
    auto it = decided_.find(instance);
    if (it == decided_.end()) continue;
    if (entries > 0 && bytes + it->second.size() > options_.catch_up_max_bytes) break;
    out.push_back({{from, Actor::learner}, Decided{it->first, it->second}});
    ++entries;
    bytes += it->second.size();
  }
}

// With a majority: per configuration, the highest point a majority of its
// voters is done below; the lowest of those, since an instance is forgotten
// everywhere only once it is safe to forget under each configuration that
// may still decide or serve it.
InstanceId Learner::forget_point() const {
  if (!options_.forget_with_majority) return lowest_done();
  InstanceId point = ~InstanceId{0};
  for (const ConfigAt& entry : config_.entries) {
    std::vector<InstanceId> done;
    for (NodeId voter : entry.config.voters()) done.push_back(members_.at(voter).done_below);
    if (done.empty()) continue;  // no configuration lacks voters; nothing to hold back here
    const std::size_t k = majority_index(done.size());
    std::nth_element(done.begin(), done.begin() + static_cast<std::ptrdiff_t>(k), done.end(),
                     std::greater<>());
    point = std::min(point, done[k]);
  }
  return point == ~InstanceId{0} ? lowest_done() : point;
}

// Below the majority's point, the newest values some node is not done with
// stay, within keep_for_laggards instances and bytes.
InstanceId Learner::hold_point(InstanceId forget_point, InstanceId everyone) const {
  if (!options_.forget_with_majority) return forget_point;
  const InstanceId window = std::min(forget_point, options_.keep_for_laggards);
  InstanceId point = std::max(everyone, forget_point - window);
  if (decided_bytes_ > options_.keep_for_laggards_bytes) {
    std::uint64_t bytes = 0;
    for (auto it = decided_.lower_bound(forget_point); it != decided_.begin();) {
      --it;
      if (it->first < point) break;
      bytes += it->second.size();
      if (bytes > options_.keep_for_laggards_bytes) {
        point = it->first + 1;
        break;
      }
    }
  }
  return std::min(point, forget_point);
}

void Learner::recompute_forget_point(Outbox& out) {
  const InstanceId point = forget_point();
  // The hold point moves only with the Done points (most peer traffic only
  // moves decided_below), and may walk the held values: skip it otherwise.
  const std::pair<InstanceId, InstanceId> inputs{std::max(point, forget_below_), lowest_done()};
  if (inputs != hold_inputs_) {
    hold_inputs_ = inputs;
    const InstanceId hold = hold_point(inputs.first, inputs.second);
    if (hold > held_from_) {
      held_from_ = hold;
      erase_decided_below(held_from_);
    }
  }
  if (point <= forget_below_) return;
  forget_below_ = point;
  decided_below_ = std::max(decided_below_, forget_below_);
  // With every node done, this node applied it all too; with a majority, a
  // node behind the point catches up from the values peers still hold, or
  // installs a snapshot first when they hold none (tick asks for one).
  if (!options_.forget_with_majority) next_deliver_ = std::max(next_deliver_, forget_below_);
  out.push_back({{self_, Actor::acceptor}, ForgetBelow{forget_below_}});
  out.push_back({{self_, Actor::proposer}, ForgetBelow{forget_below_}});
}

// Up to `limit` instances in [first not forgotten or delivered, below) that
// this node has not learned.
std::vector<InstanceId> Learner::missing_below(InstanceId below, std::size_t limit) const {
  std::vector<InstanceId> missing;
  InstanceId i = std::max(held_from_, next_deliver_);
  auto held = decided_.lower_bound(i);
  for (; i < below && missing.size() < limit; ++i) {
    if (held != decided_.end() && held->first == i) {
      ++held;
    } else {
      missing.push_back(i);
    }
  }
  return missing;
}

void Learner::on_snapshot_installed(InstanceId instance, Outbox& out) {
  if (instance <= next_deliver_) return;
  awaiting_snapshot_ = false;
  next_deliver_ = instance;
  // Not done below it yet: the applier says so (LocalDone) once the
  // snapshot is durable here.
  decided_below_ = std::max(decided_below_, instance);
  // Nothing below it is held here any more (nor was all of it ever learned):
  // a peer behind it must not count on this node to catch up.
  held_from_ = std::max(held_from_, instance);
  erase_decided_below(held_from_);
  recompute_forget_point(out);
  deliver(out);
}

void Learner::tick(Time now, Outbox& out) {
  if (!started_) {
    // Decisions replayed from the log go to the applier right away.
    started_ = true;
    deliver(out);
    report_progress(out);
  }
  // Behind our own forget point, or behind a peer's (it cannot send us the
  // instances we miss): only a snapshot brings us past it. Ask the node that
  // is done furthest ahead.
  InstanceId forgotten_somewhere = held_from_;
  for (const auto& [id, m] : members_) forgotten_somewhere = std::max(forgotten_somewhere, m.forget_below);
  if (awaiting_snapshot_) forgotten_somewhere = std::max<InstanceId>(forgotten_somewhere, 1);
  if (options_.deliver_to_applier && (options_.forget_with_majority || awaiting_snapshot_) &&
      next_deliver_ < forgotten_somewhere &&
      now - last_snapshot_request_ >= options_.snapshot_retry) {
    // Every peer done past us can serve, furthest ahead first. Each retry
    // names the next one: the furthest may be down for good (its Done point
    // is only what it last said), and the applier moves to the named peer
    // once its transfer stalls.
    std::vector<NodeId> sources;
    for (const auto& [id, m] : members_) {
      const bool serves = m.done_below > next_deliver_ || (awaiting_snapshot_ && m.decided_below > 0);
      if (id != self_ && serves) sources.push_back(id);
    }
    std::stable_sort(sources.begin(), sources.end(), [this](NodeId a, NodeId b) {
      return members_.at(a).done_below > members_.at(b).done_below;
    });
    if (!sources.empty()) {
      last_snapshot_request_ = now;
      const NodeId peer = sources[snapshot_requests_++ % sources.size()];
      out.push_back({{self_, Actor::applier}, SnapshotNeeded{forgotten_somewhere, peer}});
    }
  }
  if (now - last_catch_up_ < options_.catch_up_interval) return;
  // Ask the members in turn (by id, from the one after the last asked,
  // wrapping around) for the first that knows of decisions we lack.
  std::vector<NodeId> peers;
  for (const auto& [id, m] : members_) {
    if (id != self_) peers.push_back(id);
  }
  const auto start = static_cast<std::size_t>(
      std::lower_bound(peers.begin(), peers.end(), next_catch_up_peer_) - peers.begin());
  for (std::size_t k = 0; k < peers.size(); ++k) {
    const NodeId peer = peers[(start + k) % peers.size()];
    std::vector<InstanceId> missing =
        missing_below(members_.at(peer).decided_below, options_.catch_up_max_entries);
    if (missing.empty()) continue;
    out.push_back({{peer, Actor::learner}, CatchUpRequest{std::move(missing)}});
    next_catch_up_peer_ = peer + 1;
    last_catch_up_ = now;
    break;
  }
}

void Learner::report_progress(Outbox& out) {
  // Peers learn what this node can still serve them: a node behind it needs
  // a snapshot.
  const LocalProgress local{members_.at(self_).done_below, decided_below_, held_from_};
  const LearnerProgress progress{forget_below_, decided_below_};
  if (reported_once_ && local.done_below == last_reported_.done_below &&
      local.decided_below == last_reported_.decided_below &&
      local.forget_below == last_reported_.forget_below &&
      progress.forget_below == last_progress_.forget_below &&
      progress.decided_below == last_progress_.decided_below) {
    return;
  }
  reported_once_ = true;
  last_reported_ = local;
  last_progress_ = progress;
  out.push_back({{self_, Actor::peer_link}, local});
  if (options_.deliver_to_applier) out.push_back({{self_, Actor::applier}, progress});
}

std::string Learner::check_invariants() const {
  if (!decided_.empty() && decided_.begin()->first < held_from_) {
    return "learner: holds instance " + std::to_string(decided_.begin()->first) +
           " below held_from " + std::to_string(held_from_);
  }
  std::uint64_t bytes = 0;
  for (const auto& [instance, value] : decided_) bytes += value.size();
  if (bytes != decided_bytes_) {
    return "learner: holds " + std::to_string(bytes) + " bytes of values but counts " +
           std::to_string(decided_bytes_);
  }
  if (!decided_.empty() && decided_.rbegin()->first >= decided_below_) {
    return "learner: holds instance " + std::to_string(decided_.rbegin()->first) +
           " at or above decided_below " + std::to_string(decided_below_);
  }
  return fatal();
}

std::string Learner::fatal() const {
  if (conflicts_ == 0) return {};
  return "learner: two different values were decided for instance " +
         std::to_string(first_conflict_) + " (" + std::to_string(conflicts_) +
         " conflicts); Paxos safety is broken, stopping rather than applying either";
}

}  // namespace kvpaxos
