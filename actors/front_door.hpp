// FrontDoor: where clients come in.
//
// The logic decodes and validates one client frame (routed by a ZeroMQ ROUTER
// identity) and decides where it goes: a ClientRequest to the applier, a
// StatusRequest to the applier, a FaultRequest to the peer link (only when the
// node runs with --fault-injection). Anything malformed is answered at once
// with an ErrorReply naming the problem; nothing else changes.
// The runner (FrontDoorThread) owns the ROUTER socket; ToClient messages
// addressed to the front door are sent back through it.
#pragma once

#include <string>
#include <string_view>

#include "messages/codec.hpp"

namespace kvpaxos {

class FrontDoor {
 public:
  FrontDoor(NodeId self, bool fault_injection) : self_(self), fault_injection_(fault_injection) {}

  // One client frame. Appends either a message for an actor or a ToClient
  // (addressed to the front door itself) with an immediate error reply.
  void on_client_frame(std::string route, std::string_view body, Outbox& out) const;

  // Malformed frames seen so far (for logs and tests).
  std::uint64_t rejected() const { return rejected_; }

 private:
  void reject(std::string route, ReplyCode code, std::string why, Outbox& out) const;

  NodeId self_;
  bool fault_injection_;
  mutable std::uint64_t rejected_ = 0;
};

// A ClientRequest is well formed for execution: ids, sizes. Empty when valid.
std::string validate(const ClientRequest& r);

}  // namespace kvpaxos
