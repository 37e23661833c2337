// Real kvpaxosd processes with CURVE keys (ProcessCluster's default): clients
// and peers without the right key are refused, an authenticated peer cannot
// speak for another node, and the outsider attack that once stopped a whole
// cluster (issue 11) changes nothing.
#include <arpa/inet.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <filesystem>
#include <thread>

#include <zmq_addon.hpp>

#include "client/client.hpp"
#include "messages/codec.hpp"
#include "messages/key_file.hpp"
#include "messages/kv_op.hpp"
#include "process/process_cluster.hpp"

namespace kvpaxos {
namespace {

using std::chrono::milliseconds;
using std::chrono::seconds;

constexpr NodeId kN1 = 0, kN2 = 1, kN3 = 2;
constexpr InstanceId kMillion = 1'000'000;

struct RawFrame {
  FrameHeader header;
  std::string body;
};

// What the outsider sent (issue 11): Decided messages "from n2", each a Put
// of k, and heartbeats in which n2 and n3 claim to be done with, and to
// have forgotten, the first million instances; then one frame of each other
// row of the probe table that went through the peer port.
std::vector<RawFrame> outsider_frames(std::vector<NodeId> claimed_senders) {
  const NodeId from = claimed_senders.front();
  auto to = [from](Actor actor, Actor as) {
    return FrameHeader{{kN1, actor}, {from, as}, 0, 0, 0};
  };
  const std::string evil_put = encode_batch(from, {encode_op({false, 777, 1, 0, OpKind::put, "k", "evil"})});
  std::vector<RawFrame> frames;
  for (InstanceId i = 0; i < 200; ++i) {
    const KvOp put{false, 777, i + 1, 0, OpKind::put, "k", "evil"};
    frames.push_back({to(Actor::learner, Actor::proposer),
                      encode(Decided{i, encode_batch(from, {encode_op(put)})})});
  }
  for (int round = 0; round < 100; ++round) {
    for (NodeId sender : claimed_senders) {
      frames.push_back({{{kN1, Actor::peer_link}, {sender, Actor::peer_link}, kMillion, kMillion,
                         kMillion},
                        encode(Heartbeat{})});
    }
  }
  const Ballot highest{~std::uint64_t{0}, ~NodeId{0}};
  frames.push_back({to(Actor::acceptor, Actor::proposer), encode(PrepareFrom{0, highest, {}})});
  frames.push_back({to(Actor::learner, Actor::proposer), encode(Decided{1'000'000'000, evil_put})});
  frames.push_back({to(Actor::acceptor, Actor::proposer), encode(Accept{1, Ballot{1u << 30, from}, evil_put})});
  frames.push_back({to(Actor::applier, Actor::applier),
                    encode(SnapshotChunk{kMillion, 64, 0, 0, std::string(64, 'x')})});
  frames.push_back({to(Actor::applier, Actor::applier),
                    encode(ForwardOps{{encode_op({false, 778, 1, 0, OpKind::put, "k", "evil"}) + "!"}})});
  std::vector<InstanceId> wanted(2000);
  for (InstanceId i = 0; i < wanted.size(); ++i) wanted[i] = i;
  frames.push_back({to(Actor::learner, Actor::learner), encode(CatchUpRequest{wanted})});
  frames.push_back({to(Actor::learner, Actor::learner), std::string(1 << 20, '\x91')});  // nested arrays
  return frames;
}

// A DEALER to a peer port, presenting `own` (CURVE) or nothing.
void send_to_peer_port(zmq::context_t& ctx, const std::string& endpoint,
                       const std::optional<CurveKey>& own, const std::string& server_public,
                       const std::vector<RawFrame>& frames) {
  zmq::socket_t s(ctx, zmq::socket_type::dealer);
  s.set(zmq::sockopt::linger, 0);
  if (own) make_curve_client(s, *own, server_public);
  s.connect("tcp://" + endpoint);
  for (const RawFrame& f : frames) {
    const std::string header = encode_header(f.header);
    // Frame by frame, not zmq::send_multipart: when the node refuses the
    // handshake, the pipe can go mid-message, the second frame fails with
    // EAGAIN (libzmq rolls the first back) and send_multipart asserts.
    if (!s.send(zmq::buffer(header), zmq::send_flags::sndmore | zmq::send_flags::dontwait)) continue;
    (void)s.send(zmq::buffer(f.body), zmq::send_flags::dontwait);
  }
  std::this_thread::sleep_for(milliseconds(500));  // let them go out before the socket closes
}

std::string read_key(const std::string& path) {
  Result<CurveKey> key = read_public_key_file(path);
  EXPECT_TRUE(key.ok()) << key.error();
  return key.ok() ? key->public_key : std::string();
}

CurveKey read_pair(const std::string& path) {
  Result<CurveKey> key = read_secret_key_file(path);
  EXPECT_TRUE(key.ok()) << key.error();
  return key.ok() ? key.value() : CurveKey{};
}

// Every node answers, reads `expected` for k on its own, and none has
// forgotten or been told of a million instances.
void expect_cluster_unchanged(zmq::context_t& ctx, test::ProcessCluster& cluster,
                              const std::string& expected) {
  for (int i = 0; i < cluster.size(); ++i) {
    EXPECT_TRUE(cluster.alive(i)) << cluster.name(i) << " died\n" << cluster.logs();
    Client via(ctx, ClientOptions{.endpoints = {cluster.endpoints()[static_cast<std::size_t>(i)]},
                                  .curve = cluster.curve(),
                                  .deadline = seconds(20)});
    const CallResult got = via.get("k");
    EXPECT_TRUE(got.ok()) << cluster.name(i) << ": " << got.error << "\n" << cluster.logs();
    EXPECT_EQ(got.value, expected) << "via " << cluster.name(i);
    Result<StatusReply> s = via.status(cluster.endpoints()[static_cast<std::size_t>(i)], seconds(5));
    ASSERT_TRUE(s.ok()) << s.error();
    EXPECT_LT(s->forget_below, kMillion) << cluster.name(i) << " forgot what it never decided";
    EXPECT_LT(s->decided_below, kMillion) << cluster.name(i);
  }
}

// Polls the nodes' logs for `text` for up to 10 s.
bool logs_mention(const test::ProcessCluster& cluster, const std::string& text) {
  for (int i = 0; i < 100; ++i) {
    if (cluster.logs().find(text) != std::string::npos) return true;
    std::this_thread::sleep_for(milliseconds(100));
  }
  return false;
}

class ProcessSecurity : public ::testing::Test {
 protected:
  void SetUp() override {
    ASSERT_TRUE(cluster_.started());
    ASSERT_TRUE(cluster_.curve().has_value());
    Client client(ctx_, ClientOptions{.endpoints = cluster_.endpoints(),
                                      .curve = cluster_.curve(),
                                      .deadline = seconds(30)});
    ASSERT_TRUE(client.put("k", "good").ok()) << cluster_.logs();
  }
  std::string peer_key_file(int i, const char* ext) const {
    return cluster_.keys_dir() + "/peer/" + cluster_.name(i) + ext;
  }

  zmq::context_t ctx_{1};
  test::ProcessCluster cluster_{3, {"--log-level", "warn"}};
};

TEST_F(ProcessSecurity, KeylessClientIsRefusedWithAClearError) {
  Client keyless(ctx_, ClientOptions{.endpoints = cluster_.endpoints(), .deadline = seconds(10)});
  const auto started = std::chrono::steady_clock::now();
  const CallResult r = keyless.put("k", "keyless");
  EXPECT_EQ(r.outcome, Outcome::rejected) << r.error;
  EXPECT_NE(r.error.find("requires CURVE keys"), std::string::npos) << r.error;
  EXPECT_LT(std::chrono::steady_clock::now() - started, seconds(5)) << "a refusal, not a timeout";
  expect_cluster_unchanged(ctx_, cluster_, "good");
}

TEST_F(ProcessSecurity, ClientWithUnknownKeyIsRefused) {
  const ClientCurve stranger{cluster_.curve()->server_keys, generate_curve_key()};
  Client client(ctx_, ClientOptions{.endpoints = cluster_.endpoints(), .curve = stranger,
                                    .deadline = seconds(10)});
  const CallResult r = client.put("k", "stranger");
  EXPECT_EQ(r.outcome, Outcome::rejected) << r.error;
  EXPECT_NE(r.error.find("refused our key"), std::string::npos) << r.error;
  EXPECT_TRUE(logs_mention(cluster_, "unknown key " + stranger.own.public_key));
  expect_cluster_unchanged(ctx_, cluster_, "good");
}

TEST_F(ProcessSecurity, NodeKeyIsRefusedOnTheClientPort) {
  const ClientCurve as_node{cluster_.curve()->server_keys, read_pair(peer_key_file(1, ".key_secret"))};
  Client client(ctx_, ClientOptions{.endpoints = cluster_.endpoints(), .curve = as_node,
                                    .deadline = seconds(10)});
  const CallResult r = client.put("k", "from a node key");
  EXPECT_EQ(r.outcome, Outcome::rejected) << r.error;
  EXPECT_TRUE(logs_mention(cluster_, "is a node key, refused on the client port"));
  expect_cluster_unchanged(ctx_, cluster_, "good");
}

TEST_F(ProcessSecurity, ClientWithWrongServerKeyIsToldSo) {
  const ClientCurve wrong{{generate_curve_key().public_key}, cluster_.curve()->own};
  Client client(ctx_, ClientOptions{.endpoints = cluster_.endpoints(), .curve = wrong,
                                    .deadline = seconds(10)});
  const CallResult r = client.get("k");
  EXPECT_EQ(r.outcome, Outcome::rejected) << r.error;
  EXPECT_NE(r.error.find("--server-key"), std::string::npos) << r.error;
}

// A tcp connection that never handshakes is closed by the node after the
// handshake window (5 s; libzmq's default would hold it 30 s), so holding
// descriptors without a key costs the holder a reconnect every few seconds.
TEST_F(ProcessSecurity, ConnectionThatNeverHandshakesIsClosed) {
  for (const std::string& endpoint : {cluster_.endpoints()[0], cluster_.peer_endpoints()[0]}) {
    const int fd = ::socket(AF_INET, SOCK_STREAM, 0);
    ASSERT_GE(fd, 0);
    sockaddr_in addr{};
    addr.sin_family = AF_INET;
    addr.sin_port = htons(static_cast<std::uint16_t>(std::stoi(endpoint.substr(endpoint.rfind(':') + 1))));
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    ASSERT_EQ(::connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr), 0) << endpoint;
    const timeval wait{20, 0};
    ::setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &wait, sizeof wait);
    const auto started = std::chrono::steady_clock::now();
    char buf[256];
    ssize_t got = 0;
    while ((got = ::recv(fd, buf, sizeof buf, 0)) > 0) {
    }  // the node's greeting, then the close
    const auto held = std::chrono::steady_clock::now() - started;
    ::close(fd);
    EXPECT_EQ(got, 0) << endpoint << ": still open after 20 s";
    EXPECT_LT(held, seconds(20)) << endpoint;
  }
  expect_cluster_unchanged(ctx_, cluster_, "good");
}

TEST_F(ProcessSecurity, OutsiderAttackWithoutKeysChangesNothing) {
  send_to_peer_port(ctx_, cluster_.peer_endpoints()[kN1], std::nullopt, {},
                    outsider_frames({kN2, kN3}));
  expect_cluster_unchanged(ctx_, cluster_, "good");
}

TEST_F(ProcessSecurity, PeerWithAnotherClustersKeyIsRefused) {
  const CurveKey other_cluster_n2 = generate_curve_key();
  send_to_peer_port(ctx_, cluster_.peer_endpoints()[kN1], other_cluster_n2,
                    read_key(peer_key_file(0, ".key")), outsider_frames({kN2, kN3}));
  EXPECT_TRUE(logs_mention(cluster_, "unknown key " + other_cluster_n2.public_key +
                                         " refused on the peer port"));
  expect_cluster_unchanged(ctx_, cluster_, "good");
}

TEST_F(ProcessSecurity, ClientKeyIsRefusedOnThePeerPort) {
  send_to_peer_port(ctx_, cluster_.peer_endpoints()[kN1], cluster_.curve()->own,
                    read_key(peer_key_file(0, ".key")), outsider_frames({kN2, kN3}));
  EXPECT_TRUE(logs_mention(cluster_, "unknown key " + cluster_.curve()->own.public_key +
                                         " refused on the peer port"));
  expect_cluster_unchanged(ctx_, cluster_, "good");
}

// n3's own key, but every frame claims to come from n2: dropped, counted,
// logged; n2's progress is never taken from n3.
TEST_F(ProcessSecurity, AuthenticatedPeerCannotSpeakForAnotherNode) {
  send_to_peer_port(ctx_, cluster_.peer_endpoints()[kN1], read_pair(peer_key_file(kN3, ".key_secret")),
                    read_key(peer_key_file(kN1, ".key")), outsider_frames({kN2}));
  EXPECT_TRUE(logs_mention(cluster_, "whose header names another sender than the key they came with"))
      << cluster_.logs();
  expect_cluster_unchanged(ctx_, cluster_, "good");
  Client client(ctx_, ClientOptions{.endpoints = cluster_.endpoints(), .curve = cluster_.curve(),
                                    .deadline = seconds(30)});
  ASSERT_TRUE(client.put("k", "after").ok());
  expect_cluster_unchanged(ctx_, cluster_, "after");
}

}  // namespace
}  // namespace kvpaxos

namespace kvpaxos {
namespace {

// Rotating n1's key with rolling restarts and no downtime: the peers first
// learn n1's next key (n1.next.key) and accept both; n1 then restarts with
// the new pair, and the peers' links to it, which pinned the old key, fail
// their handshake once and connect again with the next key. Clients of n1
// alone are served right after, which needs n2 and n3 to reach n1.
TEST(ProcessKeyRotation, NodeKeyRotatesWithRollingRestartsAndNoDowntime) {
  test::ProcessCluster cluster(3, {"--log-level", "info"}, /*durable=*/true);
  ASSERT_TRUE(cluster.started());
  zmq::context_t ctx(1);
  Client all(ctx, ClientOptions{.endpoints = cluster.endpoints(), .curve = cluster.curve(),
                                .deadline = seconds(30)});
  ASSERT_TRUE(all.put("k", "before").ok()) << cluster.logs();

  namespace fs = std::filesystem;
  const std::string peer = cluster.keys_dir() + "/peer";
  const std::string fresh = cluster.keys_dir() + "/n1-next";
  ASSERT_TRUE(write_key_files(fresh, "n1", generate_curve_key()).ok());
  fs::copy_file(fresh + "/n1.key", peer + "/n1.next.key");
  for (int i : {1, 2}) ASSERT_TRUE(cluster.restart(i)) << cluster.logs();
  ASSERT_TRUE(all.put("k", "peers accept both").ok()) << cluster.logs();

  fs::rename(peer + "/n1.key", peer + "/n1.old.key");
  fs::copy_file(fresh + "/n1.key", peer + "/n1.key", fs::copy_options::overwrite_existing);
  fs::copy_file(fresh + "/n1.key_secret", peer + "/n1.key_secret",
                fs::copy_options::overwrite_existing);
  fs::remove(peer + "/n1.next.key");
  ASSERT_TRUE(cluster.restart(0)) << cluster.logs();

  Client via_n1(ctx, ClientOptions{.endpoints = {cluster.endpoints()[0]}, .curve = cluster.curve(),
                                   .deadline = seconds(20)});
  const CallResult put = via_n1.put("k", "after n1's new key");
  ASSERT_TRUE(put.ok()) << put.error << "\n" << cluster.logs();
  EXPECT_EQ(via_n1.get("k").value, "after n1's new key");
  EXPECT_TRUE(logs_mention(cluster, "connecting again with its key 2 of 2")) << cluster.logs();
}

}  // namespace
}  // namespace kvpaxos
