#include "test/history/linearizability.hpp"

#include <algorithm>
#include <cassert>
#include <cstdint>
#include <limits>
#include <map>
#include <optional>
#include <string_view>
#include <unordered_map>
#include <utility>

namespace kvpaxos {

const char* to_string(LinearizabilityVerdict verdict) {
  switch (verdict) {
    case LinearizabilityVerdict::linearizable: return "linearizable";
    case LinearizabilityVerdict::not_linearizable: return "NOT linearizable";
    case LinearizabilityVerdict::timed_out: return "timed out (unknown)";
    case LinearizabilityVerdict::invalid_history: return "invalid history";
  }
  return "invalid-verdict";
}

namespace {

using Clock = std::chrono::steady_clock;

constexpr std::size_t kShownBytes = 48;
constexpr std::size_t kShownPrefixOps = 8;
constexpr std::size_t kShownCandidates = 12;

std::string quoted(std::string_view bytes) {
  static constexpr char kHex[] = "0123456789abcdef";
  std::string out = "\"";
  for (std::size_t i = 0; i < bytes.size() && i < kShownBytes; ++i) {
    const auto byte = static_cast<unsigned char>(bytes[i]);
    if (bytes[i] == '"' || bytes[i] == '\\') {
      out += '\\';
      out += bytes[i];
    } else if (byte < 0x20 || byte >= 0x7f) {
      out += "\\x";
      out += kHex[byte >> 4];
      out += kHex[byte & 0xf];
    } else {
      out += bytes[i];
    }
  }
  out += '"';
  if (bytes.size() > kShownBytes) {
    out += "...(" + std::to_string(bytes.size()) + " bytes)";
  }
  return out;
}

std::uint64_t splitmix64(std::uint64_t x) {
  x += 0x9e3779b97f4a7c15ULL;
  x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ULL;
  x = (x ^ (x >> 27)) * 0x94d049bb133111ebULL;
  return x ^ (x >> 31);
}

enum class OpKind { put, append, get, del, cas };

std::optional<OpKind> kind_of(const std::string& op) {
  if (op == "put") return OpKind::put;
  if (op == "append") return OpKind::append;
  if (op == "get") return OpKind::get;
  if (op == "delete") return OpKind::del;
  if (op == "cas") return OpKind::cas;
  return std::nullopt;
}

// A key's state in the search: its value, interned in a StatePool, and
// whether it exists (put "" makes it exist with value ""; only delete's
// count tells the two apart). An absent key's value is "", id 0.
using KeyState = std::uint32_t;  // value id << 1 | present
constexpr KeyState kAbsent = 0;
constexpr KeyState present(std::uint32_t value_id) { return value_id << 1 | 1; }
constexpr std::uint32_t value_id(KeyState s) { return s >> 1; }
constexpr bool is_present(KeyState s) { return (s & 1) != 0; }

// Every distinct state string is stored once and named by a small id, so a
// step, a comparison and a memo key cost O(1) however long appends make the
// strings; only a new append result costs its length, once. The bytes live
// in one arena and the index is open-addressed: millions of states cost no
// allocation each, and freeing them is three frees.
class StatePool {
 public:
  using Id = std::uint32_t;

  StatePool() : slots_(1024, kEmpty) { intern(""); }

  Id intern(std::string_view s) {
    const std::size_t offset = arena_.size();
    arena_.append(s);
    return settle(offset);
  }

  // intern(view(base) + suffix) without building the string twice.
  Id intern_concat(Id base, std::string_view suffix) {
    const std::size_t offset = arena_.size();
    // append(str, pos, n) copes with str being arena_ itself, even when the
    // append reallocates.
    arena_.append(arena_, spans_[base].offset, spans_[base].length);
    arena_.append(suffix);
    return settle(offset);
  }

  std::string_view view(Id id) const {
    return std::string_view(arena_).substr(spans_[id].offset, spans_[id].length);
  }

 private:
  static constexpr Id kEmpty = std::numeric_limits<Id>::max();
  struct Span {
    std::size_t offset;
    std::size_t length;
    std::uint64_t hash;
  };

