"""The embedded backend: one SQLite file in WAL mode, driven by the stdlib `sqlite3` in a thread.

Each store operation is one synchronous function that runs a whole transaction in a worker
thread, and a capacity limiter of one per connection serialises them, so two coroutines can
never interleave statements inside one transaction. Writes go through one connection and reads
through another (WAL lets readers run beside a writer), so a write stuck on a lock held
elsewhere never holds up a read. Writes use `BEGIN IMMEDIATE` (the write lock is taken up
front: no deadlock upgrading a read lock), and `busy_timeout` makes other processes sharing the
file wait their turn rather than fail; `save(timeout_s=...)` shortens that wait to its deadline.

Crash safety comes from SQLite itself: with WAL and `synchronous=FULL`, a `kill -9` (or a power
cut) at any point leaves the file consistent, holding every committed response whole and no
part of an uncommitted one. Files are created readable by their owner only: they hold
conversations.
"""

from __future__ import annotations

import math
import os
import sqlite3
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any, TypeVar

import anyio
import anyio.to_thread

from ..jsontypes import JSON
from . import queries
from .base import Store
from .errors import DuplicateResponseError, StoreError
from .location import MEMORY
from .queries import sqlite_placeholders
from .records import (
    DEFAULT_TTL_SECONDS,
    ChainLink,
    StoredResponse,
    check_ttl,
    find_item,
    item_ids,
    record_to_row,
    row_to_record,
)
from .schema import MIGRATIONS, SCHEMA_VERSION_TABLE, Migration, pending_migrations
from .sqlitetx import transaction

T = TypeVar("T")

BUSY_TIMEOUT_S = 30.0
EXPIRE_BATCH = 500  # rows per delete transaction, so a big sweep never holds the lock for long

_SELECT = sqlite_placeholders(queries.SELECT_RESPONSE)
_SELECT_INPUT_ITEMS = sqlite_placeholders(queries.SELECT_INPUT_ITEMS)
_DELETE = sqlite_placeholders(queries.DELETE_RESPONSE)
_INSERT = sqlite_placeholders(queries.INSERT_RESPONSE)
_INSERT_ITEM_ID = sqlite_placeholders(queries.INSERT_ITEM_ID)
_ITEM_HOLDER = sqlite_placeholders(queries.SELECT_ITEM_HOLDER)
_CHAIN = sqlite_placeholders(queries.SELECT_CHAIN)
_CHILD_OUTPUTS = sqlite_placeholders(queries.SELECT_CHILD_OUTPUTS)
_EXPIRE = sqlite_placeholders(queries.expire_batch())
_RECORD_MIGRATION = sqlite_placeholders(queries.RECORD_MIGRATION)


def _enter_wal(conn: sqlite3.Connection, busy_timeout_s: float) -> None:
    """Switch to WAL, waiting out other openers of a new file.

    Switching the journal mode needs an exclusive lock, and SQLite answers "database is locked"
    at once there instead of calling the busy handler, so processes opening one new file
    together (several bridges starting) would fail; retry within the busy timeout instead.
    """
    deadline = time.monotonic() + busy_timeout_s
    delay = 0.005
    while True:
        try:
            conn.execute("PRAGMA journal_mode = WAL")
            return
        except sqlite3.OperationalError as exc:
            if "locked" not in str(exc) or time.monotonic() + delay > deadline:
                raise
        time.sleep(delay)  # a worker thread: this never blocks the event loop
        delay = min(delay * 2, 0.2)


def connect(path: str, *, busy_timeout_s: float = BUSY_TIMEOUT_S) -> sqlite3.Connection:
    """Open (creating if needed, owner-only) the database file in WAL mode."""
    if path != MEMORY:
        file = Path(path)
        try:
            file.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
            os.close(os.open(file, os.O_RDWR | os.O_CREAT, 0o600))
        except OSError as exc:
            raise StoreError(f"cannot create the SQLite store at {path}: {exc}") from exc
    conn = sqlite3.connect(
        path, timeout=busy_timeout_s, isolation_level=None, check_same_thread=False
    )
    try:
        conn.execute(f"PRAGMA busy_timeout = {int(busy_timeout_s * 1000)}")
        conn.execute("PRAGMA foreign_keys = ON")  # item ids go with their response
        _enter_wal(conn, busy_timeout_s)
        conn.execute("PRAGMA synchronous = FULL")  # one fsync per response: cheap at our rate
    except sqlite3.DatabaseError as exc:
        conn.close()
        raise StoreError(f"cannot open the SQLite store at {path}: {exc}") from exc
    return conn


