#!/usr/bin/env bash
# results/fuzz.sh [TARGET...]: the long fuzzing run that results/fuzz.md
# records (README "Fuzzing").  Builds the libFuzzer harnesses of tests/fuzz/
# with clang in build-fuzz (-DTS_FUZZ=ON: ASan + UBSan, libFuzzer), then runs
# each TARGET (job, set, hf, platform; default: every harness built) for
# TS_FUZZ_RUNS executions (default 1,000,000), one process, seed 1, from a
# scratch copy of its seed corpus (tests/fuzz/corpus/TARGET/, which stays as
# it is) with its dictionary (tests/fuzz/TARGET.dict).  An input that runs
# over 10 s is a hang, a process over 2 GB is out of memory; both, and every
# crash, sanitizer report or leak, stop the target: its reproducer is copied
# to tests/fuzz/crashes/TARGET/ with its report (the replay's sanitizer
# output, NAME.txt), and the script exits 1 after the others.
# TS_FUZZ_KEEP_GOING=1 fuzzes on past findings (libFuzzer -fork=1
# -ignore_crashes -ignore_timeouts -ignore_ooms) to reach the executions
# anyway and collect every distinct finding: one reproducer is kept per
# distinct sanitizer or libFuzzer summary line.
# results/fuzz.md gets one row per target run; rows of targets not named
# are kept; results/fuzz.sh --table only rewrites fuzz.md (the findings
# replayed on the current build).  Timing-dependent (execution speed, corpus growth): results/make.sh
# does not run it.
set -uo pipefail
cd "$(dirname "$0")/.."
runs=${TS_FUZZ_RUNS:-1000000}
md=results/fuzz.md

CC=clang cmake -S . -B build-fuzz -DCMAKE_BUILD_TYPE=RelWithDebInfo -DTS_DEVELOPER=ON \
  -DTS_FUZZ=ON >/dev/null || exit 1
