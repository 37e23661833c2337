// SnapshotSchedule: when the applier writes its state (with --data-dir), and
// how far the durable snapshot reaches. It decides; the Applier makes the
// snapshot and hands it to ApplierOptions::save_snapshot, whose SnapshotSaved
// answer comes back here. Owned by the Applier, on its thread.
//
// A snapshot is due after `every` instances (once their ops add up to a
// quarter of the state), after max(every_bytes, state size) bytes of applied
// ops, when the log has been idle for `idle` with something unsnapshotted,
// or `idle` after a failed write. One is written at a time.
//
// Invariant: durable_below() only grows while this node applies the log (a
// SnapshotSaved at or below it changes nothing); it is this node's Done
// point, so no node forgets an instance this node could need after a crash.
#pragma once

#include <cstdint>
#include <optional>

#include "messages/messages.hpp"

namespace kvpaxos {

class SnapshotSchedule {
 public:
  struct Limits {
    InstanceId every = 10'000;
    std::uint64_t every_bytes = 64 * 1024 * 1024;
    Duration idle = std::chrono::seconds(2);
  };
  explicit SnapshotSchedule(Limits limits) : limits_(limits) {}

  // An entry of `entry_bytes` was applied; the state holds `state_bytes`.
  bool due_after_apply(InstanceId applied_below, std::size_t entry_bytes, std::uint64_t state_bytes);
  // Idle with something unsnapshotted, or a failed write's back-off is over.
  bool due_at_tick(Time now, InstanceId applied_below, Time last_progress);
  // False while a write is in flight (the next one is due once it is on
  // disk); else counts the bytes applied from here on.
  bool start();
  // The snapshot of [0, instance), `bytes` long, goes to the writer now.
  void handed_over(InstanceId instance, std::uint64_t bytes);
  // The writer's answer. Returns the new durable point, if it moved.
  std::optional<InstanceId> on_saved(const SnapshotSaved& m, Time now);
  // The state came from a snapshot of [0, applied_below) of `bytes`:
  // this node's own file (durable), or a peer's (durable once written, if
  // this node writes snapshots; at once if not).
  void restored(InstanceId applied_below, std::uint64_t bytes);
  void installed(InstanceId applied_below, std::uint64_t bytes, bool written);

  InstanceId durable_below() const { return durable_below_; }
  std::uint64_t last_bytes() const { return last_bytes_; }

 private:
  Limits limits_;
  InstanceId durable_below_ = 0;  // the durable snapshot covers [0, durable_below_)
  int saves_in_flight_ = 0;       // handed over, no SnapshotSaved yet
  std::optional<Time> retry_at_;  // after a failed write
  InstanceId saving_instance_ = 0;  // the latest one handed over, and its size
  std::uint64_t saving_bytes_ = 0;
  std::uint64_t bytes_since_ = 0;  // of entries applied since the last one started
  std::uint64_t last_bytes_ = 0;   // size of the durable one
  Time last_idle_attempt_{};
};

}  // namespace kvpaxos
