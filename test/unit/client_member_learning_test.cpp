// The client library learns the member list (client/endpoint_set.hpp,
// ClientOptions::learn_members_every): first the set's rules on their own,
// then a Client against fake nodes (ROUTER sockets on inproc, each on its
// own thread, answering as the test says) that moves on to a member it was
// never given once the node it knew goes silent.
#include <atomic>
#include <functional>
#include <optional>
#include <thread>

#include <gtest/gtest.h>

#include "client/client.hpp"
#include "client/endpoint_set.hpp"
#include "client/watch.hpp"
#include "messages/codec.hpp"

namespace kvpaxos {
namespace {

MemberEntry member(NodeId id, const std::string& client, MemberRole role = MemberRole::voter) {
  return MemberEntry{.id = id, .name = "n" + std::to_string(id + 1),
                     .peer_endpoint = "127.0.0.1:710" + std::to_string(id + 1),
                     .client_endpoint = client, .role = role};
}

TEST(ClientEndpointSet, WithNoConfigurationReadTheEndpointsAreExactlyTheOnesGiven) {
  const EndpointSet set({"127.0.0.1:7201", "tcp://127.0.0.1:7202", "tcp://127.0.0.1:7201"});
  EXPECT_EQ(set.endpoints(),
            (std::vector<std::string>{"127.0.0.1:7201", "127.0.0.1:7202"}));
}

// The members of the first configuration have no client address in it: the
// endpoints given for them stay whatever the configuration says.
TEST(ClientEndpointSet, AddsNewVotersAndKeepsGivenEndpointsNoConfigurationNamed) {
  EndpointSet set({"127.0.0.1:7201", "127.0.0.1:7202"});
  const Config c{.epoch = 3, .members = {member(0, ""), member(1, ""), member(4, "10.0.0.5:7205")}};
  const EndpointSet::Change change = set.learn(c);
  EXPECT_EQ(change.added, std::vector<std::string>{"10.0.0.5:7205"});
  EXPECT_TRUE(change.dropped.empty());
  EXPECT_EQ(set.endpoints(), (std::vector<std::string>{"127.0.0.1:7201", "127.0.0.1:7202",
                                                       "10.0.0.5:7205"}));
}

TEST(ClientEndpointSet, DropsTheEndpointOfAMemberThatLeftOrMoved) {
  EndpointSet set({"127.0.0.1:7201"});
  set.learn(Config{.epoch = 1, .members = {member(0, ""), member(3, "10.0.0.4:7204"),
                                           member(4, "10.0.0.5:7205")}});
  const EndpointSet::Change change =
      set.learn(Config{.epoch = 3, .members = {member(0, ""), member(4, "10.0.0.6:7205")}});
  EXPECT_EQ(change.dropped, (std::vector<std::string>{"10.0.0.4:7204", "10.0.0.5:7205"}));
  EXPECT_EQ(set.endpoints(),
            (std::vector<std::string>{"127.0.0.1:7201", "10.0.0.6:7205"}));
}

// A learner with a wrong address, or one that never starts, would cost the
// client a timeout each time it came round.
TEST(ClientEndpointSet, ALearnerIsAddedOnlyOnceItIsPromoted) {
  EndpointSet set({"127.0.0.1:7201"});
  EXPECT_TRUE(set.learn(Config{.epoch = 1, .members = {member(0, ""),
                                                       member(3, "10.0.0.4:7204", MemberRole::learner)}})
                  .empty());
  EXPECT_EQ(set.learn(Config{.epoch = 2, .members = {member(0, ""), member(3, "10.0.0.4:7204")}}).added,
            std::vector<std::string>{"10.0.0.4:7204"});
}

TEST(ClientEndpointSet, AnOlderConfigurationChangesNothingAndTheLastEndpointStays) {
  EndpointSet set({"10.0.0.4:7204"});
  set.learn(Config{.epoch = 5, .members = {member(3, "10.0.0.4:7204")}});
  EXPECT_TRUE(set.learn(Config{.epoch = 4, .members = {member(1, "10.0.0.2:7202")}}).empty());
  EXPECT_TRUE(set.learn(Config{.epoch = 6, .members = {member(3, "")}}).empty())
      << "its member no longer advertises it, but nothing else is known";
  EXPECT_EQ(set.endpoints(), std::vector<std::string>{"10.0.0.4:7204"});
}

// A node that answers each message with what `answer` returns, or stays
// silent when it returns nothing.
class FakeNode {
 public:
  using Answer = std::function<std::optional<Body>(const Body&)>;
  FakeNode(zmq::context_t& ctx, const std::string& endpoint, Answer answer)
      : socket_(ctx, zmq::socket_type::router), answer_(std::move(answer)) {
    socket_.set(zmq::sockopt::linger, 0);
    socket_.bind(endpoint);
    thread_ = std::thread([this] { serve(); });
  }
  ~FakeNode() {
    stop_ = true;
    thread_.join();
  }
  FakeNode(const FakeNode&) = delete;
  FakeNode& operator=(const FakeNode&) = delete;