cmake --build build-fuzz -j"$(nproc)" --target fuzzers >/dev/null || exit 1
# --table: no fuzzing, only fuzz.md rewritten (kept rows, findings replayed).
table_only=0
[ "${1:-}" = --table ] && { table_only=1; shift; }
if [ $# -eq 0 ] && [ $table_only = 0 ]; then
  set --
  for t in job set hf platform; do [ -x build-fuzz/fuzz_$t ] && set -- "$@" $t; done
fi

commit=$(git rev-parse --short HEAD)
git diff --quiet HEAD -- src schedules platforms sim tests/fuzz CMakeLists.txt || commit="$commit+"
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
declare -A row
failed=0
for t in "$@"; do
  bin=build-fuzz/fuzz_$t
  [ -x "$bin" ] || { echo "results/fuzz.sh: $bin not built" >&2; exit 1; }
  mkdir -p "$work/$t"
  cmd="$bin -runs=$runs -seed=1 -timeout=10 -rss_limit_mb=2048 -dict=tests/fuzz/$t.dict"
  [ "${TS_FUZZ_KEEP_GOING:-0}" = 1 ] &&
    cmd="$cmd -fork=1 -ignore_crashes=1 -ignore_timeouts=1 -ignore_ooms=1"
  cmd="$cmd -print_final_stats=1 CORPUS_DIR tests/fuzz/corpus/$t"
  echo "== fuzz_$t: $runs executions"
  start=$(date +%s)
  ASAN_OPTIONS=detect_leaks=1 UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1 \
    ${cmd/CORPUS_DIR/$work/$t} -artifact_prefix="$work/$t-" >"$work/$t.log" 2>&1
  rc=$?
  secs=$(($(date +%s) - start))
  seeds=$(ls tests/fuzz/corpus/$t | wc -l)
  if [ "${TS_FUZZ_KEEP_GOING:-0}" = 1 ]; then
    # Fork mode's status line: #N: cov: C ft: F corp: K exec/s E oom/timeout/crash: O/T/X
    last=$(grep -E '^#[0-9]+: cov:' "$work/$t.log" | tail -n 1)
    execs=$(sed -n 's/^#\([0-9]*\):.*/\1/p' <<<"$last")
    speed=$((${execs:-0} / (secs > 0 ? secs : 1)))
    rss="-"
    cov=$(sed -n 's/.* cov: \([0-9]*\).*/\1/p' <<<"$last")
    corp="$(ls "$work/$t" | wc -l) files"
    found=$(sed -n 's/.*oom\/timeout\/crash: \([0-9/]*\).*/\1/p' <<<"$last")
  else
    execs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$work/$t.log")
    speed=$(sed -n 's/^stat::average_exec_per_sec: *//p' "$work/$t.log")
    rss="$(sed -n 's/^stat::peak_rss_mb: *//p' "$work/$t.log") MB"
    last=$(grep -E '^#[0-9]+' "$work/$t.log" | tail -n 1)
    cov=$(sed -n 's/.* cov: \([0-9]*\).*/\1/p' <<<"$last")
    corp=$(sed -n 's/.* corp: \([0-9]*\/[0-9A-Za-z]*\).*/\1/p' <<<"$last")
    found=""
  fi
  # Each finding replayed for its report; one kept per distinct summary.
  declare -A seen=()
  kept=""
  for a in "$work/$t"-*; do
    [ -e "$a" ] || continue
    name=${a##*/$t-}
    ASAN_OPTIONS=detect_leaks=1 UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1 \
      "$bin" -timeout=10 -rss_limit_mb=2048 "$a" >"$work/replay.log" 2>&1
    sum=$(grep -m1 -E '^SUMMARY:' "$work/replay.log" | sed 's/0x[0-9a-f]*//g')
    [ -n "$sum" ] || sum="no report on replay: $name"
    [ -n "${seen[$sum]+x}" ] && continue
    seen[$sum]=1
    mkdir -p tests/fuzz/crashes/$t
    cp "$a" tests/fuzz/crashes/$t/$name
    sed -n '/ERROR:\|runtime error:/,/^SUMMARY:/p' "$work/replay.log" | head -n 60 \
      >tests/fuzz/crashes/$t/$name.txt
    kept="$kept tests/fuzz/crashes/$t/$name"
  done
  unset seen
  if [ $rc -eq 0 ] && [ "${execs:-0}" -ge "$runs" ] && [ -z "$kept" ] &&
     { [ -z "$found" ] || [ "$found" = 0/0/0 ]; }; then
    verdict="no crash, hang or sanitizer report"
  else
    failed=1
    verdict="FAILED (rc $rc${found:+, oom/timeout/crash $found}); distinct reproducers:${kept:- none saved}"
    [ "${TS_FUZZ_KEEP_GOING:-0}" = 1 ] && verdict="$verdict (run kept going past findings)"
    grep -h -E '^SUMMARY:' tests/fuzz/crashes/$t/*.txt 2>/dev/null >&2
  fi
  echo "   $execs executions in $secs s ($speed/s), corpus $seeds -> $corp, cov $cov: $verdict"
  row[$t]="| \`fuzz_$t\` | $execs | $secs s | $speed | $rss | $seeds seeds -> $corp | $cov | $commit | $verdict |"
done

# The table: the rows just run, then the kept rows of the other targets.
{
  for t in "$@"; do echo "${row[$t]}"; done
  [ -f "$md" ] && grep '^| `fuzz_' "$md" | while IFS= read -r line; do
    name=$(sed -n 's/^| `fuzz_\([a-z]*\)`.*/\1/p' <<<"$line")
    [ -n "${row[$name]+x}" ] || echo "$line"
  done
} | sort >"$work/rows"
{
  cat <<EOF
# Fuzzing run

A run of every libFuzzer harness of \`tests/fuzz/\` (README "Fuzzing"), made by
\`results/fuzz.sh\` with clang $(clang --version | sed -n 's/.*clang version \([0-9.]*\).*/\1/p;q')
(ASan + UBSan, leak checking on; \`-DTS_FUZZ=ON\` in \`build-fuzz\`), each target in one
process (kept going: one fuzzing child at a time) on a scratch copy of its seed corpus,
on $(nproc) shared cores; "commit" is the
tree fuzzed (+: with uncommitted changes). Timing-dependent (speed and corpus growth differ run to run);
\`results/make.sh\` does not regenerate it.

Reproduce (from the repository root; writes \`build-fuzz/\`, rewrites this file):

    results/fuzz.sh              # every target, 1,000,000 executions each
    results/fuzz.sh job hf       # only these targets; the other rows are kept
    TS_FUZZ_KEEP_GOING=1 results/fuzz.sh   # fuzz on past findings, keep one of each
    results/fuzz.sh --table      # no fuzzing: this file again, the findings replayed

which runs, for each TARGET, on a scratch corpus directory DIR:

    build-fuzz/fuzz_TARGET -runs=1000000 -seed=1 -timeout=10 -rss_limit_mb=2048 \\
        -dict=tests/fuzz/TARGET.dict -print_final_stats=1 DIR tests/fuzz/corpus/TARGET

A hang (an input over 10 s), an allocation over 2 GB, a crash, a sanitizer report or a
leak would stop the target and fail the row, its reproducer saved under
\`tests/fuzz/crashes/TARGET/\` with its report (NAME.txt). A run kept going past
findings (\`-fork=1 -ignore_crashes=1 -ignore_timeouts=1 -ignore_ooms=1\`) counts
them as oom/timeout/crash and keeps one reproducer per distinct summary line;
its corpus column counts files and it has no peak RSS.

| target | executions | time | exec/s | peak RSS | corpus | coverage (edges) | commit | result |
|---|---|---|---|---|---|---|---|---|
EOF
  cat "$work/rows"
  echo
  echo "## Findings kept in tests/fuzz/crashes/"
  echo
  echo "Reproducers of this and earlier runs, each with its report (NAME.txt), and whether"
  echo "it still fails when replayed on the build this run used; replay one with"
  echo "\`build-fuzz/fuzz_TARGET FILE\`. A bug that still fails can stop a clean run of its"
  echo "target; once fixed, the reproducer belongs in the seed corpus."
  echo
  found_any=0
  for f in tests/fuzz/crashes/*/*.txt; do
    [ -e "$f" ] || continue
    found_any=1
    line=$(grep -m1 -E 'runtime error:|ERROR: (AddressSanitizer|LeakSanitizer|libFuzzer)' "$f" |
           sed 's#^[^ ]*/\(src\|sim\|schedules\|platforms\)/#\1/#; s/^==[0-9]*== *//')
    frame=$(grep -m1 -E ' in [A-Za-z_0-9]+ .*/(src|sim|schedules|platforms)/' "$f" |
            sed 's#.* in \([A-Za-z_0-9]*\) .*/\(src\|sim\|schedules\|platforms\)/\([^ ]*\).*#\1, \2/\3#')
    # Replayed on this build: does the bug still show?
    t=${f#tests/fuzz/crashes/}
    t=${t%%/*}
    state="not replayed (build-fuzz/fuzz_$t not built)"
    if [ -x build-fuzz/fuzz_$t ]; then
      if ASAN_OPTIONS=detect_leaks=1 UBSAN_OPTIONS=halt_on_error=1 build-fuzz/fuzz_$t \
          -timeout=10 -rss_limit_mb=2048 "${f%.txt}" >"$work/replay.log" 2>&1; then
        ms=$(sed -n 's/^Executed .* in \([0-9]*\) ms$/\1/p' "$work/replay.log")
        state="passes on this build (in $ms ms)"
      else
        state="still fails on this build"
      fi
    fi
    echo "- \`${f%.txt}\`: $line (first frame in the project: $frame); $state"
  done
  [ $found_any = 1 ] || echo "None."
} >"$md.tmp" && mv "$md.tmp" "$md"
exit $failed
