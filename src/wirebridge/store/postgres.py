"""The shared backend: PostgreSQL through an asyncpg connection pool.

This is how several bridge processes share conversation state: each process opens its own pool
on the same database, and every operation is one statement or one transaction, so any process
can continue a response another one stored. Migrations run under a transaction-scoped advisory
lock, so processes starting together apply each migration once; expiry deletes in small batches
with `FOR UPDATE SKIP LOCKED`, so sweeps from several processes never wait on each other.

The URL (`postgresql://` or `postgres://`, libpq syntax, as asyncpg reads it) may hold a
password: errors show it through `redact_dsn` and scrub it from driver messages.
"""

from __future__ import annotations

import math
import time
from collections.abc import AsyncIterator, Callable, Sequence
from contextlib import asynccontextmanager
from typing import Any
from urllib.parse import unquote, urlsplit

import asyncpg  # type: ignore[import-untyped]  # no stubs; the calls used are few

from ..jsontypes import JSON
from ..redact import redact_dsn
from . import queries
from .base import Store
from .errors import DuplicateResponseError, StoreError
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

MIGRATION_LOCK = 0x7769_7265_6272_6467  # pg_advisory_xact_lock key: "wirebrdg"
EXPIRE_BATCH = 500
CONNECT_TIMEOUT_S = 10.0
COMMAND_TIMEOUT_S = 60.0

_EXPIRE = queries.expire_batch("FOR UPDATE SKIP LOCKED")

DRIVER_ERRORS = (OSError, TimeoutError, asyncpg.PostgresError, asyncpg.InterfaceError)


def _password(url: str) -> str | None:
    try:
        password = urlsplit(url).password
    except ValueError:
        return None
    return unquote(password) if password else None


def describe_error(exc: BaseException, url: str) -> str:
    """`exc` as text, with the URL's password (if the driver echoed it) scrubbed."""
    text = f"{type(exc).__name__}: {exc}"
    password = _password(url)
    return text.replace(password, "***") if password else text


async def migrate(conn: asyncpg.Connection, migrations: Sequence[Migration]) -> int:
    """Apply pending migrations in one transaction under the advisory lock; returns the version.

    The lock is taken before `CREATE TABLE IF NOT EXISTS`, which itself races between sessions.
    """
    async with conn.transaction():
        await conn.execute("SELECT pg_advisory_xact_lock($1)", MIGRATION_LOCK)
        await conn.execute(SCHEMA_VERSION_TABLE)
        current = int(await conn.fetchval(queries.CURRENT_VERSION))
        for migration in pending_migrations(current, migrations):
            for statement in migration.statements:
                await conn.execute(statement)
            await conn.execute(
                queries.RECORD_MIGRATION,
                migration.version,
                migration.description,
                int(time.time()),
            )
            current = migration.version
    return current


