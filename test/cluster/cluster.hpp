// In-process clusters for the seed scenarios: every node's actor threads in
// this test process, nodes talking over inproc:// endpoints, with the peer
// link's fault injection for partitions, deaf peers and unreliable networks.
//
// Also the Paxos-library checks the seed's tests use (ndecided, waitn,
// waitmajority), written so that every look at an instance also checks the
// safety property: all peers that decided it report one and the same value.
#pragma once

#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <vector>

#include <gtest/gtest.h>
#include <zmq.hpp>

#include "actors/runtime/node.hpp"
#include "actors/runtime/paxos_peer.hpp"

namespace kvpaxos::testing {

// Sanitized builds: memory figures (RSS) are reported, not asserted, where the
// sanitizer's allocator holds freed blocks (ThreadSanitizer's, which
// malloc_trim does not reach) or pads every block (AddressSanitizer's).
#if defined(__SANITIZE_THREAD__)
inline constexpr bool kThreadSanitizer = true;
#elif defined(__has_feature)
#if __has_feature(thread_sanitizer)
inline constexpr bool kThreadSanitizer = true;
#else
inline constexpr bool kThreadSanitizer = false;
#endif
#else
inline constexpr bool kThreadSanitizer = false;
#endif
#if defined(__SANITIZE_ADDRESS__)
inline constexpr bool kAddressSanitizer = true;
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
inline constexpr bool kAddressSanitizer = true;
#else
inline constexpr bool kAddressSanitizer = false;
#endif
#else
inline constexpr bool kAddressSanitizer = false;
#endif
inline constexpr bool kSanitized = kThreadSanitizer || kAddressSanitizer;

struct ClusterOptions {
  std::size_t nodes = 3;
  bool kv_service = false;     // applier + front door on tcp://127.0.0.1:<ephemeral>
  std::uint64_t seed = 1;
  ProposerOptions proposer_options{};
  // The watch event history each node keeps (NodeConfig's default if 0).
  std::size_t watch_history_bytes = 0;
};

class Cluster {
 public:
  explicit Cluster(ClusterOptions options);
  ~Cluster();

  std::size_t size() const { return nodes_.size(); }
  Node& node(std::size_t i) { return *nodes_.at(i); }
  PaxosPeer& peer(std::size_t i) { return nodes_.at(i)->paxos(); }
  // Client endpoints (kv_service only), e.g. "tcp://127.0.0.1:40123".
  const std::vector<std::string>& client_endpoints() const { return client_endpoints_; }
  zmq::context_t& context() { return ctx_; }

  // Fault injection. Unlike Node::set_reachable (which only queues the change
  // for the peer link), each of these returns once every node concerned has
  // applied it: the peer link answers the change like it answers `kvctl fault`.
  // So a test may propose right after a partition() and rely on it, e.g. to
  // assert that a minority decides nothing. Thread-safe; throws
  // std::runtime_error when a node does not answer within 30 s.
  //
  // Each group can talk only among itself; nodes in no group hear nobody.
  void partition(const std::vector<std::vector<NodeId>>& groups);
  void heal();
  // One node only: it exchanges peer messages with `peers` and no one else
  // ({} makes it deaf and mute). The other nodes' settings are unchanged.
  void set_reachable(NodeId node, const std::vector<NodeId>& peers);
  void reach_all(NodeId node);
  // Unreliable: each peer message, request or reply, is lost with
  // probability `drop_rate` (the seed's "about 10-20 %"). The peer link drops
  // on send and again on receive, so each node is set to the per-side rate
  // 1 - sqrt(1 - drop_rate); setting drop_rate on both ends would lose
  // 1 - (1 - drop_rate)^2 of the messages (28 % for 15 %).
  void set_unreliable(bool unreliable, double drop_rate = 0.15);
  // Peer messages sent by all nodes (Prepare/Promise/Accept/Accepted/Decided).
  std::uint64_t paxos_messages_sent() const;

 private:
  FaultReply apply_fault(NodeId node, const FaultRequest& request);
  FaultReply apply_fault_inproc(NodeId node, const FaultRequest& request);
  FaultReply apply_fault_tcp(NodeId node, const FaultRequest& request);

  ClusterOptions options_;
  std::string ns_;
  zmq::context_t ctx_;
  std::vector<std::unique_ptr<Node>> nodes_;
  std::vector<std::string> client_endpoints_;

  // Fault-injection channel, guarded by fault_mu_. Paxos-only nodes have no
  // front door, so the harness binds a PULL where the front door's inbox
  // would be (the peer link sends its FaultReply there) and talks to the
  // peer link's inbox directly; kv nodes are reached through their front
  // door over tcp, exactly as kvctl does.
  std::mutex fault_mu_;
  std::uint64_t next_fault_ = 1;
  std::vector<std::unique_ptr<zmq::socket_t>> fault_to_;     // PUSH or DEALER, per node
  std::vector<std::unique_ptr<zmq::socket_t>> fault_from_;   // PULL per node (Paxos only)
};

// ------------------------------------------------------------ Paxos checks

// Generous: a decision normally takes milliseconds, but the suite may run on a
// loaded 2-core machine under a sanitizer.
inline constexpr std::chrono::seconds kDecisionDeadline{30};

// One instance as every peer reports it (the seed's Status() on each peer).
struct InstanceView {
  std::int64_t seq = 0;
  std::size_t decided = 0;
  std::size_t forgotten = 0;
  std::optional<std::string> value;  // what the decided peers report
  bool conflict = false;             // two peers decided different values
  std::vector<InstanceState> states; // by peer
  std::string describe() const;      // "seq 3: n0=decided "x" n1=pending ..."
};

InstanceView inspect(Cluster& cluster, std::int64_t seq);
// The seed's ndecided: how many peers decided `seq`. Records a test failure
// when decided peers disagree (a safety violation).
std::size_t ndecided(Cluster& cluster, std::int64_t seq);
// The seed's waitn: polls (from 1 ms, backing off to 20 ms) until at least
// `wanted` peers decided `seq`. Fails on disagreement or at the deadline.
::testing::AssertionResult wait_decided(Cluster& cluster, std::int64_t seq, std::size_t wanted,
                                        std::chrono::milliseconds deadline = kDecisionDeadline);
::testing::AssertionResult wait_majority(Cluster& cluster, std::int64_t seq,
                                         std::chrono::milliseconds deadline = kDecisionDeadline);
// wait_decided on every peer, then the decided value; nullopt (and a test
// failure) when it does not come.
std::optional<std::string> wait_value(Cluster& cluster, std::int64_t seq,
                                      std::chrono::milliseconds deadline = kDecisionDeadline);
// Every instance in [from, to]: all peers that decided it agree.
::testing::AssertionResult agreement(Cluster& cluster, std::int64_t from, std::int64_t to);
// Polls `condition` (same back-off) until it holds or the deadline passes.
bool eventually(const std::function<bool()>& condition,
                std::chrono::milliseconds deadline = kDecisionDeadline);

// Minimal Paxos-library aliases for readability in tests.
std::vector<std::int64_t> mins(Cluster& cluster);
std::vector<std::int64_t> maxes(Cluster& cluster);

}  // namespace kvpaxos::testing
