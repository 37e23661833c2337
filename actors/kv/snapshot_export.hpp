// SnapshotExport: the applier's snapshot for clients (kvctl snapshot save,
// docs/protocol.md "Snapshots for backup"), served in chunks.
//
// A SnapshotSaveRequest with snapshot_id 0 makes a new snapshot of the
// state the applier holds now: a state the log reached, since the applier
// changes its state only by applying whole instances in order. Later
// requests name it by id and read on from an offset, so the bytes stay the
// same across chunks however far the log moves meanwhile. One snapshot is
// kept: a new one replaces it (a client still reading the old one is told
// it is gone), and it is dropped 30 s after its last chunk went out.
//
// Owned by the Applier, on its thread; takes the time, touches no socket.
//
// Invariant: served_.crc == crc32c(served_.bytes) while served_.id != 0,
// and every chunk handed out lies inside served_.bytes.
#pragma once

#include <cstdint>
#include <functional>
#include <string>

#include "messages/messages.hpp"

namespace kvpaxos {

class SnapshotExport {
 public:
  // What a new snapshot covers; `bytes` is the applier's snapshot record.
  struct Made {
    InstanceId applied_below = 0;
    std::uint64_t revision = 0;
    std::uint64_t keys = 0;
    std::string bytes;
  };
  SnapshotExport(std::string name, std::uint64_t cluster_id, std::size_t chunk_bytes)
      : name_(std::move(name)), cluster_id_(cluster_id), chunk_bytes_(chunk_bytes) {}

  // The reply to `m`; `make` is called only for snapshot_id 0.
  SnapshotSaveReply on_request(const SnapshotSaveRequest& m, const std::function<Made()>& make,
                               Time now);
  // Drops the snapshot once nobody has read it for kIdle.
  void tick(Time now);

  bool holds_snapshot() const { return served_.id != 0; }

  static constexpr Duration kIdle = std::chrono::seconds(30);

 private:
  SnapshotSaveReply chunk_at(std::uint64_t offset) const;

  std::string name_;
  std::uint64_t cluster_id_;
  std::size_t chunk_bytes_;
  std::uint64_t last_id_ = 0;  // ids are never reused in this process
  struct Served {
    std::uint64_t id = 0;  // 0: none
    Made made;
    std::uint32_t crc = 0;
    Time last_used{};
  };
  Served served_;
};

}  // namespace kvpaxos
