// Applier: the key/value service of one node.
//
// Owns the key/value state (a KvStateMachine: the map and the dedup
// sessions), the client requests waiting for their log instance, and the
// batches it proposed (several instances in flight, each carrying many
// clients' ops). Handles FromClient, WatchFromClient, StatusFromClient and
// SnapshotSaveFromClient (from the front door), Apply and LearnerProgress (from the learner),
// AcceptedBound (from the acceptor). Sends Propose to the proposer, ToClient to the front door,
// LocalDone to the learner, AcceptedQuery to the acceptor.
//
// The parts it composes, each in its own file: KvStateMachine (the map and
// the sessions), SnapshotSchedule (when to write a snapshot, the durable
// point), SnapshotTransfer (snapshots to and from peers: SnapshotRequest,
// SnapshotChunk), SnapshotExport (snapshots for kvctl snapshot save),
// ForwardBuffer (ops held for one ForwardOps to the leader),
// BatchPipeline (the queue and this node's instances in flight), WatchHub
// (watches and the event history the applied changes feed). Waiting
// requests (actors/kv/waiting_request.hpp), the forwarding rules and the
// alpha window are here.
//
// Membership (../shared/MEMBERSHIP.md 3.2-3.3): member ops run in the state
// machine like any op. This node's proposer, learner, acceptor and peer link
// hear the configurations from applied_below on as a ConfigUpdate: at start
// (the first handle or tick), after a snapshot is installed, after an
// instance that changed them, and the proposer also before a Propose
// whenever known_below (applied_below + alpha) moved since the last one.
//
// Invariants:
//   instances are applied strictly in order: [0, applied_below) are applied;
//   the state machine changes only in on_apply() (and when a snapshot
//     replaces it), so every replica that applied the same prefix holds the
//     same map, the same sessions and the same configuration; exactly-once
//     and the reply budget are the state machine's (actors/kv/kv_state_machine.hpp);
//   the window: nothing is proposed at or above applied_below + alpha, so
//     the configuration of every instance proposed is known (a change
//     decided in i governs from i + alpha).
#pragma once

#include <deque>
#include <functional>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "actors/core/actor.hpp"
#include "actors/kv/applier_refusals.hpp"
#include "actors/kv/batch_pipeline.hpp"
#include "actors/kv/forward_buffer.hpp"
#include "actors/kv/kv_state_machine.hpp"
#include "actors/kv/snapshot_export.hpp"
#include "actors/kv/snapshot_schedule.hpp"
#include "actors/kv/snapshot_transfer.hpp"
#include "actors/kv/waiting_request.hpp"
#include "actors/kv/watch_hub.hpp"
#include "messages/kv_op.hpp"

