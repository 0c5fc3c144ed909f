#!/usr/bin/env bash
# Installs sipsvc into .venv and runs `sipsvc serve` (embedded Redis under ./var unless
# --redis-url or SIPSVC_REDIS_URL says otherwise). Extra arguments go to `sipsvc serve`.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/install.sh
exec .venv/bin/sipsvc serve "$@"
