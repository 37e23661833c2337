#include "actors/node/node_logic.hpp"

namespace kvpaxos {

Result<NodeLogic> build_node_logic(const NodeSpec& spec, const StoredState& stored) {
  // The bootstrap list, by member id (a KV member that joined later may
  // have an id past 63: its list leaves the ids before it empty).
  const std::size_t n = spec.names.size();
  if (n == 0 || (!spec.kv && n > kMaxClusterSize)) return Error{"a cluster has 1 to 63 nodes"};
  if (spec.joining != spec.contact.has_value()) {
    return Error{"a joining member needs the configuration the cluster told it, and only it"};
  }
  if (spec.contact && (spec.contact->entries.empty() || !spec.contact->latest().is_member(spec.self))) {
    return Error{"member " + std::to_string(spec.self) + " is not in the configuration it was given"};
  }
  // A KV node's membership is its configuration's (checked once the
  // snapshot is loaded): a member added later has an id past the list.
  if (!spec.kv && spec.self >= n) return Error{"node id is not in the cluster"};
  const NodeId self = spec.self;
  const std::uint64_t salt = spec.incarnation * 1'000'003;
  NodeLogic logic;

  if (stored.durable) {
    Result<std::unique_ptr<Acceptor>> acceptor =
        Acceptor::recover(stored.acceptor_records, stored.acceptor_where, self, n,
                          spec.member_incarnation);
    if (!acceptor.ok()) return Error{acceptor.error()};
    logic.acceptor = std::move(acceptor.value());
  } else {
    logic.acceptor = std::make_unique<Acceptor>(self, n, spec.member_incarnation);
  }

  InstanceId first_instance = 0;
  if (spec.kv) {
    if (spec.alpha == 0 || spec.alpha > kMaxAlpha) {
      return Error{"the reconfiguration window alpha must be within 1 to " +
                   std::to_string(kMaxAlpha) + " instances"};
    }
    if (spec.applier.max_in_flight >= spec.alpha) {
      return Error{"the pipeline (" + std::to_string(spec.applier.max_in_flight) +
                   " instances in flight) must be below the reconfiguration window alpha (" +
                   std::to_string(spec.alpha) + ")"};
    }
    ApplierOptions options = spec.applier;
    options.name = !spec.name.empty() ? spec.name
                   : spec.contact     ? spec.contact->latest().find(self)->name
                   : self < n         ? spec.names[self]
                                      : "";
    options.joining = spec.joining;
    options.config = ConfigState(bootstrap_members(spec.names, spec.peer_endpoints), spec.alpha);
    logic.applier = std::make_unique<Applier>(self, std::move(options));
    if (stored.snapshot) {
      Result<bool> restored = logic.applier->restore(*stored.snapshot);
      if (!restored.ok()) return Error{stored.snapshot_where + ": " + restored.error()};
      first_instance = logic.applier->applied_below();
    }
  }

  // The actors start with the configurations the applier holds (the
  // snapshot's, or the bootstrap one), a joining member with what it was
  // told; the applier's ConfigUpdates replace them.
  logic.config = spec.contact ? *spec.contact
                 : spec.kv    ? logic.applier->config_history()
                              : ConfigHistory::fixed(n);
  // A member whose own snapshot is past its removal, restarted before a
  // majority of the voters told it (no tombstone yet): it runs on, for the
  // peers that may still need its decisions or its vote in the instances
  // before the removal, until they tell it (PeerLink::retirement). Stopped
  // here instead, a two-voter configuration's last instances could never be
  // learned again (kvpaxos_sim --reconfig --crash-restart seed 2828).
  const bool removed_not_told = spec.kv && stored.snapshot && !spec.contact &&
                                self < logic.applier->state().config().next_member_id();
  if (!logic.config.is_member(self) && !removed_not_told) {
    return Error{"member " + std::to_string(self) + " is not in the cluster's configuration (epoch " +
                 std::to_string(logic.config.latest().epoch) + ")"};
  }
  if (spec.kv) {
    // The acceptor judges senders by the configurations from the start, not
    // from the applier's first ConfigUpdate: a new member's Prepare may come
    // first.
    Outbox none;
    logic.acceptor->handle({self, Actor::applier},
                           ConfigUpdate{logic.config, logic.applier->state().config().alpha()}, Time{},
                           none);
  }
  LearnerOptions learner = spec.learner;
  learner.deliver_to_applier = spec.kv;
  learner.first_instance = first_instance;
  learner.snapshot_first = spec.joining;
  logic.learner = std::make_unique<Learner>(self, logic.config, learner);
  if (stored.durable) {
    Result<bool> recovered = logic.learner->recover(stored.decided_records, stored.decided_where);
    if (!recovered.ok()) {
      logic.decided_log_error = recovered.error();
      logic.learner = std::make_unique<Learner>(self, logic.config, learner);
      (void)logic.learner->recover({}, stored.decided_where);
    }
  }

  ProposerOptions proposer = spec.proposer;
  // In the KV service every node's applier proposes the same next instances,
  // and the applier's leader-by-authorship rule settles who proposes: a node
  // falling back to basic Paxos there would only fight the leader instance
  // by instance (500 ms stalls in bench/compare). The fallback is for
  // proposers that decide different instances (the PaxosPeer API).
  if (spec.kv) proposer.rival_quiet = Duration::zero();
  logic.proposer =
      std::make_unique<Proposer>(self, logic.config, spec.seed * 104729 + self + salt, proposer);
  logic.proposer->raise_round(spec.initial_round);
  if (!spec.planted_bug_no_restart_round) {
    logic.proposer->raise_round(logic.acceptor->join_info().max_round);
  }
  logic.link_seed = spec.seed * 7919 + self + salt;
  return logic;
}

}  // namespace kvpaxos
