// Learner: what the log decided, and how far it may be forgotten.
//
// Owns the decided values of instances at or above forget_below (the seed's
// Min()), every member's Done point (its own from LocalDone, the others' from
// PeerProgress piggybacked on peer traffic) and, when an applier runs on this
// node, the in-order delivery cursor. Members are those of the ConfigHistory
// (the constructor's, then each ConfigUpdate's of this node's applier):
// voters and learners alike get entries, one that leaves the history loses
// its entry.
// Handles Decided (from any proposer or peer learner), CatchUpRequest,
// LocalDone, PeerProgress, ConfigUpdate and InstanceQuery. Sends Learned to the local
// proposer, Apply (in instance order) and LearnerProgress to the applier,
// ForgetBelow to the local acceptor and proposer, LocalProgress to the peer
// link, Decided to lagging peers, and CatchUpRequest when a peer knows more.
//
// Invariants:
//   a decided value never changes once stored (a differing Decided is a
//     safety violation and is counted in conflicts());
//   forget_below = min over all members of their done_below (or, see
//     forget_with_majority, over the majority-th largest of the voters of
//     each configuration in the history), never decreases;
//   held_from never decreases: decided_ holds nothing below it (a node
//     holds values below forget_below for lagging peers, see
//     keep_for_laggards, but none below a snapshot it installed);
//   Apply is sent for each instance exactly once, in increasing order, and
//     only for instances at or above held_from.
#pragma once

#include <map>
#include <optional>
#include <utility>
#include <vector>

#include "actors/core/actor.hpp"

namespace kvpaxos {

// Peer input the learner ignored, per reason. decided_far_ahead is the only
// one a correct peer can cause (this node lags that far; it learns those
// instances by catch-up instead); the others no correct node sends.
struct LearnerRefusals {
  std::uint64_t decided_far_ahead = 0;     // Decided past max_decided_ahead (not stored)
  std::uint64_t catch_up_too_often = 0;    // a peer's CatchUpRequest inside its interval
  // LocalDone, PeerProgress, SnapshotInstalled, InstanceQuery, ConfigUpdate
  std::uint64_t local_only_from_peer = 0;
  // PeerProgress or CatchUpRequest from a node the history does not hold
  // (removed, or added by a change this node has not applied yet)
  std::uint64_t non_member = 0;
  std::uint64_t total() const {
    return decided_far_ahead + catch_up_too_often + local_only_from_peer + non_member;
  }
};

struct LearnerOptions {
  bool deliver_to_applier = true;
  // A peer asks at most once per catch_up_interval; this node answers each
  // peer at most once per half of it, with at most catch_up_max_entries
  // values and catch_up_max_bytes (or one value, whatever its size, so that
  // a 16 MiB value still gets through). The requester asks again for what
  // is still missing.
  Duration catch_up_interval = std::chrono::milliseconds(50);
  std::size_t catch_up_max_entries = 256;
  std::size_t catch_up_max_bytes = 4 * 1024 * 1024;
  // With deliver_to_applier (a dense log, applied in order): a peer's Decided
  // at or beyond max(next_deliver, held_from) + max_decided_ahead is not stored.
  // Stored, it would move decided_below there, and the applier would take
  // everything between for holes to fill with no-ops (a Decided for
  // instance 10^9 stalled the cluster for good). A correct node decides only
  // a pipeline (at most 256 instances per node) past what it has applied, so
  // a node this far behind is lagging: it learns the log by catch-up, which
  // asks for the missing instances in order, or by a snapshot. 0: no limit.
  // Without an applier (the PaxosPeer library) the application picks the
  // instances and may leave any gap: no limit there.
  InstanceId max_decided_ahead = 4096;
  // A node restarted from a snapshot covering [0, first_instance) delivers
  // from there, and is done below it.
  InstanceId first_instance = 0;
  // false: forget below what every member is done with (the seed's Min()),
  // learners too. true (key/value nodes, which can hand a lagging peer a
  // snapshot): below what a majority of the voters of every configuration in
  // the history is done with, so a node that is down forever, or a learner
  // far behind, does not stop the others from forgetting. A node left behind that point gets a
  // snapshot (SnapshotNeeded to the applier) instead of log entries.
  bool forget_with_majority = false;
  // With forget_with_majority: the learner keeps (and serves to peers'
  // catch-up) the newest decided values below that point which some node is
  // not done with yet, up to this many instances and bytes. The acceptor and
  // proposer still forget at the majority's point. A live node that learns
  // the log only through peers (it cannot reach the leader, whose Decided
  // goes to learners it reaches) lags the majority by a catch-up round; it
  // catches up from the log instead of through a snapshot every
  // snapshot_retry, which it would fall behind again at once.
  InstanceId keep_for_laggards = 4096;
  std::uint64_t keep_for_laggards_bytes = 64ull << 20;
  Duration snapshot_retry = std::chrono::seconds(2);
  // A member added to a running cluster starts from a peer's snapshot
  // (ApplierOptions::joining): nothing is delivered before one is installed,
  // and any member that has decided something is asked for one.
  bool snapshot_first = false;
};

class Learner final : public ActorLogic {
 public:
  // `config`: until the first ConfigUpdate (ConfigHistory::fixed(n) for a
  // cluster of n that never changes).
  Learner(NodeId self, ConfigHistory config, LearnerOptions options = {});

