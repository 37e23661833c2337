#include "actors/acceptor.hpp"

namespace kvpaxos {

Promise Acceptor::on_prepare(const Prepare& m) {
  Promise reply{.instance = m.instance, .ballot = m.ballot};
  if (m.instance < forget_below_) {
    reply.forgotten = true;
    return reply;
  }
  InstanceState& s = instances_[m.instance];
  if (m.ballot > s.promised) {
    s.promised = m.ballot;
    reply.ok = true;
    reply.accepted_ballot = s.accepted_ballot;
    reply.accepted_value = s.accepted_value;
  }
  reply.promised = s.promised;
  return reply;
}

Accepted Acceptor::on_accept(Accept m) {
  Accepted reply{.instance = m.instance, .ballot = m.ballot};
  if (m.instance < forget_below_) {
    reply.forgotten = true;
    return reply;
  }
  InstanceState& s = instances_[m.instance];
  // >= : the proposer that was promised this very ballot may now be accepted.
  if (m.ballot >= s.promised) {
    s.promised = m.ballot;
    s.accepted_ballot = m.ballot;
    s.accepted_value = std::move(m.value);
    reply.ok = true;
  }
  reply.promised = s.promised;
  return reply;
}

void Acceptor::forget_below(InstanceId instance) {
  if (instance <= forget_below_) return;
  forget_below_ = instance;
  instances_.erase(instances_.begin(), instances_.lower_bound(instance));
}

void Acceptor::handle(const Address& from, Body body, Time, Outbox& out) {
  if (auto* m = std::get_if<Prepare>(&body)) {
    out.push_back({{from.node, Actor::proposer}, on_prepare(*m)});
  } else if (auto* a = std::get_if<Accept>(&body)) {
    out.push_back({{from.node, Actor::proposer}, on_accept(std::move(*a))});
  } else if (auto* f = std::get_if<ForgetBelow>(&body)) {
    forget_below(f->instance);
  }
}

}  // namespace kvpaxos
