// A client request waiting at this node's applier for the instance that
// runs it: where it is (its Place), and what it needs to be proposed again.
// Owned by the Applier; BatchPipeline reads and moves the queued ones.
#pragma once

#include <cstdint>
#include <string>
#include <unordered_map>

#include "messages/messages.hpp"

namespace kvpaxos {

// Where a waiting request is. It changes place only through
// Applier::requeue() (into the queue), BatchPipeline::propose() (queued ->
// proposed) and Applier::forward_waiter() (-> forwarded or relayed).
enum class Place {
  placing,    // new, or its queue and instance are gone: queued or forwarded next
  queued,     // in the pipeline's queue, for the next batch
  proposed,   // carried by this node's in-flight instance `instance`
  forwarded,  // sent to the leader, forwarded_to, at forwarded_at
  relayed,    // sent to forwarded_to, a third node, as the leader's forward timed out
};

struct Waiter {
  std::uint64_t seq = 0;
  std::string route;  // empty for a peer's forwarded op: nobody to answer here
  std::string op;     // encoded KvOp, ready to re-propose
  std::size_t values = 0;  // wire_values() of that op: what it adds to a batch's decode bound
  Place place = Place::placing;
  InstanceId instance = 0;  // while proposed
  NodeId forwarded_to = 0;  // while forwarded or relayed
  Time forwarded_at{};
  // A forward of it timed out: proposed here from then on, never handed
  // to a leader again (Applier::forward_queue). Not a place: it stays across them.
  bool keep_here = false;
  bool away() const { return place == Place::forwarded || place == Place::relayed; }
};

// At most one per client: a newer request replaces the older one.
using Waiters = std::unordered_map<ClientId, Waiter>;

// Where in the queue a request goes: behind the others, or first (the
// instance that carried it was lost to another value).
enum class Line { back, front };

}  // namespace kvpaxos
