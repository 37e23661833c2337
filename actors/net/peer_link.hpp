// PeerLink: the node's one door to the other nodes.
//
// The logic decides, for each frame between a local actor and a peer, whether
// it passes (fault injection: which peers are reachable, a drop rate), stamps
// outgoing frames with this node's progress (Done and decided counters, fed by
// the learner's LocalProgress), and turns a peer's stamped progress into a
// PeerProgress for the local learner. It sends a Heartbeat to a peer it has not
// sent to for heartbeat_interval, so progress flows even when the log is idle.
// Handles LocalProgress and FaultFromClient; sends PeerProgress, ToClient.
// The runner (PeerLinkThread) owns the ROUTER it binds and a DEALER per peer.
//
// Only Paxos actors (acceptor, proposer, learner), the applier (snapshot
// transfer) and the peer link itself may be addressed from another node;
// anything else is dropped.
//
// Membership: the peers are the members of the node's configuration history
// (every configuration still in force for an instance this node may run),
// by member id. A ConfigUpdate from this node's applier replaces them: frames
// to or from an id that is no longer a member are dropped (a removed member
// cannot reach this node's actors once the removal governs every instance
// here), and a new member is reachable unless a fault reach set leaves it
// out. The runner asks members_generation() after each local message and
// connects to the endpoints of members() that it has no socket for.
//
// Removed members: the removals in the configuration history (its entries,
// and its list of removed members, which outlives the entries). A frame
// from a member whose removal governs every
// instance this node may run, once this node is done (LocalProgress) with
// every instance before the removal, is answered (at most once a second) with a
// Removed notice, on the connection it came on (take_answers()); a removed
// node counts the notices it gets (answered()) and retires once a majority
// of the voters after its removal told it (retirement()).
//
// New members: a MemberQuery from a node that has no id yet (kNoNode) gets a
// MemberInfo on its connection: its id and this node's configurations, or
// why there is none. With CURVE the asker's key must be the one its entry
// names (so the transport already authenticated it as that member).
//
// Clusters: the runner passes the cluster id the sending connection
// announced (link_identity()); a frame from another cluster is dropped and
// counted. 0 (a node of an earlier release, or a new member asking who it
// is) is not checked.
//
// Identity: when the transport authenticates peers (CURVE), the runner passes
// the node whose key the frame came with, and a frame whose header names
// another sender, or another receiver than this node, is dropped and counted.
// So a peer's piggybacked progress is only ever taken from that peer.
#pragma once

#include <atomic>
#include <functional>
#include <map>
#include <optional>
#include <set>
#include <random>
#include <string>
#include <vector>

#include "actors/core/actor.hpp"
#include "messages/codec.hpp"

namespace kvpaxos {

// Counters of peer traffic, readable from any thread.
struct PeerTrafficStats {
  std::atomic<std::uint64_t> paxos_sent{0};      // Prepare/Accept/Decided/Promise/Accepted out
  std::atomic<std::uint64_t> paxos_received{0};  // the same, in
  std::atomic<std::uint64_t> dropped{0};         // dropped by fault injection or full queues
  // Non-zero once this node learned it was removed (PeerLink::retirement):
  // the epoch of the removal (stored last) and the instance it governs from.
  std::atomic<std::uint64_t> removed_epoch{0};
  std::atomic<std::uint64_t> removed_from{0};
};

// Peer frames the link refused, by reason (for logs and metrics).
struct RefusedPeerFrames {
  std::uint64_t forged_sender = 0;   // header.from is not the authenticated node
  std::uint64_t wrong_receiver = 0;  // header.to is not this node, or no such node
  std::uint64_t not_for_peers = 0;   // addressed to an actor peers may not reach
  std::uint64_t stale_progress = 0;  // piggybacked progress lower than already heard
  std::uint64_t not_a_member = 0;    // from an id outside this node's configurations
  std::uint64_t other_cluster = 0;   // from a connection of another cluster id
};

// Removal, as a removed node learns it from its peers' Removed notices.
struct Retirement {
  std::uint64_t epoch = 0;
  InstanceId effective_from = 0;
  std::vector<std::string> told_by;  // names (or ids) of the voters that said so
};

// The routing id a node's connections to its peers announce: the cluster
// id, the member id and a salt (unique per connection, so a restarted
// node's new connection is never taken for its old one).
std::string link_identity(std::uint64_t cluster_id, NodeId self, std::uint32_t salt);
// The cluster id a peer connection announced; 0 when it announced none.
std::uint64_t cluster_of_link(std::string_view routing_id);

// A cluster's id, from its first configuration (the --cluster list of its
// first start, in order) and the operator's --cluster-token: two clusters
// started from the same list with different tokens have different ids.
// Never 0.
std::uint64_t make_cluster_id(const std::vector<std::string>& names,
                              const std::vector<std::string>& endpoints, std::string_view token);

// A member as the runner connects to it: where, and the public keys its
// configuration entries give it (the latest entry's first; empty for a
// member of the first configuration, whose key is a file).
struct PeerAddress {
  std::string name;
  std::string endpoint;  // empty when unknown
  std::vector<std::string> config_keys;
  bool operator==(const PeerAddress&) const = default;
};

// The keys each member may connect with: its configuration keys when it has
// any (then only those: a re-keyed member's old key file stops working), else
// key_files(name), its files in --peer-keys (the first configuration's
// members). A member with neither is left out: it cannot connect. Members
// not in `members` (removed, or never added) get nothing, files or not.
// `planted_bug_files_too` (tests only) also accepts the files of a member
// whose entry has a key.
MemberKeys member_keys(const std::map<NodeId, PeerAddress>& members,
                       const std::function<std::vector<std::string>(const std::string&)>& key_files,
                       bool planted_bug_files_too = false);

struct PeerFrame {
  FrameHeader header;
  std::string body;  // encoded Body, passed through untouched
};

class PeerLink {
 public:
  // The members of `config`; this node is one of them.
  PeerLink(NodeId self, const ConfigHistory& config, std::uint64_t seed,
           Duration heartbeat_interval = std::chrono::milliseconds(50));
  // A fixed cluster: names[i] is member i's.
  PeerLink(NodeId self, const std::vector<std::string>& names, std::uint64_t seed,
           Duration heartbeat_interval = std::chrono::milliseconds(50));

