#include "cmd/bench.hpp"

#include <algorithm>
#include <atomic>
#include <cstdio>
#include <iostream>
#include <random>
#include <sstream>
#include <thread>

#include "client/client.hpp"

namespace kvpaxos::bench {

namespace {

using Clock = std::chrono::steady_clock;
enum Kind { kPut = 0, kGet = 1, kAppend = 2 };
const char* const kKindNames[] = {"put", "get", "append"};

// One client thread's results; written by that thread only, read after join.
struct Worker {
  std::vector<std::uint32_t> latency_us[3];
  std::uint64_t unknown = 0;
  std::uint64_t rejected = 0;
  std::string first_error;
};

class KvpaxosSession final : public Session {
 public:
  KvpaxosSession(zmq::context_t& ctx, ClientOptions options) : client_(ctx, std::move(options)) {}
  CallResult call(OpKind op, const std::string& key, const std::string& value) override {
    switch (op) {
      case OpKind::put: return client_.put(key, value);
      case OpKind::append: return client_.append(key, value);
      default: return client_.get(key);
    }
  }

 private:
  Client client_;
};

void run_worker(Session& session, const Config& c, int index, Clock::time_point end,
                std::atomic<std::uint64_t>& done, std::atomic<std::uint64_t>& failed, Worker& w) {
  std::mt19937_64 rng(static_cast<std::uint64_t>(index) * 7919 + 17);
  std::uniform_int_distribution<std::uint64_t> key_dist(0, c.keys - 1);
  std::uniform_int_distribution<int> roll_dist(0, 99);
  std::string value(c.value_bytes, 'x');
  for (std::uint64_t n = 0; Clock::now() < end; ++n) {
    const int roll = roll_dist(rng);
    const Kind kind = roll < c.mix.put ? kPut : roll < c.mix.put + c.mix.get ? kGet : kAppend;
    const std::string key = "bench-" + std::to_string(key_dist(rng));
    if (!value.empty()) value[n % value.size()] = static_cast<char>('a' + n % 26);
    const Clock::time_point start = Clock::now();
    const CallResult r = session.call(
        kind == kPut ? OpKind::put : kind == kGet ? OpKind::get : OpKind::append, key,
        kind == kGet ? std::string() : value);
    const auto us = std::chrono::duration_cast<std::chrono::microseconds>(Clock::now() - start);
    if (r.ok()) {
      w.latency_us[kind].push_back(static_cast<std::uint32_t>(
          std::min<std::int64_t>(us.count(), std::numeric_limits<std::uint32_t>::max())));
      done.fetch_add(1, std::memory_order_relaxed);
    } else {
      (r.outcome == Outcome::unknown ? w.unknown : w.rejected)++;
      if (w.first_error.empty()) w.first_error = r.error;
      failed.fetch_add(1, std::memory_order_relaxed);
    }
  }
}

double ms(std::uint32_t us) { return static_cast<double>(us) / 1000.0; }

std::string fixed(double v, int digits) {
  char buf[64];
  std::snprintf(buf, sizeof buf, "%.*f", digits, v);
  return buf;
}

}  // namespace

Result<Mix> parse_mix(const std::string& text) {
  Mix mix{0, 0, 0};
  std::stringstream in(text);
  std::string part;
  while (std::getline(in, part, ',')) {
    const auto eq = part.find('=');
    if (eq == std::string::npos) return Error{"'" + part + "' is not KIND=PERCENT"};
    const std::string kind = part.substr(0, eq);
    int pct = -1;
    try {
      std::size_t used = 0;
      pct = std::stoi(part.substr(eq + 1), &used);
      if (used != part.size() - eq - 1) pct = -1;
    } catch (const std::exception&) {
      pct = -1;
    }
    if (pct < 0 || pct > 100) return Error{"'" + part + "': the percentage must be 0..100"};
    if (kind == "put") mix.put = pct;
    else if (kind == "get") mix.get = pct;
    else if (kind == "append") mix.append = pct;
    else return Error{"unknown op '" + kind + "' (put, get or append)"};
  }
  if (mix.put + mix.get + mix.append != 100) {
    return Error{"the percentages in '" + text + "' add up to " +
                 std::to_string(mix.put + mix.get + mix.append) + ", not 100"};
  }
  return mix;
}

LatencySummary summarize(std::vector<std::uint32_t>& micros) {
  LatencySummary s;
  s.count = micros.size();
  if (micros.empty()) return s;
  std::sort(micros.begin(), micros.end());
  auto at = [&](double q) {
    const auto i = static_cast<std::size_t>(q * static_cast<double>(micros.size() - 1) + 0.5);
    return ms(micros[std::min(i, micros.size() - 1)]);
  };
  s.p50_ms = at(0.50);
  s.p90_ms = at(0.90);
  s.p99_ms = at(0.99);
  s.p999_ms = at(0.999);
  s.max_ms = ms(micros.back());
  double sum = 0;
  for (std::uint32_t v : micros) sum += v;
  s.mean_ms = sum / static_cast<double>(micros.size()) / 1000.0;
  return s;
}

SessionFactory kvpaxos_sessions(zmq::context_t& ctx, const Config& c) {
  return [&ctx, c](int index) -> std::unique_ptr<Session> {
    std::vector<std::string> endpoints = c.endpoints;
    std::rotate(endpoints.begin(),
                endpoints.begin() + index % static_cast<int>(endpoints.size()), endpoints.end());
    return std::make_unique<KvpaxosSession>(
        ctx, ClientOptions{.endpoints = endpoints,
                           .curve = c.curve,
                           .deadline = c.deadline,
                           .attempt_timeout = std::min(c.deadline, std::chrono::milliseconds(1000)),
                           .learn_members_every = kLearnMembersEvery});
  };
}

Report run(const Config& c, const SessionFactory& make_session) {
  std::atomic<std::uint64_t> done{0}, failed{0};
  std::vector<Worker> workers(static_cast<std::size_t>(c.clients));
  std::vector<std::unique_ptr<Session>> sessions;
  for (int i = 0; i < c.clients; ++i) sessions.push_back(make_session(i));
  const Clock::time_point start = Clock::now();
  const Clock::time_point end = start + c.duration;
  std::vector<std::thread> threads;
  for (int i = 0; i < c.clients; ++i) {
    const auto k = static_cast<std::size_t>(i);
    threads.emplace_back(run_worker, std::ref(*sessions[k]), std::cref(c), i, end, std::ref(done),
                         std::ref(failed), std::ref(workers[k]));
  }
  std::uint64_t last = 0;
  for (int second = 1; Clock::now() < end; ++second) {
    std::this_thread::sleep_until(std::min(end, start + std::chrono::seconds(second)));
    const std::uint64_t now_done = done.load();
    std::cerr << "bench: " << second << "s " << now_done - last << " ops/s, " << now_done
              << " ok, " << failed.load() << " failed\n";
    last = now_done;
  }
  for (std::thread& t : threads) t.join();
  Report r;
  r.seconds = std::chrono::duration<double>(Clock::now() - start).count();
  std::vector<std::uint32_t> all;
  for (Worker& w : workers) {
    r.unknown += w.unknown;
    r.rejected += w.rejected;
    for (auto& v : w.latency_us) all.insert(all.end(), v.begin(), v.end());
  }
  r.ok = all.size();
  r.all = summarize(all);
  LatencySummary* per_kind[] = {&r.put, &r.get, &r.append};
  for (int k = 0; k < 3; ++k) {
    std::vector<std::uint32_t> v;
    for (Worker& w : workers) v.insert(v.end(), w.latency_us[k].begin(), w.latency_us[k].end());
    *per_kind[k] = summarize(v);
  }
  for (const Worker& w : workers) {
    if (!w.first_error.empty()) {
      std::cerr << "bench: first error: " << w.first_error << "\n";
      break;
    }
  }
  return r;
}

std::string format_text(const Config& c, const Report& r) {
  std::ostringstream out;
  out << "kvctl bench: " << c.clients << " clients, " << fixed(r.seconds, 1) << " s, "
      << c.value_bytes << "-byte values, " << c.keys << " keys, mix put=" << c.mix.put
      << ",get=" << c.mix.get << ",append=" << c.mix.append << "\n";
  out << "  ops ok      " << r.ok << " (" << fixed(r.ops_per_second(), 0) << " ops/s)\n";
  out << "  errors      " << r.unknown << " unknown outcome, " << r.rejected << " rejected\n";
  out << "  latency ms  " << "p50 " << fixed(r.all.p50_ms, 2) << "  p90 " << fixed(r.all.p90_ms, 2)
      << "  p99 " << fixed(r.all.p99_ms, 2) << "  p99.9 " << fixed(r.all.p999_ms, 2) << "  max "
      << fixed(r.all.max_ms, 2) << "  mean " << fixed(r.all.mean_ms, 2) << "\n";
  const LatencySummary* per_kind[] = {&r.put, &r.get, &r.append};
  for (int k = 0; k < 3; ++k) {
    const LatencySummary& s = *per_kind[k];
    if (s.count == 0) continue;
    out << "  " << kKindNames[k] << std::string(10 - std::string(kKindNames[k]).size(), ' ')
        << s.count << " ok, p50 " << fixed(s.p50_ms, 2) << " ms, p99 " << fixed(s.p99_ms, 2)
        << " ms\n";
  }
  return out.str();
}

std::string format_json(const Config& c, const Report& r) {
  auto lat = [](const LatencySummary& s) {
    return "{\"count\":" + std::to_string(s.count) + ",\"p50_ms\":" + fixed(s.p50_ms, 3) +
           ",\"p90_ms\":" + fixed(s.p90_ms, 3) + ",\"p99_ms\":" + fixed(s.p99_ms, 3) +
           ",\"p999_ms\":" + fixed(s.p999_ms, 3) + ",\"max_ms\":" + fixed(s.max_ms, 3) +
           ",\"mean_ms\":" + fixed(s.mean_ms, 3) + "}";
  };
  std::ostringstream out;
  out << "{\"clients\":" << c.clients << ",\"seconds\":" << fixed(r.seconds, 3)
      << ",\"value_bytes\":" << c.value_bytes << ",\"keys\":" << c.keys << ",\"mix\":{\"put\":"
      << c.mix.put << ",\"get\":" << c.mix.get << ",\"append\":" << c.mix.append
      << "},\"ok\":" << r.ok << ",\"ops_per_second\":" << fixed(r.ops_per_second(), 1)
      << ",\"unknown\":" << r.unknown << ",\"rejected\":" << r.rejected
      << ",\"latency\":" << lat(r.all) << ",\"put\":" << lat(r.put) << ",\"get\":" << lat(r.get)
      << ",\"append\":" << lat(r.append) << "}\n";
  return out.str();
}

}  // namespace kvpaxos::bench
