#include "actors/kv/snapshot_schedule.hpp"

#include <algorithm>

namespace kvpaxos {

// Writing the whole state costs its size: wait until the log since the last
// snapshot is a fair fraction of it, so a large store is not rewritten for
// every few ops (write amplification stays below ~5x).
bool SnapshotSchedule::due_after_apply(InstanceId applied_below, std::size_t entry_bytes,
                                       std::uint64_t state_bytes) {
  bytes_since_ += entry_bytes;
  const bool by_count =
      applied_below - durable_below_ >= limits_.every && bytes_since_ >= state_bytes / 4;
  const bool by_bytes = bytes_since_ >= std::max<std::uint64_t>(limits_.every_bytes, state_bytes);
  return by_count || by_bytes;
}

// After a failed write the retry comes after `idle`, under load too, where
// the byte rules would wait for another quarter of the state while the Done
// point stays frozen.
bool SnapshotSchedule::due_at_tick(Time now, InstanceId applied_below, Time last_progress) {
  bool due = false;
  if (applied_below > durable_below_ && now - last_progress >= limits_.idle &&
      now - last_idle_attempt_ >= limits_.idle) {
    last_idle_attempt_ = now;
    due = true;
  }
  // The idle snapshot is then in flight, and the retry waits for its answer.
  if (!due && retry_at_ && now >= *retry_at_ && saves_in_flight_ == 0) {
    retry_at_.reset();
    due = true;
  }
  return due;
}

bool SnapshotSchedule::start() {
  if (saves_in_flight_ > 0) return false;
  bytes_since_ = 0;
  return true;
}

void SnapshotSchedule::handed_over(InstanceId instance, std::uint64_t bytes) {
  ++saves_in_flight_;
  saving_instance_ = instance;
  saving_bytes_ = bytes;
}

// Saves finish in the order they were handed over, so the newest durable
// snapshot is the highest instance reported.
std::optional<InstanceId> SnapshotSchedule::on_saved(const SnapshotSaved& m, Time now) {
  if (saves_in_flight_ > 0) --saves_in_flight_;
  if (!m.error.empty()) {
    retry_at_ = now + limits_.idle;  // not durable: the Done point stays
    return std::nullopt;
  }
  retry_at_.reset();
  if (m.instance <= durable_below_) return std::nullopt;
  durable_below_ = m.instance;
  if (m.instance == saving_instance_) last_bytes_ = saving_bytes_;
  return durable_below_;
}

void SnapshotSchedule::restored(InstanceId applied_below, std::uint64_t bytes) {
  durable_below_ = applied_below;
  last_bytes_ = bytes;
}

void SnapshotSchedule::installed(InstanceId applied_below, std::uint64_t bytes, bool written) {
  if (!written) durable_below_ = applied_below;
  last_bytes_ = bytes;
}

}  // namespace kvpaxos
