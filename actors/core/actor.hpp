// The sans-I/O contract every actor's logic follows (see docs/ and STYLE.md):
// a logic object is fed one message at a time, or a tick, with the current
// time, and appends the messages it wants sent to an Outbox. It never touches
// a socket, a clock or a thread, so tests and the simulator drive it directly.
#pragma once

#include <optional>
#include <string>

#include "actors/core/writes.hpp"
#include "actors/observe/metrics.hpp"
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
  // Durable actors: what the messages handled since the last call need on
  // disk before anything they produced may leave (persistence as data,
  // actors/storage/record_log.hpp). The runner calls it after a batch of
  // messages (and after each tick), persists the result with one sync, and
  // only then sends the batch's Outbox (group commit). The logic never
  // touches a file.
  virtual Writes take_writes() { return {}; }
  // True when the logic hands out Writes (it was recovered from a log).
  virtual bool durable() const { return false; }
  // Executable invariants (LogCabin's RaftConsensusInvariants): empty when
  // the logic's state is consistent, else what is wrong. The simulator calls
  // it after every event, unit tests after each step. Cheap enough for that:
  // no more than a walk over the state held.
  virtual std::string check_invariants() const { return {}; }
  // A state the node must not go on from (two values decided for one
  // instance): the runner stops the process with this line, the simulator
  // reports a violation. Empty when all is well; cheap (a counter).
  virtual std::string fatal() const { return {}; }
  // One line on the logic's progress state, for a debug log once a second
  // (the runner writes it at --log-level debug only). Empty: nothing to say.
  virtual std::string debug_state() const { return {}; }
  // The numbers the node exports as metrics (actors/observe/metrics.hpp);
  // the runner asks every 100 ms. Nothing: this logic exports none.
  virtual std::optional<LogicReport> report() const { return std::nullopt; }
};

}  // namespace kvpaxos
