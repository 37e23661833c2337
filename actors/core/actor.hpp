// The sans-I/O contract every actor's logic follows (see docs/ and STYLE.md):
// a logic object is fed one message at a time, or a tick, with the current
// time, and appends the messages it wants sent to an Outbox. It never touches
// a socket, a clock or a thread, so tests and the simulator drive it directly.
#pragma once

#include <string>

#include "messages/messages.hpp"
#include "messages/result.hpp"

namespace kvpaxos {

class ActorLogic {
 public:
  virtual ~ActorLogic() = default;
  // One inbound message, from the actor at `from`.
  virtual void handle(const Address& from, Body body, Time now, Outbox& out) = 0;
  // Called at least every tick_interval(): timeouts, retransmissions.
  virtual void tick(Time now, Outbox& out) = 0;
  virtual Duration tick_interval() const { return std::chrono::milliseconds(10); }
  // Called once the runner has handled every message that was waiting (or a
  // batch of them), and after each tick: a logic that merges messages bound
  // for one place (the applier's forwards) appends them here, so a burst of
  // input leaves as one message rather than one each.
  virtual void flush(Time now, Outbox& out) {
    (void)now;
    (void)out;
  }
  // Durable actors: make the effects of every message handled so far
  // survive a crash. The runner calls it after a batch of messages and
  // before sending anything the batch produced (group commit). An error
  // means durability is lost; the runner stops the process.
  virtual Result<bool> sync() { return true; }
  // True when sync() has work to do (the runner then batches replies).
  virtual bool durable() const { return false; }
  // Executable invariants (LogCabin's RaftConsensusInvariants): empty when
  // the logic's state is consistent, else what is wrong. The simulator calls
  // it after every event, unit tests after each step. Cheap enough for that:
  // no more than a walk over the state held.
  virtual std::string check_invariants() const { return {}; }
};

}  // namespace kvpaxos
