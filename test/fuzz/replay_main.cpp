// Runs a fuzz target's LLVMFuzzerTestOneInput over files, without libFuzzer:
// ctest replays each target's corpus with it in every build (gcc, ASan, TSan).
//   replay_<name> DIR_OR_FILE...
// A violated invariant aborts; a directory with no inputs is an error (a
// misnamed corpus would otherwise pass by replaying nothing).
#include <algorithm>
#include <cstdint>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <string>
#include <vector>

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size);

// In the ASan build a single allocation over 2 GiB fails the replay, as
// libFuzzer's -malloc_limit_mb does while fuzzing: a decoder that allocates
// out of proportion to its input is a bug even when the allocation succeeds.
extern "C" const char* __asan_default_options() { return "max_allocation_size_mb=2048"; }

namespace {

namespace fs = std::filesystem;

std::vector<fs::path> inputs_in(const fs::path& path) {
  if (!fs::is_directory(path)) return {path};
  std::vector<fs::path> files;
  for (const fs::directory_entry& e : fs::directory_iterator(path)) {
    if (e.is_regular_file()) files.push_back(e.path());
  }
  std::sort(files.begin(), files.end());  // the same order on every run
  return files;
}

bool replay(const fs::path& file) {
  std::ifstream in(file, std::ios::binary);
  if (!in) {
    std::fprintf(stderr, "replay: cannot read %s\n", file.c_str());
    return false;
  }
  const std::string bytes((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  LLVMFuzzerTestOneInput(reinterpret_cast<const std::uint8_t*>(bytes.data()), bytes.size());
  return true;
}

}  // namespace

int main(int argc, char** argv) {
  if (argc < 2) {
    std::fprintf(stderr, "usage: %s DIR_OR_FILE...\n", argv[0]);
    return 2;
  }
  for (int i = 1; i < argc; ++i) {
    const std::vector<fs::path> files = inputs_in(argv[i]);
    if (files.empty()) {
      std::fprintf(stderr, "replay: no inputs in %s\n", argv[i]);
      return 1;
    }
    for (const fs::path& f : files) {
      if (!replay(f)) return 1;
    }
    std::printf("replay: %zu inputs from %s passed\n", files.size(), argv[i]);
  }
  return 0;
}
