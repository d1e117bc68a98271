#!/usr/bin/env bash
# Install Debian's chromium for the console's browser tests (tests/test_ops_console.py drives it
# headless through Playwright's `executable_path`; Playwright's own browser downloads are never
# used). A no-op when /usr/bin/chromium is there. Exit 3 when this machine cannot install it (no
# apt-get, or not root): the console tests then skip and say why.
set -euo pipefail

if [[ -x /usr/bin/chromium ]]; then
    exit 0
fi
if ! command -v apt-get >/dev/null 2>&1; then
    echo "install_chromium.sh: no apt-get; install Debian's chromium package by hand" >&2
    exit 3
fi
if [[ "$(id -u)" -ne 0 ]]; then
    echo "install_chromium.sh: not root; run: sudo apt-get install -y chromium" >&2
    exit 3
fi
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq >/dev/null
apt-get install -y -qq chromium >/dev/null
/usr/bin/chromium --version >&2
