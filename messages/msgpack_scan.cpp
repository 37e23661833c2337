#include "messages/msgpack_scan.hpp"

#include <array>
#include <cstdint>
#include <string>

namespace kvpaxos {
namespace {

// Deeper nesting than any decoder allows (codec's 8, snapshots' 8).
constexpr std::size_t kMaxScanDepth = 32;

// One value's header: the bytes it spans itself and the values it contains.
struct Header {
  std::size_t bytes = 0;     // header plus any string, binary or ext payload
  std::uint64_t children = 0;
  bool valid = true;
};

class Reader {
 public:
  explicit Reader(std::string_view bytes) : bytes_(bytes) {}
  bool has(std::size_t n) const { return n <= bytes_.size() - at_; }
  std::size_t at() const { return at_; }
  void skip(std::size_t n) { at_ += n; }
  std::uint8_t byte(std::size_t offset) const {
    return static_cast<std::uint8_t>(bytes_[at_ + offset]);
  }
  // A big-endian unsigned of `n` bytes starting `offset` bytes ahead.
  std::uint64_t uint(std::size_t offset, std::size_t n) const {
    std::uint64_t v = 0;
    for (std::size_t i = 0; i < n; ++i) v = v << 8 | byte(offset + i);
    return v;
  }

 private:
  std::string_view bytes_;
  std::size_t at_ = 0;
};

// The header at the reader's position; `bytes` == 0 when it is cut short.
Header read_header(const Reader& r) {
  if (!r.has(1)) return {};
  const std::uint8_t b = r.byte(0);
  const auto sized = [&r](std::size_t len_bytes, std::size_t extra) -> Header {
    if (!r.has(1 + len_bytes)) return {};
    return {1 + len_bytes + extra + r.uint(1, len_bytes), 0};
  };
  const auto container = [&r](std::size_t len_bytes, std::uint64_t per_entry) -> Header {
    if (!r.has(1 + len_bytes)) return {};
    return {1 + len_bytes, r.uint(1, len_bytes) * per_entry};
  };
  if (b <= 0x7f || b >= 0xe0 || b == 0xc0 || b == 0xc2 || b == 0xc3) return {1, 0};
  if (b <= 0x8f) return {1, 2u * (b & 0x0f)};
  if (b <= 0x9f) return {1, b & 0x0fu};
  if (b <= 0xbf) return {1u + (b & 0x1f), 0};
  switch (b) {
    case 0xc4: return sized(1, 0);
    case 0xc5: return sized(2, 0);
    case 0xc6: return sized(4, 0);
    case 0xc7: return sized(1, 1);  // ext: a type byte after the length
    case 0xc8: return sized(2, 1);
    case 0xc9: return sized(4, 1);
    case 0xca: return {5, 0};
    case 0xcb: return {9, 0};
    case 0xcc: case 0xd0: return {2, 0};
    case 0xcd: case 0xd1: return {3, 0};
    case 0xce: case 0xd2: return {5, 0};
    case 0xcf: case 0xd3: return {9, 0};
    case 0xd4: return {3, 0};
    case 0xd5: return {4, 0};
    case 0xd6: return {6, 0};
    case 0xd7: return {10, 0};
    case 0xd8: return {18, 0};
    case 0xd9: return sized(1, 0);
    case 0xda: return sized(2, 0);
    case 0xdb: return sized(4, 0);
    case 0xdc: return container(2, 1);
    case 0xdd: return container(4, 1);
    case 0xde: return container(2, 2);
    case 0xdf: return container(4, 2);
    default: return {0, 0, false};  // 0xc1 is never used
  }
}

}  // namespace

Result<MsgpackShape> scan_msgpack(std::string_view bytes, const MsgpackLimits& limits) {
  // Values still to read in each open container; the bottom entry is the root.
  std::array<std::uint64_t, kMaxScanDepth + 1> left{};
  std::size_t open = 0;
  left[0] = 1;
  std::size_t values = 0;
  Reader r(bytes);
  for (;;) {
    const Header h = read_header(r);
    if (!h.valid) return Error{"malformed msgpack: reserved byte 0xc1"};
    if (h.bytes == 0 || !r.has(h.bytes)) {
      return Error{"malformed msgpack: the message is cut short at byte " + std::to_string(r.at())};
    }
    if (++values > limits.max_values) {
      return Error{"message holds more than " + std::to_string(limits.max_values) +
                   " msgpack values, more than any message of its kind; refused before decoding"};
    }
    r.skip(h.bytes);
    --left[open];
    if (h.children > 0) {
      if (open == limits.max_depth || open == kMaxScanDepth) {
        return Error{"message nests deeper than " + std::to_string(limits.max_depth) + " levels"};
      }
      left[++open] = h.children;
    }
    while (left[open] == 0) {
      if (open == 0) return MsgpackShape{r.at(), values};
      --open;
    }
  }
}

}  // namespace kvpaxos
