// Key files (the ZeroMQ certificate format), loading a node's keys, the ZAP
// handler's decisions and the peer link's identity rule, without sockets.
#include <gtest/gtest.h>
#include <sys/stat.h>

#include <filesystem>
#include <fstream>

#include "actors/net/peer_link.hpp"
#include "actors/security/transport_security.hpp"
#include "actors/security/zap_handler.hpp"
#include "actor_test_support.hpp"
#include "messages/key_file.hpp"

namespace kvpaxos {
namespace {

using test_support::at;
using test_support::sent;
using test_support::TempDir;

void write(const std::string& path, const std::string& text) { std::ofstream(path) << text; }

TEST(KeyFile, SecretFileRoundTripsAndMatchesItsPublicKey) {
  const CurveKey key = generate_curve_key();
  ASSERT_TRUE(valid_z85_key(key.public_key));
  Result<CurveKey> parsed = parse_key_file(format_key_file(key, true), true, "test");
  ASSERT_TRUE(parsed.ok()) << parsed.error();
  EXPECT_EQ(parsed->public_key, key.public_key);
  EXPECT_EQ(parsed->secret_key, key.secret_key);
  Result<CurveKey> pub = parse_key_file(format_key_file(key, false), false, "test");
  ASSERT_TRUE(pub.ok()) << pub.error();
  EXPECT_TRUE(pub->secret_key.empty());
}

// '#' is a Z85 character: only a line that starts with it is a comment.
TEST(KeyFile, KeyHoldingAHashIsNotCutAsAComment) {
  CurveKey key;
  for (int i = 0; i < 1000 && key.public_key.find('#') == std::string::npos; ++i) {
    key = generate_curve_key();
  }
  ASSERT_NE(key.public_key.find('#'), std::string::npos);
  Result<CurveKey> parsed = parse_key_file(format_key_file(key, true), true, "test");
  ASSERT_TRUE(parsed.ok()) << parsed.error();
  EXPECT_EQ(parsed->public_key, key.public_key);
}

// What pyzmq's zmq.auth.create_certificates writes (quoting and metadata vary).
TEST(KeyFile, ReadsTheZplThatOtherToolsWrite) {
  const CurveKey key = generate_curve_key();
  const std::string pyzmq = "#   ****  Generated on 2026-01-01 by pyzmq  ****\n"
                            "#   ZeroMQ CURVE **Secret** Certificate\n\nmetadata\n"
                            "    name = \"bob\"\ncurve\n    public-key = '" + key.public_key +
                            "'\n    secret-key = '" + key.secret_key + "'\n";
  Result<CurveKey> parsed = parse_key_file(pyzmq, true, "bob.key_secret");
  ASSERT_TRUE(parsed.ok()) << parsed.error();
  EXPECT_EQ(parsed->secret_key, key.secret_key);
}

TEST(KeyFile, RefusesAPairThatDoesNotBelongTogether) {
  const CurveKey a = generate_curve_key();
  const CurveKey b = generate_curve_key();
  Result<CurveKey> parsed =
      parse_key_file(format_key_file(CurveKey{a.public_key, b.secret_key}, true), true, "x");
  ASSERT_FALSE(parsed.ok());
  EXPECT_NE(parsed.error().find("does not belong"), std::string::npos) << parsed.error();
}

TEST(KeyFile, RefusesMalformedKeysAndMissingSecrets) {
  EXPECT_FALSE(parse_key_file("curve\n    public-key = \"short\"\n", false, "x").ok());
  EXPECT_FALSE(parse_key_file("nothing here\n", false, "x").ok());
  const CurveKey key = generate_curve_key();
  Result<CurveKey> no_secret = parse_key_file(format_key_file(key, false), true, "n1.key");
  ASSERT_FALSE(no_secret.ok());
  EXPECT_NE(no_secret.error().find("key_secret"), std::string::npos) << no_secret.error();
}

TEST(KeyFile, SecretFileReadableByOthersIsRefused) {
  TempDir dir;
  ASSERT_TRUE(write_key_files(dir.path(), "n1", generate_curve_key()).ok());
  const std::string secret = dir.path() + "/n1.key_secret";
  ASSERT_TRUE(read_secret_key_file(secret).ok());
  ::chmod(secret.c_str(), 0640);
  Result<CurveKey> loose = read_secret_key_file(secret);
  ASSERT_FALSE(loose.ok());
  EXPECT_NE(loose.error().find("chmod 600"), std::string::npos) << loose.error();
  EXPECT_FALSE(write_key_files(dir.path(), "n1", generate_curve_key()).ok()) << "never overwrites";
}

class NodeKeys : public ::testing::Test {
 protected:
  void SetUp() override {
    for (const char* n : {"n1", "n2", "n3"}) {
      ASSERT_TRUE(write_key_files(dir_.path() + "/peer", n, generate_curve_key()).ok());
    }
    ASSERT_TRUE(write_key_files(dir_.path() + "/port", "cluster", generate_curve_key()).ok());
  }
  Result<TransportSecurity> load(const std::string& clients = {}) {
    return load_transport_security(names_, 0, dir_.path() + "/peer",
                                   dir_.path() + "/port/cluster.key_secret", clients);
  }
  std::string peer(const std::string& file) const { return dir_.path() + "/peer/" + file; }

