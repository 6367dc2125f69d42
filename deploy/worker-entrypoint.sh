#!/usr/bin/env bash
# The worker image's entry point: fetch the weights into the volume unless they are there
# (scripts/models/fetch.sh is idempotent and checks the files it joins), then become
# `kairos worker` with the image's or the deployment's arguments. A failed fetch exits non-zero
# and the orchestrator restarts the container.
set -euo pipefail
cd /opt/kairos
scripts/models/fetch.sh
exec kairos worker "$@"
