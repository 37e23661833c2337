#include "actors/kv/config_state.hpp"

#include <algorithm>
#include <cassert>

namespace kvpaxos {

namespace {

std::string member_text(const MemberEntry& m) {
  return m.name + " (id " + std::to_string(m.id) + ")";
}

std::string members_text(const Config& c) {
  std::string out;
  for (const MemberEntry& m : c.members) out += (out.empty() ? "" : ", ") + member_text(m);
  return out;
}

// Two members of `c` with the same name or endpoint, or empty. Empty
// endpoints do not count: none is advertised (a client endpoint), or the
// cluster runs without addresses (the unit tests', the simulator's).
std::string duplicate_in(const Config& c) {
  for (std::size_t i = 0; i < c.members.size(); ++i) {
    const MemberEntry& a = c.members[i];
    for (std::size_t j = 0; j < i; ++j) {
      const MemberEntry& b = c.members[j];
      if (a.name == b.name) {
        return "the name " + a.name + " is taken by member id " + std::to_string(b.id) +
               "; pick another name";
      }
      if (!a.peer_endpoint.empty() && a.peer_endpoint == b.peer_endpoint) {
        return "peer endpoint " + a.peer_endpoint + " is " + member_text(b) +
               "'s; each member needs its own";
      }
      if (!a.client_endpoint.empty() && a.client_endpoint == b.client_endpoint) {
        return "client endpoint " + a.client_endpoint + " is " + member_text(b) +
               "'s; each member needs its own";
      }
      if (!a.peer_key.empty() && a.peer_key == b.peer_key) {
        return "that public key is " + member_text(b) + "'s; each member needs a key pair of its "
               "own (kvctl keygen NAME)";
      }
    }
  }
  return {};
}

std::size_t learner_count(const Config& c) { return c.members.size() - c.voter_count(); }

MemberEntry* find_mutable(Config& c, NodeId id) { return const_cast<MemberEntry*>(c.find(id)); }

void erase_member(Config& c, NodeId id) {
  std::erase_if(c.members, [id](const MemberEntry& m) { return m.id == id; });
}

}  // namespace

std::vector<MemberEntry> bootstrap_members(const std::vector<std::string>& names,
                                           const std::vector<std::string>& peer_endpoints) {
  std::vector<MemberEntry> members;
  members.reserve(names.size());
  for (std::size_t i = 0; i < names.size(); ++i) {
    members.push_back(MemberEntry{
        .id = static_cast<NodeId>(i),
        .name = names[i],
        .peer_endpoint = i < peer_endpoints.size() ? peer_endpoints[i] : std::string()});
  }
  return members;
}

ConfigState::ConfigState(std::vector<MemberEntry> members, std::uint64_t alpha) : alpha_(alpha) {
  assert(alpha >= 1 && !members.empty());
  std::sort(members.begin(), members.end(),
            [](const MemberEntry& a, const MemberEntry& b) { return a.id < b.id; });
  next_member_id_ = members.back().id + 1;
  history_.entries.push_back(ConfigAt{0, Config{0, std::move(members)}});
}

ConfigState ConfigState::fixed(std::size_t n, std::uint64_t alpha) {
  return ConfigState(ConfigHistory::fixed(n).latest().members, alpha);
}

Result<ConfigState> ConfigState::from_record(ConfigStateRecord r) {
  ConfigState s;
  s.alpha_ = r.alpha;
  s.next_member_id_ = r.next_member_id;
  s.history_.entries = std::move(r.entries);
  s.history_.removed = std::move(r.removed);
  if (s.history_.entries.size() > 2) {
    return Error{"the configuration holds " + std::to_string(s.history_.entries.size()) +
                 " entries; kvpaxosd writes at most the current one and one pending"};
  }
  if (!s.history_.entries.empty()) s.trimmed_below_ = s.history_.entries.front().from;
  if (std::string wrong = s.check_invariants(); !wrong.empty()) {
    return Error{"the configuration breaks a rule kvpaxosd keeps: " + wrong};
  }
  return s;
}

MemberResult ConfigState::result(InstanceId instance) const {
  MemberResult r;
  r.epoch = epoch();
  r.config = latest();
  r.pending_from = history_.entries.back().from > instance ? history_.entries.back().from : 0;
  r.alpha = alpha_;
  return r;
}

MemberResult ConfigState::refuse(std::string why, InstanceId instance) const {
  MemberResult r = result(instance);
  r.error = std::move(why);
  return r;
}

MemberResult ConfigState::apply(const MemberChange& change, InstanceId instance) {
  trim(instance);
  if (change.kind == MemberChangeKind::list) return result(instance);
  if (std::string why = refusal(change, instance); !why.empty()) return refuse(why, instance);
  NodeId id = change.target;
  Result<Config> next = changed(change, id);
  if (!next.ok()) return refuse(next.error(), instance);
  if (std::string why = broken_rule(next.value()); !why.empty()) return refuse(why, instance);
  if (change.kind == MemberChangeKind::add_learner) {
    next_member_id_ = std::max(next_member_id_, id + 1);
  }
  // The window (MEMBERSHIP.md 3.3): instances up to instance + alpha - 1 may
  // be proposed already, under the configuration in force now.
  const InstanceId from = instance + (bug_no_window_ ? 1 : alpha_);
  remember_removed(latest(), next.value(), from);
  history_.entries.push_back(ConfigAt{from, std::move(next.value())});
  MemberResult r = result(instance);
  r.id = id;
  r.effective_from = from;
  return r;
}

// The rules that do not depend on the change's kind: compare-and-swap on
// the epoch, one change at a time.
std::string ConfigState::refusal(const MemberChange& change, InstanceId instance) const {
  if (change.expected_epoch != epoch()) {
    return "epoch " + std::to_string(change.expected_epoch) + " is not the current epoch " +
           std::to_string(epoch()) +
           "; read the configuration again (kvctl member list) and retry";
  }
  const InstanceId pending = history_.entries.back().from;
  if (instance < pending) {
    return "epoch " + std::to_string(epoch()) + " is still pending: it governs from instance " +
           std::to_string(pending) + " and this change was decided in instance " +
           std::to_string(instance) + "; retry once it is in force (kvctl member list)";
  }
  return {};
}

Result<Config> ConfigState::changed(const MemberChange& change, NodeId& id) const {
  Config next = latest();
  ++next.epoch;
  if (change.kind == MemberChangeKind::add_learner) {
    if (learner_count(next) >= kMaxLearners) {
      return Error{"at most " + std::to_string(kMaxLearners) +
                   " learners at once; promote or remove one first (members: " +
                   members_text(next) + ")"};
    }
    // Planted: the id from the member list, which forgets removed members.
    id = bug_reused_id_ ? next.members.back().id + 1 : next_member_id_;
    next.members.push_back(MemberEntry{id, change.name, change.peer_endpoint,
                                       change.client_endpoint, MemberRole::learner,
                                       change.incarnation, change.peer_key});
    return next;  // ids ascend: the new one is the largest
  }
  MemberEntry* target = find_mutable(next, change.target);
  if (target == nullptr) {
    return Error{"no member has id " + std::to_string(change.target) + " (members: " +
                 members_text(next) + ")"};
  }
  const std::string who = member_text(*target);
  switch (change.kind) {
    case MemberChangeKind::promote:
      if (target->role != MemberRole::learner) return Error{who + " is a voter already"};
      target->role = MemberRole::voter;
      target->incarnation = change.incarnation;
      break;
    case MemberChangeKind::update:
      if (!change.peer_endpoint.empty()) target->peer_endpoint = change.peer_endpoint;
      if (!change.client_endpoint.empty()) target->client_endpoint = change.client_endpoint;
      if (!change.peer_key.empty()) target->peer_key = change.peer_key;
      break;
    case MemberChangeKind::replace: {
      if (target->role != MemberRole::voter) {
        return Error{who + " is a learner; replace takes a voter out (remove a learner instead)"};
      }
      MemberEntry* other = find_mutable(next, change.other);
      if (other == nullptr || other->role != MemberRole::learner) {
        return Error{"replace promotes a learner in " + who + "'s place, and id " +
                     std::to_string(change.other) + " is " +
                     (other == nullptr ? "no member" : "a voter") + " (add it with kvctl member "
                     "add first)"};
      }
      other->role = MemberRole::voter;
      other->incarnation = change.incarnation;
      erase_member(next, change.target);
      break;
    }
    case MemberChangeKind::remove:
      erase_member(next, change.target);
      break;
    case MemberChangeKind::list:
    case MemberChangeKind::add_learner:
      break;
  }
  return next;
}

void ConfigState::remember_removed(const Config& before, const Config& after, InstanceId from) {
  for (const MemberEntry& m : before.members) {
    if (after.is_member(m.id)) continue;
    history_.removed.push_back(RemovedMember{m.id, m.name, after.epoch, from, m.peer_key});
  }
  std::vector<RemovedMember>& r = history_.removed;
  if (r.size() > kMaxRemovedKept) r.erase(r.begin(), r.end() - kMaxRemovedKept);
}

std::string ConfigState::broken_rule(const Config& next) const {
  if (next.voter_count() == 0) return "that leaves no voter; promote another member first";
  if (next.voter_count() > kMaxVoters) {
    return "a configuration has at most " + std::to_string(kMaxVoters) + " voters";
  }
  if (learner_count(next) > kMaxLearners) {
    return "a configuration has at most " + std::to_string(kMaxLearners) + " learners";
  }
  return duplicate_in(next);
}

void ConfigState::trim(InstanceId applied_below) {
  std::vector<ConfigAt>& e = history_.entries;
  while (e.size() > 1 && e[1].from <= applied_below) e.erase(e.begin());
  trimmed_below_ = std::max(trimmed_below_, applied_below);
}

InstanceId ConfigState::pending_from(InstanceId applied_below) const {
  const InstanceId from = history_.entries.back().from;
  return from > applied_below ? from : 0;
}

ConfigHistory ConfigState::history(InstanceId applied_below) const {
  // Only what governs instances at or above applied_below, whether or not
  // the instance ending there was trimmed yet: the applier announces a
  // change coming into force before the instance ends, and a removed
  // member must leave the announced history then.
  const auto first = history_.entries.begin() + static_cast<std::ptrdiff_t>(first_kept(applied_below));
  ConfigHistory h;
  h.entries.assign(first, history_.entries.end());
  h.known_below = applied_below + alpha_;
  h.removed = history_.removed;
  return h;
}

std::pair<std::uint64_t, InstanceId> ConfigState::history_mark(InstanceId applied_below) const {
  return {epoch(), history_.entries[first_kept(applied_below)].from};
}

std::size_t ConfigState::first_kept(InstanceId applied_below) const {
  const std::vector<ConfigAt>& e = history_.entries;
  std::size_t first = 0;
  while (first + 1 < e.size() && e[first + 1].from <= applied_below) ++first;
  return first;
}

std::string ConfigState::check_invariants() const {
  const std::vector<ConfigAt>& e = history_.entries;
  if (alpha_ == 0 || alpha_ > kMaxAlpha) {
    return "alpha " + std::to_string(alpha_) + " is outside [1, " + std::to_string(kMaxAlpha) + "]";
  }
  if (e.empty()) return "no configuration";
  if (e.size() > 2 || (e.size() == 2 && e[1].from <= trimmed_below_)) {
    return std::to_string(e.size()) + " entries after trimming at " +
           std::to_string(trimmed_below_) + "; at most the current one and one pending";
  }
  for (std::size_t i = 0; i < e.size(); ++i) {
    const Config& c = e[i].config;
    if (i > 0 && (e[i].from <= e[i - 1].from || c.epoch != e[i - 1].config.epoch + 1)) {
      return "entry of epoch " + std::to_string(c.epoch) + " does not follow the one before";
    }
    for (std::size_t m = 0; m < c.members.size(); ++m) {
      if (c.members[m].id >= next_member_id_ || (m > 0 && c.members[m].id <= c.members[m - 1].id)) {
        return "epoch " + std::to_string(c.epoch) + " has ids out of order or not below " +
               "next_member_id " + std::to_string(next_member_id_);
      }
    }
    if (std::string wrong = broken_rule(c); !wrong.empty()) {
      return "epoch " + std::to_string(c.epoch) + ": " + wrong;
    }
  }
  const std::vector<RemovedMember>& r = history_.removed;
  if (r.size() > kMaxRemovedKept) {
    return std::to_string(r.size()) + " removed members kept; at most " +
           std::to_string(kMaxRemovedKept);
  }
  for (std::size_t i = 0; i < r.size(); ++i) {
    const std::string who = "removed member " + std::to_string(r[i].id);
    if (r[i].id >= next_member_id_) {
      return who + " is not below next_member_id " + std::to_string(next_member_id_);
    }
    if (latest().is_member(r[i].id)) return who + " is a member of epoch " + std::to_string(epoch());
    for (std::size_t j = 0; j < i; ++j) {
      if (r[j].id == r[i].id) return who + " is named twice";
    }
  }
  return {};
}

}  // namespace kvpaxos
