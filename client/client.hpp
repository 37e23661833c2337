// Client: the C++ client library of kvpaxos.
//
// Talks to any node of the cluster over a ZeroMQ DEALER (docs/protocol.md).
// One request outstanding at a time: each call blocks until it has an answer.
// A request that times out at one node is retried, with the same (client id,
// seq), at the next node with a growing back-off, until the overall deadline;
// the nodes execute it exactly once however many copies arrive. Replies the
// client has received are acknowledged on its next request. With
// ClientOptions::learn_members_every, the client also reads the member list
// now and then and fails over to members it was never given.
// Not thread-safe: use one Client per thread.
#pragma once

#include <chrono>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include <zmq.hpp>

#include "client/endpoint_set.hpp"
#include "messages/key_file.hpp"
#include "messages/messages.hpp"
#include "messages/result.hpp"

namespace kvpaxos {

// CURVE on the client link (kvctl --server-key, --key): the cluster's client
// public key, pinned, and this client's own pair. More than one server key
// while the cluster's client key is being rotated: a node that presents
// another key fails the handshake, and the next key is tried there.
struct ClientCurve {
  std::vector<std::string> server_keys;  // Z85, tried in order
  CurveKey own;
};

struct ClientOptions {
  std::vector<std::string> endpoints;  // "127.0.0.1:7201" or full "tcp://..."
  std::optional<ClientCurve> curve;    // empty: plain tcp (a loopback or --insecure cluster)
  // Overall deadline of one call; after it the outcome is unknown.
  std::chrono::milliseconds deadline{5000};
  // How long to wait at one node before trying the next (grows to 1 s).
  std::chrono::milliseconds attempt_timeout{250};
  std::optional<ClientId> client_id;   // random when empty
  // Learning the member list (client/endpoint_set.hpp): when not zero, a
  // call first reads the configuration through the log (the member list op)
  // if the previous call failed over or this long has passed since the last
  // read, and the client tries the voters it names from then on (a member
  // op's own reply is taken in the same way). Zero (the
  // default): the client talks only to the endpoints given, as a caller
  // that pins a node (a test, a read from one replica) expects; and no call
  // costs a log instance it did not ask for.
  std::chrono::milliseconds learn_members_every{0};
};

// What kvctl and its bench learn the member list every (and after a call
// that failed over): a log instance per client every 10 s costs nothing
// next to the load, and a member added shows within seconds.
inline constexpr std::chrono::milliseconds kLearnMembersEvery{10000};

// How a call ended.
enum class Outcome {
  ok,        // the cluster executed the op exactly once; value holds Get's result
  unknown,   // no answer before the deadline: the op may or may not take effect
  rejected,  // a node refused the request (error says why); nothing was executed
};

struct CallResult {
  Outcome outcome = Outcome::unknown;
  std::string value;
  std::string error;  // set unless ok; names the endpoints tried
  // When ok: everything the reply carried (the store's revision, a range's
  // keys, a delete's count, a transaction's branch and responses).
  OpResult result;
  bool ok() const { return outcome == Outcome::ok; }
};

class NodeConnection;

class Client {
 public:
  Client(zmq::context_t& ctx, ClientOptions options);
  ~Client();
  Client(const Client&) = delete;
  Client& operator=(const Client&) = delete;

  CallResult get(const std::string& key);
  CallResult put(const std::string& key, const std::string& value);
  CallResult append(const std::string& key, const std::string& value);
  // Deletes `key`, or the keys in [key, range_end) (prefix_end(p) for a
  // prefix); result.count is how many were deleted.
  CallResult del(const std::string& key, const std::string& range_end = {});
  // The keys in [key, range_end) (empty: key alone), in byte order, at most
  // `limit` (0: no limit); flags kRangeKeysOnly, kRangeCountOnly. result.kvs,
  // result.count (every key in range), result.more.
  CallResult range(const std::string& key, const std::string& range_end = {},
                   std::uint64_t limit = 0, std::uint8_t flags = 0);
  // If every compare holds, runs `success`, else `failure`, as one op:
  // result.succeeded and result.responses (one per op that ran).
  CallResult txn(std::vector<Compare> compares, std::vector<RequestOp> success,
                 std::vector<RequestOp> failure);
  // A membership change (or MemberChangeKind::list) through the log, exactly
  // once. ok() with result.member.error set: the cluster refused the change
  // (a stale expected_epoch, a change still pending, a rule it breaks) and
  // nothing changed; result.member carries the configuration either way.
  CallResult member(MemberChange change);
  // Any request: its op fields are sent; client_id, seq and ack are this client's.
  CallResult call(ClientRequest request);

