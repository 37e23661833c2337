#include "test/history/history.hpp"

#include <algorithm>
#include <cassert>
#include <cerrno>
#include <cstring>
#include <fstream>
#include <iterator>
#include <limits>
#include <optional>
#include <sstream>
#include <utility>

namespace kvpaxos {

const char* to_string(HistoryOutcome outcome) {
  switch (outcome) {
    case HistoryOutcome::ok: return "ok";
    case HistoryOutcome::unknown: return "unknown";
  }
  return "invalid-outcome";
}

namespace {

constexpr char kHexDigits[] = "0123456789abcdef";

void append_json_string(std::string& out, std::string_view bytes) {
  out += '"';
  for (const char c : bytes) {
    const auto byte = static_cast<unsigned char>(c);
    if (c == '"' || c == '\\') {
      out += '\\';
      out += c;
    } else if (byte < 0x20 || byte >= 0x7f) {
      // Bytes, not code points: \u00XX stands for the byte XX (see header).
      out += "\\u00";
      out += kHexDigits[byte >> 4];
      out += kHexDigits[byte & 0xf];
    } else {
      out += c;
    }
  }
  out += '"';
}

// An integer as written in JSON, before we know which C++ type it must fit.
struct JsonInteger {
  bool negative = false;
  std::uint64_t magnitude = 0;
};

// A recursive-descent reader for one flat object of string and integer
// members: all this format needs, and small enough to check by eye.
class JsonLineReader {
 public:
  explicit JsonLineReader(std::string_view line) : s_(line) {}

  Result<HistoryOp> read_op();

 private:
  Error error_at(const std::string& what) const {
    return Error{"at column " + std::to_string(pos_ + 1) + ": " + what};
  }
  void skip_whitespace() {
    while (pos_ < s_.size() &&
           (s_[pos_] == ' ' || s_[pos_] == '\t' || s_[pos_] == '\r' || s_[pos_] == '\n')) {
      ++pos_;
    }
  }
  bool consume(char c) {
    skip_whitespace();
    if (pos_ < s_.size() && s_[pos_] == c) {
      ++pos_;
      return true;
    }
    return false;
  }
  Result<std::string> read_string();
  Result<JsonInteger> read_integer();
  Result<std::int64_t> read_int64();
  Result<std::uint64_t> read_uint64();
  Result<bool> read_bool();
  std::optional<Error> read_member(const std::string& name, HistoryOp& op);

