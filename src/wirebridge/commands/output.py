"""What every command shares on the terminal: its one-line error and exit codes, `--think-tags`.

One format for CLI errors, `error: <cause>` on one line of stderr, so scripts and people read
every command's failures the same way. Kept light (click only): `replay` and `providers` import
it without loading the HTTP client.
"""

from __future__ import annotations

import re
from typing import NoReturn

import click

EXIT_FAILURE = 1
EXIT_INTERRUPTED = 130  # 128 + SIGINT, as shells report a Ctrl-C
THINK_TAGS = click.Choice(["off", "on", "preopened"])


def one_line(message: str) -> str:
    """An error message on one line: bodies quoted in errors may hold newlines."""
    return re.sub(r"\s*[\r\n]+\s*", " ", message).strip()


def fail(message: str, code: int = EXIT_FAILURE) -> NoReturn:
    """Exit with `error: <message>` on stderr, on one line (exit 1 unless told otherwise)."""
    click.echo(f"error: {one_line(message)}", err=True)
    raise click.exceptions.Exit(code)
