// A frame from a client, as the front door gets it: decoded with the client
// limit, then routed or refused by FrontDoor::on_client_frame.
//
// Invariants: decoding never throws; a decoded message re-encodes canonically;
// the front door answers every frame with exactly one message: an ErrorReply
// that decodes (bad input changes nothing) or a valid request for the applier
// or, with fault injection on, the peer link.
#include "actors/kv/front_door.hpp"
#include "fuzz_support.hpp"

namespace kvpaxos {
namespace {

void require_refusal(const Outbound& o, const FrontDoor& door) {
  fuzz::require(door.rejected() == 1, "a refused frame is counted");
  fuzz::require(o.to == Address{0, Actor::front_door}, "a refusal goes straight back");
  const auto* to_client = std::get_if<ToClient>(&o.body);
  fuzz::require(to_client && to_client->route == "route", "a refusal answers the client's route");
  Result<Body> reply = decode(to_client->body, kMaxClientFrameBytes);
  fuzz::require(reply.ok(), "the error reply decodes at the client");
  const auto* error = std::get_if<ErrorReply>(&reply.value());
  fuzz::require(error && error->code != ReplyCode::ok && !error->error.empty(),
                "the error reply names the problem");
}

void require_routed(const Outbound& o, bool fault_injection) {
  if (const auto* r = std::get_if<FromClient>(&o.body)) {
    fuzz::require(o.to == Address{0, Actor::applier}, "client requests go to the applier");
    fuzz::require(validate(r->request).empty(), "only valid requests reach the applier");
  } else if (std::holds_alternative<StatusFromClient>(o.body)) {
    fuzz::require(o.to == Address{0, Actor::applier}, "status requests go to the applier");
  } else if (const auto* f = std::get_if<FaultFromClient>(&o.body)) {
    fuzz::require(fault_injection, "fault requests pass only with --fault-injection");
    fuzz::require(o.to == Address{0, Actor::peer_link}, "fault requests go to the peer link");
    fuzz::require(f->request.drop_rate >= 0.0 && f->request.drop_rate <= 1.0,
                  "a drop rate outside [0, 1] is refused");
  } else {
    fuzz::require(false, "the front door routes only client requests");
  }
}

}  // namespace
}  // namespace kvpaxos

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  using namespace kvpaxos;
  const std::string_view frame = fuzz::view(data, size);
  const Result<Body> decoded = decode(frame, kMaxClientFrameBytes);
  if (decoded.ok()) fuzz::require_canonical_round_trip(decoded.value());
  for (const bool fault_injection : {false, true}) {
    FrontDoor door(0, fault_injection);
    Outbox out;
    door.on_client_frame("route", frame, out);
    fuzz::require(out.size() == 1, "every client frame gets exactly one message out");
    if (door.rejected() > 0) {
      require_refusal(out[0], door);
    } else {
      fuzz::require(decoded.ok(), "only a decodable frame is routed");
      require_routed(out[0], fault_injection);
    }
  }
  return 0;
}
