// SegmentedLog: an append-only, checksummed, segmented record file.
//
// Why our own log rather than LMDB/RocksDB/LevelDB: the acceptor's state is
// small (instances are forgotten once every node is done with them), written
// in an append-only pattern, and must be durable before a reply leaves, with
// one fsync covering a whole batch of messages (group commit). A log of
// records plus an occasional rewrite of the live state is the simplest thing
// with exactly those properties, and every byte of its format is ours to
// check (docs/architecture.md, "Durability").
//
// On disk: DIR/PREFIX-NNNNNNNN.log segments, replayed in number order. Each
// record is
//     u32 length (little endian) | u32 crc32c(payload) | payload
// A record that does not check out at the very end of the newest segment is a
// torn write from a crash: it is cut off (and reported). Anywhere else it is
// corruption: open() fails, naming the file and the byte offset, and the node
// refuses to start rather than serve from a damaged memory.
//
// Not thread-safe: one owner (the runner of the actor whose log it is).
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "actors/storage/record_format.hpp"
#include "actors/storage/record_log.hpp"
#include "messages/result.hpp"

namespace kvpaxos {

// Bytes in regular files under `dir`, recursively (0 when it cannot be read).
std::uint64_t directory_bytes(const std::string& dir);

// fsync a directory, so that a create, rename or unlink in it is durable.
Result<bool> sync_directory(const std::string& dir);

struct LogOpenReport {
  std::uint64_t records = 0;
  std::uint64_t torn_bytes = 0;   // cut off the newest segment's tail
  std::string torn_file;          // where, when torn_bytes > 0
};

class SegmentedLog final : public RecordLog {
 public:
  // Opens (creating DIR if needed) and replays every record through `each`.
  static Result<std::unique_ptr<SegmentedLog>> open(
      const std::string& dir, const std::string& prefix,
      const std::function<void(std::string_view payload)>& each, LogOpenReport* report,
      std::uint64_t segment_bytes = 64 << 20);
  ~SegmentedLog() override;
  SegmentedLog(const SegmentedLog&) = delete;
  SegmentedLog& operator=(const SegmentedLog&) = delete;

  // Buffers a record; nothing reaches the disk before sync().
  void append(std::string_view payload) override;
  // Writes what was appended and fsyncs it: when this returns ok, every
  // record appended so far survives a crash. A failure is not retryable
  // (the kernel may have dropped the dirty pages): the caller must stop.
  // With to_disk false the records are written (they survive the process)
  // but not fsynced (they may not survive the machine).
  Result<bool> sync(bool to_disk = true) override;
  bool has_unsynced() const { return !buffer_.empty(); }

  // Replaces the whole log by `records` (the live state): written to a new
  // segment and synced before the older segments are deleted.
  Result<bool> rewrite(const std::vector<std::string>& records) override;

  std::uint64_t bytes_on_disk() const override { return bytes_on_disk_; }
  std::uint64_t bytes_since_rewrite() const { return bytes_since_rewrite_; }

 private:
  SegmentedLog(std::string dir, std::string prefix, std::uint64_t segment_bytes);
  std::string segment_path(std::uint64_t number) const;
  Result<bool> start_segment(std::uint64_t number);
  Result<bool> write_all(std::string_view bytes);

  std::string dir_;
  std::string prefix_;
  std::uint64_t segment_bytes_;
  std::vector<std::uint64_t> segments_;  // numbers, oldest first; last is open
  int fd_ = -1;
  std::uint64_t segment_size_ = 0;
  std::uint64_t bytes_on_disk_ = 0;
  std::uint64_t bytes_since_rewrite_ = 0;
  std::string buffer_;
};

// Writes `bytes` to DIR/NAME atomically (temp file, fsync, rename, fsync dir),
// framed with a length and crc32c so a reader can tell a damaged file.
Result<bool> write_file_atomically(const std::string& dir, const std::string& name,
                                   std::string_view bytes);
// Reads a file written by write_file_atomically. Empty optional-like result:
// ok with `found == false` when the file does not exist.
struct FileRead {
  bool found = false;
  std::string bytes;
};
Result<FileRead> read_checked_file(const std::string& path);
}  // namespace kvpaxos
