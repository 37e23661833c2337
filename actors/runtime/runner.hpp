// Runners: the threads and ZeroMQ sockets around the sans-I/O actor logic.
//
// Every actor of a node has an inbox, a PULL socket bound at
//   inproc://<namespace>/<node>/<actor>
// and a Postbox of PUSH sockets to the other local inboxes. A message between
// actors is two frames, [FrameHeader][Body]; a message for another node goes
// to the local peer link, which forwards it over tcp. A one-frame "$TERM" in
// an inbox stops the actor (as CZMQ's zactor does).
//
// Inside a node sends block rather than drop (no high-water mark): losing an
// Apply would stall the applier forever. Between nodes nothing ever blocks:
// a full or disconnected peer queue drops, and Paxos retransmits.
#pragma once

#include <array>
#include <condition_variable>
#include <deque>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <random>
#include <string>
#include <thread>

#include <zmq.hpp>

#include "actors/core/actor.hpp"
#include "actors/kv/front_door.hpp"
#include "actors/net/peer_link.hpp"
#include "actors/runtime/client_connections.hpp"
#include "actors/security/transport_security.hpp"
#include "actors/storage/record_log.hpp"

namespace kvpaxos {

std::string inproc_endpoint(const std::string& ns, NodeId node, Actor actor);

// Sends one actor message, [header][body]. Without `wait`, returns false
// instead of blocking (nothing was sent).
bool send_frames(zmq::socket_t& s, const std::string& header, const std::string& body,
                 bool wait = false);

// PUSH sockets from one actor thread to the local inboxes. Owned by, and used
// only on, that thread.
class Postbox {
 public:
  Postbox(zmq::context_t& ctx, std::string ns, NodeId self, Actor owner);

  // Encodes and sends; a message for another node goes to the local peer link.
  void send(const Outbound& m);
  void send_all(Outbox& out);
  // Forwards already-encoded frames to a local actor.
  void forward(Actor local, const std::string& header, const std::string& body);

 private:
  zmq::socket_t& socket_for(Actor local);

  zmq::context_t& ctx_;
  std::string ns_;
  NodeId self_;
  Actor owner_;
  std::array<std::unique_ptr<zmq::socket_t>, kMaxActor + 1> sockets_{};
};

// The inbox of an actor, bound on construction (so that the endpoint exists
// before any thread sends to it), plus the owner's PUSH used to stop it.
class Inbox {
 public:
  Inbox(zmq::context_t& ctx, const std::string& ns, NodeId node, Actor actor);
  zmq::socket_t& socket() { return pull_; }
  void request_stop();  // owner thread only

 private:
  zmq::socket_t pull_;
  zmq::socket_t stop_;
};

// A thread running one ActorLogic (acceptor, proposer, learner, applier).
class ActorThread {
 public:
  // A durable logic comes with the log its Writes go to (`to_disk`: fsync
  // them, else only write them); the thread persists them once per batch,
  // before it sends anything the batch produced.
  // With `metrics`, the thread stamps its heartbeat there, times its fsyncs
  // and publishes its logic's report() every 100 ms.
  ActorThread(zmq::context_t& ctx, std::string ns, NodeId self, Actor kind,
              std::unique_ptr<ActorLogic> logic, std::string node_name,
              std::unique_ptr<RecordLog> log = nullptr, bool to_disk = true,
              NodeMetrics* metrics = nullptr);
  ~ActorThread();
  ActorThread(const ActorThread&) = delete;
  ActorThread& operator=(const ActorThread&) = delete;

 private:
  void persist_or_die();
  void run();

  zmq::context_t& ctx_;
  std::string ns_;
  NodeId self_;
  Actor kind_;
  std::unique_ptr<ActorLogic> logic_;
  std::string node_name_;  // of its threads' log lines
  std::unique_ptr<RecordLog> log_;  // null: memory only
  bool to_disk_;
  NodeMetrics* metrics_;  // null: none kept
  Inbox inbox_;
  std::thread thread_;
};

// Writes the applier's snapshots under a data dir on a thread of its own, one
// at a time and in the order they were handed over, and answers each with a
// SnapshotSaved in the applier's inbox. A large state takes seconds to write
// and fsync; on the applier's thread every client would wait that long.
class SnapshotWriter {
 public:
  // With `metrics`, each save is timed there.
  SnapshotWriter(zmq::context_t& ctx, std::string ns, NodeId self, std::string dir,
                 std::string node_name, NodeMetrics* metrics = nullptr);
  ~SnapshotWriter();  // finishes the write in progress; the queued ones are dropped
  SnapshotWriter(const SnapshotWriter&) = delete;
  SnapshotWriter& operator=(const SnapshotWriter&) = delete;

  // Any thread.
  void save(InstanceId applied_below, std::string bytes);

 private:
  void run();

