// PaxosPeer: the seed assignment's Paxos library interface over one node's
// Paxos actors: Start(seq, v), Status(seq), Done(seq), Max(), Min().
//
// Sequence numbers are signed as in the seed (Done(-1) / Max() == -1 mean
// "nothing"). Thread-safe: every call takes an internal lock, so many test
// threads may call Start concurrently. It owns the node's `control` inbox.
#pragma once

#include <cstdint>
#include <mutex>
#include <optional>
#include <string>
#include <utility>

#include <zmq.hpp>

#include "messages/messages.hpp"

namespace kvpaxos {

class PaxosPeer {
 public:
  PaxosPeer(zmq::context_t& ctx, const std::string& inproc_namespace, NodeId self);

  // Ask for agreement on `value` at `seq`; returns at once. No effect when seq
  // is below Min() (forgotten).
  void start(std::int64_t seq, std::string value);
  // Decided (with the value), pending, or forgotten. Asks the learner; waits
  // at most a few seconds for its answer (then reports pending).
  std::pair<InstanceState, std::string> status(std::int64_t seq);
  // This peer is done with every instance <= seq.
  void done(std::int64_t seq);
  // Highest instance this peer started or knows decided; -1 when none.
  std::int64_t max();
  // One more than the smallest Done of every peer (instances below are forgotten).
  std::int64_t min();

 private:
  std::optional<InstanceReport> query(InstanceId instance);
  void send(Actor to, const Body& body);

  std::mutex mu_;
  NodeId self_;
  std::string ns_;
  zmq::socket_t inbox_;
  zmq::socket_t to_proposer_;
  zmq::socket_t to_learner_;
  std::uint64_t next_token_ = 1;
  std::int64_t max_started_ = -1;
};

}  // namespace kvpaxos
