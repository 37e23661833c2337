// One node's logic, built from what its disk held: the one factory that
// kvpaxosd (actors/runtime/node.cpp) and the simulator (test/sim) both use,
// so the simulator checks the node users run: the same options, seeds,
// recovery and restart rules.
//
// Recovery, in order: the acceptor from its log's records; the applier from
// its snapshot; the learner from its decided log, above the snapshot; then
// the restart ballot rule: a restarted proposer must never reuse a ballot it
// used before (a late Accept at it could meet a new value at the same
// ballot), so it starts above every round its own durable acceptor has seen,
// which includes every range it campaigned for (its own acceptor is asked
// first). Reading the records off a disk is the caller's: SegmentedLog for
// files, MemoryLog for the simulator.
#pragma once

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "actors/kv/applier.hpp"
#include "actors/paxos/acceptor.hpp"
#include "actors/paxos/learner.hpp"
#include "actors/paxos/proposer.hpp"
#include "messages/result.hpp"

namespace kvpaxos {

struct NodeSpec {
  NodeId self = 0;
  // The bootstrap members (--cluster): names and peer endpoints by member
  // id, the configuration of the cluster's first start. Once the applier
  // has a snapshot, the configuration in it wins (membership changes are
  // in the log, not in flags). peer_endpoints may be empty (the simulator).
  std::vector<std::string> names;
  std::vector<std::string> peer_endpoints;
  // The alpha window of a first start (actors/kv/config_state.hpp): fixed
  // for the cluster's life, so a snapshot's alpha wins over this one.
  std::uint64_t alpha = kDefaultAlpha;
  // A member added to a running cluster, on its first start (an empty data
  // dir): `contact` is the configuration the cluster told it, with itself in
  // it; its actors start from that, and its state from a peer's snapshot
  // (ApplierOptions::joining, LearnerOptions::snapshot_first).
  bool joining = false;
  std::optional<ConfigHistory> contact;
  // This node's name (kvpaxosd --name); empty: its bootstrap entry's.
  std::string name;
  // A KV node (applier, front door); false: the seed's PaxosPeer API.
  bool kv = true;
  std::uint64_t seed = 1;
  // Starts of this node within one process's life (the simulator restarts
  // nodes in place); 0 for kvpaxosd. Salts the seeds.
  std::uint64_t incarnation = 0;
  // The member incarnation written into the data dir at this member's first
  // start (membership.hpp's MemberEntry::incarnation; 0 for the members of
  // the first configuration): the acceptor's incarnation gate compares it.
  std::uint64_t member_incarnation = 0;
  // The proposer starts above this round (kvpaxosd --join's survey).
  std::uint64_t initial_round = 0;
  ProposerOptions proposer;
  // The learner's and applier's options; the factory sets what follows from
  // the rest of the spec (deliver_to_applier, first_instance, name, config).
  LearnerOptions learner;
  ApplierOptions applier;
  // The simulator's planted bug: skip the restart ballot rule.
  bool planted_bug_no_restart_round = false;
};

// What the node's disk held at start. Without `durable`, the node keeps
// everything in memory and its logic hands out no Writes.
struct StoredState {
  bool durable = false;
  std::vector<std::string> acceptor_records;
  std::vector<std::string> decided_records;
  std::optional<std::string> snapshot;  // the payload of the snapshot file
  // Where each came from, for errors ("/var/lib/kvpaxos/acceptor").
  std::string acceptor_where = "the acceptor log";
  std::string decided_where = "the decided log";
  std::string snapshot_where = "the snapshot";
};

struct NodeLogic {
  std::unique_ptr<Acceptor> acceptor;
  std::unique_ptr<Proposer> proposer;
  std::unique_ptr<Learner> learner;
  std::unique_ptr<Applier> applier;  // KV nodes only
  std::uint64_t link_seed = 0;       // for the node's PeerLink
  // The configurations the actors started with (the PeerLink's too): the
  // snapshot's or the bootstrap one, a joining member's contact.
  ConfigHistory config;
  // The decided log did not read: it is a cache of what the durable
  // acceptors hold, so the learner starts afresh (the caller empties that
  // log) rather than the node refusing to start. Empty when it read.
  std::string decided_log_error;
};

// A damaged acceptor log or snapshot is an error: the node must not serve
// from a damaged memory.
Result<NodeLogic> build_node_logic(const NodeSpec& spec, const StoredState& stored);

}  // namespace kvpaxos
