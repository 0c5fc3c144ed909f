# Shared by serve.sh and test.sh: a virtual environment in .venv with Python >= 3.11.
# On a fresh Debian machine python3-venv may be missing; it is installed when we may (root).

ensure_venv() {
  if ! python3 -c 'import sys; sys.exit(sys.version_info < (3, 11))'; then
    echo "sipsvc needs Python 3.11 or newer (python3 is $(python3 --version 2>&1))" >&2
    exit 1
  fi
  if [ -x .venv/bin/python ]; then
    return
  fi
  if ! python3 -m venv .venv 2>/dev/null; then
    rm -rf .venv
    if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
      apt-get update -qq && apt-get install -y -qq python3-venv >/dev/null
    else
      echo "python3 -m venv failed: install python3-venv (apt-get install python3-venv)" >&2
      exit 1
    fi
    python3 -m venv .venv
  fi
  .venv/bin/python -m pip install -q --upgrade pip
}

# Debian packages the tests need (SIPp is a real SIP peer in the integration tests).
ensure_test_packages() {
  if command -v sipp >/dev/null; then
    return
  fi
  if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
    apt-get update -qq && apt-get install -y -qq sip-tester >/dev/null
  else
    echo "sipp is missing: install Debian's sip-tester (apt-get install sip-tester)" >&2
    exit 1
  fi
}
