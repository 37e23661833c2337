#include <gtest/gtest.h>

#include "actors/front_door.hpp"

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

}  // namespace
}  // namespace kvpaxos
