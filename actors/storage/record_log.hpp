// Persistence as data (etcd-io/raft's Ready, TigerBeetle's storage).
//
// A durable logic (acceptor, learner) never calls into a file. What it must
// have on disk before the messages it produced may leave, it hands out as
// Writes beside its Outbox (ActorLogic::take_writes). The runner, the only
// code that touches the disk on the hot path, persists them on a RecordLog,
// syncs once per batch, and only then sends:
//
//     handle(m1..mk) -> Outbox + Writes -> persist(log, writes) -> send(Outbox)
//
// Two RecordLogs: SegmentedLog (actors/storage/segmented_log.hpp, files under
// --data-dir) and MemoryLog (below: the simulator's disk, which loses what
// was not synced, sometimes with a torn last record, when its node crashes).
// Recovery reads a log's records back and hands them to the logic (see
// actors/node/node_logic.hpp), the same way for both.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "actors/core/writes.hpp"
#include "actors/storage/record_format.hpp"
#include "messages/result.hpp"

namespace kvpaxos {

class RecordLog {
 public:
  virtual ~RecordLog() = default;
  // Buffers a record; nothing is durable before sync().
  virtual void append(std::string_view payload) = 0;
  // When this returns ok, every record appended so far survives a crash
  // (with to_disk false: a crash of the process, not of the machine). A
  // failure is not retryable: the caller must stop.
  virtual Result<bool> sync(bool to_disk) = 0;
  // Replaces the whole log by `records`, durably.
  virtual Result<bool> rewrite(const std::vector<std::string>& records) = 0;
  virtual std::uint64_t bytes_on_disk() const = 0;
};

// Appends (or rewrites with) `writes` and syncs: the one call the runner and
// the simulator make per batch, before they send the batch's messages.
Result<bool> persist(RecordLog& log, Writes writes, bool to_disk);

// A log in memory that behaves like a disk across crashes: bytes are framed
// as in a segment file, and crash() keeps what was synced plus, at most, a
// prefix of the rest, cut anywhere (a torn record). Reading it back applies
// SegmentedLog::open's rule: a bad record at the very end is a torn write
// and is cut off; anywhere else it is corruption.
class MemoryLog final : public RecordLog {
 public:
  void append(std::string_view payload) override;
  Result<bool> sync(bool to_disk) override;
  Result<bool> rewrite(const std::vector<std::string>& records) override;
  std::uint64_t bytes_on_disk() const override { return bytes_.size(); }

  // Appended but not yet synced.
  std::uint64_t unsynced_bytes() const { return bytes_.size() - synced_; }
  bool has_unsynced() const { return synced_ < bytes_.size(); }
  // The process (or machine) stops: of the unsynced tail, the first
  // `keep_unsynced` bytes survive (clamped), the rest is gone.
  void crash(std::uint64_t keep_unsynced);
  // What a restart does, as SegmentedLog::open: reads the records, and cuts
  // a torn tail off (so that new records follow the last whole one); an
  // error when a record before the end is damaged.
  struct Read {
    std::vector<std::string> records;
    std::uint64_t torn_bytes = 0;
  };
  Result<Read> open();

 private:
  std::string bytes_;
  std::uint64_t synced_ = 0;
};

}  // namespace kvpaxos
