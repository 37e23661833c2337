#include "actors/runtime/logger.hpp"

#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <cstdio>
#include <ctime>
#include <mutex>
#include <optional>

namespace kvpaxos::log {
namespace {

std::atomic<int> g_level{static_cast<int>(Level::warn)};
std::atomic<int> g_format{static_cast<int>(Format::text)};
std::mutex g_mu;           // guards g_process_node and the write to stderr
std::string g_process_node;
thread_local std::optional<Source> t_source;

constexpr const char* kMainActor = "main";

const char* text_name(Level l) {
  switch (l) {
    case Level::error: return "ERROR";
    case Level::warn: return "WARN";
    case Level::info: return "INFO";
    case Level::debug: return "DEBUG";
  }
  return "?";
}

const char* json_name(Level l) {
  switch (l) {
    case Level::error: return "error";
    case Level::warn: return "warn";
    case Level::info: return "info";
    case Level::debug: return "debug";
  }
  return "?";
}

// The length of the well-formed UTF-8 sequence at the start of `s`, or of
// its longest prefix that could begin one (at least 1) with `valid` false:
// Unicode's "maximal subpart", each replaced by one U+FFFD (Table 3-7).
std::size_t utf8_sequence(std::string_view s, bool& valid) {
  const auto byte = [&](std::size_t i) { return static_cast<unsigned char>(s[i]); };
  const unsigned char lead = byte(0);
  valid = false;
  if (lead < 0x80) {
    valid = true;
    return 1;
  }
  std::size_t length = 0;
  unsigned char low = 0x80;
  unsigned char high = 0xBF;
  if (lead >= 0xC2 && lead <= 0xDF) {
    length = 2;
  } else if (lead >= 0xE0 && lead <= 0xEF) {
    length = 3;
    if (lead == 0xE0) low = 0xA0;   // no overlong forms
    if (lead == 0xED) high = 0x9F;  // no surrogates
  } else if (lead >= 0xF0 && lead <= 0xF4) {
    length = 4;
    if (lead == 0xF0) low = 0x90;
    if (lead == 0xF4) high = 0x8F;  // nothing above U+10FFFF
  } else {
    return 1;
  }
  for (std::size_t i = 1; i < length; ++i) {
    if (i >= s.size()) return i;
    const unsigned char b = byte(i);
    if (b < (i == 1 ? low : 0x80) || b > (i == 1 ? high : 0xBF)) return i;
  }
  valid = true;
  return length;
}

// Appends `s` with control characters as \u00XX and invalid UTF-8 as
// U+FFFD; with `quote_syntax`, '"' and '\' are escaped too (JSON strings,
// quoted text values).
void append_escaped(std::string& out, std::string_view s, bool quote_syntax) {
  while (!s.empty()) {
    bool valid = false;
    const std::size_t n = utf8_sequence(s, valid);
    const auto c = static_cast<unsigned char>(s[0]);
    if (!valid) {
      out += "\xEF\xBF\xBD";
    } else if (c < 0x20 || c == 0x7F) {
      char escaped[8];
      std::snprintf(escaped, sizeof escaped, "\\u%04x", c);
      out += escaped;
    } else if (quote_syntax && (c == '"' || c == '\\')) {
      out += '\\';
      out += static_cast<char>(c);
    } else {
      out.append(s.substr(0, n));
    }
    s.remove_prefix(n);
  }
}

void append_json_string(std::string& out, std::string_view s) {
  out += '"';
  append_escaped(out, s, /*quote_syntax=*/true);
  out += '"';
}

// A text value is quoted when it would not read as one word.
void append_text_value(std::string& out, const Field& f) {
  const bool plain = !f.value.empty() && f.value.find_first_of(" \"=\\") == std::string::npos;
  if (f.number || plain) {
    append_escaped(out, f.value, /*quote_syntax=*/false);
  } else {
    append_json_string(out, f.value);
  }
}

struct UtcTime {
  std::tm utc{};
  int millis = 0;
};

UtcTime split(std::chrono::system_clock::time_point t) {
  UtcTime c;
  const std::time_t secs = std::chrono::system_clock::to_time_t(t);
  const auto ms = std::chrono::duration_cast<std::chrono::milliseconds>(t.time_since_epoch());
  c.millis = static_cast<int>((ms.count() % 1000 + 1000) % 1000);
  gmtime_r(&secs, &c.utc);
  return c;
}

std::string stamp(const UtcTime& c, const char* pattern) {
  char out[40];
  const std::size_t n = std::strftime(out, sizeof out, pattern, &c.utc);
  char millis[8];
  std::snprintf(millis, sizeof millis, ".%03d", c.millis);
  return std::string(out, n) + millis;
}

std::string text_line(const Entry& e) {
  char level[8];
  std::snprintf(level, sizeof level, "%-5s", text_name(e.level));
  std::string out = stamp(split(e.time), "%H:%M:%S") + " " + level + " ";
  append_escaped(out, e.source.node.empty() ? "-" : e.source.node, false);
  out += ' ';
  append_escaped(out, e.source.actor, false);
  out += ": ";
  append_escaped(out, e.message, false);
  for (const Field& f : e.fields) {
    out += ' ';
    append_escaped(out, f.key, false);
    out += '=';
    append_text_value(out, f);
  }
  out += '\n';
  return out;
}

std::string json_line(const Entry& e) {
  std::string out = "{\"time\":\"" + stamp(split(e.time), "%Y-%m-%dT%H:%M:%S") + "Z\"";
  const auto member = [&out](std::string_view key) {
    out += ',';
    append_json_string(out, key);
    out += ':';
  };
  member("level");
  append_json_string(out, json_name(e.level));
  member("node");
  append_json_string(out, e.source.node);
  member("actor");
  append_json_string(out, e.source.actor);
  member("msg");
  append_json_string(out, e.message);
  for (const Field& f : e.fields) {
    member(f.key);
    if (f.number) {
      out += f.value;
    } else {
      append_json_string(out, f.value);
    }
  }
  out += "}\n";
  return out;
}

// All of `line` to stderr in one write(2) unless the kernel takes less.
void write_stderr(const std::string& line) {
  std::string_view rest = line;
  while (!rest.empty()) {
    const ssize_t n = ::write(STDERR_FILENO, rest.data(), rest.size());
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) return;  // stderr is gone: nowhere to say so
    rest.remove_prefix(static_cast<std::size_t>(n));
  }
}

}  // namespace

