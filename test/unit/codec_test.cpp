#include <gtest/gtest.h>

#include "messages/codec.hpp"
#include "messages/kv_op.hpp"

namespace kvpaxos {
namespace {

TEST(Codec, RoundTripsEveryPeerMessage) {
  const Body in = Promise{7, Ballot{3, 1}, true, Ballot{3, 1}, Ballot{2, 0}, "value", false};
  Result<Body> out = decode(encode(in));
  ASSERT_TRUE(out.ok()) << out.error();
  const auto& p = std::get<Promise>(out.value());
  EXPECT_EQ(p.instance, 7u);
  EXPECT_EQ(p.ballot, (Ballot{3, 1}));
  EXPECT_EQ(p.accepted_ballot, (Ballot{2, 0}));
  EXPECT_EQ(p.accepted_value, "value");
}

TEST(Codec, JoinMessagesKeepTheirWireTags) {
  const std::string query = encode(JoinQuery{});
  ASSERT_GE(query.size(), 2u);
  EXPECT_EQ(static_cast<unsigned char>(query[1]), 10);  // [type, version, fields]
  const std::string info = encode(JoinInfo{.instance_bound = 1234567, .max_round = 89});
  EXPECT_EQ(static_cast<unsigned char>(info[1]), 11);
  Result<Body> out = decode(info);
  ASSERT_TRUE(out.ok()) << out.error();
  EXPECT_EQ(std::get<JoinInfo>(out.value()).instance_bound, 1234567u);
  EXPECT_EQ(std::get<JoinInfo>(out.value()).max_round, 89u);
}

TEST(Codec, RejectsGarbageWithAnError) {
  EXPECT_FALSE(decode("\xc1\xff garbage").ok());
  EXPECT_FALSE(decode("").ok());
}

TEST(Codec, RejectsTruncatedMessage) {
  const std::string full = encode(ClientRequest{1, 1, 0, OpKind::put, "k", "v"});
  for (std::size_t len = 0; len < full.size(); ++len) {
    EXPECT_FALSE(decode(std::string_view(full).substr(0, len)).ok()) << "length " << len;
  }
}

TEST(Codec, RejectsUnknownTypeAndWrongVersion) {
  msgpack::sbuffer buf;
  msgpack::pack(buf, std::make_tuple(std::uint8_t{250}, kProtocolVersion, std::make_tuple()));
  Result<Body> unknown = decode(std::string_view(buf.data(), buf.size()));
  ASSERT_FALSE(unknown.ok());
  EXPECT_NE(unknown.error().find("unknown message type 250"), std::string::npos);

  msgpack::sbuffer v2;
  msgpack::pack(v2, std::make_tuple(std::uint8_t{102}, std::uint8_t{9}, std::make_tuple()));
  Result<Body> version = decode(std::string_view(v2.data(), v2.size()));
  ASSERT_FALSE(version.ok());
  EXPECT_NE(version.error().find("unsupported protocol version 9"), std::string::npos);
}

TEST(Codec, RejectsOutOfRangeOperation) {
  ClientRequest r{1, 1, 0, OpKind::put, "k", "v"};
  r.op = static_cast<OpKind>(9);
  EXPECT_FALSE(decode(encode(r)).ok());
}

TEST(Codec, RejectsOversizedMessage) {
  const std::string big = encode(ClientRequest{1, 1, 0, OpKind::put, "k", std::string(2000, 'x')});
  EXPECT_FALSE(decode(big, 1000).ok());
}

TEST(Codec, FrameHeaderRoundTrips) {
  const FrameHeader h{{2, Actor::learner}, {1, Actor::proposer}, 10, 12};
  Result<FrameHeader> out = decode_header(encode_header(h));
  ASSERT_TRUE(out.ok()) << out.error();
  EXPECT_EQ(out->to, h.to);
  EXPECT_EQ(out->from, h.from);
  EXPECT_EQ(out->done_below, 10u);
  EXPECT_EQ(out->decided_below, 12u);
}

TEST(KvOp, RoundTripsAndRejectsGarbage) {
  const KvOp op{false, 42, 3, 2, OpKind::append, "key", "value"};
  Result<KvOp> out = decode_op(encode_op(op));
  ASSERT_TRUE(out.ok()) << out.error();
  EXPECT_EQ(out->client_id, 42u);
  EXPECT_EQ(out->op, OpKind::append);
  EXPECT_FALSE(decode_op("\x01\x02").ok());
}

TEST(KvOp, LogEntriesHoldOneOpOrABatch) {
  const KvOp a{false, 1, 1, 0, OpKind::put, "k", "v"};
  const KvOp b{false, 2, 7, 6, OpKind::append, "k", std::string("\0\xff", 2)};
  Result<LogEntry> single = decode_entry(encode_op(a));
  ASSERT_TRUE(single.ok()) << single.error();
  ASSERT_EQ(single->ops.size(), 1u);
  EXPECT_EQ(single->ops[0].client_id, 1u);
  EXPECT_EQ(single->author, kNoAuthor);
  Result<LogEntry> batch = decode_entry(encode_batch(2, {encode_op(a), encode_op(b)}));
  ASSERT_TRUE(batch.ok()) << batch.error();
  EXPECT_EQ(batch->author, 2u);
  ASSERT_EQ(batch->ops.size(), 2u);
  EXPECT_EQ(batch->ops[1].seq, 7u);
  EXPECT_EQ(batch->ops[1].value, std::string("\0\xff", 2));
  EXPECT_TRUE(decode_entry(encode_op(KvOp::no_op()))->ops.at(0).noop);
  EXPECT_FALSE(decode_entry("\x93\x07\x00\x90").ok()) << "unknown batch format";
  EXPECT_FALSE(decode_entry("\x93\x01\x00\x91\x01").ok()) << "a batch of garbage";
}

}  // namespace
}  // namespace kvpaxos
