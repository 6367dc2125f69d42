#!/usr/bin/env bash
# The GPU checks of issue 3, in one run on a GPU machine (no Rust toolchain there: the
# binaries come from scripts/models/gpu-pack.sh, carried in target/gpu):
#   1. CPU against CUDA: the cuda_parity tests (MiniLM f32/f16/bf16, forecasters, Gemma
#      logits), with KAIROS_REQUIRE_GPU=1 so that a missing GPU fails;
#   2. Kairos' model benchmarks on cuda:0: MiniLM batch 1 x 32 and 256 x 128 in f16, Gemma-3-270M
#      Q4_K_M decode, with synthetic weights of the real shapes and formats (the real ones are
#      larger than what travels, and the machine cannot fetch them);
#   3. PyTorch on the same shapes and dtypes (scripts/bench/models_torch.py --device cuda).
# Results go to $OUT (the device tool's folder) or target/gpu-results. With
# KAIROS_GPU_CHECK_DEVICE=cpu and a `gpu-pack.sh --cpu` pack, the same steps run on a CPU.
set -uo pipefail
cd "$(dirname "$0")/../.."
OUT=${OUT:-target/gpu-results}
mkdir -p "$OUT"
DEVICE=${KAIROS_GPU_CHECK_DEVICE:-cuda:0}
export LD_LIBRARY_PATH=/usr/local/cuda-13.0/targets/x86_64-linux/lib${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}
bin=$(mktemp -d)
unxz_() { # FILE.xz OUT: xz, or Python's lzma where xz is not installed
  if command -v xz > /dev/null; then
    xz -dc "$1" > "$2"
  else
    python3 -c 'import lzma, shutil, sys; shutil.copyfileobj(lzma.open(sys.argv[1]), open(sys.argv[2], "wb"))' "$1" "$2"
  fi
}
ls target/gpu/*.xz > /dev/null || { echo "no target/gpu/*.xz: run scripts/models/gpu-pack.sh and carry target/gpu"; exit 2; }
for f in target/gpu/*.xz; do
  name=$(basename "${f%.xz}")
  unxz_ "$f" "$bin/$name" && chmod +x "$bin/$name"
done
status=0
step() { # NAME COMMAND...: runs it, output to $OUT/NAME.txt, and says how it went
  local name=$1
  shift
  local t0=$SECONDS
  "$@" > "$OUT/$name.txt" 2>&1
  local rc=$?
  echo "$name: rc=$rc in $((SECONDS - t0)) s"
  tail -n 25 "$OUT/$name.txt"
  [ $rc -eq 0 ] || status=1
}

{ nvidia-smi || true; nproc; python3 -c 'import torch; print("torch", torch.__version__)'; } > "$OUT/machine.txt" 2>&1
cat "$OUT/machine.txt"
if [ "$DEVICE" = cpu ]; then
  step parity env KAIROS_PARITY_DEVICE=cpu "$bin/models-integration" cuda_parity:: --test-threads 1
  torch_device=cpu
else
  step parity env KAIROS_REQUIRE_GPU=1 "$bin/models-integration" cuda_parity:: --test-threads 1
  torch_device=cuda
fi
# Criterion writes its reports under target/criterion.
step bench-kairos env KAIROS_BENCH_DEVICE="$DEVICE" KAIROS_BENCH_SYNTHETIC=1 \
  "$bin/models-inference" --bench 'minilm|gemma'
step bench-torch python3 scripts/bench/models_torch.py --device "$torch_device" --synthetic
cp -r target/criterion "$OUT/criterion" 2>/dev/null || true
exit $status
