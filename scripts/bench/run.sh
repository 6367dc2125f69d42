#!/usr/bin/env bash
# Runs the engine and indicator benchmarks and their peers (backtesting.py, TA-Lib) on this
# machine, one after the other.
#   scripts/bench/run.sh [BARS]      (default 10,000,000)
# The peer is installed in a virtualenv at .venv-bench on first use.
set -euo pipefail
cd "$(dirname "$0")/../.."
BARS=${1:-10000000}
VENV=.venv-bench
if [ ! -x "$VENV/bin/python" ]; then
  python3 -m venv "$VENV"
  "$VENV/bin/pip" install -q backtesting==0.6.6 TA-Lib==0.8.2 pandas numpy
fi
echo "== machine: $(nproc) cores, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | xargs)"
echo "== kairos (criterion, one core)"
KAIROS_BENCH_BARS=$BARS cargo bench -p kairos-backtests --bench engine -- --noplot 2>&1 | grep -E "time:|thrpt:|^engine/|^kairos:"
echo "== backtesting.py"
"$VENV/bin/python" scripts/bench/peer_backtesting_py.py --bars "$BARS"
echo "== indicators: kairos (criterion)"
cargo bench -p kairos-strategies --bench indicators -- --noplot 2>&1 | grep -E "^indicators/|thrpt:"
echo "== indicators: TA-Lib"
"$VENV/bin/python" scripts/bench/peer_talib.py