def migrate(conn: sqlite3.Connection, migrations: Sequence[Migration]) -> int:
    """Apply pending migrations in one write transaction; returns the resulting version.

    `BEGIN IMMEDIATE` takes the write lock before reading the version, so of two processes
    opening a new file at once, the second sees the first's migrations already recorded.
    """
    with transaction(conn, "IMMEDIATE"):
        conn.execute(SCHEMA_VERSION_TABLE)
        (current,) = conn.execute(queries.CURRENT_VERSION).fetchone()
        for migration in pending_migrations(current, migrations):
            for statement in migration.statements:
                conn.execute(statement)
            conn.execute(
                _RECORD_MIGRATION, (migration.version, migration.description, int(time.time()))
            )
            current = migration.version
    return int(current)


def _connect_and_migrate(
    path: str, migrations: Sequence[Migration], busy_timeout_s: float
) -> sqlite3.Connection:
    conn = connect(path, busy_timeout_s=busy_timeout_s)
    try:
        migrate(conn, migrations)
    except sqlite3.DatabaseError as exc:
        conn.close()
        raise StoreError(f"cannot migrate the SQLite store at {path}: {exc}") from exc
    except BaseException:
        conn.close()
        raise
    return conn


class SQLiteStore(Store):
    backend = "sqlite"

    def __init__(
        self,
        conn: sqlite3.Connection,
        path: str,
        *,
        ttl_seconds: float | None = DEFAULT_TTL_SECONDS,
        clock: Callable[[], float] = time.time,
        reader: sqlite3.Connection | None = None,
        busy_timeout_s: float = BUSY_TIMEOUT_S,
    ):
        super().__init__(ttl_seconds=ttl_seconds, clock=clock)
        self.path = path
        self.busy_timeout_s = busy_timeout_s
        self._conn: sqlite3.Connection | None = conn
        self._limiter = anyio.CapacityLimiter(1)
        # Reads use their own connection where there is a file to share (`:memory:` is one
        # database per connection, so there the writer's is used).
        self._reader: sqlite3.Connection | None = reader
        self._read_limiter = anyio.CapacityLimiter(1) if reader is not None else self._limiter

    @classmethod
    async def open(
        cls,
        path: str,
        *,
        ttl_seconds: float | None = DEFAULT_TTL_SECONDS,
        clock: Callable[[], float] = time.time,
        migrations: Sequence[Migration] = MIGRATIONS,
        busy_timeout_s: float = BUSY_TIMEOUT_S,
    ) -> SQLiteStore:
        check_ttl(ttl_seconds)  # before any connection is opened
        conn = await anyio.to_thread.run_sync(
            _connect_and_migrate, path, migrations, busy_timeout_s
        )
        reader = None
        if path != MEMORY:
            try:
                reader = await anyio.to_thread.run_sync(
                    lambda: connect(path, busy_timeout_s=busy_timeout_s)
                )
            except BaseException:
                conn.close()
                raise
        return cls(
            conn,
            path,
            ttl_seconds=ttl_seconds,
            clock=clock,
            reader=reader,
            busy_timeout_s=busy_timeout_s,
        )

    async def _run(self, fn: Callable[[sqlite3.Connection], T], *, read: bool = False) -> T:
        """Run `fn(conn)` in a worker thread, one at a time per connection (the reader's for
        `read`). A cancelled caller still waits for the thread to finish, so a transaction is
        never left open on a shared connection."""

        def call() -> T:
            conn = self._reader if read and self._reader is not None else self._conn
            if self._conn is None or conn is None:
                raise StoreError(f"the SQLite store at {self.path} is closed")
            try:
                return fn(conn)
            except sqlite3.DatabaseError as exc:  # locked past busy_timeout, disk full, I/O
                raise StoreError(f"SQLite store at {self.path} failed: {exc}") from exc

        limiter = self._read_limiter if read else self._limiter
        return await anyio.to_thread.run_sync(call, limiter=limiter)

    async def close(self) -> None:
        def close(conn: sqlite3.Connection) -> None:
            self._conn = None
            conn.close()

        def close_reader(conn: sqlite3.Connection) -> None:
            self._reader = None
            conn.close()

        if self._reader is not None:
            await self._run(close_reader, read=True)
        if self._conn is not None:
            await self._run(close)

    async def _insert(self, record: StoredResponse, deadline: float) -> None:
        row = record_to_row(record)
        ids = [(item_id, record.id) for item_id in item_ids(record)]
        normal_ms = int(self.busy_timeout_s * 1000)

        def insert(conn: sqlite3.Connection) -> None:
            bounded = math.isfinite(deadline)
            if bounded:  # wait for another writer's lock only until the caller's deadline
                left_ms = int((deadline - time.monotonic()) * 1000)
                if left_ms <= 0:
                    raise StoreError(f"no time left to store response {record.id}")
                conn.execute(f"PRAGMA busy_timeout = {min(left_ms, normal_ms)}")
            try:
                with transaction(conn, "IMMEDIATE"):
                    conn.execute(_INSERT, row)
                    conn.executemany(_INSERT_ITEM_ID, ids)
            except sqlite3.IntegrityError as exc:
                if "responses.id" in str(exc):
                    raise DuplicateResponseError(record.id) from None
                raise
            finally:
                if bounded:
                    conn.execute(f"PRAGMA busy_timeout = {normal_ms}")

        await self._run(insert)

    async def _select(
        self, response_id: str, now: float, tenant: str | None
    ) -> StoredResponse | None:
        params = (response_id, math.floor(now), tenant)

        def select(conn: sqlite3.Connection) -> tuple[Any, ...] | None:
            row: tuple[Any, ...] | None = conn.execute(_SELECT, params).fetchone()
            return row

        row = await self._run(select, read=True)
        return None if row is None else row_to_record(row)

    async def _item(self, item_id: str, now: float, tenant: str | None) -> JSON | None:
        params = (item_id, math.floor(now), tenant)

        def holder(conn: sqlite3.Connection) -> tuple[str, str] | None:
            row: tuple[str, str] | None = conn.execute(_ITEM_HOLDER, params).fetchone()
            return row

        row = await self._run(holder, read=True)
        return None if row is None else find_item(item_id, *row)

    async def _delete(self, response_id: str, now: float, tenant: str | None) -> bool:
        params = (response_id, math.floor(now), tenant)

        def delete(conn: sqlite3.Connection) -> bool:
            with transaction(conn, "IMMEDIATE"):
                cursor = conn.execute(_DELETE, params)
            return cursor.rowcount > 0

        return await self._run(delete)

    async def _chain(
        self, response_id: str, now: float, tenant: str | None, max_depth: int
    ) -> list[ChainLink]:
        params = (response_id, math.floor(now), tenant, max_depth)

        def chain(conn: sqlite3.Connection) -> list[ChainLink]:
            return [ChainLink(*row) for row in conn.execute(_CHAIN, params)]

        return await self._run(chain, read=True)

    async def _children(
        self, response_id: str, now: float, tenant: str | None, limit: int
    ) -> list[str]:
        params = (response_id, math.floor(now), tenant, limit)

        def children(conn: sqlite3.Connection) -> list[str]:
            return [str(row[0]) for row in conn.execute(_CHILD_OUTPUTS, params)]

        return await self._run(children, read=True)

    async def _input_items(self, response_id: str, now: float, tenant: str | None) -> str | None:
        params = (response_id, math.floor(now), tenant)

        def input_items(conn: sqlite3.Connection) -> str | None:
            row = conn.execute(_SELECT_INPUT_ITEMS, params).fetchone()
            return None if row is None else str(row[0])

        return await self._run(input_items, read=True)

    async def _expire(self, now: float) -> int:
        params = (math.floor(now), EXPIRE_BATCH)

        def expire_batch(conn: sqlite3.Connection) -> int:
            with transaction(conn, "IMMEDIATE"):
                return conn.execute(_EXPIRE, params).rowcount

        total = 0
        while True:  # one short transaction per batch; other operations run in between
            deleted = await self._run(expire_batch)
            total += deleted
            if deleted < EXPIRE_BATCH:
                return total
