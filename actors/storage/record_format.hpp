// The bytes of kvpaxos's durable files, without the files: crc32c, the
// record framing of the segmented logs (u32 length, u32 crc32c, payload) and
// the one-record framing of the snapshot file. Pure functions, so the logic,
// the simulator's disks and the fuzzers use them without touching a file.
#pragma once

#include <cstdint>
#include <functional>
#include <string>
#include <string_view>

#include "messages/result.hpp"

namespace kvpaxos {

std::uint32_t crc32c(std::string_view bytes);
std::uint32_t crc32c_sw(std::string_view bytes);  // the portable one, for tests

inline constexpr std::size_t kRecordHeaderBytes = 8;

// One segment's bytes read as SegmentedLog::open() reads them: `each` gets the
// payload of every record of the valid prefix, in order. Pure, so the format
// can be tested (and fuzzed) without files.
struct RecordScan {
  std::uint64_t records = 0;
  std::uint64_t good_bytes = 0;  // length of the valid prefix
  bool damaged = false;          // a record after good_bytes does not check out
  bool reaches_end = false;      // ... and it extends to (or past) the end of the data
};
inline constexpr std::uint64_t kMaxLogRecordBytes = 64u << 20;
RecordScan scan_records(std::string_view data, const std::function<void(std::string_view)>& each,
                        std::uint64_t max_record_bytes = kMaxLogRecordBytes);
// A record as it is written: length, crc32c, payload.
std::string frame_record(std::string_view payload);
// Its first kRecordHeaderBytes: the payload's length and checksum.
std::string record_header(std::string_view payload);
// A snapshot file is one record of any size up to 4 GiB (the length field is
// 32 bits); no log record is larger than kMaxLogRecordBytes.
inline constexpr std::uint64_t kMaxFileRecordBytes = 0xffffffffu;

// The payload of such a file's bytes (`data` is consumed: the payload is cut
// out in place); `path` names the file in the error.
Result<std::string> checked_file_payload(std::string data, const std::string& path);

}  // namespace kvpaxos
