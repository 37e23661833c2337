#!/usr/bin/env bash
# Builds kvpaxos (warnings are errors) and runs every test with ctest.
#
#   bash deploy/run-tests.sh                      the normal build, in build/
#   bash deploy/run-tests.sh --sanitizer asan     AddressSanitizer + UBSan, in build-asan/
#   bash deploy/run-tests.sh --sanitizer tsan     ThreadSanitizer, in build-tsan/
set -euo pipefail

root="$(cd "$(dirname "$0")/.." && pwd)"
build="$root/build"
cmake_args=(-DKVPAXOS_WERROR=ON)
case "${1:-}" in
  # -g1 (line tables: backtraces with file:line, no locals) instead of -g:
  # a quarter less compile time and half the object bytes (4 of the
  # heaviest sources: 85 s of CPU at -g, 65 s at -g1).
  "") cmake_args+=("-DCMAKE_CXX_FLAGS_RELWITHDEBINFO=-O2 -g1 -DNDEBUG") ;;
  --sanitizer)
    case "${2:-}" in
      # -O1 -g1: the sanitizer build compiled in 461 s at -O2 -g on the CI's
      # two cores and in 270 s like this; its tests ran no slower.
      # The tools no test runs (benchmarks, soak client, seed explorer) are
      # built, and so kept compiling, by the normal build only.
      asan) build="$root/build-asan"
            cmake_args+=(-DKVPAXOS_ASAN=ON "-DCMAKE_CXX_FLAGS_RELWITHDEBINFO=-O1 -g1"
                         -DKVPAXOS_TOOLS=OFF) ;;
      tsan) build="$root/build-tsan"; cmake_args+=(-DKVPAXOS_TSAN=ON) ;;
      *) echo "run-tests: --sanitizer takes asan or tsan" >&2; exit 2 ;;
    esac ;;
  *) echo "usage: bash deploy/run-tests.sh [--sanitizer asan|tsan]" >&2; exit 2 ;;
esac

started=$SECONDS
bash "$root/deploy/build.sh" "$build" "${cmake_args[@]}"
echo "run-tests: built $build in $((SECONDS - started)) s"

started=$SECONDS
export ASAN_OPTIONS="${ASAN_OPTIONS:-detect_leaks=1:abort_on_error=1}"
export UBSAN_OPTIONS="${UBSAN_OPTIONS:-print_stacktrace=1:halt_on_error=1}"
export TSAN_OPTIONS="${TSAN_OPTIONS:-halt_on_error=1:second_deadlock_stack=1:suppressions=$root/test/tsan.supp}"
# The sanitizer pass leaves out the e2e scripts: they drive the same binaries
# the process tests run under the sanitizer, and their serial minutes kept
# CI over its 25-minute budget.
exclude=()
[ "$build" != "$root/build" ] && exclude=(-LE e2e)
ctest --test-dir "$build" --output-on-failure -j2 --timeout 600 "${exclude[@]}"
echo "run-tests: tests passed in $((SECONDS - started)) s"
