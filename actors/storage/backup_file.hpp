// The backup file of `kvctl snapshot save`, as `kvctl snapshot status` and
// `kvpaxosd restore` read it: one node's snapshot of the state (the bytes
// its applier serves, actors/kv/snapshot_record.hpp) with what it covers.
// Pure functions over bytes, so the format is tested without files.
//
// Layout (integers little-endian):
//   magic     8 bytes  "KVPXBAK\n"
//   version   u32      kBackupFileVersion
//   meta_len  u32      bytes of the metadata that follows
//   metadata  msgpack  BackupMeta
//   payload   bytes    BackupMeta::payload_bytes of snapshot record
//   checksum  u32      crc32c of every byte before it
// A file that is shorter or longer than its lengths say, or whose checksum
// or payload crc does not match, is refused whole: nothing of it is used.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>

#include "messages/messages.hpp"
#include "messages/result.hpp"

namespace kvpaxos {

inline constexpr std::string_view kBackupMagic{"KVPXBAK\n", 8};
inline constexpr std::uint32_t kBackupFileVersion = 1;
// The metadata is a handful of numbers and a name; a length above this is damage.
inline constexpr std::uint32_t kMaxBackupMetaBytes = 64 * 1024;

// What the snapshot covers. Field order is the format (append only).
struct BackupMeta {
  InstanceId applied_below = 0;  // the state after log instances [0, applied_below)
  std::uint64_t revision = 0;    // the store's revision there
  std::uint64_t keys = 0;
  std::uint64_t payload_bytes = 0;
  std::uint32_t payload_crc = 0;  // crc32c of the payload, as the node computed it
  std::string source;             // the --name of the node it came from
  std::uint64_t saved_unix_ms = 0;
  std::uint64_t cluster_id = 0;  // of the cluster it came from (0: unknown)
  MSGPACK_DEFINE(applied_below, revision, keys, payload_bytes, payload_crc, source, saved_unix_ms,
                 cluster_id)
};

struct BackupFile {
  BackupMeta meta;
  std::string payload;
};

// The whole file; meta.payload_bytes and payload_crc are set from `payload`.
std::string encode_backup_file(BackupMeta meta, std::string_view payload);
// Checks magic, version, lengths and both checksums before anything is
// taken; the error says which part is wrong and that the file cannot be
// used (save it again). Never throws.
Result<BackupFile> parse_backup_file(std::string_view bytes);
// Reads and parses `path`; errors name the file.
Result<BackupFile> read_backup_file(const std::string& path);

}  // namespace kvpaxos
