#!/usr/bin/env bash
# results/bench.sh [BUILD_DIR]: the speed and scale benchmarks (README
# "Results and benchmark"), all timing-dependent:
#
#   results/bench.json            trainsim bench: the p = 64, m = 512 1F1B job
#                                 with every output, next to the bare SimGrid
#                                 loop of the same pattern (ratio, target 1.5x)
#   results/bench-curve.json      trainsim bench --case curve: CPU microseconds
#                                 per simulated event and kB of memory per
#                                 device for p = 8 to 4,096 (1F1B, m = 32,
#                                 summary.json only)
#   results/bench-allreduce.json  trainsim bench --case allreduce: one 1 GiB
#                                 ring all-reduce over 1,024 GPUs (several
#                                 minutes of CPU time; BENCH_ALLREDUCE=0 skips it)
set -euo pipefail
cd "$(dirname "$0")/.."
B=${1:-build}
T=$B/trainsim
[ -x "$T" ] || { echo "results/bench.sh: $T not built (run ./quickstart.sh)" >&2; exit 69; }
"$T" bench -o results --repeat 5
"$T" bench -o results --case curve --repeat 3
if [ "${BENCH_ALLREDUCE:-1}" != 0 ]; then
  "$T" bench -o results --case allreduce --repeat 1
fi
