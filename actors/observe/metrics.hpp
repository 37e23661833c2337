// NodeMetrics: the numbers one node exports on --listen-metrics-addr, and the
// text that exposes them (Prometheus text format 0.0.4).
//
// Writers are the node's threads: each actor runner stamps its heartbeat and
// publishes what its logic reports, the peer link counts bytes per peer, the
// durable acceptor times its fsyncs, the snapshot writer its saves, the front
// door counts and times the client requests it answers. The one
// reader is the metrics HTTP thread. Every field is a relaxed atomic: a scrape
// may see one counter a little ahead of another, never a torn value, and no
// writer ever waits for a reader (a slow scrape cannot slow Paxos). Nothing
// here allocates after construction except format_metrics.
#pragma once

#include <array>
#include <atomic>
#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <vector>

#include "messages/messages.hpp"
#include "messages/types.hpp"

namespace kvpaxos {

// Bucket upper bounds in seconds, shared by every latency histogram: 100 µs
// (a page-cache fsync) to 10 s (a stuck disk).
inline constexpr std::array<double, 16> kLatencyBucketsSeconds = {
    0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025,
    0.05,   0.1,     0.25,   0.5,   1.0,   2.5,   5.0,   10.0};

class Histogram {
 public:
  void observe(Duration d);
  // Per bucket (not cumulative); the last is +Inf.
  std::array<std::uint64_t, kLatencyBucketsSeconds.size() + 1> counts() const;
  double sum_seconds() const;

 private:
  std::array<std::atomic<std::uint64_t>, kLatencyBucketsSeconds.size() + 1> counts_{};
  std::atomic<std::uint64_t> sum_ns_{0};
};

// What the peer link measures per peer (by member id).
struct PeerMetrics {
  std::atomic<std::uint64_t> bytes_sent{0};
  std::atomic<std::uint64_t> bytes_received{0};
  std::atomic<std::uint64_t> send_failures{0};   // full queue or not connected
  std::atomic<std::int64_t> last_heard_ns{0};    // Clock time of the last frame let in; 0: never
  std::atomic<bool> member{false};               // a member other than this node, now
};

// ReplyCode ok .. permission_denied (messages.hpp; metrics.cpp checks it).
inline constexpr std::size_t kReplyCodes = 10;
inline constexpr std::size_t kMaxTrackedPeers = 64;  // = the bits of voters_mask

// What a client asked for, as the front door labels a request it answers:
// the ClientRequest ops, the other client messages, and `invalid` for a
// frame it could not decode or that no client may send. A fixed set, so the
// label's cardinality is bounded.
enum class ClientOp : std::uint8_t {
  get, put, append, delete_range, range, txn, member,  // ClientRequest, by OpKind
  status, watch, snapshot_save, fault, invalid,
};
inline constexpr std::size_t kClientOps = static_cast<std::size_t>(ClientOp::invalid) + 1;
const char* to_string(ClientOp op);

// Client requests the front door answered, by op and reply code, and how long
// each took from its receipt to its reply. The front door thread is the one
// writer; the metrics HTTP thread reads.
class ClientRequestMetrics {
 public:
  // `code` out of ReplyCode's range counts nowhere (it cannot come from this
  // node's own encoder).
  void count(ClientOp op, ReplyCode code);
  void observe(ClientOp op, Duration receipt_to_reply) {
    duration_[static_cast<std::size_t>(op)].observe(receipt_to_reply);
  }
  std::uint64_t requests(ClientOp op, ReplyCode code) const;
  const Histogram& duration(ClientOp op) const { return duration_[static_cast<std::size_t>(op)]; }

 private:
  std::array<std::array<std::atomic<std::uint64_t>, kReplyCodes>, kClientOps> requests_{};
  std::array<Histogram, kClientOps> duration_{};
};

struct NodeMetrics {
  // Set once before any thread starts; read-only after.
  NodeId self = 0;
  std::vector<std::string> peer_names;  // by member id; "" when unknown (the id is used)
  std::int64_t start_time_unix_s = 0;
  // CURVE handshakes the ZAP handler refused (the handler's own counter:
  // it serves every node of the ZeroMQ context, which for kvpaxosd is this
  // one); empty without keys, and then not exported.
  std::function<std::uint64_t()> auth_failures;

