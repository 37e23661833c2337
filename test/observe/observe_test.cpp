// The metrics endpoint without sockets: the HTTP request parser and router,
// the exposition text, and the live/ready rules over a NodeMetrics.
#include <gtest/gtest.h>

#include <string>

#include "actors/observe/http.hpp"
#include "actors/observe/metrics.hpp"
#include "messages/messages.hpp"

namespace kvpaxos {
namespace {

using std::chrono::milliseconds;
using std::chrono::seconds;

bool contains(const std::string& text, const std::string& part) {
  return text.find(part) != std::string::npos;
}

TEST(HttpRequest, ParsesAGetAndDropsTheQuery) {
  const ParsedRequest p =
      parse_request("GET /metrics?x=1 HTTP/1.1\r\nHost: a\r\nAccept: */*\r\n\r\n");
  ASSERT_EQ(p.state, ParseState::complete);
  EXPECT_EQ(p.request.method, "GET");
  EXPECT_EQ(p.request.path, "/metrics");
}

TEST(HttpRequest, WaitsForTheBlankLine) {
  EXPECT_EQ(parse_request("GET /metrics HTTP/1.1\r\nHost: a\r\n").state, ParseState::incomplete);
  EXPECT_EQ(parse_request("").state, ParseState::incomplete);
}

TEST(HttpRequest, MalformedRequestLinesAre400) {
  for (const char* bad : {"GET\r\n\r\n", "GET /a b HTTP/1.1\r\n\r\n", "GET metrics HTTP/1.1\r\n\r\n",
                          "G(T / HTTP/1.1\r\n\r\n", "GET / FTP/1.0\r\n\r\n",
                          "GET / HTTP/1.1\r\nno colon here\r\n\r\n",
                          "GET / HTTP/1.1\r\n\r\nGET / HTTP/1.1\r\n\r\n"}) {
    const ParsedRequest p = parse_request(bad);
    EXPECT_EQ(p.state, ParseState::bad) << bad;
    EXPECT_EQ(p.error.status, 400) << bad;
    EXPECT_FALSE(p.error.body.empty()) << bad;
  }
}

TEST(HttpRequest, OtherHttpVersionsAre505) {
  EXPECT_EQ(parse_request("GET / HTTP/2.0\r\n\r\n").error.status, 505);
}

TEST(HttpRequest, OversizedRequestIs431BeforeItEnds) {
  const std::string big = "GET / HTTP/1.1\r\nX: " + std::string(kMaxRequestBytes, 'a');
  const ParsedRequest p = parse_request(big);
  ASSERT_EQ(p.state, ParseState::bad);
  EXPECT_EQ(p.error.status, 431);
  EXPECT_TRUE(contains(p.error.body, std::to_string(kMaxRequestBytes)));
}

TEST(HttpRequest, ABodyIsRefused) {
  EXPECT_EQ(parse_request("GET /metrics HTTP/1.1\r\nContent-Length: 5\r\n\r\n").error.status, 413);
  EXPECT_EQ(parse_request("GET / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n").error.status, 413);
  EXPECT_EQ(parse_request("GET / HTTP/1.1\r\ncontent-length: 0\r\n\r\n").state, ParseState::complete);
}

struct FixedHealth final : HealthSource {
  std::string live;
  std::string ready;
  std::string metrics_text() const override { return "up 1\n"; }
  std::string not_live_reason() const override { return live; }
  std::string not_ready_reason() const override { return ready; }
};

HttpResponse get(const std::string& path, const HealthSource& h, const std::string& method = "GET") {
  return route(HttpRequest{method, path}, h);
}

TEST(HttpRoute, UnknownPathIs404AndNamesThePaths) {
  const HttpResponse r = get("/nope", FixedHealth{});
  EXPECT_EQ(r.status, 404);
  EXPECT_TRUE(contains(r.body, "/metrics"));
}

TEST(HttpRoute, PostWithABodyIs405) {
  const ParsedRequest p =
      parse_request("POST /metrics HTTP/1.1\r\nContent-Length: 5\r\n\r\nhello");
  ASSERT_EQ(p.state, ParseState::complete);
  EXPECT_EQ(route(p.request, FixedHealth{}).status, 405);
}

TEST(HttpRoute, PostIs405WithAllow) {
  const HttpResponse r = get("/metrics", FixedHealth{}, "POST");
  EXPECT_EQ(r.status, 405);
  EXPECT_TRUE(contains(serialize(r), "\r\nAllow: GET, HEAD\r\n"));
}

TEST(HttpRoute, MetricsUsesTheExpositionContentType) {
  const std::string wire = serialize(get("/metrics", FixedHealth{}));
  EXPECT_EQ(wire.rfind("HTTP/1.1 200 OK\r\n", 0), 0U);
  EXPECT_TRUE(contains(wire, "Content-Type: text/plain; version=0.0.4"));
  EXPECT_TRUE(contains(wire, "Content-Length: 5\r\n"));
  EXPECT_TRUE(wire.ends_with("\r\n\r\nup 1\n"));
}

TEST(HttpRoute, HeadSendsHeadersOnly) {
  const std::string wire = serialize(get("/metrics", FixedHealth{}, "HEAD"));
  EXPECT_TRUE(contains(wire, "Content-Length: 5\r\n"));
  EXPECT_TRUE(wire.ends_with("\r\n\r\n"));
}

TEST(HttpRoute, ReadyzAndHealthSayWhyNot) {
  FixedHealth h;
  h.ready = "no quorum: \"x\"";
  EXPECT_EQ(get("/readyz", h).status, 503);
  EXPECT_EQ(get("/readyz", h).body, "no quorum: \"x\"\n");
  EXPECT_EQ(get("/livez", h).status, 200);
  const HttpResponse health = get("/health", h);
  EXPECT_EQ(health.status, 503);
  EXPECT_EQ(health.body, "{\"health\":\"false\",\"reason\":\"no quorum: \\\"x\\\"\"}\n");
  h.ready.clear();
  EXPECT_EQ(get("/health", h).body, "{\"health\":\"true\",\"reason\":\"\"}\n");
  h.live = "the applier thread has not ticked for 4000 ms";
  EXPECT_EQ(get("/livez", h).status, 503);
}

TEST(Histogram, BucketsAreCumulativeInTheText) {
  NodeMetrics m;
  m.fsync_duration.observe(std::chrono::microseconds(50));  // <= 100 µs
  m.fsync_duration.observe(milliseconds(3));                // <= 5 ms
  m.fsync_duration.observe(seconds(20));                    // +Inf only
  const std::string text = format_metrics(m, ProcessStats{}, Time{} + seconds(100));
  EXPECT_TRUE(contains(text, "# TYPE kvpaxos_disk_fsync_duration_seconds histogram\n"));
  EXPECT_TRUE(contains(text, "kvpaxos_disk_fsync_duration_seconds_bucket{le=\"0.0001\"} 1\n"));
  EXPECT_TRUE(contains(text, "kvpaxos_disk_fsync_duration_seconds_bucket{le=\"0.0025\"} 1\n"));
  EXPECT_TRUE(contains(text, "kvpaxos_disk_fsync_duration_seconds_bucket{le=\"0.005\"} 2\n"));
  EXPECT_TRUE(contains(text, "kvpaxos_disk_fsync_duration_seconds_bucket{le=\"10\"} 2\n"));
  EXPECT_TRUE(contains(text, "kvpaxos_disk_fsync_duration_seconds_bucket{le=\"+Inf\"} 3\n"));
  EXPECT_TRUE(contains(text, "kvpaxos_disk_fsync_duration_seconds_count 3\n"));
  EXPECT_TRUE(contains(text, "kvpaxos_disk_fsync_duration_seconds_sum 20.00305"));
}

TEST(Exposition, EveryFamilyHasHelpAndTypeAndPeersAreLabelled) {
  NodeMetrics m;
  m.self = 0;
  m.peer_names = {"n1", "n\"2"};
  m.peers[1].member = true;
  m.peers[1].bytes_sent = 42;
  ApplierReport r;
  r.leader = 0;
  r.voters_mask = 0b11;
  r.client_replies[0] = 7;
  publish(m, LogicReport{.applier = r, .proposer = ProposerReport{.pending = 2}});
  const std::string text = format_metrics(m, ProcessStats{}, Time{} + seconds(100));
  EXPECT_TRUE(contains(text, "kvpaxos_network_peer_sent_bytes_total{peer=\"n\\\"2\"} 42\n"));
  EXPECT_TRUE(contains(text, "kvpaxos_client_replies_total{code=\"ok\"} 7\n"));
  EXPECT_TRUE(contains(text, "kvpaxos_server_is_leader 1\n"));
  EXPECT_TRUE(contains(text, "kvpaxos_server_proposals_pending 2\n"));
  // Each sample's family was announced by a # TYPE line before it.
  std::size_t pos = 0;
  std::string announced;
  while (pos < text.size()) {
    const std::size_t eol = text.find('\n', pos);
    const std::string line = text.substr(pos, eol - pos);
    pos = eol + 1;
    if (line.rfind("# TYPE ", 0) == 0) {
      announced = line.substr(7, line.find(' ', 7) - 7);
      continue;
    }
    if (line.rfind("# HELP ", 0) == 0) continue;
    EXPECT_EQ(line.rfind(announced, 0), 0U) << line;
  }
}

TEST(Exposition, ClientRequestsByOpAndCodeAndTheirCumulativeLatencyHistograms) {
  NodeMetrics m;
  m.client_requests.count(ClientOp::put, ReplyCode::ok);
  m.client_requests.count(ClientOp::put, ReplyCode::ok);
  m.client_requests.count(ClientOp::invalid, ReplyCode::bad_request);
  m.client_requests.count(ClientOp::get, ReplyCode::permission_denied);
  m.client_requests.observe(ClientOp::put, milliseconds(3));
  m.client_requests.observe(ClientOp::put, seconds(20));  // past the last bound: only +Inf
  const std::string text = format_metrics(m, ProcessStats{}, Time{});
  const std::string put = "kvpaxos_client_request_duration_seconds_bucket{op=\"put\",le=";
  const std::string lines[] = {
      "# HELP kvpaxos_client_requests_total Client requests",
      "\n# TYPE kvpaxos_client_requests_total counter\n",
      "\nkvpaxos_client_requests_total{op=\"put\",code=\"ok\"} 2\n",
      "\nkvpaxos_client_requests_total{op=\"invalid\",code=\"bad_request\"} 1\n",
      "\nkvpaxos_client_requests_total{op=\"get\",code=\"permission_denied\"} 1\n",
      // Every pair is exported from the start, so rate() sees the first one.
      "\nkvpaxos_client_requests_total{op=\"watch\",code=\"overloaded\"} 0\n",
      "# HELP kvpaxos_client_request_duration_seconds Time from",
      "\n# TYPE kvpaxos_client_request_duration_seconds histogram\n",
      "\n" + put + "\"0.0025\"} 0\n",
      "\n" + put + "\"0.005\"} 1\n",
      "\n" + put + "\"10\"} 1\n",  // cumulative: still the 3 ms one
      "\n" + put + "\"+Inf\"} 2\n",
      "\nkvpaxos_client_request_duration_seconds_sum{op=\"put\"} 20.003\n",
      "\nkvpaxos_client_request_duration_seconds_count{op=\"put\"} 2\n",
      "\nkvpaxos_client_request_duration_seconds_count{op=\"get\"} 0\n",
  };
  for (const std::string& line : lines) EXPECT_TRUE(contains(text, line)) << line;
  // One HELP and one TYPE line per family, however many ops.
  std::size_t types = 0;
  for (std::size_t at = text.find("# TYPE kvpaxos_client_request"); at != std::string::npos;
       at = text.find("# TYPE kvpaxos_client_request", at + 1)) {
    ++types;
  }
  EXPECT_EQ(types, 2u);
}

TEST(Exposition, ClientRepliesCoverEveryReplyCode) {
  NodeMetrics m;
  ApplierReport r;
  r.client_replies[static_cast<std::size_t>(ReplyCode::permission_denied)] = 4;
  publish(m, LogicReport{.applier = r, .proposer = std::nullopt});
  const std::string text = format_metrics(m, ProcessStats{}, Time{});
  EXPECT_TRUE(contains(text, "kvpaxos_client_replies_total{code=\"permission_denied\"} 4\n"));
}

TEST(Exposition, AuthFailuresOnlyWithAZapHandler) {
  NodeMetrics m;
  EXPECT_FALSE(contains(format_metrics(m, ProcessStats{}, Time{}), "kvpaxos_auth_failures_total"));
  m.auth_failures = [] { return std::uint64_t{3}; };
  EXPECT_TRUE(contains(format_metrics(m, ProcessStats{}, Time{}), "\nkvpaxos_auth_failures_total 3\n"));
}

TEST(Publish, CountsLeaderChangesButNotTheFirstLeader) {
  NodeMetrics m;
  ApplierReport r;
  r.leader = 1;
  publish(m, LogicReport{.applier = r, .proposer = std::nullopt});
  publish(m, LogicReport{.applier = r, .proposer = std::nullopt});
  EXPECT_EQ(m.leader_changes.load(), 0U);
  r.leader = 2;
  publish(m, LogicReport{.applier = r, .proposer = std::nullopt});
  r.leader = 1;
  publish(m, LogicReport{.applier = r, .proposer = std::nullopt});
  EXPECT_EQ(m.leader_changes.load(), 2U);
}

// Three voters, this node is 0.
void three_voters(NodeMetrics& m, Time now) {
  m.self = 0;
  ApplierReport r;
  r.voters_mask = 0b111;
  r.decided_below = 10;
  r.applied_below = 10;
  publish(m, LogicReport{.applier = r, .proposer = std::nullopt});
  for (std::size_t a = 1; a <= 6; ++a) m.heartbeat_ns[a] = clock_ns(now);
}

TEST(Readiness, NeedsAMajorityHeardRecently) {
  const Time now = Time{} + seconds(1000);
  NodeMetrics m;
  three_voters(m, now);
  EXPECT_FALSE(has_quorum(m, now));
  EXPECT_TRUE(contains(not_ready_reason(m, now), "no quorum"));
  m.peers[2].last_heard_ns = clock_ns(now - milliseconds(500));
  EXPECT_TRUE(has_quorum(m, now));
  EXPECT_EQ(not_ready_reason(m, now), "");
  // Heard, but too long ago.
  EXPECT_FALSE(has_quorum(m, now + kPeerSilence + seconds(1)));
}

TEST(Readiness, ABigApplyBacklogIsNotReady) {
  const Time now = Time{} + seconds(1000);
  NodeMetrics m;
  three_voters(m, now);
  m.peers[1].last_heard_ns = clock_ns(now);
  m.decided_below = 10 + kMaxApplyBacklog + 1;
  EXPECT_TRUE(contains(not_ready_reason(m, now), "applying"));
}

TEST(Liveness, AStaleActorOrAStuckFsyncIsNotLiveAndNeverNeedsPeers) {
  const Time now = Time{} + seconds(1000);
  NodeMetrics m;
  three_voters(m, now);
  EXPECT_EQ(not_live_reason(m, now), "");  // no peer heard: still live
  m.heartbeat_ns[static_cast<std::size_t>(Actor::applier)] = clock_ns(now - seconds(4));
  EXPECT_TRUE(contains(not_live_reason(m, now), "applier"));
  m.heartbeat_ns[static_cast<std::size_t>(Actor::applier)] = clock_ns(now);
  m.fsync_started_ns = clock_ns(now - seconds(6));
  EXPECT_TRUE(contains(not_live_reason(m, now), "fsync"));
  EXPECT_TRUE(contains(not_ready_reason(m, now), "not live"));
}

}  // namespace
}  // namespace kvpaxos
