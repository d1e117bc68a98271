#!/usr/bin/env bash
# Install the pinned Codex CLI from npm, once, into the user cache; print the binary's path.
#
# The bridge's Codex test (tests/test_codex_cli.py) looks for the binary at
#   ${XDG_CACHE_HOME:-$HOME/.cache}/wirebridge/codex-<version>/node_modules/.bin/codex
# Running this again is a no-op when that binary is already there (idempotent); a partial install
# (interrupted download) is detected by the marker file and redone. Needs npm; nothing else is
# downloaded (the npm package ships the native binary as a platform-specific optional dependency).
set -euo pipefail

VERSION="${CODEX_VERSION:-0.171.0}"
CACHE="${XDG_CACHE_HOME:-$HOME/.cache}/wirebridge"
PREFIX="$CACHE/codex-$VERSION"
BIN="$PREFIX/node_modules/.bin/codex"
MARKER="$PREFIX/.installed"

if [[ -x "$BIN" && -f "$MARKER" ]]; then
    echo "$BIN"
    exit 0
fi

if ! command -v npm >/dev/null 2>&1; then
    echo "install_codex.sh: npm is not installed; cannot install @openai/codex@$VERSION" >&2
    exit 3
fi

mkdir -p "$CACHE"
exec 9>"$CACHE/codex-$VERSION.lock"
flock 9  # two concurrent runs (CI and a developer shell) must not interleave
if [[ -x "$BIN" && -f "$MARKER" ]]; then
    echo "$BIN"
    exit 0
fi

rm -rf "$PREFIX"
mkdir -p "$PREFIX"
# --no-fund/--no-audit: no extra requests; --ignore-scripts is not used because the package's
# launcher resolves the platform binary at run time, not in an install script.
npm install --prefix "$PREFIX" --no-fund --no-audit --no-save --loglevel=error \
    "@openai/codex@$VERSION" >&2
"$BIN" --version >&2
touch "$MARKER"
echo "$BIN"