  zmq::context_t& ctx_;
  std::string ns_;
  NodeId self_;
  std::string dir_;
  std::string node_name_;  // of its thread's log lines
  NodeMetrics* metrics_;
  std::mutex mu_;
  std::condition_variable wake_;
  std::deque<std::pair<InstanceId, std::string>> queue_;
  bool stop_ = false;
  std::thread thread_;
};

// The front door: a ROUTER bound at the client endpoint, plus an inbox for
// the replies (ToClient) other actors address to it.
class FrontDoorThread {
 public:
  // Throws zmq::error_t when the endpoint cannot be bound (port in use).
  // With `security`, the port is a CURVE server (its ZAP policy registered),
  // and only connections with an admin key (kvpaxosd --admin-keys) may make
  // admin requests; without it every connection may (loopback or --insecure).
  FrontDoorThread(zmq::context_t& ctx, std::string ns, NodeId self, const std::string& endpoint,
                  bool fault_injection, const TransportSecurity* security,
                  std::string node_name, NodeMetrics* metrics = nullptr);
  ~FrontDoorThread();
  // The endpoint actually bound (resolves a "*" port).
  const std::string& endpoint() const { return bound_; }

 private:
  void run();
  bool on_client_message();  // false when none was waiting
  void send_to_client(const ToClient& m);

  zmq::context_t& ctx_;
  std::string ns_;
  NodeId self_;
  FrontDoor logic_;
  bool keyed_;
  std::string node_name_;  // of its threads' log lines
  NodeMetrics* metrics_;  // heartbeat and client_requests (through logic_)
  Inbox inbox_;
  zmq::socket_t router_;
  std::string bound_;
  std::unique_ptr<ClientConnections> connections_;
  std::unique_ptr<Postbox> postbox_;
  std::thread thread_;
};

// The peer link: a ROUTER bound at this node's peer endpoint, a DEALER to
// each other node, and an inbox for what local actors send to other nodes.
class PeerLinkThread {
 public:
  // Listens on `endpoint` and connects to the other members of `members`.
  // Throws zmq::error_t when the endpoint cannot be bound (port in use).
  // With `security`, every link is CURVE and each peer frame's sender is the
  // member its key belongs to: the link registers the peer-port policy with
  // `zap` (and the client port's, with `client_port`) from the keys of its
  // configurations, again whenever they change. Its
  // connections announce `cluster_id` (0: none), and frames from a
  // connection of another cluster are dropped.
  PeerLinkThread(zmq::context_t& ctx, std::string ns, NodeId self, const ConfigHistory& members,
                 const std::string& endpoint, std::uint64_t cluster_id, std::uint64_t seed,
                 PeerTrafficStats& stats, const TransportSecurity* security, ZapHandler* zap,
                 bool client_port, std::string node_name, NodeMetrics* metrics = nullptr);
  ~PeerLinkThread();

 private:
  void run();
  void on_local_message(std::vector<zmq::message_t> frames);
  bool on_peer_message();  // false when none was waiting
  // A frame a peer sent back on our connection to it; false when none waited.
  bool on_answer(NodeId peer);
  void send_to_peer(const PeerFrame& f);
  void log_refusals();
  void connect_dealer(NodeId peer);
  // Connects to members the link gained, closes the sockets of those it lost.
  void sync_dealers();
  void on_handshake_event(NodeId peer);
  std::string peer_name(NodeId peer) const;  // empty when not a member


  zmq::context_t& ctx_;
  std::string ns_;
  NodeId self_;
  PeerLink logic_;
  PeerTrafficStats& stats_;
  NodeMetrics* metrics_;  // heartbeat, and bytes, failures and last frame per peer
  void publish_peers();
  std::string node_name_;  // of its threads' log lines
  Inbox inbox_;
  zmq::socket_t router_;
  std::map<NodeId, std::unique_ptr<zmq::socket_t>> dealers_;  // every other member
  std::map<NodeId, std::string> endpoints_;  // where each dealer connected
  std::uint64_t members_generation_ = 0;     // of logic_.members() the dealers follow
  std::uint64_t cluster_id_;
  std::mt19937 salt_;  // of each connection's routing id
  bool retired_ = false;
  const TransportSecurity* security_;
  ZapHandler* zap_;
  bool client_port_;
  std::map<NodeId, std::vector<std::string>> dealer_keys_;  // the keys a dealer pins from
  bool authenticated_;  // CURVE: frames carry the sender's node id (User-Id)
  // Key rotation: while a peer has more than one accepted key, its DEALER
  // is watched (a socket monitor) and, when the handshake fails, connected
  // again pinning the peer's next key. By NodeId; only those watched.
  std::map<NodeId, std::unique_ptr<zmq::socket_t>> monitors_;
  std::map<NodeId, std::size_t> pinned_key_;
  std::uint64_t monitor_serial_ = 0;
  RefusedPeerFrames logged_;  // the refusals already logged
  Time next_refusal_log_{};
  std::unique_ptr<Postbox> postbox_;
  std::thread thread_;
};

}  // namespace kvpaxos
