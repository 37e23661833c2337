#include "actors/runtime/client_connections.hpp"

#include <arpa/inet.h>
#include <linux/tcp.h>  // struct tcp_info with tcpi_bytes_received (glibc's lacks it)
#include <netinet/in.h>
#include <sys/resource.h>
#include <sys/socket.h>

#include <algorithm>
#include <chrono>
#include <cstddef>
#include <cstdlib>
#include <cstring>

#include "actors/runtime/logger.hpp"
#include "messages/codec.hpp"

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

std::vector<int> UnfinishedMessageWatch::on_tick(
    const std::function<std::optional<std::uint64_t>(int)>& received) {
  std::vector<int> to_cut;
  for (auto& [fd, c] : conns_) {
    if (c.cut) continue;
    const std::optional<std::uint64_t> now = received(fd);
    if (!now) continue;
    if (c.messages_at_mark != c.messages) {  // first tick, or a message since the last one
      c.messages_at_mark = c.messages;
      c.received_at_mark = *now;
      continue;
    }
    if (*now > c.received_at_mark && *now - c.received_at_mark > limit_) {
      c.cut = true;
      ++cut_;
      to_cut.push_back(fd);
    }
  }
  return to_cut;
}

void UnfinishedMessageWatch::on_accepted(int fd, std::uint64_t received) {
  Connection& c = conns_[fd] = Connection{};
  c.messages_at_mark = 0;
  c.received_at_mark = received;
}

std::chrono::milliseconds UnfinishedMessageWatch::tick_interval() const {
  return std::chrono::milliseconds(
      std::clamp<std::size_t>(conns_.size() / 50, kFastestTickMs, kSlowestTickMs));
}

std::uint64_t unfinished_message_limit() {
  return kMaxClientFrameBytes + (std::uint64_t{8} << 20);
}

ClientConnections::ClientConnections(zmq::context_t& ctx, zmq::socket_t& router,
                                     const std::string& monitor_endpoint, std::size_t cap)
    : monitor_(ctx, zmq::socket_type::pair),
      cap_(cap),
      watch_(unfinished_message_limit()) {
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

// "address:port" of the other end of socket `fd`, empty when unknown.
std::string peer_address(int fd) {
  sockaddr_storage addr{};
  socklen_t len = sizeof addr;
  if (getpeername(fd, reinterpret_cast<sockaddr*>(&addr), &len) != 0) return {};
  char host[INET6_ADDRSTRLEN] = {};
  int port = 0;
  if (addr.ss_family == AF_INET) {
    const auto* in = reinterpret_cast<const sockaddr_in*>(&addr);
    if (inet_ntop(AF_INET, &in->sin_addr, host, sizeof host) == nullptr) return {};
    port = ntohs(in->sin_port);
  } else if (addr.ss_family == AF_INET6) {
    const auto* in6 = reinterpret_cast<const sockaddr_in6*>(&addr);
    if (inet_ntop(AF_INET6, &in6->sin6_addr, host, sizeof host) == nullptr) return {};
    port = ntohs(in6->sin6_port);
  } else {
    return {};
  }
  return std::string(host) + ":" + std::to_string(port);
}

// Bytes TCP took in on `fd` so far (the kernel's count, whether or not
// libzmq has read them yet), nullopt when `fd` is no TCP socket.
std::optional<std::uint64_t> bytes_received(int fd) {
  tcp_info info{};
  socklen_t len = sizeof info;
  if (getsockopt(fd, IPPROTO_TCP, TCP_INFO, &info, &len) != 0) return std::nullopt;
  if (len < offsetof(tcp_info, tcpi_bytes_received) + sizeof info.tcpi_bytes_received) {
    return std::nullopt;  // a kernel before 4.1
  }
  return info.tcpi_bytes_received;
}

std::int64_t now_seconds() {
  return std::chrono::duration_cast<std::chrono::seconds>(
             std::chrono::steady_clock::now().time_since_epoch())
      .count();
}

}  // namespace

bool ClientConnections::shut_down(int fd, const std::string& peer) {
  if (port_ <= 0 || local_port(fd) != port_) return false;
  if (!peer.empty() && peer_address(fd) != peer) return false;
  return ::shutdown(fd, SHUT_RDWR) == 0;
}

void ClientConnections::on_tick() {
  for (const int fd : watch_.on_tick(bytes_received)) {
    const auto it = peers_.find(fd);
    const std::string peer = it == peers_.end() ? peer_address(fd) : it->second;
    if (!shut_down(fd, peer)) continue;
    const std::int64_t now_s = now_seconds();
    if (now_s == last_cut_log_s_) continue;  // at most one line a second
    last_cut_log_s_ = now_s;
    log::warn("cut a client connection: it sent more than " +
                  std::to_string(watch_.limit() >> 20) +
                  " MiB without finishing a message (a request is at most " +
                  std::to_string(kMaxClientFrameBytes >> 20) + " MiB in one frame)",
              {{"client", peer.empty() ? "?" : peer}, {"cut_total", watch_.cut()}});
  }
}

// libzmq owns the descriptor: shutting it down (not closing it) makes its
// engine see the connection end, close it and report it closed. The event
// may be read after that connection already closed and the number was reused;
// the port check keeps the shutdown to client connections of this port
// (never a peer link or a file), at worst another client's, which reconnects.
void ClientConnections::refuse(int fd) {
  (void)shut_down(fd, std::string());
  const std::int64_t now_s = now_seconds();
  if (now_s == last_refusal_log_s_) return;  // at most one line a second
  last_refusal_log_s_ = now_s;
  log::warn("refusing client connections: as many are open as the cap (the open-file limit "
            "minus a reserve for peers and the data dir) allows. Raise the hard RLIMIT_NOFILE "
            "(ulimit -Hn) to allow more",
            {{"open", cap_.open()}, {"cap", cap_.cap()}, {"refused_total", cap_.refused()}});
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
      if (!cap_.on_accepted()) {
        refuse(fd);
        continue;
      }
      watch_.on_accepted(fd, bytes_received(fd).value_or(0));
      peers_[fd] = peer_address(fd);
    } else if (kind == ZMQ_EVENT_DISCONNECTED) {
      cap_.on_closed();
      watch_.on_closed(fd);
      peers_.erase(fd);
    }
  }
}

}  // namespace kvpaxos
