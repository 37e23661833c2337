// Minimal leveled logging to stderr, safe from any thread. Lines carry the
// level and, by convention, the node name and actor as a prefix.
#pragma once

#include <atomic>
#include <string>
#include <string_view>

namespace kvpaxos::log {

enum class Level : int { error = 0, warn = 1, info = 2, debug = 3 };

void set_level(Level level);
Level level();
// "error" | "warn" | "info" | "debug"; false when unknown.
bool parse_level(std::string_view text, Level& out);

void write(Level level, std::string_view line);

inline void error(std::string_view line) { write(Level::error, line); }
inline void warn(std::string_view line) { write(Level::warn, line); }
inline void info(std::string_view line) { write(Level::info, line); }
inline void debug(std::string_view line) { write(Level::debug, line); }

}  // namespace kvpaxos::log
