#!/usr/bin/env bash
# Records the reference figures the parity tests compare against:
#   backtests/tests/fixtures/backtesting_py/*.json  (backtesting.py 0.6.6 SmaCross)
#   strategies/tests/fixtures/talib_reference.json  (TA-Lib 0.8.2)
# Installs the pinned Python packages in a virtualenv under target/ on first use.
set -euo pipefail
cd "$(dirname "$0")/../.."
VENV=${VENV:-target/reference-venv}
if [ ! -x "$VENV/bin/python" ]; then
  python3 -m venv "$VENV"
  "$VENV/bin/pip" install -q backtesting==0.6.6 TA-Lib==0.8.2 pandas numpy
fi
DATA=../shared/data/bars
OUT=backtests/tests/fixtures/backtesting_py
mkdir -p "$OUT"
for f in EURUSD.csv btc-perp-20211231-20220201_1m.csv sp500.csv.gz; do
  name=${f%%.*}
  echo "recording $f" >&2
  "$VENV/bin/python" scripts/reference/backtesting_py_reference.py "$DATA/$f" \
    --fast 10 --slow 20 --cash 100000 --commission 0.0002 > "$OUT/sma_cross_10_20_$name.json"
done
"$VENV/bin/python" scripts/reference/talib_reference.py > strategies/tests/fixtures/talib_reference.json
