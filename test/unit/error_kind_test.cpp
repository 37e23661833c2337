// Callers decide on an Error's kind, never on its text (messages/result.hpp).
#include <gtest/gtest.h>

#include <msgpack.hpp>

#include "actors/kv/front_door.hpp"
#include "messages/codec.hpp"

namespace kvpaxos {
namespace {

std::string frame_of_version(std::uint8_t version) {
  msgpack::sbuffer buf;
  msgpack::pack(buf, std::make_tuple(static_cast<std::uint8_t>(MessageType::status_request),
                                     version, std::make_tuple()));
  return std::string(buf.data(), buf.size());
}

TEST(ErrorKind, AnotherProtocolVersionIsItsOwnKindWithTheSameText) {
  Result<Body> decoded = decode(frame_of_version(9));
  ASSERT_FALSE(decoded.ok());
  EXPECT_EQ(decoded.error_kind(), ErrorKind::unsupported_version);
  EXPECT_EQ(decoded.error(), "unsupported protocol version 9 (this node speaks " +
                                 std::to_string(kProtocolVersion) + ")");
}

TEST(ErrorKind, OtherDecodeFailuresAreOfKindOther) {
  for (const std::string& bad : {std::string("\x93\x01"), std::string("\xc1"),
                                 encode(StatusRequest{}) + "x"}) {
    Result<Body> decoded = decode(bad);
    ASSERT_FALSE(decoded.ok());
    EXPECT_EQ(decoded.error_kind(), ErrorKind::other) << decoded.error();
  }
}

// The front door's reply code follows the kind: a client of another version
// is told so, with the decoder's words.
TEST(ErrorKind, FrontDoorAnswersAnotherVersionWithUnsupportedVersion) {
  FrontDoor door(0, false);
  Outbox out;
  door.on_client_frame("r", frame_of_version(static_cast<std::uint8_t>(kProtocolVersion + 1)), out);
  ASSERT_EQ(out.size(), 1u);
  Result<Body> reply = decode(std::get<ToClient>(out[0].body).body);
  ASSERT_TRUE(reply.ok());
  const auto& e = std::get<ErrorReply>(reply.value());
  EXPECT_EQ(e.code, ReplyCode::unsupported_version);
  EXPECT_EQ(e.error, "unsupported protocol version " + std::to_string(kProtocolVersion + 1) +
                         " (this node speaks " + std::to_string(kProtocolVersion) + ")");
}

}  // namespace
}  // namespace kvpaxos
