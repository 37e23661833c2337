// Node: one kvpaxos server, i.e. its actor threads wired together.
//
// A Node starts, in this process, an acceptor, a proposer, a learner and a
// peer link, and (for the key/value service) an applier and a front door.
// Each actor is a thread with its own sockets (actors/runtime/runner.hpp); they talk
// over inproc:// inside the node and through the peer links between nodes.
// Several Nodes can live in one process (tests): each gets its own inproc
// namespace. The Node object itself only starts, controls and stops threads;
// it is not thread-safe except where a method says so.
#pragma once

#include <atomic>
#include <functional>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include <zmq.hpp>

#include "actors/core/cluster_config.hpp"
#include "actors/net/peer_link.hpp"
#include "actors/paxos/join.hpp"
#include "actors/paxos/proposer.hpp"
#include "messages/result.hpp"

namespace kvpaxos {

class ActorThread;
class ZapHandler;
struct TransportSecurity;
class FrontDoorThread;
class SnapshotWriter;
class PeerLinkThread;
class PaxosPeer;
class MetricsHttpThread;
struct NodeMetrics;

// Each default is defined here only (kvpaxosd's flags take theirs from it);
// validate() says which field is out of its range, and what the range is.
struct NodeConfig {
  static constexpr InstanceId kMaxSnapshotEvery = 1'000'000'000;
  static constexpr std::size_t kMaxPipeline = 256;

  std::vector<Member> members;   // the whole cluster, this node included
  NodeId self = 0;               // an index into members (without `contact`)
  std::string client_endpoint;   // e.g. tcp://127.0.0.1:7201; empty: Paxos only
  // Where the node binds when that is not the address others reach it at
  // (kvpaxosd --listen-peer-addr, --listen-client-addr: tcp://0.0.0.0:7101,
  // or the address a host name in --cluster resolves to); empty: bind the
  // advertised endpoint itself.
  std::string listen_peer_endpoint;
  std::string listen_client_endpoint;
  bool fault_injection = false;
  // Unique per process for the nodes it hosts; prefixes the inproc endpoints.
  std::string inproc_namespace = "kvpaxos";
  std::uint64_t seed = 1;         // randomness of back-off and message drops
  ProposerOptions proposer_options{};
  Duration hole_timeout = std::chrono::milliseconds(200);
  // Durable state (acceptor log, snapshots) lives here; empty: memory only.
  std::string data_dir;
  InstanceId snapshot_every = 10'000;  // 1 to kMaxSnapshotEvery
  std::size_t pipeline = 2;  // the applier's own instances in flight at once, 1 to kMaxPipeline
  // Watches: the events kept for watches that start in the past or resume
  // after a fail-over (the older ones answer "compacted"), and how often an
  // idle watch hears the current revision.
  std::size_t watch_history_revisions = 100'000;
  std::size_t watch_history_bytes = 16 * 1024 * 1024;
  Duration watch_progress_interval = std::chrono::seconds(2);
  // A rebuilt node's proposer starts above this round (JoinBarrier).
  std::uint64_t initial_round = 0;
  // CURVE keys for every tcp link (actors/security/); null: plain tcp, for
  // loopback-only clusters and kvpaxosd --insecure.
  std::shared_ptr<const TransportSecurity> security;
  // A member added to a running cluster (kvpaxosd --initial-cluster-state
  // existing): `self` is its member id, and `contact` the configurations the
  // cluster told it at its first start (members is not used then). While
  // `joining` (no snapshot yet) its state must come from a peer's snapshot.
  std::optional<ConfigHistory> contact;
  bool joining = false;
  // Written into the data dir at the member's first start (MemberEntry).
  std::uint64_t member_incarnation = 0;
  // Announced on this node's peer connections; frames from a connection of
  // another cluster are dropped (0: announce and check none).
  std::uint64_t cluster_id = 0;
  // Where the metrics and health endpoint listens (HTTP, tcp://HOST:PORT,
  // actors/observe/http_server.hpp); empty: none.
  std::string metrics_endpoint;

  // This node's name and peer endpoint.
  const std::string& self_name() const {
    return contact ? contact->latest().find(self)->name : members.at(self).name;
  }
  const std::string& self_endpoint() const {
    return contact ? contact->latest().find(self)->peer_endpoint : members.at(self).endpoint;
  }
  // Where this node's peer and client ports are bound.
  const std::string& peer_listen_endpoint() const {
    return listen_peer_endpoint.empty() ? self_endpoint() : listen_peer_endpoint;
  }
  const std::string& client_listen_endpoint() const {
    return listen_client_endpoint.empty() ? client_endpoint : listen_client_endpoint;
  }

