// Basic protocol vocabulary shared by every actor and by the wire format.
#pragma once

#include <chrono>
#include <compare>
#include <cstdint>
#include <map>
#include <string>
#include <vector>

#include <msgpack.hpp>

namespace kvpaxos {

// A member id (messages/membership.hpp): permanent, never reused, part of
// every ballot the member issues. The members of the first configuration
// have their index in the --cluster list (0-based).
using NodeId = std::uint32_t;
// No member: the sender of a MemberQuery, which has no id yet.
inline constexpr NodeId kNoNode = 0xFFFFFFFF;
// A slot of the replicated log. Instances are numbered from 0.
using InstanceId = std::uint64_t;
// The CURVE public keys (Z85) each member may connect with, the one to pin first.
using MemberKeys = std::map<NodeId, std::vector<std::string>>;
using ClientId = std::uint64_t;

// Actors never read a clock: the runner (or the simulator) passes `now` in.
using Clock = std::chrono::steady_clock;
using Time = Clock::time_point;
using Duration = Clock::duration;
using std::chrono::milliseconds;

// A Paxos ballot. Totally ordered by (round, node); two nodes never issue the
// same ballot because the node id breaks ties. The zero ballot {0, 0} means
// "none" and is smaller than every ballot a proposer issues (rounds start at 1).
struct Ballot {
  std::uint64_t round = 0;
  NodeId node = 0;

  auto operator<=>(const Ballot&) const = default;
  bool is_none() const { return round == 0; }
  MSGPACK_DEFINE(round, node)
};

std::string to_string(const Ballot& b);

// The actors of one node; with a NodeId this addresses any actor in the cluster.
enum class Actor : std::uint8_t {
  acceptor = 1,
  proposer = 2,
  learner = 3,
  applier = 4,
  front_door = 5,
  peer_link = 6,
  // Not a thread of the node: the test/library handle (PaxosPeer) that drives
  // a node's Paxos actors directly.
  control = 7,
};
inline constexpr std::uint8_t kMaxActor = 7;
const char* to_string(Actor a);

struct Address {
  NodeId node = 0;
  Actor actor = Actor::acceptor;
  bool operator==(const Address&) const = default;
};

}  // namespace kvpaxos

MSGPACK_ADD_ENUM(kvpaxos::Actor);
