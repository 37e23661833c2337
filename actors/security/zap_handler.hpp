// ZapHandler: the ZeroMQ Authentication Protocol server (RFC 27) of one
// ZeroMQ context.
//
// During every CURVE handshake on a socket that has a ZAP domain, libzmq asks
// whoever is bound at inproc://zeromq.zap.01 in that context whether the
// client's public key may connect, and tags every message that then arrives
// on the connection with the User-Id the handler names. The handler answers
// from the policy registered for the socket's domain: a set of accepted keys,
// each with its user id (a peer port accepts the cluster's node keys, named
// by node id), or any key but a refused few (a client port without
// --client-keys). A domain with no policy is refused.
//
// The trap it closes: with nothing bound at the ZAP endpoint, libzmq accepts
// every client key. for_context() binds the endpoint before it returns, and
// the handler must outlive every CURVE server socket of the context (the
// Node holds it; destroy it after the sockets).
//
// One thread, one REP socket; set_policy may be called from any thread.
#pragma once

#include <atomic>
#include <map>
#include <memory>
#include <mutex>
#include <set>
#include <string>
#include <thread>

#include <zmq.hpp>

#include "messages/result.hpp"

namespace kvpaxos {

struct ZapPolicy {
  std::map<std::string, std::string> users;  // accepted public key (Z85) -> its User-Id
  bool allow_any = false;                    // accept any other key too (User-Id: the key)
  std::set<std::string> refused;             // never accepted, even with allow_any (Z85)
  std::string what;                          // "peer port of n1", for log lines
};

class ZapHandler {
 public:
  // The handler of `ctx`, bound and running when this returns; shared by
  // every node of the context, stopped when the last holder lets go.
  static Result<std::shared_ptr<ZapHandler>> for_context(zmq::context_t& ctx);
  ~ZapHandler();
  ZapHandler(const ZapHandler&) = delete;
  ZapHandler& operator=(const ZapHandler&) = delete;

  void set_policy(const std::string& domain, ZapPolicy policy);
  void remove_policy(const std::string& domain);

  std::uint64_t accepted() const { return accepted_.load(std::memory_order_relaxed); }
  std::uint64_t refused() const { return refused_.load(std::memory_order_relaxed); }

  // The answer for one handshake: the User-Id when accepted, an Error naming why not.
  Result<std::string> decide(const std::string& domain, const std::string& mechanism,
                             const std::string& public_key_z85);

 private:
  explicit ZapHandler(zmq::context_t& ctx);
  void run();
  void answer_one();
  void log_refusal(const std::string& domain, const std::string& why);

  zmq::context_t& ctx_;
  zmq::socket_t rep_;
  zmq::socket_t stop_pull_;
  zmq::socket_t stop_push_;
  std::mutex mu_;
  std::map<std::string, ZapPolicy> policies_;         // by domain; guarded by mu_
  std::map<std::string, std::uint64_t> unlogged_;     // refusals since the last line, by domain
  std::map<std::string, std::chrono::steady_clock::time_point> last_logged_;
  std::atomic<std::uint64_t> accepted_{0};
  std::atomic<std::uint64_t> refused_{0};
  std::thread thread_;
};

// The User-Id that the ZAP handler gave the connection a message came in on;
// empty when the socket runs without CURVE.
std::string user_id_of(const zmq::message_t& message);

}  // namespace kvpaxos
