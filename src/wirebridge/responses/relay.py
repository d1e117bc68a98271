"""One response relayed from the upstream's events to a client, whatever carries it.

The relay owns the moment an answer is committed and what a failure looks like on either side
of it. A streamed answer is committed when the first event arrives from the upstream, or after
`commit_after_s` without one (a long prompt prefill must not leave the client, or a proxy,
waiting for headers); until then an upstream failure is refused with the OpenAI error object
(429 keeps Retry-After, an unreachable upstream is a 502 naming its URL). After that a failure
is a `response.failed` event, and silences are filled with keep-alives every `heartbeat_s`.

The upstream's retries are bounded by this commit (`commit_at`, handed to `Client.stream`): a
retry wait that would straddle it is not made, so a failure known before the first upstream
byte keeps its own status (429 with Retry-After, 502, 504) instead of becoming HTTP 200 and
`response.failed` (upstream/budget.py). After the commit, `response.failed` carries the same
code, and a 429's wait in its message.

It knows no transport: it writes to a `Sink` (an HTTP response today; a WebSocket or a
background run's event log use the same relay), and hands the finished Response object to a
`record` callback before the client sees its end (the client may continue from it at once).
When `record` fails, the final Response says `store: false`: a client is never told a response
is stored when it is not. A response is recorded once its answer began (an upstream event, or
a streamed `response.created`), failed or not, in both modes (docs/store.md).

Frames are coalesced: a producer task feeds events to the encoder as the upstream yields them,
and the sender writes whatever accumulated whenever it gets to run, so one upstream read becomes
one write (not one per event) without adding latency.
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, replace
from typing import Protocol

import anyio
import anyio.lowlevel

from ..events import Event
from ..ops.progress import output_began
from ..wire import Response
from .encoder import ResponsesEncoder
from .errors import ApiError, map_exception

log = logging.getLogger("wirebridge.server")

DEFAULT_COMMIT_AFTER_S = 2.0
DEFAULT_HEARTBEAT_S = 15.0
SEND_HIGH_WATER_FRAMES = 4096  # frames buffered for a slow client before the producer waits
RESPONSE_ID_HEADER = "x-wirebridge-response-id"  # a stored failed response, on an error answer

Record = Callable[[Response], Awaitable[None]]


@dataclass(frozen=True, slots=True)
class RelayTiming:
    commit_after_s: float = DEFAULT_COMMIT_AFTER_S
    heartbeat_s: float = DEFAULT_HEARTBEAT_S


class Sink(Protocol):
    """Where a streamed answer goes. Each method is awaited in order, never concurrently."""

    async def refuse(self, error: ApiError) -> None:
        """The answer failed before it was committed: nothing was sent yet."""

    async def commit(self) -> None:
        """The answer starts (an HTTP 200 with its headers)."""

    async def write(self, data: bytes) -> None:
        """Encoded events, in order."""

    async def keepalive(self) -> None:
        """Nothing to send for `heartbeat_s`: show the client the stream is alive."""

    async def finish(self, data: bytes) -> None:
        """The last events (the terminal one among them); nothing follows."""


class Relay:
    """Relays one response: `stream(events, sink)` for a streamed answer, or `whole(events)`."""

    def __init__(
        self,
        encoder: ResponsesEncoder,
        *,
        record: Record,
        upstream_url: str = "",
        timing: RelayTiming = RelayTiming(),
    ):
        self.encoder = encoder
        self.record = record
        self.upstream_url = upstream_url
        self.timing = timing
        # A streamed answer commits by this time (anyio clock) at the latest: made with the
        # relay, just before `stream`, so the upstream's retry budget can read it.
        self.commit_at = anyio.current_time() + timing.commit_after_s
        self._producing = True
        self._committed = False  # the answer started: failures are now `response.failed`
        self._early_error: BaseException | None = None  # a failure before the commit
        self._ready = anyio.Event()  # the first event arrived, or the upstream stream ended
        self._opened = anyio.Event()  # the first frames were handed to the sink (or none will be)
        self._wake = anyio.Event()
        self._drained = anyio.Event()

    @property
    def response(self) -> Response:
        return self.encoder.response

    async def whole(self, events: AsyncIterator[Event]) -> Response | ApiError:
        """The finished Response object (recorded), or the error to answer instead."""
        try:
            async for event in events:
                if not self.encoder.started:
                    output_began(self.encoder)  # the console's and top's view of its progress
                self.encoder.feed(event)
        except Exception as exc:
            error = self._refusal(exc)
            if not self.encoder.started:
                return error  # nothing was generated: nothing to store
            # The answer had begun: stored as failed, as a stream's is after its commit.
            self.encoder.fail(error.failed_code, error.message)
            if await self._record():
                error = replace(
                    error, headers={**error.headers, RESPONSE_ID_HEADER: self.response.id}
                )
            return error
        if not self.encoder.finished:
            self.encoder.fail("server_error", "the upstream stream ended without completing")
        await self._record()
        return self.encoder.response

    async def stream(self, events: AsyncIterator[Event], sink: Sink) -> None:
        async with anyio.create_task_group() as tg:
            tg.start_soon(self._produce, events)
            try:
                with anyio.CancelScope(deadline=self.commit_at):
                    await self._ready.wait()
                if self._early_error is not None:
                    await sink.refuse(self._refusal(self._early_error))
                    return
                self._committed = True  # from here on, failures are `response.failed`
                await sink.commit()
                self.encoder.start()
                # created, in_progress and the first event go out now, on their own: coalescing
                # them with the rest of the upstream read would hold the first byte until it is
                # encoded. (Unless the whole answer is already in: then `_send` records it
                # before the end.)
                if not self.encoder.finished:
                    await sink.write(self.encoder.take())
            finally:
                self._opened.set()
            await self._send(sink)

    def _refusal(self, exc: BaseException) -> ApiError:
        error = map_exception(exc, self.upstream_url)
        log.warning("upstream failure before the answer started: %s", error.message)
        return error

    async def _record(self) -> bool:
        """Hand the finished response to `record`; False (and `store: false` in the final
        Response, its terminal event re-encoded if still buffered) when that failed."""
        try:
            await self.record(self.encoder.response)
        except Exception as exc:
            log.warning("response %s was not stored: %s", self.encoder.response.id, exc)
            self.encoder.unstore()
            return False
        return self.encoder.response.store

    async def _produce(self, events: AsyncIterator[Event]) -> None:
        encoder = self.encoder
        first = True
        try:
            async for event in events:
                encoder.feed(event)
                self._wake.set()
                if first:
                    first = False
                    output_began(encoder)  # the console's and top's view of its progress
                    self._ready.set()
                    # The first bytes go out before the next upstream chunk is decoded: a sink
                    # that hands them to another task (a resumable stream's client) would
                    # otherwise see them only after it.
                    await self._opened.wait()
                elif self._committed and encoder.buffered_frames >= SEND_HIGH_WATER_FRAMES:
                    await self._drained.wait()  # a slow client: let the sender catch up
        except Exception as exc:
            if self._committed:
                error = map_exception(exc, self.upstream_url)
                log.warning("response %s failed: %s", encoder.response.id, error.message)
                encoder.fail(error.failed_code, error.message)
            else:
                self._early_error = exc
        finally:
            if self._early_error is None and not encoder.finished:
                encoder.fail("server_error", "the upstream stream ended without completing")
            self._producing = False
            self._ready.set()
            self._wake.set()

    async def _send(self, sink: Sink) -> None:
        while True:
            with anyio.move_on_after(self.timing.heartbeat_s) as idle:
                await self._wake.wait()
            if idle.cancelled_caught:
                await sink.keepalive()
                continue
            # No await between wait() returning and take(): nothing fed meanwhile is lost.
            self._wake = anyio.Event()
            if not self._producing or self.encoder.finished:
                # The terminal event is encoded (the producer may still drain the upstream, but
                # feeds nothing more): record, then send the end, so a client never sees it first.
                await self._record()
                await sink.finish(self.encoder.take())
                self._drained.set()
                return
            data = self.encoder.take()
            if data:
                await sink.write(data)
            self._drained.set()
            self._drained = anyio.Event()
