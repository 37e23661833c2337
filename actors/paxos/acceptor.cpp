#include "actors/paxos/acceptor.hpp"

#include <algorithm>
#include <exception>
#include <utility>

#include "messages/codec.hpp"

namespace kvpaxos {

namespace {
// Rewrite the log once it is this much larger than the live state.
constexpr std::uint64_t kCompactSlackBytes = 32u << 20;
// A PromiseFrom must decode (at most 65,536 array elements) and fit a peer
// frame with room to spare.
constexpr std::size_t kMaxPromisedValues = 16384;
constexpr std::uint64_t kMaxPromisedBytes = 32u << 20;
}  // namespace

Result<std::unique_ptr<Acceptor>> Acceptor::recover(const std::vector<std::string>& records,
                                                    const std::string& where,
                                                    std::optional<NodeId> self,
                                                    std::size_t cluster_size,
                                                    std::uint64_t incarnation) {
  auto acceptor = std::make_unique<Acceptor>();
  Acceptor& a = *acceptor;
  a.self_ = self;
  a.n_ = cluster_size;
  a.incarnation_ = incarnation;
  a.persistent_ = true;
  for (const std::string& payload : records) {
    try {
      AcceptorRecord r;
      msgpack::unpack(payload.data(), payload.size()).get().convert(r);
      a.replay(r);
    } catch (const std::exception& e) {
      return Error{"the acceptor log in " + where + " holds a record with a valid checksum that "
                   "does not decode (" + e.what() + "); was it written by another program?"};
    }
    a.bytes_since_rewrite_ += payload.size();
  }
  return acceptor;
}

void Acceptor::replay(const AcceptorRecord& r) {
  if (r.kind == AcceptorRecord::forget) {
    forget_below(r.instance);
    return;
  }
  if (r.kind == AcceptorRecord::vote_floor) {
    vote_floor_ = std::max(vote_floor_, r.instance);
    return;
  }
  if (r.kind == AcceptorRecord::range_promise) {
    merge_range(r.instance, r.ballot);
    return;
  }
  if (r.instance < forget_below_) return;
  InstanceState& s = instances_[r.instance];
  s.promised = std::max(s.promised, r.ballot);
  if (r.kind == AcceptorRecord::accept) {
    s.accepted_ballot = r.ballot;
    live_bytes_ += r.value.size();
    s.accepted_value = r.value;
  }
}

void Acceptor::record(AcceptorRecord r) {
  if (!persistent_) return;
  pending_.records.push_back(pack_to_string(r));
  bytes_since_rewrite_ += pending_.records.back().size();
}

std::vector<std::string> Acceptor::live_records() const {
  std::vector<std::string> out;
  auto add = [&out](const AcceptorRecord& r) { out.push_back(pack_to_string(r)); };
  add({AcceptorRecord::forget, forget_below_, {}, {}});
  if (vote_floor_ > 0) add({AcceptorRecord::vote_floor, vote_floor_, {}, {}});
  if (!range_ballot_.is_none()) add({AcceptorRecord::range_promise, range_from_, range_ballot_, {}});
  for (const auto& [instance, s] : instances_) {
    add({AcceptorRecord::promise, instance, s.promised, {}});
    if (!s.accepted_ballot.is_none()) {
      add({AcceptorRecord::accept, instance, s.accepted_ballot, s.accepted_value});
    }
  }
  return out;
}

Writes Acceptor::take_writes() {
  if (bytes_since_rewrite_ > 2 * live_bytes_ + kCompactSlackBytes) {
    // The log has outgrown the state: it becomes the live state (which
    // includes every record pending), written and synced as one.
    live_bytes_ = 0;
    for (const auto& [instance, s] : instances_) live_bytes_ += s.accepted_value.size() + 32;
    pending_ = Writes{live_records(), /*replace=*/true};
    bytes_since_rewrite_ = 0;
    for (const std::string& r : pending_.records) bytes_since_rewrite_ += r.size();
  }
  return std::exchange(pending_, Writes{});
}

Promise Acceptor::on_prepare(const Prepare& m) {
  Promise reply{.instance = m.instance, .ballot = m.ballot};
  if (m.instance < forget_below_) {
    reply.forgotten = true;
    return reply;
  }
  InstanceState& s = instances_[m.instance];
  if (m.ballot > promised_in(m.instance)) {
    s.promised = m.ballot;
    record({AcceptorRecord::promise, m.instance, m.ballot, {}});
    reply.ok = true;
    reply.accepted_ballot = s.accepted_ballot;
    reply.accepted_value = s.accepted_value;
  }
  reply.promised = promised_in(m.instance);
  return reply;
}

Accepted Acceptor::on_accept(Accept m) {
  Accepted reply{.instance = m.instance, .ballot = m.ballot};
  if (m.instance < forget_below_) {
    reply.forgotten = true;
    return reply;
  }
  InstanceState& s = instances_[m.instance];
  // >= : the proposer that was promised this very ballot may now be accepted.
  if (m.ballot >= promised_in(m.instance)) {
    // One ballot is one proposer's one proposal: the same ballot with another
    // value means a proposer reused a ballot (a restart without the restart
    // ballot rule). Accepting it would be safe here, but the run is not.
    if (m.ballot == s.accepted_ballot && m.value != s.accepted_value) ++ballot_reused_;
    s.promised = m.ballot;
    s.accepted_ballot = m.ballot;
    s.accepted_value = std::move(m.value);
    record({AcceptorRecord::accept, m.instance, m.ballot, s.accepted_value});
    live_bytes_ += s.accepted_value.size();
    reply.ok = true;
  }
  reply.promised = promised_in(m.instance);
  return reply;
}

// Strictly higher ballots only, as for Prepare: the same ballot again is a
// duplicate (the proposer ignores the refusal) or a proposer that restarted
// and reused a ballot, which must not be promised twice.
PromiseFrom Acceptor::on_prepare_from(const PrepareFrom& m) {
  PromiseFrom reply{.from = m.from, .ballot = m.ballot, .forgotten_below = forget_below_};
  Ballot highest = range_ballot_;
  // The instances whose accepted value the answer must report.
  std::vector<std::map<InstanceId, InstanceState>::const_iterator> reported;
  std::uint64_t bytes = 0;
  for (auto it = instances_.lower_bound(m.from); it != instances_.end(); ++it) {
    highest = std::max(highest, it->second.promised);
    if (it->second.accepted_ballot.is_none()) continue;
    if (std::binary_search(m.decided.begin(), m.decided.end(), it->first)) continue;
    reported.push_back(it);
    bytes += it->second.accepted_value.size() + 32;
  }
  reply.promised = highest;
  if (m.ballot <= highest) return reply;
  if (reported.size() > kMaxPromisedValues || bytes > kMaxPromisedBytes) {
    reply.too_large = true;
    return reply;
  }
  reply.ok = true;
  reply.promised = m.ballot;
  promise_range(m.from, m.ballot);
  reply.accepted.reserve(reported.size());
  for (const auto& it : reported) {
    reply.accepted.push_back({it->first, it->second.accepted_ballot, it->second.accepted_value});
  }
  return reply;
}

void Acceptor::promise_range(InstanceId from, Ballot ballot) {
  if (merge_range(from, ballot)) {
    record({AcceptorRecord::range_promise, range_from_, range_ballot_, {}});
  }
}

bool Acceptor::merge_range(InstanceId from, Ballot ballot) {
  const InstanceId merged_from = range_ballot_.is_none() ? from : std::min(from, range_from_);
  const Ballot merged_ballot = std::max(range_ballot_, ballot);
  if (merged_from == range_from_ && merged_ballot == range_ballot_) return false;
  range_from_ = merged_from;
  range_ballot_ = merged_ballot;
  return true;
}

Ballot Acceptor::promised_in(InstanceId instance) const {
  Ballot promised = instance >= range_from_ ? range_ballot_ : Ballot{};
  const auto it = instances_.find(instance);
  if (it != instances_.end()) promised = std::max(promised, it->second.promised);
  return promised;
}

void Acceptor::forget_below(InstanceId instance) {
  if (instance <= forget_below_) return;
  forget_below_ = instance;
  for (auto it = instances_.begin(); it != instances_.end() && it->first < instance;) {
    live_bytes_ -= std::min(live_bytes_, static_cast<std::uint64_t>(it->second.accepted_value.size()));
    it = instances_.erase(it);
  }
  // Losing this record in a crash only means forgetting later: no sync needed.
  record({AcceptorRecord::forget, instance, {}, {}});
}

void Acceptor::set_vote_floor(InstanceId instance) {
  if (instance <= vote_floor_) return;
  vote_floor_ = instance;
  record({AcceptorRecord::vote_floor, instance, {}, {}});
}

// Peers report max_round: clamped, so that a faulty report cannot wrap the
// range promise to the zero ballot (which promises nothing).
void Acceptor::start_rebuilt(InstanceId vote_floor, std::uint64_t max_round) {
  set_vote_floor(vote_floor);
  promise_range(vote_floor, Ballot{std::min(max_round, kMaxBallotRound - 1) + 1, 0});
}

JoinInfo Acceptor::join_info() const {
  JoinInfo info{.instance_bound = std::max(forget_below_, vote_floor_), .repairing = repairing()};
  if (!instances_.empty()) info.instance_bound = std::max(info.instance_bound, instances_.rbegin()->first + 1);
  info.max_round = range_ballot_.round;
  for (const auto& [instance, s] : instances_) {
    info.max_round = std::max(info.max_round, s.promised.round);
  }
  return info;
}

bool Acceptor::acceptable(InstanceId instance, const Ballot& ballot, NodeId sender) {
  if (instance > kMaxInstance) {
    ++refused_.instance_above_max;
    return false;
  }
  if (ballot.round > kMaxBallotRound) {
    ++refused_.round_above_max;  // promising it would leave proposers no ballot above
    return false;
  }
  // With a history, member ids are not bounded by the first cluster's size
  // (may_answer judges the sender).
  if (!config_ && ballot.node >= n_) {
    ++refused_.ballot_of_non_member;
    return false;
  }
  // A proposer issues ballots with its own node id only. Another node's ballot
  // could carry a second value in one ballot and instance: two values chosen.
  if (ballot.node != sender) {
    ++refused_.ballot_of_other_node;
    return false;
  }
  return true;
}

// The proposer lists its learned instances in order (a std::set), all at or
// above `from`; on_prepare_from's binary search relies on it, and an answer
// that left out a value the list did not really name could let the proposer
// choose a second value there.
bool Acceptor::sane(const PrepareFrom& m) {
  for (std::size_t i = 0; i < m.decided.size(); ++i) {
    if (m.decided[i] < m.from || (i > 0 && m.decided[i] <= m.decided[i - 1])) {
      ++refused_.unsorted_decided;
      return false;
    }
  }
  return true;
}

void Acceptor::on_config_update(ConfigUpdate m) {
  if (m.history.entries.empty()) return;
  config_ = std::move(m.history);
  const std::vector<NodeId> members = config_->all_members();
  highest_member_ = members.empty() ? 0 : members.back();
  bool voter_somewhere = false;
  bool own_memory_somewhere = false;
  for (const ConfigAt& e : config_->entries) {
    const MemberEntry* me = self_ ? e.config.find(*self_) : nullptr;
    if (me == nullptr || me->role != MemberRole::voter) continue;
    voter_somewhere = true;
    if (me->incarnation == 0 || me->incarnation == incarnation_) own_memory_somewhere = true;
  }
  gated_ = voter_somewhere && !own_memory_somewhere;
}

bool Acceptor::may_answer(NodeId sender) {
  if (!config_) return true;
  if (sender <= highest_member_ && !config_->is_member(sender)) {
    ++refused_.removed_member;
    return false;
  }
  if (gated_) {
    ++refused_.incarnation_gate;
    return false;
  }
  return true;
}

void Acceptor::handle(const Address& from, Body body, Time, Outbox& out) {
  if (auto* c = std::get_if<ConfigUpdate>(&body)) {
    if (self_ && from.node != *self_) {
      ++refused_.local_only_from_peer;  // quorums and silences are this node's applier's word
      return;
    }
    on_config_update(std::move(*c));
    return;
  }
  if (auto* m = std::get_if<Prepare>(&body)) {
    if (!acceptable(m->instance, m->ballot, from.node) || !may_answer(from.node)) return;
    // Below the vote floor this node's lost self may have voted: silence, as
    // if it were down (a "forgotten" answer would end the proposer's attempt).
    if (m->instance < vote_floor_ && m->instance >= forget_below_) {
      ++abstained_;
      return;
    }
    out.push_back({{from.node, Actor::proposer}, on_prepare(*m)});
  } else if (auto* a = std::get_if<Accept>(&body)) {
    if (!acceptable(a->instance, a->ballot, from.node) || !may_answer(from.node)) return;
    if (a->instance < vote_floor_ && a->instance >= forget_below_) {
      ++abstained_;
      return;
    }
    out.push_back({{from.node, Actor::proposer}, on_accept(std::move(*a))});
  } else if (auto* p = std::get_if<PrepareFrom>(&body)) {
    if (!acceptable(p->from, p->ballot, from.node) || !sane(*p) || !may_answer(from.node)) return;
    // A range reaching below the vote floor covers instances this node must
    // not vote in yet: silence, as for a Prepare there.
    if (p->from < vote_floor_ && repairing()) {
      ++abstained_;
      return;
    }
    out.push_back({{from.node, Actor::proposer}, on_prepare_from(*p)});
  } else if (auto* f = std::get_if<ForgetBelow>(&body)) {
    // Only this node's learner knows what a majority is done with: a peer's
    // ForgetBelow would make this acceptor answer "forgotten" where it must vote.
    if (self_ && from.node != *self_) {
      ++refused_.local_only_from_peer;
      return;
    }
    forget_below(f->instance);
  } else if (std::holds_alternative<JoinQuery>(body)) {
    out.push_back({from, join_info()});
  } else if (std::holds_alternative<AcceptedQuery>(body)) {
    if (self_ && from.node != *self_) {
      ++refused_.local_only_from_peer;
      return;
    }
    out.push_back({from, AcceptedBound{accepted_below()}});
  }
}

// From the top: the instances above the highest accepted one are the few a
// proposer prepared and never got to accept.
InstanceId Acceptor::accepted_below() const {
  for (auto it = instances_.rbegin(); it != instances_.rend(); ++it) {
    if (!it->second.accepted_ballot.is_none()) return it->first + 1;
  }
  return 0;
}

std::string Acceptor::check_invariants() const {
  if (!instances_.empty() && instances_.begin()->first < forget_below_) {
    return "acceptor: holds instance " + std::to_string(instances_.begin()->first) +
           " below its forget point " + std::to_string(forget_below_);
  }
  for (const auto& [instance, s] : instances_) {
    if (promised_in(instance) < s.accepted_ballot) {
      return "acceptor: instance " + std::to_string(instance) +
             " accepted a ballot above the promise in force";
    }
    if (s.accepted_ballot.is_none() && !s.accepted_value.empty()) {
      return "acceptor: instance " + std::to_string(instance) + " holds a value without a ballot";
    }
  }
  if (ballot_reused_ != 0) {
    return "acceptor: " + std::to_string(ballot_reused_) +
           " Accepts reused an accepted ballot with another value";
  }
  return {};
}

}  // namespace kvpaxos
