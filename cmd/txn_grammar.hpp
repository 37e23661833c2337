// The text form of a transaction that `kvctl txn` reads from stdin: etcdctl
// v3's non-interactive txn grammar, parsed into the Compare and RequestOp
// values of a txn request. Pure functions of text; nothing here sends.
//
//   compares, one a line:     TARGET("KEY") OP "VALUE"
//     TARGET  value | val, version | ver, create | c, mod | m
//     OP      =  !=  <  >
//     version, create and mod compare with a decimal number, quoted as etcd
//     has it: version("k") = "0" holds while k does not exist.
//   a blank line
//   success ops, one a line:
//     put KEY VALUE | append KEY VALUE
//     get KEY [--prefix | --from-key | --to END] [--limit N] [--keys-only | --count-only]
//     del KEY [--prefix | --from-key | --to END]
//   a blank line
//   failure ops, as the success ops
//
// A line's words are split at white space; "double quotes" keep spaces and
// take backslash escapes (\" \\ \' \n \t \r \a \b \f \v \xHH \uHHHH, as Go's
// %q, which etcdctl uses), 'single quotes' take none. A compare's key and
// value are always double-quoted. A section the input ends in is the last;
// the ones after it are empty. Lines may end in \r\n.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>
#include <variant>
#include <vector>

#include "messages/messages.hpp"

namespace kvpaxos {

// Which keys a get or del names, as its flags say: KEY alone, every key with
// prefix KEY, every key from KEY on, or the keys in [KEY, to).
struct KeySpan {
  bool prefix = false;
  bool from_key = false;
  std::string to;
};
// The range_end of the request (ClientRequest's meaning). At most one of
// prefix, from_key and a non-empty `to` is set (callers check).
std::string range_end_of(const std::string& key, const KeySpan& span);

struct TxnSpec {
  std::vector<Compare> compares;
  std::vector<RequestOp> success;
  std::vector<RequestOp> failure;
};

// Where the text is not a transaction: the 1-based line and what that line
// should have held, e.g. line 2, "an operator (=, !=, <, >) after the key".
struct TxnSyntaxError {
  std::size_t line = 0;
  std::string message;
  std::string to_string() const;  // "line 2: expected ..."
};

using TxnParse = std::variant<TxnSpec, TxnSyntaxError>;

// Parses a whole transaction. A get reads as a range op (its reply carries
// the keys and their revisions, as etcd's); a del as delete_range. The
// limits of the wire (kMaxTxnCompares, kMaxTxnOps) are checked here too, so
// that an oversized transaction is a syntax error rather than a refusal.
TxnParse parse_txn(std::string_view text);

}  // namespace kvpaxos
