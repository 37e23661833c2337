#include "actors/kv/kv_state_machine.hpp"

#include <cassert>

namespace kvpaxos {

OpOutcome KvStateMachine::execute(const KvOp& op, InstanceId instance) {
  assert(!op.noop);
  Session* s = session_for(op, instance);
  if (s == nullptr) return OpOutcome::session_expired;
  // The client acknowledges a reply this session never produced: the
  // session it talked to was evicted and this one was started again by a
  // late copy of its seq 1. Its op may have run in the old one.
  if (op.seq > s->last_seq && op.ack > s->last_seq && !limits_.bug_execute_expired) {
    return OpOutcome::session_expired;
  }
  if (s->has_reply && op.ack >= s->last_seq) drop_reply(op.client_id, *s);
  if (op.seq <= s->last_seq) return OpOutcome::duplicate;
  if (s->has_reply) drop_reply(op.client_id, *s);  // superseded: the client moved on
  touch(op.client_id, *s, instance);
  run(op, *s);
  return OpOutcome::ran;
}

KvStateMachine::Session* KvStateMachine::session_for(const KvOp& op, InstanceId instance) {
  if (auto found = sessions_.find(op.client_id); found != sessions_.end()) return &found->second;
  // Only seq 1 starts a session. A later seq with none: the session was
  // evicted, and this op may have run before; running it now could run it
  // twice, so it does not run (the client is told session_expired).
  if (op.seq > 1 && !limits_.bug_execute_expired) return nullptr;
  Session& s = sessions_.emplace(op.client_id, Session{}).first->second;
  s.last_instance = instance;
  sessions_by_age_.insert({instance, op.client_id});
  return &s;
}

void KvStateMachine::touch(ClientId client, Session& s, InstanceId instance) {
  sessions_by_age_.erase({s.last_instance, client});
  sessions_by_age_.insert({instance, client});
  s.last_instance = instance;
}

void KvStateMachine::run(const KvOp& op, Session& s) {
  std::string result;
  switch (op.op) {
    case OpKind::get:
      if (auto it = kv_.find(op.key); it != kv_.end()) result = it->second;
      break;
    case OpKind::put: {
      auto [it, fresh] = kv_.try_emplace(op.key);
      kv_bytes_ += (fresh ? op.key.size() : 0) + op.value.size();
      kv_bytes_ -= it->second.size();
      it->second = op.value;
      break;
    }
    case OpKind::append: {
      auto [it, fresh] = kv_.try_emplace(op.key);
      kv_bytes_ += (fresh ? op.key.size() : 0) + op.value.size();
      it->second += op.value;
      break;
    }
  }
  s.last_seq = op.seq;
  keep_reply(op.client_id, s, std::move(result));
  enforce_reply_budget();
}

void KvStateMachine::keep_reply(ClientId client, Session& s, std::string value) {
  assert(!s.has_reply);
  s.has_reply = true;
  s.reply_value = std::move(value);
  retained_bytes_ += s.reply_value.size();
  replies_by_age_.insert({s.last_instance, client});
}

void KvStateMachine::drop_reply(ClientId client, Session& s) {
  if (!s.has_reply) return;
  assert(retained_bytes_ >= s.reply_value.size());
  retained_bytes_ -= s.reply_value.size();
  replies_by_age_.erase({s.last_instance, client});
  s.has_reply = false;
  std::string().swap(s.reply_value);
}

// Depends on the log alone, so every replica drops the same replies. The
// newest reply stays even if it alone is over the budget: its client has
// not been answered yet.
void KvStateMachine::enforce_reply_budget() {
  while (retained_bytes_ > limits_.retained_reply_bytes && replies_by_age_.size() > 1) {
    const ClientId oldest = replies_by_age_.begin()->second;
    drop_reply(oldest, sessions_.at(oldest));
  }
}

bool KvStateMachine::executed(ClientId client, std::uint64_t seq) const {
  const auto s = sessions_.find(client);
  return s != sessions_.end() && s->second.last_seq >= seq;
}

const std::string* KvStateMachine::kept_reply(ClientId client, std::uint64_t seq) const {
  const auto s = sessions_.find(client);
  if (s == sessions_.end() || s->second.last_seq != seq || !s->second.has_reply) return nullptr;
  return &s->second.reply_value;
}

void KvStateMachine::end_instance(InstanceId instance) {
  evict_excess_sessions(instance);
  const InstanceId applied_below = instance + 1;
  if (applied_below % 1024 == 0) evict_idle_sessions(applied_below);
  ended_ = instance;
}

void KvStateMachine::evict(Sessions::iterator it) {
  drop_reply(it->first, it->second);
  sessions_by_age_.erase({it->second.last_instance, it->first});
  sessions_.erase(it);
  ++sessions_evicted_;
}

// Both evictions depend on the log alone (instances and client ids), so
// every replica evicts the same sessions at the same instance.
void KvStateMachine::evict_excess_sessions(InstanceId instance) {
  while (sessions_.size() > limits_.max_sessions && !sessions_by_age_.empty() &&
         sessions_by_age_.begin()->first < instance) {
    evict(sessions_.find(sessions_by_age_.begin()->second));
  }
  assert(sessions_by_age_.size() == sessions_.size());
}

void KvStateMachine::evict_idle_sessions(InstanceId applied_below) {
  if (applied_below < limits_.session_idle_instances) return;
  const InstanceId horizon = applied_below - limits_.session_idle_instances;
  while (!sessions_by_age_.empty() && sessions_by_age_.begin()->first < horizon) {
    evict(sessions_.find(sessions_by_age_.begin()->second));
  }
  assert(sessions_by_age_.size() == sessions_.size());
}

void KvStateMachine::write_to(SnapshotRecord& r) const {
  r.kv.reserve(kv_.size());
  for (const auto& [k, v] : kv_) r.kv.emplace_back(k, v);
  r.sessions.reserve(sessions_.size());
  for (const auto& [client, s] : sessions_) {
    r.sessions.push_back({client, s.last_seq, s.has_reply, s.reply_value, s.last_instance});
  }
}

// The record comes from parse_snapshot: each key and each client once.
void KvStateMachine::load(SnapshotRecord& r) {
  kv_.clear();
  kv_bytes_ = 0;
  kv_.reserve(r.kv.size());
  for (auto& [k, v] : r.kv) {
    kv_bytes_ += k.size() + v.size();
    kv_.emplace(std::move(k), std::move(v));
  }
  sessions_.clear();
  replies_by_age_.clear();
  sessions_by_age_.clear();
  retained_bytes_ = 0;
  for (SessionRecord& s : r.sessions) {
    Session& session = sessions_[s.client];
    session.last_seq = s.last_seq;
    session.last_instance = s.last_instance;
    sessions_by_age_.insert({s.last_instance, s.client});
    if (s.has_reply) keep_reply(s.client, session, std::move(s.reply_value));
  }
  ended_.reset();
}

std::string KvStateMachine::check_invariants() const {
  if (std::string wrong = check_sessions(); !wrong.empty()) return "kv state machine: " + wrong;
  if (ended_ && sessions_.size() > limits_.max_sessions &&
      sessions_by_age_.begin()->first < *ended_) {
    return "kv state machine: " + std::to_string(sessions_.size()) + " sessions (limit " +
           std::to_string(limits_.max_sessions) + ") after instance " + std::to_string(*ended_) +
           ", one untouched since instance " + std::to_string(sessions_by_age_.begin()->first);
  }
  return {};
}

// The sessions against both age indexes and the retained byte count.
std::string KvStateMachine::check_sessions() const {
  if (sessions_by_age_.size() != sessions_.size()) {
    return std::to_string(sessions_.size()) + " sessions but " +
           std::to_string(sessions_by_age_.size()) + " in the age index";
  }
  std::size_t replies = 0;
  std::size_t reply_bytes = 0;
  for (const auto& [client, s] : sessions_) {
    if (!sessions_by_age_.contains({s.last_instance, client})) {
      return "session of client " + std::to_string(client) + " missing from the age index";
    }
    if (!s.has_reply) continue;
    ++replies;
    reply_bytes += s.reply_value.size();
    if (!replies_by_age_.contains({s.last_instance, client})) {
      return "kept reply of client " + std::to_string(client) + " missing from the reply index";
    }
  }
  if (replies != replies_by_age_.size()) {
    return std::to_string(replies) + " kept replies but " +
           std::to_string(replies_by_age_.size()) + " in the reply index";
  }
  if (reply_bytes != retained_bytes_) {
    return "kept replies hold " + std::to_string(reply_bytes) + " bytes but " +
           std::to_string(retained_bytes_) + " are counted";
  }
  return {};
}

}  // namespace kvpaxos
