#!/usr/bin/env bash
# Quick start, command 2: installs what is missing (Debian 12, as root),
# builds trainsim (plain with warnings as errors, and with AddressSanitizer +
# UndefinedBehaviorSanitizer) and runs the whole test suite in both, then
# runs the threaded reference-executor suites under ThreadSanitizer, then
# compiles a Release build (-O3, NDEBUG; build only) so that warnings the
# optimiser finds stay fixed, and last runs each libFuzzer target of
# tests/fuzz/ (clang) for a short fixed budget.  Every build passes
# -DTS_DEVELOPER=ON (warnings are errors).  .ci/run calls this script.  Idempotent.
set -euo pipefail
cd "$(dirname "$0")"
. ./deps.sh
ts_install_deps test
jobs=$(nproc)
run_suite() { # build-dir, cmake options...
  local dir=$1; shift
  cmake -S . -B "$dir" "$@" >/dev/null
  cmake --build "$dir" -j"$jobs" >/dev/null
  (cd "$dir" && ctest --output-on-failure -j"$jobs")
}
echo "== plain build (RelWithDebInfo, -Werror)"
run_suite build -DCMAKE_BUILD_TYPE=RelWithDebInfo -DTS_DEVELOPER=ON
echo "== sanitizer build (ASan + UBSan)"
# SimGrid switches stacks itself (raw contexts), which ASan cannot follow;
# see README "Sanitizers".
ASAN_OPTIONS=detect_leaks=0:detect_stack_use_after_return=0 \
UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1 \
  run_suite build-asan -DCMAKE_BUILD_TYPE=Debug -DTS_DEVELOPER=ON -DTS_SANITIZE=ON
echo "== ThreadSanitizer build (the threaded CPU reference executor)"
# Only the suites that run threads: TSan cannot follow SimGrid's own context
# switches, and the simulator is single-threaded.
cmake -S . -B build-tsan -DCMAKE_BUILD_TYPE=Debug -DTS_DEVELOPER=ON -DTS_TSAN=ON >/dev/null
# Every test_ref_* suite (the ctest pattern below), found from the sources.
ref_tests=$(for f in tests/test_ref_*.c; do basename "$f" .c; done)
# shellcheck disable=SC2086
cmake --build build-tsan -j"$jobs" --target trainsim $ref_tests test_mobius test_conformance >/dev/null
(cd build-tsan && TSAN_OPTIONS=halt_on_error=1 ctest --output-on-failure -R '^test_ref_|^test_mobius$|^test_conformance$')
echo "== Release build (-O3, warnings are errors; build only)"
cmake -S . -B build-release -DCMAKE_BUILD_TYPE=Release -DTS_DEVELOPER=ON >/dev/null
cmake --build build-release -j"$jobs" >/dev/null
echo "== fuzz targets (clang, libFuzzer + ASan + UBSan; 20,000 executions each)"
# Each harness of tests/fuzz/ from its seed corpus and dictionary, for a short
# fixed budget (README "Fuzzing"; results/fuzz.sh makes the long run).  Any
# crash, sanitizer report, leak, hang (10 s) or 2 GB allocation fails the
# step; the reproducer is left in build-fuzz/.
CC=clang cmake -S . -B build-fuzz -DCMAKE_BUILD_TYPE=RelWithDebInfo -DTS_DEVELOPER=ON -DTS_FUZZ=ON >/dev/null
cmake --build build-fuzz -j"$jobs" --target fuzzers >/dev/null
for t in job set hf platform; do
  [ -x build-fuzz/fuzz_$t ] || continue
  rm -rf build-fuzz/corpus-$t build-fuzz/crash-$t-* && mkdir build-fuzz/corpus-$t
  if ! build-fuzz/fuzz_$t -runs=20000 -seed=1 -timeout=10 -rss_limit_mb=2048 \
      -dict=tests/fuzz/$t.dict -artifact_prefix=build-fuzz/crash-$t- \
      build-fuzz/corpus-$t tests/fuzz/corpus/$t >build-fuzz/fuzz_$t.log 2>&1; then
    sed -n '/ERROR:\|runtime error:/,$p' build-fuzz/fuzz_$t.log | head -n 40
    echo "fuzz_$t failed; reproducer: $(ls build-fuzz/crash-$t-* 2>/dev/null)" >&2
    exit 1
  fi
  echo "fuzz_$t: $(grep -E '^Done [0-9]+ runs' build-fuzz/fuzz_$t.log)"
done
echo "== all suites passed"
