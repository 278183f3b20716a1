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
rm -rf "$c/job" "$c/hf" "$c/set"
mkdir -p "$c/job" "$c/hf" "$c/set"

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
du -sh "$c"
