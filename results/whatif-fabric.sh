#!/usr/bin/env bash
# results/whatif-fabric.sh [BUILD_DIR]: a data-parallel x pipeline GPT job on
# a fat tree whose leaf tier is oversubscribed 1:1, 2:1 and 4:1, and where
# the iteration time goes (issue 15; README "What-if sweeps").
#
#   results/whatif-fabric/summary.md          the tables, the checks by hand
#   results/whatif-fabric/points.csv          one row per point (every column
#                                             of the tables, full precision)
#   results/whatif-fabric/<job>/sweep.{csv,svg}  trainsim sweep --collect of
#                                             the points: iteration time
#                                             against the platform
#
# Cluster: 4 DGX-A100 nodes (the dgx-a100-2node preset's figures: 8 A100 a
# node on NVSwitch, 300 GB/s; one 200 Gb/s = 25 GB/s HDR NIC per GPU), two
# tiers, in three fabrics, each at --oversub-leaf 1, 2 and 4 (the leaf
# trunk is the tier the data-parallel traffic crosses; the spine is a
# router).  A trunk follows the leaf's ports, so --leaf-ports is sized to
# the NICs in use (README "Platforms"):
#   off    --rails off --leaf-ports 8: a node's 8 NICs on a leaf of its own,
#          every inter-node flow through two trunks of 8 x 25 GB/s / r;
#   rail2  --rails on --su-nodes 2 --leaf-ports 2: two scalable units of 2
#          nodes, GPU k of a unit's nodes on its rail leaf k, trunks of
#          2 x 25 GB/s / r; traffic between the units (or between rails)
#          crosses them;
#   rail4  --rails on --su-nodes 4 --leaf-ports 4: one unit, trunks of
#          4 x 25 GB/s / r, crossed only between rails.
# The platforms (49 KB each, 9 of them) are generated into a temporary
# folder and not kept; summary.md lists the commands.
#
# Jobs: GPT-3 1.3B, 1F1B, seq 2048, micro-batch 1 (examples/dp-gpt-ib.json):
#   pp-in-node  as shipped: 8 stages x 4 replicas, rank_order tp-pp-dp: each
#               replica's pipeline inside a node, each stage's 4 replicas on
#               the 4 nodes, so every hop of the gradient ring is inter-node
#               and on GPU k's rail; one member a node, so the hierarchical
#               algorithm does not apply ("auto" runs the ring);
#   dp-in-node  --set data_parallel=16 stages=2 rank_order=tp-dp-pp
#               microbatches=8 (README "Collectives"): stage 0's 16
#               replicas on nodes 0-1, stage 1's on nodes 2-3, the pipeline
#               between them; collective_algorithm ring and hierarchical
#               ("auto" picks hierarchical here).
# Plus three check runs (dp-in-node, hierarchical, fabric off, overlap
# false) for the closed form in summary.md.
#
# Bash, python3 (the tables) and the trainsim command; about 10 s on 2 cores.
set -euo pipefail
cd "$(dirname "$0")/.."
B=${1:-build}
T=$B/trainsim
[ -x "$T" ] || { echo "results/whatif-fabric.sh: $T not built (run ./quickstart.sh)" >&2; exit 69; }
T=$(cd "$(dirname "$T")" && pwd)/$(basename "$T")
J=$(nproc)
out=results/whatif-fabric
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

fabric_opts() { # fabric name -> trainsim platform options
  case $1 in
    off) echo "--rails off --leaf-ports 8" ;;
    rail2) echo "--rails on --su-nodes 2 --leaf-ports 2" ;;
    rail4) echo "--rails on --su-nodes 4 --leaf-ports 4" ;;
  esac
}
FABRICS="off rail2 rail4"
RATIOS="1 2 4"
plats=()
for f in $FABRICS; do
  for r in $RATIOS; do
    # shellcheck disable=SC2046
    "$T" platform --preset dgx-a100-2node --nodes 4 $(fabric_opts "$f") --oversub-leaf "$r" \
      -o "$tmp/$f-${r}to1.xml"
    plats+=("$f-${r}to1.xml")
  done
done
PLATS=$(IFS=,; echo "${plats[*]}")
# The job, beside the platforms so that the varied names are relative.
sed 's#"platform": "[^"]*"#"platform": "off-1to1.xml"#' examples/dp-gpt-ib.json > "$tmp/job.json"
DPN=(--set data_parallel=16 --set stages=2 --set rank_order=tp-dp-pp --set microbatches=8)

