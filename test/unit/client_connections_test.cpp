#include <sys/resource.h>

#include <gtest/gtest.h>

#include "actors/runtime/client_connections.hpp"
#include "messages/codec.hpp"

#include <unordered_map>

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

namespace kvpaxos {
namespace {

TEST(UnfinishedMessageWatch, CutsAConnectionThatSendsMoreThanTheLimitWithoutFinishingAMessage) {
  UnfinishedMessageWatch watch(100);
  std::unordered_map<int, std::uint64_t> received{{5, 0}, {6, 0}};
  auto kernel = [&](int fd) -> std::optional<std::uint64_t> {
    const auto it = received.find(fd);
    if (it == received.end()) return std::nullopt;
    return it->second;
  };
  watch.on_accepted(5, 0);
  watch.on_accepted(6, 0);
  EXPECT_TRUE(watch.on_tick(kernel).empty());
  // 5 is well-behaved: many bytes, but messages keep coming.
  // 6 sends frames and never finishes its message.
  for (int tick = 0; tick < 3; ++tick) {
    received[5] += 1000;
    watch.on_message(5);
    received[6] += 40;
    const std::vector<int> cut = watch.on_tick(kernel);
    if (tick < 2) {
      EXPECT_TRUE(cut.empty()) << "tick " << tick << ": 6 is at " << received[6];
    } else {
      EXPECT_EQ(cut, std::vector<int>{6}) << "120 bytes since its mark, over 100";
    }
  }
  received[6] += 1000;
  EXPECT_TRUE(watch.on_tick(kernel).empty()) << "cut once";
  EXPECT_EQ(watch.cut(), 1u);
}

TEST(UnfinishedMessageWatch, ACompleteMessageMovesTheMarkAndAReusedDescriptorStartsAfresh) {
  UnfinishedMessageWatch watch(100);
  std::uint64_t received = 0;
  auto kernel = [&](int) -> std::optional<std::uint64_t> { return received; };
  watch.on_accepted(7, 0);
  received = 90;
  EXPECT_TRUE(watch.on_tick(kernel).empty());
  watch.on_message(7);  // a 90-byte request was finished
  received = 180;
  EXPECT_TRUE(watch.on_tick(kernel).empty()) << "the message moved the mark to 180";
  received = 270;
  EXPECT_TRUE(watch.on_tick(kernel).empty()) << "90 since the mark";
  received = 290;
  EXPECT_EQ(watch.on_tick(kernel), std::vector<int>{7});
  // The connection closes and a new one gets descriptor 7: its count starts
  // from 0 in the kernel and it is not cut for the old one's bytes.
  watch.on_closed(7);
  received = 10;
  watch.on_accepted(7, received);
  received = 100;
  EXPECT_TRUE(watch.on_tick(kernel).empty());
  received = 111;
  EXPECT_EQ(watch.on_tick(kernel), std::vector<int>{7});
  EXPECT_EQ(watch.watched(), 1u);
}

TEST(UnfinishedMessageWatch, AConnectionSeenFirstByItsMessageIsMarkedAtTheNextTick) {
  UnfinishedMessageWatch watch(100);
  std::uint64_t received = 500;  // the ACCEPTED event is read after its first message
  auto kernel = [&](int) -> std::optional<std::uint64_t> { return received; };
  watch.on_message(3);
  EXPECT_TRUE(watch.on_tick(kernel).empty()) << "marked at 500";
  received = 600;
  EXPECT_TRUE(watch.on_tick(kernel).empty());
  received = 601;
  EXPECT_EQ(watch.on_tick(kernel), std::vector<int>{3});
}

TEST(UnfinishedMessageWatch, TicksSlowDownWithThousandsOfConnections) {
  UnfinishedMessageWatch watch(100);
  EXPECT_EQ(watch.tick_interval(), std::chrono::milliseconds(20));
  for (int fd = 0; fd < 5000; ++fd) watch.on_accepted(fd, 0);
  EXPECT_EQ(watch.tick_interval(), std::chrono::milliseconds(100));
  for (int fd = 5000; fd < 50000; ++fd) watch.on_accepted(fd, 0);
  EXPECT_EQ(watch.tick_interval(), std::chrono::milliseconds(200));
}

TEST(UnfinishedMessageWatch, TheLimitHoldsTheLargestRequestAndTheKernelsBuffer) {
  EXPECT_GT(unfinished_message_limit(), kMaxClientFrameBytes + (std::uint64_t{4} << 20));
  EXPECT_LT(unfinished_message_limit(), std::uint64_t{64} << 20);
}

}  // namespace
}  // namespace kvpaxos
