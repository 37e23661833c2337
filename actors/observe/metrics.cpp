#include "actors/observe/metrics.hpp"

#include "messages/messages.hpp"

#include <dirent.h>
#include <sys/resource.h>
#include <unistd.h>

#include <bit>
#include <cstdlib>
#include <cassert>
#include <cstdio>
#include <fstream>
#include <sstream>

namespace kvpaxos {
namespace {

constexpr auto kRelaxed = std::memory_order_relaxed;

std::int64_t ns(Duration d) {
  return std::chrono::duration_cast<std::chrono::nanoseconds>(d).count();
}

// The shortest %g text that reads back as `v` (0.0025, not
// 0.0025000000000000001), as Go's strconv prints Prometheus' own numbers.
std::string number(double v) {
  char buf[32];
  if (v == static_cast<double>(static_cast<std::int64_t>(v)) && v > -1e15 && v < 1e15) {
    return std::to_string(static_cast<std::int64_t>(v));
  }
  for (int precision = 1; precision <= 17; ++precision) {
    std::snprintf(buf, sizeof buf, "%.*g", precision, v);
    if (std::strtod(buf, nullptr) == v) break;
  }
  return buf;
}

// A label value: backslash, double quote and newline escaped (format 0.0.4).
std::string label_value(std::string_view v) {
  std::string out;
  for (const char c : v) {
    if (c == '\\') {
      out += "\\\\";
    } else if (c == '"') {
      out += "\\\"";
    } else if (c == '\n') {
      out += "\\n";
    } else {
      out += c;
    }
  }
  return out;
}

class Exposition {
 public:
  void family(std::string_view name, std::string_view type, std::string_view help) {
    text_ += "# HELP ";
    text_ += name;
    text_ += ' ';
    text_ += help;
    text_ += "\n# TYPE ";
    text_ += name;
    text_ += ' ';
    text_ += type;
    text_ += '\n';
  }
  void sample(std::string_view name, std::string_view labels, double v) {
    text_ += name;
    if (!labels.empty()) {
      text_ += '{';
      text_ += labels;
      text_ += '}';
    }
    text_ += ' ';
    text_ += number(v);
    text_ += '\n';
  }
  void gauge(std::string_view name, std::string_view help, double v) {
    family(name, "gauge", help);
    sample(name, "", v);
  }
  void counter(std::string_view name, std::string_view help, double v) {
    family(name, "counter", help);
    sample(name, "", v);
  }
  void histogram(std::string_view name, std::string_view help, const Histogram& h) {
    family(name, "histogram", help);
    histogram_samples(name, "", h);
  }
  // One histogram's _bucket, _sum and _count lines; `labels` (may be empty)
  // go before `le`.
  void histogram_samples(std::string_view name, const std::string& labels, const Histogram& h) {
    const auto counts = h.counts();
    const std::string bucket = std::string(name) + "_bucket";
    const std::string before_le = labels.empty() ? std::string() : labels + ",";
    std::uint64_t cumulative = 0;
    for (std::size_t i = 0; i < kLatencyBucketsSeconds.size(); ++i) {
      cumulative += counts[i];
      sample(bucket, before_le + "le=\"" + number(kLatencyBucketsSeconds[i]) + "\"",
             static_cast<double>(cumulative));
    }
    cumulative += counts.back();
    sample(bucket, before_le + "le=\"+Inf\"", static_cast<double>(cumulative));
    sample(std::string(name) + "_sum", labels, h.sum_seconds());
    sample(std::string(name) + "_count", labels, static_cast<double>(cumulative));
  }
  std::string take() { return std::move(text_); }

