// MetricsHttpThread: the node's metrics and health endpoint
// (kvpaxosd --listen-metrics-addr), plain HTTP on a ZeroMQ STREAM socket.
//
// Why a STREAM socket and not prometheus-cpp (civetweb): it is one more actor
// of the same shape as the others (a thread, a socket, a poll loop), it adds
// no dependency, and what it must speak is tiny (GET of four paths, one
// request per connection). docs/operations.md has the endpoints.
//
// The thread only reads NodeMetrics (relaxed atomics) and never waits for
// another actor, so a scrape cannot slow the node, and a stuck node still
// answers /livez with why. A client is bounded: kMaxRequestBytes buffered,
// kRequestTimeout to send its request, kMaxHttpConnections at once (a new
// connection past that is closed at once); a response goes out without
// blocking (dropped if the client does not read), then the connection closes.
#pragma once

#include <atomic>
#include <chrono>
#include <map>
#include <string>
#include <thread>

#include <zmq.hpp>

#include "actors/observe/http.hpp"
#include "actors/observe/metrics.hpp"

namespace kvpaxos {

inline constexpr std::size_t kMaxHttpConnections = 64;
inline constexpr Duration kRequestTimeout = std::chrono::seconds(5);

class MetricsHttpThread {
 public:
  // Binds tcp://HOST:PORT at once; throws zmq::error_t when it cannot (port
  // in use, no such address). `metrics` must outlive this object.
  MetricsHttpThread(zmq::context_t& ctx, const std::string& endpoint, const NodeMetrics& metrics);
  ~MetricsHttpThread();  // stops and joins within 100 ms
  MetricsHttpThread(const MetricsHttpThread&) = delete;
  MetricsHttpThread& operator=(const MetricsHttpThread&) = delete;

  // The endpoint actually bound (a port 0 or "*" resolved).
  const std::string& endpoint() const { return bound_; }

 private:
  struct Connection {
    std::string buffered;
    Time opened{};
  };

  void run();
  void on_frames();
  void answer(const std::string& id, const HttpResponse& r);
  void close(const std::string& id);
  void expire(Time now);

  const NodeMetrics& metrics_;
  zmq::socket_t stream_;
  std::string bound_;
  std::map<std::string, Connection> connections_;  // by STREAM routing id
  std::atomic<bool> stop_{false};
  std::thread thread_;
};

// The endpoints' answers from a node's NodeMetrics, now.
class NodeHealth final : public HealthSource {
 public:
  explicit NodeHealth(const NodeMetrics& m) : m_(m) {}
  std::string metrics_text() const override;
  std::string not_live_reason() const override;
  std::string not_ready_reason() const override;

 private:
  const NodeMetrics& m_;
};

}  // namespace kvpaxos
