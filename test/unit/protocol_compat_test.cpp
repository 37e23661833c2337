// The data model appended fields to ClientRequest and ClientReply; a client
// written before it must keep working (docs/protocol.md, "Versioning").
#include <gtest/gtest.h>

#include <tuple>

#include "actors/kv/front_door.hpp"
#include "messages/codec.hpp"

namespace kvpaxos {
namespace {

// [type, version, fields] with the fields as a tuple, as an old client packs them.
template <typename... Fields>
std::string frame_of(MessageType type, const std::tuple<Fields...>& fields) {
  msgpack::sbuffer buf;
  msgpack::pack(buf, std::make_tuple(static_cast<std::uint8_t>(type), kProtocolVersion, fields));
  return {buf.data(), buf.size()};
}

TEST(ProtocolCompat, ASixFieldRequestOfAnOldClientDecodesWithTheNewFieldsEmpty) {
  const std::string old = frame_of(
      MessageType::client_request,
      std::make_tuple(ClientId{7}, std::uint64_t{2}, std::uint64_t{1},
                      static_cast<std::uint8_t>(OpKind::put), std::string("k"), std::string("v")));
  Result<Body> body = decode(old, kMaxClientFrameBytes);
  ASSERT_TRUE(body.ok()) << body.error();
  const auto& r = std::get<ClientRequest>(body.value());
  EXPECT_EQ(r.client_id, 7u);
  EXPECT_EQ(r.op, OpKind::put);
  EXPECT_EQ(r.value, "v");
  EXPECT_TRUE(r.range_end.empty());
  EXPECT_TRUE(r.compares.empty() && r.success.empty() && r.failure.empty());
  EXPECT_EQ(validate(r), "");
}

// ClientReply as it was before the data model.
struct OldReply {
  ClientId client_id = 0;
  std::uint64_t seq = 0;
  std::uint8_t code = 0;
  std::string value;
  std::string error;
  MSGPACK_DEFINE(client_id, seq, code, value, error)
};

// An old client reads a reply with msgpack-c's rules: the five fields it
// knows, the rest ignored.
TEST(ProtocolCompat, AnOldClientReadsTheFiveFieldsItKnowsOfANewReply) {
  ClientReply reply = ClientReply::ok(7, 2, OpResult{.value = "v", .revision = 42});
  reply.kvs.push_back({"k", "v", 1, 42, 3});
  const std::string bytes = encode(reply);
  msgpack::object_handle h = msgpack::unpack(bytes.data(), bytes.size());
  std::tuple<std::uint8_t, std::uint8_t, msgpack::object> outer;
  h.get().convert(outer);
  OldReply old;
  std::get<2>(outer).convert(old);
  EXPECT_EQ(std::get<0>(outer), static_cast<std::uint8_t>(MessageType::client_reply));
  EXPECT_EQ(old.client_id, 7u);
  EXPECT_EQ(old.seq, 2u);
  EXPECT_EQ(old.code, 0u);
  EXPECT_EQ(old.value, "v");
}

// Log entries written before the data model (seven-field ops) replay alike.
TEST(ProtocolCompat, ALogEntryOfSevenFieldOpsStillDecodes) {
  msgpack::sbuffer buf;
  msgpack::pack(buf, std::make_tuple(false, ClientId{7}, std::uint64_t{1}, std::uint64_t{0},
                                     static_cast<std::uint8_t>(OpKind::append), std::string("k"),
                                     std::string("x")));
  const std::string op(buf.data(), buf.size());
  Result<LogEntry> entry = decode_entry(encode_batch(2, {op, op}));
  ASSERT_TRUE(entry.ok()) << entry.error();
  ASSERT_EQ(entry->ops.size(), 2u);
  EXPECT_EQ(entry->author, 2u);
  EXPECT_EQ(entry->ops[1].op, OpKind::append);
  EXPECT_EQ(entry->ops[1].value, "x");
  EXPECT_TRUE(entry->ops[1].range_end.empty());
}

}  // namespace
}  // namespace kvpaxos