  // Not through the log: one node's own view (kvctl status), one attempt.
  // status and fault read nothing of the client but its options, so they
  // may run on several threads at once (kvctl asks every member together).
  Result<StatusReply> status(const std::string& endpoint, std::chrono::milliseconds timeout);
  // One chunk of a snapshot of one node's state, for backup (kvctl snapshot
  // save; docs/protocol.md "Snapshots for backup"), one attempt. A reply
  // with a code other than ok is an Error carrying the node's reason.
  Result<SnapshotSaveReply> snapshot_chunk(const std::string& endpoint,
                                           const SnapshotSaveRequest& request,
                                           std::chrono::milliseconds timeout);
  // Fault injection on one node (kvctl fault).
  Result<FaultReply> fault(const std::string& endpoint, const FaultRequest& request,
                           std::chrono::milliseconds timeout);

  ClientId id() const { return id_; }
  // The endpoints tried, in order (HOST:PORT): those given, and what
  // learning the member list added and dropped.
  const std::vector<std::string>& endpoints() const { return endpoints_.endpoints(); }

 private:
  // Sends one request (seq, ack and client id set here, unless it is the
  // session's unanswered opening, sent again as it was), failing over
  // between the endpoints until `deadline` passes.
  CallResult send(ClientRequest request, std::chrono::milliseconds deadline);
  // The copies of one request and the wait for its reply.
  CallResult transmit(const ClientRequest& request, std::chrono::milliseconds deadline);
  // Sends the session's opening request (seq 1): the unanswered one again,
  // else a get of "". Not ok: the session did not open.
  CallResult open_session();
  // After seq 1 of the current session was sent: a refused one (it ran
  // nowhere) leaves no session, so the next call starts a new one.
  void settle_opening(const ClientRequest& sent, const CallResult& result);
  void start_session();
  // The outcome of the reply to our outstanding request.
  CallResult finish(OpKind op, std::uint64_t seq, const std::string& endpoint, ClientReply& reply);

  zmq::context_t& ctx_;
  ClientOptions options_;
  ClientId id_;
  std::uint64_t next_seq_ = 1;
  // Sessions (docs/protocol.md, section 5): only seq 1 opens one. Open once
  // a reply to seq 1 arrived (the node ran it). A seq 1 that got no answer
  // may have run, so it is kept here and sent again, the same bytes, before
  // anything else; next_seq_ is then 2. Invariant: session_open_ and
  // unanswered_opening_ are never both set.
  bool session_open_ = false;
  std::optional<ClientRequest> unanswered_opening_;
  std::uint64_t acked_ = 0;
  EndpointSet endpoints_;
  std::size_t current_ = 0;  // index into endpoints_ of the one to try first
  std::size_t server_key_ = 0;  // index into curve->server_keys: the one that last worked
  // Connected to endpoints[current_] while it answers; replaced on fail-over
  // so that late replies from a slow node do not pile up.
  std::unique_ptr<NodeConnection> connection_;
  // Learning the member list: whether a call failed over since the last
  // read, and when that was (the client's construction before the first).
  bool failed_over_ = false;
  std::chrono::steady_clock::time_point learned_at_;
  bool learn_members_due() const;
  void learn_members();
  // Adopts the endpoints `config` names (EndpointSet::learn), keeping the
  // one tried first where it still is.
  void take_in(const Config& config);
};

// A DEALER to one node, watching its handshake (a ZeroMQ socket monitor) so
// that a node refusing our key is an error that says so, not a timeout.
class NodeConnection {
 public:
  // Throws zmq::error_t for an endpoint libzmq cannot parse.
  NodeConnection(zmq::context_t& ctx, const std::string& endpoint,
                 const std::optional<ClientCurve>& curve, std::size_t server_key = 0);
  ~NodeConnection();
  NodeConnection(const NodeConnection&) = delete;
  NodeConnection& operator=(const NodeConnection&) = delete;

  void send(const std::string& frame);
  struct Received {
    std::optional<std::string> frame;  // empty on timeout or a failed handshake
    std::string handshake_error;       // set when the node refused the handshake
    bool key_refused = false;          // ... because it does not accept our key
  };
  // Waits up to `timeout` for one frame; a signal ends the wait early, as a
  // timeout.
  Received receive(std::chrono::milliseconds timeout);

 private:
  Received wait_for_frame(std::chrono::milliseconds timeout);  // throws zmq::error_t on EINTR
  // A handshake error, or empty; sets key_refused_ when the node refused our key.
  std::string read_monitor_event();

  std::string endpoint_;
  bool keyed_;
  zmq::socket_t socket_;
  zmq::socket_t monitor_;
  bool handshake_done_ = false;
  bool key_refused_ = false;
};

// "127.0.0.1:7201" -> "tcp://127.0.0.1:7201"; full endpoints pass through.
std::string client_endpoint(const std::string& host_port);

}  // namespace kvpaxos
