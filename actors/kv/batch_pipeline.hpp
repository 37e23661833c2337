// BatchPipeline: batching and pipelining of the client ops waiting at this
// node. Keeps the queue of waiting requests (by client; an entry whose
// waiter is no longer queued is skipped) and this node's instances in
// flight, each carrying a batch of up to max_batch_ops ops or
// max_batch_bytes. At most max_in_flight instances are undecided at once,
// and a second one goes out only behind a full batch. Sends Propose to this
// node's proposer. Owned by the Applier, on its thread; no time.
//
// Invariant: next_propose only grows, except when a snapshot resets it;
// each instance in flight was proposed once, with the clients it carries;
// nothing is proposed at or above the `end` the applier passes (its window).
#pragma once

#include <cstddef>
#include <deque>
#include <map>
#include <string>
#include <utility>
#include <vector>

#include "actors/kv/waiting_request.hpp"
#include "messages/messages.hpp"

namespace kvpaxos {

class BatchPipeline {
 public:
  struct Limits {
    std::size_t max_in_flight = 2;
    std::size_t max_batch_ops = 1024;
    std::size_t max_batch_bytes = 1 << 20;
  };
  BatchPipeline(NodeId self, Limits limits) : self_(self), limits_(limits) {}

  // Puts a client whose waiter was just marked queued in line.
  void push(ClientId client, Line line);
  // Fills free pipeline slots with batches of the queued waiters (they
  // become proposed), in instances from max(next_propose, floor) up to
  // below `end` (the alpha window); the rest wait in the queue.
  void propose(Waiters& waiters, InstanceId floor, InstanceId end, Outbox& out);
  // A no-op in every instance of [max(next_propose, floor), end), which
  // this node has not proposed in; batches go on from `end`.
  void propose_no_ops(InstanceId floor, InstanceId end, Outbox& out);
  // The clients this node's batch for `instance` carried (none if it
  // proposed nothing there), now that `instance` is applied.
  std::vector<ClientId> take_batch(InstanceId instance);
  // The queue, in order, leaving it empty (the queue goes to a leader).
  std::deque<ClientId> take_queue() { return std::exchange(queue_, {}); }
  // Proposals start at `applied_below` (a snapshot replaced the state).
  void restart_at(InstanceId applied_below);
  // A snapshot replaced the state: no queue, no instances in flight.
  void clear();
  // For the debug log: the instances in flight, the next one, the queue.
  std::string debug_state() const;

 private:
  bool full_batch_waiting(const Waiters& waiters) const;

  NodeId self_;
  Limits limits_;
  std::deque<ClientId> queue_;  // waiters to put in the next batch
  // This node's proposals not yet applied: instance -> the clients it carries.
  std::map<InstanceId, std::vector<ClientId>> in_flight_;
  InstanceId next_propose_ = 0;
};

}  // namespace kvpaxos
