#include "client/client.hpp"

#include <algorithm>
#include <atomic>
#include <cassert>
#include <cerrno>
#include <cstring>
#include <limits>
#include <random>
#include <thread>

#include "messages/codec.hpp"

namespace kvpaxos {
namespace {

constexpr std::chrono::milliseconds kMaxAttemptTimeout{1000};
constexpr std::chrono::milliseconds kFirstOverloadBackoff{20};
constexpr std::chrono::milliseconds kLearnMembersDeadline{2000};

using SteadyClock = std::chrono::steady_clock;

ClientId random_client_id() {
  std::random_device rd;
  std::uniform_int_distribution<ClientId> dist(1, ~ClientId{0});
  return dist(rd);
}

std::atomic<std::uint64_t> next_monitor{0};

// What a failed handshake means, in words that say what to check.
std::string handshake_error(const std::string& endpoint, bool keyed, std::uint16_t event,
                            std::uint32_t value) {
  if (!keyed) {
    return "the node at " + endpoint + " requires CURVE keys: give --server-key (the cluster's "
           "client public key) and --key (this client's .key_secret), or set KVCTL_SERVER_KEY "
           "and KVCTL_KEY";
  }
  if (event == ZMQ_EVENT_HANDSHAKE_FAILED_AUTH) {
    return "the node at " + endpoint + " refused our key (ZAP status " + std::to_string(value) +
           "): is kvctl's --key among the node's --client-keys?";
  }
  if (value == ZMQ_PROTOCOL_ERROR_ZMTP_MECHANISM_MISMATCH) {
    return "the node at " + endpoint + " does not use CURVE (it runs without keys); leave out "
           "--server-key and --key";
  }
  return "the CURVE handshake with " + endpoint + " failed (" +
         (event == ZMQ_EVENT_HANDSHAKE_FAILED_PROTOCOL ? "protocol error" : "no detail") +
         "): is --server-key the public key of the nodes' --client-key?";
}

// Waits up to `timeout` for one frame on a socket; empty when none arrived.
std::optional<std::string> receive_frame(zmq::socket_t& s, std::chrono::milliseconds timeout) {
  s.set(zmq::sockopt::rcvtimeo, static_cast<int>(std::min<std::chrono::milliseconds::rep>(
                                    std::max<std::chrono::milliseconds::rep>(timeout.count(), 0),
                                    std::numeric_limits<int>::max())));
  zmq::message_t msg;
  if (!s.recv(msg)) return std::nullopt;
  // A multi-frame reply is not ours to read; drain it.
  while (msg.more()) {
    zmq::message_t rest;
    if (!s.recv(rest, zmq::recv_flags::dontwait)) break;
  }
  return msg.to_string();
}

std::string join(const std::vector<std::string>& parts, const std::string& sep = ",") {
  std::string out;
  for (const std::string& p : parts) {
    if (!p.empty()) out += (out.empty() ? "" : sep) + p;
  }
  return out;
}

std::string seconds_text(std::chrono::milliseconds d) {
  if (d.count() % 1000 == 0) return std::to_string(d.count() / 1000) + "s";
  return std::to_string(d.count()) + "ms";
}

// One request, one reply, one node: for status and fault.
Result<Body> exchange(zmq::context_t& ctx, const std::string& endpoint,
                      const std::optional<ClientCurve>& curve, const Body& request,
                      std::chrono::milliseconds timeout) {
  const std::size_t keys = curve ? curve->server_keys.size() : 1;
  NodeConnection::Received got;
  for (std::size_t key = 0; key < keys; ++key) {
    std::unique_ptr<NodeConnection> connection;
    try {
      connection = std::make_unique<NodeConnection>(ctx, client_endpoint(endpoint), curve, key);
    } catch (const zmq::error_t& e) {
      return Error{"cannot connect to '" + endpoint + "': " + e.what() + " (expected HOST:PORT)"};
    }
    connection->send(encode(request));
    got = connection->receive(timeout);
    if (got.handshake_error.empty() || got.key_refused) break;
  }
  if (!got.handshake_error.empty()) return Error{got.handshake_error};
  std::optional<std::string>& raw = got.frame;
  if (!raw) {
    return Error{"no reply from " + endpoint + " within " + seconds_text(timeout) +
                 "; is kvpaxosd running there?"};
  }
  Result<Body> body = decode(*raw, kMaxClientFrameBytes);
  if (!body.ok()) return Error{"undecodable reply from " + endpoint + ": " + body.error()};
  if (auto* e = std::get_if<ErrorReply>(&body.value())) {
    return Error{endpoint + " refused the request (" + to_string(e->code) + "): " + e->error};
  }
  return body;
}

}  // namespace

std::string client_endpoint(const std::string& host_port) {
  if (host_port.find("://") != std::string::npos) return host_port;
  return "tcp://" + host_port;
}

NodeConnection::NodeConnection(zmq::context_t& ctx, const std::string& endpoint,
                               const std::optional<ClientCurve>& curve, std::size_t server_key)
    : endpoint_(endpoint.substr(endpoint.find("://") == std::string::npos
                                    ? 0
                                    : endpoint.find("://") + 3)),
      keyed_(curve.has_value()),
      socket_(ctx, zmq::socket_type::dealer),
      monitor_(ctx, zmq::socket_type::pair) {
  socket_.set(zmq::sockopt::linger, 0);
  socket_.set(zmq::sockopt::maxmsgsize, static_cast<std::int64_t>(kMaxClientFrameBytes));
  if (curve) make_curve_client(socket_, curve->own, curve->server_keys.at(server_key));
  const std::string monitor_endpoint =
      "inproc://kvpaxos-client-monitor-" + std::to_string(next_monitor.fetch_add(1));
  monitor_.set(zmq::sockopt::linger, 0);
  if (zmq_socket_monitor(socket_.handle(), monitor_endpoint.c_str(),
                         ZMQ_EVENT_HANDSHAKE_SUCCEEDED | ZMQ_EVENT_HANDSHAKE_FAILED_AUTH |
                             ZMQ_EVENT_HANDSHAKE_FAILED_PROTOCOL |
                             ZMQ_EVENT_HANDSHAKE_FAILED_NO_DETAIL) != 0) {
    throw zmq::error_t();
  }
  monitor_.connect(monitor_endpoint);
  socket_.connect(client_endpoint(endpoint));
}

NodeConnection::~NodeConnection() { (void)zmq_socket_monitor(socket_.handle(), nullptr, 0); }

void NodeConnection::send(const std::string& frame) {
  socket_.send(zmq::buffer(frame), zmq::send_flags::none);
}

// A monitor event is two frames: [u16 event, u32 value][the endpoint].
std::string NodeConnection::read_monitor_event() {
  zmq::message_t event;
  if (!monitor_.recv(event, zmq::recv_flags::dontwait)) return {};
  zmq::message_t address;
  if (event.more()) (void)monitor_.recv(address, zmq::recv_flags::dontwait);
  if (event.size() < 6) return {};
  std::uint16_t id = 0;
  std::uint32_t value = 0;
  std::memcpy(&id, event.data(), sizeof id);
  std::memcpy(&value, static_cast<const char*>(event.data()) + 2, sizeof value);
  if (id == ZMQ_EVENT_HANDSHAKE_SUCCEEDED) {
    handshake_done_ = true;
    // Nobody reads the monitor from now on, and libzmq's I/O thread would
    // block once its queue filled (one event per reconnect): stop it. A
    // node that later presents another key shows as timeouts here, and as
    // a handshake error on the next connection.
    (void)zmq_socket_monitor(socket_.handle(), nullptr, 0);
    return {};
  }
  key_refused_ = id == ZMQ_EVENT_HANDSHAKE_FAILED_AUTH;
  return handshake_error(endpoint_, keyed_, id, value);
}

// Until the handshake has succeeded, waits on the socket and its monitor
// together; after that, in one blocking receive (zmq::poll would cost
// several more system calls per request: it re-reads ZMQ_EVENTS, a poll()
// each, before and after).
NodeConnection::Received NodeConnection::receive(std::chrono::milliseconds timeout) {
  try {
    return wait_for_frame(timeout);
  } catch (const zmq::error_t& e) {
    // A signal (kvctl watch's SIGINT) is not an error of the node: as a
    // timeout, and the caller looks at what the signal asked for.
    if (e.num() != EINTR) throw;
    return {};
  }
}

NodeConnection::Received NodeConnection::wait_for_frame(std::chrono::milliseconds timeout) {
  const auto end = SteadyClock::now() + timeout;
  while (!handshake_done_) {
    const auto left = std::chrono::ceil<std::chrono::milliseconds>(end - SteadyClock::now());
    if (left.count() <= 0) return {};
    zmq::pollitem_t items[] = {{socket_.handle(), 0, ZMQ_POLLIN, 0},
                               {monitor_.handle(), 0, ZMQ_POLLIN, 0}};
    zmq::poll(items, 2, left);
    if ((items[1].revents & ZMQ_POLLIN) != 0) {
      if (std::string failed = read_monitor_event(); !failed.empty()) {
        return {{}, failed, key_refused_};
      }
    }
    if ((items[0].revents & ZMQ_POLLIN) != 0) return {receive_frame(socket_, timeout), {}};
  }
  const auto left = std::chrono::ceil<std::chrono::milliseconds>(end - SteadyClock::now());
  return {receive_frame(socket_, std::max(left, std::chrono::milliseconds(0))), {}};
}

Client::Client(zmq::context_t& ctx, ClientOptions options)
    : ctx_(ctx),
      options_(std::move(options)),
      id_(options_.client_id.value_or(random_client_id())),
      endpoints_(options_.endpoints),
      learned_at_(SteadyClock::now()) {}

Client::~Client() = default;

CallResult Client::get(const std::string& key) {
  return call(ClientRequest{.op = OpKind::get, .key = key});
}
CallResult Client::put(const std::string& key, const std::string& value) {
  return call(ClientRequest{.op = OpKind::put, .key = key, .value = value});
}
CallResult Client::append(const std::string& key, const std::string& value) {
  return call(ClientRequest{.op = OpKind::append, .key = key, .value = value});
}
CallResult Client::del(const std::string& key, const std::string& range_end) {
  return call(ClientRequest{.op = OpKind::delete_range, .key = key, .range_end = range_end});
}
CallResult Client::range(const std::string& key, const std::string& range_end,
                         std::uint64_t limit, std::uint8_t flags) {
  return call(ClientRequest{
      .op = OpKind::range, .key = key, .range_end = range_end, .limit = limit, .flags = flags});
}
CallResult Client::txn(std::vector<Compare> compares, std::vector<RequestOp> success,
                       std::vector<RequestOp> failure) {
  return call(ClientRequest{.op = OpKind::txn,
                            .compares = std::move(compares),
                            .success = std::move(success),
                            .failure = std::move(failure)});
}

CallResult Client::member(MemberChange change) {
  return call(ClientRequest{.op = OpKind::member, .member = std::move(change)});
}

CallResult Client::call(ClientRequest request) {
  const OpKind op = request.op;
  if (endpoints_.endpoints().empty()) return {Outcome::rejected, {}, "no endpoints given"};
  if (request.key.size() > kMaxKeyBytes) {
    return {Outcome::rejected, {}, "key exceeds " + std::to_string(kMaxKeyBytes) + " bytes"};
  }
  if (request.value.size() > kMaxValueBytes) {
    return {Outcome::rejected, {}, "value exceeds " + std::to_string(kMaxValueBytes) + " bytes"};
  }
  // Not as a session's first request (that one is a get, below); and first,
  // since a reply that the session expired starts a new session.
  // A member op's reply carries the configuration itself.
  if (session_open_ && op != OpKind::member && learn_members_due()) learn_members();
  if (!session_open_ && (unanswered_opening_ || op != OpKind::get)) {
    CallResult opened = open_session();
    if (!opened.ok()) {
      return {Outcome::rejected, {}, "could not open a session, the op was not sent: " + opened.error};
    }
  }
  CallResult r = send(std::move(request), options_.deadline);
  if (op == OpKind::member && r.ok() && options_.learn_members_every.count() > 0) {
    take_in(r.result.member.config);
  }
  return r;
}

// A session opens with a get: once the nodes evict a session, a late copy
// of its seq 1 runs again, harmless for a get (docs/architecture.md,
// "Bounded sessions").
CallResult Client::open_session() {
  CallResult opened =
      send(unanswered_opening_.value_or(ClientRequest{.op = OpKind::get}), options_.deadline);
  if (opened.ok() || !session_open_) return opened;
  // It ran, but its reply was released (stale_request): the session is open.
  return {Outcome::ok, {}, {}};
}

void Client::settle_opening(const ClientRequest& sent, const CallResult& result) {
  if (sent.seq != 1 || sent.client_id != id_) return;  // session_expired started anew
  if (session_open_) {
    unanswered_opening_.reset();
  } else if (result.outcome == Outcome::unknown || unanswered_opening_) {
    // It may have run (this copy, or an earlier one that got no answer):
    // exactly once, so the same id and seq, until a reply says how it went.
    unanswered_opening_ = sent;
  } else {
    start_session();  // refused: it ran nowhere, and no session opened
  }
}

void Client::start_session() {
  id_ = random_client_id();
  next_seq_ = 1;
  acked_ = 0;
  session_open_ = false;
  unanswered_opening_.reset();
}

bool Client::learn_members_due() const {
  if (options_.learn_members_every.count() <= 0) return false;
  return failed_over_ || SteadyClock::now() - learned_at_ >= options_.learn_members_every;
}

// The member list is a read through the log, in this session. It gets a
// part of the deadline only: a cluster that does not answer it will not
// answer the caller's op either, which then gets its own deadline.
void Client::learn_members() {
  failed_over_ = false;
  learned_at_ = SteadyClock::now();
  const CallResult r =
      send(ClientRequest{.op = OpKind::member, .member = MemberChange{.kind = MemberChangeKind::list}},
           std::min(options_.deadline, kLearnMembersDeadline));
  if (r.ok()) take_in(r.result.member.config);
}

void Client::take_in(const Config& config) {
  failed_over_ = false;
  learned_at_ = SteadyClock::now();
  const std::string tried_first = endpoints_.endpoints()[current_];
  if (endpoints_.learn(config).empty()) return;
  const std::vector<std::string>& now = endpoints_.endpoints();
  const auto it = std::find(now.begin(), now.end(), tried_first);
  current_ = it == now.end() ? 0 : static_cast<std::size_t>(it - now.begin());
  if (it == now.end()) connection_.reset();  // to a member that left
}

CallResult Client::send(ClientRequest request, std::chrono::milliseconds call_deadline) {
  if (request.seq == 0) {
    request.client_id = id_;
    request.seq = next_seq_++;
    request.ack = acked_;
  }
  assert(request.client_id == id_ && request.seq < next_seq_);
  CallResult result = transmit(request, call_deadline);
  settle_opening(request, result);
  return result;
}

CallResult Client::transmit(const ClientRequest& request, std::chrono::milliseconds call_deadline) {
  const OpKind op = request.op;
  const std::vector<std::string>& endpoints = endpoints_.endpoints();
  const std::string frame = encode(request);
  const auto deadline = SteadyClock::now() + call_deadline;
  auto attempt_timeout = options_.attempt_timeout;
  auto overload_backoff = kFirstOverloadBackoff;  // docs/protocol.md, "overloaded"

  // Endpoints that refused our handshake, each with why. A refused
  // handshake delivers nothing, so when every attempt ended that way the
  // request certainly did not run.
  std::vector<std::string> refusals(endpoints.size());
  bool maybe_delivered = false;
  std::string unreadable;
  const std::size_t server_keys = options_.curve ? options_.curve->server_keys.size() : 1;
  std::size_t keys_tried = 0;  // other server keys tried at this endpoint
  for (;;) {
    const auto now = SteadyClock::now();
    if (now >= deadline) break;
    const std::string& endpoint = endpoints[current_];
    if (!connection_) {
      try {
        connection_ = std::make_unique<NodeConnection>(ctx_, endpoint, options_.curve, server_key_);
      } catch (const zmq::error_t& e) {
        return {Outcome::rejected, {},
                "cannot connect to '" + endpoint + "': " + e.what() + " (expected HOST:PORT)"};
      }
    }
    connection_->send(frame);
    bool resend_here = false;
    const auto attempt_end =
        std::min(deadline, now + std::chrono::duration_cast<SteadyClock::duration>(attempt_timeout));
    bool refused = false;
    bool other_server_key = false;
    while (SteadyClock::now() < attempt_end) {
      const auto left = std::chrono::ceil<std::chrono::milliseconds>(attempt_end - SteadyClock::now());
      NodeConnection::Received got = connection_->receive(left);
      if (!got.handshake_error.empty()) {
        other_server_key = !got.key_refused && keys_tried < server_keys - 1;
        if (!other_server_key) refusals[current_] = std::move(got.handshake_error);
        refused = true;
        break;
      }
      if (!got.frame) break;
      Result<Body> body = decode(*got.frame, kMaxClientFrameBytes, kMaxReplyMessageValues);
      if (!body.ok()) {  // not a reply we can read; keep waiting, and say so if nothing else comes
        unreadable = endpoint + " sent a reply this client cannot read (" + body.error() + ")";
        continue;
      }
      if (auto* e = std::get_if<ErrorReply>(&body.value())) {
        if (e->code == ReplyCode::overloaded) {
          // Refused at the door before it was even decoded: nothing ran.
          // Back off and send the same seq to the same node again.
          std::this_thread::sleep_for(std::min<SteadyClock::duration>(
              overload_backoff, std::max<SteadyClock::duration>(deadline - SteadyClock::now(), {})));
          overload_backoff = std::min(kMaxAttemptTimeout, overload_backoff * 2);
          resend_here = true;
          break;
        }
        return {Outcome::rejected, {}, endpoint + " rejected the request: " + e->error};
      }
      auto* reply = std::get_if<ClientReply>(&body.value());
      if (reply == nullptr || reply->client_id != id_ || reply->seq != request.seq) continue;
      // A node that is stopping: as no answer, but the next node now.
      if (reply->code == ReplyCode::shutting_down) break;
      return finish(op, request.seq, endpoint, *reply);
    }
    if (other_server_key) {
      // This node presents another of the cluster's client keys (a key
      // rotation in progress): the request did not go out; try the next key.
      ++keys_tried;
      server_key_ = (server_key_ + 1) % server_keys;
      connection_.reset();
      continue;
    }
    keys_tried = 0;
    maybe_delivered = maybe_delivered || !refused;
    if (!maybe_delivered && std::none_of(refusals.begin(), refusals.end(),
                                         [](const std::string& r) { return r.empty(); })) {
      return {Outcome::rejected, {}, join(refusals, "; ")};
    }
    if (resend_here) continue;
    // No answer here: the same request (same seq) goes to the next node.
    connection_.reset();
    current_ = (current_ + 1) % endpoints.size();
    failed_over_ = true;
    attempt_timeout = std::min(kMaxAttemptTimeout, attempt_timeout * 3 / 2);
  }
  std::string refused_text;
  for (const std::string& r : refusals) {
    if (!r.empty()) refused_text += "; " + r;
  }
  return {Outcome::unknown, {},
          "no reply from " + join(endpoints) + " within " +
              seconds_text(call_deadline) +
              "; the outcome is unknown (the operation may or may not have taken effect). Is the "
              "cluster running, and can a majority of its nodes reach each other?" + refused_text +
              (unreadable.empty() ? "" : "; " + unreadable)};
}

CallResult Client::finish(OpKind op, std::uint64_t seq, const std::string& endpoint,
                          ClientReply& reply) {
  if (reply.code == ReplyCode::session_expired) {
    // This copy did not run, but an earlier or a late copy may (even one
    // sent once can be proposed twice by the nodes), so the outcome is
    // unknown, never retried in a new session behind the caller's back.
    // The next call starts a new session (docs/architecture.md).
    start_session();
    return {Outcome::unknown, {},
            endpoint + ": " + reply.error + "; the outcome is unknown (it may have taken "
            "effect); this client starts a new session for its next call"};
  }
  acked_ = seq;
  // Either code means the op ran (or a newer one of ours is in flight), so
  // this client's seq 1 ran: the session is open.
  if (reply.code == ReplyCode::ok || reply.code == ReplyCode::stale_request) session_open_ = true;
  if (reply.code == ReplyCode::stale_request) {
    // Our one outstanding seq ran, but the node no longer holds its reply
    // (retained replies have a byte budget). A write is done; what a read
    // or a transaction answered is gone, which is all we can say about it.
    if (op == OpKind::put || op == OpKind::append) return {Outcome::ok, {}, {}};
    if (op == OpKind::delete_range) {
      return {Outcome::unknown, {},
              endpoint + " executed the delete but released its reply (the count of deleted "
                         "keys) before it arrived"};
    }
    if (op == OpKind::member) {
      return {Outcome::unknown, {},
              endpoint + " executed the member change but released its reply before it "
                         "arrived; see whether it took effect with kvctl member list"};
    }
    return {Outcome::unknown, {},
            endpoint + " executed the " + (op == OpKind::txn ? "txn" : "read") +
                " but released its reply before it arrived; read again"};
  }
  if (reply.code != ReplyCode::ok) {
    return {Outcome::rejected, {}, endpoint + " refused the request: " + reply.error};
  }
  OpResult result = reply.result();
  return {Outcome::ok, std::move(reply.value), {}, std::move(result)};
}

Result<SnapshotSaveReply> Client::snapshot_chunk(const std::string& endpoint,
                                                 const SnapshotSaveRequest& request,
                                                 std::chrono::milliseconds timeout) {
  Result<Body> body = exchange(ctx_, endpoint, options_.curve, request, timeout);
  if (!body.ok()) return Error{body.error()};
  auto* r = std::get_if<SnapshotSaveReply>(&body.value());
  if (r == nullptr) return Error{"unexpected reply from " + endpoint + " to a snapshot request"};
  if (r->code != ReplyCode::ok) {
    return Error{endpoint + " refused the snapshot (" + to_string(r->code) + "): " + r->error};
  }
  return std::move(*r);
}

Result<StatusReply> Client::status(const std::string& endpoint, std::chrono::milliseconds timeout) {
  Result<Body> body = exchange(ctx_, endpoint, options_.curve, StatusRequest{}, timeout);
  if (!body.ok()) return Error{body.error()};
  if (auto* s = std::get_if<StatusReply>(&body.value())) return std::move(*s);
  return Error{"unexpected reply from " + endpoint + " to a status request"};
}

Result<FaultReply> Client::fault(const std::string& endpoint, const FaultRequest& request,
                                 std::chrono::milliseconds timeout) {
  Result<Body> body = exchange(ctx_, endpoint, options_.curve, request, timeout);
  if (!body.ok()) return Error{body.error()};
  auto* f = std::get_if<FaultReply>(&body.value());
  if (f == nullptr) return Error{"unexpected reply from " + endpoint + " to a fault request"};
  if (f->code != ReplyCode::ok) return Error{endpoint + ": " + f->error};
  return std::move(*f);
}

}  // namespace kvpaxos
