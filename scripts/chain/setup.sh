#!/usr/bin/env bash
# Installs what the on-chain tests run against, pinned:
#   - eth-account 0.14.0 (Python, in target/eth-venv): the independent signer and key-file
#     implementation of chain/tests/interop.rs.
# Idempotent; CI runs it before the tests.
set -euo pipefail
cd "$(dirname "$0")/../.."
VENV=target/eth-venv
if ! "$VENV/bin/python" -c "import eth_account" 2>/dev/null; then
  python3 -m venv "$VENV"
  "$VENV/bin/pip" install -q eth-account==0.14.0
fi
#   - anvil and cast (foundry 1.7.1) and Uniswap V2's compiled contracts (npm, in
#     scripts/chain/node_modules, from package-lock.json): the node and contracts of
#     chain/tests/anvil_*.rs.
if [ ! -x scripts/chain/node_modules/@foundry-rs/anvil-linux-amd64/bin/anvil ]; then
  (cd scripts/chain && npm ci --silent --no-audit --no-fund)
fi
