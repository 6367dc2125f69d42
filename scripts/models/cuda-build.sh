#!/usr/bin/env bash
# Builds Kairos with CUDA on a machine without a GPU or a CUDA toolkit: installs the pinned
# nvcc 13.0 from PyPI and link stubs (the shared scripts in ../shared/tools explain both), then
# runs `cargo build --features cuda` with the arguments given (default: the kairos binary in
# release). The binary runs on a GPU machine with
#   LD_LIBRARY_PATH=/usr/local/cuda-13.0/targets/x86_64-linux/lib
# CUDA_COMPUTE_CAP defaults to 90 (H100/H200).
#   scripts/models/cuda-build.sh                       # release kairos binary
#   scripts/models/cuda-build.sh check -p kairos-models   # any cargo subcommand and flags
set -euo pipefail
cd "$(dirname "$0")/../.."
TOOLS=${KAIROS_SHARED_TOOLS:-../shared/tools}
eval "$("$TOOLS/cuda-toolchain.sh")"
cargo fetch --locked >/dev/null
"$TOOLS/cuda-stubs.sh"
# cudarc's build script adds the stub folder to the link search only if it existed when the
# script last ran; a target folder whose script ran before the stubs were made would not link.
# The C compiler driver (the linker Rust calls) searches LIBRARY_PATH too, which no cargo
# fingerprint tracks, so this costs no rebuild.
export LIBRARY_PATH="$CUDA_HOME/lib/stubs${LIBRARY_PATH:+:$LIBRARY_PATH}"
if [ $# -eq 0 ]; then
  set -- build --release -p kairos-agent
fi
cmd=$1
shift
exec cargo "$cmd" --features cuda "$@"
