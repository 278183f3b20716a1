#!/usr/bin/env bash
# Quick start, command 2: installs what is missing (Debian 12, as root),
# builds trainsim (plain with warnings as errors, and with AddressSanitizer +
# UndefinedBehaviorSanitizer) and runs the whole test suite in both, then
# runs the threaded reference-executor suites under ThreadSanitizer, and
# last compiles a Release build (-O3, NDEBUG; build only) so that warnings
# the optimiser finds stay fixed.  Every build passes -DTS_DEVELOPER=ON
# (warnings are errors).  .ci/run calls this script.  Idempotent.
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
cmake --build build-tsan -j"$jobs" --target trainsim test_ref_exec test_ref_model test_ref_moe test_ref_moe_exec test_ref_coll test_mobius test_conformance >/dev/null
(cd build-tsan && TSAN_OPTIONS=halt_on_error=1 ctest --output-on-failure -R '^test_ref_|^test_mobius$|^test_conformance$')
echo "== Release build (-O3, warnings are errors; build only)"
cmake -S . -B build-release -DCMAKE_BUILD_TYPE=Release -DTS_DEVELOPER=ON >/dev/null
cmake --build build-release -j"$jobs" >/dev/null
echo "== all suites passed"
