// Acceptor: the Paxos memory of one node.
//
// Owns, per log instance, the highest ballot promised and the highest
// (ballot, value) accepted. Handles Prepare and Accept from any proposer in the
// cluster and answers with Promise / Accepted; handles ForgetBelow from the
// local learner. Sends nothing on its own.
//
// Invariants, per instance:
//   accepted_ballot <= promised, always;
//   promised never decreases; accepted_ballot never decreases;
//   an instance below forget_below is never answered except with "forgotten".
// Without durability (a later issue) a restarted node must not rejoin as an
// acceptor: it would have forgotten its promises.
#pragma once

#include <map>

#include "actors/actor.hpp"

namespace kvpaxos {

class Acceptor final : public ActorLogic {
 public:
  void handle(const Address& from, Body body, Time now, Outbox& out) override;
  void tick(Time, Outbox&) override {}
  Duration tick_interval() const override { return std::chrono::seconds(1); }

  Promise on_prepare(const Prepare& m);
  Accepted on_accept(Accept m);
  void forget_below(InstanceId instance);

  std::size_t instances_held() const { return instances_.size(); }
  InstanceId forgotten_below() const { return forget_below_; }

 private:
  struct InstanceState {
    Ballot promised;
    Ballot accepted_ballot;
    std::string accepted_value;
  };

  std::map<InstanceId, InstanceState> instances_;
  InstanceId forget_below_ = 0;
};

}  // namespace kvpaxos
