#include "actors/front_door.hpp"

namespace kvpaxos {

std::string validate(const ClientRequest& r) {
  if (r.client_id == 0) return "client_id must be non-zero";
  if (r.seq == 0) return "seq must start at 1";
  if (r.ack >= r.seq) return "ack must be below seq";
  if (r.key.size() > kMaxKeyBytes) {
    return "key of " + std::to_string(r.key.size()) + " bytes exceeds the limit of " +
           std::to_string(kMaxKeyBytes);
  }
  if (r.value.size() > kMaxValueBytes) {
    return "value of " + std::to_string(r.value.size()) + " bytes exceeds the limit of " +
           std::to_string(kMaxValueBytes);
  }
  if (r.op == OpKind::get && !r.value.empty()) return "get takes no value";
  return {};
}

void FrontDoor::reject(std::string route, ReplyCode code, std::string why, Outbox& out) const {
  ++rejected_;
  out.push_back({{self_, Actor::front_door}, ToClient{std::move(route), encode(ErrorReply{code, std::move(why)})}});
}

void FrontDoor::on_client_frame(std::string route, std::string_view body, Outbox& out) const {
  Result<Body> decoded = decode(body, kMaxClientFrameBytes);
  if (!decoded.ok()) {
    const bool version = decoded.error().rfind("unsupported protocol version", 0) == 0;
    reject(std::move(route), version ? ReplyCode::unsupported_version : ReplyCode::bad_request,
           decoded.error(), out);
    return;
  }
  Body& msg = decoded.value();
  if (auto* r = std::get_if<ClientRequest>(&msg)) {
    if (std::string why = validate(*r); !why.empty()) {
      reject(std::move(route), ReplyCode::bad_request, std::move(why), out);
      return;
    }
    out.push_back({{self_, Actor::applier}, FromClient{std::move(route), std::move(*r)}});
  } else if (std::holds_alternative<StatusRequest>(msg)) {
    out.push_back({{self_, Actor::applier}, StatusFromClient{std::move(route)}});
  } else if (auto* f = std::get_if<FaultRequest>(&msg)) {
    if (!fault_injection_) {
      reject(std::move(route), ReplyCode::fault_injection_disabled,
             "fault injection is disabled on this node; start kvpaxosd with --fault-injection",
             out);
      return;
    }
    out.push_back({{self_, Actor::peer_link}, FaultFromClient{std::move(route), std::move(*f)}});
  } else {
    reject(std::move(route), ReplyCode::bad_request,
           std::string("clients may not send ") + to_string(type_of(msg)), out);
  }
}

}  // namespace kvpaxos
