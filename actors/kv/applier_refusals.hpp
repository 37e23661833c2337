// What the applier refused from its peers, per reason (Applier::refused()).
#pragma once

#include <cstdint>

namespace kvpaxos {

// Peer input the applier ignored, per reason. Snapshot chunks that are late,
// duplicated or of a snapshot no newer than this node's state come from
// correct peers too (reordering, a transfer that moved to another peer); the
// other reasons no correct node sends.
struct ApplierRefusals {
  std::uint64_t local_only_from_peer = 0;  // anything but snapshot transfer and ForwardOps
  std::uint64_t chunk_not_asked = 0;       // no transfer running, or from another peer
  std::uint64_t chunk_stale = 0;           // not the next byte of the snapshot asked for
  std::uint64_t chunk_not_newer = 0;       // a snapshot at or below what is applied here
  std::uint64_t chunk_malformed = 0;       // sizes out of bounds or inconsistent
  std::uint64_t chunk_changed = 0;         // total_bytes or crc differ within one snapshot
  std::uint64_t snapshot_rejected = 0;     // complete, but its crc or content is wrong
  std::uint64_t total() const {
    return local_only_from_peer + chunk_not_asked + chunk_stale + chunk_not_newer +
           chunk_malformed + chunk_changed + snapshot_rejected;
  }
};

}  // namespace kvpaxos
