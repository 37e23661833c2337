// An acceptor or decided log segment as SegmentedLog::open() reads it from
// disk (scan_records over the file's bytes), and a snapshot file's framing.
//
// Invariants: the scan never reads past the data; the records it delivers,
// framed again, are exactly the valid prefix it reports; a scan that is not
// damaged covers the whole data; a damaged one stops at a record that does
// not check out; a checked file is exactly one record.
#include "actors/storage/segmented_log.hpp"
#include "fuzz_support.hpp"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  using namespace kvpaxos;
  const std::string_view bytes = fuzz::view(data, size);
  std::string reframed;
  std::uint64_t delivered = 0;
  const RecordScan s = scan_records(bytes, [&](std::string_view payload) {
    fuzz::require(payload.data() >= bytes.data() &&
                      payload.data() + payload.size() <= bytes.data() + bytes.size(),
                  "a payload lies within the data");
    reframed += frame_record(payload);
    ++delivered;
  });
  fuzz::require(s.records == delivered, "every record counted is delivered");
  fuzz::require(s.good_bytes <= size, "the valid prefix is within the data");
  fuzz::require(reframed == bytes.substr(0, s.good_bytes),
                "the delivered records are exactly the valid prefix");
  fuzz::require(s.damaged == (s.good_bytes < size), "only a damaged scan stops early");
  fuzz::require(!s.reaches_end || s.damaged, "only damage can reach the end");

  // With a smaller record limit the scan stops at the first larger record.
  const RecordScan small = scan_records(bytes, [](std::string_view) {}, 16);
  fuzz::require(small.good_bytes <= s.good_bytes, "a lower record limit accepts no more");

  const Result<std::string> payload = checked_file_payload(std::string(bytes), "fuzz-file");
  if (payload.ok()) {
    fuzz::require(frame_record(payload.value()) == bytes, "a checked file is one whole record");
  } else {
    fuzz::require(s.damaged || s.records != 1, "a file of one good record is read");
  }
  return 0;
}
