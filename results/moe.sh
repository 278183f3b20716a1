#!/usr/bin/env bash
# results/moe.sh [BUILD_DIR]: GShard MoE what-ifs (schedule gshard).
#
#   results/moe/points.csv      one row per simulated point
#   results/moe/moe.md          the tables below, with how they were made
#   results/moe/layer-vs-ib.svg MoE layer time against the InfiniBand bandwidth
#   results/gshard-ep16/        one run with its Gantt chart (all-to-all phases)
#
# Job: examples/moe-layer-sweep.json, one dense layer then one MoE layer of 64
# experts (h = 4096, expert MLP 16384), 4096 tokens per GPU (weak scaling),
# expert parallel over the first N GPUs of platforms/dgx-a100-8node.xml
# (N = 8: one node, NVLink only; 16 to 64: 2 to 8 nodes over InfiniBand).
# "MoE layer time" = moe_layer_forward_s + moe_layer_backward_s of
# summary.json: from the dispatch call to the end of the combine, forward and
# backward, averaged over devices.  Sweeps (the others at their defaults:
# capacity factor 1.25, uniform routing, 200 Gb/s InfiniBand):
#   - InfiniBand bandwidth 12.5 to 400 Gb/s ('platform.link.ib*.bandwidth');
#   - routing skew: uniform, Zipf with exponent 0.5, 1.0, 1.5, at capacity
#     factor 1.25 and at 4.0 (few drops);
#   - capacity factor 1.0 to 2.0 under Zipf 1.0.
# Bash, awk and the trainsim command; about a minute on 2 cores.
set -euo pipefail
cd "$(dirname "$0")/.."
B=${1:-build}
T=$B/trainsim
[ -x "$T" ] || { echo "results/moe.sh: $T not built (run ./quickstart.sh)" >&2; exit 69; }
J=$(nproc)
JOB=examples/moe-layer-sweep.json
out=results/moe
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

# The first value of a key in a cJSON-printed file.
json_first() { sed -n "s/^[[:space:]]*\"$2\":[[:space:]]*\([^,]*\),\{0,1\}$/\1/p" "$1" | head -n 1; }

# point lines: id sweep gpus ib_gbps skew exponent capacity_factor
GPUS="8 16 32 64"
IBS="12.5 25 50 100 200 400"
: > "$tmp/points"
i=0
for n in $GPUS; do
  for ib in $IBS; do echo "$((i++)) ib $n $ib uniform 0 1.25" >> "$tmp/points"; done
  for sk in "uniform 0" "zipf 0.5" "zipf 1.0" "zipf 1.5"; do
    echo "$((i++)) skew $n 200 $sk 1.25" >> "$tmp/points"
    echo "$((i++)) skew4 $n 200 $sk 4.0" >> "$tmp/points"
  done
  for cf in 1.0 1.25 1.5 2.0; do echo "$((i++)) cf $n 200 zipf 1.0 $cf" >> "$tmp/points"; done
done

run_point() { # id sweep gpus ib skew exponent cf
  local id=$1 n=$3 ib=$4 skew=$5 ex=$6 cf=$7
  local bw
  bw=$(awk -v g="$ib" 'BEGIN{printf "%.17g", g * 1e9 / 8}')
  local sets=(--set "model.moe.expert_parallel=$n" --set "model.moe.capacity_factor=$cf"
              --set "model.moe.routing.skew=$skew" --set "platform.link.ib*.bandwidth=${bw}Bps")
  [ "$skew" = zipf ] && sets+=(--set "model.moe.routing.exponent=$ex")
  "$TS_T" run "$TS_JOB" "${sets[@]}" -o "$TS_TMP/p$id" --quiet
}
export -f run_point
export TS_T=$T TS_JOB=$JOB TS_TMP=$tmp
echo "== MoE what-ifs: $(wc -l < "$tmp/points") points on $J cores"
xargs -P "$J" -L 1 bash -c 'run_point "$@"' _ < "$tmp/points"

mkdir -p "$out"
{
  echo "sweep,gpus,ib_gbps,skew,exponent,capacity_factor,iteration_time_s,moe_layer_forward_s,moe_layer_backward_s,moe_layer_s,alltoall_time_share,expert_load_imbalance,tokens_dropped,tokens_computed,dropped_fraction,aux_loss"
  while read -r id sweep n ib skew ex cf; do
    f=$tmp/p$id/summary.json
    awk -v s="$sweep" -v n="$n" -v ib="$ib" -v sk="$skew" -v ex="$ex" -v cf="$cf" \
        -v it="$(json_first "$f" iteration_time_s)" -v fw="$(json_first "$f" moe_layer_forward_s)" \
        -v bw="$(json_first "$f" moe_layer_backward_s)" -v sh="$(json_first "$f" alltoall_time_share)" \
        -v im="$(json_first "$f" expert_load_imbalance)" -v dr="$(json_first "$f" tokens_dropped)" \
        -v co="$(json_first "$f" tokens_computed)" -v aux="$(json_first "$f" aux_loss)" \
        'BEGIN{printf "%s,%d,%s,%s,%s,%s,%.9g,%.9g,%.9g,%.9g,%.6f,%.6f,%d,%d,%.6f,%.6f\n",
               s, n, ib, sk, ex, cf, it, fw, bw, fw + bw, sh, im, dr, co, dr / (dr + co), aux}'
  done < "$tmp/points"
} > "$tmp/points.csv"
mv "$tmp/points.csv" "$out/points.csv"

