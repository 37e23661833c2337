#include "cmd/txn_grammar.hpp"

#include <cassert>
#include <cctype>
#include <charconv>
#include <optional>

#include "messages/codec.hpp"
#include "messages/kv_op.hpp"
#include "messages/result.hpp"

namespace kvpaxos {

std::string range_end_of(const std::string& key, const KeySpan& span) {
  assert(static_cast<int>(span.prefix) + static_cast<int>(span.from_key) + !span.to.empty() <= 1);
  if (span.prefix) return prefix_end(key);
  if (span.from_key) return std::string("\0", 1);
  return span.to;
}

std::string TxnSyntaxError::to_string() const {
  return "line " + std::to_string(line) + ": " + message;
}

namespace {

bool is_space(char c) { return c == ' ' || c == '\t' || c == '\r'; }

int hex_digit(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

void append_utf8(std::string& out, std::uint32_t cp) {
  if (cp < 0x80) {
    out += static_cast<char>(cp);
  } else if (cp < 0x800) {
    out += static_cast<char>(0xc0 | (cp >> 6));
    out += static_cast<char>(0x80 | (cp & 0x3f));
  } else {
    out += static_cast<char>(0xe0 | (cp >> 12));
    out += static_cast<char>(0x80 | ((cp >> 6) & 0x3f));
    out += static_cast<char>(0x80 | (cp & 0x3f));
  }
}

// The value of `digits` hex digits at text[at], or nullopt.
std::optional<std::uint32_t> hex_at(std::string_view text, std::size_t at, int digits) {
  if (at + digits > text.size()) return std::nullopt;
  std::uint32_t v = 0;
  for (int i = 0; i < digits; ++i) {
    const int d = hex_digit(text[at + i]);
    if (d < 0) return std::nullopt;
    v = v * 16 + static_cast<std::uint32_t>(d);
  }
  return v;
}

char simple_escape(char c) {
  switch (c) {
    case '"': return '"';
    case '\\': return '\\';
    case '\'': return '\'';
    case 'n': return '\n';
    case 't': return '\t';
    case 'r': return '\r';
    case 'a': return '\a';
    case 'b': return '\b';
    case 'f': return '\f';
    case 'v': return '\v';
    default: return 0;
  }
}

// A line read left to right: words, quoted strings and punctuation.
class LineCursor {
 public:
  explicit LineCursor(std::string_view line) : line_(line) {}

  bool at_end() {
    skip_spaces();
    return pos_ == line_.size();
  }
  bool consume(std::string_view token) {
    skip_spaces();
    if (line_.substr(pos_, token.size()) != token) return false;
    pos_ += token.size();
    return true;
  }
  // Letters, e.g. a compare's target.
  std::string_view letters() {
    return run_of([](char c) { return std::isalpha(static_cast<unsigned char>(c)) != 0; });
  }
  // A compare's operator, or what stands in its place.
  std::string_view operator_chars() {
    return run_of([](char c) { return c == '=' || c == '!' || c == '<' || c == '>'; });
  }
  // The rest of the current word, unquoted: a bare word, "escaped" or 'raw'.
  Result<std::string> word() {
    skip_spaces();
    assert(pos_ < line_.size());
    if (line_[pos_] == '"') return double_quoted();
    if (line_[pos_] == '\'') return single_quoted();
    const std::size_t start = pos_;
    while (pos_ < line_.size() && !is_space(line_[pos_])) ++pos_;
    return std::string(line_.substr(start, pos_ - start));
  }
  // A "double-quoted string" at the cursor, its escapes decoded.
  Result<std::string> double_quoted() {
    skip_spaces();
    if (pos_ == line_.size() || line_[pos_] != '"') return Error{"a \"double-quoted\" string"};
    std::string out;
    for (++pos_; pos_ < line_.size(); ++pos_) {
      const char c = line_[pos_];
      if (c == '"') {
        ++pos_;
        return out;
      }
      if (c != '\\') {
        out += c;
        continue;
      }
      if (std::string why = escape(out); !why.empty()) return Error{why};
    }
    return Error{"a closing \" (the string is not terminated)"};
  }

 private:
  void skip_spaces() {
    while (pos_ < line_.size() && is_space(line_[pos_])) ++pos_;
  }
  template <typename Pred>
  std::string_view run_of(Pred in_run) {
    skip_spaces();
    const std::size_t start = pos_;
    while (pos_ < line_.size() && in_run(line_[pos_])) ++pos_;
    return line_.substr(start, pos_ - start);
  }
  Result<std::string> single_quoted() {
    const std::size_t close = line_.find('\'', pos_ + 1);
    if (close == std::string_view::npos) return Error{"a closing ' (the string is not terminated)"};
    std::string out(line_.substr(pos_ + 1, close - pos_ - 1));
    pos_ = close + 1;
    return out;
  }
  // Decodes the escape at the backslash at pos_ into `out`, leaving pos_ on
  // its last character; what was expected when it is not one.
  std::string escape(std::string& out) {
    if (pos_ + 1 == line_.size()) return "an escaped character after the final \\";
    const char kind = line_[++pos_];
    if (const char c = simple_escape(kind); c != 0) {
      out += c;
      return {};
    }
    const int digits = kind == 'x' ? 2 : kind == 'u' ? 4 : 0;
    const std::optional<std::uint32_t> code =
        digits == 0 ? std::nullopt : hex_at(line_, pos_ + 1, digits);
    if (!code) {
      return std::string("a known escape (\\\" \\\\ \\n \\t \\r \\xHH \\uHHHH ...), not \\") + kind;
    }
    if (kind == 'x') out += static_cast<char>(*code);
    else append_utf8(out, *code);
    pos_ += static_cast<std::size_t>(digits);
    return {};
  }

  std::string_view line_;
  std::size_t pos_ = 0;
};

std::optional<std::uint64_t> parse_number(std::string_view text) {
  std::uint64_t n = 0;
  const auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), n);
  if (ec != std::errc() || end != text.data() + text.size() || text.empty()) return std::nullopt;
  return n;
}

std::optional<CompareTarget> compare_target(std::string_view name) {
  if (name == "value" || name == "val") return CompareTarget::value;
  if (name == "version" || name == "ver") return CompareTarget::version;
  if (name == "create" || name == "c") return CompareTarget::create_revision;
  if (name == "mod" || name == "m") return CompareTarget::mod_revision;
  return std::nullopt;
}

std::optional<CompareOp> compare_op(std::string_view token) {
  if (token == "=") return CompareOp::equal;
  if (token == "!=") return CompareOp::not_equal;
  if (token == "<") return CompareOp::less;
  if (token == ">") return CompareOp::greater;
  return std::nullopt;
}

// TARGET("KEY") OP "VALUE"
Result<Compare> parse_compare(std::string_view line) {
  LineCursor in(line);
  const std::string_view name = in.letters();
  const std::optional<CompareTarget> target = compare_target(name);
  if (!target) {
    return Error{"a compare like version(\"k\") = \"0\": its target is value, version, create or "
                 "mod, not '" + std::string(name) + "'"};
  }
  Compare c{.target = *target};
  if (!in.consume("(")) return Error{"( after " + std::string(name)};
  Result<std::string> key = in.double_quoted();
  if (!key.ok()) return Error{key.error() + " as the key in " + std::string(name) + "(...)"};
  c.key = std::move(key.value());
  if (!in.consume(")")) return Error{") after the key"};
  const std::string_view token = in.operator_chars();
  const std::optional<CompareOp> op = compare_op(token);
  if (!op) {
    return Error{"an operator (=, !=, <, >) after " + std::string(name) + "(...), not '" +
                 std::string(token) + "'"};
  }
  c.op = *op;
  Result<std::string> value = in.double_quoted();
  if (!value.ok()) return Error{value.error() + " as the value to compare with"};
  if (!in.at_end()) return Error{"the end of the line after the compare's value"};
  if (c.target == CompareTarget::value) {
    c.value = std::move(value.value());
    return c;
  }
  const std::optional<std::uint64_t> number = parse_number(value.value());
  if (!number) {
    return Error{"a whole number from 0 up to compare " + std::string(name) + " with, not \"" +
                 value.value() + "\""};
  }
  c.number = *number;
  return c;
}

Result<std::vector<std::string>> split_words(std::string_view line) {
  LineCursor in(line);
  std::vector<std::string> words;
  while (!in.at_end()) {
    Result<std::string> w = in.word();
    if (!w.ok()) return Error{w.error()};
    words.push_back(std::move(w.value()));
  }
  return words;
}

// The flags of get and del after the key: words[i] on. Sets `op`'s
// range_end, limit and flags; `is_get` allows the read-only ones.
std::string parse_op_flags(const std::vector<std::string>& words, bool is_get, RequestOp& op) {
  KeySpan span;
  int spans = 0;
  for (std::size_t i = 2; i < words.size(); ++i) {
    const std::string& w = words[i];
    const bool takes_arg = w == "--to" || (is_get && w == "--limit");
    if (takes_arg && i + 1 == words.size()) return "a value after " + w;
    if (w == "--prefix") {
      span.prefix = true;
      ++spans;
    } else if (w == "--from-key") {
      span.from_key = true;
      ++spans;
    } else if (w == "--to") {
      span.to = words[++i];
      if (span.to.empty()) return "a non-empty END after --to";
      ++spans;
    } else if (is_get && w == "--limit") {
      const std::optional<std::uint64_t> limit = parse_number(words[++i]);
      if (!limit) return "a whole number after --limit, not '" + words[i] + "'";
      op.limit = *limit;
    } else if (is_get && (w == "--keys-only" || w == "--count-only")) {
      op.flags |= w == "--keys-only" ? kRangeKeysOnly : kRangeCountOnly;
    } else {
      return is_get ? "--prefix, --from-key, --to END, --limit N, --keys-only or --count-only, "
                      "not '" + w + "'"
                    : "--prefix, --from-key or --to END, not '" + w + "'";
    }
  }
  if (spans > 1) return "at most one of --prefix, --from-key and --to";
  if (op.flags == (kRangeKeysOnly | kRangeCountOnly)) {
    return "--keys-only or --count-only, not both";
  }
  op.range_end = range_end_of(op.key, span);
  return {};
}

Result<RequestOp> parse_op(std::string_view line) {
  Result<std::vector<std::string>> split = split_words(line);
  if (!split.ok()) return Error{split.error()};
  const std::vector<std::string>& words = split.value();
  assert(!words.empty());
  const std::string& verb = words[0];
  if (verb == "put" || verb == "append") {
    if (words.size() != 3) {
      return Error{verb + " KEY VALUE (quote a value with spaces), not " +
                   std::to_string(words.size() - 1) + " words after " + verb};
    }
    return RequestOp{.op = verb == "put" ? OpKind::put : OpKind::append,
                     .key = words[1],
                     .value = words[2]};
  }
  if (verb != "get" && verb != "del") {
    return Error{"an op: put, append, get or del, not '" + verb + "'"};
  }
  if (words.size() < 2 || words[1].rfind("--", 0) == 0) {
    return Error{"a KEY after " + verb + ", then its flags"};
  }
  RequestOp op{.op = verb == "get" ? OpKind::range : OpKind::delete_range, .key = words[1]};
  if (std::string why = parse_op_flags(words, verb == "get", op); !why.empty()) {
    return Error{why};
  }
  return op;
}

bool is_blank(std::string_view line) {
  for (const char c : line) {
    if (!is_space(c)) return false;
  }
  return true;
}

// The sections of the input, in order; a blank line ends each.
enum class Section { compares, success, failure, done };

// Adds one non-blank line to its section; what was expected when it does
// not parse or does not fit.
std::string add_line(std::string_view line, Section section, TxnSpec& txn) {
  if (section == Section::done) {
    return "the end of the input: a transaction has three sections (compares, success ops, "
           "failure ops), each ended by a blank line";
  }
  if (section == Section::compares) {
    if (txn.compares.size() == kMaxTxnCompares) {
      return "at most " + std::to_string(kMaxTxnCompares) + " compares";
    }
    Result<Compare> c = parse_compare(line);
    if (!c.ok()) return c.error();
    txn.compares.push_back(std::move(c.value()));
    return {};
  }
  std::vector<RequestOp>& ops = section == Section::success ? txn.success : txn.failure;
  if (ops.size() == kMaxTxnOps) {
    return "at most " + std::to_string(kMaxTxnOps) + " ops in a branch";
  }
  Result<RequestOp> op = parse_op(line);
  if (!op.ok()) return op.error();
  ops.push_back(std::move(op.value()));
  return {};
}

}  // namespace

TxnParse parse_txn(std::string_view text) {
  TxnSpec txn;
  Section section = Section::compares;
  std::size_t line_number = 0;
  while (!text.empty()) {
    const std::size_t newline = text.find('\n');
    const std::string_view line = text.substr(0, newline);
    text = newline == std::string_view::npos ? std::string_view() : text.substr(newline + 1);
    ++line_number;
    if (is_blank(line)) {
      if (section != Section::done) section = static_cast<Section>(static_cast<int>(section) + 1);
      continue;
    }
    if (std::string why = add_line(line, section, txn); !why.empty()) {
      return TxnSyntaxError{line_number, "expected " + why};
    }
  }
  return txn;
}

}  // namespace kvpaxos