  std::size_t answered() const { return answered_; }

 private:
  void serve() {
    while (!stop_) {
      zmq::pollitem_t item{socket_.handle(), 0, ZMQ_POLLIN, 0};
      zmq::poll(&item, 1, std::chrono::milliseconds(10));
      if ((item.revents & ZMQ_POLLIN) == 0) continue;
      zmq::message_t identity;
      zmq::message_t frame;
      if (!socket_.recv(identity) || !identity.more() || !socket_.recv(frame)) continue;
      Result<Body> body = decode(frame.to_string_view(), kMaxClientFrameBytes);
      if (!body.ok()) continue;
      std::optional<Body> reply = answer_(body.value());
      if (!reply) continue;
      ++answered_;
      socket_.send(identity, zmq::send_flags::sndmore);
      socket_.send(zmq::buffer(encode(*reply)), zmq::send_flags::none);
    }
  }

  zmq::socket_t socket_;
  Answer answer_;
  std::atomic<bool> stop_{false};
  std::atomic<std::size_t> answered_{0};
  std::thread thread_;
};

// n1 (given, bootstrap: no client address) and n2 at inproc://learn-n2,
// which the client is never given.
Config two_voters() {
  return Config{.epoch = 2, .members = {member(0, ""), member(1, "inproc://learn-n2")}};
}

// Answers every ClientRequest with `config` as the member list (and as
// every other op's result: the client reads what it asked for), and creates
// every watch with a put of "k" at revision `revision`; unless `silent`.
FakeNode::Answer answers_with(const Config& config, std::function<bool(const ClientRequest&)> silent,
                              std::uint64_t revision = 1) {
  return [config, silent, revision](const Body& body) -> std::optional<Body> {
    if (const auto* w = std::get_if<WatchRequest>(&body)) {
      if (silent(ClientRequest{}) || w->ack || w->cancel) return std::nullopt;
      return WatchResponse{.watch_id = w->watch_id, .created = true, .revision = revision,
                           .events = {WatchEvent{.kv = {"k", "v", 1, revision, 1}}}};
    }
    const auto* r = std::get_if<ClientRequest>(&body);
    if (r == nullptr || silent(*r)) return std::nullopt;
    OpResult result;
    result.member.epoch = config.epoch;
    result.member.config = config;
    return ClientReply::ok(r->client_id, r->seq, result);
  };
}

bool never(const ClientRequest&) { return false; }

ClientOptions options(std::vector<std::string> endpoints, std::chrono::milliseconds learn_every) {
  return ClientOptions{.endpoints = std::move(endpoints),
                       .deadline = std::chrono::milliseconds(1500),
                       .attempt_timeout = std::chrono::milliseconds(50),
                       .learn_members_every = learn_every};
}

// n1, the node the client is given, goes silent when the test says (or
// drops a number of puts); n2 always answers.
class ClientLearnsMembers : public ::testing::Test {
 protected:
  zmq::context_t ctx_{1};
  std::atomic<bool> n1_silent_{false};
  std::atomic<int> n1_puts_to_drop_{0};
  FakeNode n1_{ctx_, "inproc://learn-n1", answers_with(two_voters(), [this](const ClientRequest& r) {
                 return n1_silent_ || (r.op == OpKind::put && n1_puts_to_drop_.fetch_sub(1) > 0);
               })};
  FakeNode n2_{ctx_, "inproc://learn-n2", answers_with(two_voters(), never, 2)};
};

TEST_F(ClientLearnsMembers, FailsOverToAMemberItWasNeverGivenOnceTheOneItKnewGoesSilent) {
  Client client(ctx_, options({"inproc://learn-n1"}, std::chrono::milliseconds(1)));
  ASSERT_TRUE(client.put("k", "v").ok());  // opens the session: nothing learned yet
  std::this_thread::sleep_for(std::chrono::milliseconds(5));
  ASSERT_TRUE(client.put("k", "v").ok());  // learns n2 first (1 ms has passed), then puts
  EXPECT_EQ(client.endpoints(),
            (std::vector<std::string>{"inproc://learn-n1", "inproc://learn-n2"}));
  n1_silent_ = true;
  const CallResult r = client.put("k", "v2");
  EXPECT_TRUE(r.ok()) << r.error;
  EXPECT_GE(n2_.answered(), 1u);
}

// learn_members_every an hour: the fail-over is what makes it ask.
TEST_F(ClientLearnsMembers, ARequestThatFailedOverMakesTheNextCallReadTheMemberList) {
  n1_puts_to_drop_ = 1;
  Client client(ctx_, options({"inproc://learn-n1", "inproc://learn-nobody"}, std::chrono::hours(1)));
  ASSERT_TRUE(client.put("k", "v").ok());  // n1 drops it once: to nobody and back to n1
  EXPECT_EQ(client.endpoints().size(), 2u);
  ASSERT_TRUE(client.get("k").ok());  // first reads the member list
  EXPECT_EQ(client.endpoints().back(), "inproc://learn-n2");
  n1_silent_ = true;
  const CallResult r = client.put("k", "v2");
  EXPECT_TRUE(r.ok()) << r.error;
  EXPECT_GE(n2_.answered(), 1u);
}

TEST_F(ClientLearnsMembers, IsOffByDefaultSoAClientStaysOnTheEndpointsItWasGiven) {
  ClientOptions pinned = options({"inproc://learn-n1"}, std::chrono::milliseconds(0));
  pinned.deadline = std::chrono::milliseconds(300);
  Client client(ctx_, pinned);
  ASSERT_TRUE(client.put("k", "v").ok());
  ASSERT_TRUE(client.put("k", "v").ok());
  EXPECT_EQ(client.endpoints(), std::vector<std::string>{"inproc://learn-n1"});
  n1_silent_ = true;
  EXPECT_EQ(client.put("k", "v2").outcome, Outcome::unknown);
  EXPECT_EQ(n2_.answered(), 0u);
}

// n1 holds the watch, then goes silent: the watch resumes at n2, which it
// learned of while n1 still answered, from the revision after n1's.
TEST_F(ClientLearnsMembers, AWatchResumesAtAMemberItWasNeverGiven) {
  ClientOptions o = options({"inproc://learn-n1"}, std::chrono::milliseconds(1));
  WatchStream watch(ctx_, o, WatchOptions{.key = "k", .silence_timeout = std::chrono::milliseconds(200)});
  std::this_thread::sleep_for(std::chrono::milliseconds(5));
  Result<WatchBatch> first = watch.next(std::chrono::milliseconds(500));
  ASSERT_TRUE(first.ok()) << first.error();
  ASSERT_EQ(first->events.size(), 1u);
  EXPECT_EQ(watch.endpoint(), "inproc://learn-n1");
  n1_silent_ = true;
  Result<WatchBatch> resumed = watch.next(std::chrono::milliseconds(3000));
  ASSERT_TRUE(resumed.ok()) << resumed.error();
  ASSERT_EQ(resumed->events.size(), 1u);
  EXPECT_EQ(resumed->events[0].kv.mod_revision, 2u);
  EXPECT_EQ(watch.endpoint(), "inproc://learn-n2");
}

}  // namespace
}  // namespace kvpaxos