  // A local actor's frame for another node: the frame to send, or nothing.
  std::optional<PeerFrame> outbound(PeerFrame f, Time now);
  // A frame from the network: the frame to deliver locally, or nothing.
  // May append a PeerProgress for the learner to `out`. `sender` is the node
  // the transport authenticated the frame as; empty without authentication.
  // `cluster` is the cluster id the frame's connection announced.
  std::optional<PeerFrame> inbound(PeerFrame f, Time now, Outbox& out,
                                   std::optional<NodeId> sender = std::nullopt,
                                   std::uint64_t cluster = 0);
  // Frames to send back on the connection of the last inbound() frame
  // (MemberInfo, Removed), in order; emptied by the call.
  std::vector<PeerFrame> take_answers();
  // A frame a peer sent back on this node's connection to `peer` (a Removed
  // notice; anything else is dropped).
  void answered(const PeerFrame& f, NodeId peer);
  // This node was removed, as a majority of the voters after the removal
  // told it; nothing while it is a member.
  std::optional<Retirement> retirement() const;
  void set_cluster_id(std::uint64_t id) { cluster_id_ = id; }
  // Control messages from local actors.
  void handle(const Address& from, Body body, Time now, Outbox& out);
  // Heartbeats due now.
  std::vector<PeerFrame> tick(Time now);

  bool reachable(NodeId peer) const;
  // When the last frame from `peer` was let in (past fault injection); the
  // epoch when none was, or `peer` is not a member.
  Time last_heard(NodeId peer) const;
  bool is_member(NodeId peer) const { return peers_.count(peer) != 0; }
  // Every other member, by id.
  std::map<NodeId, PeerAddress> members() const;
  // The members this node saw removed (the latest kMaxRemovals), by id:
  // name and configuration key, no endpoint. With keys their keys are still
  // let in, so that one calling back can be told it was removed; every
  // other frame of theirs is refused (inbound()).
  std::map<NodeId, PeerAddress> removed_members() const;
  // Moves whenever members() or removed_members() changes.
  std::uint64_t members_generation() const { return generation_; }
  double drop_rate() const { return drop_rate_; }
  std::uint64_t dropped() const { return dropped_; }
  const RefusedPeerFrames& refused() const { return refused_; }

 private:
  struct Peer {
    PeerAddress address;
    bool reachable = true;
    Time last_sent{};
    Time last_heard{};
    LocalProgress progress{};
  };

  struct Removal {
    std::string name;
    std::uint64_t epoch = 0;
    InstanceId effective_from = 0;
    std::optional<Time> last_notice;
    std::string peer_key;  // its configuration key; empty: its key file, if any
  };

  bool drop();
  PeerFrame answer_to(NodeId to, Body body) const;
  void answer_query(const PeerFrame& f, std::optional<NodeId> sender);
  void note_progress(Peer& peer, NodeId id, const FrameHeader& h, Outbox& out);
  void set_members(const ConfigHistory& config);
  bool in_reach(const std::string& name) const;
  FaultReply apply_fault(const FaultRequest& r);
  std::vector<std::string> reach_names() const;

  NodeId self_;
  std::string self_name_;
  std::map<NodeId, Peer> peers_;  // every other member
  ConfigHistory history_;
  std::uint64_t alpha_ = 0;
  std::uint64_t cluster_id_ = 0;
  // Members this node saw removed (bounded: the latest kMaxRemovals).
  static constexpr std::size_t kMaxRemovals = 256;
  std::map<NodeId, Removal> removed_;
  // Removed notices about this node, by the voter that sent them.
  std::map<NodeId, Removed> notices_;
  std::vector<PeerFrame> answers_;
  std::uint64_t generation_ = 0;
  std::mt19937_64 rng_;
  Duration heartbeat_interval_;
  // The fault reach set (kvctl fault reach): every member, or these names.
  bool reach_all_ = true;
  std::set<std::string> reach_;
  double drop_rate_ = 0.0;
  LocalProgress local_{};
  std::uint64_t dropped_ = 0;
  RefusedPeerFrames refused_;
};

}  // namespace kvpaxos
