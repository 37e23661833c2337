// A walk over msgpack bytes that builds nothing: how many values the first
// msgpack value holds, how deep it nests, and where it ends.
//
// Why: msgpack-c's unpack allocates a msgpack::object (24 bytes) for every
// value before our structs see any of it, and allocates an array's slots
// from its declared length, so 5 bytes (0xdd ff ff ff ff) ask for 96 GiB and
// a frame of 1-byte empty arrays costs 24x its size and more. Every decoder
// of outside bytes calls scan_msgpack first and unpacks only input whose
// value count is within its bound (codec.hpp states the bounds and why no
// legitimate message reaches them).
#pragma once

#include <cstddef>
#include <string_view>

#include "messages/result.hpp"

namespace kvpaxos {

struct MsgpackLimits {
  std::size_t max_values = 0;  // each array, map, string and scalar counts one
  std::size_t max_depth = 0;   // non-empty arrays and maps open at once (msgpack-c's depth)
};

struct MsgpackShape {
  std::size_t bytes = 0;   // the first value spans bytes [0, bytes)
  std::size_t values = 0;  // what unpacking it would build
};

// The shape of the first msgpack value in `bytes`, or an Error when it is
// malformed, truncated or beyond `limits`. O(bytes), no allocation.
Result<MsgpackShape> scan_msgpack(std::string_view bytes, const MsgpackLimits& limits);

}  // namespace kvpaxos
