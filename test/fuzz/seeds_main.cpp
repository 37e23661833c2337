// Writes the seed corpus of every fuzz target: real, valid encodings of every
// message type, log entries and batches, log segments and snapshots (the
// shapes fuzzing mutates from), and a few edge cases next to them.
//   fuzz_seeds test/fuzz/corpus     (writes test/fuzz/corpus/<target>/seed-*)
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <string>
#include <vector>

#include "actors/kv/applier.hpp"
#include "actors/storage/segmented_log.hpp"
#include "messages/codec.hpp"
#include "messages/kv_op.hpp"

namespace kvpaxos {
namespace {

namespace fs = std::filesystem;

class SeedWriter {
 public:
  explicit SeedWriter(fs::path root) : root_(std::move(root)) {}
  void write(const std::string& target, const std::string& name, const std::string& bytes) {
    fs::create_directories(root_ / target);
    std::ofstream(root_ / target / ("seed-" + name), std::ios::binary) << bytes;
    ++written_;
  }
  int written() const { return written_; }

 private:
  fs::path root_;
  int written_ = 0;
};

const KvOp kPut{false, 11, 3, 2, OpKind::put, "key", "value"};
const KvOp kAppend{false, 12, 1, 0, OpKind::append, "key", std::string("\0\xff", 2)};
const KvOp kGet{false, 13, 9, 8, OpKind::get, "key", ""};

std::string batch() { return encode_batch(2, {encode_op(kPut), encode_op(kAppend), encode_op(kGet)}); }

template <std::size_t I = 0>
void every_default_message(std::vector<std::pair<std::string, Body>>& out) {
  if constexpr (I < std::variant_size_v<Body>) {
    const Body body{std::in_place_index<I>};
    out.emplace_back(std::string("default-") + to_string(type_of(body)), body);
    every_default_message<I + 1>(out);
  }
}

std::vector<std::pair<std::string, Body>> peer_messages() {
  std::vector<std::pair<std::string, Body>> m;
  every_default_message(m);
  const Ballot b{5, 1};
  m.emplace_back("prepare", Prepare{42, b});
  m.emplace_back("promise", Promise{42, b, true, b, Ballot{4, 2}, batch(), false});
  m.emplace_back("accept", Accept{42, b, batch()});
  m.emplace_back("accepted", Accepted{42, b, false, Ballot{6, 2}, true});
  m.emplace_back("decided", Decided{42, encode_op(kPut)});
  m.emplace_back("catch-up-request", CatchUpRequest{{1, 2, 3, 1u << 20, ~0ull}});
  m.emplace_back("snapshot-request", SnapshotRequest{77, 4096});
  m.emplace_back("snapshot-chunk", SnapshotChunk{77, 12, 4, 0xdeadbeef, "8 bytes!"});
  m.emplace_back("join-info", JoinInfo{1000, 9, true});
  m.emplace_back("forward-ops", ForwardOps{{encode_op(kPut), encode_op(kGet)}});
  m.emplace_back("step-down", StepDown{1234});
  m.emplace_back("prepare-from", PrepareFrom{100, b, {100, 101, 105}});
  m.emplace_back("promise-from",
                 PromiseFrom{100, b, true, b,
                             {{100, Ballot{4, 0}, batch()}, {102, Ballot{3, 2}, encode_op(kGet)}},
                             90, false});
  m.emplace_back("promise-from-too-large", PromiseFrom{.from = 1, .ballot = b, .too_large = true});
  m.emplace_back("instance-report",
                 InstanceReport{1, 42, InstanceState::decided, encode_op(kPut), 3, 50});
  m.emplace_back("snapshot-saved-error", SnapshotSaved{10, "disk full"});
  return m;
}

std::vector<std::pair<std::string, Body>> client_messages() {
  return {
      {"put", ClientRequest{1, 2, 1, OpKind::put, "k", "v"}},
      {"append", ClientRequest{1, 3, 2, OpKind::append, "k", std::string(300, 'a')}},
      {"get", ClientRequest{7, 1, 0, OpKind::get, "k", ""}},
      {"get-with-value", ClientRequest{7, 1, 0, OpKind::get, "k", "v"}},
      {"client-id-zero", ClientRequest{0, 1, 0, OpKind::put, "k", "v"}},
      {"ack-not-below-seq", ClientRequest{1, 2, 2, OpKind::put, "k", "v"}},
      {"status", StatusRequest{}},
      {"fault-reach", FaultRequest{true, false, {"n1", "n2"}, false, 0.0}},
      {"fault-heal", FaultRequest{true, true, {}, false, 0.0}},
      {"fault-drop", FaultRequest{false, true, {}, true, 0.2}},
      {"fault-drop-out-of-range", FaultRequest{false, true, {}, true, 1.5}},
      {"client-reply", ClientReply{1, 2, ReplyCode::ok, "v", ""}},
      {"error-reply", ErrorReply{ReplyCode::bad_request, "why"}},
      {"prepare", Prepare{1, Ballot{1, 0}}},
  };
}

// Edge cases of the envelope [type, version, fields].
const std::vector<std::pair<std::string, std::string>> kEnvelopeEdges = {
    {"empty", ""},
    {"reserved-byte", "\xc1"},
    {"unknown-type", std::string("\x93\xcc\xfa\x01\x90", 5)},
    {"version-9", std::string("\x93\x66\x09\x90", 4)},
    {"nested-empty-arrays", std::string("\x93\x64\x01\x91\x91\x91\x91\x91\x91\x91\x90", 11)},
    {"flat-empty-arrays", std::string("\x93\x1e\x01\x9f", 4) + std::string(15, '\x90')},
    {"trailing-byte", encode(StatusRequest{}) + "x"},
};

void message_seeds(SeedWriter& w) {
  for (const auto& [name, body] : client_messages()) {
    w.write("client_frame", name, encode(body));
    w.write("peer_message", "client-" + name, encode(body));
  }
  for (const auto& [name, body] : peer_messages()) w.write("peer_message", name, encode(body));
  const std::string put = encode(ClientRequest{1, 2, 1, OpKind::put, "k", "v"});
  w.write("client_frame", "truncated-put", put.substr(0, put.size() - 1));
  for (const auto& [name, bytes] : kEnvelopeEdges) {
    w.write("client_frame", name, bytes);
    w.write("peer_message", name, bytes);
  }
  w.write("frame_header", "peer", encode_header({{2, Actor::learner}, {1, Actor::proposer}, 10, 12, 3}));
  w.write("frame_header", "inproc", encode_header({{0, Actor::applier}, {0, Actor::front_door}}));
  w.write("frame_header", "large-counters",
          encode_header({{62, Actor::control}, {0, Actor::peer_link}, ~0ull, ~0ull, ~0ull}));
  w.write("frame_header", "unknown-actor", std::string("\x97\x00\x09\x00\x01\x00\x00\x00", 8));
}

void log_entry_seeds(SeedWriter& w) {
  w.write("log_entry", "put", encode_op(kPut));
  w.write("log_entry", "append", encode_op(kAppend));
  w.write("log_entry", "get", encode_op(kGet));
  w.write("log_entry", "no-op", encode_op(KvOp::no_op()));
  w.write("log_entry", "batch", batch());
  w.write("log_entry", "batch-empty", encode_batch(0, {}));
  w.write("log_entry", "batch-unknown-format", std::string("\x93\x07\x00\x90", 4));
  KvOp unknown = kPut;
  unknown.op = static_cast<OpKind>(9);
  w.write("log_entry", "unknown-op", encode_op(unknown));
}

std::string applier_snapshot() {
  Applier a(0, ApplierOptions{});
  Outbox out;
  for (const KvOp& op : {kPut, kAppend, kGet}) {
    a.handle({0, Actor::learner}, Apply{a.applied_below(), encode_op(op)}, Time{}, out);
  }
  a.handle({0, Actor::learner}, Apply{a.applied_below(), batch()}, Time{}, out);
  return a.snapshot();
}

void snapshot_seeds(SeedWriter& w) {
  const std::string empty = Applier(0, ApplierOptions{}).snapshot();
  const std::string full = applier_snapshot();
  w.write("snapshot_file", "empty-payload", empty);
  w.write("snapshot_file", "payload", full);
  w.write("snapshot_file", "file", frame_record(full));
  w.write("snapshot_file", "file-empty-state", frame_record(empty));
  std::string damaged = frame_record(full);
  damaged[damaged.size() / 2] ^= 0x20;
  w.write("snapshot_file", "file-damaged", damaged);

  // snapshot_transfer: an honest peer (even first byte, chunk size byte) ...
  w.write("snapshot_transfer", "honest-one-chunk", std::string("\x00\xff", 2) + full);
  w.write("snapshot_transfer", "honest-small-chunks", std::string("\x00\x07", 2) + full);
  w.write("snapshot_transfer", "honest-garbage", std::string("\x00\x03", 2) + "not a snapshot");
  // ... and chunks as pieces (odd first byte): control byte, length, message.
  std::string pieces = "\x01";
  const std::uint32_t crc = crc32c(full);
  for (std::size_t at = 0; at < full.size(); at += 16) {
    const std::string chunk =
        encode(SnapshotChunk{4, full.size(), at, crc, full.substr(at, 16)});
    pieces += std::string("\x05", 1) + static_cast<char>(chunk.size()) + chunk;
  }
  w.write("snapshot_transfer", "pieces-in-order", pieces);
  const std::string request = encode(SnapshotRequest{0, 0});
  w.write("snapshot_transfer", "pieces-request",
          std::string("\x01\x06", 2) + static_cast<char>(request.size()) + request);
}

void wal_seeds(SeedWriter& w) {
  const std::string a = frame_record(encode_op(kPut));
  const std::string b = frame_record(batch());
  w.write("wal_segment", "empty", "");
  w.write("wal_segment", "one-record", a);
  w.write("wal_segment", "three-records", a + b + frame_record(""));
  w.write("wal_segment", "torn-tail", a + b.substr(0, b.size() - 3));
  w.write("wal_segment", "torn-header", a + b.substr(0, 5));
  std::string corrupt = a + b;
  corrupt[a.size() + 9] ^= 1;
  w.write("wal_segment", "corrupt-middle", corrupt + a);
  w.write("wal_segment", "huge-length", std::string("\xff\xff\xff\x7f\x00\x00\x00\x00", 8));
}

}  // namespace
}  // namespace kvpaxos

int main(int argc, char** argv) {
  if (argc != 2) {
    std::fprintf(stderr, "usage: %s CORPUS_DIR\n", argv[0]);
    return 2;
  }
  kvpaxos::SeedWriter w(argv[1]);
  kvpaxos::message_seeds(w);
  kvpaxos::log_entry_seeds(w);
  kvpaxos::snapshot_seeds(w);
  kvpaxos::wal_seeds(w);
  std::printf("fuzz_seeds: wrote %d seeds under %s\n", w.written(), argv[1]);
  return 0;
}
