// Real kvpaxosd processes: garbage, truncated msgpack, unknown types, wrong
// versions and oversized frames sent to a client port get an error reply or
// are dropped, and the node keeps serving.
#include <gtest/gtest.h>

#include "client/client.hpp"
#include "messages/codec.hpp"
#include "process/process_cluster.hpp"

namespace kvpaxos {
namespace {

using std::chrono::milliseconds;

std::optional<Body> exchange(zmq::context_t& ctx, const std::string& endpoint,
                             const std::optional<ClientCurve>& curve, const std::string& frame,
                             milliseconds timeout) {
  zmq::socket_t s(ctx, zmq::socket_type::dealer);
  s.set(zmq::sockopt::linger, 0);
  test::use_client_key(s, curve);
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
  test::ProcessCluster cluster(3, {"--log-level", "error"});
  ASSERT_TRUE(cluster.started());
  zmq::context_t ctx(1);
  Client client(ctx, ClientOptions{.endpoints = cluster.endpoints(), .curve = cluster.curve(), .deadline = milliseconds(30000)});
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
    std::optional<Body> reply = exchange(ctx, cluster.endpoints()[0], cluster.curve(), frame, milliseconds(10000));
    ASSERT_TRUE(reply.has_value()) << what << ": no reply";
    ASSERT_TRUE(std::holds_alternative<ErrorReply>(*reply)) << what;
  }
  // Over ZMQ_MAXMSGSIZE: the node drops the connection, no reply.
  EXPECT_FALSE(exchange(ctx, cluster.endpoints()[0], cluster.curve(),
                        std::string(kMaxClientFrameBytes + 1, 'x'), milliseconds(1000)));

  EXPECT_TRUE(cluster.alive(0));
  EXPECT_EQ(client.get("k").value, "before");
  ASSERT_TRUE(client.put("k", "after").ok());
  Client via_first(ctx, ClientOptions{.endpoints = {cluster.endpoints()[0]}, .curve = cluster.curve(), .deadline = milliseconds(30000)});
  EXPECT_EQ(via_first.get("k").value, "after");
}

}  // namespace
}  // namespace kvpaxos
