"""The folder wirebridge keeps its files in: the config and the default response store.

One function, so the config loader and the store can never disagree about where that is.
`~` is expanded, so `WIREBRIDGE_HOME=~/wb` means the same folder to both.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path

DEFAULT_HOME = "~/.wirebridge"


def wirebridge_home(env: Mapping[str, str] | None = None) -> Path:
    """`$WIREBRIDGE_HOME` (from `env`, default `os.environ`), else `~/.wirebridge`; `~` expanded."""
    environ = os.environ if env is None else env
    return Path(environ.get("WIREBRIDGE_HOME") or DEFAULT_HOME).expanduser()
