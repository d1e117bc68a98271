#!/usr/bin/env bash
# Install the pinned JavaScript Responses clients from npm, once, into the user cache; print the
# node_modules directory (tests/js/*.mjs run with NODE_PATH set to it).
#
# The JS tier (tests/test_js_clients.py) looks for them at
#   ${XDG_CACHE_HOME:-$HOME/.cache}/wirebridge/js-clients-<key>/node_modules
# where <key> names the pinned versions, so a new pin is a new directory. Running this again is a
# no-op once the marker file is there; an interrupted install is redone. Exit 3: no npm here.
set -euo pipefail

# The versions the tests ran with (README, "Clients"). Change them here only.
PACKAGES=(
    "openai@7.59.0"
    "ai@6.0.326"
    "@ai-sdk/openai@3.0.141"
    "@openai/agents@0.20.0"
    "zod@4.6.7"
)
KEY="$(printf '%s\n' "${PACKAGES[@]}" | sha256sum | cut -c1-12)"
CACHE="${XDG_CACHE_HOME:-$HOME/.cache}/wirebridge"
PREFIX="$CACHE/js-clients-$KEY"
MARKER="$PREFIX/.installed"

if [[ "${1:-}" == "--versions" ]]; then
    printf '%s\n' "${PACKAGES[@]}"
    exit 0
fi
if [[ -f "$MARKER" ]]; then
    echo "$PREFIX/node_modules"
    exit 0
fi
if ! command -v npm >/dev/null 2>&1 || ! command -v node >/dev/null 2>&1; then
    echo "install_js_clients.sh: node/npm is not installed; cannot install ${PACKAGES[*]}" >&2
    exit 3
fi

mkdir -p "$CACHE"
exec 9>"$CACHE/js-clients-$KEY.lock"
flock 9  # two concurrent runs must not interleave
if [[ -f "$MARKER" ]]; then
    echo "$PREFIX/node_modules"
    exit 0
fi

rm -rf "$PREFIX"
mkdir -p "$PREFIX"
# --save-exact into the cache's own package.json records what was resolved; no audit, no fund.
npm install --prefix "$PREFIX" --no-fund --no-audit --save-exact --loglevel=error \
    "${PACKAGES[@]}" >&2
touch "$MARKER"
echo "$PREFIX/node_modules"
