// ForwardBuffer: client ops this node's applier hands to the leader, held
// until the runner's flush (ActorLogic::flush: every waiting message handled,
// or 2 ms) or until they reach max_bytes, so that a burst leaves as one
// ForwardOps to the leader's applier rather than one peer message per op.
// Holds ops for one node at a time; owned by the Applier, on its thread.
#pragma once

#include <cstddef>
#include <string>
#include <vector>

#include "messages/messages.hpp"

namespace kvpaxos {

class ForwardBuffer {
 public:
  explicit ForwardBuffer(std::size_t max_bytes) : max_bytes_(max_bytes) {}

  // Holds `op` for `to`; sends what was held for another node first, and all
  // of it once max_bytes are held.
  void add(NodeId to, std::string op, Outbox& out);
  // Sends the ops held, if any, as one ForwardOps.
  void flush(Outbox& out);
  // Forgets ops held for a node other than `to` (the lead moved away from
  // it; the applier forwards them again to the new leader).
  void drop_unless_for(NodeId to);

 private:
  std::size_t max_bytes_;
  NodeId to_ = 0;
  std::vector<std::string> ops_;
  std::size_t bytes_ = 0;  // in ops_
};

}  // namespace kvpaxos
