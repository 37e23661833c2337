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
// ConnectionCap is the logic (no sockets); ClientConnections is the monitor
// glue, owned and used by the front door thread only.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>

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

class ClientConnections {
 public:
  // Starts monitoring `router`, bound at the client port. `monitor_endpoint`
  // must be a unique inproc endpoint. Throws zmq::error_t if that fails.
  ClientConnections(zmq::context_t& ctx, zmq::socket_t& router, const std::string& monitor_endpoint,
                    std::size_t cap, std::string log_prefix);
  // Poll this for ZMQ_POLLIN, then call on_events().
  zmq::socket_t& events() { return monitor_; }
  void on_events();
  const ConnectionCap& counts() const { return cap_; }

 private:
  void refuse(int fd);

  zmq::socket_t monitor_;
  int port_ = -1;  // of the client endpoint
  ConnectionCap cap_;
  std::string log_prefix_;
  std::int64_t last_refusal_log_s_ = 0;
};

}  // namespace kvpaxos
