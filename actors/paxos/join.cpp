#include "actors/paxos/join.hpp"

#include <algorithm>
#include <cassert>

#include "actors/core/quorum.hpp"

namespace kvpaxos {

namespace {

constexpr Duration kHeartbeatEvery = std::chrono::milliseconds(100);
constexpr Duration kAskEvery = std::chrono::milliseconds(200);
constexpr Duration kProgressEvery = std::chrono::seconds(1);

// A peer's progress as its frames are stamped with it: any of the three
// above zero means the cluster already has a log.
InstanceId progress_of(const FrameHeader& h) {
  return std::max({h.decided_below, h.done_below, h.forget_below});
}

}  // namespace

// ---- FirstStartSurvey

FirstStartSurvey::FirstStartSurvey(NodeId self, std::vector<Member> members, Duration wait,
                                   Time start)
    : self_(self),
      members_(std::move(members)),
      wait_(wait),
      start_(start),
      heard_(members_.size(), false),
      next_beat_(start),
      next_progress_(start + kProgressEvery) {
  assert(self_ < members_.size());
  survey_.needed = others_needed_for_majority(members_.size());
}

void FirstStartSurvey::tick(Time now, Outbox& out) {
  if (done()) return;
  if (now - start_ >= wait_) {
    expired_ = true;
    return;
  }
  if (now < next_beat_) return;
  for (NodeId peer = 0; peer < members_.size(); ++peer) {
    if (peer != self_) out.push_back({{peer, Actor::peer_link}, Heartbeat{}});
  }
  next_beat_ = now + kHeartbeatEvery;
}

void FirstStartSurvey::handle(const FrameHeader& header) {
  const NodeId from = header.from.node;
  if (done() || from >= members_.size() || from == self_) return;
  if (!heard_[from]) {
    heard_[from] = true;
    ++survey_.heard;
  }
  const InstanceId seen = progress_of(header);
  if (seen > survey_.furthest_decided) {
    survey_.furthest_decided = seen;
    survey_.furthest_name = members_[from].name;
  }
  assert(survey_.heard <= members_.size() - 1);
}

std::optional<std::string> FirstStartSurvey::progress_line(Time now) {
  if (done() || now < next_progress_) return std::nullopt;
  next_progress_ = now + kProgressEvery;
  std::string missing;
  for (NodeId peer = 0; peer < members_.size(); ++peer) {
    if (peer == self_ || heard_[peer]) continue;
    missing += (missing.empty() ? "" : ", ") + members_[peer].name;
  }
  return "heard " + std::to_string(survey_.heard) + " of the " +
         std::to_string(members_.size() - 1) + " other nodes (" + std::to_string(survey_.needed) +
         " needed); waiting for " + missing;
}

// ---- JoinSurvey

ConfigHistory bootstrap_history(const std::vector<Member>& members) {
  ConfigHistory history = ConfigHistory::fixed(members.size());
  for (MemberEntry& m : history.entries.front().config.members) {
    m.name = members[m.id].name;
    m.peer_endpoint = members[m.id].endpoint;
  }
  return history;
}

// A member in several entries is named as the latest one has it.
JoinSurvey::JoinSurvey(NodeId self, const ConfigHistory& config, Duration timeout, Time start)
    : self_(self), timeout_(timeout), start_(start), next_ask_(start),
      next_progress_(start + kProgressEvery) {
  assert(config.is_member(self_));
  for (const ConfigAt& entry : config.entries) {
    for (const MemberEntry& m : entry.config.members) {
      if (m.id != self_) peers_[m.id] = Peer{m.name, m.peer_endpoint, {}};
    }
  }
}

void JoinSurvey::tick(Time now, Outbox& out) {
  if (done()) return;
  if (now - start_ > timeout_) {
    const auto seconds = std::chrono::duration_cast<std::chrono::seconds>(timeout_).count();
    failure_ = Error{"no answer from " + missing() + " after " + std::to_string(seconds) +
                     "s; every other node must be up to rebuild this one (one that is down may "
                     "be the only other witness of what the lost data dir promised)"};
    return;
  }
  if (now < next_ask_) return;
  for (const auto& [id, peer] : peers_) {
    for (std::size_t k = 0; k < kAsked.size(); ++k) {
      if (!peer.answered[k]) out.push_back({{id, kAsked[k]}, JoinQuery{}});
    }
  }
  next_ask_ = now + kAskEvery;
}

void JoinSurvey::handle(const Address& from, const Body& body) {
  const auto it = peers_.find(from.node);
  if (done() || it == peers_.end()) return;
  Peer& peer = it->second;
  const std::string& name = peer.name;
  if (std::holds_alternative<JoinQuery>(body)) {
    failure_ = Error{name + " is being rebuilt at the same time; rebuild one node at a time "
                     "(stop one of the two --join runs, and start it again once the other has "
                     "caught up)"};
    return;
  }
  const auto* info = std::get_if<JoinInfo>(&body);
  if (info == nullptr) return;
  const auto asked = std::find(kAsked.begin(), kAsked.end(), from.actor);
  if (asked == kAsked.end()) return;
  if (info->repairing) {
    failure_ = Error{name + " was itself rebuilt and the log below its vote floor is not yet "
                     "forgotten by a majority; rebuilding a second node now could leave an "
                     "instance that no majority may vote in. Retry once `kvctl status` shows its "
                     "MIN at or above " + std::to_string(info->instance_bound) +
                     " (after the next snapshots; writes make them come sooner)"};
    return;
  }
  peer.answered[static_cast<std::size_t>(asked - kAsked.begin())] = true;
  barrier_.vote_floor = std::max(barrier_.vote_floor, info->instance_bound);
  barrier_.max_round = std::max(barrier_.max_round, info->max_round);
}

std::optional<std::string> JoinSurvey::progress_line(Time now) {
  if (done() || now < next_progress_) return std::nullopt;
  next_progress_ = now + kProgressEvery;
  return "waiting for " + missing();
}

Result<JoinBarrier> JoinSurvey::result() const {
  assert(done());
  if (failure_) return *failure_;
  return barrier_;
}

std::string JoinSurvey::missing() const {
  std::string names;
  for (const auto& [id, peer] : peers_) {
    if (std::all_of(peer.answered.begin(), peer.answered.end(), [](bool a) { return a; })) continue;
    names += (names.empty() ? "" : ", ") + peer.name + " (" + peer.endpoint + ")";
  }
  return names;
}

std::size_t JoinSurvey::unanswered() const {
  std::size_t count = 0;
  for (const auto& [id, peer] : peers_) {
    count += static_cast<std::size_t>(std::count(peer.answered.begin(), peer.answered.end(), false));
  }
  return count;
}

}  // namespace kvpaxos
