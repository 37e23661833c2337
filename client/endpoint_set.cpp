#include "client/endpoint_set.hpp"

#include <algorithm>

namespace kvpaxos {
namespace {

// tcp://HOST:PORT -> HOST:PORT; any other form as it is.
std::string address(const std::string& endpoint) {
  constexpr std::string_view tcp = "tcp://";
  return endpoint.starts_with(tcp) ? endpoint.substr(tcp.size()) : endpoint;
}

}  // namespace

EndpointSet::EndpointSet(const std::vector<std::string>& given) {
  for (const std::string& endpoint : given) {
    const std::string addr = address(endpoint);
    if (std::find(endpoints_.begin(), endpoints_.end(), addr) == endpoints_.end()) {
      endpoints_.push_back(addr);
    }
  }
}

EndpointSet::Change EndpointSet::learn(const Config& config) {
  if (learned_ && config.epoch < epoch_) return {};
  learned_ = true;
  epoch_ = config.epoch;
  std::set<std::string> members;  // every member's, learners' too: theirs are not dropped
  for (const MemberEntry& m : config.members) {
    if (m.client_endpoint.empty()) continue;
    const std::string addr = address(m.client_endpoint);
    members.insert(addr);
    named_.insert(addr);
  }
  Change change;
  std::vector<std::string> kept;
  for (const std::string& endpoint : endpoints_) {
    const bool gone = named_.contains(endpoint) && !members.contains(endpoint);
    (gone ? change.dropped : kept).push_back(endpoint);
  }
  for (const MemberEntry& m : config.members) {
    if (m.role != MemberRole::voter || m.client_endpoint.empty()) continue;
    const std::string addr = address(m.client_endpoint);
    if (std::find(kept.begin(), kept.end(), addr) != kept.end()) continue;
    kept.push_back(addr);
    change.added.push_back(addr);
  }
  if (kept.empty()) return {};  // nothing to talk to: keep what there was
  endpoints_ = std::move(kept);
  return change;
}

}  // namespace kvpaxos
