#include <gtest/gtest.h>

#include "actors/kv/front_door.hpp"

namespace kvpaxos {
namespace {

// The one reply the front door sent straight back, decoded.
ErrorReply immediate_error(const Outbox& out) {
  EXPECT_EQ(out.size(), 1u);
  const auto& to_client = std::get<ToClient>(out.at(0).body);
  Result<Body> body = decode(to_client.body);
  EXPECT_TRUE(body.ok());
  return std::get<ErrorReply>(body.value());
}

TEST(FrontDoor, RoutesValidRequestsToTheApplier) {
  FrontDoor door(0, false);
  Outbox out;
  door.on_client_frame("r1", encode(ClientRequest{1, 1, 0, OpKind::put, "k", "v"}), out);
  ASSERT_EQ(out.size(), 1u);
  EXPECT_EQ(out[0].to, (Address{0, Actor::applier}));
  EXPECT_EQ(std::get<FromClient>(out[0].body).route, "r1");
  out.clear();
  door.on_client_frame("r2", encode(StatusRequest{}), out);
  ASSERT_EQ(out.size(), 1u);
  EXPECT_TRUE(std::holds_alternative<StatusFromClient>(out[0].body));
}

TEST(FrontDoor, RefusesFaultInjectionUnlessEnabled) {
  const FaultRequest cut{.set_reach = true, .reach_all = false, .reach = {"n1"}};
  Outbox out;
  FrontDoor(0, false).on_client_frame("r", encode(cut), out);
  const ErrorReply e = immediate_error(out);
  EXPECT_EQ(e.code, ReplyCode::fault_injection_disabled);
  EXPECT_NE(e.error.find("--fault-injection"), std::string::npos);
  out.clear();
  FrontDoor(0, true).on_client_frame("r", encode(cut), out);
  ASSERT_EQ(out.size(), 1u);
  EXPECT_EQ(out[0].to, (Address{0, Actor::peer_link}));
}

TEST(FrontDoor, RejectsInvalidRequestsWithAReason) {
  FrontDoor door(0, true);
  const std::vector<std::pair<std::string, std::string>> bad = {
      {"seq zero", encode(ClientRequest{1, 0, 0, OpKind::put, "k", "v"})},
      {"ack not below seq", encode(ClientRequest{1, 2, 2, OpKind::put, "k", "v"})},
      {"get with a value", encode(ClientRequest{1, 1, 0, OpKind::get, "k", "v"})},
      {"drop rate above 1", encode(FaultRequest{.set_drop = true, .drop_rate = 1.5})},
      {"a reply type", encode(ClientReply{})},
      {"garbage", "\x93\x01"},
  };
  for (const auto& [what, frame] : bad) {
    Outbox out;
    door.on_client_frame("r", frame, out);
    const ErrorReply e = immediate_error(out);
    EXPECT_EQ(e.code, ReplyCode::bad_request) << what;
    EXPECT_FALSE(e.error.empty()) << what;
  }
  EXPECT_EQ(door.rejected(), bad.size());
}

// A node that runs with keys lets peers in by their configuration entry's
// key: a member added without one could never connect, so it is refused
// before it reaches the log, and so is a key that is not a Z85 public key.
TEST(FrontDoor, AKeyedNodeRefusesAMemberAddWithoutAValidKey) {
  auto add = [](std::string key) {
    return encode(ClientRequest{.client_id = 1, .seq = 1, .op = OpKind::member,
                                .member = MemberChange{.kind = MemberChangeKind::add_learner,
                                                       .name = "n4",
                                                       .peer_endpoint = "tcp://127.0.0.1:7104",
                                                       .peer_key = std::move(key)}});
  };
  const std::string key = "rq:rM>}U?@Lns47E1%kR.o@n%FcmmsL/@{H8]yf7";  // ZeroMQ RFC 32's example
  FrontDoor keyed(0, false);
  keyed.set_peer_keys_required(true);
  Outbox out;
  keyed.on_client_frame("r", add(""), out);
  ErrorReply e = immediate_error(out);
  EXPECT_EQ(e.code, ReplyCode::bad_request);
  EXPECT_NE(e.error.find("--peer-key n4.key"), std::string::npos) << e.error;
  out.clear();
  keyed.on_client_frame("r", add(std::string(40, '~')), out);
  e = immediate_error(out);
  EXPECT_NE(e.error.find("Z85"), std::string::npos) << e.error;
  out.clear();
  keyed.on_client_frame("r", add(key), out);
  ASSERT_EQ(out.size(), 1u);
  EXPECT_EQ(out[0].to, (Address{0, Actor::applier}));

  FrontDoor keyless(0, false);
  out.clear();
  keyless.on_client_frame("r", add(""), out);
  ASSERT_EQ(out.size(), 1u);
  EXPECT_EQ(out[0].to, (Address{0, Actor::applier})) << "without keys a member needs none";
}

// Who votes and whose keys the peer ports let in is the cluster's security:
// only an admin connection changes it. Anyone may read it.
TEST(FrontDoor, OnlyAnAdminChangesTheMembership) {
  auto member = [](MemberChangeKind kind) {
    MemberChange c{.kind = kind};
    if (kind == MemberChangeKind::add_learner) {
      c.name = "n4";
      c.peer_endpoint = "tcp://127.0.0.1:7104";
    } else if (kind != MemberChangeKind::list) {
      c.target = 2;
    }
    if (kind == MemberChangeKind::replace) c.other = 3;
    if (kind == MemberChangeKind::update) c.client_endpoint = "tcp://127.0.0.1:7204";
    return encode(ClientRequest{.client_id = 1, .seq = 1, .op = OpKind::member, .member = c});
  };
  FrontDoor door(0, false);
  for (MemberChangeKind kind : {MemberChangeKind::add_learner, MemberChangeKind::promote,
                                MemberChangeKind::remove, MemberChangeKind::replace,
                                MemberChangeKind::update}) {
    Outbox out;
    door.on_client_frame("r", member(kind), out, /*admin=*/false);
    const ErrorReply e = immediate_error(out);
    EXPECT_EQ(e.code, ReplyCode::permission_denied) << to_string(kind);
    EXPECT_NE(e.error.find("needs an admin key"), std::string::npos) << e.error;
    EXPECT_NE(e.error.find("--admin-keys"), std::string::npos) << e.error;
    out.clear();
    door.on_client_frame("r", member(kind), out, /*admin=*/true);
    ASSERT_EQ(out.size(), 1u) << to_string(kind);
    EXPECT_EQ(out[0].to, (Address{0, Actor::applier})) << to_string(kind);
  }
  Outbox out;
  door.on_client_frame("r", member(MemberChangeKind::list), out, /*admin=*/false);
  ASSERT_EQ(out.size(), 1u);
  EXPECT_EQ(out[0].to, (Address{0, Actor::applier})) << "reading the membership needs no admin";
  out.clear();
  door.on_client_frame("r", encode(ClientRequest{1, 1, 0, OpKind::put, "k", "v"}), out,
                       /*admin=*/false);
  ASSERT_EQ(out.size(), 1u);
  EXPECT_EQ(out[0].to, (Address{0, Actor::applier})) << "nor does a put";
}

// ------------------------------------------------------------ admission control

constexpr AdmissionLimits kSmallLimits{.connection_bytes = 3000, .node_bytes = 5000,
                                       .request_overhead_bytes = 0};

std::string put_frame(ClientId client, std::uint64_t seq, std::size_t value_bytes) {
  return encode(ClientRequest{client, seq, seq - 1, OpKind::put, "k", std::string(value_bytes, 'v')});
}

// The front door's answer to one frame: admitted (routed to the applier) or the refusal.
std::optional<ErrorReply> refusal(FrontDoor& door, const std::string& route, const std::string& frame) {
  Outbox out;
  door.on_client_frame(route, frame, out);
  if (out.size() == 1 && out[0].to == Address{0, Actor::applier}) return std::nullopt;
  return immediate_error(out);
}

ToClient reply_to(const std::string& route, ClientId client, std::uint64_t seq) {
  return ToClient{route, encode(ClientReply{client, seq, ReplyCode::ok, {}, {}}), client, seq};
}

TEST(FrontDoor, ConnectionPastItsBytesInFlightIsRefusedOverloadedUntilRepliesDrainIt) {
  FrontDoor door(0, false, kSmallLimits);
  EXPECT_FALSE(refusal(door, "a", put_frame(1, 1, 1400)));
  EXPECT_FALSE(refusal(door, "a", put_frame(1, 2, 1400)));  // a client not waiting for replies
  const std::optional<ErrorReply> refused = refusal(door, "a", put_frame(1, 3, 1400));
  ASSERT_TRUE(refused);
  EXPECT_EQ(refused->code, ReplyCode::overloaded);
  EXPECT_NE(refused->error.find("bytes in flight from this connection"), std::string::npos);
  EXPECT_NE(refused->error.find("retry later"), std::string::npos);
  EXPECT_EQ(door.overloaded(), 1u);
  EXPECT_FALSE(refusal(door, "b", put_frame(2, 1, 100))) << "other connections still get in";
  // The reply to seq 2 also releases seq 1, which the applier replaced.
  door.on_reply(reply_to("a", 1, 2));
  EXPECT_EQ(door.bytes_in_flight("a"), 0u);
  EXPECT_FALSE(refusal(door, "a", put_frame(1, 3, 1400)));
}

TEST(FrontDoor, NodePastItsBytesInFlightRefusesEveryConnectionUntilItDrains) {
  FrontDoor door(0, false, kSmallLimits);
  for (ClientId c = 1; c <= 4; ++c) EXPECT_FALSE(refusal(door, "c" + std::to_string(c), put_frame(c, 1, 1100)));
  const std::optional<ErrorReply> refused = refusal(door, "c5", put_frame(5, 1, 1100));
  ASSERT_TRUE(refused);
  EXPECT_EQ(refused->code, ReplyCode::overloaded);
  EXPECT_NE(refused->error.find("on this node"), std::string::npos);
  door.on_reply(reply_to("c1", 1, 1));
  EXPECT_FALSE(refusal(door, "c5", put_frame(5, 1, 1100)));
}

TEST(FrontDoor, AnIdleConnectionAlwaysGetsOneRequestInWhateverItsSize) {
  FrontDoor door(0, false, kSmallLimits);
  EXPECT_FALSE(refusal(door, "a", put_frame(1, 1, 10'000)));
  EXPECT_TRUE(refusal(door, "a", put_frame(1, 2, 10)));
  EXPECT_TRUE(refusal(door, "b", put_frame(2, 1, 10))) << "the node budget is spent";
}

TEST(FrontDoor, RefusedAndMalformedFramesAndRepliesToNothingChargeNothing) {
  FrontDoor door(0, false, kSmallLimits);
  EXPECT_TRUE(refusal(door, "a", "\xc1 garbage"));
  EXPECT_TRUE(refusal(door, "a", encode(ClientRequest{1, 0, 0, OpKind::put, "k", "v"})));
  door.on_reply(ToClient{"a", encode(StatusReply{}), 0, 0});
  EXPECT_EQ(door.bytes_in_flight(), 0u);
  EXPECT_FALSE(refusal(door, "a", put_frame(1, 1, 10)));
  EXPECT_GT(door.bytes_in_flight(), 0u);
  door.on_reply(reply_to("elsewhere", 1, 1));  // the reply went to the client's retry route
  EXPECT_EQ(door.bytes_in_flight(), 0u);
}

}  // namespace
}  // namespace kvpaxos
