"""Background runs in the store: each run's row (status, owner, lease) and its event log.

A background run is executed by one bridge (its `owner`) but may be polled, resumed and
cancelled through any bridge on the same database, so everything another bridge needs is here:
the live Response object (a snapshot), every SSE frame with its sequence number, a cancel flag
the owner polls, and a lease the owner renews. A run whose lease lapsed (its bridge was killed)
is marked failed by whichever bridge sweeps first; the update is conditional, so exactly one does.

The log is written in batches: one row per write, holding the batch's frames whole and keyed by
its last sequence number. Reading splits the rows again and drops the frames at or below
`starting_after`, so a reader sees every frame, byte for byte, numbered as its live client saw
it; a row count per run grows with the writes (bounded by the store's commit rate), not with
the event rate.

On PostgreSQL every write, finish and cancel request also sends a NOTIFY on one channel (in the
same transaction, so it is delivered only once the rows are visible), and `listen` opens the
one extra connection a bridge needs to hear them: other bridges wake at once instead of at
their next poll. SQLite has no such thing (its bridges share one process or poll).

One query text per statement (`$n` placeholders, converted for SQLite as in `queries`); each
method is one transaction. The two backends differ only in how a transaction is run.
"""

from __future__ import annotations

import math
import re
import sqlite3
from abc import ABC, abstractmethod
from collections.abc import AsyncIterator, Callable, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Any

from .base import Store
from .queries import sqlite_placeholders
from .sqlitetx import transaction

_SEQ = re.compile(r'"sequence_number":(\d+)')

ACTIVE = ("queued", "in_progress")
_ACTIVE_SQL = "status IN ('queued', 'in_progress')"
_VISIBLE = "(tenant IS NULL OR tenant = $2)"

# $1 id, $2 tenant, $3 status, $4 response, $5 owner, $6 lease_until, $7 created_at, $8 expires_at
INSERT_RUN = (
    "INSERT INTO runs (id, tenant, status, response, owner, lease_until, created_at, expires_at)"
    " VALUES ($1, $2, $3, $4, $5, $6, $7, $8)"
)
# $1 id, $2 seq, $3 frame
INSERT_EVENT = "INSERT INTO run_events (response_id, seq, data) VALUES ($1, $2, $3)"
# $1 id, $2 last seq, $3 snapshot (NULL: keep)
UPDATE_PROGRESS = (
    "UPDATE runs SET last_seq = $2, response = COALESCE($3, response), status = 'in_progress'"
    f" WHERE id = $1 AND {_ACTIVE_SQL}"
)
# $1 id, $2 snapshot
UPDATE_SNAPSHOT = f"UPDATE runs SET response = $2 WHERE id = $1 AND {_ACTIVE_SQL}"
# $1 id, $2 last seq, $3 status, $4 response, $5 ended_at
FINISH = (
    "UPDATE runs SET last_seq = $2, status = $3, response = $4, ended_at = $5"
    f" WHERE id = $1 AND {_ACTIVE_SQL}"
)
# $1 id, $2 tenant, $3 now
SELECT_RUN = (
    "SELECT status, response, last_seq, owner, cancel_requested FROM runs"
    f" WHERE id = $1 AND {_VISIBLE} AND (expires_at IS NULL OR expires_at > $3)"
)
# $1 id, $2 after, $3 limit
SELECT_EVENTS = (
    "SELECT seq, data FROM run_events WHERE response_id = $1 AND seq > $2 ORDER BY seq LIMIT $3"
)
# $1 id, $2 tenant
REQUEST_CANCEL = (
    f"UPDATE runs SET cancel_requested = 1 WHERE id = $1 AND {_VISIBLE} AND {_ACTIVE_SQL}"
)
# $1 owner
CANCEL_REQUESTS = f"SELECT id FROM runs WHERE owner = $1 AND cancel_requested = 1 AND {_ACTIVE_SQL}"
# $1 owner, $2 lease_until
RENEW = f"UPDATE runs SET lease_until = $2 WHERE owner = $1 AND {_ACTIVE_SQL}"
# $1 now: runs whose owner stopped renewing
ABANDONED = f"SELECT id, response, last_seq FROM runs WHERE {_ACTIVE_SQL} AND lease_until < $1"
# $1 id, $2 last seq, $3 status, $4 response, $5 ended_at, $6 now: only if still abandoned
FINISH_ABANDONED = f"{FINISH} AND lease_until < $6"
# $1 ended before: event logs past their retention; $2 now: runs past their expiry
DROP_EVENTS = (
    "DELETE FROM run_events WHERE response_id IN"
    " (SELECT id FROM runs WHERE ended_at IS NOT NULL AND ended_at <= $1)"
)
EXPIRE_RUNS = "DELETE FROM runs WHERE expires_at IS NOT NULL AND expires_at <= $1"
# $1 id: a run that is not to be kept after all (its response was not stored)
DISCARD = "DELETE FROM runs WHERE id = $1"
COUNT = "SELECT (SELECT COUNT(*) FROM runs), (SELECT COUNT(*) FROM run_events)"
CHANNEL = "wirebridge_runs"
# $1 payload: "e:<id>" (new frames or the end), "c:<id>" (cancel requested), "f:<id>" (a
# follower on another bridge is reading the run)
NOTIFY = f"SELECT pg_notify('{CHANNEL}', $1)"

