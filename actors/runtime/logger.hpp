// Leveled logging to stderr, safe from any thread: one line per call, as
// text for people or as one JSON object for log shippers (--log-format).
//
// A line names where it comes from, a node and an actor (peer_link,
// front_door, acceptor, ..., main), without the call site saying so: each
// thread sets its Source once when it starts (ThreadSource), and threads
// that set none speak for the process's node (set_process_node) as "main".
// A call gives a sentence and, optionally, fields for the values a reader
// filters by:
//   log::warn("the CURVE handshake failed", {{"peer", "n2"}, {"endpoint", ep}});
// Text:  18:40:01.996 WARN  n1 peer_link: the CURVE handshake failed peer=n2 endpoint=tcp://...
// JSON:  {"time":"2026-12-04T18:40:01.996Z","level":"warn","node":"n1","actor":"peer_link",
//         "msg":"the CURVE handshake failed","peer":"n2","endpoint":"tcp://..."}
// Whatever a line carries (a peer's bytes included) is escaped: control
// characters as \u00XX, invalid UTF-8 as U+FFFD, so a line is always one
// line and JSON lines always parse.
#pragma once

#include <chrono>
#include <concepts>
#include <initializer_list>
#include <string>
#include <string_view>

namespace kvpaxos::log {

enum class Level : int { error = 0, warn = 1, info = 2, debug = 3 };
enum class Format { text, json };

void set_level(Level level);
Level level();
// "error" | "warn" | "info" | "debug"; false when unknown.
bool parse_level(std::string_view text, Level& out);

void set_format(Format format);
Format format();
// "text" | "json"; false when unknown.
bool parse_format(std::string_view text, Format& out);

// Where a line comes from. An empty node is the process's node; an empty
// actor is "main".
struct Source {
  std::string node;
  std::string actor;
};

// The node of the lines of threads that set no Source of their own (one
// kvpaxosd process is one node). Call it before starting threads.
void set_process_node(std::string node);

// Sets the calling thread's Source for the lifetime of this object, then
// restores the one before (a node started on a test's thread).
class ThreadSource {
 public:
  explicit ThreadSource(Source source);
  ~ThreadSource();
  ThreadSource(const ThreadSource&) = delete;
  ThreadSource& operator=(const ThreadSource&) = delete;

 private:
  Source previous_;
  bool had_previous_;
};

// The Source of the calling thread's lines, defaults filled in.
Source thread_source();

// One value of a line: its key is a constant of the call site, its value a
// string (escaped on output) or an integer (a JSON number).
struct Field {
  Field(std::string_view k, std::string_view v) : key(k), value(v) {}
  Field(std::string_view k, const char* v) : key(k), value(v) {}
  Field(std::string_view k, const std::string& v) : key(k), value(v) {}
  template <std::integral T>
    requires(!std::same_as<T, bool> && !std::same_as<T, char>)
  Field(std::string_view k, T v) : key(k), value(std::to_string(v)), number(true) {}

  std::string_view key;
  std::string value;
  bool number = false;
};
using Fields = std::initializer_list<Field>;

// Everything one line says.
struct Entry {
  std::chrono::system_clock::time_point time;
  Level level;
  const Source& source;  // defaults already filled in
  std::string_view message;
  Fields fields;
};

// The line an entry becomes, '\n' included. Pure: for tests.
std::string format_line(Format format, const Entry& entry);

// Writes one line (one write(2), so lines of concurrent threads never
// interleave) when `level` is enabled.
void write(Level level, std::string_view message, Fields fields = {});

inline void error(std::string_view message, Fields fields = {}) {
  write(Level::error, message, fields);
}
inline void warn(std::string_view message, Fields fields = {}) {
  write(Level::warn, message, fields);
}
inline void info(std::string_view message, Fields fields = {}) {
  write(Level::info, message, fields);
}
inline void debug(std::string_view message, Fields fields = {}) {
  write(Level::debug, message, fields);
}

}  // namespace kvpaxos::log
