// A snapshot as a restarting node reads it: the file's framing
// (checked_file_payload, as read_checked_file) and Applier::restore. The
// input is tried as a whole file and as a bare payload (what a file with a
// good checksum, or a transfer, hands to restore).
//
// Invariants: neither throws; a refused snapshot leaves the applier's state
// as it was; an accepted one is a state that snapshots and restores again to
// the same map, sessions and kept replies, and that keeps applying ops
// within its reply budget.
#include "actors/kv/applier.hpp"
#include "actors/storage/segmented_log.hpp"
#include "fuzz_support.hpp"

namespace kvpaxos {
namespace {

constexpr std::size_t kReplyBudgetBytes = 64;

ApplierOptions options() { return ApplierOptions{.retained_reply_bytes = kReplyBudgetBytes}; }

// Some state to be left unchanged by a refused snapshot: keys, sessions, replies.
const std::string& base_snapshot() {
  static const std::string bytes = [] {
    Applier a(0, options());
    Outbox out;
    const std::vector<KvOp> ops = {{false, 1, 1, 0, OpKind::put, "k", "v"},
                                   {false, 2, 1, 0, OpKind::append, "k", "w"},
                                   {false, 1, 2, 1, OpKind::get, "k", ""}};
    for (const KvOp& op : ops) {
      a.handle({0, Actor::learner}, Apply{a.applied_below(), encode_op(op)}, Time{}, out);
    }
    return a.snapshot();
  }();
  return bytes;
}

void require_same_state(const Applier& a, const Applier& b, const char* invariant) {
  fuzz::require(a.data() == b.data() && a.sessions() == b.sessions() &&
                    a.applied_below() == b.applied_below() &&
                    a.retained_replies() == b.retained_replies() &&
                    a.retained_reply_bytes() == b.retained_reply_bytes(),
                invariant);
}

void check_restore(std::string_view payload) {
  Applier a(0, options());
  fuzz::require(a.restore(base_snapshot()).ok(), "the base snapshot restores");
  const std::string before = a.snapshot();
  const Result<bool> restored = a.restore(payload);
  if (!restored.ok()) {
    fuzz::require(!restored.error().empty(), "a refused snapshot says why");
    fuzz::require(a.snapshot() == before, "a refused snapshot leaves the state unchanged");
    return;
  }
  Applier again(0, options());
  fuzz::require(again.restore(a.snapshot()).ok(), "a restored state snapshots and restores");
  require_same_state(a, again, "a restored state round-trips through its snapshot");
  // Replies beyond the budget go once ops apply again (oldest first).
  Outbox out;
  const KvOp op{false, 7, ~std::uint64_t{0}, 0, OpKind::put, "x", "y"};
  a.handle({0, Actor::learner}, Apply{a.applied_below(), encode_op(op)}, Time{}, out);
  fuzz::require(a.retained_replies() <= 1 || a.retained_reply_bytes() <= kReplyBudgetBytes,
                "kept replies stay within their budget");
}

}  // namespace
}  // namespace kvpaxos

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  using namespace kvpaxos;
  const std::string_view bytes = fuzz::view(data, size);
  check_restore(bytes);
  const Result<std::string> file = checked_file_payload(std::string(bytes), "snapshot");
  if (file.ok()) check_restore(file.value());
  return 0;
}
