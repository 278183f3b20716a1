#!/usr/bin/env bash
# Quick start, command 1: installs what is missing (Debian 12, as root),
# builds trainsim, and simulates the shipped default job (GPT-3 2.7B under
# 1F1B on two DGX-A100-like nodes), writing trainsim-out/{summary.json,
# timeline.csv,trace.json,gantt.svg,report.html,paje.trace} and prints a
# short summary.
# Idempotent: a second run installs nothing and rebuilds only what changed.
set -euo pipefail
cd "$(dirname "$0")"
. ./deps.sh
ts_install_deps
cmake -S . -B build -DCMAKE_BUILD_TYPE=RelWithDebInfo >/dev/null
cmake --build build -j"$(nproc)" --target trainsim >/dev/null
./build/trainsim run -o trainsim-out "$@"
