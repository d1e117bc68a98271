"""Placeholder until the CLI lands (issue 4)."""

import sys


def main() -> None:
    print("wirebridge: the command line is not built yet", file=sys.stderr)
    sys.exit(2)
