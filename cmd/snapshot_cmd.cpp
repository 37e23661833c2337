#include "cmd/snapshot_cmd.hpp"

#include <unistd.h>

#include <cstdio>
#include <ctime>
#include <filesystem>

#include "actors/storage/backup_file.hpp"
#include "actors/storage/record_format.hpp"

namespace kvpaxos::snapshot_cmd {
namespace {

// A chunk that timed out is asked for again this many times before the save fails.
constexpr int kChunkAttempts = 3;

std::string mib(std::uint64_t bytes) {
  char text[32];
  std::snprintf(text, sizeof text, "%.1f MiB", static_cast<double>(bytes) / (1024.0 * 1024.0));
  return text;
}

std::string utc_time(std::uint64_t unix_ms) {
  const std::time_t t = static_cast<std::time_t>(unix_ms / 1000);
  std::tm tm{};
  gmtime_r(&t, &tm);
  char text[32];
  std::strftime(text, sizeof text, "%Y-%m-%dT%H:%M:%SZ", &tm);
  return text;
}

std::string hex(std::uint64_t v) {
  char text[17];
  std::snprintf(text, sizeof text, "%016llx", static_cast<unsigned long long>(v));
  return text;
}

std::string json_string(const std::string& s) {
  std::string out = "\"";
  for (char c : s) {
    if (c == '"' || c == '\\') out.push_back('\\');
    if (static_cast<unsigned char>(c) < 0x20) continue;
    out.push_back(c);
  }
  return out + "\"";
}

Result<bool> write_synced(const std::string& path, const std::string& bytes) {
  const std::string part = path + ".part";
  FILE* out = std::fopen(part.c_str(), "wb");
  if (out == nullptr) return Error{"cannot create " + part + ": is its directory writable?"};
  const bool written = std::fwrite(bytes.data(), 1, bytes.size(), out) == bytes.size() &&
                       std::fflush(out) == 0 && ::fsync(fileno(out)) == 0;
  const bool closed = std::fclose(out) == 0;
  std::error_code ec;
  if (!written || !closed) {
    std::filesystem::remove(part, ec);
    return Error{"cannot write " + part + " (disk full?); nothing was saved"};
  }
  std::filesystem::rename(part, path, ec);
  if (ec) return Error{"cannot rename " + part + " to " + path + ": " + ec.message()};
  return true;
}

// The chunk at `offset` of snapshot `id` (0: a new one), retried on timeouts.
Result<SnapshotSaveReply> fetch_chunk(Client& client, const std::string& endpoint,
                                      std::uint64_t id, std::uint64_t offset,
                                      std::chrono::milliseconds timeout) {
  Result<SnapshotSaveReply> r = Error{""};
  for (int attempt = 0; attempt < kChunkAttempts; ++attempt) {
    r = client.snapshot_chunk(endpoint, SnapshotSaveRequest{id, offset}, timeout);
    if (r.ok() || r.error().find("no reply from") == std::string::npos) break;
  }
  return r;
}

// A chunk must continue the snapshot the first one named.
std::string broken_chunk(const SnapshotSaveReply& first, const SnapshotSaveReply& r,
                         std::uint64_t offset) {
  if (r.snapshot_id != first.snapshot_id || r.total_bytes != first.total_bytes ||
      r.crc != first.crc || r.offset != offset) {
    return "the node sent a chunk of another snapshot than the one being saved";
  }
  if (r.data.empty() || r.data.size() > r.total_bytes - offset) {
    return "the node sent a chunk that does not fit the snapshot's size";
  }
  return {};
}

}  // namespace

Result<std::string> save(Client& client, const std::string& endpoint, const std::string& path,
                         std::chrono::milliseconds timeout, std::ostream& progress) {
  std::error_code ec;
  if (std::filesystem::exists(path, ec)) {
    return Error{path + " exists; remove it or name another file (a snapshot is never "
                 "written over a file)"};
  }
  const CallResult barrier = client.get("");
  if (!barrier.ok()) {
    return Error{"the read through the log that orders the snapshot after every acknowledged "
                 "write did not finish at " + endpoint + ": " + barrier.error};
  }
  Result<SnapshotSaveReply> first = fetch_chunk(client, endpoint, 0, 0, timeout);
  if (!first.ok()) return Error{first.error()};
  std::string payload = first->data;
  auto last_line = std::chrono::steady_clock::now();
  while (payload.size() < first->total_bytes) {
    Result<SnapshotSaveReply> r =
        fetch_chunk(client, endpoint, first->snapshot_id, payload.size(), timeout);
    if (!r.ok()) return Error{r.error() + "; nothing was saved"};
    if (std::string why = broken_chunk(first.value(), r.value(), payload.size()); !why.empty()) {
      return Error{why + "; nothing was saved, save again"};
    }
    payload += r->data;
    if (std::chrono::steady_clock::now() - last_line >= std::chrono::seconds(1)) {
      progress << "kvctl: snapshot save: " << mib(payload.size()) << " of "
               << mib(first->total_bytes) << " from " << first->name << "\n";
      last_line = std::chrono::steady_clock::now();
    }
  }
  if (payload.size() != first->total_bytes || crc32c(payload) != first->crc) {
    return Error{"the snapshot received from " + endpoint + " fails its checksum; nothing was "
                 "saved, save again"};
  }
  const auto now_ms = std::chrono::duration_cast<std::chrono::milliseconds>(
      std::chrono::system_clock::now().time_since_epoch());
  const BackupMeta meta{.applied_below = first->applied_below,
                        .revision = first->revision,
                        .keys = first->keys,
                        .source = first->name,
                        .saved_unix_ms = static_cast<std::uint64_t>(now_ms.count()),
                        .cluster_id = first->cluster_id};
  const std::string file = encode_backup_file(meta, payload);
  if (Result<bool> written = write_synced(path, file); !written.ok()) return Error{written.error()};
  return "Snapshot saved at " + path + ": instance " + std::to_string(first->applied_below) +
         ", revision " + std::to_string(first->revision) + ", " + std::to_string(first->keys) +
         " keys, " + std::to_string(file.size()) + " bytes, from " + first->name;
}

Result<std::string> status(const std::string& path, bool json) {
  Result<BackupFile> file = read_backup_file(path);
  if (!file.ok()) return Error{file.error()};
  const BackupMeta& m = file->meta;
  std::error_code ec;
  const std::uint64_t size = std::filesystem::file_size(path, ec);
  if (json) {
    return "{\"file\":" + json_string(path) + ",\"instance\":" + std::to_string(m.applied_below) +
           ",\"revision\":" + std::to_string(m.revision) + ",\"keys\":" + std::to_string(m.keys) +
           ",\"size\":" + std::to_string(size) + ",\"checksum_ok\":true,\"source\":" +
           json_string(m.source) + ",\"cluster_id\":" + json_string(hex(m.cluster_id)) +
           ",\"saved\":" + json_string(utc_time(m.saved_unix_ms)) + "}";
  }
  char crc[16];
  std::snprintf(crc, sizeof crc, "%08x", m.payload_crc);
  return "file:     " + path + "\ninstance: " + std::to_string(m.applied_below) +
         " (the state after log instances 0 to " + std::to_string(m.applied_below) +
         " - 1)\nrevision: " + std::to_string(m.revision) + "\nkeys:     " +
         std::to_string(m.keys) + "\nsize:     " + std::to_string(size) + " bytes\nchecksum: ok " +
         "(crc32c " + crc + ")\nsource:   " + m.source + " of cluster " + hex(m.cluster_id) +
         "\nsaved:    " +
         utc_time(m.saved_unix_ms);
}

}  // namespace kvpaxos::snapshot_cmd
