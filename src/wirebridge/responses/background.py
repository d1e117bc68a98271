"""Background runs: owned by the server, not the connection that started them.

A background run is a `Relay` whose sink writes each batch of encoded frames to the store's
event log (store/runs.py) instead of a socket; it runs in a task group the `Runtime` holds, so
the client may leave at once. Any bridge on the same database can follow (replay the log after
`starting_after`, then the live tail), poll or cancel it:

- a follower on the run's own bridge is woken by each write; elsewhere it polls the store
  every `poll_s` (a bounded poll, no message bus);
- cancel on the owning bridge cancels the run's scope (the upstream request is closed at once);
  elsewhere it sets the run's cancel flag, which the owner polls every `poll_s`;
- the owner renews a lease on its runs every `lease_s / 3`; every bridge sweeps runs whose lease
  lapsed (a kill -9) every `lease_s / 2` and at start, and marks them failed;
- on shutdown, runs may finish within `drain_s`; the rest are marked failed.
"""

from __future__ import annotations

import logging
import secrets
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field

import anyio
import anyio.abc

from ..events import Event
from ..store import Store
from ..store.records import without_credentials
from ..store.runs import RunLog, RunRow, run_log
from ..wire import encode
from .errors import ApiError
from .relay import Relay
from .runframes import SHUTDOWN_MESSAGE, abandoned, split_frames

log = logging.getLogger("wirebridge.server")

KEEPALIVE = b": keep-alive\n\n"
CLOSE_TIMEOUT_S = 1.0
DEFAULT_LEASE_S = 30.0
DEFAULT_RETENTION_S = 3600.0


@dataclass(frozen=True, slots=True)
class BackgroundSettings:
    lease_s: float = (
        DEFAULT_LEASE_S  # a run not renewed for this long (its bridge died) is marked failed
    )
    poll_s: float = 0.5  # followers and cancel flags of runs on other bridges, read this often
    retention_s: float = DEFAULT_RETENTION_S  # a run's event log is kept this long after it ends
    drain_s: float = 30.0  # on shutdown, runs may finish within this long
    snapshot_s: float = 0.25  # the live Response in the store is refreshed at most this often
    heartbeat_s: float = 15.0  # a silent follower gets a keep-alive comment this often
    sweep_interval_s: float = 600.0  # expired runs and event logs are deleted this often
    max_runs: int = 256  # runs executing at once on this bridge; beyond it a 503 `overloaded`


@dataclass(eq=False)
class LocalRun:
    """A run this bridge executes."""

    id: str
    relay: Relay
    scope: anyio.CancelScope = field(default_factory=anyio.CancelScope)
    wake: anyio.Event = field(default_factory=anyio.Event)  # replaced after each write
    done: anyio.Event = field(default_factory=anyio.Event)
    last_seq: int = -1  # the last frame in the store
    ended: bool = False
    reason: str = ""  # why it was cancelled: "user" or "shutdown"
    snapshot_at: float = 0.0

    def stop(self, reason: str) -> None:
        """End the run now: the encoder's final state is set before the scope is cancelled, so
        the relay (whose producer fails an unfinished answer on its way out) keeps it."""
        if self.ended or self.scope.cancel_called or self.relay.encoder.finished:
            return  # already ending on its own: it is stored as it ended
        self.reason = reason
        if reason == "user":
            self.relay.encoder.cancel()
        else:
            self.relay.encoder.fail("server_error", SHUTDOWN_MESSAGE)
        self.scope.cancel()

    def written(self) -> None:
        self.wake.set()
        self.wake = anyio.Event()


