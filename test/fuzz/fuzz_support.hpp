// What the fuzz targets share: invariant checks that abort (libFuzzer saves
// the input as a crash; a replay fails its ctest) and a reader that splits
// one fuzz input into several messages.
#pragma once

#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <string_view>

#include "messages/codec.hpp"

namespace kvpaxos::fuzz {

// Not assert(): the builds define NDEBUG, and a fuzz target's checks are its point.
inline void require(bool ok, const char* invariant) {
  if (ok) return;
  std::fprintf(stderr, "fuzz invariant violated: %s\n", invariant);
  std::abort();
}

inline std::string_view view(const std::uint8_t* data, std::size_t size) {
  return {reinterpret_cast<const char*>(data), size};
}

// A decoded message re-encodes to bytes that decode to the same message: the
// canonical encoding is a fixed point. (The input itself need not come back
// byte for byte: msgpack allows wider integers and headers than we write,
// and fields past the ones we define are dropped.)
inline void require_canonical_round_trip(const Body& body) {
  const std::string canonical = encode(body);
  Result<Body> again = decode(canonical);
  require(again.ok(), "a decoded message re-encodes to bytes that decode");
  require(again->index() == body.index(), "a re-encoded message keeps its type");
  require(encode(again.value()) == canonical, "the canonical encoding is a fixed point");
}

// Splits a fuzz input into pieces: each is a one-byte length (0-254) and that
// many bytes, or 255 and a two-byte little-endian length; a short tail is cut.
class Pieces {
 public:
  explicit Pieces(std::string_view input) : rest_(input) {}
  bool empty() const { return rest_.empty(); }
  std::uint8_t byte() {
    if (rest_.empty()) return 0;
    const auto b = static_cast<std::uint8_t>(rest_.front());
    rest_.remove_prefix(1);
    return b;
  }
  std::string_view next() {
    std::size_t len = byte();
    if (len == 255) len = byte() | std::size_t{byte()} << 8;
    return take(len);
  }
  std::string_view rest() { return take(rest_.size()); }

 private:
  std::string_view take(std::size_t len) {
    const std::string_view piece = rest_.substr(0, len);
    rest_.remove_prefix(piece.size());
    return piece;
  }
  std::string_view rest_;
};

}  // namespace kvpaxos::fuzz
