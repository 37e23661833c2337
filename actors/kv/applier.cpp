#include "actors/kv/applier.hpp"

#include <algorithm>
#include <map>
#include <set>
#include <string_view>

#include "actors/kv/front_door.hpp"
#include "actors/kv/snapshot_record.hpp"
#include "messages/codec.hpp"

namespace kvpaxos {

namespace {
// What another node's applier may send here. The rest comes from this node's
// learner, front door and snapshot writer: a peer's Apply or LearnerProgress
// would change the state outside the log, or open a gap for no-ops.
// The answer of a stopping node (StepDown) to a request it will not run.
ClientReply stopping_reply(ClientId client, std::uint64_t seq) {
  return ClientReply::refused(client, seq, ReplyCode::shutting_down,
                              "this node is stopping; send the same request to another node "
                              "(it runs once)");
}

bool from_peers(const Body& body) {
  return std::holds_alternative<SnapshotRequest>(body) ||
         std::holds_alternative<SnapshotChunk>(body) || std::holds_alternative<ForwardOps>(body) ||
         std::holds_alternative<StepDown>(body);
}
}  // namespace

Applier::Applier(NodeId self, ApplierOptions options)
    : self_(self),
      options_(std::move(options)),
      state_(KvLimits{.max_sessions = options_.max_sessions,
                      .session_idle_instances = options_.session_idle_instances,
                      .retained_reply_bytes = options_.retained_reply_bytes,
                      .bug_execute_expired = options_.bug_execute_expired,
                      .bug_delete_keeps_revision = options_.bug_delete_keeps_revision},
             options_.config),
      pipeline_(self, {.max_in_flight = options_.max_in_flight,
                       .max_batch_ops = options_.max_batch_ops,
                       .max_batch_bytes = options_.max_batch_bytes}),
      forwards_(options_.max_batch_bytes),
      leader_(self),
      schedule_({.every = options_.snapshot_every,
                 .every_bytes = options_.snapshot_every_bytes,
                 .idle = options_.snapshot_idle}),
      transfer_(self, options_.snapshot_chunk_bytes, options_.snapshot_transfer_timeout),
      export_(options_.name, options_.cluster_id, options_.snapshot_chunk_bytes),
      watches_(self, options_.watch) {
  state_.config().set_bug_no_window(options_.bug_no_window);
  state_.config().set_bug_reused_id(options_.bug_reused_id);
  joining_ = options_.joining;
  config_announced_ = joining_;  // a joining member announces the snapshot's
}

void Applier::handle(const Address& from, Body body, Time now, Outbox& out) {
  if (!config_announced_) announce_config(out);
  if (from.node != self_ && !from_peers(body)) {
    ++refused_.local_only_from_peer;
    return;
  }
  if (auto* n = std::get_if<SnapshotNeeded>(&body)) {
    transfer_.on_needed(*n, applied_below_, now, out);
  } else if (auto* q = std::get_if<SnapshotRequest>(&body)) {
    transfer_.on_request(from.node, *q, applied_below_, [this] { return snapshot(); }, now, out);
  } else if (auto* c = std::get_if<SnapshotChunk>(&body)) {
    on_snapshot_chunk(from.node, std::move(*c), now, out);
  } else if (auto* r = std::get_if<FromClient>(&body)) {
    on_request(std::move(*r), now, out);
  } else if (auto* w = std::get_if<WatchFromClient>(&body)) {
    watches_.on_request(w->route, w->request, state_.revision(), now, out);
  } else if (auto* f = std::get_if<ForwardOps>(&body)) {
    if (from.node != self_ && !stepping_down_) on_forwarded(from.node, std::move(*f), out);
  } else if (auto* d = std::get_if<StepDown>(&body)) {
    if (from.node == self_) {
      step_down(out);
    } else {
      on_step_down(from.node, *d, now, out);
    }
  } else if (auto* a = std::get_if<Apply>(&body)) {
    on_apply(std::move(*a), now, out);
  } else if (auto* p = std::get_if<LearnerProgress>(&body)) {
    if (p->decided_below > decided_below_ && applied_below_ >= decided_below_) {
      last_progress_ = now;  // a new gap opens now, not when we last applied
    }
    forget_below_ = std::max(forget_below_, p->forget_below);
    decided_below_ = std::max(decided_below_, p->decided_below);
  } else if (auto* ab = std::get_if<AcceptedBound>(&body)) {
    on_accepted_bound(*ab);
  } else if (auto* saved = std::get_if<SnapshotSaved>(&body)) {
    if (from.node == self_) on_snapshot_saved(*saved, now, out);
  } else if (auto* s = std::get_if<StatusFromClient>(&body)) {
    out.push_back({{self_, Actor::front_door}, ToClient{s->route, encode(status())}});
  } else if (auto* b = std::get_if<SnapshotSaveFromClient>(&body)) {
    on_snapshot_save(*b, now, out);
  }
}

// A backup's snapshot is the state as it is between two applied instances.
// A joining member has no state yet: it must not hand out its empty one.
void Applier::on_snapshot_save(const SnapshotSaveFromClient& m, Time now, Outbox& out) {
  SnapshotSaveReply r;
  if (joining_) {
    r = SnapshotSaveReply{.code = ReplyCode::bad_request,
                          .error = options_.name + " is still catching up from a snapshot and has "
                                   "no state to save; save from another member",
                          .name = options_.name};
  } else {
    r = export_.on_request(
        m.request,
        [this] {
          return SnapshotExport::Made{.applied_below = applied_below_,
                                      .revision = state_.revision(),
                                      .keys = state_.data().size(),
                                      .bytes = snapshot()};
        },
        now);
  }
  out.push_back({{self_, Actor::front_door}, ToClient{m.route, encode(r)}});
}

void Applier::on_request(FromClient m, Time now, Outbox& out) {
  const ClientRequest& req = m.request;
  const ClientId client = req.client_id;
  if (state_.executed(client, req.seq)) {
    if (const OpResult* kept = state_.kept_reply(client, req.seq)) {
      reply(m.route, ClientReply::ok(client, req.seq, *kept), out);
    } else {
      reply(m.route,
            ClientReply::refused(client, req.seq, ReplyCode::stale_request,
                                 "request " + std::to_string(req.seq) +
                                     " was already executed and its reply acknowledged or "
                                     "released; the client must use a new sequence number"),
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
      reply(m.route,
            ClientReply::refused(client, req.seq, ReplyCode::stale_request,
                                 "a newer request from this client is in progress"),
            out);
      return;
    }
  }
  if (stepping_down_) {
    reply(m.route, stopping_reply(client, req.seq), out);
    return;
  }
  const KvOp op = KvOp::from(req);
  Waiter& w = replace_waiter(client, req.seq, std::move(m.route), encode_op(op), wire_values(op));
  if (another_leader_active(now)) {
    forward_waiter(w, now, out);
    return;
  }
  requeue(client, w);
  propose_pending(out);
}

bool Applier::another_leader_active(Time now) const {
  if (!options_.forward_to_leader || lead() == self_) return false;
  return lead_vacant() || now - leader_seen_ < options_.leader_idle;
}

bool Applier::serving(NodeId member) const {
  return member == self_ ? !stepping_down_ : !stepped_down_.contains(member);
}

bool Applier::lead_vacant() const {
  return !state_.config().at(applied_below_).is_voter(leader_) || !serving(leader_);
}

NodeId Applier::lead() const {
  if (!lead_vacant()) return leader_;
  const std::vector<NodeId> voters = state_.config().at(applied_below_).voters();
  for (NodeId v : voters) {
    if (serving(v)) return v;
  }
  return voters.front();  // a configuration has a voter
}

void Applier::step_down(Outbox& out) {
  if (stepping_down_) return;
  stepping_down_ = true;
  // Nothing is proposed at or above the window's end: not by the pipeline,
  // and no hole-filling no-ops from now on either.
  const InstanceId below = window_end();
  std::set<NodeId> told;
  for (const ConfigAt& e : config_history().entries) {
    for (const MemberEntry& m : e.config.members) {
      if (m.id != self_ && told.insert(m.id).second) {
        out.push_back({{m.id, Actor::applier}, StepDown{below}});
      }
    }
  }
  // Every waiter not in an instance of ours: its client retries at another
  // node at once (a forwarded one may still run there: the retry is the
  // same request, executed once). Peers' ops held here: their nodes send
  // them to the new lead when our StepDown reaches them.
  for (auto w = waiters_.begin(); w != waiters_.end();) {
    if (w->second.place == Place::proposed) {
      ++w;
      continue;
    }
    if (!w->second.route.empty()) reply(w->second.route, stopping_reply(w->first, w->second.seq), out);
    w = waiters_.erase(w);
  }
  forwards_.drop_unless_for(kNoNode);
}

void Applier::on_step_down(NodeId from, const StepDown& m, Time now, Outbox& out) {
  const NodeId lead_before = lead();
  stepped_down_[from] = m.below;
  if (lead() == lead_before) return;
  redirect_forwards(now, out);
  propose_pending(out);
}

std::size_t Applier::proposed_waiting() const {
  return static_cast<std::size_t>(std::count_if(waiters_.begin(), waiters_.end(), [](const auto& w) {
    return w.second.place == Place::proposed;
  }));
}

void Applier::announce_config(Outbox& out) {
  config_announced_ = true;
  const ConfigHistory history = config_history();
  const std::uint64_t alpha = state_.config().alpha();
  proposer_known_below_ = history.known_below;
  proposer_history_mark_ = state_.config().history_mark(applied_below_);
  for (Actor a : {Actor::proposer, Actor::learner, Actor::acceptor, Actor::peer_link}) {
    out.push_back({{self_, a}, ConfigUpdate{history, alpha}});
  }
}

void Applier::tell_proposer_window(Outbox& out, std::size_t mark) {
  if (joining_ || out.size() == mark || proposer_known_below_ == window_end()) return;
  proposer_known_below_ = window_end();
  const std::pair<std::uint64_t, InstanceId> mark_now = state_.config().history_mark(applied_below_);
  if (mark_now == proposer_history_mark_) {
    // The same configurations: the Proposes carry the window's new end.
    for (std::size_t i = mark; i < out.size(); ++i) {
      if (auto* p = std::get_if<Propose>(&out[i].body)) p->known_below = proposer_known_below_;
    }
    return;
  }
  proposer_history_mark_ = mark_now;
  const Outbound update{{self_, Actor::proposer},
                        ConfigUpdate{config_history(),
                                     state_.config().alpha()}};
  out.insert(out.begin() + static_cast<std::ptrdiff_t>(mark), update);
}

void Applier::finish_old_config(Outbox& out) {
  if (stepping_down_) return;  // the next leader's batches end the old configuration
  const InstanceId effective_from = state_.config().pending_from(applied_below_);
  if (effective_from == 0) return;  // in force already (or the windowless bug)
  const std::size_t mark = out.size();
  pipeline_.propose_no_ops(std::max(applied_below_, decided_below_), effective_from, out);
  tell_proposer_window(out, mark);
}

// The lead moved: ops forwarded to the old leader go to the new one now
// instead of waiting out forward_timeout there (it may be gone: this is how
// a failover ends for everybody as soon as one node has taken over).
void Applier::redirect_forwards(Time now, Outbox& out) {
  const NodeId leader = lead();
  forwards_.drop_unless_for(leader);  // held for the old leader, not sent yet
  for (auto& [client, w] : waiters_) {
    if (!w.away() || w.forwarded_to == leader || state_.executed(client, w.seq)) continue;
    if (leader == self_) {
      requeue(client, w);
    } else {
      forward_waiter(w, now, out);
    }
  }
}

// Ops the leader already failed to apply in time (retried) stay here: sending
// them back would undo the forward_timeout fallback for as long as that
// leader keeps authoring other batches.
void Applier::forward_queue(Time now, Outbox& out) {
  for (ClientId client : pipeline_.take_queue()) {
    auto w = waiters_.find(client);
    if (w == waiters_.end() || w->second.place != Place::queued) continue;
    if (w->second.keep_here) {
      pipeline_.push(client, Line::back);
    } else {
      forward_waiter(w->second, now, out);
    }
  }
}

void Applier::forward_waiter(Waiter& w, Time now, Outbox& out, std::optional<NodeId> relay) {
  w.place = relay ? Place::relayed : Place::forwarded;  // its queue entry, if any, is skipped
  w.forwarded_to = relay.value_or(lead());
  w.forwarded_at = now;
  forwards_.add(w.forwarded_to, w.op, out);
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
    if (state_.executed(client, op->seq)) continue;
    auto existing = waiters_.find(client);
    if (existing != waiters_.end() && existing->second.seq >= op->seq) {
      // Already here (the client retried at this node too): make sure it is
      // on its way rather than waiting on a forward of our own.
      if (existing->second.seq == op->seq && existing->second.away()) {
        requeue(client, existing->second);
      }
      continue;
    }
    requeue(client, replace_waiter(client, op->seq, "", std::move(bytes), wire_values(*op)));
  }
  propose_pending(out);
}

void Applier::flush(Time, Outbox& out) { forwards_.flush(out); }

// Forwarded ops the leader did not get applied in time: propose them here.
// A leader that is applying batches gets longer (a queue of large values can
// keep an op waiting there for a second) than one that has gone silent.
void Applier::retry_forwarded(Time now, Outbox& out) {
  const bool leader_busy = now - leader_seen_ < options_.forward_timeout;
  const Duration timeout = leader_busy ? options_.forward_timeout_busy : options_.forward_timeout;
  bool any = false;
  for (auto& [client, w] : waiters_) {
    if (!w.away() || now - w.forwarded_at < timeout) continue;
    if (w.place != Place::relayed && leader_busy) {
      if (const std::optional<NodeId> relay = relay_for(w.forwarded_to)) {
        // The relay proposes it: if the leader is alive but out of our
        // reach, the lead moves to a node we reach. (A silent leader may be
        // dead: then this node proposes at once, which is quicker.)
        forward_waiter(w, now, out, relay);
        continue;
      }
    }
    w.keep_here = true;
    requeue(client, w);
    any = true;
  }
  if (any) propose_pending(out);
}

// The voter after `leader` in id order (wrapping) that is neither this node
// nor the leader, if there is one.
std::optional<NodeId> Applier::relay_for(NodeId leader) const {
  const std::vector<NodeId> voters = state_.config().at(applied_below_).voters();
  const auto after = std::upper_bound(voters.begin(), voters.end(), leader);
  for (std::size_t k = 0; k < voters.size(); ++k) {
    const std::size_t at = static_cast<std::size_t>(after - voters.begin()) + k;
    const NodeId peer = voters[at % voters.size()];
    if (peer != self_ && peer != leader) return peer;
  }
  return std::nullopt;
}

Waiter& Applier::replace_waiter(ClientId client, std::uint64_t seq, std::string route,
                                std::string op, std::size_t values) {
  Waiter& w = waiters_[client];
  const bool in_line = w.place == Place::queued;  // a replaced waiter keeps its place in the queue
  w = Waiter{seq, std::move(route), std::move(op), values};
  if (in_line) w.place = Place::queued;
  return w;
}

void Applier::requeue(ClientId client, Waiter& w, Line line) {
  const bool in_line = w.place == Place::queued;
  w.place = Place::queued;
  if (!in_line) pipeline_.push(client, line);
}

void Applier::propose_pending(Outbox& out) {
  if (stepping_down_) return;
  const std::size_t mark = out.size();
  pipeline_.propose(waiters_, std::max(applied_below_, decided_below_), window_end(), out);
  tell_proposer_window(out, mark);
}

void Applier::on_apply(Apply m, Time now, Outbox& out) {
  if (m.instance != applied_below_) return;  // the learner delivers in order
  Result<LogEntry> entry = decode_entry(m.value);
  std::vector<std::pair<ClientId, std::uint64_t>> expired;
  const NodeId lead_before = lead();
  const std::uint64_t epoch_before = state_.config().epoch();
  const InstanceId pending_before = state_.config().pending_from(applied_below_);
  if (entry.ok()) {
    state_.set_event_sink(&events_);
    for (const KvOp& op : entry->ops) {
      if (!op.noop && state_.execute(op, m.instance) == OpOutcome::session_expired) {
        expired.emplace_back(op.client_id, op.seq);
      }
    }
    state_.set_event_sink(nullptr);
    watches_.on_events(events_, state_.revision(), now, out);
    if (entry->author != kNoAuthor) {
      leader_ = entry->author;
      leader_seen_ = now;
      // A batch it proposed after its StepDown: it restarted, it may lead.
      auto gone = stepped_down_.find(entry->author);
      if (gone != stepped_down_.end() && m.instance >= gone->second) stepped_down_.erase(gone);
    }
  } else {
    ++undecodable_entries_;  // every replica skips it alike
  }
  ++applied_below_;
  last_progress_ = now;
  // A new author, or a change in force from here on that took the lead's vote.
  if (lead() != lead_before) redirect_forwards(now, out);
  if (state_.config().epoch() != epoch_before) {
    announce_config(out);
    if (entry.ok() && entry->author == self_) finish_old_config(out);
  } else if (pending_before != 0 && applied_below_ >= pending_before) {
    // The change governs every instance from here on: the old configuration
    // leaves the history, and with it a removed member (its frames are
    // dropped, its Paxos requests unanswered from now on here).
    announce_config(out);
  }

  // Our batch for this instance: ops that did not run here (another value
  // won the instance) go back to the queue, first in line.
  {
    const std::vector<ClientId> batch = pipeline_.take_batch(m.instance);
    for (auto c = batch.rbegin(); c != batch.rend(); ++c) {
      auto w = waiters_.find(*c);
      if (w == waiters_.end() || w->second.place != Place::proposed ||
          w->second.instance != m.instance) {
        continue;
      }
      if (!state_.executed(*c, w->second.seq)) requeue(*c, w->second, Line::front);
    }
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
  state_.end_instance(m.instance);
  if (!options_.save_snapshot) {
    out.push_back({{self_, Actor::learner}, LocalDone{applied_below_}});
  } else if (schedule_.due_after_apply(applied_below_, m.value.size(), state_.data_bytes())) {
    take_snapshot();
  }
}

std::string Applier::snapshot() const {
  SnapshotRecord r{kSnapshotFormat, applied_below_, {}, {}, undecodable_entries_};
  state_.write_to(r);
  return encode_snapshot(r);
}

Result<bool> Applier::restore(std::string_view bytes) {
  Result<SnapshotRecord> r = parse_snapshot(bytes);
  if (!r.ok()) return Error{r.error()};
  load(std::move(r.value()));
  schedule_.restored(applied_below_, bytes.size());
  return true;
}

void Applier::load(SnapshotRecord r) {
  state_.load(r);
  watches_.reset(state_.revision());
  applied_below_ = r.applied_below;
  pipeline_.restart_at(applied_below_);
  decided_below_ = std::max(decided_below_, applied_below_);
  undecodable_entries_ = r.undecodable_entries;
}

void Applier::on_snapshot_chunk(NodeId from, SnapshotChunk m, Time now, Outbox& out) {
  std::optional<SnapshotTransfer::Received> done =
      transfer_.on_chunk(from, std::move(m), applied_below_, now, out, refused_);
  if (!done) return;
  if (!done->error.empty()) {
    ++snapshot_failures_;
    last_snapshot_error_ = std::move(done->error);
    return;  // the learner asks again
  }
  install_snapshot(done->instance, std::move(done->bytes), out);
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
  load(std::move(parsed.value()));
  joining_ = false;
  announce_config(out);
  // Written, it is not durable until its SnapshotSaved: the Done point stays.
  schedule_.installed(applied_below_, bytes.size(), /*written=*/bool(options_.save_snapshot));
  decided_below_ = std::max(decided, applied_below_);
  forget_below_ = forget;
  ++snapshots_installed_;
  pipeline_.clear();
  for (auto& [client, w] : waiters_) w.place = Place::placing;  // no queue, no instance now
  out.push_back({{self_, Actor::learner}, SnapshotInstalled{applied_below_}});
  if (options_.save_snapshot) {
    save(std::move(bytes));
  } else {
    out.push_back({{self_, Actor::learner}, LocalDone{applied_below_}});
  }
  // Requests waiting here either ran before the snapshot or must be proposed again.
  std::vector<ClientId> waiting;
  for (const auto& [client, w] : waiters_) waiting.push_back(client);
  for (ClientId client : waiting) {
    Waiter& w = waiters_.at(client);
    if (!state_.has_session(client)) {
      // Its op may have run inside the snapshot, in a session evicted since:
      // no answer here, so the client retries and hears session_expired on
      // a second copy, which it reports as an unknown outcome. Answering
      // session_expired to this only copy would let it start a new session
      // and run the op again.
      waiters_.erase(client);
    } else if (state_.executed(client, w.seq)) {
      answer_waiter(client, out);
    } else {
      requeue(client, w);
    }
  }
  propose_pending(out);
}

void Applier::take_snapshot() {
  if (schedule_.start()) save(snapshot());
}

void Applier::save(std::string bytes) {
  schedule_.handed_over(applied_below_, bytes.size());
  options_.save_snapshot(applied_below_, std::move(bytes));
}

// Not durable after an error: the log stays (so does the Done point) and
// the schedule tries again after snapshot_idle.
void Applier::on_snapshot_saved(const SnapshotSaved& m, Time now, Outbox& out) {
  if (!m.error.empty()) {
    snapshot_failures_++;
    last_snapshot_error_ = m.error;
  }
  if (const std::optional<InstanceId> durable = schedule_.on_saved(m, now)) {
    out.push_back({{self_, Actor::learner}, LocalDone{*durable}});
  }
}

void Applier::answer_waiter(ClientId client, Outbox& out) {
  auto w = waiters_.find(client);
  if (w == waiters_.end()) return;
  // Not run: still on its way, or (no session) answered by answer_expired.
  if (!state_.executed(client, w->second.seq)) return;
  if (w->second.route.empty()) {
    // forwarded here by a peer, which answers its client
  } else if (const OpResult* kept = state_.kept_reply(client, w->second.seq)) {
    reply(w->second.route, ClientReply::ok(client, w->second.seq, *kept), out);
  } else {
    reply(w->second.route,
          ClientReply::refused(client, w->second.seq, ReplyCode::stale_request,
                               "request superseded by a newer one from the same client"),
          out);
  }
  waiters_.erase(w);
}

void Applier::answer_expired(ClientId client, std::uint64_t seq, Outbox& out) {
  auto w = waiters_.find(client);
  if (w == waiters_.end() || w->second.seq != seq) return;
  if (!w->second.route.empty()) {
    reply(w->second.route,
          ClientReply::refused(client, seq, ReplyCode::session_expired,
           "this client's session was evicted (at most " + std::to_string(options_.max_sessions) +
               " sessions are kept, the least recently used go first); request " +
               std::to_string(seq) +
               " did not run now but may have run already; start a new session (new client id, "
               "seq 1)"),
          out);
  }
  waiters_.erase(w);
}

void Applier::reply(const std::string& route, ClientReply r, Outbox& out) const {
  const ClientId client = r.client_id;
  const std::uint64_t seq = r.seq;
  const auto code = static_cast<std::size_t>(r.code);
  if (code < replies_by_code_.size()) ++replies_by_code_[code];
  out.push_back({{self_, Actor::front_door}, ToClient{route, encode(r), client, seq}});
}

void Applier::tick(Time now, Outbox& out) {
  if (!config_announced_) announce_config(out);
  retry_forwarded(now, out);
  watches_.tick(state_.revision(), now, out);
  transfer_.tick(now, out);
  export_.tick(now);
  if (options_.save_snapshot && schedule_.due_at_tick(now, applied_below_, last_progress_)) {
    take_snapshot();
  }
  probe_accepted(now, out);
  fill_holes(now, out);
}

void Applier::probe_accepted(Time now, Outbox& out) {
  if (joining_ || stepping_down_ || applied_below_ < holes_end()) return;
  if (now - last_progress_ < options_.accepted_probe) return;
  if (now - last_accepted_probe_ < options_.accepted_probe) return;
  last_accepted_probe_ = now;
  out.push_back({{self_, Actor::acceptor}, AcceptedQuery{}});
}

// A correct cluster accepts at most its pipelines past what is decided; an
// Accept far beyond (a faulty peer's) would make this idle node fill holes
// for good, as a far Decided would (see LearnerOptions::max_decided_ahead).
void Applier::on_accepted_bound(const AcceptedBound& m) {
  const InstanceId from = std::max(applied_below_, decided_below_);
  if (m.accepted_below <= from || m.accepted_below - from > kMaxAcceptedAhead) return;
  accepted_below_ = m.accepted_below;
  ++accepted_probes_filled_;
}

// A hole: later instances are decided but the next one to apply is not known
// here. Proposing a no-op there learns the chosen value if there is one, or
// fills the slot. A proposer that died leaves a few holes (its pipeline); a
// Decided far ahead (a faulty peer's, within the learner's
// max_decided_ahead) leaves thousands, and one no-op per hole_timeout would
// take a quarter of an hour to cross 4096. So when the instance right after
// the last no-op batch is a hole again, the next batch is twice as large (up
// to kHoleFillBatch): a single hole still costs one no-op, 4096 about twenty
// rounds. No batch reaches past the window. The holes end where the log is
// decided, or, idle, where this node's acceptor holds values (probe_accepted).
void Applier::fill_holes(Time now, Outbox& out) {
  if (joining_ || stepping_down_ || applied_below_ >= holes_end()) return;
  if (now - last_progress_ < options_.hole_timeout) return;
  if (now - last_hole_proposal_ < options_.hole_timeout) return;
  last_hole_proposal_ = now;
  const std::size_t mark = out.size();
  if (hole_fill_end_ && applied_below_ < *hole_fill_end_) {
    // The last batch is not all applied yet: its head again, as before.
    out.push_back({{self_, Actor::proposer}, Propose{applied_below_, encode_op(KvOp::no_op())}});
  } else {
    hole_fill_batch_ =
        applied_below_ == hole_fill_end_ ? std::min(2 * hole_fill_batch_, kHoleFillBatch) : 1;
    hole_fill_end_ = applied_below_ + std::min({hole_fill_batch_, holes_end() - applied_below_,
                                                state_.config().alpha()});
    for (InstanceId i = applied_below_; i < *hole_fill_end_; ++i) {
      out.push_back({{self_, Actor::proposer}, Propose{i, encode_op(KvOp::no_op())}});
    }
  }
  tell_proposer_window(out, mark);
}

std::string Applier::check_invariants() const {
  if (std::string wrong = state_.check_invariants(); !wrong.empty()) return "applier: " + wrong;
  if (std::string wrong = watches_.check_invariants(); !wrong.empty()) return "applier: " + wrong;
  return {};
}

std::string Applier::debug_state() const {
  return "applied " + std::to_string(applied_below_) + " decided " +
         std::to_string(decided_below_) + " lead " + std::to_string(lead()) + " waiters " +
         std::to_string(waiters_.size()) + " told_proposer " +
         std::to_string(proposer_known_below_) + " window_end " + std::to_string(window_end()) +
         "; " + pipeline_.debug_state();
}

std::optional<LogicReport> Applier::report() const {
  ApplierReport r{.decided_below = decided_below_,
                .applied_below = applied_below_,
                .forget_below = forget_below_,
                .keys = state_.data().size(),
                .sessions = state_.sessions(),
                .retained_reply_bytes = state_.retained_reply_bytes(),
                .leader = lead(),
                .voters_mask = 0,
                .snapshot_installs = snapshots_installed_,
                .client_replies = replies_by_code_};
  for (const NodeId id : state_.config().at(applied_below_).voters()) {
    if (id < kMaxTrackedPeers) r.voters_mask |= std::uint64_t{1} << id;
  }
  return LogicReport{.applier = r, .proposer = std::nullopt};
}

StatusReply Applier::status() const {
  StatusReply r{options_.name,   self_,       applied_below_,   forget_below_,
                decided_below_, state_.data().size(), state_.sessions(), options_.fault_injection};
  r.snapshot_below = options_.save_snapshot ? schedule_.durable_below() : 0;
  r.snapshot_bytes = schedule_.last_bytes();
  if (options_.data_dir_bytes) r.data_dir_bytes = options_.data_dir_bytes();
  r.revision = state_.revision();
  r.watches = watches_.watches();
  r.watch_history_from = watches_.history_start();
  r.leader = lead();
  r.epoch = state_.config().at(applied_below_).epoch;
  return r;
}

}  // namespace kvpaxos
