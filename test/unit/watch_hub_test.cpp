// WatchHub alone: events in revision order with no gap and no repeat, the
// history bound and "compacted", the flow-control window, progress
// notifications, limits, and the applier feeding it applied changes.
#include "actors/kv/watch_hub.hpp"

#include <gtest/gtest.h>

#include "actors/kv/applier.hpp"
#include "messages/codec.hpp"
#include "messages/kv_op.hpp"

namespace kvpaxos {
namespace {

using std::chrono::milliseconds;
using std::chrono::seconds;

// A store's changes, numbered as the state machine numbers them.
struct Changes {
  std::uint64_t revision = 0;
  std::vector<WatchEvent> put(const std::string& key, const std::string& value) {
    ++revision;
    return {{EventType::put, {key, value, revision, revision, 1}}};
  }
};

struct HubRig {
  explicit HubRig(WatchLimits limits = {}) : hub(0, limits) {}
  WatchHub hub;
  Changes store;
  Time now{};
  Outbox out;

  void apply(const std::string& key, const std::string& value) {
    std::vector<WatchEvent> events = store.put(key, value);
    hub.on_events(events, store.revision, now, out);
    EXPECT_EQ(hub.check_invariants(), "");
  }
  void request(const std::string& route, WatchRequest r) {
    hub.on_request(route, r, store.revision, now, out);
    EXPECT_EQ(hub.check_invariants(), "");
  }
  void watch(const std::string& route, std::uint64_t id, const std::string& key,
             const std::string& range_end = {}, std::uint64_t start = 0) {
    request(route, WatchRequest{.watch_id = id, .key = key, .range_end = range_end,
                                .start_revision = start});
  }
  void ack(const std::string& route, std::uint64_t id, std::uint64_t revision) {
    request(route, WatchRequest{.watch_id = id, .ack = true, .ack_revision = revision});
  }
  void tick(Duration after) {
    now += after;
    hub.tick(store.revision, now, out);
    EXPECT_EQ(hub.check_invariants(), "");
  }
  // The responses sent to `route` since the last call.
  std::vector<WatchResponse> take(const std::string& route) {
    std::vector<WatchResponse> got;
    Outbox rest;
    for (Outbound& m : out) {
      const auto& to = std::get<ToClient>(m.body);
      if (to.route != route) {
        rest.push_back(std::move(m));
        continue;
      }
      Result<Body> body = decode(to.body, kMaxClientFrameBytes, kMaxReplyMessageValues);
      EXPECT_TRUE(body.ok()) << body.error();
      got.push_back(std::get<WatchResponse>(body.value()));
    }
    out = std::move(rest);
    return got;
  }
};

std::vector<std::uint64_t> revisions_of(const std::vector<WatchResponse>& responses) {
  std::vector<std::uint64_t> revs;
  for (const WatchResponse& r : responses) {
    for (const WatchEvent& e : r.events) revs.push_back(e.kv.mod_revision);
  }
  return revs;
}

TEST(WatchHub, AWatchFromNowGetsTheChangesInItsRangeInOrder) {
  HubRig r;
  r.apply("a", "0");
  r.watch("c1", 7, "k/", prefix_end("k/"));
  std::vector<WatchResponse> created = r.take("c1");
  ASSERT_EQ(created.size(), 1u);
  EXPECT_TRUE(created[0].created);
  EXPECT_EQ(created[0].revision, 1u) << "every change up to the current revision is behind it";
  r.apply("k/1", "x");
  r.apply("other", "y");
  r.apply("k/2", "z");
  std::vector<WatchResponse> got = r.take("c1");
  ASSERT_EQ(got.size(), 2u);
  EXPECT_EQ(got[0].events[0].kv.key, "k/1");
  EXPECT_EQ(got[0].events[0].kv.value, "x");
  EXPECT_EQ(got[1].events[0].kv.key, "k/2");
  EXPECT_EQ(got[1].revision, 4u);
  EXPECT_EQ(got[1].watch_id, 7u);
}

TEST(WatchHub, AWatchFromAnEarlierRevisionReplaysTheHistoryThenFollows) {
  HubRig r;
  for (int i = 0; i < 5; ++i) r.apply("k", std::to_string(i));
  r.watch("c1", 1, "k", {}, 3);
  r.apply("k", "5");
  std::vector<WatchResponse> got = r.take("c1");
  EXPECT_TRUE(got.front().created);
  EXPECT_EQ(got.front().revision, 2u);
  EXPECT_EQ(revisions_of(got), (std::vector<std::uint64_t>{3, 4, 5, 6}));
}

TEST(WatchHub, AWatchBeforeTheOldestKeptRevisionIsRefusedAsCompacted) {
  HubRig r({.history_events = 3});
  for (int i = 0; i < 6; ++i) r.apply("k", std::to_string(i));
  EXPECT_EQ(r.hub.history_start(), 4u);
  r.watch("c1", 1, "k", {}, 2);
  std::vector<WatchResponse> got = r.take("c1");
  ASSERT_EQ(got.size(), 1u);
  EXPECT_TRUE(got[0].canceled);
  EXPECT_EQ(got[0].compact_revision, 4u);
  EXPECT_NE(got[0].error.find("oldest revision kept is 4"), std::string::npos) << got[0].error;
  EXPECT_EQ(r.hub.watches(), 0u);
  r.watch("c1", 2, "k", {}, 4);
  EXPECT_EQ(revisions_of(r.take("c1")), (std::vector<std::uint64_t>{4, 5, 6}));
}

// The window: what the client has not acknowledged stops the stream; each
// ack lets more through, and the events add up to all of them, once each.
TEST(WatchHub, AConsumerThatDoesNotAckHoldsOnlyItsWindowAndMissesNothing) {
  HubRig r({.window_bytes = 200, .max_response_bytes = 100});
  r.watch("c1", 1, "k");
  r.take("c1");
  const std::string value(60, 'v');  // 60 + 1 + 32 bytes per event
  for (int i = 0; i < 20; ++i) r.apply("k", value);
  std::vector<WatchResponse> first = r.take("c1");
  EXPECT_EQ(revisions_of(first).size(), 3u) << "stops once 200 bytes are unacknowledged";
  EXPECT_LE(r.hub.unacked_bytes(), 200u + 93u);
  std::vector<std::uint64_t> all = revisions_of(first);
  for (int round = 0; round < 20 && all.size() < 20; ++round) {
    r.ack("c1", 1, all.back());
    std::vector<std::uint64_t> more = revisions_of(r.take("c1"));
    ASSERT_FALSE(more.empty()) << "an ack opens the window";
    all.insert(all.end(), more.begin(), more.end());
  }
  std::vector<std::uint64_t> expected;
  for (std::uint64_t rev = 1; rev <= 20; ++rev) expected.push_back(rev);
  EXPECT_EQ(all, expected);
}

// A consumer that stops reading falls behind the history and is cancelled
// with the oldest revision kept, instead of growing the node's memory.
TEST(WatchHub, AConsumerLeftBehindByTheHistoryIsCancelledWithWhereToResume) {
  HubRig r({.history_events = 10, .window_bytes = 100, .max_response_bytes = 100});
  r.watch("slow", 1, "k");
  r.take("slow");
  for (int i = 0; i < 30; ++i) r.apply("k", "some value");
  // Three events fill its window (43 bytes each); at revision 14 the
  // history (10 events) no longer holds its next one, 4.
  std::vector<WatchResponse> got = r.take("slow");
  ASSERT_EQ(got.size(), 4u);
  EXPECT_EQ(revisions_of(got), (std::vector<std::uint64_t>{1, 2, 3}));
  EXPECT_TRUE(got.back().canceled);
  EXPECT_EQ(got.back().compact_revision, 5u);
  EXPECT_EQ(got.back().revision, 3u) << "what it had been sent";
  EXPECT_EQ(r.hub.watches(), 0u);
  EXPECT_EQ(r.hub.cancelled_behind(), 1u);
  EXPECT_EQ(r.hub.unacked_bytes(), 0u) << "its window is released";
  r.ack("slow", 1, 3);
  got = r.take("slow");
  ASSERT_EQ(got.size(), 1u);
  EXPECT_TRUE(got[0].canceled);
  EXPECT_NE(got[0].error.find("no such watch"), std::string::npos);
}

TEST(WatchHub, AnIdleWatchHearsTheRevisionEveryProgressInterval) {
  HubRig r({.progress_interval = seconds(2)});
  r.watch("c1", 1, "quiet");
  r.take("c1");
  r.apply("busy", "1");
  r.apply("busy", "2");
  r.tick(milliseconds(1500));
  EXPECT_TRUE(r.take("c1").empty()) << "not yet";
  r.tick(milliseconds(600));
  std::vector<WatchResponse> got = r.take("c1");
  ASSERT_EQ(got.size(), 1u);
  EXPECT_TRUE(got[0].events.empty());
  EXPECT_FALSE(got[0].canceled);
  EXPECT_EQ(got[0].revision, 2u) << "every change up to 2 was looked at: none was in range";
}

TEST(WatchHub, AWatchWhoseClientStaysSilentIsDropped) {
  HubRig r({.progress_interval = seconds(2), .client_timeout = seconds(30)});
  r.watch("gone", 1, "k");
  r.watch("alive", 1, "k");
  for (int i = 0; i < 14; ++i) {
    r.tick(seconds(2));
    r.ack("alive", 1, r.store.revision);
  }
  r.tick(seconds(3));
  EXPECT_EQ(r.hub.watches(), 1u);
  std::vector<WatchResponse> got = r.take("gone");
  ASSERT_FALSE(got.empty());
  EXPECT_TRUE(got.back().canceled);
  EXPECT_NE(got.back().error.find("no ack"), std::string::npos) << got.back().error;
}

TEST(WatchHub, WatchesAreLimitedPerConnectionAndIdsAreUnique) {
  HubRig r({.max_watches_per_route = 2});
  r.watch("c1", 1, "a");
  r.watch("c1", 1, "b");
  r.watch("c1", 2, "b");
  r.watch("c1", 3, "c");
  r.watch("c2", 1, "a");
  std::vector<WatchResponse> got = r.take("c1");
  ASSERT_EQ(got.size(), 4u);
  EXPECT_TRUE(got[1].canceled);
  EXPECT_NE(got[1].error.find("already in use"), std::string::npos);
  EXPECT_TRUE(got[3].canceled);
  EXPECT_NE(got[3].error.find("too many watches"), std::string::npos);
  EXPECT_EQ(r.hub.watches(), 3u);
  r.request("c1", WatchRequest{.watch_id = 1, .cancel = true});
  EXPECT_TRUE(r.take("c1").back().canceled);
  EXPECT_EQ(r.hub.watches(), 2u);
}

// A snapshot install skips revisions: a watch that still needed one is told.
TEST(WatchHub, ASnapshotThatSkipsAWatchesRevisionsCancelsIt) {
  HubRig r;
  r.watch("c1", 1, "k");
  r.apply("k", "1");
  r.take("c1");
  r.store.revision = 50;  // a snapshot at revision 50
  r.hub.reset(50);
  r.apply("k", "after");
  std::vector<WatchResponse> got = r.take("c1");
  ASSERT_EQ(got.size(), 1u);
  EXPECT_TRUE(got[0].canceled);
  EXPECT_EQ(got[0].compact_revision, 51u);
}

// The applier feeds every applied change to its watches.
TEST(WatchHub, TheApplierStreamsAppliedChangesToAWatch) {
  Applier a(0, ApplierOptions{.name = "n1"});
  Outbox out;
  a.handle({0, Actor::front_door}, WatchFromClient{"c1", WatchRequest{.watch_id = 9, .key = "k"}},
           Time{}, out);
  out.clear();
  KvOp put = KvOp::from(ClientRequest{5, 1, 0, OpKind::put, "k", "v1"});
  KvOp del = KvOp::from(ClientRequest{.client_id = 5, .seq = 2, .ack = 1,
                                      .op = OpKind::delete_range, .key = "k"});
  a.handle({0, Actor::learner}, Apply{0, encode_batch(0, {encode_op(put), encode_op(del)})},
           Time{}, out);
  std::vector<WatchEvent> events;
  for (const Outbound& m : out) {
    const auto* to = std::get_if<ToClient>(&m.body);
    if (to == nullptr || to->route != "c1") continue;
    Result<Body> body = decode(to->body, kMaxClientFrameBytes, kMaxReplyMessageValues);
    ASSERT_TRUE(body.ok());
    for (const WatchEvent& e : std::get<WatchResponse>(body.value()).events) events.push_back(e);
  }
  ASSERT_EQ(events.size(), 2u);
  EXPECT_EQ(events[0].type, EventType::put);
  EXPECT_EQ(events[0].kv.value, "v1");
  EXPECT_EQ(events[1].type, EventType::del);
  EXPECT_EQ(events[1].kv.mod_revision, 2u);
  EXPECT_EQ(a.check_invariants(), "");
}

}  // namespace
}  // namespace kvpaxos
