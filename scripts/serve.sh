#!/usr/bin/env bash
# Installs sipsvc into .venv and runs `sipsvc serve` (embedded Redis under ./var unless
# --redis-url or SIPSVC_REDIS_URL says otherwise). Extra arguments go to `sipsvc serve`.
set -euo pipefail
cd "$(dirname "$0")/.."
. scripts/lib.sh
ensure_venv
.venv/bin/python -m pip install -q -e .
exec .venv/bin/sipsvc serve "$@"
