// Real kvpaxosd processes: garbage, truncated msgpack, unknown types, wrong
// versions and oversized frames sent to a client port get an error reply or
// are dropped, and the node keeps serving.
#include <gtest/gtest.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <random>
#include <thread>

#include "client/client.hpp"
#include "messages/codec.hpp"

namespace kvpaxos {
namespace {

using std::chrono::milliseconds;

class ProcessCluster {
 public:
  ProcessCluster() {
    std::mt19937 rng(std::random_device{}());
    const int base = 30000 + static_cast<int>(rng() % 300) * 100;
    std::string cluster;
    for (int i = 1; i <= 3; ++i) {
      cluster += (cluster.empty() ? "" : ",") + std::string("n") + std::to_string(i) +
                 "=127.0.0.1:" + std::to_string(base + i);
      endpoints_.push_back("127.0.0.1:" + std::to_string(base + 100 + i));
    }
    for (int i = 1; i <= 3; ++i) {
      const pid_t pid = fork();
      if (pid == 0) {
        const std::string name = "n" + std::to_string(i);
        execl(KVPAXOSD_PATH, KVPAXOSD_PATH, "--name", name.c_str(), "--cluster", cluster.c_str(),
              "--client-addr", endpoints_[static_cast<std::size_t>(i - 1)].c_str(), "--log-level",
              "error", static_cast<char*>(nullptr));
        _exit(127);
      }
      pids_.push_back(pid);
    }
  }
  ~ProcessCluster() {
    for (pid_t pid : pids_) kill(pid, SIGKILL);
    for (pid_t pid : pids_) waitpid(pid, nullptr, 0);
  }
  const std::vector<std::string>& endpoints() const { return endpoints_; }
  bool alive(std::size_t i) const { return waitpid(pids_[i], nullptr, WNOHANG) == 0; }

 private:
  std::vector<pid_t> pids_;
  std::vector<std::string> endpoints_;
};

std::optional<Body> exchange(zmq::context_t& ctx, const std::string& endpoint,
                             const std::string& frame, milliseconds timeout) {
  zmq::socket_t s(ctx, zmq::socket_type::dealer);
  s.set(zmq::sockopt::linger, 0);
  s.connect(client_endpoint(endpoint));
  s.send(zmq::buffer(frame), zmq::send_flags::none);
  zmq::pollitem_t items[] = {{s.handle(), 0, ZMQ_POLLIN, 0}};
  zmq::poll(items, 1, timeout);
  if ((items[0].revents & ZMQ_POLLIN) == 0) return std::nullopt;
  zmq::message_t reply;
  if (!s.recv(reply, zmq::recv_flags::none)) return std::nullopt;
  Result<Body> body = decode(reply.to_string_view());
  if (!body.ok()) return std::nullopt;
  return std::move(body.value());
}

TEST(ProcessBadInput, NodeAnswersGarbageWithErrorsAndKeepsServing) {
  ProcessCluster cluster;
  zmq::context_t ctx(1);
  Client client(ctx, ClientOptions{.endpoints = cluster.endpoints(), .deadline = milliseconds(30000)});
  ASSERT_TRUE(client.put("k", "before").ok()) << "cluster did not come up";

  msgpack::sbuffer unknown;
  msgpack::pack(unknown, std::make_tuple(std::uint8_t{250}, kProtocolVersion, std::make_tuple()));
  msgpack::sbuffer version;
  msgpack::pack(version, std::make_tuple(std::uint8_t{100}, std::uint8_t{42}, std::make_tuple()));
  const std::string put = encode(ClientRequest{5, 1, 0, OpKind::put, "k", "garbage"});
  const std::vector<std::pair<std::string, std::string>> bad = {
      {"garbage", "\xc1\xc1 definitely not msgpack"},
      {"truncated", put.substr(0, put.size() - 3)},
      {"unknown type", std::string(unknown.data(), unknown.size())},
      {"wrong version", std::string(version.data(), version.size())},
      {"peer message", encode(Accept{0, Ballot{1000, 0}, "evil"})},
  };
  for (const auto& [what, frame] : bad) {
    std::optional<Body> reply = exchange(ctx, cluster.endpoints()[0], frame, milliseconds(10000));
    ASSERT_TRUE(reply.has_value()) << what << ": no reply";
    ASSERT_TRUE(std::holds_alternative<ErrorReply>(*reply)) << what;
  }
  // Over ZMQ_MAXMSGSIZE: the node drops the connection, no reply.
  EXPECT_FALSE(exchange(ctx, cluster.endpoints()[0], std::string(kMaxClientFrameBytes + 1, 'x'),
                        milliseconds(1000)));

  EXPECT_TRUE(cluster.alive(0));
  EXPECT_EQ(client.get("k").value, "before");
  ASSERT_TRUE(client.put("k", "after").ok());
  Client via_first(ctx, ClientOptions{.endpoints = {cluster.endpoints()[0]}, .deadline = milliseconds(30000)});
  EXPECT_EQ(via_first.get("k").value, "after");
}

}  // namespace
}  // namespace kvpaxos
