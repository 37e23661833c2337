// ClientConnections: keeps the client port from taking every file descriptor.
//
// Each TCP connection a client opens costs the node one descriptor. Without a
// cap, ~20,000 idle connections used them all, and the next thing that needed
// one failed: libzmq's accept() (EMFILE; libzmq leaves the connection in the
// backlog and tries again), and the lazy creation of an inproc PUSH socket in
// a Postbox (zmq_socket needs an eventfd), which threw zmq::error_t and ended
// the peer link thread ("peer link stopped: Too many open files"). The WAL
// and snapshot files under --data-dir need descriptors too.
//
// So: at start the soft RLIMIT_NOFILE is raised to the hard limit, and client
// connections are capped at that limit minus a reserve (peers, inproc
// signalers, the data dir). A ZeroMQ socket monitor on the client ROUTER
// reports each accepted and each closed connection; ConnectionCap counts
// them, and a connection accepted past the cap is shut down at once (libzmq
// then closes it and reports it closed). Connections already open are never
// touched, so established clients keep their service while new ones are
// turned away (and try another node).
//
// The same monitor bounds one message's frames. libzmq hands a multipart
// message over only once its last frame is in, and keeps the frames before
// that outside its high-water mark (which counts whole messages): a client
// that never sends the last frame made the node buffer everything it sent,
// 3 GiB in 6 s. ZMQ_MAXMSGSIZE caps a frame, not a message. So every tick
// the front door asks the kernel how many bytes each connection has
// delivered (TCP_INFO tcpi_bytes_received) and UnfinishedMessageWatch
// compares that with the messages the ROUTER handed over from it (ZMQ_SRCFD
// names a message's connection): a connection that has sent more than one
// whole request's worth since its last complete message can only be in the
// middle of a message no request needs, and is shut down like a connection
// over the cap. Its frames go with it.
//
// ConnectionCap and UnfinishedMessageWatch are the logic (no sockets);
// ClientConnections is the monitor glue, owned and used by the front door
// thread only.
#pragma once

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <unordered_map>
#include <vector>

#include <zmq.hpp>

namespace kvpaxos {

// Raises the soft RLIMIT_NOFILE to the hard limit; returns the soft limit in
// force afterwards (unchanged when raising it fails).
std::size_t raise_open_file_limit();

// Descriptors kept for everything but client connections: a quarter of the
// limit, at least 128 and at most 1024 (a node uses ~60 at rest: sockets,
// eventfds, epoll, WAL segments; connection bursts overshoot the cap by the
// connections libzmq accepts before the monitor's events are read).
std::size_t client_connection_cap(std::size_t open_file_limit);

class ConnectionCap {
 public:
  explicit ConnectionCap(std::size_t cap) : cap_(cap) {}
  // A connection was accepted: false when it is over the cap and must go.
  bool on_accepted();
  void on_closed();
  std::size_t open() const { return open_; }
  std::size_t cap() const { return cap_; }
  std::uint64_t refused() const { return refused_; }

 private:
  std::size_t cap_;
  std::size_t open_ = 0;
  std::uint64_t refused_ = 0;
};

// Connections by descriptor. A connection is cut once the bytes TCP took in
// from it since it was accepted, or since the first tick after its last
// complete message, exceed
// `limit_bytes` (a whole request, framing, and the kernel's buffers). A
// partial message holds up everything behind it on its connection, so while
// one grows no complete message can come from there: the count stands still
// and the bytes keep rising. Well-behaved clients finish each message, which
// moves the mark, and one request is never more than the limit.
class UnfinishedMessageWatch {
 public:
  explicit UnfinishedMessageWatch(std::uint64_t limit_bytes) : limit_(limit_bytes) {}
  // A new connection (fd numbers are reused), marked at `received`, the
  // bytes TCP had taken in on it when it was reported.
  void on_accepted(int fd, std::uint64_t received);
  void on_closed(int fd) { conns_.erase(fd); }
  void on_message(int fd) { ++conns_[fd].messages; }
  // `received(fd)`: the bytes TCP took in on fd so far, nullopt when unknown.
  // Returns the connections to cut now (each one once).
  std::vector<int> on_tick(const std::function<std::optional<std::uint64_t>(int)>& received);
  // How often to tick: every 20 ms, less often with over 1,000 connections
  // (one getsockopt each), 200 ms at most. In a 20 ms tick a connection on
  // loopback brings ~15 MiB without CURVE, less with it.
  std::chrono::milliseconds tick_interval() const;
  static constexpr std::size_t kFastestTickMs = 20;
  static constexpr std::size_t kSlowestTickMs = 200;
  std::uint64_t limit() const { return limit_; }
  std::uint64_t cut() const { return cut_; }
  std::size_t watched() const { return conns_.size(); }

 private:
  struct Connection {
    std::uint64_t messages = 0;
    std::optional<std::uint64_t> messages_at_mark;
    std::uint64_t received_at_mark = 0;
    bool cut = false;
  };
  std::uint64_t limit_;
  std::uint64_t cut_ = 0;
  std::unordered_map<int, Connection> conns_;
};

// One whole request (the largest frame the client port takes), its framing
// and what the kernel's receive buffer may hold beyond it.
std::uint64_t unfinished_message_limit();

class ClientConnections {
 public:
  // Starts monitoring `router`, bound at the client port. `monitor_endpoint`
  // must be a unique inproc endpoint. Throws zmq::error_t if that fails.
  ClientConnections(zmq::context_t& ctx, zmq::socket_t& router, const std::string& monitor_endpoint,
                    std::size_t cap);
  // Poll this for ZMQ_POLLIN, then call on_events().
  zmq::socket_t& events() { return monitor_; }
  void on_events();
  // A complete message came from the connection with descriptor `fd`
  // (ZMQ_SRCFD of one of its frames; negative when unknown).
  void on_message(int fd) {
    if (fd >= 0) watch_.on_message(fd);
  }
  // Every tick_interval(), right after the ROUTER was drained.
  void on_tick();
  std::chrono::milliseconds tick_interval() const { return watch_.tick_interval(); }
  const ConnectionCap& counts() const { return cap_; }

 private:
  // Shuts `fd` down if it still is the client connection accepted as
  // `peer` on this port.
  bool shut_down(int fd, const std::string& peer);
  void refuse(int fd);

  zmq::socket_t monitor_;
  int port_ = -1;  // of the client endpoint
  ConnectionCap cap_;
  UnfinishedMessageWatch watch_;
  std::unordered_map<int, std::string> peers_;  // fd -> address:port when accepted
  std::int64_t last_refusal_log_s_ = 0;
  std::int64_t last_cut_log_s_ = 0;
};

}  // namespace kvpaxos
