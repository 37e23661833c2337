#include "actors/proposer.hpp"

#include <algorithm>
#include <bit>

namespace kvpaxos {

Proposer::Proposer(NodeId self, std::size_t cluster_size, std::uint64_t seed,
                   ProposerTiming timing)
    : self_(self), n_(cluster_size), timing_(timing), rng_(seed) {}

void Proposer::handle(const Address& from, Body body, Time now, Outbox& out) {
  if (auto* p = std::get_if<Propose>(&body)) {
    on_propose(std::move(*p), now, out);
  } else if (auto* pr = std::get_if<Promise>(&body)) {
    on_promise(from.node, std::move(*pr), now, out);
  } else if (auto* ac = std::get_if<Accepted>(&body)) {
    on_accepted(from.node, *ac, now, out);
  } else if (auto* l = std::get_if<Learned>(&body)) {
    active_.erase(l->instance);
  } else if (auto* f = std::get_if<ForgetBelow>(&body)) {
    forget_below_ = std::max(forget_below_, f->instance);
    active_.erase(active_.begin(), active_.lower_bound(forget_below_));
  } else if (std::holds_alternative<JoinQuery>(body)) {
    out.push_back({from, join_info()});
  }
}

void Proposer::tick(Time now, Outbox& out) {
  for (auto& [instance, attempt] : active_) {
    if (attempt.retry_at <= now) start_phase1(instance, attempt, now, out);
  }
}

void Proposer::on_propose(Propose m, Time now, Outbox& out) {
  if (m.instance < forget_below_) return;  // decided and applied everywhere
  auto [it, inserted] = active_.try_emplace(m.instance);
  if (!inserted) return;  // already working on it; the first value stands
  instance_bound_ = std::max(instance_bound_, m.instance + 1);
  it->second.own_value = std::move(m.value);
  it->second.timeout = timing_.initial_timeout;
  start_phase1(m.instance, it->second, now, out);
}

void Proposer::start_phase1(InstanceId instance, Attempt& a, Time now, Outbox& out) {
  max_round_seen_ = std::max(max_round_seen_, a.ballot.round) + 1;
  a.ballot = Ballot{max_round_seen_, self_};
  a.phase = Phase::preparing;
  a.promised_by = 0;
  a.accepted_by = 0;
  a.highest_accepted = Ballot{};
  a.highest_value.clear();
  a.value.clear();
  a.retry_at = now + jittered(a.timeout);
  a.timeout = std::min(timing_.max_timeout, a.timeout * 3 / 2);
  broadcast(Actor::acceptor, Prepare{instance, a.ballot}, out);
}

// The attempt a phase-1 or phase-2 reply counts for, or null when it does
// not count: an old ballot or phase, a finished instance, or a rejection (then
// a retry is scheduled). A "forgotten" reply ends the instance.
template <typename Reply>
Proposer::Attempt* Proposer::counting_attempt(NodeId from, const Reply& m, Phase phase, Time now) {
  auto it = active_.find(m.instance);
  if (it == active_.end()) return nullptr;
  if (m.forgotten) {
    active_.erase(it);
    return nullptr;
  }
  Attempt& a = it->second;
  if (m.ballot != a.ballot || a.phase != phase || from >= n_) return nullptr;
  if (!m.ok) {
    back_off(a, m.promised, now);
    return nullptr;
  }
  return &a;
}

void Proposer::on_promise(NodeId from, Promise m, Time now, Outbox& out) {
  Attempt* a = counting_attempt(from, m, Phase::preparing, now);
  if (a == nullptr) return;
  a->promised_by |= std::uint64_t{1} << from;
  if (!m.accepted_ballot.is_none() && m.accepted_ballot > a->highest_accepted) {
    a->highest_accepted = m.accepted_ballot;
    a->highest_value = std::move(m.accepted_value);
  }
  if (!is_majority(a->promised_by)) return;
  a->phase = Phase::accepting;
  a->value = a->highest_accepted.is_none() ? a->own_value : a->highest_value;
  a->retry_at = now + jittered(a->timeout);
  broadcast(Actor::acceptor, Accept{m.instance, a->ballot, a->value}, out);
}

void Proposer::on_accepted(NodeId from, const Accepted& m, Time now, Outbox& out) {
  Attempt* a = counting_attempt(from, m, Phase::accepting, now);
  if (a == nullptr) return;
  a->accepted_by |= std::uint64_t{1} << from;
  if (!is_majority(a->accepted_by)) return;
  broadcast(Actor::learner, Decided{m.instance, std::move(a->value)}, out);
  active_.erase(m.instance);
}

// A rejection: someone holds a higher ballot. Jump past it, but only after a
// randomized pause so that two proposers stop pre-empting each other.
void Proposer::back_off(Attempt& a, const Ballot& seen, Time now) {
  max_round_seen_ = std::max(max_round_seen_, seen.round);
  const Time retry = now + jittered(a.timeout / 2);
  a.retry_at = std::min(a.retry_at, retry);
}

Duration Proposer::jittered(Duration d) {
  const auto ticks = std::max<Duration::rep>(1, d.count());
  std::uniform_int_distribution<Duration::rep> dist(ticks, 2 * ticks);
  return Duration(dist(rng_));
}

bool Proposer::is_majority(std::uint64_t mask) const {
  return static_cast<std::size_t>(std::popcount(mask)) * 2 > n_;
}

void Proposer::broadcast(Actor to, const Body& body, Outbox& out) const {
  for (NodeId node = 0; node < n_; ++node) out.push_back({{node, to}, body});
}

}  // namespace kvpaxos
