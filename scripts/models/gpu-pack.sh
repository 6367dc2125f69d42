#!/usr/bin/env bash
# Builds what scripts/models/gpu-check.sh runs on a GPU machine, and packs it for the trip:
# the kairos-models integration tests (with the CPU-vs-CUDA parity tests) and the model
# benchmarks, built with `--features cuda` (pinned nvcc 13.0 from PyPI and link stubs, see
# scripts/models/cuda-build.sh), stripped and xz-compressed under target/gpu/. The device tool
# carries at most 64 MiB; the pack says its size.
#
# The tests build in the dev profile, as CI's CUDA build; the benchmarks as `cargo bench`
# builds them (optimised throughout: the host side of each kernel launch is part of what they
# measure).
#
#   scripts/models/gpu-pack.sh            # CUDA build (for the GPU machine)
#   scripts/models/gpu-pack.sh --cpu      # CPU build: checks gpu-check.sh itself on this machine
#
# Then, with the device tool, from the repository root:
#   run(command="scripts/models/gpu-check.sh", carry=["target/gpu"])
set -euo pipefail
cd "$(dirname "$0")/../.."
export CARGO_PROFILE_DEV_DEBUG=${CARGO_PROFILE_DEV_DEBUG:-line-tables-only}
export CARGO_INCREMENTAL=${CARGO_INCREMENTAL:-0}
out=target/gpu
rm -rf "$out"
mkdir -p "$out"

if [ "${1:-}" = --cpu ]; then
  cargo_() { cargo "$@"; }
  echo cpu > "$out/build"
else
  cargo_() { scripts/models/cuda-build.sh "$@"; }
  echo cuda > "$out/build"
fi

# Builds one target and prints the path of its executable.
executable() { # test|bench ARGS...
  cargo_ "$@" -p kairos-models --locked --no-run --message-format=json-render-diagnostics |
    python3 -c '
import json, sys
exes = [m["executable"] for m in map(json.loads, sys.stdin)
        if m.get("reason") == "compiler-artifact" and m.get("executable")]
print(exes[-1])'
}

pack() { # EXECUTABLE NAME
  strip -o "$out/$2" "$1"
  xz -T0 -6 -f "$out/$2"
}

pack "$(executable test --test integration)" models-integration
pack "$(executable bench --bench inference)" models-inference
ls -l "$out"
size=$(du -cb "$out"/*.xz | tail -1 | cut -f1)
echo "packed $((size / 1024 / 1024)) MiB into $out (the device tool carries at most 64 MiB)"
[ "$size" -lt $((64 * 1024 * 1024)) ]
