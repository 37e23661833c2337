#include "actors/runtime/listen_address.hpp"

#include <gtest/gtest.h>

namespace kvpaxos {
namespace {

TEST(ListenAddress, AddressesAndTheWildcardBindAsGiven) {
  EXPECT_TRUE(binds_as_given("tcp://127.0.0.1:7101"));
  EXPECT_TRUE(binds_as_given("tcp://0.0.0.0:7101"));
  EXPECT_TRUE(binds_as_given("tcp://*:7101"));
  EXPECT_TRUE(binds_as_given("tcp://[::1]:7101"));
  EXPECT_FALSE(binds_as_given("tcp://localhost:7101"));
  EXPECT_FALSE(binds_as_given("tcp://kv-0.kv-peer.default.svc:7101"));
  EXPECT_FALSE(binds_as_given("tcp://127.0.0.1"));  // no port
  EXPECT_FALSE(binds_as_given("tcp://::1:7101"));   // IPv6 needs brackets
}

TEST(ListenAddress, AnAddressIsBoundAsItIs) {
  Result<std::string> bound = resolve_for_bind("tcp://10.1.2.3:7101");
  ASSERT_TRUE(bound.ok()) << bound.error();
  EXPECT_EQ(bound.value(), "tcp://10.1.2.3:7101");
}

TEST(ListenAddress, AHostNameIsBoundAsTheIpv4AddressItResolvesTo) {
  // localhost is in every /etc/hosts; libzmq, like this, resolves IPv4.
  Result<std::string> bound = resolve_for_bind("tcp://localhost:7101");
  ASSERT_TRUE(bound.ok()) << bound.error();
  EXPECT_EQ(bound.value(), "tcp://127.0.0.1:7101");
}

TEST(ListenAddress, ANameThatDoesNotResolveIsAnErrorNamingIt) {
  // .invalid never resolves (RFC 2606).
  Result<std::string> bound = resolve_for_bind("tcp://kv-9.example.invalid:7101");
  ASSERT_FALSE(bound.ok());
  EXPECT_NE(bound.error().find("kv-9.example.invalid does not resolve"), std::string::npos)
      << bound.error();
}

TEST(ListenAddress, AnUnbracketedIpv6AddressIsRefusedWithTheFix) {
  Result<std::string> bound = resolve_for_bind("tcp://fe80::1:7101");
  ASSERT_FALSE(bound.ok());
  EXPECT_NE(bound.error().find("[fe80::1]:7101"), std::string::npos) << bound.error();
}

TEST(ListenAddress, LoopbackIsWhatNothingElseCanReach) {
  EXPECT_TRUE(is_loopback_endpoint("tcp://127.0.0.1:7101"));
  EXPECT_TRUE(is_loopback_endpoint("tcp://127.0.0.23:7101"));
  EXPECT_TRUE(is_loopback_endpoint("tcp://localhost:7101"));
  EXPECT_TRUE(is_loopback_endpoint("tcp://[::1]:7101"));
  EXPECT_FALSE(is_loopback_endpoint("tcp://0.0.0.0:7101"));
  EXPECT_FALSE(is_loopback_endpoint("tcp://*:7101"));
  EXPECT_FALSE(is_loopback_endpoint("tcp://10.0.0.7:7101"));
  EXPECT_FALSE(is_loopback_endpoint("tcp://128.0.0.1:7101"));
  // Unknown is not safe: a name that does not resolve counts as exposed.
  EXPECT_FALSE(is_loopback_endpoint("tcp://kv-9.example.invalid:7101"));
}

}  // namespace
}  // namespace kvpaxos
