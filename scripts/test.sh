#!/usr/bin/env bash
# The test command: README and CI run exactly this. It sets up what the selected tests need on a
# fresh machine, then runs pytest with the arguments given. Expensive parts are cached by version
# under ${XDG_CACHE_HOME:-~/.cache}/wirebridge: the llama.cpp servers (built from the
# llama-cpp-python sdist, ~15 minutes the first time) and Codex CLI (npm). For example
#   scripts/test.sh                       # everything (CI): builds llama.cpp, installs Codex
#   scripts/test.sh -m "not interop"      # the quick run: neither llama.cpp nor Codex
#   scripts/test.sh tests/test_decode.py  # only what those files need
#
# What is needed is asked of pytest itself: with arguments, a collection pass (`--collect-only`
# with the same arguments, so -m, -k, paths and --deselect select exactly as the run will) lists
# the selected tests; llama.cpp is built only if one of them lies in tests/interop/, Codex is
# installed only if one of them comes from a module that uses `codex_binary()`
# (tests/test_codex_cli.py and the interop test that imports it), the JavaScript clients (npm,
# scripts/install_js_clients.sh) only for modules that use `js_modules()` (tests/test_js_*.py).
# Without arguments, or when the collection pass fails (the run itself then reports why),
# everything is set up.
set -euo pipefail
cd "$(dirname "$0")/.."

venv="${WIREBRIDGE_VENV:-.venv}"
if [ ! -x "$venv/bin/python" ]; then
  python3 -m venv "$venv"
fi
"$venv/bin/python" -m pip install -q --upgrade pip
"$venv/bin/python" -m pip install -q -e '.[test]'

# Prints the set-up steps the selected tests need, among "llamacpp codex js".
needs() {
  if [ "$#" -eq 0 ]; then
    echo "llamacpp codex js"
    return
  fi
  local out
  out="$(mktemp)"
  if WIREBRIDGE_NEEDS_OUT="$out" "$venv/bin/python" - "$@" >/dev/null 2>&1 <<'PY'; then
import os
import sys
from pathlib import Path

import pytest

INTEROP = Path("tests/interop").resolve()


class Needs:
    def __init__(self) -> None:
        self.found: set[str] = set()

    def pytest_collection_finish(self, session: pytest.Session) -> None:
        for item in session.items:
            if item.path.resolve().is_relative_to(INTEROP):
                self.found.add("llamacpp")
            if hasattr(getattr(item, "module", None), "codex_binary"):
                self.found.add("codex")
            if hasattr(getattr(item, "module", None), "js_modules"):
                self.found.add("js")


needs = Needs()
code = pytest.main([*sys.argv[1:], "--collect-only", "-q"], plugins=[needs])
if code not in (pytest.ExitCode.OK, pytest.ExitCode.NO_TESTS_COLLECTED):
    sys.exit(1)
Path(os.environ["WIREBRIDGE_NEEDS_OUT"]).write_text(" ".join(sorted(needs.found)))
PY
    cat "$out"
    echo
  else
    echo "llamacpp codex js"
  fi
  rm -f "$out"
}
need="$(needs "$@")"

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
if [[ " $need " == *" codex "* ]]; then
  optional bash scripts/install_codex.sh >/dev/null
else
  echo "test.sh: no selected test runs Codex CLI; not installing it" >&2
fi
# Debian's chromium for the console's browser tests (Playwright drives it; no browser download).
optional bash scripts/install_chromium.sh
# openai-node, the Vercel AI SDK and OpenAI Agents JS from npm, pinned, for tests/test_js_*.py.
if [[ " $need " == *" js "* ]]; then
  optional bash scripts/install_js_clients.sh >/dev/null
else
  echo "test.sh: no selected test runs the JavaScript clients; not installing them" >&2
fi
# llama-server and the llama-cpp-python server for the interop tier, built once per version.
if [[ " $need " == *" llamacpp "* ]]; then
  optional bash scripts/build_llamacpp.sh
else
  echo "test.sh: no selected test is in tests/interop/; not building llama.cpp" >&2
fi

"$venv/bin/python" -m pytest "$@"
