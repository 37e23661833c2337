// zmq_ceiling: how many request/reply round trips per second the transport
// that kvpaxos is built on can carry on this machine, with no Paxos, no disk
// and no state at all. It is the ceiling the front door puts on every store
// built this way, to read bench/compare's figures against.
//
//   zmq_ceiling [--clients 64] [--duration 5s] [--value-size 100] [--hops 1]
//
// A ROUTER on 127.0.0.1 echoes each request, as the front door does, after
// passing it through `hops` inproc PUSH/PULL round trips to a second thread
// (the front door to the applier and back is one hop; 0 echoes at once).
// The clients are what `kvctl bench` runs: one thread and one DEALER each,
// one request outstanding, over one ZeroMQ context with two I/O threads.
// Prints ops/s once a second and a final line.
#include <atomic>
#include <chrono>
#include <cstdio>
#include <string>
#include <thread>
#include <vector>

#include <CLI/CLI.hpp>
#include <zmq.hpp>
#include <zmq_addon.hpp>

namespace {

using Clock = std::chrono::steady_clock;

// The second thread: receives [route][body] on `in`, sends it back on `out`.
void relay(zmq::context_t& ctx, const std::string& in_ep, const std::string& out_ep,
           const std::atomic<bool>& stop) {
  zmq::socket_t in(ctx, zmq::socket_type::pull);
  zmq::socket_t out(ctx, zmq::socket_type::push);
  in.set(zmq::sockopt::rcvtimeo, 100);
  in.bind(in_ep);
  out.connect(out_ep);
  while (!stop.load()) {
    std::vector<zmq::message_t> frames;
    if (!zmq::recv_multipart(in, std::back_inserter(frames))) continue;
    zmq::send_multipart(out, frames);
  }
}

// The front door: a ROUTER for the clients; with hops, each request makes
// that many round trips through the relay before its reply goes out.
void front_door(zmq::context_t& ctx, const std::string& endpoint, int hops,
                const std::atomic<bool>& stop) {
  zmq::socket_t router(ctx, zmq::socket_type::router);
  router.set(zmq::sockopt::linger, 0);
  router.bind(endpoint);
  zmq::socket_t to_relay(ctx, zmq::socket_type::push);
  zmq::socket_t from_relay(ctx, zmq::socket_type::pull);
  from_relay.bind("inproc://ceiling-back");
  std::thread relay_thread;
  if (hops > 0) {
    relay_thread = std::thread(relay, std::ref(ctx), "inproc://ceiling-out",
                               "inproc://ceiling-back", std::cref(stop));
    std::this_thread::sleep_for(std::chrono::milliseconds(50));  // relay binds first
    to_relay.connect("inproc://ceiling-out");
  }
  // Frames are [route][body][hops left].
  while (!stop.load()) {
    zmq::pollitem_t items[] = {{router.handle(), 0, ZMQ_POLLIN, 0},
                               {from_relay.handle(), 0, ZMQ_POLLIN, 0}};
    zmq::poll(items, 2, std::chrono::milliseconds(100));
    for (;;) {
      std::vector<zmq::message_t> frames;
      if (!zmq::recv_multipart(router, std::back_inserter(frames), zmq::recv_flags::dontwait)) break;
      if (hops == 0) {
        zmq::send_multipart(router, frames);
        continue;
      }
      frames.emplace_back(std::to_string(hops));
      zmq::send_multipart(to_relay, frames);
    }
    for (;;) {
      std::vector<zmq::message_t> frames;
      if (!zmq::recv_multipart(from_relay, std::back_inserter(frames), zmq::recv_flags::dontwait)) {
        break;
      }
      const int left = std::stoi(frames.back().to_string()) - 1;
      frames.pop_back();
      if (left == 0) {
        zmq::send_multipart(router, frames);
      } else {
        frames.emplace_back(std::to_string(left));
        zmq::send_multipart(to_relay, frames);
      }
    }
  }
  if (relay_thread.joinable()) relay_thread.join();
}

}  // namespace

int main(int argc, char** argv) {
  CLI::App app{"zmq_ceiling: round trips per second through a ZeroMQ ROUTER front door alone"};
  int clients = 64;
  int seconds = 5;
  std::size_t value_size = 100;
  int hops = 1;
  int port = 27190;
  app.add_option("--clients", clients, "Concurrent clients, one request outstanding each")
      ->check(CLI::Range(1, 4096));
  app.add_option("--seconds", seconds, "How long to run")->check(CLI::Range(1, 600));
  app.add_option("--value-size", value_size, "Request bytes")->check(CLI::Range(0, 1 << 20));
  app.add_option("--hops", hops, "inproc round trips per request inside the server")
      ->check(CLI::Range(0, 16));
  app.add_option("--port", port, "Port on 127.0.0.1")->check(CLI::Range(1024, 65535));
  CLI11_PARSE(app, argc, argv);

  const std::string endpoint = "tcp://127.0.0.1:" + std::to_string(port);
  std::atomic<bool> stop{false};
  zmq::context_t server_ctx(1);
  std::thread server;
  try {
    // Bind in this thread first, so a port in use is reported, not thrown
    // on the server thread.
    zmq::socket_t probe(server_ctx, zmq::socket_type::router);
    probe.bind(endpoint);
    probe.unbind(endpoint);
  } catch (const zmq::error_t& e) {
    std::fprintf(stderr, "zmq_ceiling: cannot listen on %s: %s; pick another --port\n",
                 endpoint.c_str(), e.what());
    return 1;
  }
  server = std::thread(front_door, std::ref(server_ctx), endpoint, hops, std::cref(stop));
  std::this_thread::sleep_for(std::chrono::milliseconds(100));

  zmq::context_t client_ctx(2);  // as kvctl bench
  std::atomic<std::uint64_t> done{0};
  std::atomic<bool> stop_clients{false};
  std::vector<std::thread> threads;
  for (int i = 0; i < clients; ++i) {
    threads.emplace_back([&] {
      zmq::socket_t s(client_ctx, zmq::socket_type::dealer);
      s.set(zmq::sockopt::linger, 0);
      s.set(zmq::sockopt::rcvtimeo, 1000);
      s.connect(endpoint);
      const std::string body(value_size, 'x');
      zmq::message_t reply;
      while (!stop_clients.load(std::memory_order_relaxed)) {
        s.send(zmq::buffer(body));
        if (!s.recv(reply)) continue;  // a lost reply would only show as fewer ops
        done.fetch_add(1, std::memory_order_relaxed);
      }
    });
  }
  const auto start = Clock::now();
  std::uint64_t last = 0;
  for (int t = 1; t <= seconds; ++t) {
    std::this_thread::sleep_until(start + std::chrono::seconds(t));
    const std::uint64_t now = done.load();
    std::fprintf(stderr, "zmq_ceiling: %ds %llu ops/s\n", t,
                 static_cast<unsigned long long>(now - last));
    last = now;
  }
  const double elapsed = std::chrono::duration<double>(Clock::now() - start).count();
  const std::uint64_t total = done.load();
  stop_clients = true;
  for (std::thread& t : threads) t.join();
  stop = true;
  server.join();
  std::printf("zmq_ceiling: %d clients, %zu-byte requests, %d inproc hop(s): %.0f round trips/s\n",
              clients, value_size, hops, static_cast<double>(total) / elapsed);
  return 0;
}
