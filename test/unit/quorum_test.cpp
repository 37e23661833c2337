// The majority arithmetic every actor counts with (actors/core/quorum.hpp).
#include <gtest/gtest.h>

#include <algorithm>
#include <cstddef>
#include <functional>
#include <vector>

#include "actors/core/quorum.hpp"
#include "actors/core/cluster_config.hpp"

namespace kvpaxos {
namespace {

// Any two sets of majority(n) of the same n nodes share a member: the
// property Paxos rests on, for every supported cluster size.
TEST(Quorum, AnyTwoMajoritiesIntersect) {
  for (std::size_t n = 1; n <= kMaxClusterSize; ++n) {
    EXPECT_GT(2 * majority(n), n) << "n=" << n;
    EXPECT_LE(majority(n), n) << "n=" << n;
  }
}

TEST(Quorum, MajorityIsTheSmallestCountAboveHalf) {
  for (std::size_t n = 1; n <= kMaxClusterSize; ++n) {
    EXPECT_FALSE(is_majority(majority(n) - 1, n)) << "n=" << n;
    EXPECT_TRUE(is_majority(majority(n), n)) << "n=" << n;
    EXPECT_TRUE(is_majority(n, n)) << "n=" << n;
  }
  EXPECT_EQ(majority(5), 3u);
  EXPECT_EQ(majority(6), 4u);
}

TEST(Quorum, ThisNodeAndTheOthersNeededMakeAMajority) {
  for (std::size_t n = 1; n <= kMaxClusterSize; ++n) {
    EXPECT_TRUE(is_majority(1 + others_needed_for_majority(n), n)) << "n=" << n;
    EXPECT_FALSE(is_majority(others_needed_for_majority(n), n)) << "n=" << n;
  }
  EXPECT_EQ(others_needed_for_majority(1), 0u);
  EXPECT_EQ(others_needed_for_majority(3), 1u);
}

TEST(Quorum, TheToleratedFailuresLeaveAMajorityUp) {
  for (std::size_t n = 1; n <= kMaxClusterSize; ++n) {
    EXPECT_TRUE(is_majority(n - tolerated_failures(n), n)) << "n=" << n;
    EXPECT_FALSE(is_majority(n - tolerated_failures(n) - 1, n)) << "n=" << n;
  }
  EXPECT_EQ(tolerated_failures(1), 0u);
  EXPECT_EQ(tolerated_failures(2), 0u);
  EXPECT_EQ(tolerated_failures(7), 3u);
}

// The majority-th largest value is reached by a majority, and no higher
// value is: with done points {9, 7, 5, 3, 1}, three nodes are done below 5.
TEST(Quorum, MajorityIndexPicksTheHighestValueAMajorityReached) {
  for (std::size_t n = 1; n <= kMaxClusterSize; ++n) {
    std::vector<std::size_t> values(n);
    for (std::size_t i = 0; i < n; ++i) values[i] = 10 * i;
    std::sort(values.begin(), values.end(), std::greater<>());
    const std::size_t v = values[majority_index(n)];
    const auto reached = static_cast<std::size_t>(
        std::count_if(values.begin(), values.end(), [v](std::size_t x) { return x >= v; }));
    EXPECT_TRUE(is_majority(reached, n)) << "n=" << n;
    if (majority_index(n) > 0) {
      const std::size_t higher = values[majority_index(n) - 1];
      const auto above = static_cast<std::size_t>(std::count_if(
          values.begin(), values.end(), [higher](std::size_t x) { return x >= higher; }));
      EXPECT_FALSE(is_majority(above, n)) << "n=" << n;
    }
  }
  const std::vector<std::size_t> done = {9, 7, 5, 3, 1};
  EXPECT_EQ(done[majority_index(done.size())], 5u);
}

}  // namespace
}  // namespace kvpaxos
