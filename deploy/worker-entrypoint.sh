#!/usr/bin/env bash
# The worker image's entry point: fetch the weights into the volume unless they are there
# (scripts/models/fetch.sh is idempotent and checks the files it joins), then become
# `kairos worker` with the image's or the deployment's arguments (model paths relative to the
# folder it runs in). A failed fetch exits non-zero and the orchestrator restarts the container.
set -euo pipefail
ROOT=/opt/kairos
if ! { mkdir -p "$ROOT/target/models" && touch "$ROOT/target/.writable"; } 2>/dev/null; then
  # A volume mounted root-owned (some providers do not set its group for the image's user):
  # keep serving, from a folder this user can write, at the cost of a download per start.
  echo "kairos-worker: $ROOT/target is not writable by uid $(id -u); the weights go to" \
    "/tmp/kairos/target and are fetched again on every start (make the volume writable" \
    "by uid 10001 to keep them)" >&2
  mkdir -p /tmp/kairos/scripts/models
  cp "$ROOT/scripts/models/fetch.sh" /tmp/kairos/scripts/models/fetch.sh
  ROOT=/tmp/kairos
fi
cd "$ROOT"
scripts/models/fetch.sh
exec kairos worker "$@"
