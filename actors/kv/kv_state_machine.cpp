#include "actors/kv/kv_state_machine.hpp"

#include <cassert>

#include "messages/codec.hpp"

namespace kvpaxos {

std::size_t reply_bytes(const OpResult& r) {
  std::size_t bytes = r.value.size();
  for (const KeyValue& kv : r.kvs) bytes += kv.key.size() + kv.value.size() + kReplyBytesPerKey;
  for (const OpResponse& o : r.responses) {
    bytes += o.value.size() + kReplyBytesPerKey;
    for (const KeyValue& kv : o.kvs) bytes += kv.key.size() + kv.value.size() + kReplyBytesPerKey;
  }
  return bytes;
}


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
  run(op, *s, instance);
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

void KvStateMachine::run(const KvOp& op, Session& s, InstanceId instance) {
  OpResult result = run_op(op, instance);
  s.last_seq = op.seq;
  keep_reply(op.client_id, s, std::move(result));
  enforce_reply_budget();
}

const std::string* KvStateMachine::value_of(std::string_view key) const {
  const auto it = kv_.find(key);
  return it == kv_.end() ? nullptr : &it->second.value;
}

OpResult KvStateMachine::run_op(const KvOp& op, InstanceId instance) {
  OpResult result;
  ReplyBudget budget{.bytes = limits_.max_reply_bytes};
  if (op.op == OpKind::member) {
    result.member = run_member(op, instance);
  } else if (op.op == OpKind::txn) {
    result.succeeded = std::all_of(op.compares.begin(), op.compares.end(),
                                   [this](const Compare& c) { return holds(c); });
    const std::vector<RequestOp>& branch = result.succeeded ? op.success : op.failure;
    result.responses.reserve(branch.size());
    for (const RequestOp& o : branch) result.responses.push_back(run_one(o, budget));
  } else {
    // A whole reply's budget: its first value or key always fits.
    OpResponse r = run_one(op, budget);
    result.value = std::move(r.value);
    result.kvs = std::move(r.kvs);
    result.more = r.more;
    result.count = r.count;
  }
  result.revision = revision_;
  return result;
}

// The front door and validate_forwarded_op let only decodable changes in;
// one that does not decode anyway is refused alike on every replica.
MemberResult KvStateMachine::run_member(const KvOp& op, InstanceId instance) {
  Result<MemberChange> change = op.member_change();
  if (!change.ok()) {
    MemberResult r = config_.apply(MemberChange{.kind = MemberChangeKind::list}, instance);
    r.error = change.error();
    return r;
  }
  return config_.apply(change.value(), instance);
}

void KvStateMachine::write(const std::string& key, const std::string& value, bool append) {
  auto [it, fresh] = kv_.try_emplace(key);
  KeyEntry& e = it->second;
  kv_bytes_ += (fresh ? key.size() : 0) + value.size();
  if (append) {
    e.value += value;
  } else {
    kv_bytes_ -= e.value.size();
    e.value = value;
  }
  ++revision_;
  if (fresh) e.create_revision = revision_;
  e.mod_revision = revision_;
  ++e.version;
  if (events_ != nullptr) {
    events_->push_back(
        {EventType::put, {key, e.value, e.create_revision, e.mod_revision, e.version}});
  }
}

std::uint64_t KvStateMachine::delete_range(const std::string& key, const std::string& range_end) {
  std::uint64_t deleted = 0;
  auto it = kv_.lower_bound(key);
  while (it != kv_.end() && in_range(it->first, key, range_end)) {
    if (!limits_.bug_delete_keeps_revision) ++revision_;
    ++deleted;
    if (events_ != nullptr) events_->push_back({EventType::del, {it->first, {}, 0, revision_, 0}});
    kv_bytes_ -= it->first.size() + it->second.value.size();
    it = kv_.erase(it);
  }
  return deleted;
}

bool KvStateMachine::ReplyBudget::take(std::size_t size) {
  if (keys == 0 || (size > bytes && !empty)) return false;
  bytes -= std::min(size, bytes);
  --keys;
  empty = false;
  return true;
}

// count is every key in range; kvs stops at the limit and when the reply's
// budget (shared by a transaction's responses) is spent, and `more` tells.
void KvStateMachine::read_range(const std::string& key, const std::string& range_end,
                                std::uint64_t limit, std::uint8_t flags, ReplyBudget& budget,
                                OpResponse& out) const {
  const bool keys_only = (flags & kRangeKeysOnly) != 0;
  const bool count_only = (flags & kRangeCountOnly) != 0;
  bool full = false;
  for (auto it = kv_.lower_bound(key); it != kv_.end() && in_range(it->first, key, range_end);
       ++it) {
    ++out.count;
    if (count_only || full) continue;
    const std::size_t bytes =
        it->first.size() + (keys_only ? 0 : it->second.value.size()) + kReplyBytesPerKey;
    if ((limit != 0 && out.kvs.size() >= limit) || !budget.take(bytes)) {
      full = true;
      continue;
    }
    const KeyEntry& e = it->second;
    out.kvs.push_back({it->first, keys_only ? std::string() : e.value, e.create_revision,
                       e.mod_revision, e.version});
  }
  out.more = out.kvs.size() < out.count && !count_only;
}

// An absent key: value "", version, create_revision and mod_revision 0.
bool KvStateMachine::holds(const Compare& c) const {
  const auto it = kv_.find(c.key);
  const KeyEntry absent;
  const KeyEntry& e = it == kv_.end() ? absent : it->second;
  int order = 0;  // <0, 0, >0: the key's target against the compare's
  switch (c.target) {
    case CompareTarget::value: order = e.value.compare(c.value); break;
    case CompareTarget::version: order = e.version < c.number ? -1 : e.version > c.number; break;
    case CompareTarget::create_revision:
      order = e.create_revision < c.number ? -1 : e.create_revision > c.number;
      break;
    case CompareTarget::mod_revision:
      order = e.mod_revision < c.number ? -1 : e.mod_revision > c.number;
      break;
  }
  switch (c.op) {
    case CompareOp::equal: return order == 0;
    case CompareOp::not_equal: return order != 0;
    case CompareOp::less: return order < 0;
    case CompareOp::greater: return order > 0;
  }
  return false;
}

// One op of a request or of a transaction's branch (KvOp or RequestOp: the
// same fields). A get whose value does not fit the reply's budget answers
// "" with `more` set: read it alone.
template <typename Op>
OpResponse KvStateMachine::run_one(const Op& op, ReplyBudget& budget) {
  OpResponse r{.op = op.op};
  switch (op.op) {
    case OpKind::get:
      if (const std::string* v = value_of(op.key)) {
        if (budget.take(v->size() + kReplyBytesPerKey)) {
          r.value = *v;
        } else {
          r.more = true;
        }
      }
      break;
    case OpKind::put:
    case OpKind::append:
      write(op.key, op.value, op.op == OpKind::append);
      break;
    case OpKind::delete_range:
      r.count = delete_range(op.key, op.range_end);
      break;
    case OpKind::range:
      read_range(op.key, op.range_end, op.limit, op.flags, budget, r);
      break;
    case OpKind::txn:     // the front door refuses nested transactions
    case OpKind::member:  // and member ops inside one
      break;
  }
  return r;
}

void KvStateMachine::keep_reply(ClientId client, Session& s, OpResult reply) {
  assert(!s.has_reply);
  s.has_reply = true;
  s.reply = std::move(reply);
  s.reply_bytes = reply_bytes(s.reply);
  retained_bytes_ += s.reply_bytes;
  replies_by_age_.insert({s.last_instance, client});
}

void KvStateMachine::drop_reply(ClientId client, Session& s) {
  if (!s.has_reply) return;
  assert(retained_bytes_ >= s.reply_bytes);
  retained_bytes_ -= s.reply_bytes;
  replies_by_age_.erase({s.last_instance, client});
  s.has_reply = false;
  s.reply = OpResult{};
  s.reply_bytes = 0;
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

const OpResult* KvStateMachine::kept_reply(ClientId client, std::uint64_t seq) const {
  const auto s = sessions_.find(client);
  if (s == sessions_.end() || s->second.last_seq != seq || !s->second.has_reply) return nullptr;
  return &s->second.reply;
}

void KvStateMachine::end_instance(InstanceId instance) {
  evict_excess_sessions(instance);
  const InstanceId applied_below = instance + 1;
  config_.trim(applied_below);
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
  r.revision = revision_;
  r.kv.reserve(kv_.size());
  r.key_revisions.reserve(kv_.size());
  for (const auto& [k, e] : kv_) {
    r.kv.emplace_back(k, e.value);
    r.key_revisions.push_back({e.create_revision, e.mod_revision, e.version});
  }
  r.sessions.reserve(sessions_.size());
  for (const auto& [client, s] : sessions_) {
    r.sessions.push_back({client, s.last_seq, s.has_reply, {}, s.last_instance, s.reply});
  }
  r.config = config_.record();
}

// The record comes from parse_snapshot: each key and each client once.
void KvStateMachine::load(SnapshotRecord& r) {
  kv_.clear();
  kv_bytes_ = 0;
  revision_ = r.revision;
  for (std::size_t i = 0; i < r.kv.size(); ++i) {
    auto& [k, v] = r.kv[i];
    kv_bytes_ += k.size() + v.size();
    const KeyRevisions& rev = r.key_revisions[i];
    kv_.emplace_hint(kv_.end(), std::move(k),
                     KeyEntry{std::move(v), rev.create_revision, rev.mod_revision, rev.version});
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
    if (s.has_reply) keep_reply(s.client, session, std::move(s.reply));
  }
  if (r.has_config()) {
    // parse_snapshot checked it; a record built by hand that breaks the
    // rules keeps the configuration there is.
    if (Result<ConfigState> c = ConfigState::from_record(r.config); c.ok()) {
      const bool no_window = config_.bug_no_window();
      const bool reused_id = config_.bug_reused_id();
      config_ = std::move(c.value());
      config_.set_bug_no_window(no_window);
      config_.set_bug_reused_id(reused_id);
    }
  }
  config_.trim(r.applied_below);
  ended_.reset();
}

std::string KvStateMachine::check_invariants() const {
  if (std::string wrong = check_sessions(); !wrong.empty()) return "kv state machine: " + wrong;
  if (std::string wrong = check_keys(); !wrong.empty()) return "kv state machine: " + wrong;
  if (std::string wrong = config_.check_invariants(); !wrong.empty()) {
    return "configuration: " + wrong;
  }
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
    if (s.reply_bytes != kvpaxos::reply_bytes(s.reply)) {
      return "kept reply of client " + std::to_string(client) + " counted as " +
             std::to_string(s.reply_bytes) + " bytes, holds " +
             std::to_string(kvpaxos::reply_bytes(s.reply));
    }
    reply_bytes += s.reply_bytes;
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

// A walk over the keys: O(keys), for tests and the simulator.
std::string KvStateMachine::check_keys() const {
  std::uint64_t bytes = 0;
  for (const auto& [k, e] : kv_) {
    bytes += k.size() + e.value.size();
    if (e.version == 0 || e.create_revision > e.mod_revision || e.mod_revision > revision_) {
      return "key \"" + k + "\" has version " + std::to_string(e.version) + ", create_revision " +
             std::to_string(e.create_revision) + ", mod_revision " +
             std::to_string(e.mod_revision) + " at store revision " + std::to_string(revision_);
    }
  }
  if (bytes != kv_bytes_) {
    return "keys and values hold " + std::to_string(bytes) + " bytes but " +
           std::to_string(kv_bytes_) + " are counted";
  }
  return {};
}

}  // namespace kvpaxos
