"""One explicit SQLite transaction, shared by the response store, the conversation log and the
run store (their connections are in autocommit mode otherwise).

A leaf module: `conversations` is imported by `base`, which `sqlite` imports, so the helper
cannot live in `sqlite` without an import cycle.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Literal


@contextmanager
def transaction(conn: sqlite3.Connection, mode: Literal["DEFERRED", "IMMEDIATE"]) -> Iterator[None]:
    """`BEGIN mode` ... `COMMIT`, rolled back on any exception (if SQLite has not already)."""
    conn.execute(f"BEGIN {mode}")
    try:
        yield
    except BaseException:
        if conn.in_transaction:
            conn.execute("ROLLBACK")
        raise
    conn.execute("COMMIT")