  TempDir dir_;
  std::vector<std::string> names_{"n1", "n2", "n3"};
};

TEST_F(NodeKeys, LoadsEveryNodesKeyAndFurtherKeysForRotation) {
  const CurveKey next = generate_curve_key();
  write(peer("n2.next.key"), format_key_file(next, false));
  Result<TransportSecurity> s = load();
  ASSERT_TRUE(s.ok()) << s.error();
  ASSERT_EQ(s->peer_keys.size(), 3u);
  EXPECT_EQ(s->peer_keys[1].size(), 2u);
  EXPECT_EQ(s->peer_keys[1].back(), next.public_key);
  EXPECT_TRUE(s->any_client);
}

TEST_F(NodeKeys, RefusesAKeyFileThatNamesNoNode) {
  write(peer("mallory.key"), format_key_file(generate_curve_key(), false));
  Result<TransportSecurity> s = load();
  ASSERT_FALSE(s.ok());
  EXPECT_NE(s.error().find("names no node"), std::string::npos) << s.error();
}

// A restart or a member added later (--initial-cluster-state existing): the
// other members' keys may come from the configuration, so only this node's
// pair must be there, and files of names not in --cluster are kept by name.
TEST_F(NodeKeys, WithoutEveryNameOnlyTheOwnPairIsRequired) {
  std::filesystem::remove(peer("n3.key"));
  write(peer("n4.key"), format_key_file(generate_curve_key(), false));
  EXPECT_FALSE(load().ok()) << "a first start needs every member's key";
  Result<TransportSecurity> s = load_transport_security(
      names_, 0, dir_.path() + "/peer", dir_.path() + "/port/cluster.key_secret", {},
      /*every_name=*/false);
  ASSERT_TRUE(s.ok()) << s.error();
  EXPECT_TRUE(s->peer_keys[2].empty());
  EXPECT_EQ(s->key_files("n4").size(), 1u);
  EXPECT_TRUE(s->key_files("n3").empty());
  std::filesystem::remove(peer("n1.key_secret"));
  EXPECT_FALSE(load_transport_security(names_, 0, dir_.path() + "/peer",
                                       dir_.path() + "/port/cluster.key_secret", {}, false)
                   .ok())
      << "its own secret key is always required";
}

TEST_F(NodeKeys, RefusesTwoNodesWithOneKey) {
  std::filesystem::copy_file(peer("n1.key"), peer("n2.key"),
                             std::filesystem::copy_options::overwrite_existing);
  EXPECT_FALSE(load().ok());
}

TEST_F(NodeKeys, RefusesANodeKeyAmongTheClientKeys) {
  std::filesystem::create_directories(dir_.path() + "/clients");
  std::filesystem::copy_file(peer("n3.key"), dir_.path() + "/clients/n3.key");
  Result<TransportSecurity> s = load(dir_.path() + "/clients");
  ASSERT_FALSE(s.ok());
  EXPECT_NE(s.error().find("never accepted on the client port"), std::string::npos) << s.error();
}

TEST_F(NodeKeys, ZapPoliciesAcceptNodeKeysOnlyOnThePeerPortAndNeverOnTheClientPort) {
  ASSERT_TRUE(write_key_files(dir_.path() + "/clients", "alice", generate_curve_key()).ok());
  std::filesystem::remove(dir_.path() + "/clients/alice.key_secret");
  Result<TransportSecurity> s = load(dir_.path() + "/clients");
  ASSERT_TRUE(s.ok()) << s.error();
  zmq::context_t ctx(1);
  Result<std::shared_ptr<ZapHandler>> zap = ZapHandler::for_context(ctx);
  ASSERT_TRUE(zap.ok()) << zap.error();
  register_policies(**zap, *s, member_keys_of_list(*s), "ns", /*client_port=*/true);
  const std::string n2 = s->peer_keys[1].front();
  const std::string alice = s->client_keys.front().key.public_key;
  const std::string peer_domain = peer_zap_domain("ns");
  const std::string client_domain = client_zap_domain("ns");

  Result<std::string> as_peer = (*zap)->decide(peer_domain, "CURVE", n2);
  ASSERT_TRUE(as_peer.ok()) << as_peer.error();
  EXPECT_EQ(as_peer.value(), "1") << "a peer's User-Id is its node id";
  EXPECT_FALSE((*zap)->decide(peer_domain, "CURVE", alice).ok()) << "client key on peer port";
  EXPECT_FALSE((*zap)->decide(client_domain, "CURVE", n2).ok()) << "node key on client port";
  EXPECT_TRUE((*zap)->decide(client_domain, "CURVE", alice).ok());
  EXPECT_FALSE((*zap)->decide(client_domain, "CURVE", generate_curve_key().public_key).ok());
  EXPECT_FALSE((*zap)->decide(client_domain, "NULL", alice).ok()) << "only CURVE";
  EXPECT_FALSE((*zap)->decide("another-domain", "CURVE", alice).ok()) << "no policy: refused";
}

// Registered again on every configuration change: the peer port lets in
// exactly the members' keys of that moment (a removed member's file stays
// on disk and is refused), the client port refuses every node key it knows.
TEST_F(NodeKeys, ZapPeerPolicyFollowsTheMemberKeysItIsGiven) {
  Result<TransportSecurity> s = load();
  ASSERT_TRUE(s.ok()) << s.error();
  zmq::context_t ctx(1);
  Result<std::shared_ptr<ZapHandler>> zap = ZapHandler::for_context(ctx);
  ASSERT_TRUE(zap.ok()) << zap.error();
  const std::string n2 = s->peer_keys[1].front();
  const std::string added = generate_curve_key().public_key;
  const std::string peer_domain = peer_zap_domain("ns");
  register_policies(**zap, *s, member_keys_of_list(*s), "ns", /*client_port=*/true);
  EXPECT_TRUE((*zap)->decide(peer_domain, "CURVE", n2).ok());
  EXPECT_FALSE((*zap)->decide(peer_domain, "CURVE", added).ok());

  // n2 removed, member 3 added with a key only its configuration entry holds.
  MemberKeys now = member_keys_of_list(*s);
  now.erase(1);
  now[3] = {added};
  register_policies(**zap, *s, now, "ns", /*client_port=*/true);
  EXPECT_FALSE((*zap)->decide(peer_domain, "CURVE", n2).ok()) << "removed member let in";
  Result<std::string> as_new = (*zap)->decide(peer_domain, "CURVE", added);
  ASSERT_TRUE(as_new.ok()) << as_new.error();
  EXPECT_EQ(as_new.value(), "3");
  const std::string client_domain = client_zap_domain("ns");
  EXPECT_FALSE((*zap)->decide(client_domain, "CURVE", added).ok()) << "member key on client port";
  EXPECT_FALSE((*zap)->decide(client_domain, "CURVE", n2).ok()) << "a node key file on client port";

  // Among the removed members, n2's key gets through the handshake again,
  // under its own id (the peer link refuses all it sends but tells it it was
  // removed), never on the client port; member 7, removed, had n3's key (an
  // operator reused it): a member's key stays the member's.
  const std::string n3 = s->peer_keys[2].front();
  register_policies(**zap, *s, now, "ns", /*client_port=*/true, MemberKeys{{1, {n2}}, {7, {n3}}});
  Result<std::string> as_removed = (*zap)->decide(peer_domain, "CURVE", n2);
  ASSERT_TRUE(as_removed.ok()) << as_removed.error();
  EXPECT_EQ(as_removed.value(), "1") << "its own id, never a member's";
  Result<std::string> member = (*zap)->decide(peer_domain, "CURVE", n3);
  ASSERT_TRUE(member.ok()) << member.error();
  EXPECT_EQ(member.value(), "2");
  EXPECT_FALSE((*zap)->decide(client_domain, "CURVE", n2).ok()) << "a removed key on client port";
}

TEST(ZapHandler, OnePerContextSharedByItsNodes) {
  zmq::context_t ctx(1);
  Result<std::shared_ptr<ZapHandler>> a = ZapHandler::for_context(ctx);
  Result<std::shared_ptr<ZapHandler>> b = ZapHandler::for_context(ctx);
  ASSERT_TRUE(a.ok() && b.ok());
  EXPECT_EQ(a->get(), b->get());
}

// A frame authenticated as n3 whose header says n2 is dropped, and n2's
// progress is not taken from it.
TEST(PeerLinkIdentity, FrameClaimingAnotherSenderIsDroppedAndCounted) {
  PeerLink link(0, {"n1", "n2", "n3"}, 1);
  Outbox out;
  const FrameHeader forged{{0, Actor::learner}, {1, Actor::proposer}, 1'000'000, 1'000'000, 1'000'000};
  EXPECT_FALSE(link.inbound(PeerFrame{forged, "body"}, at(0), out, NodeId{2}).has_value());
  EXPECT_EQ(link.refused().forged_sender, 1u);
  EXPECT_TRUE(sent<PeerProgress>(out).empty());

  const FrameHeader honest{{0, Actor::learner}, {2, Actor::proposer}, 5, 6, 0};
  EXPECT_TRUE(link.inbound(PeerFrame{honest, "body"}, at(1), out, NodeId{2}).has_value());
  auto progress = sent<PeerProgress>(out);
  ASSERT_EQ(progress.size(), 1u);
  EXPECT_EQ(progress[0].second.node, 2u);
  EXPECT_EQ(progress[0].second.done_below, 5u);
}

TEST(PeerLinkIdentity, FrameForAnotherReceiverIsDroppedAndCounted) {
  PeerLink link(0, {"n1", "n2", "n3"}, 1);
  Outbox out;
  const FrameHeader elsewhere{{2, Actor::learner}, {1, Actor::proposer}, 0, 0, 0};
  EXPECT_FALSE(link.inbound(PeerFrame{elsewhere, "body"}, at(0), out, NodeId{1}).has_value());
  EXPECT_EQ(link.refused().wrong_receiver, 1u);
  const FrameHeader to_front_door{{0, Actor::front_door}, {1, Actor::proposer}, 0, 0, 0};
  EXPECT_FALSE(link.inbound(PeerFrame{to_front_door, "body"}, at(0), out, NodeId{1}).has_value());
  EXPECT_EQ(link.refused().not_for_peers, 1u);
}

}  // namespace
}  // namespace kvpaxos
