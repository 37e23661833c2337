#include "actors/paxos/proposer.hpp"

#include <algorithm>

#include "messages/codec.hpp"

namespace kvpaxos {

namespace {
// A campaign covers the active instances from at most this far below the
// highest one learned. Older ones (a lagging node filling holes) take basic
// Paxos: a range reaching far back would ask every acceptor for every value
// it still holds.
constexpr InstanceId kLeadWindow = 1024;
// PrepareFrom.decided stays well inside the decoder's array limit.
constexpr std::size_t kMaxDecidedListed = 16384;
static_assert(kMaxDecidedListed < kMaxArrayElements, "a PrepareFrom must decode");
// Every learned instance of a campaign's range is below the tip and at most
// kLeadWindow below it, so the list is never cut short.
static_assert(kLeadWindow <= kMaxDecidedListed, "a campaign must list every decided instance");
// Sent to the proposer only from inside its node: a peer's copy would make it
// propose, stop, forget or change quorums on another node's word.
bool local_only(const Body& body) {
  return std::holds_alternative<Propose>(body) || std::holds_alternative<Learned>(body) ||
         std::holds_alternative<ForgetBelow>(body) || std::holds_alternative<ConfigUpdate>(body);
}
}  // namespace

namespace {
std::string in_ms(Duration d) {
  return std::to_string(std::chrono::duration_cast<std::chrono::milliseconds>(d).count()) + " ms";
}
}  // namespace

Result<bool> ProposerOptions::validate() const {
  if (initial_timeout <= Duration::zero() || initial_timeout > max_timeout) {
    return Error{"proposer initial_timeout is " + in_ms(initial_timeout) +
                 "; allowed above 0 and at most max_timeout (" + in_ms(max_timeout) + ")"};
  }
  if (rival_quiet < Duration::zero()) {
    return Error{"proposer rival_quiet is " + in_ms(rival_quiet) + "; allowed 0 or more"};
  }
  return true;
}

Proposer::Proposer(NodeId self, ConfigHistory config, std::uint64_t seed, ProposerOptions options)
    : self_(self), config_(std::move(config)), options_(options), rng_(seed) {}

void Proposer::handle(const Address& from, Body body, Time now, Outbox& out) {
  if (from.node != self_ && local_only(body)) {
    ++refused_.local_only_from_peer;  // the applier, learner and control are this node's
    return;
  }
  if (auto* p = std::get_if<Propose>(&body)) {
    on_propose(std::move(*p), now, out);
  } else if (auto* pr = std::get_if<Promise>(&body)) {
    on_promise(from.node, std::move(*pr), now, out);
  } else if (auto* pf = std::get_if<PromiseFrom>(&body)) {
    on_promise_from(from.node, std::move(*pf), now, out);
  } else if (auto* ac = std::get_if<Accepted>(&body)) {
    on_accepted(from.node, *ac, now, out);
  } else if (auto* l = std::get_if<Learned>(&body)) {
    if (options_.multi_paxos && l->instance >= forget_below_) learned_.insert(l->instance);
    tip_ = std::max(tip_, l->instance + 1);
    drop(l->instance);
  } else if (auto* f = std::get_if<ForgetBelow>(&body)) {
    forget_below_ = std::max(forget_below_, f->instance);
    active_.erase(active_.begin(), active_.lower_bound(forget_below_));
    lead_.reported.erase(lead_.reported.begin(), lead_.reported.lower_bound(forget_below_));
    lead_.used.erase(lead_.used.begin(), lead_.used.lower_bound(forget_below_));
    learned_.erase(learned_.begin(), learned_.lower_bound(forget_below_));
  } else if (auto* c = std::get_if<ConfigUpdate>(&body)) {
    on_config_update(std::move(*c), now, out);
  } else if (std::holds_alternative<JoinQuery>(body)) {
    out.push_back({from, join_info()});
  }
}

// The first update replaces the constructor's history whatever its
// known_below (a fixed one knows every instance); later ones never move it
// back, which would let an instance started under one history be counted
// under a guess.
void Proposer::on_config_update(ConfigUpdate m, Time now, Outbox& out) {
  if (m.history.entries.empty() || (config_updated_ && m.history.known_below < config_.known_below)) {
    ++refused_.config_moved_back;
    return;
  }
  config_ = std::move(m.history);
  config_updated_ = true;
  drop_unheld();
  if (lead_.state == Leadership::State::none || covers_range()) return;
  // New voters the range promises do not cover: the same phase 1, asked of
  // them too (a ballot's promises from more acceptors are still one phase 1).
  // The covered instances go on at this ballot meanwhile; if the new voters
  // do not answer in time, the campaign's retry starts one with a new ballot.
  // Updates come before most Proposes: one that brings nobody new leaves a
  // running campaign's retry as it was.
  std::vector<NodeId> unasked;
  for (NodeId id : range_voters()) {
    if (!lead_.asked.contains(id)) unasked.push_back(id);
  }
  if (leading()) {
    lead_.state = Leadership::State::campaigning;
    lead_.retry_at = now + jittered(lead_.timeout);
  }
  if (!unasked.empty()) ask_for_range(unasked, out);
}

void Proposer::tick(Time now, Outbox& out) {
  if (lead_.state == Leadership::State::campaigning && lead_.retry_at <= now) {
    renew(now, out);
    return;
  }
  for (auto& [instance, a] : active_) {
    if (a.retry_at > now) continue;
    if (a.phase == Phase::waiting) {
      // It waits for the campaign; once none runs (a rejected Accept at the
      // lead ballot ended it, see counting_attempt) nothing else moves it.
      if (lead_.state != Leadership::State::none) continue;
      renew(now, out);
      return;
    }
    if (a.basic) {
      start_phase1(instance, a, now, out);
    } else if (lead_.state != Leadership::State::none && a.ballot == lead_.ballot) {
      send_accept(instance, a, now, out);  // unanswered: resend, same ballot
    } else {
      renew(now, out);
      return;
    }
  }
}

void Proposer::renew(Time now, Outbox& out) {
  if (!rival_active(now) && !campaign_held()) {
    start_campaign(now, out);  // every attempt now waits for it
    return;
  }
  fall_back_to_basic(now, out);
}

// No range phase 1: every attempt not already running basic Paxos starts it.
void Proposer::fall_back_to_basic(Time now, Outbox& out) {
  lead_.state = Leadership::State::none;
  for (auto& [instance, a] : active_) {
    if (!a.basic) start_phase1(instance, a, now, out);
  }
}

bool Proposer::rival_active(Time now) const {
  return rival_seen_ && now - *rival_seen_ < options_.rival_quiet;
}

// While an attempt a range could not report runs basic Paxos.
bool Proposer::campaign_held() {
  std::erase_if(too_large_, [&](InstanceId i) { return !active_.contains(i); });
  return !too_large_.empty();
}

// A ballot above kMaxBallotRound is no jump target: a proposer that adopted
// it could issue no ballot above it, ever.
void Proposer::note_rejection(const Ballot& promised, Time now) {
  if (promised.round > kMaxBallotRound) {
    ++refused_.round_above_max;
    return;
  }
  ++rejections_;
  max_round_seen_ = std::max(max_round_seen_, promised.round);
  if (promised.node != self_) rival_seen_ = now;
}

std::optional<Ballot> Proposer::next_ballot(const Ballot& previous) {
  const std::uint64_t round = std::max(max_round_seen_, previous.round);
  if (round >= kMaxBallotRound) {
    ++refused_.rounds_exhausted;
    return std::nullopt;
  }
  max_round_seen_ = round + 1;
  return Ballot{max_round_seen_, self_};
}

// A correct acceptor promises a ballot only above everything it accepted, so
// a promise reporting a value accepted at that ballot or above (or beyond the
// round limit) comes from a faulty one; counting it could adopt a value no
// majority ever accepted.
bool Proposer::sane_promise(const Ballot& ballot, const Ballot& accepted) {
  if (accepted.round > kMaxBallotRound) {
    ++refused_.round_above_max;
    return false;
  }
  if (!accepted.is_none() && accepted >= ballot) {
    ++refused_.accepted_at_or_above_ballot;
    return false;
  }
  return true;
}

void Proposer::on_propose(Propose m, Time now, Outbox& out) {
  // The applier's window moved, its configurations the same as its last
  // ConfigUpdate's (which a change of them always precedes).
  if (config_updated_ && m.known_below > config_.known_below) config_.known_below = m.known_below;
  if (m.instance < forget_below_) return;  // decided and applied everywhere
  if (m.instance < config_.entries.front().from) return;  // applied here: see drop_unheld
  if (!config_.knows(m.instance)) {
    ++refused_.beyond_window;  // its voters are not known: the applier proposes it again later
    return;
  }
  auto [it, inserted] = active_.try_emplace(m.instance);
  if (!inserted) return;  // already working on it; the first value stands
  instance_bound_ = std::max(instance_bound_, m.instance + 1);
  Attempt& a = it->second;
  a.own_value = std::move(m.value);
  a.timeout = options_.initial_timeout;
  if (!options_.multi_paxos) {
    start_phase1(m.instance, a, now, out);
  } else if (may_lead(m.instance)) {
    send_accept(m.instance, a, now, out);
  } else if (lead_.state == Leadership::State::campaigning && in_range(m.instance) &&
             !covered(m.instance)) {
    a.phase = Phase::waiting;
  } else if (lead_.state == Leadership::State::none && !rival_active(now) && !campaign_held()) {
    start_campaign(now, out);
  } else {
    start_phase1(m.instance, a, now, out);  // below the range, used, or a rival leads
  }
}

bool Proposer::in_range(InstanceId instance) const {
  return lead_.state != Leadership::State::none && instance >= lead_.from;
}

// Phase 2 at the lead ballot may carry our own value here: a majority of the
// instance's voters promised it. Not if the instance had an Accept at this
// ballot already (a ballot carries one value per instance), nor if it is
// known decided: the campaign asked the acceptors to leave decided values out
// of their promises. Those instances take basic Paxos, whose phase 1 finds
// the value chosen there.
bool Proposer::may_lead(InstanceId instance) const {
  return in_range(instance) && covered(instance) && instance >= lead_.forgotten_below &&
         !lead_.used.contains(instance) && !learned_.contains(instance);
}

bool Proposer::covered(InstanceId instance) const {
  // Planted: the voters at the range's start stand for every instance's.
  const InstanceId governing = options_.bug_stale_range_quorum ? lead_.from : instance;
  return quorum_of(lead_.promised_by, config_.at(governing));
}

// The configurations in force somewhere at or above lead_.from: the one at
// lead_.from and every later one.
bool Proposer::covers_range() const {
  const std::vector<ConfigAt>& entries = config_.entries;
  for (std::size_t i = 0; i < entries.size(); ++i) {
    const bool below_range = i + 1 < entries.size() && entries[i + 1].from <= lead_.from;
    if (!below_range && !quorum_of(lead_.promised_by, entries[i].config)) return false;
  }
  return true;
}

// Phase 1 for every instance from the lowest active one on, with a fresh
// ballot. Every attempt in the range waits for it.
void Proposer::start_campaign(Time now, Outbox& out) {
  const auto first = active_.lower_bound(tip_ > kLeadWindow ? tip_ - kLeadWindow : 0);
  if (first == active_.end()) {
    fall_back_to_basic(now, out);  // every attempt is far below the tip
    return;
  }
  const std::optional<Ballot> ballot = next_ballot(lead_.ballot);
  if (!ballot) return;  // no ballot left to campaign with: the attempts wait
  if (lead_.timeout == Duration{}) lead_.timeout = options_.initial_timeout;
  ++campaigns_;
  lead_.state = Leadership::State::campaigning;
  lead_.ballot = *ballot;
  lead_.from = first->first;
  lead_.asked.clear();
  lead_.promised_by.clear();
  lead_.reported.clear();
  lead_.used.clear();
  lead_.forgotten_below = 0;
  lead_.retry_at = now + jittered(lead_.timeout);
  lead_.timeout = std::min(options_.max_timeout, lead_.timeout * 3 / 2);
  for (auto& [instance, a] : active_) {
    if (instance >= lead_.from) {
      a.phase = Phase::waiting;
      a.basic = false;
    } else if (!a.basic) {
      start_phase1(instance, a, now, out);
    }
  }
  ask_for_range(range_voters(), out);
}

// The range's PrepareFrom, to `voters` (none asked before at this ballot).
void Proposer::ask_for_range(const std::vector<NodeId>& voters, Outbox& out) {
  std::vector<InstanceId> decided;
  for (auto it = learned_.lower_bound(lead_.from);
       it != learned_.end() && decided.size() < kMaxDecidedListed; ++it) {
    decided.push_back(*it);
  }
  for (NodeId id : voters) lead_.asked.insert(id);
  broadcast(Actor::acceptor, PrepareFrom{lead_.from, lead_.ballot, std::move(decided)}, voters, out);
}

void Proposer::on_promise_from(NodeId from, PromiseFrom m, Time now, Outbox& out) {
  if (lead_.state != Leadership::State::campaigning || m.ballot != lead_.ballot ||
      m.from != lead_.from) {
    return;
  }
  if (!lead_.asked.contains(from) || !votes_anywhere(from)) {
    ++refused_.vote_of_non_voter;
    return;
  }
  if (!m.ok) {
    if (m.too_large) {
      // The range reaches too far back for one answer: its attempts take
      // basic Paxos, and no campaign pre-empts them until they are decided
      // (rival_quiet may be zero, so a "rival" pause would not hold them).
      for (auto it = active_.lower_bound(lead_.from); it != active_.end(); ++it) {
        too_large_.insert(it->first);
      }
      fall_back_to_basic(now, out);
      return;
    }
    if (m.promised == lead_.ballot) return;  // our own PrepareFrom, duplicated
    note_rejection(m.promised, now);
    lead_.retry_at = std::min(lead_.retry_at, now + jittered(lead_.timeout / 2));
    return;
  }
  if (lead_.promised_by.contains(from)) return;  // a duplicate
  for (const AcceptedValue& v : m.accepted) {
    if (!sane_promise(m.ballot, v.ballot)) return;
  }
  lead_.promised_by.insert(from);
  // A promiser's forget point only makes this proposer more careful: below it
  // the instances take basic Paxos (may_lead), so a wrong one costs speed.
  lead_.forgotten_below = std::max(lead_.forgotten_below, m.forgotten_below);
  // Every promise's values are kept, also those of an acceptor that is no
  // voter of the instance: the highest of a superset of a quorum's reports
  // is still a value that quorum's phase 1 allows (any value chosen below
  // this ballot was reported by some voter of the quorum, at the highest
  // ballot of all that a quorum accepted), so it is safe to propose.
  for (AcceptedValue& v : m.accepted) {
    if (v.instance < lead_.from || v.instance < forget_below_) continue;
    auto [it, inserted] = lead_.reported.try_emplace(v.instance);
    if (inserted || v.ballot > it->second.ballot) it->second = std::move(v);
  }
  if (covers_range()) lead_.state = Leadership::State::leading;
  lead_covered(now, out);
}

// Instances whose voters are not covered yet wait for more promises (or the
// campaign's retry).
void Proposer::lead_covered(Time now, Outbox& out) {
  for (auto it = active_.lower_bound(lead_.from); it != active_.end(); ++it) {
    if (it->second.phase != Phase::waiting || !covered(it->first)) continue;
    if (may_lead(it->first)) {
      send_accept(it->first, it->second, now, out);
    } else {
      start_phase1(it->first, it->second, now, out);
    }
  }
}

// Phase 2 at the leader's ballot, phase 1 being done for the whole range.
// The longest an attempt waits before it tries again. A round carries the
// value at least twice (Accept out; with basic Paxos also Promises in), and
// moving 16 MiB through encryption, copies and an fsync at each node can take
// longer than max_timeout: a fixed cap would then retry, and pre-empt itself,
// before any round could finish, for ever (a burst of 16 MiB puts over CURVE
// did this). So the cap grows with the value: max_timeout per MiB on top.
Duration Proposer::timeout_cap(Attempt& a) const {
  a.largest_value = std::max({a.largest_value, a.own_value.size(), a.value.size()});
  const auto mib = static_cast<Duration::rep>(a.largest_value >> 20);
  return options_.max_timeout * (1 + mib);
}

void Proposer::send_accept(InstanceId instance, Attempt& a, Time now, Outbox& out) {
  const auto reported = lead_.reported.find(instance);
  a.ballot = lead_.ballot;
  a.phase = Phase::accepting;
  a.basic = false;
  lead_.used.insert(instance);
  a.accepted_by.clear();
  a.value = reported == lead_.reported.end() ? a.own_value : reported->second.value;
  a.retry_at = now + jittered(a.timeout);
  a.timeout = std::min(timeout_cap(a), a.timeout * 3 / 2);
  broadcast(Actor::acceptor, Accept{instance, a.ballot, a.value}, voters_of(config_.at(instance)),
            out);
}

void Proposer::start_phase1(InstanceId instance, Attempt& a, Time now, Outbox& out) {
  const std::optional<Ballot> ballot = next_ballot(a.ballot);
  if (!ballot) {
    a.phase = Phase::waiting;  // no reply counts for it any more
    return;
  }
  a.ballot = *ballot;
  a.phase = Phase::preparing;
  a.basic = true;
  a.promised_by.clear();
  a.accepted_by.clear();
  a.highest_accepted = Ballot{};
  a.highest_value.clear();
  a.value.clear();
  a.retry_at = now + jittered(a.timeout);
  a.timeout = std::min(timeout_cap(a), a.timeout * 3 / 2);
  broadcast(Actor::acceptor, Prepare{instance, a.ballot}, voters_of(config_.at(instance)), out);
}

// The attempt a phase-1 or phase-2 reply counts for, or null when it does
// not count: an old ballot or phase, a finished instance, a sender that is no
// voter of the instance, or a rejection (then a retry is scheduled, and a
// rejected leader stops leading). A "forgotten" reply ends the instance.
template <typename Reply>
Proposer::Attempt* Proposer::counting_attempt(NodeId from, const Reply& m, Phase phase, Time now) {
  auto it = active_.find(m.instance);
  if (it == active_.end()) return nullptr;
  if (m.forgotten) {
    drop(m.instance);
    return nullptr;
  }
  Attempt& a = it->second;
  if (m.ballot != a.ballot || a.phase != phase) return nullptr;
  if (!votes_in(from, config_.at(m.instance))) {
    ++refused_.vote_of_non_voter;
    return nullptr;
  }
  if (!m.ok) {
    back_off(a, m.promised, now);
    if (lead_.state != Leadership::State::none && a.ballot == lead_.ballot) {
      // The lead ends. The attempts still waiting for its campaign (the
      // instances of a configuration the promises did not cover yet) are
      // renewed from tick() after the same back-off: this attempt may be
      // decided before it retries, and then it would not start the campaign.
      lead_.state = Leadership::State::none;
      for (auto& [instance, other] : active_) {
        if (other.phase == Phase::waiting) other.retry_at = a.retry_at;
      }
    }
    return nullptr;
  }
  return &a;
}

void Proposer::on_promise(NodeId from, Promise m, Time now, Outbox& out) {
  Attempt* a = counting_attempt(from, m, Phase::preparing, now);
  if (a == nullptr || !sane_promise(m.ballot, m.accepted_ballot)) return;
  a->promised_by.insert(from);
  if (!m.accepted_ballot.is_none() && m.accepted_ballot > a->highest_accepted) {
    a->highest_accepted = m.accepted_ballot;
    a->highest_value = std::move(m.accepted_value);
  }
  const Config& voters = config_.at(m.instance);
  if (!quorum_of(a->promised_by, voters)) return;
  a->phase = Phase::accepting;
  a->value = a->highest_accepted.is_none() ? a->own_value : a->highest_value;
  // The adopted value may be far larger than our own: wait for it as long.
  a->timeout = std::max(a->timeout, std::min(timeout_cap(*a), a->timeout * 3 / 2));
  a->retry_at = now + jittered(a->timeout);
  broadcast(Actor::acceptor, Accept{m.instance, a->ballot, a->value}, voters_of(voters), out);
}

void Proposer::on_accepted(NodeId from, const Accepted& m, Time now, Outbox& out) {
  Attempt* a = counting_attempt(from, m, Phase::accepting, now);
  if (a == nullptr) return;
  a->accepted_by.insert(from);
  if (!quorum_of(a->accepted_by, config_.at(m.instance))) return;
  // Leading worked: a later campaign starts with the shortest back-off again.
  // (Resetting it on every campaign would let two proposers duel at full speed.)
  if (lead_.state != Leadership::State::none && a->ballot == lead_.ballot) {
    lead_.timeout = options_.initial_timeout;
  }
  // Every member learns it, learners too; and this node's learner, also when
  // this node is no member of the history any more.
  std::vector<NodeId> learners = config_.all_members();
  if (!std::binary_search(learners.begin(), learners.end(), self_)) learners.push_back(self_);
  broadcast(Actor::learner, Decided{m.instance, std::move(a->value)}, learners, out);
  drop(m.instance);
}

// The applier trims the history only past what it applied, so instances
// below its first entry are decided and applied at this node, and the
// configuration that governed them is no longer held: config_.at() would
// give them the first entry's voters. An attempt there (a Propose the
// applier sent before it applied the instance, still in the pipe as it
// caught up; a campaign's attempt waiting for its promises) would count
// promises and votes of the wrong voters, and could choose a second value
// with a majority that is none of the instance's. They end here, as the
// Learned behind the applier's progress would end them.
void Proposer::drop_unheld() {
  const InstanceId held_from = config_.entries.front().from;
  while (!active_.empty() && active_.begin()->first < held_from) drop(active_.begin()->first);
}

// The instance is decided (or forgotten). What the promises reported for it
// goes; a later Propose of it, from an applier that had not yet learned the
// decision, must not bring a new value at this ballot: it runs basic Paxos.
void Proposer::drop(InstanceId instance) {
  active_.erase(instance);
  if (in_range(instance)) lead_.used.insert(instance);
  lead_.reported.erase(instance);
}

// A rejection: someone holds a higher ballot. Jump past it, but only after a
// randomized pause so that two proposers stop pre-empting each other.
void Proposer::back_off(Attempt& a, const Ballot& seen, Time now) {
  note_rejection(seen, now);
  const Time retry = now + jittered(a.timeout / 2);
  a.retry_at = std::min(a.retry_at, retry);
}

Duration Proposer::jittered(Duration d) {
  const auto ticks = std::max<Duration::rep>(1, d.count());
  std::uniform_int_distribution<Duration::rep> dist(ticks, 2 * ticks);
  return Duration(dist(rng_));
}

bool Proposer::votes_in(NodeId id, const Config& c) const {
  if (options_.bug_count_non_voters) return c.is_member(id);  // planted: learners vote too
  return c.is_voter(id);
}

bool Proposer::votes_anywhere(NodeId id) const {
  return std::any_of(config_.entries.begin(), config_.entries.end(),
                     [this, id](const ConfigAt& e) { return votes_in(id, e.config); });
}

std::vector<NodeId> Proposer::voters_of(const Config& c) const {
  std::vector<NodeId> ids;
  for (const MemberEntry& m : c.members) {
    if (votes_in(m.id, c)) ids.push_back(m.id);
  }
  return ids;
}

std::vector<NodeId> Proposer::range_voters() const {
  std::vector<NodeId> ids = config_.all_members();
  std::erase_if(ids, [this](NodeId id) { return !votes_anywhere(id); });
  return ids;
}

// Against the voters' count whatever votes_in says: a majority of them.
bool Proposer::quorum_of(const VoteSet& votes, const Config& c) const {
  const auto counted = std::count_if(votes.ids().begin(), votes.ids().end(),
                                     [this, &c](NodeId id) { return votes_in(id, c); });
  return is_majority(static_cast<std::size_t>(counted), c.voter_count());
}

void Proposer::broadcast(Actor to, const Body& body, const std::vector<NodeId>& nodes,
                         Outbox& out) const {
  for (NodeId node : nodes) out.push_back({{node, to}, body});
}

std::string Proposer::check_invariants() const {
  if (max_round_seen_ > kMaxBallotRound) {
    return "max_round_seen " + std::to_string(max_round_seen_) + " is above kMaxBallotRound";
  }
  if (!active_.empty() && active_.begin()->first < forget_below_) {
    return "instance " + std::to_string(active_.begin()->first) + " is active below forget_below " +
           std::to_string(forget_below_);
  }
  if (!learned_.empty() && *learned_.begin() < forget_below_) {
    return "instance " + std::to_string(*learned_.begin()) + " is learned below forget_below";
  }
  if (!active_.empty() && active_.rbegin()->first >= instance_bound_) {
    return "instance " + std::to_string(active_.rbegin()->first) + " is active at or above " +
           "instance_bound " + std::to_string(instance_bound_);
  }
  for (const auto& [instance, a] : active_) {
    if (std::string problem = attempt_problem(instance, a); !problem.empty()) return problem;
  }
  return leadership_problem();
}

std::string Proposer::debug_state() const {
  static constexpr const char* kLead[] = {"none", "campaigning", "leading"};
  static constexpr const char* kPhase[] = {"preparing", "accepting", "waiting"};
  std::string s = "lead " + std::string(kLead[static_cast<int>(lead_.state)]) + " " +
                  to_string(lead_.ballot) + " from " + std::to_string(lead_.from) + " promised " +
                  std::to_string(lead_.promised_by.ids().size()) + "/asked " +
                  std::to_string(lead_.asked.ids().size()) + "; known_below " +
                  std::to_string(config_.known_below) + " entries " +
                  std::to_string(config_.entries.size()) + "; tip " + std::to_string(tip_) +
                  "; active " + std::to_string(active_.size()) + ":";
  int shown = 0;
  for (const auto& [instance, a] : active_) {
    if (++shown > 4) break;
    s += " " + std::to_string(instance) + "=" + kPhase[static_cast<int>(a.phase)] +
         (a.basic ? "/basic " : " ") + to_string(a.ballot);
  }
  s += "; refused beyond_window " + std::to_string(refused_.beyond_window) + " moved_back " +
       std::to_string(refused_.config_moved_back) + " non_voter " +
       std::to_string(refused_.vote_of_non_voter);
  return s;
}

std::string Proposer::attempt_problem(InstanceId instance, const Attempt& a) const {
  const std::string where = "instance " + std::to_string(instance) + ": ";
  if (!a.ballot.is_none() && (a.ballot.node != self_ || a.ballot.round > max_round_seen_)) {
    return where + "ballot " + to_string(a.ballot) + " is not one this proposer issued";
  }
  if (config_updated_ && !config_.knows(instance)) {
    return where + "active at or above known_below " + std::to_string(config_.known_below);
  }
  // Below the history's first entry the configuration is no longer held
  // (those instances are applied here; drop_unheld ends their attempts).
  if (instance < config_.entries.front().from) return {};
  const Config& c = config_.at(instance);
  const auto outsider = [&c](NodeId id) { return !c.is_member(id); };
  if (std::any_of(a.promised_by.ids().begin(), a.promised_by.ids().end(), outsider) ||
      std::any_of(a.accepted_by.ids().begin(), a.accepted_by.ids().end(), outsider)) {
    return where + "a vote from a node outside its configuration";
  }
  if (a.basic && a.phase == Phase::accepting && !quorum_of(a.promised_by, c)) {
    return where + "phase 2 of basic Paxos without a majority of its voters' promises";
  }
  return {};
}

std::string Proposer::leadership_problem() const {
  if (lead_.state == Leadership::State::none) return {};
  if (lead_.ballot.is_none() || lead_.ballot.node != self_ ||
      lead_.ballot.round > max_round_seen_) {
    return "range ballot " + to_string(lead_.ballot) + " is not one this proposer issued";
  }
  const std::vector<NodeId>& promised = lead_.promised_by.ids();
  if (std::any_of(promised.begin(), promised.end(),
                  [this](NodeId id) { return !lead_.asked.contains(id); })) {
    return "a range promise from a node that was not asked";
  }
  if (leading() && !covers_range()) {
    return "leading without a majority of range promises in every configuration";
  }
  if (!lead_.reported.empty() && lead_.reported.begin()->first < forget_below_) {
    return "a value reported for instance " + std::to_string(lead_.reported.begin()->first) +
           " below forget_below";
  }
  return {};
}

}  // namespace kvpaxos
