#include "actors/client_connections.hpp"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/resource.h>
#include <sys/socket.h>

#include <algorithm>
#include <chrono>
#include <cstdlib>
#include <cstring>

#include "actors/log.hpp"

namespace kvpaxos {

std::size_t raise_open_file_limit() {
  rlimit limit{};
  if (getrlimit(RLIMIT_NOFILE, &limit) != 0) return 1024;
  if (limit.rlim_cur < limit.rlim_max) {
    rlimit raised = limit;
    raised.rlim_cur = limit.rlim_max;
    if (setrlimit(RLIMIT_NOFILE, &raised) == 0) limit = raised;
  }
  return limit.rlim_cur == RLIM_INFINITY ? std::size_t{1} << 20
                                         : static_cast<std::size_t>(limit.rlim_cur);
}

std::size_t client_connection_cap(std::size_t open_file_limit) {
  const std::size_t reserve = std::clamp<std::size_t>(open_file_limit / 4, 128, 1024);
  return open_file_limit > 2 * reserve ? open_file_limit - reserve : open_file_limit / 2;
}

bool ConnectionCap::on_accepted() {
  ++open_;
  if (open_ <= cap_) return true;
  ++refused_;
  return false;
}

void ConnectionCap::on_closed() {
  if (open_ > 0) --open_;
}

ClientConnections::ClientConnections(zmq::context_t& ctx, zmq::socket_t& router,
                                     const std::string& monitor_endpoint, std::size_t cap,
                                     std::string log_prefix)
    : monitor_(ctx, zmq::socket_type::pair), cap_(cap), log_prefix_(std::move(log_prefix)) {
  if (zmq_socket_monitor(router.handle(), monitor_endpoint.c_str(),
                         ZMQ_EVENT_ACCEPTED | ZMQ_EVENT_DISCONNECTED) != 0) {
    throw zmq::error_t();
  }
  monitor_.set(zmq::sockopt::linger, 0);
  monitor_.connect(monitor_endpoint);
  const std::string bound = router.get(zmq::sockopt::last_endpoint);  // tcp://host:port
  if (const auto colon = bound.rfind(':'); colon != std::string::npos) {
    port_ = std::atoi(bound.c_str() + colon + 1);
  }
}

namespace {

// The local port of socket `fd`, or -1 when it is not an IPv4/IPv6 socket.
int local_port(int fd) {
  sockaddr_storage addr{};
  socklen_t len = sizeof addr;
  if (getsockname(fd, reinterpret_cast<sockaddr*>(&addr), &len) != 0) return -1;
  if (addr.ss_family == AF_INET) return ntohs(reinterpret_cast<sockaddr_in*>(&addr)->sin_port);
  if (addr.ss_family == AF_INET6) return ntohs(reinterpret_cast<sockaddr_in6*>(&addr)->sin6_port);
  return -1;
}

}  // namespace

// libzmq owns the descriptor: shutting it down (not closing it) makes its
// engine see the connection end, close it and report it closed. The event
// may be read after that connection already closed and the number was reused;
// the port check keeps the shutdown to client connections of this port
// (never a peer link or a file), at worst another client's, which reconnects.
void ClientConnections::refuse(int fd) {
  if (port_ > 0 && local_port(fd) == port_) (void)::shutdown(fd, SHUT_RDWR);
  const std::int64_t now_s = std::chrono::duration_cast<std::chrono::seconds>(
                                 std::chrono::steady_clock::now().time_since_epoch())
                                 .count();
  if (now_s == last_refusal_log_s_) return;  // at most one line a second
  last_refusal_log_s_ = now_s;
  log::warn(log_prefix_ + "refusing client connections: " + std::to_string(cap_.open()) +
            " open, the cap is " + std::to_string(cap_.cap()) + " (open-file limit minus a " +
            "reserve for peers and the data dir); " + std::to_string(cap_.refused()) +
            " refused so far. Raise the hard RLIMIT_NOFILE (ulimit -Hn) to allow more");
}

void ClientConnections::on_events() {
  for (int i = 0; i < 1024; ++i) {
    zmq::message_t event;
    if (!monitor_.recv(event, zmq::recv_flags::dontwait)) return;
    zmq::message_t address;
    if (event.more()) (void)monitor_.recv(address, zmq::recv_flags::dontwait);
    if (event.size() < 6) continue;
    std::uint16_t kind = 0;
    std::int32_t fd = 0;
    std::memcpy(&kind, event.data(), 2);
    std::memcpy(&fd, static_cast<const char*>(event.data()) + 2, 4);
    if (kind == ZMQ_EVENT_ACCEPTED) {
      if (!cap_.on_accepted()) refuse(fd);
    } else if (kind == ZMQ_EVENT_DISCONNECTED) {
      cap_.on_closed();
    }
  }
}

}  // namespace kvpaxos
