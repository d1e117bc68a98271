"""`GET /v1/responses` upgraded to a WebSocket: the Responses API over one long connection.

Codex speaks it on the `openai` provider and on a provider table with `supports_websockets`;
the openai SDK's `client.responses.connect()` speaks it too. Each `response.create` message is
one turn, prepared exactly as an HTTP body is (`ResponsesEndpoint.prepare_turn`) and streamed
by the same `Relay` and encoder, into a sink that sends one text frame per event.

This module is the I/O shell; what the messages and frames mean is `socketwire.py`. It owns:
- the upgrade: the gate already checked the key; a cap on open sockets (an HTTP 503 before
  accepting); the `x-codex-turn-state` header Codex reads and echoes (sticky routing);
- one turn at a time: messages that arrive while a turn runs wait their turn (in order, at most
  `max_queued`), so two streams never interleave; a turn's frames are never split by another's;
- the chain: each finished response's full history goes to the connection's `ChainCache`, so
  `previous_response_id` continues with `store: false`; otherwise the store answers, and a
  response held only by another process's connection is `previous_response_not_found`, on
  which Codex sends the whole history again;
- the connection's end: the client going away cancels its upstream request at once; an idle
  connection closes after `idle_s`; one older than `max_age_s` answers its next turn (or, idle,
  at once) with `websocket_connection_limit_reached` and closes;
- each turn's observability: its upstream attempts, tokens and span, as an HTTP turn's
  (`ops.observe.socket_turn`, which says why the socket has no span of its own).
Ping/pong, permessage-deflate and the message size limit (close 1009, refused from the frame
header, before the payload is read) are uvicorn's (runner.py passes them on).
"""

from __future__ import annotations

import contextlib
import logging
import time
import uuid
from collections import deque
from collections.abc import AsyncIterator, Callable
from typing import TYPE_CHECKING, Any

import anyio

from ..events import Completed, Event
from ..items import Item, parse_items
from ..ops.observe import socket_turn
from ..store import Store
from ..wire import Response, to_json
from .encoder import IdFactory, ResponsesEncoder, random_id
from .errors import ApiError, map_exception
from .gate import refuse_websocket
from .history import record_response, resolve_history
from .intake import StreamSlot
from .logs import escape
from .references import resolve_references
from .relay import Relay
from .request import ResponsesRequest
from .runtime import Runtime
from .socketwire import (
    CLOSE_BAD_DATA,
    CLOSE_NORMAL,
    CLOSE_POLICY,
    CLOSE_TOO_BIG,
    CLOSE_UNSUPPORTED,
    CREATE,
    BadMessage,
    ChainCache,
    ClientMessage,
    SocketSettings,
    connection_limit_reached,
    error_frame,
    messages_of,
    read_message,
    unknown_kind,
)
from .tenants import scope_tenant
from .toolcap import cap_tool_calls

if TYPE_CHECKING:  # app.py mounts this endpoint
    from .app import ResponsesEndpoint, Turn

log = logging.getLogger("wirebridge.server")
access_log = logging.getLogger("wirebridge.access")
TURN_STATE = b"x-codex-turn-state"
CLOSE_TIMEOUT_S = 1.0


class ResponsesSocket:
    """The ASGI endpoint for WebSocket scopes on `/v1/responses`."""

    def __init__(
        self,
        endpoint: ResponsesEndpoint,
        runtime: Callable[[], Runtime],
        settings: SocketSettings,
        *,
        clock: Callable[[], float] = time.time,
        new_id: IdFactory = random_id,
    ):
        self.endpoint = endpoint
        self.runtime = runtime
        self.settings = settings
        self.clock = clock
        self.new_id = new_id
        self.open = 0
        # This process's routing token: a balancer keyed on it keeps a client on one bridge.
        self.turn_state = f"wb-{uuid.uuid4().hex}".encode()

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        if (await receive())["type"] != "websocket.connect":
            return
        if self.open >= self.settings.max_sockets:
            await refuse_websocket(scope, send, _too_many(self.settings.max_sockets))
            return
        self.open += 1
        started = time.perf_counter()
        connection = _Connection(self, scope, receive, send)
        try:
            echoed = dict(scope["headers"]).get(TURN_STATE)
            headers = [(TURN_STATE, echoed or self.turn_state)]
            await send({"type": "websocket.accept", "headers": headers})
            await connection.run()
        finally:
            self.open -= 1
            _log_connection(scope, connection, time.perf_counter() - started)


