// The sans-I/O contract every actor's logic follows (see docs/ and STYLE.md):
// a logic object is fed one message at a time, or a tick, with the current
// time, and appends the messages it wants sent to an Outbox. It never touches
// a socket, a clock or a thread, so tests and the simulator drive it directly.
#pragma once

#include "messages/messages.hpp"

namespace kvpaxos {

class ActorLogic {
 public:
  virtual ~ActorLogic() = default;
  // One inbound message, from the actor at `from`.
  virtual void handle(const Address& from, Body body, Time now, Outbox& out) = 0;
  // Called at least every tick_interval(): timeouts, retransmissions.
  virtual void tick(Time now, Outbox& out) = 0;
  virtual Duration tick_interval() const { return std::chrono::milliseconds(10); }
};

}  // namespace kvpaxos
