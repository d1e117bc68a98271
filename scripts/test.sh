#!/usr/bin/env bash
# The test command: README and CI run exactly this. It sets up everything the suite needs on a
# fresh machine, then runs the whole suite. Expensive parts are cached by version under
# ${XDG_CACHE_HOME:-~/.cache}/wirebridge: the llama.cpp servers (built from the llama-cpp-python
# sdist, ~15 minutes the first time) and Codex CLI (npm). Arguments go to pytest, e.g.
#   scripts/test.sh -m "not interop"      # leave out the real-server tier
set -euo pipefail
cd "$(dirname "$0")/.."

venv="${WIREBRIDGE_VENV:-.venv}"
if [ ! -x "$venv/bin/python" ]; then
  python3 -m venv "$venv"
fi
"$venv/bin/python" -m pip install -q --upgrade pip
"$venv/bin/python" -m pip install -q -e '.[test]'

# Exit code 3 from a set-up script means "this machine lacks the tool" (npm, a compiler): the
# tests that need it then skip and say why. Any other failure stops here.
optional() {
  local code=0
  "$@" || code=$?
  if [ "$code" -eq 3 ]; then
    echo "test.sh: $* is not possible on this machine; its tests will skip" >&2
  elif [ "$code" -ne 0 ]; then
    exit "$code"
  fi
}

# A throwaway PostgreSQL cluster on loopback for the store tests (Debian's package); stopped at
# the end only if this run started it. The PostgreSQL tests must then run, not skip.
if ! bash scripts/start_postgres.sh status >/dev/null 2>&1; then
  trap 'bash scripts/start_postgres.sh stop >/dev/null 2>&1 || true' EXIT
fi
WIREBRIDGE_TEST_POSTGRES_URL="$(bash scripts/start_postgres.sh)"
export WIREBRIDGE_TEST_POSTGRES_URL WIREBRIDGE_REQUIRE_POSTGRES=1
# Codex CLI from npm, pinned, for the end-to-end tests through `wirebridge serve`.
optional bash scripts/install_codex.sh >/dev/null
# llama-server and the llama-cpp-python server for the interop tier, built once per version.
optional bash scripts/build_llamacpp.sh

"$venv/bin/python" -m pytest "$@"