def _log_connection(scope: Any, connection: _Connection, elapsed: float) -> None:
    """One access-log line per socket (the gate logs HTTP requests): how long, how many turns,
    how it ended."""
    if not access_log.isEnabledFor(logging.INFO):
        return
    client = scope.get("client")
    where = f"{client[0]}:{client[1]}" if client else "-"
    code, reason = connection.closing or (CLOSE_NORMAL, "")
    ended = f"disconnect {connection.gone_code}" if connection.gone else f"{code} {reason}".strip()
    fields: dict[str, Any] = {
        "client": where,
        "method": "WEBSOCKET",
        "path": escape(scope["path"]),
        "status": 101,
        "duration_ms": round(elapsed * 1000, 2),
        "turns": connection.turns,
        "closed": escape(ended),
    }
    truncated = ""
    if connection.truncated_items:  # as an HTTP turn's line has it (gate.py)
        fields["truncated_items"] = connection.truncated_items
        truncated = f" truncated_items={connection.truncated_items}"
    access_log.info(
        '%s "WEBSOCKET %s" 101 turns=%d duration_ms=%.2f closed=%s%s',
        where,
        escape(scope["path"]),
        connection.turns,
        elapsed * 1000,
        escape(ended),
        truncated,
        extra={"access": fields},
    )


def _too_many(limit: int) -> ApiError:
    return ApiError(
        503,
        f"the bridge holds its maximum of {limit} WebSocket connections; retry shortly, "
        "or use HTTP",
        "server_error",
        code="overloaded",
        headers={"Retry-After": "1"},
    )


