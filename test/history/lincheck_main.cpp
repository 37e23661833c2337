// lincheck: checks recorded client histories (JSON Lines, see
// test/history/history.hpp) for linearizability against the KV model.
//
//   lincheck [--budget-ms N] FILE.jsonl [FILE2.jsonl ...]
//
// Prints one verdict per file, and on failure the explanation.
// Exit status: 0 every file linearizable; 1 some file is not; 2 a file could
// not be read or is not a valid history, or bad usage; 3 a check ran out of
// budget (nothing else wrong). The worst status wins in the order 2, 1, 3.
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <string_view>
#include <vector>

#include "test/history/history.hpp"
#include "test/history/linearizability.hpp"

namespace {

constexpr int kAllLinearizable = 0;
constexpr int kNotLinearizable = 1;
constexpr int kBadInput = 2;
constexpr int kTimedOut = 3;

int usage() {
  std::fprintf(stderr, "usage: lincheck [--budget-ms N] FILE.jsonl [FILE2.jsonl ...]\n");
  return kBadInput;
}

// Parses a positive decimal; nullopt-like -1 when the text is not one.
long long parse_positive(std::string_view text) {
  if (text.empty() || text.size() > 15) return -1;
  long long n = 0;
  for (const char c : text) {
    if (c < '0' || c > '9') return -1;
    n = n * 10 + (c - '0');
  }
  return n > 0 ? n : -1;
}

int severity(int status) {
  switch (status) {
    case kBadInput: return 3;
    case kNotLinearizable: return 2;
    case kTimedOut: return 1;
    default: return 0;
  }
}

int check_file(const std::string& path, std::chrono::milliseconds budget) {
  const auto ops = kvpaxos::read_jsonl(path);
  if (!ops) {
    std::fprintf(stderr, "lincheck: %s\n", ops.error().c_str());
    return kBadInput;
  }
  const auto started = std::chrono::steady_clock::now();
  const kvpaxos::LinearizabilityResult result = kvpaxos::check_linearizable(*ops, budget);
  const auto elapsed = std::chrono::duration_cast<std::chrono::milliseconds>(
      std::chrono::steady_clock::now() - started);
  std::printf("%s: %zu ops, %zu keys, %zu unknown writes nobody saw left out: %s (%lld ms)\n",
              path.c_str(), ops->size(), result.keys, result.unobserved_writes_dropped,
              kvpaxos::to_string(result.verdict), static_cast<long long>(elapsed.count()));
  if (!result.explanation.empty()) std::printf("%s\n", result.explanation.c_str());
  switch (result.verdict) {
    case kvpaxos::LinearizabilityVerdict::linearizable: return kAllLinearizable;
    case kvpaxos::LinearizabilityVerdict::not_linearizable: return kNotLinearizable;
    case kvpaxos::LinearizabilityVerdict::timed_out: return kTimedOut;
    case kvpaxos::LinearizabilityVerdict::invalid_history: return kBadInput;
  }
  return kBadInput;
}

}  // namespace

int main(int argc, char** argv) {
  std::chrono::milliseconds budget = std::chrono::seconds(60);
  std::vector<std::string> files;
  for (int i = 1; i < argc; ++i) {
    const std::string_view arg = argv[i];
    if (arg == "--budget-ms") {
      if (i + 1 >= argc) return usage();
      const long long ms = parse_positive(argv[++i]);
      if (ms < 0) return usage();
      budget = std::chrono::milliseconds(ms);
    } else if (arg == "-h" || arg == "--help" || (arg.size() > 1 && arg[0] == '-')) {
      return usage();
    } else {
      files.emplace_back(arg);
    }
  }
  if (files.empty()) return usage();

  int status = kAllLinearizable;
  for (const std::string& path : files) {
    const int file_status = check_file(path, budget);
    if (severity(file_status) > severity(status)) status = file_status;
  }
  std::fflush(stdout);
  return status;
}