  // Durable decided log (with --data-dir): rebuilt from the decisions the
  // log held above first_instance (`where` names it in errors), so a
  // restarted node re-applies them at once instead of re-learning each
  // through Paxos. From then on each new decision is handed out by
  // take_writes(). The runner writes them without fsync: they survive a
  // process crash, and after power loss the durable acceptors still hold
  // every chosen value.
  Result<bool> recover(const std::vector<std::string>& records, const std::string& where);
  Writes take_writes() override;
  bool durable() const override { return persistent_; }
  // Nothing held below held_from, the held bytes add up, delivery never
  // ahead of what is decided.
  std::string check_invariants() const override;
  // Two values decided for one instance: Paxos is broken somewhere, and the
  // node stops rather than apply either.
  std::string fatal() const override;

  void handle(const Address& from, Body body, Time now, Outbox& out) override;
  void tick(Time now, Outbox& out) override;
  Duration tick_interval() const override { return std::chrono::milliseconds(10); }

  InstanceId forget_below() const { return forget_below_; }
  // Decided values are held from here on; peers are told so.
  InstanceId held_from() const { return held_from_; }
  InstanceId decided_below() const { return decided_below_; }
  // This node's own Done point (LocalDone: with a data dir, what a snapshot
  // on disk covers).
  InstanceId done_below() const { return members_.at(self_).done_below; }
  std::size_t instances_held() const { return decided_.size(); }
  std::uint64_t conflicts() const { return conflicts_; }
  InstanceId next_deliver() const { return next_deliver_; }
  // Of a member of the history (or this node).
  InstanceId peer_decided_below(NodeId peer) const { return members_.at(peer).decided_below; }
  InstanceId peer_forget_below(NodeId peer) const { return members_.at(peer).forget_below; }
  bool tracks(NodeId peer) const { return members_.contains(peer); }
  const LearnerRefusals& refused() const { return refused_; }

 private:
  void on_decided(Decided m, bool from_peer, Outbox& out);
  bool too_far_ahead(InstanceId instance) const;
  void on_catch_up(NodeId from, const CatchUpRequest& m, Time now, Outbox& out);
  void on_peer_progress(const PeerProgress& m, Outbox& out);
  void on_config_update(ConfigUpdate m, Outbox& out);
  // members_ holds exactly the history's members, and this node.
  void track_members();
  InstanceId lowest_done() const;  // of every member
  void recompute_forget_point(Outbox& out);
  void deliver(Outbox& out);
  void report_progress(Outbox& out);
  std::vector<InstanceId> missing_below(InstanceId below, std::size_t limit) const;
  InstanceId forget_point() const;
  // everyone: the lowest Done point of all members.
  InstanceId hold_point(InstanceId forget_point, InstanceId everyone) const;
  void on_snapshot_installed(InstanceId instance, Outbox& out);

  // What this node knows of one member; zeros until it reports.
  struct MemberProgress {
    InstanceId done_below = 0;
    InstanceId decided_below = 0;
    InstanceId forget_below = 0;
    std::optional<Time> catch_up_answered;  // when its last CatchUpRequest was
  };

  NodeId self_;
  ConfigHistory config_;  // never empty
  LearnerOptions options_;
  void erase_decided_below(InstanceId instance);

  std::map<InstanceId, std::string> decided_;
  std::uint64_t decided_bytes_ = 0;       // values held in decided_
  bool persistent_ = false;               // false: memory only
  Writes pending_;                        // for take_writes()
  std::uint64_t bytes_since_rewrite_ = 0; // in the decided log
  bool started_ = false;
  std::map<NodeId, MemberProgress> members_;  // by member id; see track_members()
  InstanceId forget_below_ = 0;
  InstanceId held_from_ = 0;  // decided_ holds nothing below it; peers are told it
  std::pair<InstanceId, InstanceId> hold_inputs_{~InstanceId{0}, 0};  // of the last hold_point
  InstanceId decided_below_ = 0;
  InstanceId next_deliver_ = 0;
  bool awaiting_snapshot_ = false;  // LearnerOptions::snapshot_first, until SnapshotInstalled
  LocalProgress last_reported_{};
  LearnerProgress last_progress_{};
  bool reported_once_ = false;
  Time last_catch_up_{};
  Time last_snapshot_request_{};
  std::uint64_t snapshot_requests_ = 0;  // picks the next source on each retry
  NodeId next_catch_up_peer_ = 0;  // asked next if a member, else the next id above
  std::uint64_t conflicts_ = 0;
  InstanceId first_conflict_ = 0;
  LearnerRefusals refused_;
};

}  // namespace kvpaxos
