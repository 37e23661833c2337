// A message body from a peer node, decoded with the peer limit (the runner's
// decode of a tcp frame's second part).
//
// Invariants: decoding never throws; a decoded message re-encodes to bytes
// that decode to the same message; a prefix of a decodable message does not
// decode (every message is one complete msgpack value).
#include "fuzz_support.hpp"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  using namespace kvpaxos;
  const std::string_view bytes = fuzz::view(data, size);
  const Result<Body> decoded = decode(bytes, kMaxPeerFrameBytes);
  if (!decoded.ok()) {
    fuzz::require(!decoded.error().empty(), "a refusal says why");
    return 0;
  }
  fuzz::require_canonical_round_trip(decoded.value());
  fuzz::require(!decode(bytes.substr(0, size - 1)).ok(), "a truncated message does not decode");
  return 0;
}