OnNotice = Callable[[str, str], None]  # (kind, run id)


@dataclass(frozen=True, slots=True)
class RunRow:
    status: str
    response: str  # the Response object's JSON: a snapshot while active, final once ended
    last_seq: int  # the sequence number of the last stored event (-1: none yet)
    owner: str
    cancel_requested: bool

    @property
    def active(self) -> bool:
        return self.status in ACTIVE


Frames = Sequence[tuple[int, str]]


class RunLog(ABC):
    """The runs table and event log of one store (use `run_log(store)`)."""

    @abstractmethod
    async def _tx(self, steps: list[tuple[str, tuple[Any, ...]]], *, many: int = -1) -> int:
        """Run the statements in one transaction; returns the first one's row count. With
        `many >= 0`, statement `many` is executed once per row of its parameter tuple."""

    @abstractmethod
    async def _fetch(self, sql: str, params: tuple[Any, ...]) -> list[tuple[Any, ...]]: ...

    notifies = False  # the backend sends NOTIFYs (`listen` can hear other bridges)

    def _notice(self, kind: str, run_id: str) -> list[tuple[str, tuple[Any, ...]]]:
        return [(NOTIFY, (f"{kind}:{run_id}",))] if self.notifies else []

    @asynccontextmanager
    async def listen(self, on_notice: OnNotice, on_lost: Callable[[], None]) -> AsyncIterator[bool]:
        """Hear the other bridges' notices while open; yields False when the backend has none.
        `on_lost` is called if the listening connection drops (notices may have been missed)."""
        yield False

    async def ping(self, run_id: str) -> None:
        """Tell the run's owner, wherever it is, that someone follows the run."""
        if self.notifies:
            await self._tx(self._notice("f", run_id))

    async def create(
        self,
        run_id: str,
        *,
        tenant: str | None,
        response: str,
        owner: str,
        lease_until: float,
        created_at: int,
        expires_at: float | None,
    ) -> None:
        exp = None if expires_at is None else math.ceil(expires_at)
        params = (
            run_id,
            tenant,
            "queued",
            response,
            owner,
            math.ceil(lease_until),
            created_at,
            exp,
        )
        await self._tx([(INSERT_RUN, params)])

    async def append(self, run_id: str, frames: Frames, snapshot: str | None) -> None:
        """Persist frames (and the live Response, when given) in one transaction."""
        if not frames and snapshot is None:
            return
        if not frames:
            await self._tx([(UPDATE_SNAPSHOT, (run_id, snapshot))])
            return
        update = (UPDATE_PROGRESS, (run_id, frames[-1][0], snapshot))
        await self._tx(
            [update, (INSERT_EVENT, _batch(run_id, frames)), *self._notice("e", run_id)], many=1
        )

    async def finish(
        self, run_id: str, frames: Frames, *, last_seq: int, status: str, response: str, now: float
    ) -> bool:
        """The last frames and the final state, at once; False if the run had already ended."""
        done = (FINISH, (run_id, last_seq, status, response, math.floor(now)))
        steps = [done, (INSERT_EVENT, _batch(run_id, frames)), *self._notice("e", run_id)]
        return await self._tx(steps, many=1) > 0

    async def finish_abandoned(
        self, run_id: str, frame: tuple[int, str], *, response: str, now: float
    ) -> bool:
        """Mark a run whose lease lapsed as failed; False if another bridge did it first."""
        params = (run_id, frame[0], "failed", response, math.floor(now), math.floor(now))
        rows = ((run_id, frame[0], frame[1]),)
        steps = [(FINISH_ABANDONED, params), (INSERT_EVENT, rows), *self._notice("e", run_id)]
        return await self._tx(steps, many=1) > 0

    async def get(self, run_id: str, *, tenant: str | None, now: float) -> RunRow | None:
        rows = await self._fetch(SELECT_RUN, (run_id, tenant, math.floor(now)))
        if not rows:
            return None
        status, response, last_seq, owner, cancel = rows[0]
        return RunRow(str(status), str(response), int(last_seq), str(owner), bool(cancel))

    async def events_after(
        self, run_id: str, after: int, limit: int = 1000
    ) -> list[tuple[int, str]]:
        """The frames numbered above `after`, from at most `limit` rows (batches)."""
        rows = await self._fetch(SELECT_EVENTS, (run_id, after, limit))
        frames: list[tuple[int, str]] = []
        for _, data in rows:
            for frame in _unbatch(str(data)):
                if frame[0] > after:  # also drops a batch written twice (a retried write)
                    frames.append(frame)
                    after = frame[0]
        return frames

    async def discard(self, run_id: str) -> None:
        """Forget a run and its event log (its response was not stored after all)."""
        await self._tx([(DISCARD, (run_id,)), *self._notice("e", run_id)])

    async def request_cancel(self, run_id: str, *, tenant: str | None) -> bool:
        if not await self._tx([(REQUEST_CANCEL, (run_id, tenant))]) > 0:
            return False
        if self.notifies:  # wakes the owner now; it reads the flag either way
            await self._tx(self._notice("c", run_id))
        return True

    async def cancel_requests(self, owner: str) -> list[str]:
        return [str(row[0]) for row in await self._fetch(CANCEL_REQUESTS, (owner,))]

    async def renew(self, owner: str, lease_until: float) -> None:
        await self._tx([(RENEW, (owner, math.ceil(lease_until)))])

    async def abandoned(self, now: float) -> list[tuple[str, str, int]]:
        rows = await self._fetch(ABANDONED, (math.floor(now),))
        return [(str(i), str(r), int(s)) for i, r, s in rows]

    async def expire(self, now: float, retention_s: float) -> None:
        """Drop event logs `retention_s` after their run ended, and runs past their expiry."""
        await self._tx([(DROP_EVENTS, (math.floor(now - retention_s),))])
        await self._tx([(EXPIRE_RUNS, (math.floor(now),))])

    async def count(self) -> tuple[int, int]:
        """(runs, events) rows: for the benchmark's growth figures."""
        runs, events = (await self._fetch(COUNT, ()))[0]
        return int(runs), int(events)


