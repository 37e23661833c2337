// The front door's request metrics: each answered request counted once by
// op and reply code, and timed from its frame's receipt to its reply where
// the reply names it; and the peeks that label frames and replies without
// decoding them.
#include <gtest/gtest.h>

#include <chrono>

#include "actors/kv/front_door.hpp"
#include "actors/kv/message_peek.hpp"

namespace kvpaxos {
namespace {

using std::chrono::milliseconds;

const Time t0 = Time{} + std::chrono::seconds(1000);

ToClient only_reply(const Outbox& out) {
  EXPECT_EQ(out.size(), 1u);
  return std::get<ToClient>(out.at(0).body);
}

ToClient client_reply(ClientId client, std::uint64_t seq, ReplyCode code) {
  return ToClient{"r", encode(ClientReply{client, seq, code}), client, seq};
}

// The observations of `op` in its histogram: (count, sum in seconds).
std::pair<std::uint64_t, double> timed(const ClientRequestMetrics& m, ClientOp op) {
  std::uint64_t n = 0;
  for (const std::uint64_t c : m.duration(op).counts()) n += c;
  return {n, m.duration(op).sum_seconds()};
}

TEST(FrontDoorMetrics, AnsweredRequestIsCountedByOpAndCodeAndTimedToItsReply) {
  ClientRequestMetrics m;
  FrontDoor door(0, false);
  door.set_metrics(&m);
  Outbox out;
  door.on_client_frame("r", encode(ClientRequest{7, 1, 0, OpKind::put, "k", "v"}), out, true, t0);
  door.on_client_frame("r", encode(ClientRequest{8, 1, 0, OpKind::get, "k"}), out, true, t0);
  EXPECT_EQ(m.requests(ClientOp::put, ReplyCode::ok), 0u);  // not answered yet
  door.on_reply(client_reply(7, 1, ReplyCode::ok), t0 + milliseconds(3));
  door.on_reply(client_reply(8, 1, ReplyCode::session_expired), t0 + milliseconds(40));
  EXPECT_EQ(m.requests(ClientOp::put, ReplyCode::ok), 1u);
  EXPECT_EQ(m.requests(ClientOp::get, ReplyCode::session_expired), 1u);
  EXPECT_EQ(m.requests(ClientOp::get, ReplyCode::ok), 0u);
  EXPECT_EQ(timed(m, ClientOp::put), (std::pair<std::uint64_t, double>{1, 0.003}));
  EXPECT_EQ(timed(m, ClientOp::get), (std::pair<std::uint64_t, double>{1, 0.04}));
  // The 3 ms put is in the bucket "le 0.005" (index 5), not below.
  EXPECT_EQ(m.duration(ClientOp::put).counts()[5], 1u);
  // A second reply to the same request (a retry answered from the session)
  // finds nothing in flight: counted once.
  door.on_reply(client_reply(7, 1, ReplyCode::ok), t0 + milliseconds(5));
  EXPECT_EQ(m.requests(ClientOp::put, ReplyCode::ok), 1u);
}

TEST(FrontDoorMetrics, RefusalsAreCountedByWhatWasAskedAndTimedToTheirSend) {
  ClientRequestMetrics m;
  FrontDoor door(0, false);
  door.set_metrics(&m);
  const std::pair<std::string, ClientOp> refused[] = {
      {encode(ClientRequest{1, 0, 0, OpKind::append, "k", "v"}), ClientOp::append},  // seq 0
      {encode(FaultRequest{.set_drop = true, .drop_rate = 0.5}), ClientOp::fault},
      {encode(ClientReply{}), ClientOp::invalid},  // no client may send a reply
      {"\x93\x01", ClientOp::invalid},             // undecodable
  };
  for (const auto& [frame, op] : refused) {
    Outbox out;
    door.on_client_frame("r", frame, out, true, t0);
    door.on_reply(only_reply(out), t0 + milliseconds(1));
  }
  EXPECT_EQ(m.requests(ClientOp::append, ReplyCode::bad_request), 1u);
  EXPECT_EQ(m.requests(ClientOp::fault, ReplyCode::fault_injection_disabled), 1u);
  EXPECT_EQ(m.requests(ClientOp::invalid, ReplyCode::bad_request), 2u);
  EXPECT_EQ(timed(m, ClientOp::invalid).first, 2u);
  EXPECT_EQ(timed(m, ClientOp::fault), (std::pair<std::uint64_t, double>{1, 0.001}));
  Outbox out;
  door.on_malformed_message("r", 3, out, t0);
  door.on_reply(only_reply(out), t0);
  EXPECT_EQ(m.requests(ClientOp::invalid, ReplyCode::bad_request), 3u);
}

TEST(FrontDoorMetrics, AnOverloadedRefusalIsLabelledWithTheOpItWasNotDecodedFor) {
  ClientRequestMetrics m;
  FrontDoor door(0, false, AdmissionLimits{.connection_bytes = 10, .node_bytes = 1000});
  door.set_metrics(&m);
  Outbox out;
  door.on_client_frame("r", encode(ClientRequest{1, 1, 0, OpKind::put, "k", "v"}), out, true, t0);
  out.clear();
  door.on_client_frame("r", encode(ClientRequest{2, 1, 0, OpKind::range, "a"}), out, true, t0);
  ASSERT_EQ(door.overloaded(), 1u);
  door.on_reply(only_reply(out), t0);
  EXPECT_EQ(m.requests(ClientOp::range, ReplyCode::overloaded), 1u);
}

TEST(FrontDoorMetrics, RepliesThatNameNoRequestAreCountedUntimedAndWatchEventsNotAtAll) {
  ClientRequestMetrics m;
  FrontDoor door(0, true);
  door.set_metrics(&m);
  door.on_reply(ToClient{"r", encode(StatusReply{})}, t0);
  door.on_reply(ToClient{"r", encode(FaultReply{})}, t0);
  door.on_reply(ToClient{"r", encode(SnapshotSaveReply{.code = ReplyCode::bad_request})}, t0);
  door.on_reply(ToClient{"r", encode(WatchResponse{.watch_id = 1, .created = true})}, t0);
  door.on_reply(ToClient{"r", encode(WatchResponse{.watch_id = 1, .events = {WatchEvent{}}})}, t0);
  EXPECT_EQ(m.requests(ClientOp::status, ReplyCode::ok), 1u);
  EXPECT_EQ(m.requests(ClientOp::fault, ReplyCode::ok), 1u);
  EXPECT_EQ(m.requests(ClientOp::snapshot_save, ReplyCode::bad_request), 1u);
  EXPECT_EQ(m.requests(ClientOp::watch, ReplyCode::ok), 1u);
  for (const ClientOp op : {ClientOp::status, ClientOp::fault, ClientOp::watch}) {
    EXPECT_EQ(timed(m, op).first, 0u) << to_string(op);
  }
  // A reply to a ClientRequest this door never admitted names no op.
  const auto ok_total = [&m] {
    std::uint64_t n = 0;
    for (std::size_t op = 0; op < kClientOps; ++op) {
      n += m.requests(static_cast<ClientOp>(op), ReplyCode::ok);
    }
    return n;
  };
  const std::uint64_t before = ok_total();
  door.on_reply(client_reply(9, 4, ReplyCode::ok), t0);
  EXPECT_EQ(ok_total(), before);
}

TEST(MessagePeek, ReadsTheOpOfEveryClientMessage) {
  const ClientId big = 0xfedcba9876543210ULL;  // packed as uint64
  EXPECT_EQ(peek_request_op(encode(ClientRequest{big, 70000, 300, OpKind::txn})), ClientOp::txn);
  EXPECT_EQ(peek_request_op(encode(ClientRequest{1, 1, 0, OpKind::delete_range, "a"})),
            ClientOp::delete_range);
  EXPECT_EQ(peek_request_op(encode(ClientRequest{1, 1, 0, OpKind::member})), ClientOp::member);
  EXPECT_EQ(peek_request_op(encode(StatusRequest{})), ClientOp::status);
  EXPECT_EQ(peek_request_op(encode(WatchRequest{})), ClientOp::watch);
  EXPECT_EQ(peek_request_op(encode(SnapshotSaveRequest{})), ClientOp::snapshot_save);
  EXPECT_EQ(peek_request_op(encode(FaultRequest{})), ClientOp::fault);
  EXPECT_EQ(peek_request_op(encode(ClientReply{})), ClientOp::invalid);
  EXPECT_EQ(peek_request_op(encode(ClientRequest{1, 1, 0, static_cast<OpKind>(99)})),
            ClientOp::invalid);
  for (const char* garbage : {"", "\x93", "\x93\x64\x01", "\x92\x64\x01", "\xc0"}) {
    EXPECT_EQ(peek_request_op(garbage), ClientOp::invalid) << garbage;
  }
}

TEST(MessagePeek, ReadsTheTypeAndCodeOfEveryReplyAndNothingFromTruncatedOnes) {
  const std::string reply =
      encode(ClientReply{0xfedcba9876543210ULL, 1ULL << 40, ReplyCode::permission_denied, "v"});
  const std::optional<ReplyKind> kind = peek_reply(reply);
  ASSERT_TRUE(kind.has_value());
  EXPECT_EQ(kind->type, MessageType::client_reply);
  EXPECT_EQ(kind->code, ReplyCode::permission_denied);
  EXPECT_EQ(peek_reply(encode(ErrorReply{ReplyCode::overloaded, "x"}))->code, ReplyCode::overloaded);
  EXPECT_TRUE(peek_reply(encode(WatchResponse{.created = true}))->watch_created);
  EXPECT_FALSE(peek_reply(encode(WatchResponse{.canceled = true}))->watch_created);
  EXPECT_EQ(peek_reply(encode(StatusReply{}))->type, MessageType::status_reply);
  EXPECT_FALSE(peek_reply(encode(StatusRequest{})).has_value());  // not a reply
  // Cut inside the client id, before the code: unreadable.
  EXPECT_FALSE(peek_reply(std::string_view(reply).substr(0, 8)).has_value());
}

}  // namespace
}  // namespace kvpaxos
