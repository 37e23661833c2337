// A decided log value, as every applier reads it: decode_entry (one op or a
// batch) and decode_op (one op, as ForwardOps carries them).
//
// Invariants: neither decoder throws; accepted ops are known operations; an
// accepted entry re-encoded (encode_op / encode_batch) decodes to the same
// ops and author; an op decode_op accepts is, encoded, an entry of that op.
#include "fuzz_support.hpp"
#include "messages/kv_op.hpp"

namespace kvpaxos {
namespace {

bool known(const KvOp& op) {
  return op.noop || op.op == OpKind::get || op.op == OpKind::put || op.op == OpKind::append;
}

void check_entry(const LogEntry& entry) {
  std::vector<std::string> encoded;
  for (const KvOp& op : entry.ops) {
    fuzz::require(known(op), "decode_entry accepts known operations only");
    encoded.push_back(encode_op(op));
  }
  const Result<LogEntry> again = entry.author == kNoAuthor && entry.ops.size() == 1
                                     ? decode_entry(encoded[0])
                                     : decode_entry(encode_batch(entry.author, encoded));
  fuzz::require(again.ok(), "a re-encoded entry decodes");
  fuzz::require(again->author == entry.author, "a re-encoded entry keeps its author");
  fuzz::require(again->ops.size() == entry.ops.size(), "a re-encoded entry keeps its ops");
  for (std::size_t i = 0; i < encoded.size(); ++i) {
    fuzz::require(encode_op(again->ops[i]) == encoded[i], "a re-encoded entry's ops are equal");
  }
}

void check_op(const KvOp& op) {
  fuzz::require(known(op), "decode_op accepts known operations only");
  const std::string encoded = encode_op(op);
  const Result<KvOp> again = decode_op(encoded);
  fuzz::require(again.ok() && encode_op(again.value()) == encoded, "an op round-trips");
  const Result<LogEntry> entry = decode_entry(encoded);
  fuzz::require(entry.ok() && entry->ops.size() == 1 && entry->author == kNoAuthor &&
                    encode_op(entry->ops[0]) == encoded,
                "an encoded op is a log entry of that op");
}

}  // namespace
}  // namespace kvpaxos

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  using namespace kvpaxos;
  const std::string_view bytes = fuzz::view(data, size);
  if (const Result<LogEntry> entry = decode_entry(bytes); entry.ok()) check_entry(entry.value());
  if (const Result<KvOp> op = decode_op(bytes); op.ok()) check_op(op.value());
  return 0;
}
