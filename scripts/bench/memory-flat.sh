#!/usr/bin/env bash
# Memory over a long run (issue 12): the agent of `kairos run` (paper venue, journal, risk
# engine, metrics) on the spot BTC recording, looped LOOPS times by a Binance-format feed server
# on 127.0.0.1. Prints the resident memory after every loop; fails if the last is more than 10%
# above the first. Usage: scripts/bench/memory-flat.sh [LOOPS] (default 10).
set -euo pipefail
cd "$(dirname "$0")/../.."
cargo run --release --locked -q -p kairos-agent --example memory_loop -- "${1:-10}" \
  ../shared/data/binance-ws/spot/btcusdt_20240808.gz
