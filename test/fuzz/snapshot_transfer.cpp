// A snapshot arriving from a peer in chunks (Applier's SnapshotChunk
// reassembly, through its public handle()), after the learner said one is
// needed. Two ways to read the input, chosen by its first byte:
//  - odd: a sequence of pieces, each one control byte (which peer, how much
//    time passes) and a message body, decoded as the runner decodes peer
//    frames and handed to the applier when it is a SnapshotChunk or
//    SnapshotRequest (a hostile or confused peer);
//  - even: an honest peer serving the rest of the input as its snapshot,
//    answering each SnapshotRequest with the chunk asked for (sizes from the
//    second byte), with the right checksum: the payload reaches restore()
//    through the transfer path.
//
// Invariants: nothing throws; the state changes only by a whole snapshot
// installed (then the learner is told where it ends), and an honest transfer
// installs exactly what restore() accepts; every message the applier sends
// decodes at its receiver.
#include "actors/kv/applier.hpp"
#include "actors/storage/segmented_log.hpp"
#include "fuzz_support.hpp"

namespace kvpaxos {
namespace {

constexpr NodeId kSelf = 0;
constexpr NodeId kServer = 1;

void require_decodable(const Outbox& out) {
  for (const Outbound& o : out) {
    fuzz::require(decode(encode(o.body)).ok(), "every message the applier sends decodes");
  }
}

bool announced_install(const Outbox& out, InstanceId instance) {
  for (const Outbound& o : out) {
    const auto* i = std::get_if<SnapshotInstalled>(&o.body);
    if (i && i->instance == instance && o.to == Address{kSelf, Actor::learner}) return true;
  }
  return false;
}

// One message in; the state changes only by an installed snapshot.
Outbox step(Applier& a, const Address& from, Body body, Time now) {
  const std::uint64_t installs = a.snapshots_installed();
  const InstanceId applied = a.applied_below();
  const auto data = a.data();
  Outbox out;
  a.handle(from, std::move(body), now, out);
  require_decodable(out);
  if (a.snapshots_installed() == installs) {
    fuzz::require(a.applied_below() == applied && a.data() == data,
                  "the state changes only by an installed snapshot");
    return out;
  }
  fuzz::require(a.snapshots_installed() == installs + 1, "one message installs one snapshot");
  fuzz::require(a.applied_below() > applied, "an installed snapshot moves the applier ahead");
  fuzz::require(announced_install(out, a.applied_below()), "the learner is told of the install");
  return out;
}

Applier needing_snapshot(Outbox& out) {
  Applier a(kSelf, ApplierOptions{});
  a.handle({kSelf, Actor::learner}, SnapshotNeeded{InstanceId{1} << 40, kServer}, Time{}, out);
  return a;
}

void hostile_peers(fuzz::Pieces& in) {
  Outbox out;
  Applier a = needing_snapshot(out);
  Time now{};
  while (!in.empty()) {
    const std::uint8_t control = in.byte();
    const std::string_view frame = in.next();
    now += std::chrono::milliseconds(control / 4);
    Result<Body> body = decode(frame);
    if (!body.ok()) continue;
    if (!std::holds_alternative<SnapshotChunk>(body.value()) &&
        !std::holds_alternative<SnapshotRequest>(body.value())) {
      continue;
    }
    step(a, {static_cast<NodeId>(control % 4), Actor::applier}, std::move(body.value()), now);
    Outbox ticked;
    a.tick(now, ticked);
    require_decodable(ticked);
  }
}

// The SnapshotRequest the applier sent to the server, if any.
const SnapshotRequest* request_in(const Outbox& out) {
  for (const Outbound& o : out) {
    const auto* r = std::get_if<SnapshotRequest>(&o.body);
    if (r && o.to == Address{kServer, Actor::applier}) return r;
  }
  return nullptr;
}

void honest_peer(fuzz::Pieces& in) {
  const std::size_t chunk_bytes = 1 + in.byte();
  const std::string payload(in.rest());
  Applier reference(kSelf, ApplierOptions{});
  const bool loads = reference.restore(payload).ok() && reference.applied_below() > 0;
  const InstanceId instance = loads ? reference.applied_below() : 1;
  const std::uint32_t crc = crc32c(payload);

  Outbox out;
  Applier a = needing_snapshot(out);
  for (std::size_t sent = 0; const SnapshotRequest* r = request_in(out); ++sent) {
    fuzz::require(sent <= payload.size() / chunk_bytes + 1, "a transfer asks for each chunk once");
    fuzz::require(r->offset <= payload.size(), "the applier asks within the snapshot");
    SnapshotChunk chunk{instance, payload.size(), r->offset, crc,
                        payload.substr(r->offset, chunk_bytes)};
    Result<Body> wire = decode(encode(chunk));
    fuzz::require(wire.ok(), "a chunk decodes");
    out = step(a, {kServer, Actor::applier}, std::move(wire.value()), Time{});
  }
  fuzz::require(a.snapshots_installed() == (loads ? 1u : 0u),
                "an honest transfer installs exactly what restore() accepts");
  if (loads) fuzz::require(a.data() == reference.data(), "the installed state is the snapshot's");
}

}  // namespace
}  // namespace kvpaxos

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  kvpaxos::fuzz::Pieces in(kvpaxos::fuzz::view(data, size));
  if (in.byte() % 2 == 1) {
    kvpaxos::hostile_peers(in);
  } else {
    kvpaxos::honest_peer(in);
  }
  return 0;
}
