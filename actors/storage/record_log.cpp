#include "actors/storage/record_log.hpp"

#include <algorithm>

namespace kvpaxos {

Result<bool> persist(RecordLog& log, Writes writes, bool to_disk) {
  if (writes.replace) return log.rewrite(writes.records);
  if (writes.records.empty()) return true;
  for (const std::string& r : writes.records) log.append(r);
  return log.sync(to_disk);
}

void MemoryLog::append(std::string_view payload) { bytes_ += frame_record(payload); }

Result<bool> MemoryLog::sync(bool) {
  synced_ = bytes_.size();
  return true;
}

Result<bool> MemoryLog::rewrite(const std::vector<std::string>& records) {
  // As SegmentedLog::rewrite: the new segment is synced before the old ones
  // go, so a crash leaves either the old log or the new one, never a mix.
  std::string fresh;
  for (const std::string& r : records) fresh += frame_record(r);
  bytes_ = std::move(fresh);
  synced_ = bytes_.size();
  return true;
}

void MemoryLog::crash(std::uint64_t keep_unsynced) {
  bytes_.resize(synced_ + std::min(keep_unsynced, unsynced_bytes()));
  synced_ = bytes_.size();
}

Result<MemoryLog::Read> MemoryLog::open() {
  Read out;
  const RecordScan s =
      scan_records(bytes_, [&out](std::string_view p) { out.records.emplace_back(p); });
  if (s.damaged && !s.reaches_end) {
    return Error{"a record at byte offset " + std::to_string(s.good_bytes) +
                 " is damaged and is not the last one"};
  }
  out.torn_bytes = bytes_.size() - s.good_bytes;
  bytes_.resize(s.good_bytes);
  synced_ = bytes_.size();
  return out;
}

}  // namespace kvpaxos
