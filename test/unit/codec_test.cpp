#include <gtest/gtest.h>

#include <cmath>
#include <fstream>
#include <functional>
#include <string>

#include "messages/codec.hpp"
#include "messages/kv_op.hpp"
#include "messages/msgpack_scan.hpp"

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

TEST(Codec, RejectsADropRateOutsideZeroToOne) {
  // Found by fuzz_client_frame: 2^64 as an integer decodes into the double
  // and msgpack-c's packer casts it back to uint64_t (undefined behaviour)
  // when the front door's FaultFromClient is sent on.
  const std::string huge("\x93\x68\x01\x95\xc2\xc3\x90\xc3\xcf\xff\xff\xff\xff\xff\xff\xff\xff", 17);
  Result<Body> out = decode(huge, kMaxClientFrameBytes);
  ASSERT_FALSE(out.ok());
  EXPECT_NE(out.error().find("drop_rate"), std::string::npos) << out.error();
  EXPECT_FALSE(decode(encode(FaultRequest{.drop_rate = std::nan("")})).ok());
  EXPECT_FALSE(decode(encode(FaultReply{.drop_rate = -0.5})).ok());
  EXPECT_TRUE(decode(encode(FaultRequest{.set_drop = true, .drop_rate = 1.0})).ok());
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

// -------------------------------------------- decode cost bounded by the frame

// A kB figure from /proc/self/status.
std::size_t status_kb(const std::string& field) {
  std::ifstream in("/proc/self/status");
  for (std::string line; std::getline(in, line);) {
    if (line.rfind(field + ":", 0) == 0) return std::stoul(line.substr(field.size() + 1));
  }
  return 0;
}

// How far resident memory peaked above where it was while `fn` ran (Linux:
// writing 5 to clear_refs resets the peak, VmHWM).
std::size_t peak_growth_bytes(const std::function<void()>& fn) {
  const std::size_t before_kb = status_kb("VmRSS");
  std::ofstream("/proc/self/clear_refs") << "5";
  fn();
  const std::size_t peak_kb = status_kb("VmHWM");
  return peak_kb > before_kb ? (peak_kb - before_kb) * 1024 : 0;
}

// [type, version, fields] where fields is an array of arrays of `inner`
// empty arrays (0x90), `bytes` long in all: a value per byte, the shape that
// made msgpack-c build 24+ bytes for each.
std::string frame_of_empty_arrays(MessageType type, std::size_t bytes) {
  constexpr std::size_t inner = 2000;  // 0x07d0
  const std::size_t groups = (bytes - 8) / (3 + inner);
  std::string out = {'\x93', static_cast<char>(type), '\x01', '\xdc',
                     static_cast<char>(groups >> 8), static_cast<char>(groups & 0xff)};
  const std::string group = std::string("\xdc\x07\xd0", 3) + std::string(inner, '\x90');
  out.reserve(bytes);
  for (std::size_t g = 0; g < groups; ++g) out += group;
  return out;
}

std::size_t values_of(const std::string& bytes) {
  Result<MsgpackShape> shape = scan_msgpack(bytes, {~std::size_t{0}, 8});
  EXPECT_TRUE(shape.ok()) << shape.error();
  return shape.ok() ? shape->values : 0;
}

TEST(CodecBounds, PeerFrameOfEmptyArraysIsRefusedBeforeUnpacking) {
  const std::string frame =
      frame_of_empty_arrays(MessageType::catch_up_request, kMaxPeerFrameBytes - 4096);
  ASSERT_GT(values_of(frame), 60'000'000u);
  Result<Body> out = Error{""};
  const std::size_t peak = peak_growth_bytes([&] { out = decode(frame); });
  ASSERT_FALSE(out.ok());
  EXPECT_NE(out.error().find("refused before decoding"), std::string::npos) << out.error();
  // It cost 7.3 GB before the bound; the frame itself is 63 MiB.
  EXPECT_LT(peak, 16u << 20) << "decode peaked " << peak << " bytes above the frame";
}

TEST(CodecBounds, ClientFrameOfEmptyArraysIsRefusedBeforeUnpacking) {
  const std::string frame =
      frame_of_empty_arrays(MessageType::client_request, kMaxClientFrameBytes - 4096);
  Result<Body> out = Error{""};
  const std::size_t peak = peak_growth_bytes([&] { out = decode(frame, kMaxClientFrameBytes); });
  ASSERT_FALSE(out.ok());
  EXPECT_NE(out.error().find("refused before decoding"), std::string::npos) << out.error();
  EXPECT_LT(peak, 4u << 20) << "decode peaked " << peak << " bytes above the frame";  // was 601 MB
  // A tiny client frame over the client bound is refused too: the bound is
  // on what decoding builds, not on the frame's size.
  const std::string small = frame_of_empty_arrays(MessageType::client_request, 8 * 1024);
  EXPECT_FALSE(decode(small, kMaxClientFrameBytes).ok());
}

TEST(CodecBounds, DeclaredLengthsBeyondTheBytesAllocateNothing) {
  // An array32 that claims 4 billion elements: msgpack-c asked for 96 GiB.
  const std::string claim("\xdd\xff\xff\xff\xff", 5);
  EXPECT_FALSE(decode_entry(claim).ok());
  EXPECT_FALSE(decode_op(claim).ok());
  EXPECT_FALSE(decode(std::string("\x93\x06\x01", 3) + claim).ok());
  Result<MsgpackShape> shape = scan_msgpack(claim, {~std::size_t{0}, 8});
  ASSERT_FALSE(shape.ok());
  EXPECT_NE(shape.error().find("cut short"), std::string::npos) << shape.error();
}

TEST(CodecBounds, TheLargestLegitimatePeerMessagesDecode) {
  PromiseFrom promise{.from = InstanceId{1} << 40, .ballot = {1u << 30, 62}, .ok = true};
  for (InstanceId i = 0; i < 16384; ++i) {  // the acceptor's cap (kMaxPromisedValues)
    promise.accepted.push_back({promise.from + i, {1u << 30, 61}, encode_op(KvOp::no_op())});
  }
  const std::string promised = encode(promise);
  EXPECT_EQ(values_of(promised), 98'319u);  // the figure codec.hpp gives
  Result<Body> out = decode(promised);
  ASSERT_TRUE(out.ok()) << out.error();
  EXPECT_EQ(std::get<PromiseFrom>(out.value()).accepted.size(), 16384u);

  PrepareFrom prepare{.from = InstanceId{1} << 40, .ballot = {1u << 30, 62}};
  for (InstanceId i = 0; i < 16384; ++i) prepare.decided.push_back(prepare.from + i);
  EXPECT_TRUE(decode(encode(prepare)).ok());

  CatchUpRequest catch_up;
  for (InstanceId i = 0; i < 65536; ++i) catch_up.instances.push_back(i << 20);
  EXPECT_TRUE(decode(encode(catch_up)).ok()) << "the array limit binds first";

  ForwardOps forward;
  for (std::uint64_t seq = 1; seq <= 65536; ++seq) {
    forward.ops.push_back(encode_op({false, seq, seq, seq - 1, OpKind::put, "k", "v"}));
  }
  EXPECT_TRUE(decode(encode(forward)).ok());
}

TEST(CodecBounds, AFullBatchDecodesAsALogEntry) {
  std::vector<std::string> ops;
  for (std::uint64_t c = 1; c <= 1024; ++c) {  // ApplierOptions::max_batch_ops
    ops.push_back(encode_op({false, c << 40, c << 30, (c << 30) - 1, OpKind::append, "k", "v"}));
  }
  const std::string batch = encode_batch(62, ops);
  Result<LogEntry> entry = decode_entry(batch);
  ASSERT_TRUE(entry.ok()) << entry.error();
  EXPECT_EQ(entry->ops.size(), 1024u);
  EXPECT_TRUE(decode(encode(Accept{1, {1, 0}, batch})).ok());
  // A batch of 8192 ops is past the entry bound: no node writes one.
  std::vector<std::string> many(8192, encode_op(KvOp::no_op()));
  EXPECT_FALSE(decode_entry(encode_batch(0, many)).ok());
}

TEST(CodecBounds, TheLargestLegitimateClientMessagesDecode) {
  FaultRequest fault{.set_reach = true, .reach_all = false};
  FaultReply reply;
  for (int n = 0; n < 63; ++n) {  // every node of the largest cluster
    fault.reach.push_back("node-" + std::to_string(n));
    reply.reach.push_back("node-" + std::to_string(n));
  }
  EXPECT_EQ(values_of(encode(fault)), 72u);
  EXPECT_TRUE(decode(encode(fault), kMaxClientFrameBytes).ok());
  EXPECT_TRUE(decode(encode(reply), kMaxClientFrameBytes).ok());
  const ClientRequest put{1, 1, 0, OpKind::put, std::string(kMaxKeyBytes, 'k'),
                          std::string(kMaxValueBytes, 'v')};
  EXPECT_TRUE(decode(encode(put), kMaxClientFrameBytes).ok());
}

TEST(MsgpackScan, MatchesWhatUnpackingBuilds) {
  const std::string request = encode(ClientRequest{1, 2, 1, OpKind::put, "k", "v"});
  Result<MsgpackShape> shape = scan_msgpack(request + "tail", {64, 8});
  ASSERT_TRUE(shape.ok()) << shape.error();
  EXPECT_EQ(shape->bytes, request.size());
  EXPECT_EQ(shape->values, 26u);  // [tag, version, [twelve fields, [nine member fields]]]
  EXPECT_FALSE(scan_msgpack(request, {25, 8}).ok()) << "one value over the bound";
  EXPECT_FALSE(scan_msgpack("\x91\x91\x91\x01", {64, 2}).ok()) << "three levels deep";
  EXPECT_TRUE(scan_msgpack("\x91\x91\x90", {64, 2}).ok()) << "an empty array opens no level";
  EXPECT_FALSE(scan_msgpack("\xc1", {64, 8}).ok());
  EXPECT_TRUE(scan_msgpack(std::string("\x82\xa1k\x01\xa1j\xc0", 7), {5, 8}).ok()) << "maps";
}

}  // namespace
}  // namespace kvpaxos