class _LogSink:
    """The relay's output for a background run: frames into the store, followers woken."""

    def __init__(self, runs: BackgroundRuns, run: LocalRun):
        self.runs, self.run = runs, run

    async def refuse(self, error: ApiError) -> None:
        encoder = self.run.relay.encoder
        encoder.fail(error.failed_code, error.message)
        await self.runs.finish(self.run, encoder.take())

    async def commit(self) -> None:
        return None

    async def write(self, data: bytes) -> None:
        run = self.run
        frames = [f for f in split_frames(data) if f[0] > run.last_seq]
        snapshot = None
        now = time.monotonic()
        if now - run.snapshot_at >= self.runs.settings.snapshot_s:
            run.snapshot_at = now
            snapshot = encode(run.relay.response).decode()
        with anyio.CancelScope(shield=True):  # a batch is stored whole, or cancel waits for it
            await self.runs.log.append(run.id, frames, snapshot)
        if frames:
            run.last_seq = frames[-1][0]
        run.written()

    async def keepalive(self) -> None:
        return None

    async def finish(self, data: bytes) -> None:
        await self.runs.finish(self.run, data)


class BackgroundRuns:
    """The background runs of one server, and its view of everyone else's."""

    def __init__(self, store: Store, settings: BackgroundSettings, tg: anyio.abc.TaskGroup):
        self.store = store
        self.log: RunLog = run_log(store)
        self.settings = settings
        self.owner = secrets.token_hex(8)
        self.local: dict[str, LocalRun] = {}
        self._tg = tg

    @classmethod
    @asynccontextmanager
    async def open(
        cls, store: Store, settings: BackgroundSettings
    ) -> AsyncIterator[BackgroundRuns]:
        async with anyio.create_task_group() as tg:
            runs = cls(store, settings, tg)
            tg.start_soon(runs._maintain)  # sweeps at once: a run a dead bridge left is marked
            try:
                yield runs
            finally:
                with anyio.CancelScope(shield=True):
                    await runs._drain()
                tg.cancel_scope.cancel()

    # -- starting and running ----------------------------------------------------------------

    async def start(
        self, relay: Relay, events: AsyncIterator[Event], *, tenant: str | None
    ) -> None:
        """Record the run as queued and start it; returns at once."""
        if len(self.local) >= self.settings.max_runs:
            raise ApiError(
                503,
                f"the bridge is running its maximum of {self.settings.max_runs} background "
                "responses; retry shortly",
                "server_error",
                code="overloaded",
                headers={"Retry-After": "1"},
            )
        response = relay.response
        # Its events and snapshots go to the store: no credential of an `mcp` tool with them.
        response.tools = without_credentials({"tools": response.tools})["tools"]
        now = time.time()
        ttl = getattr(self.store, "ttl_seconds", None)
        await self.log.create(
            response.id,
            tenant=tenant,
            response=encode(response).decode(),
            owner=self.owner,
            lease_until=now + self.settings.lease_s,
            created_at=response.created_at,
            expires_at=None if ttl is None else now + ttl,
        )
        run = LocalRun(response.id, relay)
        self.local[run.id] = run
        self._tg.start_soon(self._execute, run, events)

    async def _execute(self, run: LocalRun, events: AsyncIterator[Event]) -> None:
        try:
            with run.scope:
                await run.relay.stream(events, _LogSink(self, run))
        except Exception:
            log.exception("background response %s failed", run.id)
        finally:
            with anyio.CancelScope(shield=True):
                with anyio.move_on_after(CLOSE_TIMEOUT_S):
                    aclose = getattr(events, "aclose", None)  # closes the upstream request
                    if aclose is not None:
                        await aclose()
                if not run.ended:
                    run.stop(run.reason or "shutdown")  # the final state, if not set yet
                    try:
                        await self.finish(run, run.relay.encoder.take())
                    except Exception:
                        log.exception("background response %s: final state not stored", run.id)
                self.local.pop(run.id, None)
                run.done.set()
                run.written()

    async def finish(self, run: LocalRun, data: bytes) -> None:
        frames = [f for f in split_frames(data) if f[0] > run.last_seq]
        response = run.relay.response
        last = frames[-1][0] if frames else run.last_seq
        with anyio.CancelScope(shield=True):
            await self.log.finish(
                run.id,
                frames,
                last_seq=last,
                status=response.status,
                response=encode(response).decode(),
                now=time.time(),
            )
        run.last_seq, run.ended = last, True
        run.written()

    # -- what any bridge can do with any run -------------------------------------------------

    async def get(self, run_id: str, tenant: str | None) -> RunRow | None:
        return await self.log.get(run_id, tenant=tenant, now=time.time())

    def live_response(self, run_id: str) -> bytes | None:
        """The Response object of a run this bridge executes, as it is now."""
        run = self.local.get(run_id)
        return None if run is None or run.ended else encode(run.relay.response)

    async def follow(self, run_id: str, tenant: str | None, after: int) -> AsyncIterator[bytes]:
        """The run's frames numbered above `after`, live until the run has ended."""
        idle_since = anyio.current_time()
        while True:
            local = self.local.get(run_id)
            wake = local.wake if local is not None else None  # taken before reading: no lost wakeup
            row = await self.get(run_id, tenant)
            if row is None:
                return
            frames = await self.log.events_after(run_id, after)
            if frames:
                after = frames[-1][0]
                idle_since = anyio.current_time()
                yield "".join(text for _, text in frames).encode()
                continue
            if not row.active:
                return
            with anyio.move_on_after(self.settings.poll_s):
                if wake is not None:
                    await wake.wait()
                else:
                    await anyio.sleep_forever()
            if anyio.current_time() - idle_since >= self.settings.heartbeat_s:
                idle_since = anyio.current_time()
                yield KEEPALIVE

    async def cancel(self, run_id: str, tenant: str | None) -> tuple[RunRow | None, bool]:
        """Cancel the run and wait until it has ended; (its final row, whether it was running)."""
        row = await self.get(run_id, tenant)
        if row is None or not row.active:
            return row, False
        local = self.local.get(run_id)
        if local is not None:
            ending = local.relay.encoder.finished  # its terminal event exists: not cancelled
            local.stop("user")
            await local.done.wait()
            return await self.get(run_id, tenant), not ending
        if not await self.log.request_cancel(run_id, tenant=tenant):  # the owner polls it
            return await self.get(run_id, tenant), False  # it ended meanwhile
        with anyio.move_on_after(self.settings.lease_s + 4 * self.settings.poll_s):
            while row is not None and row.active:
                await anyio.sleep(self.settings.poll_s)
                await self.sweep()  # an owner that died never answers the flag
                row = await self.get(run_id, tenant)
        return await self.get(run_id, tenant), True

    # -- upkeep ------------------------------------------------------------------------------

    async def sweep(self) -> None:
        """Mark failed every run whose owner stopped renewing its lease (any bridge's)."""
        now = time.time()
        for run_id, response, last_seq in await self.log.abandoned(now):
            if run_id in self.local:
                continue
            text, frame = abandoned(response, last_seq + 1)
            if await self.log.finish_abandoned(run_id, frame, response=text, now=now):
                log.warning("background response %s marked failed: its bridge stopped", run_id)

    async def _maintain(self) -> None:
        s = self.settings
        next_renew = next_sweep = next_expire = anyio.current_time()
        while True:
            now = anyio.current_time()
            try:
                if self.local:
                    for run_id in await self.log.cancel_requests(self.owner):
                        run = self.local.get(run_id)
                        if run is not None:
                            run.stop("user")
                if now >= next_renew:
                    next_renew = now + s.lease_s / 3
                    await self.log.renew(self.owner, time.time() + s.lease_s)
                if now >= next_sweep:
                    next_sweep = now + s.lease_s / 2
                    await self.sweep()
                if now >= next_expire:
                    next_expire = now + s.sweep_interval_s
                    await self.log.expire(time.time(), s.retention_s)
            except Exception as exc:
                log.warning("background runs upkeep failed (retried): %s", exc)
            await anyio.sleep(min(s.poll_s, s.lease_s / 3))

    async def _drain(self) -> None:
        if not self.local:
            return
        log.info(
            "waiting up to %gs for %d background run(s)", self.settings.drain_s, len(self.local)
        )
        with anyio.move_on_after(self.settings.drain_s):
            for run in list(self.local.values()):
                await run.done.wait()
        left = list(self.local.values())
        for run in left:
            run.stop("shutdown")
        for run in left:
            await run.done.wait()
