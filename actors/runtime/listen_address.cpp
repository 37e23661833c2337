#include "actors/runtime/listen_address.hpp"

#include <arpa/inet.h>
#include <netdb.h>
#include <netinet/in.h>
#include <sys/socket.h>

#include <optional>
#include <string_view>

namespace kvpaxos {
namespace {

constexpr std::string_view kTcp = "tcp://";

struct HostPort {
  std::string host;  // without IPv6 brackets
  std::string port;
  bool bracketed = false;
};

std::optional<HostPort> split_endpoint(const std::string& endpoint) {
  std::string_view rest = endpoint;
  if (rest.substr(0, kTcp.size()) == kTcp) rest.remove_prefix(kTcp.size());
  const std::size_t colon = rest.rfind(':');
  if (colon == std::string_view::npos || colon == 0) return std::nullopt;
  HostPort hp{std::string(rest.substr(0, colon)), std::string(rest.substr(colon + 1))};
  if (hp.host.size() >= 2 && hp.host.front() == '[' && hp.host.back() == ']') {
    hp.host = hp.host.substr(1, hp.host.size() - 2);
    hp.bracketed = true;
  }
  return hp;
}

bool is_ipv4(const std::string& host) {
  in_addr a{};
  return inet_pton(AF_INET, host.c_str(), &a) == 1;
}

bool is_ipv6(const std::string& host) {
  in6_addr a{};
  return inet_pton(AF_INET6, host.c_str(), &a) == 1;
}

// The first IPv4 address `host` resolves to, or why there is none.
Result<std::string> resolve_ipv4(const std::string& host) {
  addrinfo hints{};
  hints.ai_family = AF_INET;
  hints.ai_socktype = SOCK_STREAM;
  addrinfo* found = nullptr;
  const int rc = getaddrinfo(host.c_str(), nullptr, &hints, &found);
  if (rc != 0 || found == nullptr) {
    return Error{"host name " + host + " does not resolve to an IPv4 address here (" +
                 (rc != 0 ? std::string(gai_strerror(rc)) : std::string("no address")) + ")"};
  }
  char text[INET_ADDRSTRLEN] = {};
  const auto* in = reinterpret_cast<const sockaddr_in*>(found->ai_addr);
  inet_ntop(AF_INET, &in->sin_addr, text, sizeof text);
  freeaddrinfo(found);
  return std::string(text);
}

}  // namespace

bool binds_as_given(const std::string& endpoint) {
  const std::optional<HostPort> hp = split_endpoint(endpoint);
  if (!hp) return false;
  return hp->host == "*" || (hp->bracketed ? is_ipv6(hp->host) : is_ipv4(hp->host));
}

Result<std::string> resolve_for_bind(const std::string& endpoint) {
  if (binds_as_given(endpoint)) return endpoint;
  const std::optional<HostPort> hp = split_endpoint(endpoint);
  if (!hp) return Error{"'" + endpoint + "' is not HOST:PORT"};
  if (hp->bracketed || is_ipv6(hp->host)) {
    return Error{"'" + endpoint + "': write an IPv6 address in brackets, [" + hp->host + "]:" + hp->port};
  }
  Result<std::string> address = resolve_ipv4(hp->host);
  if (!address.ok()) return Error{address.error()};
  return std::string(kTcp) + address.value() + ":" + hp->port;
}

bool is_loopback_endpoint(const std::string& endpoint) {
  const std::optional<HostPort> hp = split_endpoint(endpoint);
  if (!hp) return false;
  if (hp->host == "::1") return true;
  if (hp->host == "*" || hp->bracketed || is_ipv6(hp->host)) return false;
  Result<std::string> address = is_ipv4(hp->host) ? Result<std::string>(hp->host)
                                                  : resolve_ipv4(hp->host);
  return address.ok() && address->rfind("127.", 0) == 0;
}

}  // namespace kvpaxos
