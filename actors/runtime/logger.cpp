#include "actors/runtime/logger.hpp"

#include <chrono>
#include <cstdio>
#include <ctime>
#include <mutex>

namespace kvpaxos::log {
namespace {
std::atomic<int> g_level{static_cast<int>(Level::warn)};
std::mutex g_mu;
const char* name(Level l) {
  switch (l) {
    case Level::error: return "ERROR";
    case Level::warn: return "WARN";
    case Level::info: return "INFO";
    case Level::debug: return "DEBUG";
  }
  return "?";
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

void write(Level l, std::string_view line) {
  if (static_cast<int>(l) > g_level.load(std::memory_order_relaxed)) return;
  const auto now = std::chrono::system_clock::now();
  const std::time_t secs = std::chrono::system_clock::to_time_t(now);
  const auto millis =
      std::chrono::duration_cast<std::chrono::milliseconds>(now.time_since_epoch()).count() % 1000;
  std::tm tm{};
  gmtime_r(&secs, &tm);
  char stamp[32];
  std::strftime(stamp, sizeof stamp, "%H:%M:%S", &tm);
  const std::lock_guard<std::mutex> lock(g_mu);
  std::fprintf(stderr, "%s.%03d %-5s %.*s\n", stamp, static_cast<int>(millis), name(l),
               static_cast<int>(line.size()), line.data());
}

}  // namespace kvpaxos::log
