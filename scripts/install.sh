#!/usr/bin/env bash
# Installs sipsvc into .venv (creating it first): the one install command, used by
# scripts/serve.sh, scripts/test.sh (so by CI) and the container image (Dockerfile).
# Optional argument: the extras to install too, e.g. `bash scripts/install.sh test`.
set -euo pipefail
cd "$(dirname "$0")/.."
. scripts/lib.sh
ensure_venv
.venv/bin/python -m pip install -q -e ".${1:+[$1]}"
