"""A scripted Chat Completions server on loopback, with fault injection.

Real HTTP/1.1 over a real socket (asyncio streams, no framework in the way), so tests control
every byte and every write: split bodies into random small writes, drip them, stall, cut the
connection, answer with any status and headers. Each request takes the next `Reply` of the script
(or the `default` reply); every request is recorded with its parsed JSON body, and each
connection's closing is observable (`closed`), which is how cancellation is tested.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import random
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from types import TracebackType
from typing import Any

STATUS_TEXT = {
    200: "OK",
    400: "Bad Request",
    401: "Unauthorized",
    404: "Not Found",
    408: "Request Timeout",
    409: "Conflict",
    413: "Payload Too Large",
    429: "Too Many Requests",
    500: "Internal Server Error",
    502: "Bad Gateway",
    503: "Service Unavailable",
}


@dataclass
class Reply:
    """How to answer one request."""

    body: bytes = b""
    status: int = 200
    headers: dict[str, str] = field(default_factory=dict)
    content_type: str = "text/event-stream"
    split: tuple[int, int] | None = None  # write the body in random pieces of this size range
    pieces: list[bytes] | None = None  # or in exactly these pieces
    drip_s: float = 0.0  # pause between pieces
    stall_after: int | None = None  # after this many body bytes, go silent (connection held)
    disconnect_after: int | None = None  # after this many body bytes, drop the connection
    seed: int = 0
    head_delay_s: float = 0.0  # wait this long before the status line (a server slow to answer)
    repeat: bytes | None = None  # after the body, write this every `drip_s` until the client leaves
    raw: bytes | None = None  # write these bytes instead of an HTTP answer, then close
    # after `hold_after` body bytes, wait until the test sets `hold` (or the client leaves)
    hold: asyncio.Event | None = None
    hold_after: int = 0


@dataclass
class SeenRequest:
    method: str
    path: str
    headers: dict[str, str]
    body: bytes

    @property
    def json(self) -> Any:
        return json.loads(self.body)


Script = Callable[[SeenRequest], Reply]


class ScriptedUpstream:
    """`async with ScriptedUpstream() as up:` then `up.base_url`, `up.push(Reply(...))`."""

    def __init__(
        self, replies: list[Reply] | None = None, *, default: Reply | Script | None = None
    ):
        self.replies: deque[Reply] = deque(replies or [])
        self.default = default
        self.requests: list[SeenRequest] = []
        self.closed: asyncio.Event = asyncio.Event()  # set whenever a client connection closes
        self.open_connections = 0
        self._server: asyncio.Server | None = None
        self._stall = asyncio.Event()  # never set: stalls wait on it until the connection ends
        self.port = 0

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}/v1"

    def push(self, *replies: Reply) -> None:
        self.replies.extend(replies)

    async def __aenter__(self) -> ScriptedUpstream:
        self._server = await asyncio.start_server(self._serve, "127.0.0.1", 0, limit=1 << 26)
        self.port = self._server.sockets[0].getsockname()[1]
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.aclose()

    async def aclose(self) -> None:
        if self._server is not None:
            self._server.close()
            with contextlib.suppress(Exception):
                await asyncio.wait_for(self._server.wait_closed(), 1)
            self._server = None

    def _next_reply(self, request: SeenRequest) -> Reply:
        if self.replies:
            return self.replies.popleft()
        if callable(self.default):
            return self.default(request)
        if self.default is not None:
            return self.default
        return Reply(
            b'{"error":{"message":"no scripted reply left"}}',
            status=500,
            content_type="application/json",
        )

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.open_connections += 1
        self.closed.clear()
        try:
            head = await reader.readuntil(b"\r\n\r\n")
            lines = head.decode("latin-1").split("\r\n")
            method, path, _ = lines[0].split(" ", 2)
            headers = {}
            for line in lines[1:]:
                if ":" in line:
                    name, value = line.split(":", 1)
                    headers[name.strip().lower()] = value.strip()
            length = int(headers.get("content-length", "0"))
            body = await reader.readexactly(length) if length else b""
            request = SeenRequest(method, path, headers, body)
            self.requests.append(request)
            await self._answer(self._next_reply(request), writer, reader)
        except (ConnectionError, asyncio.IncompleteReadError, asyncio.LimitOverrunError):
            pass
        finally:
            self.open_connections -= 1
            with contextlib.suppress(Exception):
                writer.close()
                await writer.wait_closed()
            self.closed.set()

    async def _answer(
        self, reply: Reply, writer: asyncio.StreamWriter, reader: asyncio.StreamReader
    ) -> None:
        if reply.raw is not None:  # not HTTP at all (or nothing): the client sees a broken answer
            writer.write(reply.raw)
            await writer.drain()
            writer.transport.abort()
            return
        if reply.head_delay_s:
            try:  # dawdle, but notice a client that gives up meanwhile
                early = await asyncio.wait_for(reader.read(1), reply.head_delay_s)
            except TimeoutError:
                early = None
            if early == b"":
                return
        status_line = f"HTTP/1.1 {reply.status} {STATUS_TEXT.get(reply.status, 'Status')}\r\n"
        head = [status_line, f"Content-Type: {reply.content_type}\r\n", "Connection: close\r\n"]
        head += [f"{k}: {v}\r\n" for k, v in reply.headers.items()]
        faults = (
            reply.stall_after,
            reply.disconnect_after,
            reply.split,
            reply.pieces,
            reply.repeat,
        )
        if all(f is None for f in faults) and not reply.drip_s:
            head.append(f"Content-Length: {len(reply.body)}\r\n")
        writer.write("".join(head).encode("latin-1") + b"\r\n")
        await writer.drain()
        body = reply.body
        limit = len(body)
        if reply.stall_after is not None:
            limit = min(limit, reply.stall_after)
        if reply.disconnect_after is not None:
            limit = min(limit, reply.disconnect_after)
        if reply.hold is not None:
            for piece in self._pieces(reply, body[: reply.hold_after]):
                writer.write(piece)
                await writer.drain()
            if not await self._held(reply.hold, reader):
                return
            body, limit = body[reply.hold_after :], max(0, limit - reply.hold_after)
        for piece in self._pieces(reply, body[:limit]):
            writer.write(piece)
            await writer.drain()
            if reply.drip_s:
                await asyncio.sleep(reply.drip_s)
        if reply.repeat is not None:
            await self._repeat(reply, writer, reader)
            return
        if reply.disconnect_after is not None:
            transport = writer.transport
            transport.abort()  # a hard cut, not a clean end of body
            return
        if reply.stall_after is not None:
            # Hold the connection silent until the client goes away.
            waiter = asyncio.ensure_future(reader.read(1))
            stall = asyncio.ensure_future(self._stall.wait())
            await asyncio.wait({waiter, stall}, return_when=asyncio.FIRST_COMPLETED)
            for task in (waiter, stall):
                task.cancel()

    @staticmethod
    async def _held(hold: asyncio.Event, reader: asyncio.StreamReader) -> bool:
        """Wait for `hold`; False when the client went away first."""
        gone = asyncio.ensure_future(reader.read(1))
        released = asyncio.ensure_future(hold.wait())
        await asyncio.wait({gone, released}, return_when=asyncio.FIRST_COMPLETED)
        for task in (gone, released):
            task.cancel()
        return released.done() and not released.cancelled()

    @staticmethod
    async def _repeat(
        reply: Reply, writer: asyncio.StreamWriter, reader: asyncio.StreamReader
    ) -> None:
        """Write `reply.repeat` every `drip_s` (an endless stream) until the client goes away."""
        assert reply.repeat is not None
        gone = asyncio.ensure_future(reader.read(1))
        try:
            while not gone.done():
                writer.write(reply.repeat)
                await writer.drain()
                await asyncio.wait({gone}, timeout=reply.drip_s or 0.01)
        finally:
            gone.cancel()

    @staticmethod
    def _pieces(reply: Reply, body: bytes) -> list[bytes]:
        if reply.pieces is not None:
            return reply.pieces
        if reply.split is None:
            return [body] if body else []
        rng = random.Random(reply.seed)
        lo, hi = reply.split
        out, i = [], 0
        while i < len(body):
            n = rng.randint(lo, hi)
            out.append(body[i : i + n])
            i += n
        return out