  std::string_view s_;
  std::size_t pos_ = 0;
};

int hex_value(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

Result<std::string> JsonLineReader::read_string() {
  if (!consume('"')) return error_at("expected '\"'");
  std::string out;
  while (pos_ < s_.size()) {
    const char c = s_[pos_];
    if (c == '"') {
      ++pos_;
      return out;
    }
    if (static_cast<unsigned char>(c) < 0x20) return error_at("raw control byte in a string");
    if (c != '\\') {
      out += c;
      ++pos_;
      continue;
    }
    if (pos_ + 1 >= s_.size()) break;
    const char e = s_[pos_ + 1];
    pos_ += 2;
    switch (e) {
      case '"': out += '"'; break;
      case '\\': out += '\\'; break;
      case '/': out += '/'; break;
      case 'b': out += '\b'; break;
      case 'f': out += '\f'; break;
      case 'n': out += '\n'; break;
      case 'r': out += '\r'; break;
      case 't': out += '\t'; break;
      case 'u': {
        if (pos_ + 4 > s_.size()) return error_at("truncated \\u escape");
        int code = 0;
        for (std::size_t i = 0; i < 4; ++i) {
          const int digit = hex_value(s_[pos_ + i]);
          if (digit < 0) return error_at("bad hex digit in \\u escape");
          code = code * 16 + digit;
        }
        if (code > 0xff) return error_at("\\u escape above \\u00ff (history strings are bytes)");
        out += static_cast<char>(code);
        pos_ += 4;
        break;
      }
      default:
        --pos_;
        return error_at(std::string("unknown escape '\\") + e + "'");
    }
  }
  return error_at("unterminated string");
}

Result<JsonInteger> JsonLineReader::read_integer() {
  skip_whitespace();
  JsonInteger n;
  if (pos_ < s_.size() && s_[pos_] == '-') {
    n.negative = true;
    ++pos_;
  }
  const std::size_t first_digit = pos_;
  while (pos_ < s_.size() && s_[pos_] >= '0' && s_[pos_] <= '9') {
    const auto digit = static_cast<std::uint64_t>(s_[pos_] - '0');
    if (n.magnitude > (std::numeric_limits<std::uint64_t>::max() - digit) / 10) {
      return error_at("integer out of range");
    }
    n.magnitude = n.magnitude * 10 + digit;
    ++pos_;
  }
  if (pos_ == first_digit) return error_at("expected an integer");
  if (pos_ - first_digit > 1 && s_[first_digit] == '0') return error_at("leading zero");
  if (pos_ < s_.size() && (s_[pos_] == '.' || s_[pos_] == 'e' || s_[pos_] == 'E')) {
    return error_at("expected an integer, not a fraction");
  }
  return n;
}

Result<std::int64_t> JsonLineReader::read_int64() {
  auto n = read_integer();
  if (!n) return Error{n.error()};
  const auto max = static_cast<std::uint64_t>(std::numeric_limits<std::int64_t>::max());
  if (!n->negative) {
    if (n->magnitude > max) return error_at("integer out of range");
    return static_cast<std::int64_t>(n->magnitude);
  }
  if (n->magnitude > max + 1) return error_at("integer out of range");
  // -(max + 1) is representable though +(max + 1) is not: negate in unsigned.
  return static_cast<std::int64_t>(~n->magnitude + 1);
}

Result<std::uint64_t> JsonLineReader::read_uint64() {
  auto n = read_integer();
  if (!n) return Error{n.error()};
  if (n->negative && n->magnitude != 0) return error_at("expected a non-negative integer");
  return n->magnitude;
}

Result<bool> JsonLineReader::read_bool() {
  skip_whitespace();
  for (const bool b : {true, false}) {
    const std::string_view word = b ? "true" : "false";
    if (s_.substr(pos_).starts_with(word)) {
      pos_ += word.size();
      return b;
    }
  }
  return error_at("expected true or false");
}

std::optional<Error> JsonLineReader::read_member(const std::string& name, HistoryOp& op) {
  auto read_into = [this](std::string& field) -> std::optional<Error> {
    auto s = read_string();
    if (!s) return Error{s.error()};
    field = std::move(*s);
    return std::nullopt;
  };
  auto read_time = [this](std::int64_t& field) -> std::optional<Error> {
    auto t = read_int64();
    if (!t) return Error{t.error()};
    field = *t;
    return std::nullopt;
  };
  if (name == "client") {
    auto c = read_uint64();
    if (!c) return Error{c.error()};
    op.client = *c;
    return std::nullopt;
  }
  if (name == "op") return read_into(op.op);
  if (name == "key") return read_into(op.key);
  if (name == "value") return read_into(op.value);
  if (name == "output") return read_into(op.output);
  if (name == "expected") return read_into(op.expected);
  if (name == "succeeded") {
    auto b = read_bool();
    if (!b) return Error{b.error()};
    op.succeeded = *b;
    return std::nullopt;
  }
  if (name == "invoke") return read_time(op.invoke_ns);
  if (name == "return") return read_time(op.return_ns);
  if (name == "outcome") {
    std::string outcome;
    if (auto e = read_into(outcome)) return e;
    if (outcome == "ok") {
      op.outcome = HistoryOutcome::ok;
    } else if (outcome == "unknown") {
      op.outcome = HistoryOutcome::unknown;
    } else {
      return error_at("outcome must be \"ok\" or \"unknown\"");
    }
    return std::nullopt;
  }
  // A misspelt member would otherwise silently take its default.
  return error_at("unknown member \"" + name + "\"");
}

Result<HistoryOp> JsonLineReader::read_op() {
  static const std::vector<std::string> kMembers = {"client", "op",     "key",    "value",
                                                    "output", "invoke", "return", "outcome"};
  HistoryOp op;
  std::vector<std::string> seen;
  if (!consume('{')) return error_at("expected '{'");
  if (!consume('}')) {
    do {
      auto name = read_string();
      if (!name) return Error{name.error()};
      for (const auto& s : seen) {
        if (s == *name) return error_at("duplicate member \"" + *name + "\"");
      }
      if (!consume(':')) return error_at("expected ':'");
      if (auto e = read_member(*name, op)) return *e;
      seen.push_back(std::move(*name));
    } while (consume(','));
    if (!consume('}')) return error_at("expected ',' or '}'");
  }
  skip_whitespace();
  if (pos_ != s_.size()) return error_at("trailing bytes after the object");
  const auto has = [&seen](const std::string& m) {
    return std::find(seen.begin(), seen.end(), m) != seen.end();
  };
  for (const auto& m : kMembers) {
    if (!has(m)) return Error{"missing member \"" + m + "\""};
  }
  if (op.op != "put" && op.op != "append" && op.op != "get" && op.op != "delete" &&
      op.op != "cas") {
    return Error{"op must be \"put\", \"append\", \"get\", \"delete\" or \"cas\", not \"" +
                 op.op + "\""};
  }
  for (const char* m : {"expected", "succeeded"}) {
    const std::string name = m;
    if (op.op == "cas" && !has(name)) return Error{"missing member \"" + name + "\" of a cas"};
    if (op.op != "cas" && has(name)) {
      return Error{"member \"" + name + "\" belongs to cas ops only"};
    }
  }
  if (op.outcome == HistoryOutcome::ok && op.return_ns < op.invoke_ns) {
    return Error{"return " + std::to_string(op.return_ns) + " precedes invoke " +
                 std::to_string(op.invoke_ns)};
  }
  return op;
}

}  // namespace

std::string to_json_line(const HistoryOp& op) {
  std::string out = "{\"client\":" + std::to_string(op.client) + ",\"op\":";
  append_json_string(out, op.op);
  out += ",\"key\":";
  append_json_string(out, op.key);
  out += ",\"value\":";
  append_json_string(out, op.value);
  out += ",\"output\":";
  append_json_string(out, op.output);
  out += ",\"invoke\":" + std::to_string(op.invoke_ns);
  out += ",\"return\":" + std::to_string(op.return_ns);
  out += ",\"outcome\":\"";
  out += to_string(op.outcome);
  out += '"';
  if (op.op == "cas") {
    out += ",\"expected\":";
    append_json_string(out, op.expected);
    out += op.succeeded ? ",\"succeeded\":true" : ",\"succeeded\":false";
  }
  out += '}';
  return out;
}

Result<HistoryOp> parse_json_line(std::string_view line) { return JsonLineReader(line).read_op(); }

Result<std::vector<HistoryOp>> parse_jsonl(std::string_view text) {
  std::vector<HistoryOp> ops;
  std::size_t line_number = 0;
  std::size_t begin = 0;
  while (begin < text.size()) {
    ++line_number;
    std::size_t end = text.find('\n', begin);
    if (end == std::string_view::npos) end = text.size();
    const std::string_view line = text.substr(begin, end - begin);
    begin = end + 1;
    if (line.find_first_not_of(" \t\r") == std::string_view::npos) continue;
    auto op = parse_json_line(line);
    if (!op) return Error{"line " + std::to_string(line_number) + ": " + op.error()};
    ops.push_back(std::move(*op));
  }
  return ops;
}

Result<std::vector<HistoryOp>> read_jsonl(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) return Error{path + ": cannot open: " + std::strerror(errno)};
  const std::string text((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  if (in.bad()) return Error{path + ": read failed"};
  auto ops = parse_jsonl(text);
  if (!ops) return Error{path + ": " + ops.error()};
  return ops;
}

bool write_jsonl(const std::string& path, const std::vector<HistoryOp>& ops, std::string* error) {
  std::ofstream out(path, std::ios::binary | std::ios::trunc);
  if (!out) {
    if (error) *error = path + ": cannot create: " + std::strerror(errno);
    return false;
  }
  for (const auto& op : ops) out << to_json_line(op) << '\n';
  out.close();
  if (!out) {
    if (error) *error = path + ": write failed";
    return false;
  }
  return true;
}

HistoryRecorder::HistoryRecorder() : start_(std::chrono::steady_clock::now()) {}

std::int64_t HistoryRecorder::now_ns() const {
  return std::chrono::duration_cast<std::chrono::nanoseconds>(std::chrono::steady_clock::now() -
                                                              start_)
      .count();
}

std::size_t HistoryRecorder::invoke(std::uint64_t client, std::string op, std::string key,
                                    std::string value) {
  return invoke(client, std::move(op), std::move(key), std::move(value), now_ns());
}

std::size_t HistoryRecorder::invoke(std::uint64_t client, std::string op, std::string key,
                                    std::string value, std::int64_t time_ns) {
  return invoke(HistoryOp{.client = client,
                          .op = std::move(op),
                          .key = std::move(key),
                          .value = std::move(value),
                          .invoke_ns = time_ns});
}

std::size_t HistoryRecorder::invoke(HistoryOp op) {
  op.output.clear();
  op.return_ns = -1;
  op.outcome = HistoryOutcome::unknown;
  op.succeeded = false;
  const std::lock_guard lock(mutex_);
  ops_.push_back(std::move(op));
  return ops_.size() - 1;
}

void HistoryRecorder::complete_ok(std::size_t index, std::string output) {
  complete_ok(index, std::move(output), now_ns());
}

void HistoryRecorder::complete_ok(std::size_t index, std::string output, std::int64_t time_ns) {
  complete_ok(index, std::move(output), time_ns, false);
}

void HistoryRecorder::complete_ok(std::size_t index, std::string output, std::int64_t time_ns,
                                  bool succeeded) {
  const std::lock_guard lock(mutex_);
  assert(index < ops_.size());
  if (index >= ops_.size()) return;
  HistoryOp& op = ops_[index];
  op.output = std::move(output);
  op.return_ns = time_ns;
  op.outcome = HistoryOutcome::ok;
  op.succeeded = succeeded;
}

void HistoryRecorder::complete_unknown(std::size_t index) {
  const std::lock_guard lock(mutex_);
  assert(index < ops_.size());
  if (index >= ops_.size()) return;
  HistoryOp& op = ops_[index];
  op.output.clear();
  op.return_ns = -1;
  op.outcome = HistoryOutcome::unknown;
  op.succeeded = false;
}

std::vector<HistoryOp> HistoryRecorder::ops() const {
  const std::lock_guard lock(mutex_);
  return ops_;
}

bool HistoryRecorder::write_jsonl(const std::string& path, std::string* error) const {
  return kvpaxos::write_jsonl(path, ops(), error);
}

}  // namespace kvpaxos
