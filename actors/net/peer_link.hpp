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
// Identity: when the transport authenticates peers (CURVE), the runner passes
// the node whose key the frame came with, and a frame whose header names
// another sender, or another receiver than this node, is dropped and counted.
// So a peer's piggybacked progress is only ever taken from that peer.
#pragma once

#include <atomic>
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
};

// Peer frames the link refused, by reason (for logs and metrics).
struct RefusedPeerFrames {
  std::uint64_t forged_sender = 0;   // header.from is not the authenticated node
  std::uint64_t wrong_receiver = 0;  // header.to is not this node, or no such node
  std::uint64_t not_for_peers = 0;   // addressed to an actor peers may not reach
  std::uint64_t stale_progress = 0;  // piggybacked progress lower than already heard
  std::uint64_t not_a_member = 0;    // from an id outside this node's configurations
};

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
  std::optional<PeerFrame> inbound(PeerFrame f, Time now, Outbox& out,
                                   std::optional<NodeId> sender = std::nullopt);
  // Control messages from local actors.
  void handle(const Address& from, Body body, Time now, Outbox& out);
  // Heartbeats due now.
  std::vector<PeerFrame> tick(Time now);

  bool reachable(NodeId peer) const;
  bool is_member(NodeId peer) const { return peers_.count(peer) != 0; }
  // Every other member and its peer endpoint (empty when unknown), by id.
  std::map<NodeId, std::string> members() const;
  // Moves whenever members() changes.
  std::uint64_t members_generation() const { return generation_; }
  double drop_rate() const { return drop_rate_; }
  std::uint64_t dropped() const { return dropped_; }
  const RefusedPeerFrames& refused() const { return refused_; }

 private:
  struct Peer {
    std::string name;
    std::string endpoint;
    bool reachable = true;
    Time last_sent{};
    LocalProgress progress{};
  };

  bool drop();
  void note_progress(Peer& peer, NodeId id, const FrameHeader& h, Outbox& out);
  void set_members(const ConfigHistory& config);
  bool in_reach(const std::string& name) const;
  FaultReply apply_fault(const FaultRequest& r);
  std::vector<std::string> reach_names() const;

  NodeId self_;
  std::string self_name_;
  std::map<NodeId, Peer> peers_;  // every other member
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