class _Connection:
    """One accepted socket: a reader task queues messages, the turn loop answers them."""

    def __init__(self, owner: ResponsesSocket, scope: Any, receive: Any, send: Any):
        self.owner = owner
        self.settings = owner.settings
        self.scope = scope
        self.receive = receive
        self.send = send
        self.cache = ChainCache(self.settings.chain_entries)
        self.queue: deque[ClientMessage | BaseException] = deque()
        self.wake = anyio.Event()
        self.opened = anyio.current_time()
        self.closing: tuple[int, str] | None = None  # a close decided by the reader
        self.gone = False  # the client closed or went away
        self.gone_code = 0  # its close code (1006: no close frame; 1009: uvicorn's size limit)
        self.turns = 0  # response.create messages answered
        self.truncated_items = 0  # input items truncation "auto" dropped, over all turns
        self.busy = False  # a message is being answered

    async def run(self) -> None:
        try:
            async with anyio.create_task_group() as tg:
                tg.start_soon(self._read, tg.cancel_scope)
                await self._turns()
                tg.cancel_scope.cancel()
        except* OSError:  # uvicorn's ClientDisconnected: a send raced the client's leaving
            self.gone = True
        if not self.gone:
            code, reason = self.closing or (CLOSE_NORMAL, "")
            await self._close(code, reason)

    # -- reading -----------------------------------------------------------------------------

    async def _read(self, scope: anyio.CancelScope) -> None:
        limit = self.owner.endpoint.settings.max_body_bytes
        while True:
            message = await self.receive()
            kind = message["type"]
            if kind == "websocket.disconnect":
                self.gone = True
                self.gone_code = message.get("code", 1005)
                scope.cancel()  # the running turn and its upstream request end now
                return
            text = message.get("text")
            if text is None:
                self._stop(CLOSE_UNSUPPORTED, "binary frames are not supported; send JSON text")
                return
            if len(text) > limit:  # uvicorn's ws_max_size is the first line; this the second
                self._stop(CLOSE_TOO_BIG, f"message larger than {limit} bytes (--max-body-bytes)")
                return
            # Waiting behind a running turn; a message not yet picked up is the next to run.
            waiting = len(self.queue) - (0 if self.busy or not self.queue else 1)
            if waiting >= self.settings.max_queued:
                self._stop(CLOSE_POLICY, "too many response.create messages queued")
                scope.cancel()
                return
            try:
                self.queue.append(read_message(text))
            except (ApiError, BadMessage) as exc:
                self.queue.append(exc)
            self.wake.set()

    def _stop(self, code: int, reason: str) -> None:
        self.closing = (code, reason)
        self.wake.set()

    # -- answering ---------------------------------------------------------------------------

    async def _turns(self) -> None:
        max_age = self.settings.max_age_s
        while True:
            deadline = self.opened + max_age
            if not self.queue and self.closing is None:
                # A fresh event: one set while a turn ran was for a message already answered.
                self.wake = anyio.Event()
                idle, now = self.settings.idle_s, anyio.current_time()
                until = deadline if idle is None else min(deadline, now + idle)
                with anyio.move_on_after(max(0.0, until - now)):
                    await self.wake.wait()
            if anyio.current_time() >= deadline:
                await self._frame(error_frame(connection_limit_reached(max_age)))
                return
            if self.closing is not None:
                return
            if not self.queue:
                self.closing = (CLOSE_NORMAL, "idle timeout")
                return
            item = self.queue.popleft()
            self.busy = True
            try:
                await self._answer(item)
            finally:
                self.busy = False

    async def _answer(self, item: ClientMessage | BaseException) -> None:
        """One message: a turn, or the error frame it earns (bad JSON also closes: 1007)."""
        if isinstance(item, BadMessage):
            await self._frame(error_frame(ApiError.invalid(str(item), code="invalid_json")))
            self.closing = (CLOSE_BAD_DATA, "invalid JSON")
        elif isinstance(item, BaseException):
            await self._frame(error_frame(map_exception(item)))
        elif item.kind != CREATE:
            await self._frame(error_frame(unknown_kind(item.kind)))
        else:
            self.turns += 1
            await self._turn(item)

    async def _turn(self, message: ClientMessage) -> None:
        runtime = self.owner.runtime()
        # The turn's state, as an HTTP request's scope state: model, upstream, outcome, ...
        state: dict[str, Any] = {}
        with socket_turn(runtime.ops, self.scope, state):
            try:
                await self._respond(runtime, message, state)
            except BaseException as exc:
                if self.gone or isinstance(exc, OSError):  # OSError: uvicorn's ClientDisconnected
                    state["disconnected"] = True
                raise

    async def _respond(
        self, runtime: Runtime, message: ClientMessage, state: dict[str, Any]
    ) -> None:
        endpoint = self.owner.endpoint
        try:
            turn = await endpoint.prepare_turn(
                runtime, self.scope, state, message.body, history=self._history
            )
        except Exception as exc:
            await self._refuse(state, map_exception(exc))
            return
        if not message.generate:
            await self._prewarm(runtime, turn, state)
            return
        slot = StreamSlot(runtime, endpoint.settings.max_concurrent_streams)
        refused = slot.take()
        if refused is not None:
            await self._refuse(state, refused)
            return
        try:
            await self._stream(runtime, turn, state)
        finally:
            slot.release()

    async def _refuse(self, state: dict[str, Any], error: ApiError) -> None:
        state["outcome"] = "error"  # as an HTTP turn refused with an error status
        await self._frame(error_frame(error))

    async def _stream(self, runtime: Runtime, turn: Turn, state: dict[str, Any]) -> None:
        endpoint = self.owner.endpoint
        relay = Relay(
            self._encoder(turn),
            record=self._recorder(runtime, turn, state),
            upstream_url=turn.provider.chat_url,
            timing=endpoint.settings.relay_timing,
        )
        client = runtime.client(turn.provider)
        # No headers per turn: what truncation dropped goes to the socket's access-log line.
        state["response_id"] = relay.response.id
        stream = endpoint.truncator.events(turn, client, state, commit_at=relay.commit_at)
        stream = cap_tool_calls(stream, turn.request.body.max_tool_calls)
        events: AsyncIterator[Event] = endpoint.compactor.events(turn.plan, stream)
        try:
            await relay.stream(events, _SocketSink(self, state))
        finally:
            self.truncated_items += state.get("truncated_items", 0)
            with anyio.CancelScope(shield=True), anyio.move_on_after(CLOSE_TIMEOUT_S):
                aclose = getattr(events, "aclose", None)  # closes the upstream connection
                if aclose is not None:
                    await aclose()

    async def _prewarm(self, runtime: Runtime, turn: Turn, state: dict[str, Any]) -> None:
        """`generate: false`: a response with no output, and no upstream call."""
        encoder = self._encoder(turn)
        encoder.feed(Completed())  # created, in_progress, completed
        try:
            await self._recorder(runtime, turn, state)(encoder.response)
        except Exception as exc:
            log.warning("prewarm %s was not stored: %s", encoder.response.id, exc)
            encoder.unstore()
        await _SocketSink(self, state).write(encoder.take())

    def _encoder(self, turn: Turn) -> ResponsesEncoder:
        owner = self.owner
        return ResponsesEncoder(
            turn.request.response(owner.new_id("resp"), int(owner.clock())),
            new_id=owner.new_id,
            reasoning_summary=owner.endpoint.reasoning_summary(turn.request),
            seal=owner.endpoint.reasoning_tokens.sealer(turn.request),
        )

    def _recorder(
        self, runtime: Runtime, turn: Turn, state: dict[str, Any]
    ) -> Callable[[Response], Any]:
        async def record(response: Response) -> None:
            state["outcome"] = response.status
            state["response"] = response  # usage and finish, for metrics and traces
            output = parse_items(to_json(response)["output"])
            self.cache.put(response.id, [*turn.items, *output])
            await record_response(
                runtime.store,
                turn.request,
                response,
                tenant=scope_tenant(self.scope),
                timeout_s=self.owner.endpoint.settings.store_write_timeout_s,
            )

        return record

    async def _history(
        self, request: ResponsesRequest, store: Store | None, tenant: str | None
    ) -> list[Item]:
        """This connection's chain first (it has responses the store never saw), then the
        store's; neither: `previous_response_not_found`."""
        previous = request.previous_response_id
        chain = self.cache.get(previous) if previous is not None else None
        if chain is None:
            return await resolve_history(request, store, tenant)
        request.items = await resolve_references(request.items, store, tenant)
        return [*chain, *request.items]

    # -- sending -----------------------------------------------------------------------------

    async def _frame(self, data: bytes) -> None:
        await self.send({"type": "websocket.send", "text": data.decode()})

    async def _close(self, code: int, reason: str) -> None:
        with contextlib.suppress(OSError):  # uvicorn's ClientDisconnected: the client left
            await self.send({"type": "websocket.close", "code": code, "reason": reason})


class _SocketSink:
    """The relay's output as WebSocket text frames: one per event, nothing before the first."""

    def __init__(self, connection: _Connection, state: dict[str, Any]):
        self.connection = connection
        self.state = state  # the turn's

    async def refuse(self, error: ApiError) -> None:
        await self.connection._refuse(self.state, error)

    async def commit(self) -> None:
        pass  # no headers: the first event is the start

    async def write(self, data: bytes) -> None:
        send = self.connection.send
        for message in messages_of(data):
            await send({"type": "websocket.send", "text": message.decode()})

    async def keepalive(self) -> None:
        pass  # the server's pings keep the socket alive; an event frame would be a lie

    async def finish(self, data: bytes) -> None:
        await self.write(data)