 private:
  std::string text_;
};

std::string peer_label(const NodeMetrics& m, std::size_t id) {
  const std::string name = id < m.peer_names.size() && !m.peer_names[id].empty()
                               ? m.peer_names[id]
                               : std::to_string(id);
  return "peer=\"" + label_value(name) + "\"";
}

void format_peers(const NodeMetrics& m, Exposition& x) {
  struct Family {
    const char* name;
    const char* help;
    const std::atomic<std::uint64_t> PeerMetrics::*field;
  };
  const Family families[] = {
      {"kvpaxos_network_peer_sent_bytes_total", "Bytes of peer frames sent to each peer.",
       &PeerMetrics::bytes_sent},
      {"kvpaxos_network_peer_received_bytes_total",
       "Bytes of peer frames received from each peer (before fault injection).",
       &PeerMetrics::bytes_received},
      {"kvpaxos_network_peer_sent_failures_total",
       "Frames for each peer dropped because its queue was full or it was not connected.",
       &PeerMetrics::send_failures},
  };
  for (const Family& f : families) {
    x.family(f.name, "counter", f.help);
    for (std::size_t id = 0; id < m.peers.size(); ++id) {
      if (!m.peers[id].member.load(kRelaxed)) continue;
      x.sample(f.name, peer_label(m, id), static_cast<double>((m.peers[id].*f.field).load(kRelaxed)));
    }
  }
}

void format_applier(const NodeMetrics& m, Time now, Exposition& x) {
  x.gauge("kvpaxos_server_has_quorum",
          "1 when a majority of the voters was heard from within the last 2 s.",
          has_quorum(m, now) ? 1 : 0);
  const std::uint64_t leader = m.leader.load(kRelaxed);
  x.gauge("kvpaxos_server_is_leader",
          "1 when this node authored the latest applied batch (it leads).",
          leader == m.self ? 1 : 0);
  x.counter("kvpaxos_server_leader_changes_seen_total",
            "Times the leader this node sees (author of the latest batch) changed.",
            static_cast<double>(m.leader_changes.load(kRelaxed)));
  x.gauge("kvpaxos_log_decided_instance", "Instances [0, this) are known decided here.",
          static_cast<double>(m.decided_below.load(kRelaxed)));
  x.gauge("kvpaxos_log_applied_instance", "Instances [0, this) are applied here.",
          static_cast<double>(m.applied_below.load(kRelaxed)));
  x.gauge("kvpaxos_log_forgotten_instance", "Instances below this are forgotten (Min()).",
          static_cast<double>(m.forget_below.load(kRelaxed)));
  x.gauge("kvpaxos_keys", "Keys in the store.", static_cast<double>(m.keys.load(kRelaxed)));
  x.gauge("kvpaxos_sessions", "Client sessions (dedup records) held.",
          static_cast<double>(m.sessions.load(kRelaxed)));
  x.gauge("kvpaxos_retained_reply_bytes", "Bytes of replies kept for client retries.",
          static_cast<double>(m.retained_reply_bytes.load(kRelaxed)));
  x.counter("kvpaxos_snapshot_installs_total", "Snapshots installed from a peer.",
            static_cast<double>(m.snapshot_installs.load(kRelaxed)));
  const char* name = "kvpaxos_client_replies_total";
  x.family(name, "counter", "Replies to client requests applied here, by reply code.");
  for (std::size_t c = 0; c < kReplyCodes; ++c) {
    x.sample(name, std::string("code=\"") + to_string(static_cast<ReplyCode>(c)) + "\"",
             static_cast<double>(m.client_replies[c].load(kRelaxed)));
  }
}

std::string op_label(std::size_t op) {
  return "op=\"" + label_value(to_string(static_cast<ClientOp>(op))) + "\"";
}

void format_client_requests(const ClientRequestMetrics& m, Exposition& x) {
  const char* requests = "kvpaxos_client_requests_total";
  x.family(requests, "counter",
           "Client requests this node answered, by op (invalid: undecodable or not a client "
           "message) and reply code.");
  for (std::size_t op = 0; op < kClientOps; ++op) {
    for (std::size_t c = 0; c < kReplyCodes; ++c) {
      const auto code = static_cast<ReplyCode>(c);
      x.sample(requests, op_label(op) + ",code=\"" + label_value(to_string(code)) + "\"",
               static_cast<double>(m.requests(static_cast<ClientOp>(op), code)));
    }
  }
  const char* duration = "kvpaxos_client_request_duration_seconds";
  x.family(duration, "histogram",
           "Time from the front door's receipt of a client request to its reply, by op; only "
           "requests whose reply names them (docs/operations.md).");
  for (std::size_t op = 0; op < kClientOps; ++op) {
    x.histogram_samples(duration, op_label(op), m.duration(static_cast<ClientOp>(op)));
  }
}

void format_process(const ProcessStats& p, std::int64_t start_time, Exposition& x) {
  x.counter("process_cpu_seconds_total", "User and system CPU time spent, in seconds.",
            p.cpu_seconds);
  x.gauge("process_resident_memory_bytes", "Resident memory size in bytes.",
          static_cast<double>(p.resident_bytes));
  x.gauge("process_open_fds", "Open file descriptors.", static_cast<double>(p.open_fds));
  x.gauge("process_max_fds", "The open file descriptor limit.", static_cast<double>(p.max_fds));
  x.gauge("process_start_time_seconds", "Start time of the process since the Unix epoch, in seconds.",
          static_cast<double>(start_time));
}

}  // namespace

std::int64_t clock_ns(Time t) {
  return std::chrono::duration_cast<std::chrono::nanoseconds>(t.time_since_epoch()).count();
}

void Histogram::observe(Duration d) {
  const double seconds = std::chrono::duration<double>(d).count();
  std::size_t i = 0;
  while (i < kLatencyBucketsSeconds.size() && seconds > kLatencyBucketsSeconds[i]) ++i;
  counts_[i].fetch_add(1, kRelaxed);
  const auto ns = std::chrono::duration_cast<std::chrono::nanoseconds>(d).count();
  sum_ns_.fetch_add(static_cast<std::uint64_t>(std::max<std::int64_t>(0, ns)), kRelaxed);
}

std::array<std::uint64_t, kLatencyBucketsSeconds.size() + 1> Histogram::counts() const {
  std::array<std::uint64_t, kLatencyBucketsSeconds.size() + 1> out{};
  for (std::size_t i = 0; i < out.size(); ++i) out[i] = counts_[i].load(kRelaxed);
  return out;
}

double Histogram::sum_seconds() const { return static_cast<double>(sum_ns_.load(kRelaxed)) / 1e9; }

static_assert(static_cast<std::size_t>(ReplyCode::permission_denied) + 1 == kReplyCodes,
              "kReplyCodes must cover every ReplyCode");
static_assert(static_cast<std::size_t>(OpKind::member) == static_cast<std::size_t>(ClientOp::member) + 1,
              "ClientOp's first values are the OpKinds, in order");

const char* to_string(ClientOp op) {
  switch (op) {
    case ClientOp::get: return "get";
    case ClientOp::put: return "put";
    case ClientOp::append: return "append";
    case ClientOp::delete_range: return "delete_range";
    case ClientOp::range: return "range";
    case ClientOp::txn: return "txn";
    case ClientOp::member: return "member";
    case ClientOp::status: return "status";
    case ClientOp::watch: return "watch";
    case ClientOp::snapshot_save: return "snapshot_save";
    case ClientOp::fault: return "fault";
    case ClientOp::invalid: return "invalid";
  }
  return "invalid";
}

void ClientRequestMetrics::count(ClientOp op, ReplyCode code) {
  const auto c = static_cast<std::size_t>(code);
  const auto o = static_cast<std::size_t>(op);
  if (c >= kReplyCodes || o >= kClientOps) return;
  requests_[o][c].fetch_add(1, kRelaxed);
}

std::uint64_t ClientRequestMetrics::requests(ClientOp op, ReplyCode code) const {
  const auto c = static_cast<std::size_t>(code);
  const auto o = static_cast<std::size_t>(op);
  if (c >= kReplyCodes || o >= kClientOps) return 0;
  return requests_[o][c].load(kRelaxed);
}

namespace {

void publish_applier(NodeMetrics& m, const ApplierReport& r) {
  m.decided_below.store(r.decided_below, kRelaxed);
  m.applied_below.store(r.applied_below, kRelaxed);
  m.forget_below.store(r.forget_below, kRelaxed);
  m.keys.store(r.keys, kRelaxed);
  m.sessions.store(r.sessions, kRelaxed);
  m.retained_reply_bytes.store(r.retained_reply_bytes, kRelaxed);
  m.voters_mask.store(r.voters_mask, kRelaxed);
  m.snapshot_installs.store(r.snapshot_installs, kRelaxed);
  for (std::size_t c = 0; c < kReplyCodes; ++c) m.client_replies[c].store(r.client_replies[c], kRelaxed);
  // Only the applier's runner writes `leader`, so exchange sees every change.
  const std::uint64_t before = m.leader.exchange(r.leader, kRelaxed);
  if (before != r.leader && before != kNoNode) m.leader_changes.fetch_add(1, kRelaxed);
  m.has_applier.store(true, kRelaxed);
}

void publish_proposer(NodeMetrics& m, const ProposerReport& r) {
  m.proposals_pending.store(r.pending, kRelaxed);
  m.proposals_failed.store(r.rejections, kRelaxed);
  m.campaigns.store(r.campaigns, kRelaxed);
  m.has_proposer.store(true, kRelaxed);
}

}  // namespace

void publish(NodeMetrics& m, const LogicReport& r) {
  if (r.applier) publish_applier(m, *r.applier);
  if (r.proposer) publish_proposer(m, *r.proposer);
}

ProcessStats read_process_stats() {
  ProcessStats p;
  // /proc/self/stat: fields 14 and 15 are utime and stime in clock ticks; the
  // second field (comm) may hold spaces, so parse after its closing paren.
  std::ifstream stat("/proc/self/stat");
  std::string line;
  if (std::getline(stat, line)) {
    const auto paren = line.rfind(')');
    if (paren != std::string::npos) {
      std::istringstream rest(line.substr(paren + 2));
      std::string field;
      unsigned long long utime = 0;
      unsigned long long stime = 0;
      for (int i = 3; i <= 15 && rest >> field; ++i) {
        if (i == 14) utime = std::stoull(field);
        if (i == 15) stime = std::stoull(field);
      }
      const long ticks = sysconf(_SC_CLK_TCK);
      if (ticks > 0) p.cpu_seconds = static_cast<double>(utime + stime) / static_cast<double>(ticks);
    }
  }
  std::ifstream statm("/proc/self/statm");
  unsigned long long size = 0;
  unsigned long long resident = 0;
  if (statm >> size >> resident) {
    p.resident_bytes = resident * static_cast<std::uint64_t>(sysconf(_SC_PAGESIZE));
  }
  if (DIR* d = opendir("/proc/self/fd")) {
    std::uint64_t n = 0;
    while (const dirent* e = readdir(d)) {
      if (e->d_name[0] != '.') ++n;
    }
    closedir(d);
    p.open_fds = n > 0 ? n - 1 : 0;  // not the descriptor opendir itself holds
  }
  rlimit lim{};
  if (getrlimit(RLIMIT_NOFILE, &lim) == 0 && lim.rlim_cur != RLIM_INFINITY) p.max_fds = lim.rlim_cur;
  return p;
}

std::string format_metrics(const NodeMetrics& m, const ProcessStats& p, Time now) {
  Exposition x;
  format_process(p, m.start_time_unix_s, x);
  x.histogram("kvpaxos_disk_fsync_duration_seconds",
              "Time to write and fsync one batch of acceptor records (group commit).",
              m.fsync_duration);
  x.histogram("kvpaxos_snapshot_save_duration_seconds",
              "Time to write, fsync and rename one snapshot file.", m.snapshot_save_duration);
  x.gauge("kvpaxos_server_live", "1 when every actor thread ticks and no fsync is stuck.",
          not_live_reason(m, now).empty() ? 1 : 0);
  x.gauge("kvpaxos_server_ready", "1 when /readyz answers 200 (quorum heard, apply caught up).",
          not_ready_reason(m, now).empty() ? 1 : 0);
  if (m.has_applier.load(kRelaxed)) format_applier(m, now, x);
  if (m.has_proposer.load(kRelaxed)) {
    x.gauge("kvpaxos_server_proposals_pending", "Log instances the proposer is trying to get decided.",
            static_cast<double>(m.proposals_pending.load(kRelaxed)));
    x.counter("kvpaxos_server_proposals_failed_total",
              "Proposer attempts (phase 1 or 2) rejected by a higher ballot; each is retried.",
              static_cast<double>(m.proposals_failed.load(kRelaxed)));
    x.counter("kvpaxos_server_campaigns_total",
              "Range phase-1 runs (Multi-Paxos leadership campaigns).",
              static_cast<double>(m.campaigns.load(kRelaxed)));
  }
  if (m.auth_failures) {
    x.counter("kvpaxos_auth_failures_total",
              "CURVE handshakes refused by the ZAP handler (unknown or refused keys).",
              static_cast<double>(m.auth_failures()));
  }
  format_client_requests(m.client_requests, x);
  format_peers(m, x);
  return x.take();
}

std::string not_live_reason(const NodeMetrics& m, Time now) {
  const std::int64_t t = clock_ns(now);
  for (std::size_t a = 0; a < m.heartbeat_ns.size(); ++a) {
    const std::int64_t beat = m.heartbeat_ns[a].load(kRelaxed);
    if (beat == 0 || t - beat <= ns(kStaleHeartbeat)) continue;
    return std::string("the ") + to_string(static_cast<Actor>(a)) + " thread has not ticked for " +
           std::to_string((t - beat) / 1'000'000) + " ms";
  }
  const std::int64_t fsync = m.fsync_started_ns.load(kRelaxed);
  if (fsync != 0 && t - fsync > ns(kStuckFsync)) {
    return "an fsync has been in progress for " + std::to_string((t - fsync) / 1'000'000) +
           " ms (is the disk stuck?)";
  }
  return {};
}

bool has_quorum(const NodeMetrics& m, Time now) {
  const std::uint64_t voters = m.voters_mask.load(kRelaxed);
  if (voters == 0) return false;
  const std::int64_t t = clock_ns(now);
  std::size_t heard = 0;
  for (std::size_t id = 0; id < kMaxTrackedPeers; ++id) {
    if ((voters >> id & 1U) == 0) continue;
    if (id == m.self) {
      ++heard;
      continue;
    }
    const std::int64_t last = m.peers[id].last_heard_ns.load(kRelaxed);
    if (last != 0 && t - last <= ns(kPeerSilence)) ++heard;
  }
  return heard > static_cast<std::size_t>(std::popcount(voters)) / 2;
}

std::string not_ready_reason(const NodeMetrics& m, Time now) {
  if (std::string dead = not_live_reason(m, now); !dead.empty()) return "not live: " + dead;
  if (!m.has_applier.load(kRelaxed)) return "the key/value service has not started";
  const std::uint64_t voters = m.voters_mask.load(kRelaxed);
  if (!has_quorum(m, now)) {
    return "no quorum: fewer than a majority of the " + std::to_string(std::popcount(voters)) +
           " voters were heard from within 2 s";
  }
  const std::uint64_t decided = m.decided_below.load(kRelaxed);
  const std::uint64_t applied = m.applied_below.load(kRelaxed);
  if (decided > applied + kMaxApplyBacklog) {
    return "applying: " + std::to_string(decided - applied) + " decided instances not applied yet";
  }
  return {};
}

}  // namespace kvpaxos
