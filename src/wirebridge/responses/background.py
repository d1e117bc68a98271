"""Background runs: owned by the server, not the connection that started them.

A background run is a `Relay` whose sink writes each batch of encoded frames to the store's
event log (store/runs.py) instead of a socket; it runs in a task group the `Runtime` holds, so
the client may leave at once. Any bridge on the same database can follow (replay the log after
`starting_after`, then the live tail), poll or cancel it:

- a follower on the run's own bridge is woken by each write; elsewhere by the store's notice
  (PostgreSQL NOTIFY, heard on one LISTEN connection per bridge), with a bounded poll behind it
  (`poll_s`, or `notified_poll_s` while the LISTEN connection is up), no message bus;
- cancel on the owning bridge cancels the run's scope (the upstream request is closed at once);
  elsewhere it sets the run's cancel flag, which the owner reads when notified, and every
  `poll_s`;
- the owner renews a lease on its runs every `lease_s / 3`; every bridge sweeps runs whose lease
  lapsed (a kill -9) every `lease_s / 2` and at start, and marks them failed;
- on shutdown, runs may finish within `drain_s`; the rest are marked failed.

A *foreground* streamed response with `store` is a run too (`start(..., client=...)`), so a
client that lost its connection can resume it. Its client is not made to wait for the store:
frames go to the client's channel first and to the log behind it (a write-behind task that
takes whatever accumulated while the previous transaction committed, one row per batch). Its
row is created with its first batch, so a request refused before its answer began leaves
nothing behind. The run ends before its client sees the terminal event (a retrieve right after
it sees the final state). When its client leaves and nobody follows it for `detach_grace_s`,
it is cancelled: an abandoned stream does not run the upstream to its end.
"""

from __future__ import annotations

import logging
import secrets
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager, suppress
from dataclasses import dataclass, field

import anyio
import anyio.abc
from anyio.streams.memory import MemoryObjectSendStream

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
DEFAULT_DETACH_GRACE_S = 10.0  # a reconnect comes in seconds; a single-slot upstream waits
DEFAULT_POLL_S = 0.5
LISTEN_RETRY_S = 5.0

ClientItem = bytes | ApiError  # what a foreground run hands its client: frames, or a refusal
ClientChannel = MemoryObjectSendStream[ClientItem]


@dataclass(frozen=True, slots=True)
class BackgroundSettings:
    lease_s: float = (
        DEFAULT_LEASE_S  # a run not renewed for this long (its bridge died) is marked failed
    )
    poll_s: float = (
        DEFAULT_POLL_S  # followers and cancel flags of runs on other bridges, read this often
    )
    retention_s: float = DEFAULT_RETENTION_S  # a run's event log is kept this long after it ends
    drain_s: float = 30.0  # on shutdown, runs may finish within this long
    snapshot_s: float = 0.25  # the live Response in the store is refreshed at most this often
    heartbeat_s: float = 15.0  # a silent follower gets a keep-alive comment this often
    sweep_interval_s: float = 600.0  # expired runs and event logs are deleted this often
    max_runs: int = 256  # runs executing at once on this bridge; beyond it a 503 `overloaded`
    # A foreground stream whose client left, and which nobody follows, is cancelled after this.
    detach_grace_s: float = DEFAULT_DETACH_GRACE_S
    # Foreground streams with `store` are logged and can be resumed (False: as before, a
    # client's disconnect cancels them and nothing is logged).
    resumable_streams: bool = True
    # The fallback poll while this bridge hears the store's notices (PostgreSQL LISTEN).
    notified_poll_s: float = 5.0


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
    reason: str = ""  # why it was cancelled: "user", "detached" or "shutdown"
    snapshot_at: float = 0.0
    # A foreground run: its client's channel (None once it left), its followers on this
    # bridge, since when it has been alone, the frames not yet in the log, its creation.
    foreground: bool = False
    client: ClientChannel | None = None
    followers: int = 0
    alone_since: float | None = None
    pending: list[tuple[int, str]] = field(default_factory=list)
    has_pending: anyio.Event = field(default_factory=anyio.Event)
    lock: anyio.Lock = field(default_factory=anyio.Lock)
    create: Callable[[], Awaitable[None]] | None = None  # its row, still to be written
    tenant: str | None = None
    unlogged: bool = False  # its row could not be created: served, never logged
    finishing: anyio.Event | None = None  # its final write, started (set once done)

    def stop(self, reason: str) -> None:
        """End the run now: the encoder's final state is set before the scope is cancelled, so
        the relay (whose producer fails an unfinished answer on its way out) keeps it."""
        if self.ended or self.scope.cancel_called or self.relay.encoder.finished:
            return  # already ending on its own: it is stored as it ended
        self.reason = reason
        if reason in ("user", "detached"):
            self.relay.encoder.cancel()
        else:
            self.relay.encoder.fail("server_error", SHUTDOWN_MESSAGE)
        self.scope.cancel()

    def written(self) -> None:
        self.wake.set()
        self.wake = anyio.Event()

    def alone(self) -> bool:
        return self.foreground and self.client is None and self.followers == 0


