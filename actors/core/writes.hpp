// Writes: what a durable logic hands out beside its Outbox (persistence as
// data). The runner persists them, syncs, and only then sends; see
// actors/storage/record_log.hpp for who writes them where.
#pragma once

#include <string>
#include <vector>

namespace kvpaxos {

// What a logic needs durable before its messages leave: records to append,
// in order, or (replace) the whole live state that the log is to become,
// its compaction.
struct Writes {
  std::vector<std::string> records;
  bool replace = false;
  bool empty() const { return records.empty() && !replace; }
};

}  // namespace kvpaxos
