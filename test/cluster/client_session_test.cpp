// The C++ client's dedup session (docs/protocol.md, sections 5 and 8): a
// session opens with the client's seq 1. An opening request that a node
// refused ran nowhere, so the client starts a fresh session for its next
// call; one that got no answer may have run, so its next call sends the very
// same bytes (client id, seq 1, ack) again before anything else.
//
// A SwitchableFront stands between the client and a node: it forwards,
// loses requests, loses replies, or refuses every request itself.
#include <gtest/gtest.h>

#include <atomic>
#include <chrono>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "client/client.hpp"
#include "cluster/cluster.hpp"
#include "messages/codec.hpp"

namespace kvpaxos::testing {
namespace {

using std::chrono::milliseconds;

constexpr milliseconds kMustSucceed{30000};
// Short, for the calls that must end without an answer.
constexpr milliseconds kNoAnswer{2000};

enum class FrontMode { forward, lose_requests, lose_replies, refuse };

// A ROUTER on 127.0.0.1 that relays one client's frames to a node over a
// DEALER of its own, and the node's replies back, as `mode` says. Every
// request frame that reaches it is recorded, relayed or not.
class SwitchableFront {
 public:
  SwitchableFront(zmq::context_t& ctx, const std::string& node_endpoint)
      : front_(ctx, zmq::socket_type::router), back_(ctx, zmq::socket_type::dealer) {
    front_.set(zmq::sockopt::linger, 0);
    back_.set(zmq::sockopt::linger, 0);
    front_.bind("tcp://127.0.0.1:*");
    endpoint_ = front_.get(zmq::sockopt::last_endpoint);
    back_.connect(node_endpoint);
    relay_ = std::thread([this] { run(); });
  }
  ~SwitchableFront() {
    stop_ = true;
    relay_.join();
  }
  SwitchableFront(const SwitchableFront&) = delete;
  SwitchableFront& operator=(const SwitchableFront&) = delete;

  const std::string& endpoint() const { return endpoint_; }
  void set_mode(FrontMode mode) { mode_ = mode; }
  // The ClientRequests that reached the front, in order, as decoded.
  std::vector<ClientRequest> requests() const {
    std::lock_guard lock(mu_);
    return requests_;
  }
  std::vector<std::string> request_frames() const {
    std::lock_guard lock(mu_);
    return frames_;
  }

 private:
  void run() {
    while (!stop_) {
      zmq::pollitem_t items[] = {{front_.handle(), 0, ZMQ_POLLIN, 0},
                                 {back_.handle(), 0, ZMQ_POLLIN, 0}};
      zmq::poll(items, 2, milliseconds(10));
      if ((items[0].revents & ZMQ_POLLIN) != 0) from_client();
      if ((items[1].revents & ZMQ_POLLIN) != 0) from_node();
    }
  }
  void from_client() {
    zmq::message_t route;
    zmq::message_t body;
    if (!front_.recv(route) || !route.more() || !front_.recv(body)) return;
    record(body.to_string());
    route_ = route.to_string();
    switch (mode_.load()) {
      case FrontMode::forward:
      case FrontMode::lose_replies:
        back_.send(zmq::buffer(body.to_string_view()), zmq::send_flags::dontwait);
        return;
      case FrontMode::lose_requests:
        return;
      case FrontMode::refuse:
        to_client(encode(ErrorReply{ReplyCode::bad_request, "refused by the test's front"}));
        return;
    }
  }
  void from_node() {
    zmq::message_t body;
    if (!back_.recv(body)) return;
    if (mode_ == FrontMode::forward) to_client(body.to_string());
  }
  void to_client(const std::string& body) {
    front_.send(zmq::buffer(route_), zmq::send_flags::sndmore | zmq::send_flags::dontwait);
    front_.send(zmq::buffer(body), zmq::send_flags::dontwait);
  }
  void record(std::string frame) {
    Result<Body> decoded = decode(frame);
    std::lock_guard lock(mu_);
    if (decoded.ok()) {
      if (auto* r = std::get_if<ClientRequest>(&decoded.value())) requests_.push_back(*r);
    }
    frames_.push_back(std::move(frame));
  }

