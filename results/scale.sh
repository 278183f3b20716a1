#!/usr/bin/env bash
# results/scale.sh [BUILD_DIR]: the two big jobs of issue 14 (target 3) under
# symmetry folding (README "Symmetry folding"), and folded against exact runs.
#
#   results/scale/scale.md   the table below, with how it was made (wall
#                            seconds and memory are timing-dependent)
# (the runs' outputs, up to 400 MB for the 1T job, stay in a temporary folder)
#
# Jobs: examples/scale/gpt3-175b-scale.json (TP 8, PP 16, DP 8: 1,024 GPUs) and
# examples/scale/megatron-1t-t8-p64-d6.json (TP 8, PP 64, DP 6: 3,072 GPUs,
# interleaved, 2 chunks), on DGX-A100 platforms: platforms/dgx-a100-128node.xml
# (in git: scalable units of 16 nodes, so each 8-node DP group sits in one
# unit) and platforms/dgx-a100-384node.xml, which this script generates
# (not kept in git: 4.5 MB; see below).
# Each big job is timed folded (the default at 256 devices or more) with
# GNU time (wall seconds, peak resident memory of the slowest process).
# Folded and exact (--fold, --exact) are compared on the 1,024-GPU job of
# examples/ (gpt3-175b-t8-p16-d8: every device of the 175B layout, 16
# micro-batches; about a minute exact) and on reduced versions of the big
# jobs (fewer replicas, stages and micro-batches; listed in the table): the
# exact 175B job at 192 micro-batches would take about 10 minutes, and the
# exact 1T job is estimated at 1.9e8 events (trainsim's budget warning),
# hours on this machine.
# SCALE_BIG=0 skips the big jobs (the comparisons only).
set -euo pipefail
B=${1:-build}
T="$B/trainsim"
[ -x "$T" ] || { echo "results/scale.sh: $T not built" >&2; exit 69; }
O=results/scale
mkdir -p "$O"
# 1T: one scalable unit of all the nodes, each rail on one leaf (--su-nodes N
# --leaf-ports N; its 6-node DP groups do not fit units of 16 or 20
# nodes evenly): every inter-node flow of these jobs joins GPUs of one
# index, so it crosses its rail's leaf only and the routes of a class are
# isomorphic, as folding needs.  The default units of 20 nodes (Selene's)
# put some replicas or stages behind the spine and others not: the run is
# then exact (every device an actor): the 1T job ran 12 minutes unfinished.
# Regenerated on every run (a few hundred ms), so an older file is no trap.
[ -f platforms/dgx-a100-128node.xml ] ||
  "$T" platform --preset dgx-a100-2node --nodes 128 --su-nodes 16 --name dgx-a100-128node -o platforms/dgx-a100-128node.xml
"$T" platform --preset dgx-a100-2node --nodes 384 --su-nodes 384 --leaf-ports 384 -o platforms/dgx-a100-384node.xml
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

# run NAME JOB MODE [SETS...]: one run; prints "wall_s peak_MB iteration_s".
# FORMATS=all writes every output, paje.trace included (-f all: the big jobs),
# else summary.json only.
run() {
  local name=$1 job=$2 mode=$3
  shift 3
  local sets=() fmt=(-f summary)
  [ "${FORMATS:-}" = all ] && fmt=(-f all)
  for s in "$@"; do sets+=(--set "$s"); done
  /usr/bin/time -f "%e %M" -o "$tmp/time" "$T" run "$job" -o "$tmp/$name" "${fmt[@]}" -q "$mode" "${sets[@]}"
  cp "$tmp/$name/summary.json" "$tmp/$name.json"
  read -r wall kb < "$tmp/time"
  local it
  it=$(python3 -c "import json,sys; print(json.load(open(sys.argv[1]))['iteration_time_s'])" "$tmp/$name.json")
  echo "$wall $((kb / 1024)) $it"
}

