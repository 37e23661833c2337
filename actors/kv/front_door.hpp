// FrontDoor: where clients come in.
//
// The logic decodes and validates one client frame (routed by a ZeroMQ ROUTER
// identity) and decides where it goes: a ClientRequest to the applier, a
// StatusRequest to the applier, a SnapshotSaveRequest to the applier (only
// from an admin: with keys, a key of kvpaxosd --admin-keys), a FaultRequest
// to the peer link (only when the node runs with --fault-injection). Anything malformed is answered at once
// with an ErrorReply naming the problem; nothing else changes.
// The runner (FrontDoorThread) owns the ROUTER socket; ToClient messages
// addressed to the front door are sent back through it, then passed to
// on_reply.
//
// Admission control: a ClientRequest counts as in flight from the moment it
// is admitted until a reply for its client with an equal or higher seq goes
// out (a client has one request outstanding; an older one the applier
// replaced is released with the newer one's reply). A frame that would take
// its connection (routing id) past limits.connection_bytes, or the node past
// limits.node_bytes, is refused with an ErrorReply `overloaded` before it is
// even decoded, so a client that does not wait for replies cannot queue
// gigabytes in the applier, the proposer and the acceptors. A connection or
// node with nothing in flight always gets one request in, whatever its size.
//
// Metrics (with set_metrics): every request the front door answers, counted
// by op and reply code when its reply goes out (on_reply), and timed from
// the `now` of its frame to the `now` of its reply where the reply names the
// request: a ClientRequest's (client, seq), and the front door's own refusal
// of the frame it was just given (the runner sends that before it reads the
// next frame). Replies that name no request (StatusReply, FaultReply,
// SnapshotSaveReply, the WatchResponse to a create) are counted, not timed;
// watch events and progress notices are not requests answered.
//
// Invariant: node_bytes_ == sum of connection_bytes_ == sum of in_flight_.
#pragma once

#include <cstddef>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <unordered_map>
#include <utility>

#include "actors/observe/metrics.hpp"
#include "messages/codec.hpp"
#include "messages/kv_op.hpp"

namespace kvpaxos {

struct AdmissionLimits {
  // Two requests of the largest size: one outstanding plus its retry.
  std::size_t connection_bytes = 2 * kMaxClientFrameBytes;
  // What the node queues for all clients together. At the ~50 MB/s a node
  // here applies 16 MiB values, 128 MiB drain in under 3 s.
  std::size_t node_bytes = 128 * 1024 * 1024;
  // Charged per request on top of its frame, so that many tiny requests are
  // bounded in number too (the bookkeeping of one costs about this much).
  std::size_t request_overhead_bytes = 128;
};

// ZMQ_RCVHWM of the client ROUTER, in messages per connection. A client has
// one request outstanding (plus a retry), and the front door drains the
// socket as fast as it decodes; a deeper queue would only let libzmq hold
// up to this many frames of 16 MiB per connection before the door sees them.
inline constexpr int kClientRecvHwm = 16;

class FrontDoor {
 public:
  FrontDoor(NodeId self, bool fault_injection, AdmissionLimits limits = {})
      : self_(self), fault_injection_(fault_injection), limits_(limits) {}

  // One client frame. Appends either a message for an actor or a ToClient
  // (addressed to the front door itself) with an immediate error reply.
  // `admin`: the connection may make admin requests, membership changes and
  // snapshot saves (the runner decides from the key it came with; without
  // keys every connection may).
  // `now`: when the frame was received.
  void on_client_frame(std::string route, std::string_view body, Outbox& out, bool admin = true,
                       Time now = {});
  // A client message of `parts` frames (not one body): refused as bad_request.
  void on_malformed_message(std::string route, std::size_t parts, Outbox& out, Time now = {});
  // The node runs with keys: a member add must carry the new member's
  // public key (peers let it in by the key of its entry, nothing else).
  void set_peer_keys_required(bool on) { peer_keys_required_ = on; }
  // A reply just sent (at `now`): releases the requests it answers, and
  // counts it in the metrics.
  void on_reply(const ToClient& reply, Time now = {});
  // Where to count and time requests (owned by the caller, outlives this);
  // nullptr: nowhere.
  void set_metrics(ClientRequestMetrics* metrics) { metrics_ = metrics; }

  // Malformed frames seen so far (for logs and tests).
  std::uint64_t rejected() const { return rejected_; }
  std::uint64_t overloaded() const { return overloaded_; }
  std::size_t bytes_in_flight() const { return node_bytes_; }
  std::size_t bytes_in_flight(const std::string& route) const;

 private:
  // What a request asked for and when its frame came in.
  struct Receipt {
    ClientOp op = ClientOp::invalid;
    Time received{};
  };
  struct InFlight {
    std::string route;
    std::size_t bytes = 0;
    Receipt receipt;
  };
  // An ErrorReply to the frame `of` at once; nothing else changes.
  void reject(Receipt of, std::string route, ReplyCode code, std::string why, Outbox& out);
  void on_client_request(std::string route, ClientRequest& r, std::size_t charge, Outbox& out,
                         bool admin, Time now);
  void on_snapshot_save(std::string route, const SnapshotSaveRequest& m, bool admin, Outbox& out,
                        Time now);
  void count_reply(const ToClient& reply, Time now);
  // Empty when a frame of `bytes` from `route` may come in; else why not.
  std::string admission_refusal(const std::string& route, std::size_t bytes) const;
  void admit(const std::string& route, const ClientRequest& r, std::size_t bytes, Time now);
  void release(std::map<std::pair<ClientId, std::uint64_t>, InFlight>::iterator it);
  void check_invariants() const;

  NodeId self_;
  bool fault_injection_;
  bool peer_keys_required_ = false;
  AdmissionLimits limits_;
  std::uint64_t rejected_ = 0;
  std::uint64_t overloaded_ = 0;
  std::map<std::pair<ClientId, std::uint64_t>, InFlight> in_flight_;  // by (client, seq)
  std::unordered_map<std::string, std::size_t> connection_bytes_;     // by route
  std::size_t node_bytes_ = 0;
  ClientRequestMetrics* metrics_ = nullptr;
  std::optional<Receipt> refusal_;  // the frame the front door answered itself, its reply next
};

// A ClientRequest is well formed for execution: ids, sizes. Empty when valid.
std::string validate(const ClientRequest& r);
std::string validate(const WatchRequest& r);

// An encoded KvOp another node forwarded (ForwardOps): decoded and checked
// exactly as the front door checks a ClientRequest, and with no trailing
// bytes (a batch is built by concatenating ops, so one stray byte would make
// the whole log entry undecodable on every replica). No-ops are refused: only
// client ops are forwarded.
Result<KvOp> validate_forwarded_op(std::string_view bytes);

}  // namespace kvpaxos