  // The candidate is arena_[offset..]: keep it as a new state, or drop it in
  // favour of the equal one already stored.
  Id settle(std::size_t offset) {
    const std::string_view candidate = std::string_view(arena_).substr(offset);
    const std::uint64_t hash = std::hash<std::string_view>{}(candidate);
    std::size_t slot = hash & (slots_.size() - 1);
    for (; slots_[slot] != kEmpty; slot = (slot + 1) & (slots_.size() - 1)) {
      const Id id = slots_[slot];
      if (spans_[id].hash == hash && view(id) == candidate) {
        arena_.resize(offset);
        return id;
      }
    }
    const auto id = static_cast<Id>(spans_.size());
    spans_.push_back({offset, candidate.size(), hash});
    slots_[slot] = id;
    if (2 * spans_.size() > slots_.size()) grow();
    return id;
  }

  void grow() {
    std::vector<Id> bigger(2 * slots_.size(), kEmpty);
    for (Id id = 0; id < spans_.size(); ++id) {
      std::size_t slot = spans_[id].hash & (bigger.size() - 1);
      while (bigger[slot] != kEmpty) slot = (slot + 1) & (bigger.size() - 1);
      bigger[slot] = id;
    }
    slots_ = std::move(bigger);
  }

  std::string arena_;
  std::vector<Span> spans_;  // by Id
  std::vector<Id> slots_;    // power-of-two size, at most half full
};

// The memo of explored (linearized set, state) pairs, with the same layout
// idea as StatePool: the set words of all entries in one arena, an
// open-addressed table of small slots.
class ExploredSet {
 public:
  ExploredSet() : slots_(1024) {}

  // True when (words, state) was not in the set; it is in the set after.
  bool insert(std::uint64_t hash, const std::vector<std::uint64_t>& words, KeyState state) {
    std::size_t slot = hash & (slots_.size() - 1);
    for (; slots_[slot].used; slot = (slot + 1) & (slots_.size() - 1)) {
      const Slot& s = slots_[slot];
      if (s.hash == hash && s.state == state && s.length == words.size() &&
          std::equal(words.begin(), words.end(),
                     arena_.begin() + static_cast<std::ptrdiff_t>(s.offset))) {
        return false;
      }
    }
    slots_[slot] = Slot{hash, arena_.size(), static_cast<std::uint32_t>(words.size()), state, true};
    arena_.insert(arena_.end(), words.begin(), words.end());
    if (2 * ++size_ > slots_.size()) grow();
    return true;
  }

 private:
  struct Slot {
    std::uint64_t hash = 0;
    std::size_t offset = 0;
    std::uint32_t length = 0;
    KeyState state = 0;
    bool used = false;
  };

  void grow() {
    std::vector<Slot> bigger(2 * slots_.size());
    for (const Slot& s : slots_) {
      if (!s.used) continue;
      std::size_t slot = s.hash & (bigger.size() - 1);
      while (bigger[slot].used) slot = (slot + 1) & (bigger.size() - 1);
      bigger[slot] = s;
    }
    slots_ = std::move(bigger);
  }

  std::vector<std::uint64_t> arena_;
  std::vector<Slot> slots_;  // power-of-two size, at most half full
  std::size_t size_ = 0;
};

// The search over the ops of one key. Construct, then run() once.
class KeySearch {
 public:
  enum class Outcome { linearizable, not_linearizable, timed_out };

  KeySearch(std::vector<const HistoryOp*> ops, Clock::time_point deadline);

  Outcome run();
  // After not_linearizable: where the search got stuck, for people.
  std::string explain(const std::string& key) const;

 private:
  static constexpr std::uint32_t kNil = std::numeric_limits<std::uint32_t>::max();
  static constexpr std::uint32_t kHead = 0;

  // A node of the doubly linked list of entries; node kHead is the sentinel.
  struct Entry {
    std::uint32_t op = 0;
    bool is_call = false;
    std::uint32_t prev = kNil;
    std::uint32_t next = kNil;
  };

  struct Frame {
    std::uint32_t op;
    KeyState state_before;
  };

