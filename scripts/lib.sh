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

# Debian packages the tests need: SIPp (a real SIP peer in the integration tests), and
# headless Chromium with its WebDriver (the operator page's browser test).
ensure_test_packages() {
  local missing=()
  command -v sipp >/dev/null || missing+=(sip-tester)
  command -v chromium >/dev/null || missing+=(chromium)
  command -v chromedriver >/dev/null || missing+=(chromium-driver)
  if [ ${#missing[@]} = 0 ]; then
    return
  fi
  if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
    apt-get update -qq && apt-get install -y -qq "${missing[@]}" >/dev/null
  else
    echo "missing Debian packages: ${missing[*]} (apt-get install ${missing[*]})" >&2
    exit 1
  fi
}