  // Liveness: Clock time (ns) of each actor's last loop iteration; 0 while
  // the actor is not running (it never started, or the node has no such actor).
  std::array<std::atomic<std::int64_t>, kMaxActor + 1> heartbeat_ns{};
  // Clock time (ns) an acceptor fsync began; 0 when none is in progress.
  std::atomic<std::int64_t> fsync_started_ns{0};
  Histogram fsync_duration;          // one group commit: write + fsync of a batch
  Histogram snapshot_save_duration;  // write + fsync + rename of one snapshot file

  // From the applier (published by its runner).
  std::atomic<std::uint64_t> decided_below{0};
  std::atomic<std::uint64_t> applied_below{0};
  std::atomic<std::uint64_t> forget_below{0};
  std::atomic<std::uint64_t> keys{0};
  std::atomic<std::uint64_t> sessions{0};
  std::atomic<std::uint64_t> retained_reply_bytes{0};
  std::atomic<std::uint64_t> leader{kNoNode};
  std::atomic<std::uint64_t> leader_changes{0};
  std::atomic<std::uint64_t> voters_mask{0};  // bit i: member i votes at applied_below
  std::atomic<std::uint64_t> snapshot_installs{0};
  std::atomic<bool> has_applier{false};
  std::array<std::atomic<std::uint64_t>, kReplyCodes> client_replies{};  // by ReplyCode
  // From the front door.
  ClientRequestMetrics client_requests;
  // From the proposer.
  std::atomic<std::uint64_t> proposals_pending{0};
  std::atomic<std::uint64_t> proposals_failed{0};
  std::atomic<std::uint64_t> campaigns{0};
  std::atomic<bool> has_proposer{false};

  // Member ids below kMaxTrackedPeers (ids only grow with membership
  // changes: a member with a higher id is not tracked, and counts as unheard).
  std::array<PeerMetrics, kMaxTrackedPeers> peers{};
};

// What an actor logic reports about itself for metrics; the runner copies
// it into NodeMetrics. Plain values: logic stays sans-I/O.
struct ApplierReport {
  InstanceId decided_below = 0;
  InstanceId applied_below = 0;
  InstanceId forget_below = 0;
  std::uint64_t keys = 0;
  std::uint64_t sessions = 0;
  std::uint64_t retained_reply_bytes = 0;
  NodeId leader = kNoNode;
  std::uint64_t voters_mask = 0;
  std::uint64_t snapshot_installs = 0;
  std::array<std::uint64_t, kReplyCodes> client_replies{};
};
struct ProposerReport {
  std::uint64_t pending = 0;     // instances it is trying to get decided now
  std::uint64_t rejections = 0;  // attempts (phase 1 or 2) rejected by a higher ballot
  std::uint64_t campaigns = 0;   // range phase 1 runs (one per leader change, normally)
};
struct LogicReport {
  std::optional<ApplierReport> applier;
  std::optional<ProposerReport> proposer;
};
void publish(NodeMetrics& m, const LogicReport& r);

// The process, from /proc/self (zeros where it cannot be read).
struct ProcessStats {
  double cpu_seconds = 0;
  std::uint64_t resident_bytes = 0;
  std::uint64_t open_fds = 0;
  std::uint64_t max_fds = 0;
};
ProcessStats read_process_stats();

// The exposition text of everything in `m` and `p`, at Clock time `now`.
std::string format_metrics(const NodeMetrics& m, const ProcessStats& p, Time now);

// /livez, /readyz: empty when healthy, else one line saying why not.
// Live: every running actor ticked within kStaleHeartbeat and no fsync has
// been in progress longer than kStuckFsync. Never depends on other nodes.
inline constexpr Duration kStaleHeartbeat = std::chrono::seconds(3);
inline constexpr Duration kStuckFsync = std::chrono::seconds(5);
std::string not_live_reason(const NodeMetrics& m, Time now);
// Ready: live, and a majority of the voters (this node counted if it votes)
// was heard from within kPeerSilence, and it has applied all but at most
// kMaxApplyBacklog of the instances it knows decided.
inline constexpr Duration kPeerSilence = std::chrono::seconds(2);
inline constexpr InstanceId kMaxApplyBacklog = 1000;
std::string not_ready_reason(const NodeMetrics& m, Time now);
bool has_quorum(const NodeMetrics& m, Time now);

std::int64_t clock_ns(Time t);

}  // namespace kvpaxos
