#include "actors/applier.hpp"

#include <algorithm>
#include <exception>

#include "messages/codec.hpp"

namespace kvpaxos {

Applier::Applier(NodeId self, ApplierOptions options) : self_(self), options_(std::move(options)) {}

void Applier::handle(const Address&, Body body, Time now, Outbox& out) {
  if (auto* r = std::get_if<FromClient>(&body)) {
    on_request(std::move(*r), out);
  } else if (auto* a = std::get_if<Apply>(&body)) {
    on_apply(std::move(*a), now, out);
  } else if (auto* p = std::get_if<LearnerProgress>(&body)) {
    if (p->decided_below > decided_below_ && applied_below_ >= decided_below_) {
      last_progress_ = now;  // a new gap opens now, not when we last applied
    }
    forget_below_ = std::max(forget_below_, p->forget_below);
    decided_below_ = std::max(decided_below_, p->decided_below);
  } else if (auto* s = std::get_if<StatusFromClient>(&body)) {
    out.push_back({{self_, Actor::front_door}, ToClient{s->route, encode(status())}});
  }
}

void Applier::on_request(FromClient m, Outbox& out) {
  const ClientRequest& req = m.request;
  const ClientId client = req.client_id;
  if (auto s = sessions_.find(client); s != sessions_.end() && req.seq <= s->second.last_seq) {
    const Session& session = s->second;
    if (req.seq == session.last_seq && session.has_reply) {
      reply(m.route, {client, req.seq, ReplyCode::ok, session.reply_value, {}}, out);
    } else {
      reply(m.route,
            {client, req.seq, ReplyCode::stale_request, {},
             "request " + std::to_string(req.seq) + " was already executed and its reply "
             "acknowledged or released; the client must use a new sequence number"},
            out);
    }
    return;
  }
  if (auto w = waiters_.find(client); w != waiters_.end()) {
    if (w->second.seq == req.seq) {
      w->second.route = std::move(m.route);  // a retry: answer where the client listens now
      return;
    }
    if (w->second.seq > req.seq) {
      reply(m.route, {client, req.seq, ReplyCode::stale_request, {},
                      "a newer request from this client is in progress"}, out);
      return;
    }
  }
  Waiter& w = waiters_[client];
  w = Waiter{req.seq, std::move(m.route), encode_op(KvOp::from(req)), 0};
  propose(client, w, out);
}

InstanceId Applier::next_free_instance() const {
  return std::max({next_propose_, applied_below_, decided_below_});
}

void Applier::propose(ClientId client, Waiter& w, Outbox& out) {
  w.instance = next_free_instance();
  next_propose_ = w.instance + 1;
  proposed_[w.instance] = client;
  out.push_back({{self_, Actor::proposer}, Propose{w.instance, w.op}});
}

void Applier::on_apply(Apply m, Time now, Outbox& out) {
  if (m.instance != applied_below_) return;  // the learner delivers in order
  Result<KvOp> op = decode_op(m.value);
  if (op.ok()) {
    if (!op->noop) execute(*op, m.instance);
  } else {
    ++undecodable_entries_;  // every replica skips it alike
  }
  ++applied_below_;
  last_progress_ = now;

  // Lost the race for an instance: the op goes to the next free one.
  if (auto p = proposed_.find(m.instance); p != proposed_.end()) {
    const ClientId client = p->second;
    proposed_.erase(p);
    if (auto w = waiters_.find(client); w != waiters_.end() && w->second.instance == m.instance) {
      const auto s = sessions_.find(client);
      const bool executed = s != sessions_.end() && s->second.last_seq >= w->second.seq;
      if (!executed) propose(client, w->second, out);
    }
  }
  if (op.ok() && !op->noop) answer_waiter(op->client_id, out);
  if (applied_below_ % 1024 == 0) evict_idle_sessions();
  if (!options_.save_snapshot) {
    out.push_back({{self_, Actor::learner}, LocalDone{applied_below_}});
  } else {
    bytes_since_snapshot_ += m.value.size();
    if (applied_below_ - snapshot_below_ >= options_.snapshot_every ||
        bytes_since_snapshot_ >= options_.snapshot_every_bytes) {
      take_snapshot(out);
    }
  }
}

namespace {

// The snapshot file's content. Field order is the format; bump kFormat on change.
struct SessionRecord {
  ClientId client = 0;
  std::uint64_t last_seq = 0;
  bool has_reply = false;
  std::string reply_value;
  InstanceId last_instance = 0;
  MSGPACK_DEFINE(client, last_seq, has_reply, reply_value, last_instance)
};
struct SnapshotRecord {
  std::uint32_t format = 0;
  InstanceId applied_below = 0;
  std::vector<std::pair<std::string, std::string>> kv;
  std::vector<SessionRecord> sessions;
  std::uint64_t undecodable_entries = 0;
  MSGPACK_DEFINE(format, applied_below, kv, sessions, undecodable_entries)
};
constexpr std::uint32_t kSnapshotFormat = 1;

}  // namespace

std::string Applier::snapshot() const {
  SnapshotRecord r{kSnapshotFormat, applied_below_, {}, {}, undecodable_entries_};
  r.kv.reserve(kv_.size());
  for (const auto& [k, v] : kv_) r.kv.emplace_back(k, v);
  r.sessions.reserve(sessions_.size());
  for (const auto& [client, s] : sessions_) {
    r.sessions.push_back({client, s.last_seq, s.has_reply, s.reply_value, s.last_instance});
  }
  msgpack::sbuffer buf;
  msgpack::pack(buf, r);
  return std::string(buf.data(), buf.size());
}

Result<bool> Applier::restore(std::string_view bytes) {
  SnapshotRecord r;
  try {
    msgpack::object_handle h = msgpack::unpack(bytes.data(), bytes.size());
    h.get().convert(r);
  } catch (const std::exception& e) {
    return Error{std::string("snapshot does not decode: ") + e.what()};
  }
  if (r.format != kSnapshotFormat) {
    return Error{"snapshot format " + std::to_string(r.format) + " is not the " +
                 std::to_string(kSnapshotFormat) + " this kvpaxosd reads"};
  }
  kv_.clear();
  for (auto& [k, v] : r.kv) kv_.emplace(std::move(k), std::move(v));
  sessions_.clear();
  replies_by_age_.clear();
  retained_bytes_ = 0;
  for (SessionRecord& s : r.sessions) {
    Session& session = sessions_[s.client];
    session.last_seq = s.last_seq;
    session.last_instance = s.last_instance;
    if (s.has_reply) keep_reply(s.client, session, std::move(s.reply_value));
  }
  applied_below_ = snapshot_below_ = next_propose_ = r.applied_below;
  decided_below_ = std::max(decided_below_, applied_below_);
  undecodable_entries_ = r.undecodable_entries;
  return true;
}

void Applier::take_snapshot(Outbox& out) {
  Result<bool> saved = options_.save_snapshot(applied_below_, snapshot());
  if (!saved.ok()) {
    // Not durable: keep the log (the Done point stays) and try again later.
    snapshot_failures_++;
    last_snapshot_error_ = saved.error();
    return;
  }
  snapshot_below_ = applied_below_;
  bytes_since_snapshot_ = 0;
  out.push_back({{self_, Actor::learner}, LocalDone{snapshot_below_}});
}

void Applier::execute(const KvOp& op, InstanceId instance) {
  Session& s = sessions_[op.client_id];
  if (s.has_reply && op.ack >= s.last_seq) drop_reply(s);
  if (op.seq <= s.last_seq) return;  // a duplicate: executed already
  if (s.has_reply) drop_reply(s);    // superseded: the client moved on
  s.last_instance = instance;
  std::string result;
  switch (op.op) {
    case OpKind::get:
      if (auto it = kv_.find(op.key); it != kv_.end()) result = it->second;
      break;
    case OpKind::put:
      kv_[op.key] = op.value;
      break;
    case OpKind::append:
      kv_[op.key] += op.value;
      break;
  }
  s.last_seq = op.seq;
  keep_reply(op.client_id, s, std::move(result));
  enforce_reply_budget();
}

void Applier::keep_reply(ClientId client, Session& s, std::string value) {
  s.has_reply = true;
  s.reply_value = std::move(value);
  retained_bytes_ += s.reply_value.size();
  replies_by_age_[s.last_instance] = client;
}

void Applier::drop_reply(Session& s) {
  if (!s.has_reply) return;
  retained_bytes_ -= s.reply_value.size();
  replies_by_age_.erase(s.last_instance);
  s.has_reply = false;
  std::string().swap(s.reply_value);
}

// Depends on the log alone, so every replica drops the same replies.
void Applier::enforce_reply_budget() {
  while (retained_bytes_ > options_.retained_reply_bytes && replies_by_age_.size() > 1) {
    const ClientId oldest = replies_by_age_.begin()->second;
    drop_reply(sessions_.at(oldest));
  }
}

void Applier::answer_waiter(ClientId client, Outbox& out) {
  auto w = waiters_.find(client);
  if (w == waiters_.end()) return;
  const Session& s = sessions_.at(client);
  if (w->second.seq > s.last_seq) return;
  if (w->second.seq == s.last_seq && s.has_reply) {
    reply(w->second.route, {client, w->second.seq, ReplyCode::ok, s.reply_value, {}}, out);
  } else {
    reply(w->second.route, {client, w->second.seq, ReplyCode::stale_request, {},
                            "request superseded by a newer one from the same client"}, out);
  }
  waiters_.erase(w);
}

void Applier::reply(const std::string& route, ClientReply r, Outbox& out) const {
  out.push_back({{self_, Actor::front_door}, ToClient{route, encode(r)}});
}

void Applier::tick(Time now, Outbox& out) {
  if (options_.save_snapshot && applied_below_ > snapshot_below_ &&
      now - last_progress_ >= options_.snapshot_idle &&
      now - last_snapshot_attempt_ >= options_.snapshot_idle) {
    last_snapshot_attempt_ = now;
    take_snapshot(out);
  }
  // A hole: later instances are decided but the next one to apply is not
  // known here. Proposing a no-op there learns the chosen value if there is
  // one, or fills the slot.
  if (applied_below_ >= decided_below_) return;
  if (now - last_progress_ < options_.hole_timeout) return;
  if (now - last_hole_proposal_ < options_.hole_timeout) return;
  last_hole_proposal_ = now;
  out.push_back({{self_, Actor::proposer}, Propose{applied_below_, encode_op(KvOp::no_op())}});
}

void Applier::evict_idle_sessions() {
  if (applied_below_ < options_.session_idle_instances) return;
  const InstanceId horizon = applied_below_ - options_.session_idle_instances;
  // Depends on the log alone, so every replica evicts the same sessions.
  for (auto it = sessions_.begin(); it != sessions_.end();) {
    if (it->second.last_instance < horizon) {
      drop_reply(it->second);
      it = sessions_.erase(it);
    } else {
      ++it;
    }
  }
}

std::size_t Applier::retained_replies() const {
  return static_cast<std::size_t>(std::count_if(
      sessions_.begin(), sessions_.end(), [](const auto& kv) { return kv.second.has_reply; }));
}

StatusReply Applier::status() const {
  return StatusReply{options_.name,   self_,           applied_below_,  forget_below_,
                     decided_below_,  kv_.size(),      sessions_.size(), options_.fault_injection};
}

}  // namespace kvpaxos