# table FILTER ROWKEY COLKEY VALUE-EXPR: a markdown table from points.csv
table() {
  awk -F, -v want="$1" -v ck="$2" -v expr="$3" '
    NR == 1 { for (i = 1; i <= NF; i++) c[$i] = i; next }
    $1 != want { next }
    { col = (ck == "skew") ? ($c["skew"] == "uniform" ? "uniform" : "zipf " $c["exponent"]) : $c[ck]
      if (!(col in seen)) { seen[col] = 1; cols[nc++] = col }
      if (!($2 in rs)) { rs[$2] = 1; rows[nr++] = $2 }
      if (expr == "ms") v = sprintf("%.2f", 1000 * $c["moe_layer_s"])
      else if (expr == "share") v = sprintf("%.3f", $c["alltoall_time_share"])
      else if (expr == "imb") v = sprintf("%.2f", $c["expert_load_imbalance"])
      else v = sprintf("%.1f %%", 100 * $c["dropped_fraction"])
      val[$2, col] = v }
    END {
      h = "| GPUs |"; sep = "|---|"
      for (j = 0; j < nc; j++) { h = h " " cols[j] " |"; sep = sep "---|" }
      print h; print sep
      for (i = 0; i < nr; i++) {
        line = "| " rows[i] " |"
        for (j = 0; j < nc; j++) line = line " " val[rows[i], cols[j]] " |"
        print line
      }
    }' "$out/points.csv"
}

{
  echo "# GShard MoE layer: what-ifs"
  echo
  echo "Generated by results/moe.sh from results/moe/points.csv. Job: examples/moe-layer-sweep.json:"
  echo "one dense layer then one GShard top-2 MoE layer of 64 experts (h = 4096, expert MLP 16384,"
  echo "bf16), 4096 tokens per GPU in one gating group, expert parallel over the first N GPUs of"
  echo "platforms/dgx-a100-8node.xml (8 GPUs = one node on NVLink; 16 to 64 GPUs = 2 to 8 nodes over"
  echo "InfiniBand, one NIC per GPU, non-blocking fabric). All-to-all buffers are capacity-padded"
  echo "(GShard's einsum dispatch, \`moe.alltoall: \"capacity\"\`); expert compute is proportional to the"
  echo "tokens each expert received. MoE layer time = forward + backward of the layer (dispatch call"
  echo "to combine end, summary.json's moe_layer_forward_s + moe_layer_backward_s), averaged over"
  echo "devices. Defaults: capacity factor 1.25, uniform routing, 200 Gb/s InfiniBand."
  echo
  echo "## MoE layer time (ms) against the InfiniBand bandwidth (Gb/s per GPU NIC)"
  echo
  table ib ib_gbps ms
  echo
  echo "All-to-all time share of the iteration (sum over devices of the time in all-to-all calls /"
  echo "(devices x iteration time)):"
  echo
  table ib ib_gbps share
  echo
  echo "## MoE layer time (ms) against the routing skew (200 Gb/s)"
  echo
  echo "Zipf with exponent a: expert e is the first choice with probability proportional to"
  echo "(e + 1)^-a; the hottest experts sit on the first GPU."
  echo
  table skew skew ms
  echo
  echo "Expert load imbalance (max over mean of the tokens routed to each expert):"
  echo
  table skew skew imb
  echo
  echo "Token choices dropped beyond capacity:"
  echo
  table skew skew drop
  echo
  echo "At capacity factor 1.25 the experts are full even under uniform routing: the uniform prior"
  echo "(Gumbel noise on equal logits) leaves g2' close to g1', so most second choices are dispatched"
  echo "and the demand is well above 1.25 x the fair share. Skew then moves tokens from the dropped"
  echo "share of cold experts to the dropped share of hot ones, and the busiest GPU still computes"
  echo "about its full capacity: the layer time hardly moves, the drops do. With a capacity factor"
  echo "of 4.0 (padded buffers 3.2 x larger) the hot experts' GPU carries the skew:"
  echo
  table skew4 skew ms
  echo
  echo "Token choices dropped at capacity factor 4.0:"
  echo
  table skew4 skew drop
  echo
  echo "## MoE layer time (ms) against the capacity factor (Zipf 1.0, 200 Gb/s)"
  echo
  table cf capacity_factor ms
  echo
  echo "Token choices dropped beyond capacity:"
  echo
  table cf capacity_factor drop
} > "$tmp/moe.md"
mv "$tmp/moe.md" "$out/moe.md"

