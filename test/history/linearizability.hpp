// Linearizability: does a client history (test/history/history.hpp) look as
// if one key/value store had executed every op atomically at some instant
// between its invocation and its return?
//
// The model: each key is absent or holds a string (history.hpp, HistoryOp).
// put(k, v) sets it, append(k, v) concatenates v (to "" when absent), get(k)
// returns it ("" when absent), delete(k) makes it absent and returns whether
// it was present ("1") or not ("0"), cas(k, expected, v) puts v when the
// value is `expected` (an absent key's is "") and else returns it. Keys are independent, so the
// history is split by key and each key is checked alone (P-compositionality,
// as in porcupine); a history is linearizable iff every key's is.
//
// One key is checked with the Wing-Gong / Lowe search: walk the time-ordered
// list of call and return entries, linearize any op whose call comes before
// the first pending return, and backtrack when a return is reached whose op
// could not be placed. Pairs (set of ops linearized, resulting state) already
// explored are remembered and never explored again, which is what keeps the
// search polynomial in practice for a handful of concurrent clients.
//
// Ops whose outcome is unknown (the client timed out) never return: they may
// take effect at any moment after their invocation, or not at all. An unknown
// get has no effect and an unconstrained output, so it is dropped; an unknown
// write (put, append, delete, cas) may be linearized anywhere after its
// invocation or left out; an unknown cas takes the branch its state gives.
// An unknown put or append whose value no ok op observed cannot matter to
// any ok op's outcome (but a delete's count), so it is left out up front.
//
// Pure functions, safe from any thread.
#pragma once

#include <chrono>
#include <cstddef>
#include <string>
#include <vector>

#include "test/history/history.hpp"

namespace kvpaxos {

enum class LinearizabilityVerdict {
  linearizable,
  not_linearizable,
  // The budget ran out first: neither verdict is known.
  timed_out,
  // An op the checker cannot model (unknown op name, or an ok op that
  // returned before it was invoked): a bug in the recording, not the store.
  invalid_history,
};

const char* to_string(LinearizabilityVerdict verdict);

struct LinearizabilityResult {
  LinearizabilityVerdict verdict = LinearizabilityVerdict::linearizable;
  // The first key (in byte order) that is not linearizable, or whose check
  // timed out, or that holds the invalid op; empty when linearizable.
  std::string key;
  // For people: on failure the ops of that key around the point where the
  // search got stuck, after the longest linearizable prefix it found.
  std::string explanation;
  std::size_t ops_checked = 0;  // ops given to the search (unknown gets are dropped)
  // Unknown puts and appends whose value no ok op saw, left out of the
  // search: with or without them the same ok ops fit (see the .cpp).
  std::size_t unobserved_writes_dropped = 0;
  std::size_t keys = 0;         // distinct keys in the history

  bool ok() const { return verdict == LinearizabilityVerdict::linearizable; }
};

// Checks `ops` (any order) against the KV model. Gives up with timed_out
// once `budget` of wall-clock time is spent.
LinearizabilityResult check_linearizable(
    const std::vector<HistoryOp>& ops,
    std::chrono::milliseconds budget = std::chrono::seconds(60));

// One op in the form the explanations use, e.g.
//   client 3 append("k", "x") ok [invoke 123, return 456]
std::string describe(const HistoryOp& op);

}  // namespace kvpaxos
