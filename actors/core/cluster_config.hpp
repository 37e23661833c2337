// Parsing and validation of the cluster membership given on the command line
// (--cluster n1=127.0.0.1:7101,n2=...), shared by kvpaxosd and the tests.
#pragma once

#include <string>
#include <string_view>
#include <vector>

#include "messages/result.hpp"
#include "messages/types.hpp"

namespace kvpaxos {

inline constexpr std::size_t kMaxClusterSize = 63;  // ballots' vote masks are 64-bit
inline constexpr std::size_t kMaxNodeNameBytes = 64;

struct Member {
  std::string name;
  std::string endpoint;  // a ZeroMQ endpoint: tcp://host:port or inproc://...
};

// "n1=127.0.0.1:7101,n2=127.0.0.1:7102" -> members, in order; errors name the
// offending entry (empty, missing '=', duplicate name or address, bad port).
Result<std::vector<Member>> parse_cluster(std::string_view spec);

// "127.0.0.1:7201" -> "tcp://127.0.0.1:7201"; validates host and port.
Result<std::string> tcp_endpoint(std::string_view host_port);

// The members as a node needs them: 1 to kMaxClusterSize, each name 1 to
// kMaxNodeNameBytes letters, digits, '-', '_' or '.', no name or endpoint
// twice. What parse_cluster returns passes; the error names the field and
// the allowed range.
Result<bool> validate_members(const std::vector<Member>& members);

// A member name: 1 to kMaxNodeNameBytes letters, digits, '-', '_' or '.'.
bool valid_member_name(std::string_view name);

// Index of `name` in `members`, or an error listing the names there are.
Result<NodeId> find_member(const std::vector<Member>& members, std::string_view name);

}  // namespace kvpaxos
