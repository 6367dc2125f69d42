#!/usr/bin/env bash
# The inference benchmarks of the worker and the gateway, with their peers, on this machine:
#   - agent/benches/gateway.rs: what `kairos router serve` adds to a request on loopback,
#     beside LiteLLM's proxy (litellm[proxy] 1.80.0 in .venv-litellm), and the time to fail
#     over when the primary upstream dies;
#   - agent/benches/worker_embed.rs: `kairos worker` embedding throughput on the CPU beside
#     sentence-transformers 6.2.0 (torch 2.15.0 in .venv-st) on the same texts and batch.
# Needs the weights of scripts/models/fetch.sh. The peers are installed on first use.
#   scripts/bench/worker.sh [REQUESTS]
set -euo pipefail
cd "$(dirname "$0")/../.."
if [ ! -x .venv-st/bin/python ]; then
  python3 -m venv .venv-st
  .venv-st/bin/pip install -q torch==2.15.0 sentence-transformers==6.2.0
fi
if [ ! -x .venv-litellm/bin/litellm ]; then
  python3 -m venv .venv-litellm
  .venv-litellm/bin/pip install -q "litellm[proxy]==1.80.0"
fi
echo "== machine: $(nproc) cores, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | xargs)"
KAIROS_BENCH_LITELLM=$PWD/.venv-litellm/bin/litellm cargo bench -p kairos-agent --bench gateway -- "${1:-20000}"
KAIROS_BENCH_PYTHON=$PWD/.venv-st/bin/python cargo bench -p kairos-agent --bench worker_embed
