"""Where the store lives: the `--store` value parsed into a backend and its address.

    None                          -> SQLite at $WIREBRIDGE_HOME/responses.db (~/.wirebridge)
    sqlite:///abs/path.db         -> SQLite at /abs/path.db (`sqlite://rel.db` is relative)
    sqlite://:memory:             -> an in-memory SQLite database (one process, gone at close)
    a plain path (no scheme)      -> SQLite at that path
    postgresql://... postgres://  -> PostgreSQL (asyncpg), the URL passed through unchanged

Pure: reads the environment only through the `env` mapping it is given. A PostgreSQL URL may
hold a password, so anything shown to a user goes through `redact_dsn` first.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from ..errors import ConfigError
from ..home import wirebridge_home
from ..redact import redact_dsn

DB_FILENAME = "responses.db"
MEMORY = ":memory:"


@dataclass(frozen=True, slots=True)
class StoreLocation:
    backend: Literal["sqlite", "postgresql"]
    target: str  # a filesystem path (or ":memory:") for SQLite, the URL for PostgreSQL

    def __str__(self) -> str:
        return redact_dsn(self.target) if self.backend == "postgresql" else self.target


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
        f"unsupported store URL scheme '{scheme}' in {redact_dsn(url)!r}: use sqlite:///path, "
        "postgresql://user@host/db, or leave it unset for the default SQLite file"
    )
