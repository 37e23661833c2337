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
#pragma once

#include <atomic>
#include <optional>
#include <random>
#include <string>
#include <vector>

#include "actors/actor.hpp"
#include "messages/codec.hpp"

namespace kvpaxos {

// Counters of peer traffic, readable from any thread.
struct PeerTrafficStats {
  std::atomic<std::uint64_t> paxos_sent{0};      // Prepare/Accept/Decided/Promise/Accepted out
  std::atomic<std::uint64_t> paxos_received{0};  // the same, in
  std::atomic<std::uint64_t> dropped{0};         // dropped by fault injection or full queues
};

struct PeerFrame {
  FrameHeader header;
  std::string body;  // encoded Body, passed through untouched
};

class PeerLink {
 public:
  PeerLink(NodeId self, std::vector<std::string> names, std::uint64_t seed,
           Duration heartbeat_interval = std::chrono::milliseconds(50));

  // A local actor's frame for another node: the frame to send, or nothing.
  std::optional<PeerFrame> outbound(PeerFrame f, Time now);
  // A frame from the network: the frame to deliver locally, or nothing.
  // May append a PeerProgress for the learner to `out`.
  std::optional<PeerFrame> inbound(PeerFrame f, Time now, Outbox& out);
  // Control messages from local actors.
  void handle(const Address& from, Body body, Time now, Outbox& out);
  // Heartbeats due now.
  std::vector<PeerFrame> tick(Time now);

  bool reachable(NodeId peer) const { return peer < n_ && reachable_[peer]; }
  double drop_rate() const { return drop_rate_; }
  std::uint64_t dropped() const { return dropped_; }

 private:
  bool drop();
  FaultReply apply_fault(const FaultRequest& r);
  std::vector<std::string> reach_names() const;

  NodeId self_;
  std::size_t n_;
  std::vector<std::string> names_;
  std::mt19937_64 rng_;
  Duration heartbeat_interval_;
  std::vector<bool> reachable_;
  double drop_rate_ = 0.0;
  LocalProgress local_{};
  std::vector<Time> last_sent_;
  std::vector<LocalProgress> peer_progress_;
  std::uint64_t dropped_ = 0;
};

}  // namespace kvpaxos
