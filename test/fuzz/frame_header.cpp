// The routing header (first part of every frame between actors and nodes).
//
// Invariants: decoding never throws; an accepted header names known actors
// and survives encode_header/decode_header unchanged.
#include "fuzz_support.hpp"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  using namespace kvpaxos;
  const Result<FrameHeader> h = decode_header(fuzz::view(data, size));
  if (!h.ok()) return 0;
  const auto known = [](Actor a) {
    const auto n = static_cast<std::uint8_t>(a);
    return n >= 1 && n <= kMaxActor;
  };
  fuzz::require(known(h->to.actor) && known(h->from.actor), "a header names known actors");
  const Result<FrameHeader> again = decode_header(encode_header(h.value()));
  fuzz::require(again.ok(), "an accepted header re-encodes to one that decodes");
  fuzz::require(again->to == h->to && again->from == h->from &&
                    again->done_below == h->done_below &&
                    again->decided_below == h->decided_below &&
                    again->forget_below == h->forget_below,
                "a header round-trips unchanged");
  return 0;
}
