#include "actors/kv/snapshot_export.hpp"

#include <algorithm>
#include <cassert>

#include "actors/storage/record_format.hpp"

namespace kvpaxos {

SnapshotSaveReply SnapshotExport::on_request(const SnapshotSaveRequest& m,
                                             const std::function<Made()>& make, Time now) {
  if (m.snapshot_id == 0) {
    served_ = Served{.id = ++last_id_, .made = make(), .last_used = now};
    served_.crc = crc32c(served_.made.bytes);
    return chunk_at(0);
  }
  if (m.snapshot_id != served_.id) {
    return SnapshotSaveReply{
        .code = ReplyCode::bad_request,
        .error = "snapshot " + std::to_string(m.snapshot_id) + " is gone from " + name_ +
                 " (replaced by a newer save, or unread for 30 s); save again",
        .name = name_};
  }
  if (m.offset > served_.made.bytes.size()) {
    return SnapshotSaveReply{.code = ReplyCode::bad_request,
                             .error = "offset " + std::to_string(m.offset) + " is past the end of "
                                      "snapshot " + std::to_string(m.snapshot_id) + " (" +
                                      std::to_string(served_.made.bytes.size()) + " bytes)",
                             .name = name_};
  }
  served_.last_used = now;
  return chunk_at(m.offset);
}

SnapshotSaveReply SnapshotExport::chunk_at(std::uint64_t offset) const {
  assert(served_.id != 0 && offset <= served_.made.bytes.size());
  const std::string& bytes = served_.made.bytes;
  SnapshotSaveReply r{.snapshot_id = served_.id,
                      .applied_below = served_.made.applied_below,
                      .revision = served_.made.revision,
                      .keys = served_.made.keys,
                      .total_bytes = bytes.size(),
                      .crc = served_.crc,
                      .offset = offset,
                      .data = bytes.substr(offset, chunk_bytes_),
                      .name = name_,
                      .cluster_id = cluster_id_};
  assert(r.offset + r.data.size() <= r.total_bytes);
  return r;
}

void SnapshotExport::tick(Time now) {
  if (served_.id != 0 && now - served_.last_used >= kIdle) served_ = Served{};
}

}  // namespace kvpaxos