void set_level(Level l) { g_level.store(static_cast<int>(l)); }
Level level() { return static_cast<Level>(g_level.load()); }

bool parse_level(std::string_view text, Level& out) {
  if (text == "error") out = Level::error;
  else if (text == "warn") out = Level::warn;
  else if (text == "info") out = Level::info;
  else if (text == "debug") out = Level::debug;
  else return false;
  return true;
}

void set_format(Format f) { g_format.store(static_cast<int>(f)); }
Format format() { return static_cast<Format>(g_format.load()); }

bool parse_format(std::string_view text, Format& out) {
  if (text == "text") out = Format::text;
  else if (text == "json") out = Format::json;
  else return false;
  return true;
}

void set_process_node(std::string node) {
  const std::lock_guard<std::mutex> lock(g_mu);
  g_process_node = std::move(node);
}

ThreadSource::ThreadSource(Source source) : had_previous_(t_source.has_value()) {
  if (had_previous_) previous_ = std::move(*t_source);
  t_source = std::move(source);
}

ThreadSource::~ThreadSource() {
  if (had_previous_) {
    t_source = std::move(previous_);
  } else {
    t_source.reset();
  }
}

Source thread_source() {
  Source s = t_source.value_or(Source{});
  if (s.node.empty()) {
    const std::lock_guard<std::mutex> lock(g_mu);
    s.node = g_process_node;
  }
  if (s.actor.empty()) s.actor = kMainActor;
  return s;
}

std::string format_line(Format f, const Entry& entry) {
  return f == Format::json ? json_line(entry) : text_line(entry);
}

void write(Level l, std::string_view message, Fields fields) {
  if (static_cast<int>(l) > g_level.load(std::memory_order_relaxed)) return;
  const Source source = thread_source();
  const std::string line =
      format_line(format(), Entry{std::chrono::system_clock::now(), l, source, message, fields});
  const std::lock_guard<std::mutex> lock(g_mu);
  write_stderr(line);
}

}  // namespace kvpaxos::log
