// Majority arithmetic of a cluster of n nodes, in one place.
//
// Paxos is safe because any two majorities of the same n nodes share a
// member; every count of promises, acceptances, nodes done or nodes heard
// that stands for "a majority" is one of these functions of n. n is at least
// 1 (a cluster has this node) and at most kMaxClusterSize.
#pragma once

#include <algorithm>
#include <cstddef>
#include <vector>

#include "messages/types.hpp"

namespace kvpaxos {

// The fewest nodes that form a majority of n: more than half.
constexpr std::size_t majority(std::size_t n) { return n / 2 + 1; }

// Whether `count` of the n nodes are a majority.
constexpr bool is_majority(std::size_t count, std::size_t n) { return count >= majority(n); }

// How many other nodes, with this one, make a majority.
constexpr std::size_t others_needed_for_majority(std::size_t n) { return majority(n) - 1; }

// How many nodes may be down while a majority is still up.
constexpr std::size_t tolerated_failures(std::size_t n) { return n - majority(n); }

// Of n values sorted from the largest down, the index of the majority-th
// largest: the highest value that a majority of nodes has reached.
constexpr std::size_t majority_index(std::size_t n) { return majority(n) - 1; }

// The member ids that answered one round (promised, accepted), ascending and
// each once. Ids are permanent and grow with every member added, so they can
// outgrow any fixed-width mask; a round has at most a few dozen answers.
class VoteSet {
 public:
  // False when `id` was in already: a duplicated answer.
  bool insert(NodeId id) {
    const auto it = std::lower_bound(ids_.begin(), ids_.end(), id);
    if (it != ids_.end() && *it == id) return false;
    ids_.insert(it, id);
    return true;
  }
  bool contains(NodeId id) const { return std::binary_search(ids_.begin(), ids_.end(), id); }
  void clear() { ids_.clear(); }
  const std::vector<NodeId>& ids() const { return ids_; }

 private:
  std::vector<NodeId> ids_;
};

static_assert(majority(1) == 1 && majority(2) == 2 && majority(3) == 2 && majority(4) == 3);
static_assert(tolerated_failures(3) == 1 && tolerated_failures(4) == 1 && tolerated_failures(5) == 2);

}  // namespace kvpaxos