# compare NAME JOB SETS...: folded against exact on a reduced job
compare() {
  local name=$1 job=$2
  shift 2
  read -r wf mf tf <<< "$(run "$name-fold" "$job" --fold "$@")"
  read -r we me te <<< "$(run "$name-exact" "$job" --exact "$@")"
  local same
  same=$(python3 - "$tmp/$name-fold.json" "$tmp/$name-exact.json" <<'PY'
import json, sys
a, b = (json.load(open(p)) for p in sys.argv[1:3])
links = lambda r: [(l['name'], l['bytes']) for l in r['links']]
same = all(a[k] == b[k] for k in ('p2p_bytes', 'dp_bytes', 'tp_bytes', 'coll_bytes'))
same = same and links(a) == links(b)
for u, v in zip(a['devices'], b['devices']):
    same = same and all(u[k] == v[k] for k in u if 'bytes' in k)
print('yes' if same and len(a['devices']) == len(b['devices']) else 'no')
PY
)
  echo "| $name | ${*:-none: every device and micro-batch} | $wf | $mf | $we | $me | $(python3 -c "print('%.4f' % (100 * abs($tf - $te) / $te))") | $same |"
}

{
  echo "# Symmetry folding at scale (results/scale.sh, $(nproc) cores)"
  echo
  echo "Folded runs of the big jobs, every output written (trace.json and paje.trace"
  echo "cut at their default 100 MB; output MB: the run's folder). Wall seconds: the"
  echo "median of 3 runs (all 3 given: this machine's speed varies from run to run);"
  echo "peak MB: the largest of the 3:"
  echo
  # The machine's speed at the time: the bare SimGrid loop of trainsim bench
  # (README "Results and benchmark"), median of 3.
  bare=()
  for k in 1 2 3; do
    /usr/bin/time -f "%e" -o "$tmp/bare" env TRAINSIM_BENCH_BARE="$PWD/examples/bench-1f1b-p64.json" "$T" bench >/dev/null
    bare+=("$(cat "$tmp/bare")")
  done
  echo "This machine's speed at the time: the bare SimGrid loop of \`trainsim bench\` took"
  echo "$(printf '%s\n' "${bare[@]}" | sort -g | sed -n 2p) s (median of ${bare[*]}; 0.28 s on a quiet hour)."
  echo
  echo "| job | wall s (median) | the 3 runs | peak MB | iteration s | output MB |"
  echo "|---|---|---|---|---|---|"
  for j in gpt3-175b-scale megatron-1t-t8-p64-d6; do
    [ "${SCALE_BIG:-1}" = 0 ] && { echo "| $j | not run (SCALE_BIG=0) | | | | |"; continue; }
    ws=() m=0
    for k in 1 2 3; do
      read -r w mk it <<< "$(FORMATS=all run "$j" "examples/scale/$j.json" --fold)"
      ws+=("$w")
      [ "$mk" -gt "$m" ] && m=$mk
      mb=$(du -sm "$tmp/$j" | cut -f1)
      rm -rf "$tmp/$j"
    done
    med=$(printf '%s\n' "${ws[@]}" | sort -g | sed -n 2p)
    echo "| $j | $med | ${ws[*]} | $m | $it | $mb |"
  done
  echo
  echo "Folded (--fold) against exact (--exact), on the 1,024-GPU job of examples/ (TP 8, PP 16, DP 8,"
  echo "16 micro-batches; about a minute exact) and on reduced versions of the two big jobs: time difference"
  echo "in percent of the exact iteration time; bytes: p2p, dp, tp, each collective's and each link's bytes and every device's *bytes fields (memory peaks included) equal."
  echo
  echo "| job | reduced | fold wall s | fold MB | exact wall s | exact MB | time diff % | bytes equal |"
  echo "|---|---|---|---|---|---|---|---|"
  compare gpt3-175b-t8-p16-d8 examples/gpt3-175b-t8-p16-d8.json
  compare gpt3-175b-d2-m8 examples/scale/gpt3-175b-scale.json data_parallel=2 microbatches=8
  compare megatron-1t-p8-d2 examples/scale/megatron-1t-t8-p64-d6.json stages=8 model.layers=16 \
    data_parallel=2 microbatches=16
} > "$O/scale.md"
cat "$O/scale.md"
