"""Where the store lives: the `--store` value parsed into a backend and its address.

    None                          -> SQLite at $WIREBRIDGE_HOME/responses.db (~/.wirebridge)
    sqlite:///abs/path.db         -> SQLite at /abs/path.db (`sqlite://rel.db` is relative)
    sqlite://:memory:             -> an in-memory SQLite database (one process, gone at close)
    a plain path (no scheme)      -> SQLite at that path
    postgresql://... postgres://  -> PostgreSQL (asyncpg), the URL passed through unchanged

Pure: reads the environment only through the `env` mapping it is given. A PostgreSQL URL may
hold a password, so anything shown to a user goes through `redact_url` first.
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from ..errors import ConfigError

DB_FILENAME = "responses.db"
DEFAULT_HOME = "~/.wirebridge"
MEMORY = ":memory:"


@dataclass(frozen=True, slots=True)
class StoreLocation:
    backend: Literal["sqlite", "postgresql"]
    target: str  # a filesystem path (or ":memory:") for SQLite, the URL for PostgreSQL

    def __str__(self) -> str:
        return redact_url(self.target) if self.backend == "postgresql" else self.target


def wirebridge_home(env: Mapping[str, str]) -> Path:
    return Path(env.get("WIREBRIDGE_HOME") or DEFAULT_HOME).expanduser()


def parse_store_url(url: str | None, env: Mapping[str, str] = os.environ) -> StoreLocation:
    if url is None or url == "":
        return StoreLocation("sqlite", str(wirebridge_home(env) / DB_FILENAME))
    scheme, sep, rest = url.partition("://")
    if not sep:
        return StoreLocation("sqlite", str(Path(url).expanduser()))
    scheme = scheme.lower()
    if scheme in ("postgresql", "postgres"):
        return StoreLocation("postgresql", url)
    if scheme == "sqlite":
        if not rest:
            raise ConfigError("store URL 'sqlite://' names no file; use sqlite:///path/to/file.db")
        return StoreLocation("sqlite", rest if rest == MEMORY else str(Path(rest).expanduser()))
    raise ConfigError(
        f"unsupported store URL scheme '{scheme}' in {redact_url(url)!r}: use sqlite:///path, "
        "postgresql://user@host/db, or leave it unset for the default SQLite file"
    )


_QUERY_PASSWORD = re.compile(r"(?i)([?&]password=)[^&#]*")


def redact_url(url: str) -> str:
    """The URL with any password (in the userinfo or a `password=` parameter) replaced.

    Conservative on purpose: the userinfo ends at the last `@` before the query, so a password
    holding an unescaped `@` or `/` is still hidden whole.
    """
    scheme, sep, rest = url.partition("://")
    if sep:
        head, qmark, query = rest.partition("?")
        userinfo, at, tail = head.rpartition("@")
        if at and ":" in userinfo:
            head = userinfo.split(":", 1)[0] + ":***@" + tail
        url = scheme + sep + head + qmark + query
    return _QUERY_PASSWORD.sub(r"\1***", url)