echo "== what-if: fat-tree oversubscription (results/whatif-fabric/)"
# points JOB_NAME ARGS...: emit the sweep's points, run them, collect.
points() {
  local name=$1
  shift
  (cd "$tmp" && "$T" sweep job.json "$@" --emit-jobs "$name" --quiet >/dev/null &&
     xargs -P "$J" -d '\n' -I{} sh -c '{}' < "$name/commands.txt")
  rm -rf "${out:?}/$name"
  "$T" sweep --collect "$tmp/$name" -o "$out/$name" --quiet
}
points pp-in-node --vary "platform=$PLATS"
points dp-in-node "${DPN[@]}" --vary "platform=$PLATS" --vary collective_algorithm=ring,hierarchical
for r in $RATIOS; do
  (cd "$tmp" && "$T" run job.json "${DPN[@]}" --set "platform=off-${r}to1.xml" \
     --set collective_algorithm=hierarchical --set overlap_grad_reduce=false -o "check-$r" -f summary --quiet)
done

cmds=$(for f in $FABRICS; do echo "$f: trainsim platform --preset dgx-a100-2node --nodes 4 $(fabric_opts "$f") --oversub-leaf R"; done)
python3 - "$tmp" "$out" "$cmds" <<'PY'
import csv, json, os, sys
tmp, out, cmds = sys.argv[1:4]
NIC = 25e9
FAB = {'off': ('rails off, a leaf per node', 8), 'rail2': ('rails, 2 units of 2 nodes', 2),
       'rail4': ('rails, 1 unit of 4 nodes', 4)}

def classes(s):
    """Per link class: (largest bytes of one link direction, largest
    utilisation, largest load)."""
    c = {}
    for l in s['links']:
        b, u, ld = c.get(l['class'], (0, 0.0, 0.0))
        c[l['class']] = (max(b, l['bytes']), max(u, l['utilisation']), max(ld, l['load']))
    return c

rows = []
for job in ('pp-in-node', 'dp-in-node'):
    with open(os.path.join(tmp, job, 'points.csv')) as f:
        for p in csv.DictReader(f):
            s = json.load(open(os.path.join(tmp, job, 'point-' + p['index'], 'summary.json')))
            fab, ratio = p['platform'][:-len('to1.xml')].split('-')
            c = classes(s)
            hot = max(c, key=lambda k: (c[k][2], k))
            rows.append({
                'job': job, 'fabric': fab, 'oversub_leaf': int(ratio),
                'trunk_GBps': FAB[fab][1] * NIC / int(ratio) / 1e9,
                'collective_algorithm': p.get('collective_algorithm', 'auto'),
                'iteration_time_s': s['iteration_time_s'], 'pipeline_time_s': s['pipeline_time_s'],
                'optimizer_s': s['optimizer_s'], 'dp_comm_s': s['dp_comm_s'],
                'device0_dp_comm_s': s['devices'][0]['dp_comm_s'],
                'exposed_comm_s': s['exposed_comm_s'], 'dp_comm_share': s['dp_comm_share'],
                'dp_tail_s': s['iteration_time_s'] - s['pipeline_time_s'] - s['optimizer_s'],
                'dp_bytes': s['dp_bytes'], 'p2p_bytes': s['p2p_bytes'],
                'trunk_bytes_max': c.get('leafN-spine', (0, 0, 0))[0],
                'trunk_utilisation_max': c.get('leafN-spine', (0, 0, 0))[1],
                'trunk_load_max': c.get('leafN-spine', (0, 0, 0))[2],
                'nic_utilisation_max': c['ib-nodeN-gpuN'][1], 'nic_load_max': c['ib-nodeN-gpuN'][2],
                'hottest_class': hot, 'hottest_load': c[hot][2]})
keys = list(rows[0])
with open(os.path.join(out, 'points.csv'), 'w', newline='') as f:
    w = csv.writer(f, lineterminator='\n')
    w.writerow(keys)
    for r in rows:
        w.writerow([repr(r[k]) if isinstance(r[k], float) else r[k] for k in keys])

ms = lambda x: '%.1f' % (x * 1e3)
pct = lambda x: '%.1f%%' % (x * 100)
def table(job, algo_col):
    o = ['| fabric | leaf | trunk (GB/s) |' + (' algorithm |' if algo_col else '') +
         ' iteration | pipeline | DP tail | dp_comm | exposed | share | trunk bytes (GB) | trunk util. | trunk load | NIC load | hottest class (load) |',
         '|---|---|---|' + ('---|' if algo_col else '') + '---|---|---|---|---|---|---|---|---|---|---|']
    for r in rows:
        if r['job'] != job: continue
        o.append('| %s | %d:1 | %g |%s %s | %s | %s | %s | %s | %s | %.2f | %s | %s | %s | %s (%s) |' % (
            r['fabric'], r['oversub_leaf'], r['trunk_GBps'],
            (' %s |' % r['collective_algorithm']) if algo_col else '',
            ms(r['iteration_time_s']), ms(r['pipeline_time_s']), ms(r['dp_tail_s']), ms(r['dp_comm_s']),
            ms(r['exposed_comm_s']), pct(r['dp_comm_share']), r['trunk_bytes_max'] / 1e9,
            pct(r['trunk_utilisation_max']), pct(r['trunk_load_max']), pct(r['nic_load_max']),
            r['hottest_class'], pct(r['hottest_load'])))
    return '\n'.join(o)

