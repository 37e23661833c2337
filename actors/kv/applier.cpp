#include "actors/kv/applier.hpp"

#include <algorithm>
#include <cassert>
#include <exception>
#include <string_view>
#include <unordered_set>

#include "actors/kv/front_door.hpp"
#include "actors/storage/segmented_log.hpp"
#include "messages/codec.hpp"
#include "messages/msgpack_scan.hpp"

namespace kvpaxos {

namespace {
// What another node's applier may send here. The rest comes from this node's
// learner, front door and snapshot writer: a peer's Apply or LearnerProgress
// would change the state outside the log, or open a gap for no-ops.
bool from_peers(const Body& body) {
  return std::holds_alternative<SnapshotRequest>(body) ||
         std::holds_alternative<SnapshotChunk>(body) || std::holds_alternative<ForwardOps>(body);
}
}  // namespace

Applier::Applier(NodeId self, ApplierOptions options)
    : self_(self), options_(std::move(options)), leader_(self) {}

void Applier::handle(const Address& from, Body body, Time now, Outbox& out) {
  if (from.node != self_ && !from_peers(body)) {
    ++refused_.local_only_from_peer;
    return;
  }
  if (auto* n = std::get_if<SnapshotNeeded>(&body)) {
    on_snapshot_needed(*n, now, out);
  } else if (auto* q = std::get_if<SnapshotRequest>(&body)) {
    on_snapshot_request(from.node, *q, now, out);
  } else if (auto* c = std::get_if<SnapshotChunk>(&body)) {
    on_snapshot_chunk(from.node, std::move(*c), now, out);
  } else if (auto* r = std::get_if<FromClient>(&body)) {
    on_request(std::move(*r), now, out);
  } else if (auto* f = std::get_if<ForwardOps>(&body)) {
    if (from.node != self_) on_forwarded(from.node, std::move(*f), out);
  } else if (auto* a = std::get_if<Apply>(&body)) {
    on_apply(std::move(*a), now, out);
  } else if (auto* p = std::get_if<LearnerProgress>(&body)) {
    if (p->decided_below > decided_below_ && applied_below_ >= decided_below_) {
      last_progress_ = now;  // a new gap opens now, not when we last applied
    }
    forget_below_ = std::max(forget_below_, p->forget_below);
    decided_below_ = std::max(decided_below_, p->decided_below);
  } else if (auto* saved = std::get_if<SnapshotSaved>(&body)) {
    if (from.node == self_) on_snapshot_saved(*saved, now, out);
  } else if (auto* s = std::get_if<StatusFromClient>(&body)) {
    out.push_back({{self_, Actor::front_door}, ToClient{s->route, encode(status())}});
  }
}

void Applier::on_request(FromClient m, Time now, Outbox& out) {
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
  Waiter& w = replace_waiter(client, req.seq, std::move(m.route), encode_op(KvOp::from(req)));
  if (another_leader_active(now)) {
    forward_waiter(w, now, out);
    return;
  }
  enqueue(client, w);
  propose_pending(out);
}

bool Applier::another_leader_active(Time now) const {
  return options_.forward_to_leader && leader_ != self_ && now - leader_seen_ < options_.leader_idle;
}

// The lead moved: ops forwarded to the old leader go to the new one now
// instead of waiting out forward_timeout there (it may be gone: this is how
// a failover ends for everybody as soon as one node has taken over).
void Applier::redirect_forwards(Time now, Outbox& out) {
  if (forward_to_ != leader_) {  // held for the old leader, not sent yet
    forward_ops_.clear();
    forward_bytes_ = 0;
  }
  for (auto& [client, w] : waiters_) {
    if (!w.forwarded || w.forwarded_to == leader_ || executed(client, w.seq)) continue;
    if (leader_ == self_) {
      w.forwarded = false;
      enqueue(client, w);
    } else {
      forward_waiter(w, now, out);
    }
  }
}

// Ops the leader already failed to apply in time (retried) stay here: sending
// them back would undo the forward_timeout fallback for as long as that
// leader keeps authoring other batches.
void Applier::forward_queue(Time now, Outbox& out) {
  std::deque<ClientId> kept;
  for (ClientId client : pending_) {
    auto w = waiters_.find(client);
    if (w == waiters_.end() || !w->second.queued) continue;
    if (w->second.retried) {
      kept.push_back(client);
    } else {
      forward_waiter(w->second, now, out);
    }
  }
  pending_ = std::move(kept);
}

void Applier::forward_waiter(Waiter& w, Time now, Outbox& out, std::optional<NodeId> relay) {
  w.queued = false;  // a stale queue entry is skipped
  w.forwarded = true;
  w.relayed = relay.has_value();
  w.forwarded_to = relay.value_or(leader_);
  w.forwarded_at = now;
  forward(w.forwarded_to, w.op, out);
}

// Ops another node's clients sent there: batch them as if our own clients
// had, but with nobody to answer here.
// Each op is checked as the front door checks a ClientRequest: the sender's
// front door did, but a bad op put in a batch here would make the whole log
// entry undecodable, taking every other client's op in it down too. A bad op
// is dropped (its client's node proposes it itself after forward_timeout,
// and that proposal decodes there or not at all); the rest are kept.
void Applier::on_forwarded(NodeId from, ForwardOps m, Outbox& out) {
  for (std::string& bytes : m.ops) {
    Result<KvOp> op = validate_forwarded_op(bytes);
    if (!op.ok()) {
      ++forwarded_ops_dropped_;
      last_forwarded_op_error_ = "from node " + std::to_string(from) + ": " + op.error();
      continue;
    }
    const ClientId client = op->client_id;
    if (executed(client, op->seq)) continue;
    auto existing = waiters_.find(client);
    if (existing != waiters_.end() && existing->second.seq >= op->seq) {
      // Already here (the client retried at this node too): make sure it is
      // on its way rather than waiting on a forward of our own.
      if (existing->second.seq == op->seq && existing->second.forwarded) {
        existing->second.forwarded = false;
        enqueue(client, existing->second);
      }
      continue;
    }
    enqueue(client, replace_waiter(client, op->seq, "", std::move(bytes)));
  }
  propose_pending(out);
}

void Applier::forward(NodeId leader, std::string op, Outbox& out) {
  if (!forward_ops_.empty() && forward_to_ != leader) flush(Time{}, out);
  forward_to_ = leader;
  forward_bytes_ += op.size();
  forward_ops_.push_back(std::move(op));
  if (forward_bytes_ >= options_.max_batch_bytes) flush(Time{}, out);
}

void Applier::flush(Time, Outbox& out) {
  if (forward_ops_.empty()) return;
  out.push_back({{forward_to_, Actor::applier}, ForwardOps{std::move(forward_ops_)}});
  forward_ops_.clear();
  forward_bytes_ = 0;
}

// Forwarded ops the leader did not get applied in time: propose them here.
// A leader that is applying batches gets longer (a queue of large values can
// keep an op waiting there for a second) than one that has gone silent.
void Applier::retry_forwarded(Time now, Outbox& out) {
  const bool leader_busy = now - leader_seen_ < options_.forward_timeout;
  const Duration timeout = leader_busy ? options_.forward_timeout_busy : options_.forward_timeout;
  bool any = false;
  for (auto& [client, w] : waiters_) {
    if (!w.forwarded || now - w.forwarded_at < timeout) continue;
    if (!w.relayed && leader_busy) {
      if (const std::optional<NodeId> relay = relay_for(w.forwarded_to)) {
        // The relay proposes it: if the leader is alive but out of our
        // reach, the lead moves to a node we reach. (A silent leader may be
        // dead: then this node proposes at once, which is quicker.)
        forward_waiter(w, now, out, relay);
        continue;
      }
    }
    w.forwarded = false;
    w.retried = true;
    enqueue(client, w);
    any = true;
  }
  if (any) propose_pending(out);
}

// The node after `leader` that is not this one, if there is a third node.
std::optional<NodeId> Applier::relay_for(NodeId leader) const {
  if (options_.nodes < 3) return std::nullopt;
  for (std::size_t k = 1; k < options_.nodes; ++k) {
    const auto peer = static_cast<NodeId>((leader + k) % options_.nodes);
    if (peer != self_ && peer != leader) return peer;
  }
  return std::nullopt;
}

InstanceId Applier::next_free_instance() const {
  return std::max({next_propose_, applied_below_, decided_below_});
}

bool Applier::executed(ClientId client, std::uint64_t seq) const {
  const auto s = sessions_.find(client);
  return s != sessions_.end() && s->second.last_seq >= seq;
}

Applier::Waiter& Applier::replace_waiter(ClientId client, std::uint64_t seq, std::string route,
                                         std::string op) {
  Waiter& w = waiters_[client];
  const bool queued = w.queued;  // a replaced waiter keeps its place in the queue
  w = Waiter{seq, std::move(route), std::move(op)};
  w.queued = queued;
  return w;
}

void Applier::enqueue(ClientId client, Waiter& w, bool first_in_line) {
  w.instance = kNotProposed;
  if (w.queued) return;
  w.queued = true;
  if (first_in_line) {
    pending_.push_front(client);
  } else {
    pending_.push_back(client);
  }
}

// True when the queued ops fill a whole batch (max_batch_ops or
// max_batch_bytes).
bool Applier::full_batch_waiting() const {
  std::size_t ops = 0;
  std::size_t bytes = 0;
  for (ClientId client : pending_) {
    const auto w = waiters_.find(client);
    if (w == waiters_.end() || !w->second.queued) continue;
    bytes += w->second.op.size();
    if (++ops >= options_.max_batch_ops || bytes >= options_.max_batch_bytes) return true;
  }
  return false;
}

// Fills free pipeline slots with batches of the queued ops. A second
// instance goes out only behind a full batch: every instance costs a round
// of messages and an fsync at each node, so while the batch is not full,
// waiting for the instance in flight and sending one bigger batch does the
// same work for less (on 2 cores, 64 clients: 12.5k against 11.5k puts/s,
// 256 clients: 19.4k against 14.5k).
void Applier::propose_pending(Outbox& out) {
  while (in_flight_.size() < options_.max_in_flight && !pending_.empty()) {
    if (!in_flight_.empty() && !full_batch_waiting()) return;
    std::vector<std::string> ops;
    std::vector<ClientId> clients;
    std::size_t bytes = 0;
    while (!pending_.empty() && ops.size() < options_.max_batch_ops &&
           bytes < options_.max_batch_bytes) {
      const ClientId client = pending_.front();
      pending_.pop_front();
      auto w = waiters_.find(client);
      if (w == waiters_.end() || !w->second.queued) continue;
      w->second.queued = false;
      bytes += w->second.op.size();
      ops.push_back(w->second.op);
      clients.push_back(client);
    }
    if (ops.empty()) return;
    const InstanceId instance = next_free_instance();
    next_propose_ = instance + 1;
    for (ClientId client : clients) waiters_.at(client).instance = instance;
    in_flight_[instance] = std::move(clients);
    out.push_back({{self_, Actor::proposer}, Propose{instance, encode_batch(self_, ops)}});
  }
}

void Applier::on_apply(Apply m, Time now, Outbox& out) {
  if (m.instance != applied_below_) return;  // the learner delivers in order
  Result<LogEntry> entry = decode_entry(m.value);
  std::vector<std::pair<ClientId, std::uint64_t>> expired;
  if (entry.ok()) {
    for (const KvOp& op : entry->ops) {
      if (!op.noop && !execute(op, m.instance)) expired.emplace_back(op.client_id, op.seq);
    }
    if (entry->author != kNoAuthor) {
      const NodeId before = leader_;
      leader_ = entry->author;
      leader_seen_ = now;
      if (leader_ != before) redirect_forwards(now, out);
    }
  } else {
    ++undecodable_entries_;  // every replica skips it alike
  }
  ++applied_below_;
  last_progress_ = now;

  // Our batch for this instance: ops that did not run here (another value
  // won the instance) go back to the queue, first in line.
  if (auto f = in_flight_.find(m.instance); f != in_flight_.end()) {
    for (auto c = f->second.rbegin(); c != f->second.rend(); ++c) {
      auto w = waiters_.find(*c);
      if (w == waiters_.end() || w->second.instance != m.instance) continue;
      if (!executed(*c, w->second.seq)) enqueue(*c, w->second, /*first_in_line=*/true);
    }
    in_flight_.erase(f);
  }
  // Another node's batch: it leads now, and the queue goes to it. Proposing
  // the queue here would pre-empt its range, and its next batch would
  // pre-empt ours: two nodes that both proposed after an idle spell would
  // hand the lead back and forth for as long as the load lasts.
  if (another_leader_active(now)) forward_queue(now, out);
  if (entry.ok()) {
    for (const KvOp& op : entry->ops) {
      if (!op.noop) answer_waiter(op.client_id, out);
    }
  }
  for (const auto& [client, seq] : expired) answer_expired(client, seq, out);
  propose_pending(out);
  // After the answers: a session this instance touched keeps its reply here.
  evict_excess_sessions(m.instance);
  if (applied_below_ % 1024 == 0) evict_idle_sessions();
  if (!options_.save_snapshot) {
    out.push_back({{self_, Actor::learner}, LocalDone{applied_below_}});
  } else {
    bytes_since_snapshot_ += m.value.size();
    // Writing the whole state costs its size: wait until the log since the
    // last snapshot is a fair fraction of it, so a large store is not
    // rewritten for every few ops (write amplification stays below ~5x).
    const bool by_count = applied_below_ - snapshot_below_ >= options_.snapshot_every &&
                          bytes_since_snapshot_ >= kv_bytes_ / 4;
    const bool by_bytes =
        bytes_since_snapshot_ >= std::max<std::uint64_t>(options_.snapshot_every_bytes, kv_bytes_);
    if (by_count || by_bytes) take_snapshot();
  }
}

namespace {

// A dedup session in the snapshot file.
struct SessionRecord {
  ClientId client = 0;
  std::uint64_t last_seq = 0;
  bool has_reply = false;
  std::string reply_value;
  InstanceId last_instance = 0;
  MSGPACK_DEFINE(client, last_seq, has_reply, reply_value, last_instance)
};
constexpr std::uint32_t kSnapshotFormat = 1;

}  // namespace

// The snapshot file's content. Field order is the format; bump kSnapshotFormat on change.
struct Applier::SnapshotRecord {
  std::uint32_t format = 0;
  InstanceId applied_below = 0;
  std::vector<std::pair<std::string, std::string>> kv;
  std::vector<SessionRecord> sessions;
  std::uint64_t undecodable_entries = 0;
  MSGPACK_DEFINE(format, applied_below, kv, sessions, undecodable_entries)
};

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

// A snapshot comes from this node's disk or from a peer (with a checksum, but
// any peer can compute one), so nothing in it is trusted: it must be one
// that snapshot() could have written, or the applier keeps its state.
Result<Applier::SnapshotRecord> Applier::parse_snapshot(std::string_view bytes) {
  // A snapshot may hold as many values as bytes; the scan checks that the
  // lengths it declares are really there before msgpack-c allocates for them.
  Result<MsgpackShape> shape = scan_msgpack(bytes, {.max_values = bytes.size(), .max_depth = 4});
  if (!shape.ok()) return Error{"snapshot does not decode: " + shape.error()};
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
  return no_duplicates(r);
}

// snapshot() writes each key and each client once. A client listed twice
// would leave a kept reply counted twice, and the reply budget would then
// loop forever over a reply already dropped (found by the snapshot fuzzer).
Result<Applier::SnapshotRecord> Applier::no_duplicates(SnapshotRecord& r) {
  std::unordered_set<std::string_view> keys;
  keys.reserve(r.kv.size());
  for (const auto& [k, v] : r.kv) {
    if (!keys.insert(k).second) return Error{"snapshot lists a key twice, which kvpaxosd never writes"};
  }
  std::unordered_set<ClientId> clients;
  clients.reserve(r.sessions.size());
  for (const SessionRecord& s : r.sessions) {
    if (!clients.insert(s.client).second) {
      return Error{"snapshot lists client " + std::to_string(s.client) +
                   " twice, which kvpaxosd never writes"};
    }
  }
  return std::move(r);
}

Result<bool> Applier::restore(std::string_view bytes) {
  Result<SnapshotRecord> r = parse_snapshot(bytes);
  if (!r.ok()) return Error{r.error()};
  load(std::move(r.value()), bytes.size());
  return true;
}

void Applier::load(SnapshotRecord r, std::size_t bytes) {
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
  applied_below_ = snapshot_below_ = next_propose_ = r.applied_below;
  last_snapshot_bytes_ = bytes;
  decided_below_ = std::max(decided_below_, applied_below_);
  undecodable_entries_ = r.undecodable_entries;
}

void Applier::on_snapshot_needed(const SnapshotNeeded& m, Time now, Outbox& out) {
  if (m.below <= applied_below_ || m.peer == self_) return;
  // A transfer that still receives chunks goes on. A stalled one resumes
  // where it stopped if the learner names the same peer, else starts over
  // with the peer it names now (the old one may be down).
  if (fetch_.active && now - fetch_.last_chunk < 3 * options_.snapshot_transfer_timeout) return;
  if (!fetch_.active || fetch_.peer != m.peer) {
    fetch_ = Fetch{.active = true, .peer = m.peer, .last_chunk = now};
  }
  request_chunk(now, out);
}

void Applier::request_chunk(Time now, Outbox& out) {
  fetch_.last_request = now;
  out.push_back({{fetch_.peer, Actor::applier},
                 SnapshotRequest{fetch_.instance, fetch_.bytes.size()}});
}

void Applier::on_snapshot_request(NodeId from, const SnapshotRequest& m, Time now, Outbox& out) {
  if (from == self_) return;
  const bool stale = served_.bytes.empty() || (m.instance == 0 && m.offset == 0 &&
                                               served_.instance < applied_below_);
  if (stale) {
    served_ = Served{applied_below_, snapshot(), 0, now};
    served_.crc = crc32c(served_.bytes);
  }
  served_.last_used = now;
  // Asked for a snapshot we no longer hold: the transfer starts over on ours.
  const std::uint64_t offset =
      m.instance == served_.instance ? std::min<std::uint64_t>(m.offset, served_.bytes.size()) : 0;
  out.push_back({{from, Actor::applier},
                 SnapshotChunk{served_.instance, served_.bytes.size(), offset, served_.crc,
                               served_.bytes.substr(offset, options_.snapshot_chunk_bytes)}});
}

// A chunk counts only from the peer asked, while a transfer runs, as the next
// byte of the snapshot being fetched; anything else is counted and changes
// nothing. The crc and the content are checked whole before the state is
// replaced.
void Applier::on_snapshot_chunk(NodeId from, SnapshotChunk m, Time now, Outbox& out) {
  if (!fetch_.active || from != fetch_.peer) {
    ++refused_.chunk_not_asked;
    return;
  }
  if (!chunk_in_bounds(m)) return;
  if (m.instance <= applied_below_) {
    ++refused_.chunk_not_newer;  // the peer is no further: the learner asks again
    fetch_ = Fetch{};
    return;
  }
  if (!chunk_continues_fetch(m)) return;
  fetch_.bytes += m.data;
  fetch_.last_chunk = now;
  if (fetch_.bytes.size() < fetch_.total_bytes) {
    request_chunk(now, out);
    return;
  }
  Fetch done = std::move(fetch_);
  fetch_ = Fetch{};
  if (crc32c(done.bytes) != done.crc) {
    ++snapshot_failures_;
    ++refused_.snapshot_rejected;
    last_snapshot_error_ = "snapshot from node " + std::to_string(from) + " failed its checksum";
    return;  // the learner asks again
  }
  install_snapshot(done.instance, std::move(done.bytes), out);
}

// A correct peer serves a snapshot of at least one byte (kMaxSnapshotBytes at
// most) in non-empty chunks of at most kMaxSnapshotChunkBytes that end inside it.
bool Applier::chunk_in_bounds(const SnapshotChunk& m) {
  const bool in_bounds = m.total_bytes > 0 && m.total_bytes <= kMaxSnapshotBytes &&
                         !m.data.empty() && m.data.size() <= kMaxSnapshotChunkBytes &&
                         m.offset < m.total_bytes && m.data.size() <= m.total_bytes - m.offset;
  if (!in_bounds) ++refused_.chunk_malformed;
  return in_bounds;
}

// The first chunk of a transfer names the snapshot (instance, size, crc). A
// peer asked for a snapshot it no longer holds starts over, at byte 0, on a
// newer one. Any other chunk must be the next byte of the snapshot named,
// with the same size and crc: the serving peer keeps it stable.
bool Applier::chunk_continues_fetch(const SnapshotChunk& m) {
  if (m.offset == 0 && (fetch_.instance == 0 || m.instance > fetch_.instance)) {
    fetch_.instance = m.instance;
    fetch_.total_bytes = m.total_bytes;
    fetch_.crc = m.crc;
    fetch_.bytes.clear();
    return true;
  }
  if (m.instance != fetch_.instance || m.offset != fetch_.bytes.size()) {
    ++refused_.chunk_stale;  // late, duplicated, or of an older snapshot
    return false;
  }
  if (m.total_bytes != fetch_.total_bytes || m.crc != fetch_.crc) {
    ++refused_.chunk_changed;
    return false;
  }
  return true;
}

// The snapshot must cover exactly [0, instance), past what is applied here:
// installing one at or below it would apply instances twice.
void Applier::install_snapshot(InstanceId instance, std::string bytes, Outbox& out) {
  Result<SnapshotRecord> parsed = parse_snapshot(bytes);
  if (!parsed.ok() || parsed->applied_below != instance || instance <= applied_below_) {
    ++snapshot_failures_;
    ++refused_.snapshot_rejected;
    last_snapshot_error_ = "a received snapshot does not load: " +
                           (parsed.ok() ? std::string("wrong instance") : parsed.error());
    return;
  }
  // Keep what load() does not carry.
  const InstanceId decided = decided_below_;
  const InstanceId forget = forget_below_;
  const InstanceId durable = snapshot_below_;
  load(std::move(parsed.value()), bytes.size());
  decided_below_ = std::max(decided, applied_below_);
  forget_below_ = forget;
  ++snapshots_installed_;
  in_flight_.clear();
  pending_.clear();
  out.push_back({{self_, Actor::learner}, SnapshotInstalled{applied_below_}});
  if (options_.save_snapshot) {
    // Not durable until its SnapshotSaved: our Done point stays where it was.
    snapshot_below_ = durable;
    save(std::move(bytes));
  } else {
    out.push_back({{self_, Actor::learner}, LocalDone{applied_below_}});
  }
  // Requests waiting here either ran before the snapshot or must be proposed again.
  std::vector<ClientId> waiting;
  for (const auto& [client, w] : waiters_) waiting.push_back(client);
  for (ClientId client : waiting) {
    Waiter& w = waiters_.at(client);
    if (!sessions_.contains(client)) {
      // Its op may have run inside the snapshot, in a session evicted since:
      // no answer here, so the client retries and hears session_expired on
      // a second copy, which it reports as an unknown outcome. Answering
      // session_expired to this only copy would let it start a new session
      // and run the op again.
      waiters_.erase(client);
    } else if (executed(client, w.seq)) {
      answer_waiter(client, out);
    } else {
      w.queued = false;
      w.forwarded = false;
      enqueue(client, w);
    }
  }
  propose_pending(out);
}

void Applier::take_snapshot() {
  if (saves_in_flight_ > 0) return;  // the next one is due once this one is on disk
  bytes_since_snapshot_ = 0;
  save(snapshot());
}

void Applier::save(std::string bytes) {
  ++saves_in_flight_;
  saving_instance_ = applied_below_;
  saving_bytes_ = bytes.size();
  options_.save_snapshot(applied_below_, std::move(bytes));
}

// Saves finish in the order they were handed over, so the newest durable
// snapshot is the highest instance reported.
void Applier::on_snapshot_saved(const SnapshotSaved& m, Time now, Outbox& out) {
  if (saves_in_flight_ > 0) --saves_in_flight_;
  if (!m.error.empty()) {
    // Not durable: keep the log (the Done point stays) and try again after
    // snapshot_idle, under load too, where the byte rules would wait for
    // another quarter of the state while Done stays frozen.
    snapshot_failures_++;
    last_snapshot_error_ = m.error;
    snapshot_retry_at_ = now + options_.snapshot_idle;
    return;
  }
  snapshot_retry_at_.reset();
  if (m.instance <= snapshot_below_) return;
  snapshot_below_ = m.instance;
  if (m.instance == saving_instance_) last_snapshot_bytes_ = saving_bytes_;
  out.push_back({{self_, Actor::learner}, LocalDone{snapshot_below_}});
}

bool Applier::execute(const KvOp& op, InstanceId instance) {
  auto found = sessions_.find(op.client_id);
  if (found == sessions_.end()) {
    // Only seq 1 starts a session. A later seq with none: the session was
    // evicted, and this op may have run before; running it now could run it
    // twice, so it does not run (the client is told session_expired).
    if (op.seq > 1 && !options_.bug_execute_expired) return false;
    found = sessions_.emplace(op.client_id, Session{}).first;
    found->second.last_instance = instance;
    sessions_by_age_.insert({instance, op.client_id});
  }
  Session& s = found->second;
  // The client acknowledges a reply this session never produced: the
  // session it talked to was evicted and this one was started again by a
  // late copy of its seq 1. Its op may have run in the old one.
  if (op.seq > s.last_seq && op.ack > s.last_seq && !options_.bug_execute_expired) return false;
  if (s.has_reply && op.ack >= s.last_seq) drop_reply(op.client_id, s);
  if (op.seq <= s.last_seq) return true;  // a duplicate: executed already
  if (s.has_reply) drop_reply(op.client_id, s);  // superseded: the client moved on
  sessions_by_age_.erase({s.last_instance, op.client_id});
  sessions_by_age_.insert({instance, op.client_id});
  s.last_instance = instance;
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
  return true;
}

void Applier::keep_reply(ClientId client, Session& s, std::string value) {
  s.has_reply = true;
  s.reply_value = std::move(value);
  retained_bytes_ += s.reply_value.size();
  replies_by_age_.insert({s.last_instance, client});
}

void Applier::drop_reply(ClientId client, Session& s) {
  if (!s.has_reply) return;
  retained_bytes_ -= s.reply_value.size();
  replies_by_age_.erase({s.last_instance, client});
  s.has_reply = false;
  std::string().swap(s.reply_value);
}

// Depends on the log alone, so every replica drops the same replies.
void Applier::enforce_reply_budget() {
  while (retained_bytes_ > options_.retained_reply_bytes && replies_by_age_.size() > 1) {
    const ClientId oldest = replies_by_age_.begin()->second;
    drop_reply(oldest, sessions_.at(oldest));
  }
}

void Applier::answer_waiter(ClientId client, Outbox& out) {
  auto w = waiters_.find(client);
  if (w == waiters_.end()) return;
  const auto session = sessions_.find(client);
  if (session == sessions_.end()) return;  // its op did not run: answer_expired
  const Session& s = session->second;
  if (w->second.seq > s.last_seq) return;
  if (w->second.route.empty()) {
    // forwarded here by a peer, which answers its client
  } else if (w->second.seq == s.last_seq && s.has_reply) {
    reply(w->second.route, {client, w->second.seq, ReplyCode::ok, s.reply_value, {}}, out);
  } else {
    reply(w->second.route, {client, w->second.seq, ReplyCode::stale_request, {},
                            "request superseded by a newer one from the same client"}, out);
  }
  waiters_.erase(w);
}

void Applier::answer_expired(ClientId client, std::uint64_t seq, Outbox& out) {
  auto w = waiters_.find(client);
  if (w == waiters_.end() || w->second.seq != seq) return;
  if (!w->second.route.empty()) {
    reply(w->second.route,
          {client, seq, ReplyCode::session_expired, {},
           "this client's session was evicted (at most " + std::to_string(options_.max_sessions) +
               " sessions are kept, the least recently used go first); request " +
               std::to_string(seq) +
               " did not run now but may have run already; start a new session (new client id, "
               "seq 1)"},
          out);
  }
  waiters_.erase(w);
}

void Applier::reply(const std::string& route, ClientReply r, Outbox& out) const {
  const ClientId client = r.client_id;
  const std::uint64_t seq = r.seq;
  out.push_back({{self_, Actor::front_door}, ToClient{route, encode(r), client, seq}});
}

void Applier::tick(Time now, Outbox& out) {
  retry_forwarded(now, out);
  if (fetch_.active && now - fetch_.last_request >= options_.snapshot_transfer_timeout) {
    request_chunk(now, out);  // resume where the transfer stalled
  }
  if (!served_.bytes.empty() && now - served_.last_used >= std::chrono::seconds(30)) {
    served_ = Served{};  // nobody is fetching it any more
  }
  if (options_.save_snapshot && applied_below_ > snapshot_below_ &&
      now - last_progress_ >= options_.snapshot_idle &&
      now - last_snapshot_attempt_ >= options_.snapshot_idle) {
    last_snapshot_attempt_ = now;
    take_snapshot();
  }
  if (snapshot_retry_at_ && now >= *snapshot_retry_at_ && saves_in_flight_ == 0) {
    snapshot_retry_at_.reset();
    take_snapshot();
  }
  fill_holes(now, out);
}

// A hole: later instances are decided but the next one to apply is not known
// here. Proposing a no-op there learns the chosen value if there is one, or
// fills the slot. A proposer that died leaves a few holes (its pipeline); a
// Decided far ahead (a faulty peer's, within the learner's
// max_decided_ahead) leaves thousands, and one no-op per hole_timeout would
// take a quarter of an hour to cross 4096. So when the instance right after
// the last no-op batch is a hole again, the next batch is twice as large (up
// to kHoleFillBatch): a single hole still costs one no-op, 4096 about twenty
// rounds.
void Applier::fill_holes(Time now, Outbox& out) {
  if (applied_below_ >= decided_below_) return;
  if (now - last_progress_ < options_.hole_timeout) return;
  if (now - last_hole_proposal_ < options_.hole_timeout) return;
  last_hole_proposal_ = now;
  if (hole_fill_end_ && applied_below_ < *hole_fill_end_) {
    // The last batch is not all applied yet: its head again, as before.
    out.push_back({{self_, Actor::proposer}, Propose{applied_below_, encode_op(KvOp::no_op())}});
    return;
  }
  hole_fill_batch_ =
      applied_below_ == hole_fill_end_ ? std::min(2 * hole_fill_batch_, kHoleFillBatch) : 1;
  hole_fill_end_ = applied_below_ + std::min(hole_fill_batch_, decided_below_ - applied_below_);
  for (InstanceId i = applied_below_; i < *hole_fill_end_; ++i) {
    out.push_back({{self_, Actor::proposer}, Propose{i, encode_op(KvOp::no_op())}});
  }
}

void Applier::evict_session(std::unordered_map<ClientId, Session>::iterator it) {
  drop_reply(it->first, it->second);
  sessions_by_age_.erase({it->second.last_instance, it->first});
  sessions_.erase(it);
  ++sessions_evicted_;
}

// Both evictions depend on the log alone (instances and client ids), so
// every replica evicts the same sessions at the same instance.
void Applier::evict_idle_sessions() {
  if (applied_below_ < options_.session_idle_instances) return;
  const InstanceId horizon = applied_below_ - options_.session_idle_instances;
  while (!sessions_by_age_.empty() && sessions_by_age_.begin()->first < horizon) {
    evict_session(sessions_.find(sessions_by_age_.begin()->second));
  }
  assert(check_invariants().empty());
}

void Applier::evict_excess_sessions(InstanceId instance) {
  while (sessions_.size() > options_.max_sessions && !sessions_by_age_.empty() &&
         sessions_by_age_.begin()->first < instance) {
    evict_session(sessions_.find(sessions_by_age_.begin()->second));
  }
  assert(check_invariants().empty());
}

std::string Applier::check_invariants() const {
  if (sessions_by_age_.size() != sessions_.size()) {
    return "applier: " + std::to_string(sessions_.size()) + " sessions but " +
           std::to_string(sessions_by_age_.size()) + " in the age index";
  }
  if (replies_by_age_.size() > sessions_.size()) {
    return "applier: more kept replies (" + std::to_string(replies_by_age_.size()) +
           ") than sessions (" + std::to_string(sessions_.size()) + ")";
  }
  return {};
}

std::size_t Applier::retained_replies() const {
  return static_cast<std::size_t>(std::count_if(
      sessions_.begin(), sessions_.end(), [](const auto& kv) { return kv.second.has_reply; }));
}

StatusReply Applier::status() const {
  StatusReply r{options_.name,   self_,       applied_below_,   forget_below_,
                decided_below_, kv_.size(),  sessions_.size(), options_.fault_injection};
  r.snapshot_below = options_.save_snapshot ? snapshot_below_ : 0;
  r.snapshot_bytes = last_snapshot_bytes_;
  if (options_.data_dir_bytes) r.data_dir_bytes = options_.data_dir_bytes();
  return r;
}

}  // namespace kvpaxos
