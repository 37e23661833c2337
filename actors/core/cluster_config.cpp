#include "actors/core/cluster_config.hpp"

#include <algorithm>
#include <charconv>

namespace kvpaxos {
namespace {

std::vector<std::string_view> split(std::string_view text, char sep) {
  std::vector<std::string_view> parts;
  std::size_t start = 0;
  for (;;) {
    const std::size_t end = text.find(sep, start);
    parts.push_back(text.substr(start, end == std::string_view::npos ? end : end - start));
    if (end == std::string_view::npos) return parts;
    start = end + 1;
  }
}

}  // namespace

bool valid_member_name(std::string_view name) {
  return !name.empty() && name.size() <= kMaxNodeNameBytes &&
         std::all_of(name.begin(), name.end(), [](char c) {
           return std::isalnum(static_cast<unsigned char>(c)) || c == '-' || c == '_' || c == '.';
         });
}

Result<std::string> tcp_endpoint(std::string_view host_port) {
  const std::size_t colon = host_port.rfind(':');
  if (colon == std::string_view::npos || colon == 0) {
    return Error{"'" + std::string(host_port) + "' is not HOST:PORT (e.g. 127.0.0.1:7201)"};
  }
  const std::string_view port_text = host_port.substr(colon + 1);
  unsigned port = 0;
  const auto [end, ec] = std::from_chars(port_text.data(), port_text.data() + port_text.size(), port);
  if (ec != std::errc() || end != port_text.data() + port_text.size() || port == 0 || port > 65535) {
    return Error{"'" + std::string(host_port) + "' has no valid port (1-65535)"};
  }
  return "tcp://" + std::string(host_port);
}

Result<std::vector<Member>> parse_cluster(std::string_view spec) {
  std::vector<Member> members;
  if (spec.empty()) return Error{"--cluster is empty; give NAME=HOST:PORT,NAME=HOST:PORT,..."};
  for (std::string_view entry : split(spec, ',')) {
    const std::size_t eq = entry.find('=');
    if (eq == std::string_view::npos) {
      return Error{"cluster entry '" + std::string(entry) + "' is not NAME=HOST:PORT"};
    }
    const std::string_view name = entry.substr(0, eq);
    if (!valid_member_name(name)) {
      return Error{"cluster entry '" + std::string(entry) +
                   "': a name is 1-" + std::to_string(kMaxNodeNameBytes) +
                   " letters, digits, '-', '_' or '.'"};
    }
    Result<std::string> endpoint = tcp_endpoint(entry.substr(eq + 1));
    if (!endpoint.ok()) return Error{"cluster entry '" + std::string(entry) + "': " + endpoint.error()};
    for (const Member& m : members) {
      if (m.name == name) return Error{"node name '" + std::string(name) + "' appears twice in --cluster"};
      if (m.endpoint == endpoint.value()) {
        return Error{"address " + std::string(entry.substr(eq + 1)) + " appears twice in --cluster"};
      }
    }
    members.push_back(Member{std::string(name), std::move(endpoint.value())});
  }
  if (members.size() > kMaxClusterSize) {
    return Error{"--cluster has " + std::to_string(members.size()) + " nodes; at most " +
                 std::to_string(kMaxClusterSize) + " are supported"};
  }
  return members;
}

Result<bool> validate_members(const std::vector<Member>& members) {
  if (members.empty() || members.size() > kMaxClusterSize) {
    return Error{"members has " + std::to_string(members.size()) + " nodes; allowed 1 to " +
                 std::to_string(kMaxClusterSize)};
  }
  for (std::size_t i = 0; i < members.size(); ++i) {
    if (!valid_member_name(members[i].name)) {
      return Error{"members[" + std::to_string(i) + "].name '" + members[i].name + "': allowed 1 to " +
                   std::to_string(kMaxNodeNameBytes) + " letters, digits, '-', '_' or '.'"};
    }
    for (std::size_t j = 0; j < i; ++j) {
      if (members[j].name == members[i].name || members[j].endpoint == members[i].endpoint) {
        return Error{"members[" + std::to_string(j) + "] and members[" + std::to_string(i) +
                     "] share a name or an endpoint; each must be unique"};
      }
    }
  }
  return true;
}

Result<NodeId> find_member(const std::vector<Member>& members, std::string_view name) {
  std::string names;
  for (std::size_t i = 0; i < members.size(); ++i) {
    if (members[i].name == name) return static_cast<NodeId>(i);
    names += (names.empty() ? "" : ", ") + members[i].name;
  }
  return Error{"--name " + std::string(name) + " is not in --cluster (which has " + names + ")"};
}

}  // namespace kvpaxos