def get(job, fab, ratio, algo='auto'):
    return next(r for r in rows if r['job'] == job and r['fabric'] == fab and
                r['oversub_leaf'] == ratio and r['collective_algorithm'] == algo)

# Closed forms.  Stage 0 of pp-in-node (device 0): 3 layers and the
# embedding; of dp-in-node: 12 layers and the embedding.
h, V, s, e = 2048, 50257, 2048, 2
layer = 12 * h * h + 13 * h
G8 = e * (3 * layer + (V + s) * h)
G2 = e * (12 * layer + (V + s) * h)
chk = [json.load(open(os.path.join(tmp, 'check-%d' % r, 'summary.json')))['devices'][0]['dp_comm_s']
       for r in (1, 2, 4)]
nv_lat, nv_bw, x_lat = 2e-6, 300e9, 2 * (0.5e-6 + 1e-6 + 0.5e-6)
a1, a4 = get('pp-in-node', 'rail2', 1), get('pp-in-node', 'rail2', 4)
o1, o2, o4 = (get('pp-in-node', 'off', r) for r in (1, 2, 4))
h1, h2, h4 = (get('dp-in-node', 'off', r, 'hierarchical') for r in (1, 2, 4))
g1, g2, g4 = (get('dp-in-node', 'off', r, 'ring') for r in (1, 2, 4))
q1, q2, q4 = (get('dp-in-node', 'rail2', r, 'ring') for r in (1, 2, 4))
k1, k4 = get('dp-in-node', 'rail2', 1, 'hierarchical'), get('dp-in-node', 'rail2', 4, 'hierarchical')
def concurrent(job, index, devices):
    """The most collectives of the given devices in flight at once, from
    the point's timeline.csv (their spans on the communication streams)."""
    ev = []
    with open(os.path.join(tmp, job, 'point-%d' % index, 'timeline.csv')) as f:
        for t in csv.DictReader(f):
            if t['kind'] == 'collective' and int(t['device']) in devices:
                ev += [(float(t['start_s']), 1), (float(t['end_s']), -1)]
    n = m = 0
    for _, d in sorted(ev):
        n += d
        m = max(m, n)
    return m
conc1 = concurrent('pp-in-node', 1, range(8))
ring8 = lambda B: 1.5 * G8 / B + 3 * 6 * x_lat
hier = lambda rate: 14 * (2 * nv_lat + G2 / 8 / nv_bw) + 2 * (x_lat + G2 / 16 / rate)

L = []
L += ['# What-if: oversubscribed fat tree', '',
      'Where the iteration time of a data-parallel x pipeline GPT job goes when the leaf tier of its',
      'fat tree is oversubscribed 1:1, 2:1 and 4:1. Generated by results/whatif-fabric.sh; every',
      'number is from the points\' summary.json (points.csv has them at full precision).', '',
      'Cluster: 4 DGX-A100 nodes (8 A100 on NVSwitch, 300 GB/s a GPU; one 25 GB/s HDR NIC a GPU),',
      'a two-tier fat tree, the leaf tier at `--oversub-leaf` 1, 2, 4 (R below), in three fabrics:', '',
      '```']