  // What the search needs of one op, as ids of states_.
  struct OpModel {
    OpKind kind = OpKind::get;
    StatePool::Id written = 0;   // put, cas: the value it writes
    StatePool::Id read = 0;      // get, failed cas: the value it returned
    StatePool::Id expected = 0;  // cas: the value its compare asks for
  };

  // Ops are numbered ok ones first, each group by invocation (see
  // order_for_search), and unknown ones start on a fresh bitset word.
  bool is_known(std::uint32_t op) const { return op < known_ops_; }
  std::size_t bit_of(std::uint32_t op) const {
    return is_known(op) ? op : unknown_bits_base_ + (op - known_ops_);
  }
  std::optional<KeyState> step(KeyState state, std::uint32_t op);
  bool fits_next_read(KeyState state, std::uint32_t op) const;
  bool may_restart_read(std::uint32_t op, std::string_view read) const;
  std::string misfit(std::uint32_t op, KeyState state) const;
  std::optional<std::string> value_after(std::uint32_t op, KeyState state) const;
  void compact_linearized(std::vector<std::uint64_t>& out) const;
  std::string why_not_next(std::size_t op, const std::vector<bool>& placed,
                           std::optional<std::size_t> next_read) const;
  void unlink(std::uint32_t node);
  void relink(std::uint32_t node);
  void lift(std::uint32_t op);
  void unlift(std::uint32_t op);
  void flip(std::uint32_t op);
  bool remember(KeyState state);
  void note_progress();

  const std::vector<const HistoryOp*> ops_;
  const Clock::time_point deadline_;
  std::uint32_t known_ops_ = 0;
  std::size_t unknown_bits_base_ = 0;
  std::vector<OpModel> model_;
  StatePool states_;
  std::unordered_map<std::uint64_t, StatePool::Id> append_results_;  // (state << 32 | op)

  std::vector<Entry> entries_;
  std::vector<std::uint32_t> call_node_;
  std::vector<std::uint32_t> return_node_;

  // The current path: invariant, linearized_ holds exactly the ops on
  // frames_, and linearized_hash_ is the XOR of their zobrist_ values.
  std::vector<Frame> frames_;
  std::vector<std::uint64_t> linearized_;
  std::uint64_t linearized_hash_ = 0;
  std::vector<std::uint64_t> zobrist_;
  KeyState state_ = kAbsent;
  std::size_t known_left_ = 0;  // ok ops not on frames_
  ExploredSet explored_;
  std::vector<std::uint64_t> scratch_;  // for remember(), to spare an allocation per step