# The figure: MoE layer time against the IB bandwidth (log axis), one line per N.
awk -F, '
  NR == 1 { for (i = 1; i <= NF; i++) c[$i] = i; next }
  $1 != "ib" { next }
  { n = $2; x = $c["ib_gbps"]; y = 1000 * $c["moe_layer_s"]
    if (!(n in seen)) { seen[n] = 1; ser[ns++] = n }
    k = cnt[n]++; X[n, k] = x; Y[n, k] = y
    if (y > ymax) ymax = y
    if (xmin == "" || x < xmin) xmin = x; if (x > xmax) xmax = x }
  END {
    W = 640; H = 400; L = 70; R = 130; TOP = 40; BOT = 60; pw = W - L - R; ph = H - TOP - BOT
    step = 1; while (ymax / step > 8) step *= 2; top = step * (int(ymax / step) + 1)
    split("#0072B2 #E69F00 #009E73 #D55E00 #CC79A7 #56B4E9", col, " ")
    printf "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"%d\" height=\"%d\" viewBox=\"0 0 %d %d\" font-family=\"DejaVu Sans, Verdana, sans-serif\" font-size=\"12\">\n", W, H, W, H
    printf "<rect width=\"%d\" height=\"%d\" fill=\"#ffffff\"/>\n", W, H
    printf "<text x=\"%d\" y=\"22\" font-size=\"14\" font-weight=\"bold\">GShard MoE layer time against InfiniBand bandwidth</text>\n", L
    lx0 = log(xmin); lx1 = log(xmax)
    for (v = 0; v <= top + 1e-9; v += step) {
      y = TOP + ph - v / top * ph
      printf "<line x1=\"%d\" y1=\"%.2f\" x2=\"%d\" y2=\"%.2f\" stroke=\"#e3e6ea\"/>\n", L, y, L + pw, y
      printf "<text x=\"%d\" y=\"%.2f\" text-anchor=\"end\">%g</text>\n", L - 6, y + 4, v }
    for (k = 0; k < cnt[ser[0]]; k++) {
      x = L + (log(X[ser[0], k]) - lx0) / (lx1 - lx0) * pw
      printf "<line x1=\"%.2f\" y1=\"%d\" x2=\"%.2f\" y2=\"%d\" stroke=\"#333333\"/>\n", x, TOP + ph, x, TOP + ph + 4
      printf "<text x=\"%.2f\" y=\"%d\" text-anchor=\"middle\">%g</text>\n", x, TOP + ph + 18, X[ser[0], k] }
    printf "<line x1=\"%d\" y1=\"%d\" x2=\"%d\" y2=\"%d\" stroke=\"#333333\"/>\n", L, TOP + ph, L + pw, TOP + ph
    printf "<text x=\"%.1f\" y=\"%d\" text-anchor=\"middle\">InfiniBand bandwidth per GPU (Gb/s, log scale)</text>\n", L + pw / 2, H - 18
    printf "<text transform=\"translate(18,%.1f) rotate(-90)\" text-anchor=\"middle\">MoE layer time, forward + backward (ms)</text>\n", TOP + ph / 2
    for (s = 0; s < ns; s++) {
      n = ser[s]; pts = ""
      for (k = 0; k < cnt[n]; k++) {
        x = L + (log(X[n, k]) - lx0) / (lx1 - lx0) * pw; y = TOP + ph - Y[n, k] / top * ph
        pts = pts sprintf("%.2f,%.2f ", x, y)
        printf "<circle cx=\"%.2f\" cy=\"%.2f\" r=\"3\" fill=\"%s\"><title>%s GPUs, %g Gb/s: %.3f ms</title></circle>\n", x, y, col[s + 1], n, X[n, k], Y[n, k] }
      printf "<polyline points=\"%s\" fill=\"none\" stroke=\"%s\" stroke-width=\"2\"/>\n", pts, col[s + 1]
      printf "<line x1=\"%d\" y1=\"%d\" x2=\"%d\" y2=\"%d\" stroke=\"%s\" stroke-width=\"2\"/><text x=\"%d\" y=\"%d\">%s GPUs</text>\n", L + pw + 14, TOP + 10 + 20 * s, L + pw + 34, TOP + 10 + 20 * s, col[s + 1], L + pw + 40, TOP + 14 + 20 * s, n }
    print "</svg>" }' "$out/points.csv" > "$tmp/fig.svg"
mv "$tmp/fig.svg" "$out/layer-vs-ib.svg"

echo "== one MoE run with its Gantt chart (results/gshard-ep16)"
"$T" run examples/gshard-ep16.json -o results/gshard-ep16 --quiet