class _TeeSink:
    """A foreground run's output: frames to its client now, to the log behind it."""

    def __init__(self, runs: BackgroundRuns, run: LocalRun):
        self.runs, self.run = runs, run

    async def refuse(self, error: ApiError) -> None:
        self.run.ended = True  # nothing was generated: nothing is stored, as before
        await self.runs.to_client(self.run, error, last=True)

    async def commit(self) -> None:
        return None  # the client's handler commits with the first frames

    async def write(self, data: bytes) -> None:
        run = self.run
        # One chunk, numbered by its last frame (the encoder's count right after `take`): the
        # log keeps batches whole, so the hot path never splits frames.
        if data:
            run.pending.append((run.relay.encoder.sequence_number - 1, data.decode()))
        run.has_pending.set()
        await self.runs.to_client(run, data)

    async def keepalive(self) -> None:
        await self.runs.to_client(self.run, KEEPALIVE)

    async def finish(self, data: bytes) -> None:
        # The run has ended in the log before its client hears the end, unless the store takes
        # longer than its write timeout (then the log catches up on its own).
        done = self.runs.finish_soon(self.run, data)
        with anyio.move_on_after(self.runs.write_timeout_s):
            await done.wait()
        await self.runs.to_client(self.run, data, last=True)


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

    def __init__(
        self,
        store: Store,
        settings: BackgroundSettings,
        tg: anyio.abc.TaskGroup,
        write_timeout_s: float = 5.0,
    ):
        self.write_timeout_s = write_timeout_s  # a stream's end waits this long for the log
        self.store = store
        self.log: RunLog = run_log(store)
        self.settings = settings
        self.owner = secrets.token_hex(8)
        self.local: dict[str, LocalRun] = {}
        self._tg = tg
        self.listening = False  # the store's notices reach this bridge (PostgreSQL LISTEN)
        self._waiters: dict[str, anyio.Event] = {}  # runs elsewhere, woken by their notices
        self._poke = anyio.Event()  # a cancel was requested: read the flags now
        self._lost = anyio.Event()

    @classmethod
    @asynccontextmanager
    async def open(
        cls, store: Store, settings: BackgroundSettings, *, write_timeout_s: float = 5.0
    ) -> AsyncIterator[BackgroundRuns]:
        async with anyio.create_task_group() as tg:
            runs = cls(store, settings, tg, write_timeout_s)
            tg.start_soon(runs._maintain)  # sweeps at once: a run a dead bridge left is marked
            if runs.log.notifies:
                tg.start_soon(runs._listen)
            try:
                yield runs
            finally:
                with anyio.CancelScope(shield=True):
                    await runs._drain()
                tg.cancel_scope.cancel()

    @property
    def resumable(self) -> bool:
        """Foreground streams with `store` run here, so a client can resume them."""
        return self.settings.resumable_streams

    # -- starting and running ----------------------------------------------------------------

    async def start(
        self,
        relay: Relay,
        events: AsyncIterator[Event],
        *,
        tenant: str | None,
        client: ClientChannel | None = None,
    ) -> None:
        """Record the run as queued and start it; returns at once. With `client`, a foreground
        stream: its frames go to `client` too, and its row is created with its first batch."""
        if client is None and len(self.local) >= self.settings.max_runs:
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

        async def create() -> None:
            await self.log.create(
                response.id,
                tenant=tenant,
                response=encode(response).decode(),
                owner=self.owner,
                lease_until=time.time() + self.settings.lease_s,
                created_at=response.created_at,
                expires_at=None if ttl is None else now + ttl,
            )

        run = LocalRun(response.id, relay)
        if client is None:
            await create()
        else:
            run.foreground, run.client, run.create = True, client, create
            run.tenant = tenant
        self.local[run.id] = run
        self._tg.start_soon(self._execute, run, events)

    async def to_client(self, run: LocalRun, item: ClientItem, *, last: bool = False) -> None:
        """Hand a foreground run's client its frames (`last`: and the end of them); a client
        that left is detached."""
        client = run.client
        if client is None:
            return
        try:
            try:
                # Handed over at once when there is room: `send` yields first, and the relay's
                # producer would run (decode and encode the upstream's next chunks) before the
                # client's handler is even woken, which holds the first byte.
                client.send_nowait(item)
            except anyio.WouldBlock:
                await client.send(item)  # a slow client: wait for room
        except (anyio.BrokenResourceError, anyio.ClosedResourceError):
            self.detach(run)
            return
        if last:
            run.client = None
            client.close()

    def detach(self, run: LocalRun) -> None:
        """The foreground run's client left: the run goes on, alone for at most the grace."""
        if run.client is None:
            return
        run.client.close()
        run.client = None
        if run.followers == 0:
            self._alone(run)

    def _alone(self, run: LocalRun) -> None:
        run.alone_since = anyio.current_time()
        if self.settings.detach_grace_s <= 0:
            run.stop("detached")

    async def _write_behind(self, run: LocalRun) -> None:
        """A foreground run's log writer: whatever accumulated, one transaction at a time.
        A failed write is retried with what accumulated since; a run whose row could not be
        created is not logged at all (its client is served as before, it cannot be resumed)."""
        while True:
            await run.has_pending.wait()
            run.has_pending = anyio.Event()
            failed = False
            with anyio.CancelScope(shield=True):  # a batch is stored whole, or cancel waits
                async with run.lock:
                    frames, run.pending = run.pending, []
                    frames = [f for f in frames if f[0] > run.last_seq]
                    if run.ended or run.unlogged or not frames:
                        continue
                    try:
                        await self._created(run)
                    except Exception as exc:
                        log.warning("response %s is not resumable: %s", run.id, exc)
                        run.unlogged = True
                        continue
                    try:
                        await self.log.append(run.id, frames, self._snapshot(run))
                    except Exception as exc:
                        log.warning("response %s: event log write retried: %s", run.id, exc)
                        run.pending[:0] = frames
                        failed = True
                    else:
                        run.last_seq, failed = frames[-1][0], False
            if failed:
                await anyio.sleep(self.settings.poll_s)  # a back-off, not a synchronisation
                run.has_pending.set()
            else:
                run.written()

    @staticmethod
    def _chunks(run: LocalRun, data: bytes) -> list[tuple[int, str]]:
        """The last frames of a run, as its log takes them: a foreground run's as one chunk."""
        if not run.foreground:
            return split_frames(data)
        return [(run.relay.encoder.sequence_number - 1, data.decode())] if data else []

    def finish_soon(self, run: LocalRun, data: bytes) -> anyio.Event:
        """End a foreground run in the log without holding its caller; set once it is done."""
        done = anyio.Event()
        chunks = self._chunks(run, data)  # numbered now, while the encoder's count is theirs

        async def end() -> None:
            try:
                await self.finish(run, data, chunks)
            except Exception:
                log.exception("response %s: final state not stored", run.id)
            finally:
                done.set()

        run.finishing = done
        self._tg.start_soon(end)
        return done

    async def _created(self, run: LocalRun) -> None:
        # Cleared once written (callers hold the run's lock): until then `get` answers from
        # memory, so the run is never missing between the two.
        if run.create is not None:
            await run.create()
            run.create = None

    def _snapshot(self, run: LocalRun) -> str | None:
        now = time.monotonic()
        if now - run.snapshot_at < self.settings.snapshot_s:
            return None
        run.snapshot_at = now
        return encode(run.relay.response).decode()

    async def _execute(self, run: LocalRun, events: AsyncIterator[Event]) -> None:
        try:
            with run.scope:
                if run.foreground:
                    async with anyio.create_task_group() as tg:
                        tg.start_soon(self._write_behind, run)
                        await run.relay.stream(events, _TeeSink(self, run))
                        tg.cancel_scope.cancel()
                else:
                    await run.relay.stream(events, _LogSink(self, run))
        except Exception:
            log.exception("background response %s failed", run.id)
        finally:
            with anyio.CancelScope(shield=True):
                with anyio.move_on_after(CLOSE_TIMEOUT_S):
                    aclose = getattr(events, "aclose", None)  # closes the upstream request
                    if aclose is not None:
                        await aclose()
                if run.finishing is not None:
                    await run.finishing.wait()  # a foreground run's final write
                elif not run.ended:
                    run.stop(run.reason or "shutdown")  # the final state, if not set yet
                    data = run.relay.encoder.take()
                    try:
                        await self.finish(run, data)
                    except Exception:
                        log.exception("background response %s: final state not stored", run.id)
                    if run.client is not None:
                        with suppress(anyio.WouldBlock, anyio.BrokenResourceError):
                            run.client.send_nowait(data)
                if run.client is not None:
                    run.client.close()  # the client's handler sees the end
                self.local.pop(run.id, None)
                run.done.set()
                run.written()

    async def finish(
        self, run: LocalRun, data: bytes, chunks: list[tuple[int, str]] | None = None
    ) -> None:
        response = run.relay.response
        with anyio.CancelScope(shield=True):
            async with run.lock:
                more = self._chunks(run, data) if chunks is None else chunks
                frames = [*run.pending, *more]
                frames = [f for f in frames if f[0] > run.last_seq]
                run.pending = []
                last = frames[-1][0] if frames else run.last_seq
                if run.foreground and (run.unlogged or not response.store):
                    # Not stored (the client was told `store: false`): not resumable either.
                    if run.create is None and not run.unlogged:
                        await self.log.discard(run.id)
                    run.create, run.ended = None, True
                    run.written()
                    return
                await self._created(run)
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
        run = self.local.get(run_id)
        if run is not None and run.create is not None and run.tenant in (None, tenant):
            # A foreground run whose row is not written yet: as it is in memory.
            text = encode(run.relay.response).decode()
            return RunRow("in_progress", text, run.last_seq, self.owner, False)
        return await self.log.get(run_id, tenant=tenant, now=time.time())

    def unstored(self, run_id: str) -> bool:
        """A foreground run here whose response was not stored: as unknown as if never run
        (its row, if one was written, is being discarded)."""
        run = self.local.get(run_id)
        return run is not None and run.foreground and not run.relay.response.store

    def live_response(self, run_id: str) -> bytes | None:
        """The Response object of a run this bridge executes, as it is now."""
        run = self.local.get(run_id)
        return None if run is None or run.ended else encode(run.relay.response)

    async def follow(self, run_id: str, tenant: str | None, after: int) -> AsyncIterator[bytes]:
        """The run's frames numbered above `after`, live until the run has ended."""
        followed = self.local.get(run_id)
        if followed is not None:
            followed.followers += 1  # a foreground run with a follower is not alone
        try:
            async for chunk in self._follow(run_id, tenant, after):
                yield chunk
        finally:
            if followed is not None:
                followed.followers -= 1
                if followed.alone():
                    self._alone(followed)

    async def _follow(self, run_id: str, tenant: str | None, after: int) -> AsyncIterator[bytes]:
        idle_since = pinged = anyio.current_time()
        if run_id not in self.local:
            await self.log.ping(run_id)  # its owner elsewhere: someone follows it
        while True:
            local = self.local.get(run_id)
            # Taken before reading: no lost wakeup.
            wake = local.wake if local is not None else self._waiter(run_id)
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
            await self._wait(wake)
            now = anyio.current_time()
            if local is None and now - pinged >= self.settings.detach_grace_s / 3:
                pinged = now
                await self.log.ping(run_id)
            if now - idle_since >= self.settings.heartbeat_s:
                idle_since = now
                yield KEEPALIVE

    def _waiter(self, run_id: str) -> anyio.Event | None:
        """The event a notice about a run elsewhere sets (None: not listening, poll)."""
        if not self.listening:
            return None
        return self._waiters.setdefault(run_id, anyio.Event())

    async def _wait(self, wake: anyio.Event | None) -> None:
        """Until woken, or the poll interval (the longer one while notices are heard)."""
        s = self.settings
        with anyio.move_on_after(max(s.poll_s, s.notified_poll_s) if self.listening else s.poll_s):
            if wake is not None:
                await wake.wait()
            else:
                await anyio.sleep_forever()

    def _notice(self, kind: str, run_id: str) -> None:
        """Another bridge wrote a run's frames (e), asked for a cancel (c), follows a run (f)."""
        if kind == "e":
            waiter = self._waiters.pop(run_id, None)
            if waiter is not None:
                waiter.set()
        elif kind == "c":
            self._poke.set()
        elif kind == "f":
            run = self.local.get(run_id)
            if run is not None and run.alone_since is not None:
                run.alone_since = anyio.current_time()

    def _wake_all(self) -> None:
        waiters, self._waiters = self._waiters, {}
        for waiter in waiters.values():
            waiter.set()
        self._poke.set()

    def _lost_notices(self) -> None:
        self.listening = False
        self._lost.set()
        self._wake_all()  # whatever they missed, they read now and poll from here on

    async def _listen(self) -> None:
        """Hold the LISTEN connection; while it is down, everyone polls every `poll_s`."""
        while True:
            self._lost = anyio.Event()
            try:
                async with self.log.listen(self._notice, self._lost_notices) as heard:
                    if not heard:
                        return
                    self.listening = True
                    self._wake_all()  # a notice before LISTEN took effect may be lost
                    await self._lost.wait()
            except Exception as exc:
                log.warning("store notices unavailable, polling (retried): %s", exc)
            finally:
                self.listening = False
            await anyio.sleep(LISTEN_RETRY_S)

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
        waiter = self._waiter(run_id)  # its end is noticed (taken first: none is missed)
        if not await self.log.request_cancel(run_id, tenant=tenant):  # the owner polls it
            return await self.get(run_id, tenant), False  # it ended meanwhile
        with anyio.move_on_after(self.settings.lease_s + 4 * self.settings.poll_s):
            while row is not None and row.active:
                with anyio.move_on_after(self.settings.poll_s):  # the poll, if not listening
                    if waiter is not None:
                        await waiter.wait()
                    else:
                        await anyio.sleep_forever()
                await self.sweep()  # an owner that died never answers the flag
                waiter = self._waiter(run_id)
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
            self._poke = anyio.Event()  # before reading the flags: a notice meanwhile counts
            try:
                if self.local:
                    for run_id in await self.log.cancel_requests(self.owner):
                        run = self.local.get(run_id)
                        if run is not None:
                            run.stop("user")
                    for run in list(self.local.values()):
                        since = run.alone_since
                        if run.alone() and since is not None and now - since >= s.detach_grace_s:
                            log.info("response %s cancelled: its client left", run.id)
                            run.stop("detached")
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
            with anyio.move_on_after(min(s.poll_s, s.lease_s / 3)):
                await self._poke.wait()  # a cancel request noticed: read the flags now

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