  // The deepest path seen, for explain().
  std::vector<std::uint32_t> best_order_;
  KeyState best_state_ = kAbsent;
};

// Ok ops are linearized roughly in invocation order, so numbering them that
// way makes the linearized set a run of full bitset words, a short ragged
// window, then zero words: compact_linearized() keeps only the window. Unknown
// ops may stay out forever and would break the run, so they go last.
std::vector<const HistoryOp*> order_for_search(std::vector<const HistoryOp*> ops) {
  std::stable_sort(ops.begin(), ops.end(), [](const HistoryOp* a, const HistoryOp* b) {
    const bool a_known = a->outcome == HistoryOutcome::ok;
    const bool b_known = b->outcome == HistoryOutcome::ok;
    if (a_known != b_known) return a_known;
    return a->invoke_ns < b->invoke_ns;
  });
  return ops;
}

KeySearch::KeySearch(std::vector<const HistoryOp*> ops, Clock::time_point deadline)
    : ops_(order_for_search(std::move(ops))), deadline_(deadline) {
  const auto n = static_cast<std::uint32_t>(ops_.size());
  while (known_ops_ < n && ops_[known_ops_]->outcome == HistoryOutcome::ok) ++known_ops_;
  unknown_bits_base_ = (std::size_t{known_ops_} + 63) / 64 * 64;
  model_.reserve(n);
  zobrist_.reserve(n);
  for (std::uint32_t i = 0; i < n; ++i) {
    const HistoryOp& op = *ops_[i];
    OpModel m{.kind = *kind_of(op.op)};
    if (m.kind == OpKind::put || m.kind == OpKind::cas) m.written = states_.intern(op.value);
    if (m.kind == OpKind::get || m.kind == OpKind::cas) m.read = states_.intern(op.output);
    if (m.kind == OpKind::cas) m.expected = states_.intern(op.expected);
    model_.push_back(m);
    zobrist_.push_back(splitmix64(i));
  }
  known_left_ = known_ops_;
  linearized_.assign((unknown_bits_base_ + (n - known_ops_) + 63) / 64, 0);

  // Time order; at equal times calls first (touching ops count as
  // concurrent, the lenient reading of a clock tick), and the returns of
  // unknown ops after everything: they never return.
  struct Event {
    std::int64_t time;
    int rank;  // 0 call, 1 return, 2 return of an unknown op
    std::uint32_t op;
  };
  std::vector<Event> events;
  events.reserve(2 * std::size_t{n});
  for (std::uint32_t i = 0; i < n; ++i) {
    events.push_back({ops_[i]->invoke_ns, 0, i});
    if (is_known(i)) {
      events.push_back({ops_[i]->return_ns, 1, i});
    } else {
      events.push_back({std::numeric_limits<std::int64_t>::max(), 2, i});
    }
  }
  std::stable_sort(events.begin(), events.end(), [](const Event& a, const Event& b) {
    return a.time != b.time ? a.time < b.time : a.rank < b.rank;
  });
  entries_.resize(events.size() + 1);
  call_node_.resize(n);
  return_node_.resize(n);
  for (std::size_t i = 0; i < events.size(); ++i) {
    const auto node = static_cast<std::uint32_t>(i + 1);
    entries_[node].op = events[i].op;
    entries_[node].is_call = events[i].rank == 0;
    (entries_[node].is_call ? call_node_ : return_node_)[events[i].op] = node;
  }
  for (std::size_t node = 0; node < entries_.size(); ++node) {
    entries_[node].prev = node == 0 ? kNil : static_cast<std::uint32_t>(node - 1);
    entries_[node].next = node + 1 < entries_.size() ? static_cast<std::uint32_t>(node + 1) : kNil;
  }
}

// The state after `op` from `state`, or none when `op` is ok and its output
// says it saw another state. Interning is canonical, so equal ids <=> equal
// strings. An unknown op's output means nothing: only the state decides.
std::optional<KeyState> KeySearch::step(KeyState state, std::uint32_t op) {
  const OpModel& m = model_[op];
  const bool known = is_known(op);
  switch (m.kind) {
    case OpKind::put: return present(m.written);
    case OpKind::get:
      if (value_id(state) == m.read) return state;
      return std::nullopt;
    case OpKind::append: {
      const std::uint64_t memo_key = (std::uint64_t{state} << 32) | op;
      const auto it = append_results_.find(memo_key);
      if (it != append_results_.end()) return it->second;
      const KeyState next = present(states_.intern_concat(value_id(state), ops_[op]->value));
      append_results_.emplace(memo_key, next);
      return next;
    }
    case OpKind::del:
      if (known && (ops_[op]->output == "1") != is_present(state)) return std::nullopt;
      return kAbsent;
    case OpKind::cas: {
      const bool holds = value_id(state) == m.expected;
      if (known && ops_[op]->succeeded != holds) return std::nullopt;
      if (holds) return present(m.written);
      if (known && value_id(state) != m.read) return std::nullopt;
      return state;
    }
  }
  return std::nullopt;
}

// Dancing links: a removed node keeps its own prev/next, so relinking in the
// reverse order of removal restores the list exactly.
void KeySearch::unlink(std::uint32_t node) {
  Entry& e = entries_[node];
  entries_[e.prev].next = e.next;
  if (e.next != kNil) entries_[e.next].prev = e.prev;
}

void KeySearch::relink(std::uint32_t node) {
  Entry& e = entries_[node];
  entries_[e.prev].next = node;
  if (e.next != kNil) entries_[e.next].prev = node;
}

void KeySearch::lift(std::uint32_t op) {
  unlink(call_node_[op]);
  unlink(return_node_[op]);
}

void KeySearch::unlift(std::uint32_t op) {
  relink(return_node_[op]);
  relink(call_node_[op]);
}

void KeySearch::flip(std::uint32_t op) {
  const std::size_t bit = bit_of(op);
  linearized_[bit / 64] ^= std::uint64_t{1} << (bit % 64);
  linearized_hash_ ^= zobrist_[op];
}

// linearized_ without its leading full and trailing empty words of ok ops:
// {first kept word, number kept, kept words..., words of unknown ops...}.
// Memory per memo entry is then the width of the concurrency window rather
// than the length of the history.
void KeySearch::compact_linearized(std::vector<std::uint64_t>& out) const {
  const std::size_t known_words = unknown_bits_base_ / 64;
  std::size_t lo = 0;
  while (lo < known_words && linearized_[lo] == ~std::uint64_t{0}) ++lo;
  std::size_t hi = known_words;
  while (hi > lo && linearized_[hi - 1] == 0) --hi;
  out.clear();
  out.push_back(lo);
  out.push_back(hi - lo);
  out.insert(out.end(), linearized_.begin() + static_cast<std::ptrdiff_t>(lo),
             linearized_.begin() + static_cast<std::ptrdiff_t>(hi));
  out.insert(out.end(), linearized_.begin() + static_cast<std::ptrdiff_t>(known_words),
             linearized_.end());
}

// True when (linearized_, state) is new; records it either way.
bool KeySearch::remember(KeyState state) {
  const std::uint64_t hash = linearized_hash_ ^ splitmix64(~std::uint64_t{state});
  compact_linearized(scratch_);
  return explored_.insert(hash, scratch_, state);
}

// Pruning for append-heavy keys, where every order of a few concurrent
// appends is a distinct state and the memo alone cannot tell them apart.
// Let G be the pending ok get that returns first. It must be linearized after
// `op`, and only ops invoked before G returned can come between (their calls
// precede G's return in the list). If none of those restarts the value (a
// put, a delete, a cas that may put), it can only grow until G, so it must
// already be a prefix of what G read. If some do, the last of them placed
// before G starts what G read, so a put whose value is not a prefix of G's
// output cannot be that one. Without this refinement
// one unknown put, whose call stays in the list forever, would switch the
// pruning off for the rest of the history (sim seed 1008 with 8 clients on
// one key ran out of a 60 s budget).
bool KeySearch::fits_next_read(KeyState state, std::uint32_t op) const {
  std::uint32_t read_return = kNil;
  for (std::uint32_t node = entries_[kHead].next; node != kNil; node = entries_[node].next) {
    if (!entries_[node].is_call && model_[entries_[node].op].kind == OpKind::get) {
      read_return = node;
      break;
    }
  }
  if (read_return == kNil) return true;
  const std::string_view read = ops_[entries_[read_return].op]->output;
  if (read.starts_with(states_.view(value_id(state)))) return true;
  for (std::uint32_t node = entries_[kHead].next; node != read_return;
       node = entries_[node].next) {
    const Entry& e = entries_[node];
    if (e.is_call && e.op != op && may_restart_read(e.op, read)) return true;
  }
  return false;
}

// Could `op` leave a value that later appends grow into `read`?
bool KeySearch::may_restart_read(std::uint32_t op, std::string_view read) const {
  switch (model_[op].kind) {
    case OpKind::put:
    case OpKind::cas: return read.starts_with(states_.view(model_[op].written));
    case OpKind::del: return true;  // to "", a prefix of everything
    case OpKind::append:
    case OpKind::get: return false;
  }
  return false;
}

void KeySearch::note_progress() {
  if (frames_.size() <= best_order_.size()) return;
  best_order_.clear();
  for (const Frame& f : frames_) best_order_.push_back(f.op);
  best_state_ = state_;
}

KeySearch::Outcome KeySearch::run() {
  std::uint64_t iterations = 0;
  std::uint32_t node = entries_[kHead].next;
  while (known_left_ > 0) {
    if ((iterations++ & 0x3ff) == 0 && Clock::now() >= deadline_) return Outcome::timed_out;
    // Only the returns of ok ops stop the walk, and all of them come before
    // any end of the list, so node cannot be kNil while known_left_ > 0.
    assert(node != kNil);
    const Entry& entry = entries_[node];
    if (entry.is_call) {
      const std::uint32_t op = entry.op;
      const std::optional<KeyState> next_state = step(state_, op);
      if (next_state && (*next_state == state_ || fits_next_read(*next_state, op))) {
        flip(op);
        if (remember(*next_state)) {
          frames_.push_back({op, state_});
          state_ = *next_state;
          if (is_known(op)) --known_left_;
          lift(op);
          note_progress();
          node = entries_[kHead].next;
          continue;
        }
        flip(op);
      }
      node = entry.next;
      continue;
    }
    // A return whose op is still in the list: that op had to take effect by
    // now and no placement of it worked. Undo the latest choice.
    if (frames_.empty()) return Outcome::not_linearizable;
    const Frame frame = frames_.back();
    frames_.pop_back();
    state_ = frame.state_before;
    flip(frame.op);
    if (is_known(frame.op)) ++known_left_;
    unlift(frame.op);
    node = entries_[call_node_[frame.op]].next;
  }
  return Outcome::linearizable;
}

// Why `op` cannot follow the longest prefix, in the terms of the search
// (real time, step(), fits_next_read()), recomputed from the ops since the
// search has moved on.
std::string KeySearch::why_not_next(std::size_t op, const std::vector<bool>& placed,
                                    std::optional<std::size_t> next_read) const {
  for (std::size_t i = 0; i < known_ops_; ++i) {
    if (!placed[i] && i != op && ops_[i]->return_ns < ops_[op]->invoke_ns) {
      return "must follow client " + std::to_string(ops_[i]->client) + "'s " + ops_[i]->op +
             " [return " + std::to_string(ops_[i]->return_ns) + "], which returned before";
    }
  }
  const auto o = static_cast<std::uint32_t>(op);
  if (std::string why = misfit(o, best_state_); !why.empty()) return why;
  const std::optional<std::string> next_value = value_after(o, best_state_);
  if (next_value && next_read && *next_read != op) {
    const HistoryOp& read = *ops_[*next_read];
    bool restart_may_intervene = false;
    for (std::size_t i = 0; i < ops_.size(); ++i) {
      restart_may_intervene =
          restart_may_intervene ||
          (!placed[i] && i != op && ops_[i]->invoke_ns <= read.return_ns &&
           may_restart_read(static_cast<std::uint32_t>(i), read.output));
    }
    if (!restart_may_intervene && !std::string_view(read.output).starts_with(*next_value)) {
      return "would make the value " + quoted(*next_value) +
             ", but no put or delete that could come before client " +
             std::to_string(read.client) + "'s get [return " + std::to_string(read.return_ns) +
             "] starts what it read, " + quoted(read.output);
    }
  }
  return "fits here, but no order of the ops after it does";
}

// Why ok op `op` cannot run from `state`, as step() sees it; empty when it can.
std::string KeySearch::misfit(std::uint32_t op, KeyState state) const {
  if (!is_known(op)) return {};
  const HistoryOp& h = *ops_[op];
  const std::string_view value = states_.view(value_id(state));
  switch (model_[op].kind) {
    case OpKind::get:
      if (h.output != value) return "reads " + quoted(h.output) + ", not " + quoted(value);
      return {};
    case OpKind::del:
      if ((h.output == "1") == is_present(state)) return {};
      return "deleted " + h.output + " keys, but the key is " +
             (is_present(state) ? "present" : "absent");
    case OpKind::cas:
      if (h.succeeded && value != h.expected) {
        return "succeeded, but the value is " + quoted(value) + ", not " + quoted(h.expected);
      }
      if (!h.succeeded && value == h.expected) {
        return "failed, but the value is the expected " + quoted(value);
      }
      if (!h.succeeded && h.output != value) {
        return "failed reading " + quoted(h.output) + ", but the value is " + quoted(value);
      }
      return {};
    case OpKind::put:
    case OpKind::append: return {};
  }
  return {};
}

// The value `op` leaves from `state`, or none when it leaves it unchanged.
std::optional<std::string> KeySearch::value_after(std::uint32_t op, KeyState state) const {
  const HistoryOp& h = *ops_[op];
  const std::string_view value = states_.view(value_id(state));
  switch (model_[op].kind) {
    case OpKind::put: return h.value;
    case OpKind::append: return std::string(value) + h.value;
    case OpKind::del: return std::string();
    case OpKind::cas:
      if (value == h.expected) return h.value;
      return std::nullopt;
    case OpKind::get: return std::nullopt;
  }
  return std::nullopt;
}

std::string KeySearch::explain(const std::string& key) const {
  std::string out = "key " + quoted(key) + ": no order of its " + std::to_string(ops_.size()) +
                    " ops fits both real time and the store's semantics.\n";
  out += "Longest linearizable prefix: " + std::to_string(best_order_.size()) + " ops";
  if (best_order_.size() > kShownPrefixOps) {
    out += ", the last " + std::to_string(kShownPrefixOps) + " of them";
  }
  out += ":\n";
  const std::size_t first = best_order_.size() - std::min(best_order_.size(), kShownPrefixOps);
  for (std::size_t i = first; i < best_order_.size(); ++i) {
    out += "  " + describe(*ops_[best_order_[i]]) + "\n";
  }
  out += "after which the value is " + quoted(states_.view(value_id(best_state_))) +
         (is_present(best_state_) ? "" : " (absent)") + ".\n";

  // Which op forced the search back: the earliest-returning ok op not in the
  // prefix. Every op invoked before that return was a candidate to come next,
  // and so is the first pending read, which fits_next_read() consulted.
  std::vector<bool> placed(ops_.size(), false);
  for (const std::uint32_t op : best_order_) placed[op] = true;
  std::int64_t first_return = std::numeric_limits<std::int64_t>::max();
  std::optional<std::size_t> next_read;
  for (std::size_t i = 0; i < known_ops_; ++i) {
    if (placed[i]) continue;
    first_return = std::min(first_return, ops_[i]->return_ns);
    if (model_[i].kind == OpKind::get &&
        (!next_read || ops_[i]->return_ns < ops_[*next_read]->return_ns)) {
      next_read = i;
    }
  }
  std::vector<std::size_t> candidates;
  for (std::size_t i = 0; i < ops_.size(); ++i) {
    if (!placed[i] && (ops_[i]->invoke_ns <= first_return || i == next_read)) {
      candidates.push_back(i);
    }
  }
  std::sort(candidates.begin(), candidates.end(), [this](std::size_t a, std::size_t b) {
    return ops_[a]->invoke_ns < ops_[b]->invoke_ns;
  });
  out += "None of these can come next";
  if (candidates.size() > kShownCandidates) {
    out += " (first " + std::to_string(kShownCandidates) + " of " +
           std::to_string(candidates.size()) + ")";
  }
  out += ":\n";
  for (std::size_t i = 0; i < candidates.size() && i < kShownCandidates; ++i) {
    out += "  " + describe(*ops_[candidates[i]]) + "\n    " +
           why_not_next(candidates[i], placed, next_read) + "\n";
  }
  return out;
}

// Drops the unknown puts and appends of one key that no ok op observed, and
// says how many. Such a write either never took effect or was overwritten
// unseen: while it governs the value (from its step to the next put, delete
// or winning cas) the value contains its bytes, so every get, failed cas and
// winning cas's compare in that span would contain them too. Linearizing it
// or not then changes no ok op's outcome, except a delete's count (it makes
// an absent key present), so keys with ok deletes keep theirs. Left in, each
// such write stays a candidate at every step to the end of the history and
// doubles the states the memo must tell apart after every backtrack: a
// nemesis history with 17 of them on one key of 3,200 ops did not finish in
// 300 s.
std::size_t drop_unobserved_unknown_writes(std::vector<const HistoryOp*>& ops) {
  const bool any_ok_delete = std::any_of(ops.begin(), ops.end(), [](const HistoryOp* op) {
    return op->outcome == HistoryOutcome::ok && op->op == "delete";
  });
  if (any_ok_delete) return 0;
  // Every byte an ok op saw of the value, one string per op.
  std::vector<std::string_view> seen;
  for (const HistoryOp* op : ops) {
    if (op->outcome != HistoryOutcome::ok) continue;
    if (op->op == "get" || (op->op == "cas" && !op->succeeded)) seen.emplace_back(op->output);
    if (op->op == "cas") seen.emplace_back(op->expected);
  }
  const auto observed = [&seen](std::string_view value) {
    return std::any_of(seen.begin(), seen.end(), [value](std::string_view s) {
      return s.find(value) != std::string_view::npos;
    });
  };
  const auto before = ops.size();
  std::erase_if(ops, [&observed](const HistoryOp* op) {
    return op->outcome == HistoryOutcome::unknown && (op->op == "put" || op->op == "append") &&
           !op->value.empty() && !observed(op->value);
  });
  return before - ops.size();
}

}  // namespace

std::string describe(const HistoryOp& op) {
  std::string out = "client " + std::to_string(op.client) + " " + op.op + "(" + quoted(op.key);
  if (op.op == "cas") out += ", " + quoted(op.expected) + " -> " + quoted(op.value);
  if (op.op == "put" || op.op == "append") out += ", " + quoted(op.value);
  out += ")";
  if (op.outcome == HistoryOutcome::unknown) {
    return out + " unknown [invoke " + std::to_string(op.invoke_ns) + ", never returned]";
  }
  if (op.op == "get" || op.op == "delete") out += " -> " + quoted(op.output);
  if (op.op == "cas") {
    out += op.succeeded ? " -> succeeded" : " -> failed, read " + quoted(op.output);
  }
  return out + " ok [invoke " + std::to_string(op.invoke_ns) + ", return " +
         std::to_string(op.return_ns) + "]";
}

LinearizabilityResult check_linearizable(const std::vector<HistoryOp>& ops,
                                         std::chrono::milliseconds budget) {
  const Clock::time_point deadline = Clock::now() + budget;
  LinearizabilityResult result;

  // std::map: keys are checked, and the first failure reported, in byte
  // order, so the same history always gives the same report.
  std::map<std::string, std::vector<const HistoryOp*>> by_key;
  for (const HistoryOp& op : ops) {
    std::vector<const HistoryOp*>& key_ops = by_key[op.key];
    const std::optional<OpKind> kind = kind_of(op.op);
    std::string invalid;
    if (!kind) {
      invalid = "unknown op name " + quoted(op.op);
    } else if (op.outcome == HistoryOutcome::ok && op.return_ns < op.invoke_ns) {
      invalid = "returned before it was invoked";
    } else if (*kind == OpKind::del && op.outcome == HistoryOutcome::ok && op.output != "0" &&
               op.output != "1") {
      invalid = "a delete of one key deletes \"0\" or \"1\" keys";
    }
    if (!invalid.empty()) {
      result.verdict = LinearizabilityVerdict::invalid_history;
      result.key = op.key;
      result.explanation = describe(op) + ": " + invalid;
      return result;
    }
    // An unknown get changed nothing and its output means nothing.
    if (*kind == OpKind::get && op.outcome == HistoryOutcome::unknown) continue;
    key_ops.push_back(&op);
  }
  result.keys = by_key.size();

  for (auto& [key, key_ops] : by_key) {
    result.unobserved_writes_dropped += drop_unobserved_unknown_writes(key_ops);
    result.ops_checked += key_ops.size();
    KeySearch search(std::move(key_ops), deadline);
    switch (search.run()) {
      case KeySearch::Outcome::linearizable: break;
      case KeySearch::Outcome::not_linearizable:
        result.verdict = LinearizabilityVerdict::not_linearizable;
        result.key = key;
        result.explanation = search.explain(key);
        return result;
      case KeySearch::Outcome::timed_out:
        result.verdict = LinearizabilityVerdict::timed_out;
        result.key = key;
        result.explanation = "the budget of " + std::to_string(budget.count()) +
                             " ms ran out while checking key " + quoted(key);
        return result;
    }
  }
  return result;
}

}  // namespace kvpaxos
