// EndpointSet: the nodes a Client tries, in order, and what it has learned
// of them from the cluster's configuration (the member list op, through the
// log). Pure: the Client reads the configuration and hands it over; tests
// drive it directly.
//
// Learning a configuration adds the client endpoint of every voter the set
// does not have yet (after the ones it has, in id order) and drops the
// endpoints of members that left or moved. Learners are not added: a
// learner with a wrong address, or one that never starts, must not cost
// the client a timeout; it is added once promoted, which kvctl allows only
// when it answers.
//
// Never dropped: an endpoint that no configuration read so far named (the
// members of the first configuration have no client address in it, so the
// endpoints a user gives for them are known only as the user gave them), and
// the last endpoint left. So with no configuration read, the set is exactly
// the endpoints given.
#pragma once

#include <cstdint>
#include <set>
#include <string>
#include <vector>

#include "messages/messages.hpp"

namespace kvpaxos {

class EndpointSet {
 public:
  // Endpoints as HOST:PORT or tcp://HOST:PORT; kept in the first form (as
  // users write them, and as the client's errors name them).
  explicit EndpointSet(const std::vector<std::string>& given);

  const std::vector<std::string>& endpoints() const { return endpoints_; }

  struct Change {
    std::vector<std::string> added;
    std::vector<std::string> dropped;
    bool empty() const { return added.empty() && dropped.empty(); }
  };
  // Takes in a configuration read from the cluster. One older than the last
  // taken in (a lower epoch) changes nothing.
  Change learn(const Config& config);

 private:
  std::vector<std::string> endpoints_;
  // Every client endpoint a configuration read so far gave a member.
  std::set<std::string> named_;
  std::uint64_t epoch_ = 0;
  bool learned_ = false;
};

}  // namespace kvpaxos
