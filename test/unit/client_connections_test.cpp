#include <sys/resource.h>

#include <gtest/gtest.h>

#include "actors/client_connections.hpp"

namespace kvpaxos {
namespace {

TEST(ConnectionCap, RefusesConnectionsPastTheCapAndAdmitsAgainOnceSomeClose) {
  ConnectionCap cap(2);
  EXPECT_TRUE(cap.on_accepted());
  EXPECT_TRUE(cap.on_accepted());
  EXPECT_FALSE(cap.on_accepted()) << "the third is shut down at once";
  EXPECT_EQ(cap.refused(), 1u);
  cap.on_closed();  // the refused one, once libzmq closed it
  cap.on_closed();  // and a client leaving
  EXPECT_EQ(cap.open(), 1u);
  EXPECT_TRUE(cap.on_accepted());
}

TEST(ConnectionCap, LeavesAReserveOfDescriptorsForPeersAndTheDataDir) {
  EXPECT_EQ(client_connection_cap(1024), 768u);
  EXPECT_EQ(client_connection_cap(20000), 20000u - 1024u);
  EXPECT_EQ(client_connection_cap(256), 128u);
  EXPECT_GT(client_connection_cap(64), 0u);
}

TEST(ConnectionCap, OpenFileLimitIsRaisedToTheHardLimit) {
  rlimit before{};
  ASSERT_EQ(getrlimit(RLIMIT_NOFILE, &before), 0);
  EXPECT_EQ(raise_open_file_limit(), before.rlim_max == RLIM_INFINITY ? std::size_t{1} << 20
                                                                     : before.rlim_max);
}

}  // namespace
}  // namespace kvpaxos
