#include "actors/kv/snapshot_transfer.hpp"

#include <algorithm>

#include "actors/storage/record_format.hpp"

namespace kvpaxos {

void SnapshotTransfer::on_needed(const SnapshotNeeded& m, InstanceId applied_below, Time now,
                                 Outbox& out) {
  if (m.below <= applied_below || m.peer == self_) return;
  // A transfer that still receives chunks goes on. A stalled one resumes
  // where it stopped if the learner names the same peer, else starts over
  // with the peer it names now (the old one may be down).
  if (fetch_.active && now - fetch_.last_chunk < 3 * timeout_) return;
  if (!fetch_.active || fetch_.peer != m.peer) {
    fetch_ = Fetch{.active = true, .peer = m.peer, .last_chunk = now};
  }
  request_chunk(now, out);
}

void SnapshotTransfer::request_chunk(Time now, Outbox& out) {
  fetch_.last_request = now;
  out.push_back({{fetch_.peer, Actor::applier},
                 SnapshotRequest{fetch_.instance, fetch_.bytes.size()}});
}

// The crc and the content are checked whole before the state is replaced.
std::optional<SnapshotTransfer::Received> SnapshotTransfer::on_chunk(
    NodeId from, SnapshotChunk m, InstanceId applied_below, Time now, Outbox& out,
    ApplierRefusals& refused) {
  if (!fetch_.active || from != fetch_.peer) {
    ++refused.chunk_not_asked;
    return std::nullopt;
  }
  if (!chunk_in_bounds(m, refused)) return std::nullopt;
  if (m.instance <= applied_below) {
    ++refused.chunk_not_newer;  // the peer is no further: the learner asks again
    fetch_ = Fetch{};
    return std::nullopt;
  }
  if (!chunk_continues_fetch(m, refused)) return std::nullopt;
  fetch_.bytes += m.data;
  fetch_.last_chunk = now;
  if (fetch_.bytes.size() < fetch_.total_bytes) {
    request_chunk(now, out);
    return std::nullopt;
  }
  Fetch done = std::move(fetch_);
  fetch_ = Fetch{};
  if (crc32c(done.bytes) != done.crc) {
    ++refused.snapshot_rejected;
    // the learner asks again
    return Received{.error = "snapshot from node " + std::to_string(from) + " failed its checksum"};
  }
  return Received{.instance = done.instance, .bytes = std::move(done.bytes)};
}

// A correct peer serves a snapshot of at least one byte (kMaxSnapshotBytes at
// most) in non-empty chunks of at most kMaxSnapshotChunkBytes that end inside it.
bool SnapshotTransfer::chunk_in_bounds(const SnapshotChunk& m, ApplierRefusals& refused) const {
  const bool in_bounds = m.total_bytes > 0 && m.total_bytes <= kMaxSnapshotBytes &&
                         !m.data.empty() && m.data.size() <= kMaxSnapshotChunkBytes &&
                         m.offset < m.total_bytes && m.data.size() <= m.total_bytes - m.offset;
  if (!in_bounds) ++refused.chunk_malformed;
  return in_bounds;
}

// The first chunk of a transfer names the snapshot (instance, size, crc). A
// peer asked for a snapshot it no longer holds starts over, at byte 0, on a
// newer one. Any other chunk must be the next byte of the snapshot named,
// with the same size and crc: the serving peer keeps it stable.
bool SnapshotTransfer::chunk_continues_fetch(const SnapshotChunk& m, ApplierRefusals& refused) {
  if (m.offset == 0 && (fetch_.instance == 0 || m.instance > fetch_.instance)) {
    fetch_.instance = m.instance;
    fetch_.total_bytes = m.total_bytes;
    fetch_.crc = m.crc;
    fetch_.bytes.clear();
    return true;
  }
  if (m.instance != fetch_.instance || m.offset != fetch_.bytes.size()) {
    ++refused.chunk_stale;  // late, duplicated, or of an older snapshot
    return false;
  }
  if (m.total_bytes != fetch_.total_bytes || m.crc != fetch_.crc) {
    ++refused.chunk_changed;
    return false;
  }
  return true;
}

void SnapshotTransfer::on_request(NodeId from, const SnapshotRequest& m, InstanceId applied_below,
                                  const std::function<std::string()>& snapshot, Time now,
                                  Outbox& out) {
  if (from == self_) return;
  const bool stale = served_.bytes.empty() ||
                     (m.instance == 0 && m.offset == 0 && served_.instance < applied_below);
  if (stale) {
    served_ = Served{applied_below, snapshot(), 0, now};
    served_.crc = crc32c(served_.bytes);
  }
  served_.last_used = now;
  // Asked for a snapshot we no longer hold: the transfer starts over on ours.
  const std::uint64_t offset =
      m.instance == served_.instance ? std::min<std::uint64_t>(m.offset, served_.bytes.size()) : 0;
  out.push_back({{from, Actor::applier},
                 SnapshotChunk{served_.instance, served_.bytes.size(), offset, served_.crc,
                               served_.bytes.substr(offset, chunk_bytes_)}});
}

void SnapshotTransfer::tick(Time now, Outbox& out) {
  if (fetch_.active && now - fetch_.last_request >= timeout_) {
    request_chunk(now, out);  // resume where the transfer stalled
  }
  if (!served_.bytes.empty() && now - served_.last_used >= std::chrono::seconds(30)) {
    served_ = Served{};  // nobody is fetching it any more
  }
}

}  // namespace kvpaxos
