// kvctl bench: a closed-loop load generator for a kvpaxos cluster.
//
// N client threads (each a kvpaxos::Client, spread over the endpoints), each
// with one request outstanding, run a put/get/append mix over a key space
// for a fixed duration. Progress goes to stderr once a second; the report
// (ops/s, latency percentiles, errors) to stdout, as text or JSON.
#pragma once

#include <chrono>
#include <cstdint>
#include <string>
#include <vector>

#include <functional>
#include <memory>
#include <optional>

#include "client/client.hpp"
#include "messages/result.hpp"

namespace kvpaxos::bench {

struct Mix {
  int put = 100;  // percentages, summing to 100
  int get = 0;
  int append = 0;
};
// "put=50,get=50" (missing kinds are 0; the sum must be 100).
Result<Mix> parse_mix(const std::string& text);

struct Config {
  std::vector<std::string> endpoints;
  int clients = 64;
  std::chrono::milliseconds duration{10'000};
  std::size_t value_bytes = 100;
  std::uint64_t keys = 1000;
  Mix mix;
  std::chrono::milliseconds deadline{5000};  // per request, as kvctl --timeout
  bool json = false;
  std::optional<ClientCurve> curve;  // kvctl --server-key / --key
};

struct LatencySummary {
  std::uint64_t count = 0;
  double p50_ms = 0, p90_ms = 0, p99_ms = 0, p999_ms = 0, max_ms = 0, mean_ms = 0;
};
// Percentiles of `micros` (sorted in place).
LatencySummary summarize(std::vector<std::uint32_t>& micros);

struct Report {
  double seconds = 0;
  std::uint64_t ok = 0;
  std::uint64_t unknown = 0;   // deadline passed: the op may or may not have run
  std::uint64_t rejected = 0;
  LatencySummary all, put, get, append;
  double ops_per_second() const { return seconds > 0 ? static_cast<double>(ok) / seconds : 0; }
};

// One client's connection to the system under test, used by one thread.
class Session {
 public:
  virtual ~Session() = default;
  virtual CallResult call(OpKind op, const std::string& key, const std::string& value) = 0;
};
// Makes client `index`'s session (spread them over config.endpoints).
using SessionFactory = std::function<std::unique_ptr<Session>(int index)>;

// A kvpaxos client per session, starting at endpoint index % n.
SessionFactory kvpaxos_sessions(zmq::context_t& ctx, const Config& config);

// Runs the load; prints progress to stderr.
Report run(const Config& config, const SessionFactory& sessions);
std::string format_text(const Config& config, const Report& r);
std::string format_json(const Config& config, const Report& r);

}  // namespace kvpaxos::bench