def _batch(run_id: str, frames: Frames) -> tuple[tuple[str, int, str], ...]:
    """One row for a batch of frames: keyed by its last number, the frames whole, in order."""
    if not frames:
        return ()
    return ((run_id, frames[-1][0], "".join(text for _, text in frames)),)


def _unbatch(data: str) -> list[tuple[int, str]]:
    """A row's frames again (each ends with a blank line; JSON never holds a raw newline)."""
    out: list[tuple[int, str]] = []
    for chunk in data.split("\n\n"):
        if chunk:
            found = _SEQ.search(chunk)
            if found is not None:
                out.append((int(found.group(1)), chunk + "\n\n"))
    return out


class _SQLiteRunLog(RunLog):
    def __init__(self, store: Any):
        self.store = store

    async def _tx(self, steps: list[tuple[str, tuple[Any, ...]]], *, many: int = -1) -> int:
        converted = [(sqlite_placeholders(sql), params) for sql, params in steps]

        def run(conn: sqlite3.Connection) -> int:
            count = -1
            with transaction(conn, "IMMEDIATE"):
                for i, (sql, params) in enumerate(converted):
                    if i == many:
                        conn.executemany(sql, params)
                        continue
                    rowcount = conn.execute(sql, params).rowcount
                    if count < 0:
                        count = rowcount
                        if rowcount == 0 and many >= 0:
                            break  # the guarded update matched nothing: write no frames
            return count

        result: int = await self.store._run(run)
        return result

    async def _fetch(self, sql: str, params: tuple[Any, ...]) -> list[tuple[Any, ...]]:
        text = sqlite_placeholders(sql)

        def fetch(conn: sqlite3.Connection) -> list[tuple[Any, ...]]:
            return list(conn.execute(text, params).fetchall())

        result: list[tuple[Any, ...]] = await self.store._run(fetch, read=True)
        return result


class _PostgresRunLog(RunLog):
    notifies = True

    def __init__(self, store: Any):
        self.store = store

    @asynccontextmanager
    async def listen(self, on_notice: OnNotice, on_lost: Callable[[], None]) -> AsyncIterator[bool]:
        # A connection of its own, outside the pool: LISTEN holds it for the bridge's life.
        import asyncpg  # type: ignore[import-untyped]  # only with the PostgreSQL extra

        conn = await asyncpg.connect(self.store.url, timeout=10)

        def heard(_conn: Any, _pid: int, _channel: str, payload: str) -> None:
            kind, _, run_id = payload.partition(":")
            on_notice(kind, run_id)

        try:
            conn.add_termination_listener(lambda _conn: on_lost())
            await conn.add_listener(CHANNEL, heard)
            yield True
        finally:
            if not conn.is_closed():
                try:
                    await conn.close(timeout=2)
                except Exception:
                    conn.terminate()

    async def _tx(self, steps: list[tuple[str, tuple[Any, ...]]], *, many: int = -1) -> int:
        count = -1
        async with self.store._connection() as conn, conn.transaction():
            for i, (sql, params) in enumerate(steps):
                if i == many:
                    if params:
                        await conn.executemany(sql, params)
                    continue
                status: str = await conn.execute(sql, *params)
                if count < 0:
                    count = int(status.rsplit(" ", 1)[-1])
                    if count == 0 and many >= 0:
                        break
        return count

    async def _fetch(self, sql: str, params: tuple[Any, ...]) -> list[tuple[Any, ...]]:
        async with self.store._connection() as conn:
            rows = await conn.fetch(sql, *params)
        return [tuple(row) for row in rows]


def run_log(store: Store) -> RunLog:
    """The run log kept in `store`'s database (the backend's own connections)."""
    inner = getattr(store, "_inner", store)  # a timed proxy (wirebridge.ops) wraps the store
    if inner.backend == "postgresql":
        return _PostgresRunLog(inner)
    return _SQLiteRunLog(inner)
