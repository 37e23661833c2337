// History: what the clients of a test asked for and what they were told, kept
// so that a checker can later decide whether the cluster behaved like one
// key/value store (test/history/linearizability.hpp).
//
// A history is a list of HistoryOp. Its files are JSON Lines, one op per line:
//   {"client":3,"op":"append","key":"k","value":"x","output":"",
//    "invoke":123,"return":456,"outcome":"ok"}
// A cas line has two members more, "expected" (a string) and "succeeded"
// (true or false), which other ops' lines do not have:
//   {"client":3,"op":"cas","key":"k","value":"new","output":"old",
//    "invoke":123,"return":456,"outcome":"ok","expected":"x","succeeded":false}
// Keys and values are arbitrary bytes, not text: the writer escapes '"', '\'
// and every byte outside 0x20..0x7e as \u00XX of the byte value, and the
// reader maps \u0000..\u00ff back to that single byte, so a file round-trips
// byte for byte. (A \u escape above 0x00ff is rejected rather than guessed
// at; we never write one.)
//
// HistoryRecorder collects ops from many client threads while a test runs.
#pragma once

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <mutex>
#include <string>
#include <string_view>
#include <vector>

#include "messages/result.hpp"

namespace kvpaxos {

// How a client call ended, as far as the history is concerned. A call the
// cluster refused outright executed nothing and is best left out of the
// history; one that timed out is `unknown`: it may have taken effect at any
// moment after its invocation, or never.
enum class HistoryOutcome { ok, unknown };

// The ops, each on the one key `key` (absent until written; a get of an
// absent key returns ""):
//   put(value), append(value): write it; output "";
//   get: output the value read;
//   delete: make the key absent; output the keys deleted, "0" or "1";
//   cas: compare-and-swap, a transaction "if the value is `expected` (an
//     absent key's is ""), put `value`, else get": `succeeded` says which
//     branch ran, and a failed one outputs the value it read.
struct HistoryOp {
  std::uint64_t client = 0;
  std::string op;      // "put" | "append" | "get" | "delete" | "cas"
  std::string key;
  std::string value;   // argument of put / append / cas; empty for get and delete
  std::string output;  // what get, delete or a failed cas returned; empty otherwise
  std::int64_t invoke_ns = 0;
  // When the answer arrived. Meaningless (we write -1) when the outcome is
  // unknown: the checker treats such an op as never returning.
  std::int64_t return_ns = -1;
  HistoryOutcome outcome = HistoryOutcome::unknown;
  std::string expected;    // cas: the value its compare asks for
  bool succeeded = false;  // cas: the compare held and `value` was put

  bool operator==(const HistoryOp&) const = default;
};

const char* to_string(HistoryOutcome outcome);

// One op as one JSON object, without the trailing newline.
std::string to_json_line(const HistoryOp& op);

// Parses one line written by to_json_line (keys in any order, all required,
// no others; "expected" and "succeeded" in cas lines only). The error does
// not name a line; parse_jsonl adds that.
Result<HistoryOp> parse_json_line(std::string_view line);

// A whole JSON Lines document. Blank lines are skipped; the first malformed
// line fails the whole parse with an error "line N: ...".
Result<std::vector<HistoryOp>> parse_jsonl(std::string_view text);

// Reads / writes a history file. On failure the error names the path.
Result<std::vector<HistoryOp>> read_jsonl(const std::string& path);
bool write_jsonl(const std::string& path, const std::vector<HistoryOp>& ops, std::string* error);

// HistoryRecorder: the shared notebook of the clients of one test.
//
// A client calls invoke() just before sending a request and complete_ok() or
// complete_unknown() when its call ends. Any thread may call any method; one
// mutex guards the op list. Times are nanoseconds since the recorder was
// created on the steady clock, unless the caller passes its own (a simulator
// with virtual time does); do not mix the two in one recorder.
// An op that is never completed stays `unknown`, which is exactly what a
// client that died mid-call knows about it.
class HistoryRecorder {
 public:
  HistoryRecorder();

  // Records the start of a call and returns its index for complete_*.
  std::size_t invoke(std::uint64_t client, std::string op, std::string key, std::string value);
  std::size_t invoke(std::uint64_t client, std::string op, std::string key, std::string value,
                     std::int64_t time_ns);
  // The call `op` describes, at its invoke_ns: for ops with more arguments
  // (cas). Its outcome and return are reset to unknown.
  std::size_t invoke(HistoryOp op);

  // The call got its answer; `output` is get's result (empty for writes).
  // `index` must come from invoke() on this recorder.
  void complete_ok(std::size_t index, std::string output);
  void complete_ok(std::size_t index, std::string output, std::int64_t time_ns);
  // A cas's answer: which branch ran, and a failed one's read.
  void complete_ok(std::size_t index, std::string output, std::int64_t time_ns, bool succeeded);

  // The call gave up without an answer.
  void complete_unknown(std::size_t index);

  // A snapshot of every op recorded so far, in invocation order.
  std::vector<HistoryOp> ops() const;

  bool write_jsonl(const std::string& path, std::string* error) const;

 private:
  std::int64_t now_ns() const;

  const std::chrono::steady_clock::time_point start_;
  mutable std::mutex mutex_;
  std::vector<HistoryOp> ops_;  // guarded by mutex_
};

}  // namespace kvpaxos