namespace kvpaxos {

// The most no-ops proposed at once into a run of holes (Applier::fill_holes):
// the largest pipeline a node may keep in flight.
inline constexpr InstanceId kHoleFillBatch = 256;
// An AcceptedBound further than this past what is decided is not taken for
// holes (the learner's max_decided_ahead, for the same reason).
inline constexpr InstanceId kMaxAcceptedAhead = 4096;

struct ApplierOptions {
  std::string name;
  // The cluster's id (NodeConfig::cluster_id), named in snapshots for backup.
  std::uint64_t cluster_id = 0;
  bool fault_injection = false;
  // How long the head of the log may stay undecided while later instances are
  // decided before this node proposes a no-op there to learn or fill it.
  Duration hole_timeout = std::chrono::milliseconds(200);
  // After this long with nothing to apply, ask this node's acceptor how far
  // it holds accepted values (AcceptedQuery), and again every as long while
  // idle. One accepted above what is decided here becomes a hole to fill: a
  // value chosen whose Decided reached only nodes that are gone since
  // (crashed, or removed and stopped) is otherwise learned only when the
  // next request comes, and until then no live replica holds that write.
  Duration accepted_probe = std::chrono::seconds(1);
  // A session untouched for this many instances is dropped; a client idle that
  // long must not retry an old request (the client library never does).
  InstanceId session_idle_instances = 1'000'000;
  // At most this many sessions: past it the least recently executed ones
  // (by the instance of their last op, then client id) are evicted at the
  // end of an applied instance; sessions an instance touched are never
  // evicted by it, so its replies go out first. Part of the state machine:
  // every node must use the same value (kvpaxosd does not expose it). A
  // session costs ~150 bytes plus its kept reply, whose sum is bounded by
  // retained_reply_bytes, so the table stays under ~10 MiB + 16 MiB.
  // An op with seq > 1 whose client has no session does not run: it is
  // answered session_expired (docs/architecture.md, "Bounded sessions").
  std::size_t max_sessions = 65'536;
  // Simulator only: run ops of evicted sessions anyway, to show that the
  // exactly-once checker catches it.
  bool bug_execute_expired = false;
  // Simulator only: KvLimits::bug_delete_keeps_revision.
  bool bug_delete_keeps_revision = false;
  // Replies kept for retries, summed over sessions. Past it the oldest are
  // dropped (their sessions stay, so the ops still never run twice); a client
  // that then retries such a request is told its reply is gone. Clients that
  // vanish without acking would otherwise pin one reply each.
  std::size_t retained_reply_bytes = 16 * 1024 * 1024;
  // Durability (with --data-dir): every snapshot_every applied instances the
  // state (map, sessions, applied_below) is handed to save_snapshot, which
  // writes it off this thread (a large state takes seconds to write, and
  // clients would wait that long) and answers with a SnapshotSaved from this
  // node. Only once it is durable does this node tell the learner it is done
  // below that point, so no node forgets an instance this node could still
  // need to replay after a crash. One periodic snapshot is written at a time.
  // Without save_snapshot the node is done with each instance as soon as it
  // is applied.
  // A snapshot is due after snapshot_every instances (once their ops add up
  // to a quarter of the state), after max(snapshot_every_bytes, state size)
  // bytes of applied ops, or when the log has been idle for snapshot_idle
  // with something unsnapshotted. Each snapshot writes the whole state, so
  // the byte rules keep large stores from being rewritten every few ops.
  InstanceId snapshot_every = 10'000;
  // Snapshot transfer to a peer left behind the forget point.
  std::size_t snapshot_chunk_bytes = 1 << 20;
  // For kvctl status: bytes under --data-dir (empty: not reported).
  std::function<std::uint64_t()> data_dir_bytes;
  Duration snapshot_transfer_timeout = std::chrono::seconds(1);
  std::size_t snapshot_every_bytes = 64 * 1024 * 1024;
  Duration snapshot_idle = std::chrono::seconds(2);
  // Batching and pipelining: client ops waiting here go out together in one
  // log instance (up to max_batch_ops / max_batch_bytes), with at most
  // max_in_flight of this node's instances undecided at once, and a second
  // one only when a full batch waits. While those are in flight, new requests
  // queue and form the next batch.
  std::size_t max_in_flight = 2;
  std::size_t max_batch_ops = 1024;
  std::size_t max_batch_bytes = 1 << 20;
  // Forwarding: the author of the latest applied batch is the leader. Other
  // nodes send it their clients' ops (ForwardOps) instead of competing for
  // the same instances, while it has authored a batch within leader_idle. An
  // op not applied within forward_timeout (forward_timeout_busy while batches
  // are still being applied: the leader is alive, its queue may be long) is
  // proposed here: the leader may be gone, or the forward lost; the
  // exactly-once rule makes a double proposal harmless. Once a batch by
  // another author is applied, the ops still forwarded to the old leader go
  // to the new one. A timeout that fires for a live but slow leader costs a
  // change of leader, not a duel; firing every 500 ms under 1 MiB values it
  // cost a quarter of the throughput, hence the longer busy timeout.
  bool forward_to_leader = true;
  Duration forward_timeout = std::chrono::milliseconds(500);
  Duration forward_timeout_busy = std::chrono::seconds(2);
  Duration leader_idle = std::chrono::seconds(1);
  // Relaying: a forward that timed out goes once to another voter (the one
  // after the leader in id order, skipping this one), which proposes it
  // there, before this node proposes it itself: a leader that is alive but
  // cut off from this node only (a partial partition) then hands the lead to
  // a node both reach, where a node proposing for itself would learn the log
  // only through peers, lag the leader by a catch-up round, and chase the
  // decided instances for as long as the leader runs. Needs a third voter.
  //
  // The configuration of the cluster's first start (actors/kv/config_state.hpp):
  // the bootstrap members and alpha. A snapshot's replaces it; after that it
  // changes only through member ops in the log. The default is the unit
  // tests' three voters; build_node_logic sets the cluster's.
  ConfigState config = ConfigState::fixed(3);
  // Simulator only: ConfigState::set_bug_no_window.
  bool bug_no_window = false;
  // Simulator only: ConfigState::set_bug_reused_id.
  bool bug_reused_id = false;
  // A member added to a running cluster, on its first start (kvpaxosd
  // --initial-cluster-state existing): its state must come from a peer's
  // snapshot, never from replaying the log onto the bootstrap
  // configuration it does not have. Until a snapshot is installed it
  // proposes nothing (the window is empty) and announces no configuration:
  // its actors keep the one the cluster told it (NodeSpec::contact).
  bool joining = false;
  std::function<void(InstanceId applied_below, std::string bytes)> save_snapshot;
  // Watches (WatchHub): the event history kept and the per-watch bounds.
  WatchLimits watch;
};

class Applier final : public ActorLogic {
 public:
  Applier(NodeId self, ApplierOptions options);