class PostgresStore(Store):
    backend = "postgresql"

    def __init__(
        self,
        pool: asyncpg.Pool,
        url: str,
        *,
        ttl_seconds: float | None = DEFAULT_TTL_SECONDS,
        clock: Callable[[], float] = time.time,
    ):
        super().__init__(ttl_seconds=ttl_seconds, clock=clock)
        self.url = url
        self._pool: asyncpg.Pool | None = pool

    @classmethod
    async def open(
        cls,
        url: str,
        *,
        ttl_seconds: float | None = DEFAULT_TTL_SECONDS,
        clock: Callable[[], float] = time.time,
        migrations: Sequence[Migration] = MIGRATIONS,
        min_size: int = 1,
        max_size: int = 10,
    ) -> PostgresStore:
        check_ttl(ttl_seconds)  # before any connection is opened
        try:
            pool = await asyncpg.create_pool(
                url,
                min_size=min_size,
                max_size=max_size,
                timeout=CONNECT_TIMEOUT_S,
                command_timeout=COMMAND_TIMEOUT_S,
            )
        except (*DRIVER_ERRORS, ValueError) as exc:
            raise StoreError(
                f"cannot connect to PostgreSQL at {redact_dsn(url)}: {describe_error(exc, url)}"
            ) from None
        store = cls(pool, url, ttl_seconds=ttl_seconds, clock=clock)
        try:
            async with store._connection() as conn:
                await migrate(conn, migrations)
        except BaseException:
            await pool.close()
            raise
        return store

    @asynccontextmanager
    async def _connection(self) -> AsyncIterator[asyncpg.Connection]:
        """A pooled connection; driver failures become `StoreError`s naming the server."""
        if self._pool is None:
            raise StoreError(f"the PostgreSQL store at {redact_dsn(self.url)} is closed")
        try:
            async with self._pool.acquire() as conn:
                yield conn
        except DRIVER_ERRORS as exc:
            if isinstance(exc, asyncpg.UniqueViolationError):
                raise
            where = redact_dsn(self.url)
            raise StoreError(
                f"PostgreSQL store at {where} failed: {describe_error(exc, self.url)}"
            ) from None

    async def close(self) -> None:
        pool, self._pool = self._pool, None
        if pool is not None:
            await pool.close()

    async def _insert(self, record: StoredResponse, deadline: float) -> None:
        # The deadline is kept by the caller's cancel scope: asyncpg cancels the statement and
        # the transaction rolls back.
        ids = [(item_id, record.id) for item_id in item_ids(record)]
        try:
            async with self._connection() as conn, conn.transaction():
                await conn.execute(queries.INSERT_RESPONSE, *record_to_row(record))
                if ids:
                    await conn.executemany(queries.INSERT_ITEM_ID, ids)
        except asyncpg.UniqueViolationError:
            raise DuplicateResponseError(record.id) from None

    async def _select(
        self, response_id: str, now: float, tenant: str | None
    ) -> StoredResponse | None:
        async with self._connection() as conn:
            row: Sequence[Any] | None = await conn.fetchrow(
                queries.SELECT_RESPONSE, response_id, math.floor(now), tenant
            )
        return None if row is None else row_to_record(tuple(row))

    async def _item(self, item_id: str, now: float, tenant: str | None) -> JSON | None:
        async with self._connection() as conn:
            row = await conn.fetchrow(queries.SELECT_ITEM_HOLDER, item_id, math.floor(now), tenant)
        return None if row is None else find_item(item_id, row[0], row[1])

    async def _delete(self, response_id: str, now: float, tenant: str | None) -> bool:
        async with self._connection() as conn:
            status: str = await conn.execute(
                queries.DELETE_RESPONSE, response_id, math.floor(now), tenant
            )
        return _rowcount(status) > 0

    async def _chain(
        self, response_id: str, now: float, tenant: str | None, max_depth: int
    ) -> list[ChainLink]:
        async with self._connection() as conn:
            rows = await conn.fetch(
                queries.SELECT_CHAIN, response_id, math.floor(now), tenant, max_depth
            )
        return [ChainLink(*row) for row in rows]

    async def _children(
        self, response_id: str, now: float, tenant: str | None, limit: int
    ) -> list[str]:
        async with self._connection() as conn:
            rows = await conn.fetch(
                queries.SELECT_CHILD_OUTPUTS, response_id, math.floor(now), tenant, limit
            )
        return [str(row[0]) for row in rows]

    async def _input_items(self, response_id: str, now: float, tenant: str | None) -> str | None:
        async with self._connection() as conn:
            text: str | None = await conn.fetchval(
                queries.SELECT_INPUT_ITEMS, response_id, math.floor(now), tenant
            )
        return text

    async def _expire(self, now: float) -> int:
        total = 0
        while True:
            async with self._connection() as conn:
                status: str = await conn.execute(_EXPIRE, math.floor(now), EXPIRE_BATCH)
            deleted = _rowcount(status)
            total += deleted
            if deleted < EXPIRE_BATCH:
                return total


def _rowcount(status: str) -> int:
    """The row count of a command tag such as `DELETE 3`."""
    return int(status.rsplit(" ", 1)[-1])