  zmq::socket_t front_;
  zmq::socket_t back_;
  std::string endpoint_;
  std::string route_;  // the client connection that sent the latest frame
  std::atomic<FrontMode> mode_{FrontMode::forward};
  std::atomic<bool> stop_{false};
  mutable std::mutex mu_;
  std::vector<ClientRequest> requests_;
  std::vector<std::string> frames_;
  std::thread relay_;
};

ClientOptions through(const SwitchableFront& front, milliseconds deadline) {
  return ClientOptions{.endpoints = {front.endpoint()}, .deadline = deadline};
}

std::string value_at(Cluster& c, const std::string& key) {
  Client reader(c.context(), ClientOptions{.endpoints = {c.client_endpoints()[0]},
                                           .deadline = kMustSucceed});
  CallResult r = reader.get(key);
  EXPECT_TRUE(r.ok()) << r.error;
  return r.value;
}

// The requests from `from` on, each retried copy (the same bytes again) once.
std::vector<ClientRequest> distinct_from(const SwitchableFront& front, std::size_t from) {
  const std::vector<std::string> frames = front.request_frames();
  const std::vector<ClientRequest> requests = front.requests();
  std::vector<ClientRequest> out;
  for (std::size_t i = from; i < frames.size() && i < requests.size(); ++i) {
    if (i == from || frames[i] != frames[i - 1]) out.push_back(requests[i]);
  }
  return out;
}

// The dedup sessions node `node` holds, as its status reports them.
std::uint64_t sessions_at(Cluster& c, std::size_t node) {
  Client status(c.context(), ClientOptions{});
  Result<StatusReply> r = status.status(c.client_endpoints()[node], kMustSucceed);
  EXPECT_TRUE(r.ok()) << r.error();
  return r.ok() ? r->sessions : 0;
}

void warm_up(Cluster& c) { EXPECT_EQ(value_at(c, "warm-up"), ""); }

// A warmed-up cluster (its leader chosen, so that a call through the front
// meets no election) and a front before its node 0.
class ClientSession : public ::testing::Test {
 protected:
  void SetUp() override { warm_up(c); }
  Cluster c{ClusterOptions{.nodes = 3, .kv_service = true}};
  SwitchableFront front{c.context(), c.client_endpoints()[0]};
};

TEST_F(ClientSession, RefusedOpeningRequestStartsAFreshSessionAndThePutRuns) {
  Client client(c.context(), through(front, kMustSucceed));
  const ClientId first_id = client.id();

  front.set_mode(FrontMode::refuse);
  const CallResult refused = client.put("k", "never");
  EXPECT_EQ(refused.outcome, Outcome::rejected) << refused.error;
  const std::size_t refused_frames = front.request_frames().size();

  front.set_mode(FrontMode::forward);
  const CallResult put = client.put("k", "v");
  ASSERT_TRUE(put.ok()) << put.error;
  EXPECT_NE(client.id(), first_id) << "the refused seq 1 opened no session: a new id";
  EXPECT_EQ(value_at(c, "k"), "v");

  // The new session opened at seq 1 like any other: its get, then the put.
  const std::vector<ClientRequest> sent = distinct_from(front, refused_frames);
  ASSERT_EQ(sent.size(), 2u);
  EXPECT_EQ(sent[0].client_id, client.id());
  EXPECT_EQ(sent[0].seq, 1u);
  EXPECT_EQ(sent[0].op, OpKind::get);
  EXPECT_EQ(sent[1].client_id, client.id());
  EXPECT_EQ(sent[1].seq, 2u);
  EXPECT_EQ(sent[1].op, OpKind::put);
}

TEST_F(ClientSession, RefusedFirstGetStartsAFreshSessionForTheNextGet) {
  Client client(c.context(), through(front, kMustSucceed));
  const ClientId first_id = client.id();

  front.set_mode(FrontMode::refuse);
  EXPECT_EQ(client.get("k").outcome, Outcome::rejected);
  const std::size_t refused_frames = front.request_frames().size();

  front.set_mode(FrontMode::forward);
  const CallResult get = client.get("k");
  ASSERT_TRUE(get.ok()) << get.error;
  EXPECT_NE(client.id(), first_id);
  const std::vector<ClientRequest> sent = distinct_from(front, refused_frames);
  ASSERT_EQ(sent.size(), 1u);
  EXPECT_EQ(sent[0].seq, 1u);
  EXPECT_EQ(sent[0].client_id, client.id());
}

TEST_F(ClientSession, UnansweredOpeningIsSentAgainAsTheSameBytesBeforeTheNextOp) {
  Client client(c.context(), through(front, kNoAnswer));
  const ClientId id = client.id();

  // No copy of the opening get reaches the node: before the fix, the put
  // went out as seq 2 of a session that never opened (session_expired).
  front.set_mode(FrontMode::lose_requests);
  const CallResult lost = client.put("k", "never");
  EXPECT_EQ(lost.outcome, Outcome::rejected) << "the put itself was not sent: " << lost.error;
  const std::vector<std::string> unanswered = front.request_frames();
  ASSERT_FALSE(unanswered.empty());

  front.set_mode(FrontMode::forward);
  const CallResult put = client.put("k", "v");
  ASSERT_TRUE(put.ok()) << put.error;
  EXPECT_EQ(client.id(), id) << "an unanswered seq 1 may have run: the same session goes on";
  EXPECT_EQ(value_at(c, "k"), "v");

  const std::vector<std::string> frames = front.request_frames();
  ASSERT_GT(frames.size(), unanswered.size());
  EXPECT_EQ(frames[unanswered.size()], unanswered.front()) << "the opening again, byte for byte";
  const std::vector<ClientRequest> sent = distinct_from(front, unanswered.size());
  ASSERT_EQ(sent.size(), 2u);
  EXPECT_EQ(sent[1].client_id, id);
  EXPECT_EQ(sent[1].seq, 2u);
  EXPECT_EQ(sent[1].ack, 1u);
  EXPECT_EQ(sent[1].op, OpKind::put);
}

TEST_F(ClientSession, OpeningThatRanButWasNotAnsweredRunsOnceInOneSession) {
  const std::uint64_t sessions_before = sessions_at(c, 0);
  Client client(c.context(), through(front, kNoAnswer));
  const ClientId id = client.id();

  // The node executes the user's first op (a get: it is seq 1 itself) and
  // sees every copy of it; the replies are lost.
  front.set_mode(FrontMode::lose_replies);
  EXPECT_EQ(client.get("k").outcome, Outcome::unknown);
  const std::size_t copies = front.request_frames().size();

  front.set_mode(FrontMode::forward);
  const CallResult put = client.put("k", "v");
  ASSERT_TRUE(put.ok()) << put.error;
  const CallResult appended = client.append("k", "w");
  ASSERT_TRUE(appended.ok()) << appended.error;
  EXPECT_EQ(value_at(c, "k"), "vw");
  EXPECT_EQ(client.id(), id);

  const std::vector<ClientRequest> sent = distinct_from(front, copies);
  ASSERT_EQ(sent.size(), 3u);
  for (const ClientRequest& r : front.requests()) EXPECT_EQ(r.client_id, id);
  EXPECT_EQ(sent[0].seq, 1u) << "the get's seq 1 once more, answered from its kept reply";
  EXPECT_EQ(sent[0].key, "k");
  EXPECT_EQ(sent[1].seq, 2u);
  EXPECT_EQ(sent[2].seq, 3u);

  // Two sessions more on the node: this client's one, and value_at's reader's.
  EXPECT_EQ(sessions_at(c, 0), sessions_before + 2);
}

}  // namespace
}  // namespace kvpaxos::testing
