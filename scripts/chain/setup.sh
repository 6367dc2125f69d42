#!/usr/bin/env bash
# Installs what the on-chain tests run against, pinned:
#   - eth-account 0.14.0 (Python, in target/eth-venv): the independent signer and key-file
#     implementation of chain/tests/integration/interop.rs.
# Idempotent; CI runs it before the tests.
set -euo pipefail
cd "$(dirname "$0")/../.."
VENV=target/eth-venv
if ! "$VENV/bin/python" -c "import eth_account" 2>/dev/null; then
  python3 -m venv "$VENV"
  "$VENV/bin/pip" install -q eth-account==0.14.0
fi
#   - anvil and cast (foundry 1.7.1) and Uniswap V2's and V3's compiled contracts (npm, in
#     scripts/chain/node_modules, from package-lock.json): the node and contracts of
#     chain/tests/integration/anvil_*.rs. Reinstalled whenever package-lock.json changes.
STAMP=scripts/chain/node_modules/.kairos-lock-sha256
WANT=$(sha256sum scripts/chain/package-lock.json | cut -d' ' -f1)
if [ "$(cat "$STAMP" 2>/dev/null)" != "$WANT" ]; then
  (cd scripts/chain && npm ci --silent --no-audit --no-fund)
  echo "$WANT" > "$STAMP"
fi
