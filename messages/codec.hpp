// Encoding and decoding of every message in messages.hpp.
//
// A body is one msgpack array: [type_tag, protocol_version, fields]. `fields`
// is the struct's MSGPACK_DEFINE array. Decoding never throws: malformed,
// truncated, oversized or unknown input comes back as an Error.
//
// Between actors a ZeroMQ message has two frames: a FrameHeader (routing and
// piggybacked progress) and the body. Clients send the body alone.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

#include "messages/messages.hpp"
#include "messages/result.hpp"

namespace kvpaxos {

// Upper bounds enforced on receive (ZMQ_MAXMSGSIZE and the decoder).
inline constexpr std::size_t kMaxKeyBytes = 64 * 1024;
inline constexpr std::size_t kMaxValueBytes = 16 * 1024 * 1024;
inline constexpr std::size_t kMaxClientFrameBytes = kMaxValueBytes + kMaxKeyBytes + 4096;
inline constexpr std::size_t kMaxPeerFrameBytes = 4 * kMaxClientFrameBytes;

// The data model's bounds (docs/protocol.md, "Data model"). A range's or a
// transaction's reply carries at most kMaxReplyKeys keys and
// kMaxReplyDataBytes of keys and values (each key counts 32 bytes more);
// past either it says `more`. A transaction has at most kMaxTxnOps ops per
// branch and kMaxTxnCompares compares, as etcd's default --max-txn-ops.
inline constexpr std::size_t kMaxReplyDataBytes = kMaxValueBytes;
inline constexpr std::size_t kReplyBytesPerKey = 32;
inline constexpr std::size_t kMaxReplyKeys = 1 << 15;
inline constexpr std::size_t kMaxTxnOps = 128;
inline constexpr std::size_t kMaxTxnCompares = 128;
// A reply holding one value of the largest size still fits a client frame.
static_assert(kMaxValueBytes + kMaxKeyBytes + kReplyBytesPerKey + 1024 <= kMaxClientFrameBytes);

// Bounds on the msgpack values (every array, string and scalar counts one)
// in one message, checked before msgpack-c builds any of them: it spends 24
// bytes per value, so a 63 MiB peer frame of empty arrays cost 7.3 GB and a
// 16 MiB client frame 601 MB. At these bounds a decode builds at most 6 MiB
// (peer) or 96 KiB (client) of them. No legitimate message comes near:
//  - peer: the largest is a PromiseFrom of 16,384 AcceptedValues (the
//    acceptor's cap), 98,319 values; a PrepareFrom lists at most 16,384
//    decided instances, a CatchUpRequest 256, a ForwardOps at most 65,536 ops
//    (the array limit), one value each;
//  - client: the largest is a ClientRequest of the largest transaction
//    (kMaxTxnCompares compares, kMaxTxnOps ops per branch), 2,586 values;
//    a FaultRequest or FaultReply naming all 63 nodes has 72, any other
//    ClientRequest 26 (its MemberChange, empty but for a member op, is 10).
// codec_test.cpp and data_model_test.cpp build each of these shapes and
// check it decodes.
inline constexpr std::size_t kMaxPeerMessageValues = 1 << 18;
inline constexpr std::size_t kMaxClientMessageValues = 1 << 12;
inline constexpr std::size_t kMsgpackBytesPerValue = 24;  // a msgpack::object
// A reply holds at most kMaxReplyKeys keys of 6 values, over all its
// responses, and kMaxTxnOps responses of 6: below the peer bound.
inline constexpr std::size_t kMaxReplyMessageValues = kMaxPeerMessageValues;
static_assert(6 * kMaxReplyKeys + 12 * kMaxTxnOps + 64 <= kMaxReplyMessageValues);
static_assert(kMaxPeerMessageValues * kMsgpackBytesPerValue <= 6 * 1024 * 1024);
static_assert(kMaxClientMessageValues * kMsgpackBytesPerValue <= 96 * 1024);
// decode() picks the client bound by frame size: a client frame fits a peer one.
static_assert(kMaxClientFrameBytes < kMaxPeerFrameBytes);
static_assert(kMaxClientMessageValues < kMaxPeerMessageValues);
// The most elements one msgpack array may have (a ForwardOps' ops, say).
inline constexpr std::size_t kMaxArrayElements = 1 << 16;

MessageType type_of(const Body& body);
const char* to_string(MessageType t);

// Packs `v` (a MSGPACK_DEFINE type) straight into a string, without the copy
// out of a msgpack::sbuffer: for the records a durable logic hands out as
// Writes, on every promise, accept and decision.
template <typename T>
std::string pack_to_string(const T& v) {
  struct Sink {
    std::string& out;
    void write(const char* p, std::size_t n) { out.append(p, n); }
  };
  std::string out;
  Sink sink{out};
  msgpack::pack(sink, v);
  return out;
}

std::string encode(const Body& body);
// With max_bytes at most kMaxClientFrameBytes (a client frame) the client
// value bound applies, else the peer one; max_values, when set, instead
// (a client reading a reply passes kMaxReplyMessageValues).
Result<Body> decode(std::string_view bytes, std::size_t max_bytes = kMaxPeerFrameBytes,
                    std::size_t max_values = 0);

// Routing for messages between actors (inproc and tcp). The progress fields
// are the piggybacked Done / decided counters, set by the peer link on
// node-to-node traffic (zero inside a node).
struct FrameHeader {
  Address to;
  Address from;
  InstanceId done_below = 0;
  InstanceId decided_below = 0;
  InstanceId forget_below = 0;
};
std::string encode_header(const FrameHeader& h);
Result<FrameHeader> decode_header(std::string_view bytes);

}  // namespace kvpaxos