  void handle(const Address& from, Body body, Time now, Outbox& out) override;
  void tick(Time now, Outbox& out) override;
  // Sends the client ops held for the leader as one ForwardOps.
  void flush(Time now, Outbox& out) override;
  Duration tick_interval() const override { return std::chrono::milliseconds(20); }
  std::optional<LogicReport> report() const override;

  // Loads a snapshot written through save_snapshot, before the first message.
  Result<bool> restore(std::string_view snapshot);
  // The snapshot save_snapshot would get now.
  std::string snapshot() const;

  InstanceId applied_below() const { return applied_below_; }
  // Who this node's clients' ops go to (lead()).
  NodeId leader() const { return lead(); }
  // A StepDown from this node's control was handled: it proposes nothing
  // more and answers new requests shutting_down.
  bool stepping_down() const { return stepping_down_; }
  // Ops this node proposed that are still undecided (a stopping node waits
  // for them a moment, so their clients get their answers).
  std::size_t proposed_waiting() const;
  std::size_t waiting() const { return waiters_.size(); }
  InstanceId snapshot_below() const { return schedule_.durable_below(); }
  std::uint64_t snapshot_failures() const { return snapshot_failures_; }
  std::uint64_t snapshots_installed() const { return snapshots_installed_; }
  // Idle probes whose answer showed accepted values above the decided log.
  std::uint64_t accepted_holes_found() const { return accepted_probes_filled_; }
  const std::string& last_snapshot_error() const { return last_snapshot_error_; }
  const KvMap& data() const { return state_.data(); }
  std::uint64_t revision() const { return state_.revision(); }
  std::size_t sessions() const { return state_.sessions(); }
  std::uint64_t sessions_evicted() const { return state_.sessions_evicted(); }
  std::uint64_t forwarded_ops_dropped() const { return forwarded_ops_dropped_; }
  const std::string& last_forwarded_op_error() const { return last_forwarded_op_error_; }
  std::size_t retained_replies() const { return state_.retained_replies(); }
  std::size_t retained_reply_bytes() const { return state_.retained_reply_bytes(); }
  const ApplierRefusals& refused() const { return refused_; }
  const KvStateMachine& state() const { return state_; }
  // What a ConfigUpdate carries now: the configurations from applied_below on.
  ConfigHistory config_history() const { return state_.config().history(applied_below_); }
  const WatchHub& watch_hub() const { return watches_; }
  // The state machine's invariants and the applier's own.
  std::string check_invariants() const override;
  // Applied and decided points, the lead, the pipeline.
  std::string debug_state() const override;

 private:

  void on_request(FromClient m, Time now, Outbox& out);
  void on_forwarded(NodeId from, ForwardOps m, Outbox& out);
  // StepDown from this node's control: stop proposing, tell every other
  // member, send every client whose op is not in flight here elsewhere.
  void step_down(Outbox& out);
  // StepDown from member `from`.
  void on_step_down(NodeId from, const StepDown& m, Time now, Outbox& out);
  bool serving(NodeId member) const;  // not stepped down (as far as this node knows)
  void retry_forwarded(Time now, Outbox& out);
  std::optional<NodeId> relay_for(NodeId leader) const;
  void on_apply(Apply m, Time now, Outbox& out);
  void save(std::string bytes);
  void on_snapshot_saved(const SnapshotSaved& m, Time now, Outbox& out);
  void answer_expired(ClientId client, std::uint64_t seq, Outbox& out);
  Waiter& replace_waiter(ClientId client, std::uint64_t seq, std::string route, std::string op,
                         std::size_t values);
  // The one transition into the queue, from any place; a waiter already
  // queued keeps its place in line.
  void requeue(ClientId client, Waiter& w, Line line = Line::back);
  // Another node leads: it authored a batch within leader_idle, or the lead
  // is vacant and it is the voter that takes it. Our clients' ops go to it.
  bool another_leader_active(Time now) const;
  // The author of the latest batch while it is a voter of the configuration
  // at applied_below and has not stepped down; else (it was removed or is
  // stopping, or this node starts as a learner) the lead is vacant and goes
  // to the lowest-id voter still serving, at once, so removing or stopping
  // the leader costs no forward timeout.
  NodeId lead() const;
  bool lead_vacant() const;
  // Nothing is proposed at or above it (the window).
  InstanceId window_end() const {
    return joining_ ? 0 : applied_below_ + state_.config().alpha();
  }
  // ConfigUpdate to this node's proposer, learner, acceptor and peer link.
  void announce_config(Outbox& out);
  // Proposes went out from out[mark] on: the proposer hears the window moved
  // first, if it did since the last ConfigUpdate it got: in the Proposes
  // (known_below) while the configurations are those of that update, else
  // in a new ConfigUpdate before them.
  void tell_proposer_window(Outbox& out, std::size_t mark);
  // After this node's batch changed the configuration: no-ops for the
  // instances below the change's effective_from it has not proposed, so
  // the old configuration's last instances end within a round trip.
  void finish_old_config(Outbox& out);
  // Sends the op to the leader, or to `relay` (see ApplierOptions::nodes).
  void forward_waiter(Waiter& w, Time now, Outbox& out, std::optional<NodeId> relay = {});
  void forward_queue(Time now, Outbox& out);  // every queued op, in order
  void redirect_forwards(Time now, Outbox& out);
  void propose_pending(Outbox& out);
  void answer_waiter(ClientId client, Outbox& out);
  void reply(const std::string& route, ClientReply r, Outbox& out) const;
  void fill_holes(Time now, Outbox& out);
  void probe_accepted(Time now, Outbox& out);
  void on_accepted_bound(const AcceptedBound& m);
  // Where the holes fill_holes fills end: what is decided, or further what
  // this node's acceptor holds accepted.
  InstanceId holes_end() const { return std::max(decided_below_, accepted_below_); }
  void take_snapshot();
  void on_snapshot_chunk(NodeId from, SnapshotChunk m, Time now, Outbox& out);
  void on_snapshot_save(const SnapshotSaveFromClient& m, Time now, Outbox& out);
  // A snapshot (actors/kv/snapshot_record.hpp) is parsed and checked whole
  // before any of it replaces the state.
  void load(SnapshotRecord r);
  void install_snapshot(InstanceId instance, std::string bytes, Outbox& out);
  StatusReply status() const;

  NodeId self_;
  ApplierOptions options_;
  KvStateMachine state_;
  Waiters waiters_;
  BatchPipeline pipeline_;  // the queue of waiters and this node's instances in flight
  std::uint64_t forwarded_ops_dropped_ = 0;
  std::string last_forwarded_op_error_;
  InstanceId applied_below_ = 0;
  // Client ops for the leader, held until flush() (or until they reach
  // max_batch_bytes) so that a burst goes out as one ForwardOps.
  ForwardBuffer forwards_;
  NodeId leader_;                 // author of the latest applied batch
  // Members that stepped down (StepDown) and the instance they propose
  // nothing at or above; dropped when one authors a batch there (it is back).
  std::map<NodeId, InstanceId> stepped_down_;
  bool stepping_down_ = false;  // this node (its own StepDown)
  Time leader_seen_{};
  InstanceId forget_below_ = 0;
  InstanceId decided_below_ = 0;
  Time last_progress_{};
  Time last_hole_proposal_{};
  std::optional<InstanceId> hole_fill_end_;  // after the last no-op batch; the next one
  InstanceId hole_fill_batch_ = 1;           // doubles from there if it is a hole again
  InstanceId accepted_below_ = 0;            // the acceptor's last AcceptedBound
  Time last_accepted_probe_{};
  std::uint64_t accepted_probes_filled_ = 0;  // AcceptedBounds that opened holes
  std::uint64_t undecodable_entries_ = 0;
  std::uint64_t snapshot_failures_ = 0;
  std::string last_snapshot_error_;

  SnapshotSchedule schedule_;  // when to write, how far the durable one reaches
  SnapshotTransfer transfer_;
  SnapshotExport export_;
  std::uint64_t snapshots_installed_ = 0;
  // Replies sent to this node's clients, by ReplyCode (metrics). Mutable:
  // counting a reply is not a change of the state machine.
  mutable std::array<std::uint64_t, kReplyCodes> replies_by_code_{};
  ApplierRefusals refused_;
  // Watches and the event history; events_ collects an instance's changes.
  WatchHub watches_;
  std::vector<WatchEvent> events_;
  bool config_announced_ = false;          // the start's ConfigUpdate went out
  bool joining_ = false;                   // ApplierOptions::joining, until a snapshot is installed
  InstanceId proposer_known_below_ = 0;  // the window's end the proposer was last told
  // ConfigState::history_mark of the last ConfigUpdate to the proposer.
  std::pair<std::uint64_t, InstanceId> proposer_history_mark_{};
};

}  // namespace kvpaxos