  Result<bool> validate() const {
    if (contact) {
      if (contact->entries.empty() || contact->latest().find(self) == nullptr ||
          contact->latest().find(self)->peer_endpoint.empty()) {
        return Error{"member " + std::to_string(self) + " is not in the configuration it was given"};
      }
    } else if (Result<bool> ok = validate_members(members); !ok.ok()) {
      return ok;
    }
    if (!contact && self >= members.size()) {
      return Error{"self is " + std::to_string(self) + "; allowed 0 to " +
                   std::to_string(members.size() - 1) + " (an index into members)"};
    }
    if (snapshot_every < 1 || snapshot_every > kMaxSnapshotEvery) {
      return Error{"snapshot_every is " + std::to_string(snapshot_every) + "; allowed 1 to " +
                   std::to_string(kMaxSnapshotEvery)};
    }
    if (pipeline < 1 || pipeline > kMaxPipeline) {
      return Error{"pipeline is " + std::to_string(pipeline) + "; allowed 1 to " +
                   std::to_string(kMaxPipeline)};
    }
    if (watch_history_revisions < 1 || watch_history_bytes < 1) {
      return Error{"the watch history must keep at least one revision and one byte"};
    }
    if (watch_progress_interval <= Duration::zero()) {
      return Error{"watch_progress_interval must be above 0"};
    }
    if (hole_timeout <= Duration::zero()) {
      const auto ms = std::chrono::duration_cast<std::chrono::milliseconds>(hole_timeout);
      return Error{"hole_timeout is " + std::to_string(ms.count()) + " ms; allowed above 0"};
    }
    return proposer_options.validate();
  }
};

// Before a node starts, on its own peer endpoint (the decisions are
// actors/paxos/join.hpp's; these run them on sockets and the clock).
//
// --first-start: listens on config.members[config.self]'s endpoint and runs
// a FirstStartSurvey: heartbeats to every peer (so nodes surveying at once
// hear each other) until a majority with this node was heard, a peer reports
// progress, or `wait` passed. `progress` gets a line about once a second.
// Fails if the endpoint cannot be bound.
Result<PeerSurvey> survey_peers(zmq::context_t& ctx, const NodeConfig& config, Duration wait,
                                const std::function<void(const std::string&)>& progress);

// --join: listens on this node's peer endpoint and runs a JoinSurvey: asks
// every peer's acceptor and proposer and waits up to `timeout` for all
// answers. `progress` is called about once a second with a line naming who
// has not answered yet. The error says why there is no barrier (silence,
// another node rebuilding or still repairing, the endpoint in use).
Result<JoinBarrier> gather_join_barrier(zmq::context_t& ctx, const NodeConfig& config,
                                        Duration timeout,
                                        const std::function<void(const std::string&)>& progress);
// kvpaxosd --initial-cluster-state existing, before a new member's first
// start: asks the nodes at `seeds` (peer endpoints) which member `name`,
// listening at `endpoint`, is, until one answers with its id and
// configurations, or `timeout` passed (or every seed refused for 3 s: the
// error is theirs, e.g. "no member named n4 in epoch 3"). `progress` gets a
// line about once a second. With `security`, over CURVE: this node's key
// must be its entry's (kvctl member add --peer-key), and the seeds' keys
// are their files in --peer-keys (seeds without one are not asked).
Result<MemberInfo> ask_membership(zmq::context_t& ctx, const std::string& name,
                                  const std::string& endpoint,
                                  const std::vector<Member>& seeds, Duration timeout,
                                  const std::function<void(const std::string&)>& progress,
                                  const TransportSecurity* security = nullptr);

// Creates the acceptor state of a rebuilt node in `data_dir`: the vote floor,
// durably, before the node can answer anyone.
Result<bool> write_vote_floor(const std::string& data_dir, InstanceId vote_floor,
                              std::uint64_t max_round);

class Node {
 public:
  // Binds every socket before returning, so a port in use is an error here.
  static Result<std::unique_ptr<Node>> start(zmq::context_t& ctx, NodeConfig config);
  ~Node();  // stops and joins every actor thread (within a second)
  Node(const Node&) = delete;
  Node& operator=(const Node&) = delete;

  const NodeConfig& config() const { return config_; }
  const PeerTrafficStats& traffic() const { return *traffic_; }
  // What the metrics endpoint exports (thread-safe: relaxed atomics).
  const NodeMetrics& metrics() const { return *metrics_; }
  // The metrics endpoint bound (a port 0 resolved); empty without one.
  std::string metrics_endpoint() const;
  // Where clients reach this node (a "*" port in the config resolved); empty
  // for a Paxos-only node.
  std::string client_endpoint() const;

  // The removal epoch once this node learned it was removed from the
  // cluster (a majority of the voters after it said so); 0 while a member.
  // Thread-safe. The node keeps running: its owner stops it.
  std::uint64_t removed_epoch() const;
  InstanceId removed_from() const;

  // A graceful stop (thread-safe): the applier proposes nothing more, tells
  // the other members (StepDown), and answers the requests it will not run
  // shutting_down, so clients and the lead move on at once. The node keeps
  // running, its acceptor voting, until its owner destroys it.
  void step_down();

  // Fault injection, for tests (thread-safe). `peers` are node ids; the node
  // itself is always reachable.
  void set_reachable(const std::vector<NodeId>& peers);
  void reach_all();
  void set_drop_rate(double rate);

  // The Paxos library view of this node (Start/Status/Done/Max/Min): only for
  // nodes started without a client endpoint (Paxos only).
  PaxosPeer& paxos();

 private:
  explicit Node(NodeConfig config);
  void send_control(Actor to, const std::string& body);

  NodeConfig config_;
  // Declared first, so destroyed last: the ZAP handler must outlive every
  // CURVE server socket, or libzmq would let any key in (zap_handler.hpp).
  std::shared_ptr<ZapHandler> zap_;
  std::unique_ptr<PeerTrafficStats> traffic_;
  std::unique_ptr<NodeMetrics> metrics_;  // outlives every thread that writes it
  std::mutex control_mu_;
  std::unique_ptr<zmq::socket_t> control_;          // PUSH to the peer link
  std::unique_ptr<zmq::socket_t> applier_control_;  // PUSH to the applier (step_down)
  std::unique_ptr<PaxosPeer> paxos_;
  std::vector<std::unique_ptr<ActorThread>> actors_;
  std::unique_ptr<PeerLinkThread> peer_link_;
  std::unique_ptr<FrontDoorThread> front_door_;
  std::unique_ptr<SnapshotWriter> snapshot_writer_;  // with --data-dir, for the applier
  std::unique_ptr<MetricsHttpThread> metrics_http_;  // with metrics_endpoint; stopped first
};

}  // namespace kvpaxos