L += cmds.split('\n')
L += ['```', '',
      '- `off`: a node\'s 8 NICs on a leaf of its own (`--leaf-ports 8`, so the trunk is 8 NICs\' worth / R:',
      '  200, 100, 50 GB/s); every inter-node flow crosses two trunks.',
      '- `rail2`: rail-optimised, two scalable units of 2 nodes: GPU k of a unit on the unit\'s leaf k,',
      '  trunks of 2 NICs / R (50, 25, 12.5 GB/s), crossed between units and between rails.',
      '- `rail4`: rail-optimised, one unit of 4 nodes (trunks 4 NICs / R), crossed only between rails.', '',
      'Jobs: GPT-3 1.3B, 1F1B, seq 2048, micro-batch 1, overlap_grad_reduce true, zero 0 (DDP).', '',
      'Times in ms. pipeline = pipeline_time_s (compute and point-to-point); DP tail = iteration -',
      'pipeline - optimizer step (%.2f ms for pp-in-node, %.2f ms for dp-in-node): what the gradient' % (
          o1['optimizer_s'] * 1e3, h1['optimizer_s'] * 1e3),
      'sync adds after the pipeline\'s last op, so iteration = pipeline + DP tail + optimizer; dp_comm =',
      'the largest device\'s time inside data-parallel collectives; exposed = the largest device\'s wait',
      'for them (the DP tail is at most that, equal in %d of the %d rows: the device that waits longest' % (
          sum(abs(r['dp_tail_s'] - r['exposed_comm_s']) < 5e-6 for r in rows), len(rows)),
      'is not always the last to finish); share = dp_comm / iteration.',
      'Link columns, from summary.json links[] (each direction of a link on its own): trunk = class',
      '`leafN-spine` (the largest bytes, utilisation = busy share of the run, and load = bytes /',
      '(bandwidth x run) of one direction), NIC = `ib-nodeN-gpuN`, hottest = the class with the largest load.', '',
      '## pp-in-node: the pipeline inside a node, the gradient ring across nodes', '',
      'examples/dp-gpt-ib.json as shipped: 8 stages of 3 layers x 4 replicas on 32 GPUs, 32 micro-batches,',
      'rank_order tp-pp-dp, so each replica\'s pipeline is on NVLink and stage k\'s gradient ring joins',
      'GPU k of the 4 nodes (every hop inter-node, on rail k). One member a node: the ring',
      '(`auto` = ring).', '',
      table('pp-in-node', False), '']
L += ['- `off`: 2:1 costs nothing and 4:1 costs %.1f ms (%+.2f%% iteration). A trunk carries one flow per' % (
          (o4['iteration_time_s'] - o1['iteration_time_s']) * 1e3, (o4['iteration_time_s'] / o1['iteration_time_s'] - 1) * 100),
      '  stage ring that is running, at most one NIC each; the 8 rings start one backward apart as the',
      '  1F1B drain reaches each stage, so at 1:1 at most %d of node 0\'s 8 run at once (timeline.csv):' % conc1,
      '  2:1 (4 NICs\' worth) still fits them and 4:1 (2 NICs) slows them (stage 0\'s, the longest and',
      '  the last, %.1f -> %.1f ms).' % (o1['device0_dp_comm_s'] * 1e3, o4['device0_dp_comm_s'] * 1e3),
      '- `rail2`: stage k\'s ring is alone on rail k, crossing the units on 2 of its 4 hops: 2:1 leaves',
      '  the trunk at one NIC\'s worth (no change), 4:1 halves it and the ring doubles: %.1f -> %.1f ms,' % (
          a1['dp_comm_s'] * 1e3, a4['dp_comm_s'] * 1e3),
      '  the %.1f ms more all exposed (exposed %+.1f ms, iteration %+.2f%%).' % (
          (a4['dp_comm_s'] - a1['dp_comm_s']) * 1e3, (a4['exposed_comm_s'] - a1['exposed_comm_s']) * 1e3,
          (a4['iteration_time_s'] / a1['iteration_time_s'] - 1) * 100),
      '- `rail4`: the rings never leave their rail leaf; oversubscription changes nothing.',
      '- The pipeline (%.1f ms, NVLink only) never moves.' % (o1['pipeline_time_s'] * 1e3), '',
      '## dp-in-node: data parallelism inside and across nodes, ring against hierarchical', '',
      'The same job with `--set data_parallel=16 --set stages=2 --set rank_order=tp-dp-pp --set',
      'microbatches=8` (README "Collectives"): stage 0 (12 layers and the embedding) on nodes 0-1,',
      'stage 1 on nodes 2-3, so the pipeline\'s 8 flows cross the fabric too; `auto` = hierarchical.', '',
      table('dp-in-node', True), '']
