// SnapshotTransfer: both ends of moving the applier's snapshot between nodes.
//
// Fetching: a node left behind the forget point (its learner sends
// SnapshotNeeded naming a peer) asks that peer's applier for its snapshot,
// one SnapshotRequest per chunk, resuming where a stalled transfer stopped.
// A chunk counts only from the peer asked, while a transfer runs, as the
// next byte of the snapshot being fetched; anything else is counted in
// ApplierRefusals and changes nothing. The whole snapshot's crc is checked
// here; the Applier parses and installs it.
//
// Serving: answers a peer's SnapshotRequest with a SnapshotChunk of the
// snapshot it serves, kept stable across chunks (so a transfer can resume)
// and dropped after 30 s unused.
//
// Owned by the Applier, on its thread; takes the time, sends only to peers'
// appliers.
#pragma once

#include <cstdint>
#include <functional>
#include <optional>
#include <string>

#include "actors/kv/applier_refusals.hpp"
#include "messages/messages.hpp"

namespace kvpaxos {

// A snapshot transfer refuses a total size above this. The store lives in
// memory, and a node serving a snapshot holds the state and its encoded copy,
// so a state this large needs more than 64 GiB of RAM per node: a total above
// it comes from a faulty peer (and would have this node buffer its chunks).
inline constexpr std::uint64_t kMaxSnapshotBytes = std::uint64_t{32} << 30;
// A correct node sends chunks of ApplierOptions::snapshot_chunk_bytes (1 MiB;
// no flag changes it); a larger chunk is refused.
inline constexpr std::size_t kMaxSnapshotChunkBytes = std::size_t{4} << 20;

class SnapshotTransfer {
 public:
  SnapshotTransfer(NodeId self, std::size_t chunk_bytes, Duration timeout)
      : self_(self), chunk_bytes_(chunk_bytes), timeout_(timeout) {}

  // A whole snapshot received: to install, or (error set) one that failed
  // its checksum, counted in refused.snapshot_rejected.
  struct Received {
    InstanceId instance = 0;
    std::string bytes;
    std::string error;
  };

  // The learner names a peer whose snapshot covers past `applied_below`.
  void on_needed(const SnapshotNeeded& m, InstanceId applied_below, Time now, Outbox& out);
  std::optional<Received> on_chunk(NodeId from, SnapshotChunk m, InstanceId applied_below,
                                   Time now, Outbox& out, ApplierRefusals& refused);
  // `snapshot` makes the snapshot of the state now (at `applied_below`),
  // called only when the one served is missing or a new transfer finds it
  // behind.
  void on_request(NodeId from, const SnapshotRequest& m, InstanceId applied_below,
                  const std::function<std::string()>& snapshot, Time now, Outbox& out);
  // Resumes a stalled fetch, drops a served snapshot nobody fetches.
  void tick(Time now, Outbox& out);

 private:
  bool chunk_in_bounds(const SnapshotChunk& m, ApplierRefusals& refused) const;
  bool chunk_continues_fetch(const SnapshotChunk& m, ApplierRefusals& refused);
  void request_chunk(Time now, Outbox& out);

  NodeId self_;
  std::size_t chunk_bytes_;
  Duration timeout_;

  struct Fetch {  // a snapshot being received
    bool active = false;
    NodeId peer = 0;
    InstanceId instance = 0;  // 0 until the first chunk names it
    std::uint64_t total_bytes = 0;
    std::uint32_t crc = 0;
    std::string bytes;  // received so far
    Time last_request{};
    Time last_chunk{};
  };
  Fetch fetch_;
  struct Served {  // the snapshot being sent to peers, kept stable across chunks
    InstanceId instance = 0;
    std::string bytes;
    std::uint32_t crc = 0;
    Time last_used{};
  };
  Served served_;
};

}  // namespace kvpaxos
