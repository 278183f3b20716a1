#!/usr/bin/env bash
# make_corpus.sh: regenerates the seed corpora of tests/fuzz/corpus/ from
# the repository's own inputs (README "Fuzzing").  Job files are copied with
# their paths rewritten to resolve from the repository root, where the
# fuzzers run: "../../platforms/X" and "../platforms/X" become "X" (found in platforms/) and a
# config or platform in tests/jobs/ is named tests/jobs/NAME.  Run from anywhere;
# replaces the corpora wholesale.
set -euo pipefail
cd "$(dirname "$0")/../.."
c=tests/fuzz/corpus
rm -rf "$c/job" "$c/hf" "$c/set" "$c/platform"
mkdir -p "$c/job" "$c/hf" "$c/set" "$c/platform"

# fuzz_job: every example and test job (the configs go to fuzz_hf).
for f in examples/*.json tests/jobs/*.json; do
  case $f in *config*.json) continue ;; esac
  sed -e 's#"\.\./\(\.\./\)\{0,1\}platforms/#"#g' \
      -e 's#"bad-platform\.xml"#"tests/jobs/bad-platform.xml"#' \
      -e 's#"\(gpt2\|llama\|mixtral\|mixtral-top1\)\(-config[a-z-]*\.json\)"#"tests/jobs/\1\2"#g' \
      "$f" > "$c/job/$(basename "$(dirname "$f")")-$(basename "$f")"
done

# fuzz_hf: the Hugging Face configs.
for f in tests/jobs/*config*.json examples/hf/*.json; do
  cp "$f" "$c/hf/$(basename "$f")"
done

# fuzz_set: one --set per line, as the README and the CLI tests use them.
n=0
while IFS= read -r line; do
  n=$((n + 1))
  printf '%b' "$line" > "$c/set/set-$(printf %02d $n)"
done <<'SETS'
stages=4
microbatches=16
schedule=gpipe\nmicrobatches=8
schedule=interleaved\nchunks=2\nstages=2\nmicrobatches=4
schedule=2bw\niterations=3
schedule=zb-h1
schedule=chimera\nstages=4
schedule=varuna\nrecompute=full
schedule=mobius\nstages=4\ndevices=2\nmapping=cross\nmapping_groups=2
schedule=mobius\ndevices=2\nstages=4\nmapping=[0,1,0,1]
schedule=gshard\nstages=1\nmodel.moe.experts=4\nmodel.moe.expert_parallel=1
schedule=gshard-gpipe\nmodel.moe.experts=8\nmodel.moe.every=2\nmodel.moe.capacity_factor=1.25
schedule=gshard\nstages=1\nmodel.moe.experts=4\nmodel.moe.routing.skew=zipf\nmodel.moe.routing.exponent=0.5\nmodel.moe.routing.seed=7
schedule=gshard\nstages=1\nmodel.moe.experts=2\nmodel.moe.routing.skew=uniform
schedule=gshard\nstages=1\nmodel.moe.experts=4\nmodel.moe.alltoall=tokens
model.layers=24\nmodel.hidden=1024\nmodel.heads=16
model.ffn_hidden=4096\nmodel.vocab=50257\nmodel.gated_mlp=true
model.flash_attention=false\nmodel.dropout=true
model={"kind": "synthetic", "forward_s": 1.0, "backward_s": 2.0, "activation_message_bytes": 0, "activation_bytes": 1}
model={"kind": "synthetic", "forward_s": [1,2], "backward_s": 2.0, "activation_message_bytes": 1e6, "activation_bytes": 1}\nmodel.weight_grad_s=0.5
platform=pcie-4gpu.xml\nplacement=["gpu0","gpu1"]
platform=hgx-h200.xml
platform.link.ib*.bandwidth=50GBps
platform.link.nvlink*.latency=2us
platform.host.gpu*.speed=312Tf
platform.link.pcie.bandwidth=200Gbps\nplatform.link.pcie.latency=1e-6
micro_batch_size=2\nseq_len=2048\nbytes_per_element=4
description=fuzz
stages
foo=1
model.layers=24.5
platform.link.ib*.bandwidth=fast
SETS
# fuzz_platform: the smaller shipped platforms without their comment
# headers, the test's broken one, and small variants: a route missing, a
# route twice, zones SimGrid routes otherwise (Full, Floyd, Cluster, nested
# zones joined by zoneRoutes), nesting past the limit, numbers out of range.
strip() { perl -0777 -pe 's/<!--.*?-->\n?//gs' "$1"; }
for n in pcie-4gpu hgx-h200 commodity-8gpu h200-pcie-8gpu commodity-2node dgx-a100-2node; do
  strip platforms/$n.xml > "$c/platform/$n.xml"
done
cp tests/jobs/bad-platform.xml "$c/platform/jobs-bad-platform.xml"
p4=$c/platform/pcie-4gpu.xml
awk '/<route / && !done { done = 1; next } 1' "$p4" > "$c/platform/pcie-4gpu-route-missing.xml"
awk '/<route / && !done { done = 1; print } 1' "$p4" > "$c/platform/pcie-4gpu-route-twice.xml"
sed 's/latency="5e-06s"/latency="1e-303s"/; s/bandwidth="25000000000Bps"/bandwidth="1e308TBps"/' \
  "$p4" > "$c/platform/pcie-4gpu-numbers.xml"
head='<?xml version="1.0"?>
<!DOCTYPE platform SYSTEM "https://simgrid.org/simgrid.dtd">
<platform version="4.1">'
cat > "$c/platform/full.xml" <<XML
$head
  <zone id="z" routing="Full">
    <host id="gpu0" speed="1Tf"/> <host id="gpu1" speed="1Tf" core="2"/>
    <link id="l0" bandwidth="25GBps" latency="5us" sharing_policy="SPLITDUPLEX"/>
    <link id="l1" bandwidth="1.25e9Bps" latency="0" sharing_policy="FATPIPE"/>
    <route src="gpu0" dst="gpu1" symmetrical="YES"><link_ctn id="l0" direction="UP"/><link_ctn id="l1"/></route>
  </zone>
</platform>
XML
cat > "$c/platform/floyd.xml" <<XML
$head
  <zone id="z" routing="Floyd">
    <host id="a" speed="1Gf"/> <host id="b" speed="1Gf"/> <host id="c" speed="1Gf"/>
    <router id="r"/>
    <link id="la" bandwidth="1GBps" latency="1ms"/> <link id="lb" bandwidth="1GBps" latency="1ms"/>
    <link id="lc" bandwidth="10Gbps" latency="1ns"/>
    <route src="a" dst="r"><link_ctn id="la"/></route>
    <route src="b" dst="r"><link_ctn id="lb"/></route>
    <route src="r" dst="c" symmetrical="NO"><link_ctn id="lc"/></route>
    <route src="c" dst="r" symmetrical="NO"><link_ctn id="lc"/></route>
  </zone>
</platform>
XML
cat > "$c/platform/zones.xml" <<XML
$head
  <zone id="top" routing="Full">
    <zone id="n0" routing="Full">
      <host id="n0-gpu0" speed="1Tf"/> <host id="n0-gpu1" speed="1Tf"/> <router id="n0-nic"/>
      <link id="n0-l" bandwidth="300GBps" latency="1us"/>
      <route src="n0-gpu0" dst="n0-gpu1"><link_ctn id="n0-l"/></route>
      <route src="n0-gpu0" dst="n0-nic"><link_ctn id="n0-l"/></route>
      <route src="n0-gpu1" dst="n0-nic"><link_ctn id="n0-l"/></route>
    </zone>
    <cluster id="c1" prefix="c1-gpu" suffix="" radical="0-3" speed="1Tf" bw="25GBps" lat="2us" router_id="c1-router"/>
    <link id="ib" bandwidth="25GBps" latency="1us"/>
    <zoneRoute src="n0" dst="c1" gw_src="n0-nic" gw_dst="c1-router"><link_ctn id="ib"/></zoneRoute>
  </zone>
</platform>
XML
{
  echo "$head"
  for i in $(seq 1 70); do echo "<zone id=\"z$i\" routing=\"Full\">"; done
  echo '<host id="h" speed="1f"/>'
  for i in $(seq 1 70); do echo "</zone>"; done
  echo '</platform>'
} > "$c/platform/nested-70.xml"

# The reproducers of fixed findings (tests/fuzz/regressions/TARGET/): every
# run replays them first.
for t in job hf set platform; do
  for f in tests/fuzz/regressions/$t/*; do
    [ -f "$f" ] && cp "$f" "$c/$t/fixed-$(basename "$f")"
  done
done

du -sh "$c"