L += ['- `off`: the hierarchical all-reduce runs its inter-node phase as 8 rings at once (one per local',
      '  rank), 8 flows through each trunk direction: the phase doubles at 2:1 and quadruples at 4:1,',
      '  dp_comm %s -> %s -> %s ms, while the ring, whose 16 members cross between the nodes on' % (
          ms(h1['dp_comm_s']), ms(h2['dp_comm_s']), ms(h4['dp_comm_s'])),
      '  one hop each way (one flow per trunk direction), stays at %s to %s ms: hierarchical still wins' % (
          ms(min(g['dp_comm_s'] for g in (g1, g2, g4))), ms(max(g['dp_comm_s'] for g in (g1, g2, g4)))),
      '  (%s against %s ms per iteration at 4:1), by %.0f ms instead of %.0f ms.' % (
          ms(h4['iteration_time_s']), ms(g4['iteration_time_s']),
          (g4['iteration_time_s'] - h4['iteration_time_s']) * 1e3, (g1['iteration_time_s'] - h1['iteration_time_s']) * 1e3),
      '  The pipeline\'s flows share the trunks as well: pipeline %s -> %s ms at 4:1.' % (
          ms(h1['pipeline_time_s']), ms(h4['pipeline_time_s'])),
      '- `rail2`: the roles turn. Stage 0\'s hierarchical rings join GPU k of nodes 0 and 1, one rail leaf,',
      '  and never see a trunk (dp_comm %s ms at 1:1 and 4:1); the plain ring\'s inter-node hops go' % ms(k4['dp_comm_s']),
      '  from GPU 7 of one node to GPU 0 of the other, from rail 7 to rail 0 through the trunks, two',
      '  flows on each: %s -> %s -> %s ms, the iteration %s -> %s ms. (NCCL builds its rings so that' % (
          ms(q1['dp_comm_s']), ms(q2['dp_comm_s']), ms(q4['dp_comm_s']), ms(q1['iteration_time_s']), ms(q4['iteration_time_s'])),
      '  inter-node hops stay on one rail; a ring in rank order on a rail-optimised fabric is the worst case.)',
      '- `rail4`: the same cross-rail hops, now of both stages\' rings (up to 4 flows on rail 7\'s trunk, 4 NICs\'',
      '  worth at 1:1): the ring %s -> %s -> %s ms; hierarchical never leaves the rail leaves.' % (
          ms(get('dp-in-node', 'rail4', 1, 'ring')['dp_comm_s']), ms(get('dp-in-node', 'rail4', 2, 'ring')['dp_comm_s']),
          ms(get('dp-in-node', 'rail4', 4, 'ring')['dp_comm_s'])), '']
L += ['## Checks by hand', '',
      'rail2, pp-in-node: at 4:1 a rail trunk is 2 x 25 / 4 = 12.5 GB/s and carries one flow, so device 0\'s',
      'ring (G = e (3 (12 h^2 + 13 h) + (V + s) h) = %d B, d = 4, 3 buckets of 6 steps, 4 us of latency a' % G8,
      'step: PCIe, NIC, 2 trunks, NIC, PCIe) takes 2 (d - 1)/d G / B + 18 x 4 us: %.4f ms at B = 25 GB/s' % (ring8(25e9) * 1e3),
      '(measured %.4f) and %.4f ms at 12.5 GB/s (measured %.4f).' % (
          a1['device0_dp_comm_s'] * 1e3, ring8(12.5e9) * 1e3, a4['device0_dp_comm_s'] * 1e3), '',
      'off, dp-in-node, hierarchical, overlap_grad_reduce false (three extra runs: one collective after the',
      'program): device 0 holds G = e (12 (12 h^2 + 13 h) + (V + s) h) = %d B; m = 8 members a node,' % G2,
      'D = 2 nodes, n = 16. 2 (m - 1) (2 x 2 us + G / m / 300 GB/s) + 2 (D - 1) (4 us + G / n / rate), the',
      'rate min(25 GB/s, trunk / 8) = 25, 12.5, 6.25 GB/s: %.4f, %.4f, %.4f ms; measured %.4f, %.4f, %.4f ms.' % (
          hier(25e9) * 1e3, hier(12.5e9) * 1e3, hier(6.25e9) * 1e3, chk[0] * 1e3, chk[1] * 1e3, chk[2] * 1e3),
      'With overlap (the table) the inter-node phase adds the same (R - 1) G / (8 x 25 GB/s) = %.4f ms per' % (
          G2 / 8 / 25e9 * 1e3),
      'step of R: device 0 %.4f -> %.4f -> %.4f ms.' % (
          h1['device0_dp_comm_s'] * 1e3, h2['device0_dp_comm_s'] * 1e3, h4['device0_dp_comm_s'] * 1e3), '',
      'Bytes, off, pp-in-node: every inter-node flow of a node crosses its trunk, so one trunk direction',
      'carries the data-parallel bytes of one node, dp_bytes / 4 = %d B; measured %d B at every R.' % (
          o1['dp_bytes'] // 4, o4['trunk_bytes_max']),
      'tests/test_whatif_fabric.c checks the same closed forms on a 2-node job (ring and hierarchical).', '']
open(os.path.join(out, 'summary.md'), 'w').write('\n'.join(L))
PY
