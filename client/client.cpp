#include "client/client.hpp"

#include <algorithm>
#include <limits>
#include <random>
#include <thread>

#include "messages/codec.hpp"

namespace kvpaxos {
namespace {

constexpr std::chrono::milliseconds kMaxAttemptTimeout{1000};
constexpr std::chrono::milliseconds kFirstOverloadBackoff{20};

using SteadyClock = std::chrono::steady_clock;

ClientId random_client_id() {
  std::random_device rd;
  std::uniform_int_distribution<ClientId> dist(1, ~ClientId{0});
  return dist(rd);
}

std::unique_ptr<zmq::socket_t> open_dealer(zmq::context_t& ctx, const std::string& endpoint) {
  auto s = std::make_unique<zmq::socket_t>(ctx, zmq::socket_type::dealer);
  s->set(zmq::sockopt::linger, 0);
  s->set(zmq::sockopt::maxmsgsize, static_cast<std::int64_t>(kMaxClientFrameBytes));
  s->connect(endpoint);
  return s;
}

// Waits up to `timeout` for one frame; empty when none arrived. A blocking
// receive with a timeout sleeps in one poll() on the socket's signal fd;
// zmq::poll would re-read ZMQ_EVENTS, a poll() each, before and after.
std::optional<std::string> receive(zmq::socket_t& s, std::chrono::milliseconds timeout) {
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

std::string join(const std::vector<std::string>& parts) {
  std::string out;
  for (const std::string& p : parts) out += (out.empty() ? "" : ",") + p;
  return out;
}

std::string seconds_text(std::chrono::milliseconds d) {
  if (d.count() % 1000 == 0) return std::to_string(d.count() / 1000) + "s";
  return std::to_string(d.count()) + "ms";
}

// One request, one reply, one node: for status and fault.
Result<Body> exchange(zmq::context_t& ctx, const std::string& endpoint, const Body& request,
                      std::chrono::milliseconds timeout) {
  auto s = open_dealer(ctx, client_endpoint(endpoint));
  s->send(zmq::buffer(encode(request)), zmq::send_flags::none);
  std::optional<std::string> raw = receive(*s, timeout);
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

Client::Client(zmq::context_t& ctx, ClientOptions options)
    : ctx_(ctx), options_(std::move(options)), id_(options_.client_id.value_or(random_client_id())) {}

Client::~Client() = default;

CallResult Client::get(const std::string& key) { return call(OpKind::get, key, {}); }
CallResult Client::put(const std::string& key, const std::string& value) {
  return call(OpKind::put, key, value);
}
CallResult Client::append(const std::string& key, const std::string& value) {
  return call(OpKind::append, key, value);
}

CallResult Client::call(OpKind op, const std::string& key, const std::string& value) {
  if (options_.endpoints.empty()) return {Outcome::rejected, {}, "no endpoints given"};
  if (key.size() > kMaxKeyBytes) {
    return {Outcome::rejected, {}, "key exceeds " + std::to_string(kMaxKeyBytes) + " bytes"};
  }
  if (value.size() > kMaxValueBytes) {
    return {Outcome::rejected, {}, "value exceeds " + std::to_string(kMaxValueBytes) + " bytes"};
  }
  if (next_seq_ == 1 && op != OpKind::get) {
    // A session opens with a get: once the nodes evict a session, a late
    // copy of its seq 1 runs again, harmless for a get (docs/architecture.md,
    // "Bounded sessions").
    CallResult opened = call(OpKind::get, "", {});
    if (!opened.ok()) {
      return {Outcome::rejected, {}, "could not open a session, the op was not sent: " + opened.error};
    }
  }
  const ClientRequest request{id_, next_seq_++, acked_, op, key, value};
  const std::string frame = encode(request);
  const auto deadline = SteadyClock::now() + options_.deadline;
  auto attempt_timeout = options_.attempt_timeout;
  auto overload_backoff = kFirstOverloadBackoff;  // docs/protocol.md, "overloaded"

  for (;;) {
    const auto now = SteadyClock::now();
    if (now >= deadline) break;
    const std::string& endpoint = options_.endpoints[current_];
    if (!socket_) socket_ = open_dealer(ctx_, client_endpoint(endpoint));
    zmq::socket_t& socket = *socket_;
    socket.send(zmq::buffer(frame), zmq::send_flags::none);
    bool resend_here = false;
    const auto attempt_end =
        std::min(deadline, now + std::chrono::duration_cast<SteadyClock::duration>(attempt_timeout));
    while (SteadyClock::now() < attempt_end) {
      const auto left = std::chrono::ceil<std::chrono::milliseconds>(attempt_end - SteadyClock::now());
      std::optional<std::string> raw = receive(socket, left);
      if (!raw) break;
      Result<Body> body = decode(*raw, kMaxClientFrameBytes);
      if (!body.ok()) continue;  // not a reply we can read; keep waiting
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
      if (reply->code == ReplyCode::session_expired) {
        // This copy did not run, but an earlier or a late copy may (even one
        // sent once can be proposed twice by the nodes), so the outcome is
        // unknown, never retried in a new session behind the caller's back.
        // The next call starts a new session (docs/architecture.md).
        id_ = random_client_id();
        next_seq_ = 1;
        acked_ = 0;
        return {Outcome::unknown, {},
                endpoint + ": " + reply->error + "; the outcome is unknown (it may have taken "
                "effect); this client starts a new session for its next call"};
      }
      acked_ = request.seq;
      if (reply->code == ReplyCode::stale_request) {
        // Our one outstanding seq ran, but the node no longer holds its reply
        // (retained replies have a byte budget). A write is done; a get's
        // value is gone, which is all we can say about it.
        if (op != OpKind::get) return {Outcome::ok, {}, {}};
        return {Outcome::unknown, {},
                endpoint + " executed the get but released its reply before it arrived; "
                           "issue the get again"};
      }
      if (reply->code != ReplyCode::ok) {
        return {Outcome::rejected, {}, endpoint + " refused the request: " + reply->error};
      }
      return {Outcome::ok, std::move(reply->value), {}};
    }
    if (resend_here) continue;
    // No answer here: the same request (same seq) goes to the next node.
    socket_.reset();
    current_ = (current_ + 1) % options_.endpoints.size();
    attempt_timeout = std::min(kMaxAttemptTimeout, attempt_timeout * 3 / 2);
  }
  return {Outcome::unknown, {},
          "no reply from " + join(options_.endpoints) + " within " +
              seconds_text(options_.deadline) +
              "; the outcome is unknown (the operation may or may not have taken effect). Is the "
              "cluster running, and can a majority of its nodes reach each other?"};
}

Result<StatusReply> Client::status(const std::string& endpoint, std::chrono::milliseconds timeout) {
  Result<Body> body = exchange(ctx_, endpoint, StatusRequest{}, timeout);
  if (!body.ok()) return Error{body.error()};
  if (auto* s = std::get_if<StatusReply>(&body.value())) return std::move(*s);
  return Error{"unexpected reply from " + endpoint + " to a status request"};
}

Result<FaultReply> Client::fault(const std::string& endpoint, const FaultRequest& request,
                                 std::chrono::milliseconds timeout) {
  Result<Body> body = exchange(ctx_, endpoint, request, timeout);
  if (!body.ok()) return Error{body.error()};
  auto* f = std::get_if<FaultReply>(&body.value());
  if (f == nullptr) return Error{"unexpected reply from " + endpoint + " to a fault request"};
  if (f->code != ReplyCode::ok) return Error{endpoint + ": " + f->error};
  return std::move(*f);
}

}  // namespace kvpaxos
