"""The bridge's ASGI app: `/v1/responses` in front of Chat Completions upstreams (the I/O shell).

    body -> parse_request -> resolve_history -> route -> prepare_chat_request -> Client.stream
         -> ResponsesEncoder -> SSE frames (or one Response object) -> record_response

This module owns the request's life, not its meaning: limits (body size, concurrent streams),
routing through the config (clients never choose upstream URLs or keys), the moment a stream is
committed, client disconnects, and which error shape a failure takes. The meaning lives in the
pure modules it wires: `request` (validation), `encoder` (the Responses wire), `errors` (mapping).

A streaming answer is committed (HTTP 200 sent) when the first event arrives from the upstream,
or after `commit_after_s` without one (a long prompt prefill must not leave the client, or a
proxy, waiting for headers); until then an upstream failure is an HTTP error with the OpenAI
error object (429 keeps Retry-After, an unreachable upstream is a 502 naming its URL). After that
a failure is a `response.failed` event, and silences are filled with SSE keep-alive comments.
A client that goes away cancels the upstream request at once.

Frames are coalesced: a producer task feeds events to the encoder as the upstream yields them, and
a sender task writes whatever accumulated whenever it gets to run, so one upstream read becomes
one socket write (not one per event) without adding latency.
"""

from __future__ import annotations

import itertools
import logging
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from contextlib import AsyncExitStack, asynccontextmanager
from dataclasses import dataclass
from typing import Any, Literal

import anyio
import anyio.lowlevel
import httpx
import msgspec
from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import BaseRoute, Route
from starlette.types import ASGIApp, Receive, Scope, Send

from ..chat.request import ChatRequest, prepare_chat_request
from ..client import Client
from ..events import Event
from ..provider import Config, Provider
from ..redact import redact_dsn
from ..store import (
    DEFAULT_TTL_SECONDS,
    Store,
    background_expiry,
    open_store,
    parse_store_url,
)
from ..transport import http_timeout
from .encoder import IdFactory, ResponsesEncoder, random_id
from .errors import ApiError, map_exception
from .gate import Gate, send_error
from .history import record_response, resolve_history
from .request import ResponsesRequest, parse_request, unknown_fields
from .stored import stored_routes

log = logging.getLogger("wirebridge.server")
_encode = msgspec.json.Encoder().encode

DEFAULT_MAX_BODY_BYTES = 32 * 1024 * 1024
DEFAULT_MAX_CONCURRENT_STREAMS = 256
POOL_SHARDS = 16  # upstream connection pools per provider (see _Shards)
CONNECTIONS_PER_SHARD = 8
DEFAULT_COMMIT_AFTER_S = 2.0
DEFAULT_HEARTBEAT_S = 15.0
KEEPALIVE = b": keep-alive\n\n"
SEND_HIGH_WATER_FRAMES = 4096  # frames buffered for a slow client before the producer waits
CLOSE_TIMEOUT_S = 1.0
SHARD_KEEPALIVE = 32  # idle upstream connections kept per pool

ReasoningSummaryMode = Literal["auto", "always", "never"]
_SSE_HEADERS = [
    (b"content-type", b"text/event-stream; charset=utf-8"),
    (b"cache-control", b"no-cache"),
    (b"x-accel-buffering", b"no"),  # nginx: do not buffer the stream
]


@dataclass(slots=True)
class BridgeSettings:
    config: Config
    api_keys: frozenset[str] = frozenset()
    max_body_bytes: int = DEFAULT_MAX_BODY_BYTES
    max_concurrent_streams: int = DEFAULT_MAX_CONCURRENT_STREAMS
    # Mirror reasoning text as a summary part: when the request asks for a summary (auto),
    # always, or never. Codex's TUI shows summaries, not raw reasoning.
    reasoning_summary: ReasoningSummaryMode = "auto"
    # The response store: given open, or opened at startup from `store_url` when
    # `store_at_startup` (`None` is the default SQLite file under $WIREBRIDGE_HOME); either way
    # swept for expired responses in the background.
    store: Store | None = None
    store_at_startup: bool = False
    store_url: str | None = None
    store_ttl_s: float | None = DEFAULT_TTL_SECONDS
    expiry_interval_s: float = 600.0
    finish_grace_s: float = 2.0
    # A stream is committed at its first event, or after this long without one (then upstream
    # failures become `response.failed`), and sends a keep-alive comment when silent this long.
    commit_after_s: float = DEFAULT_COMMIT_AFTER_S
    heartbeat_s: float = DEFAULT_HEARTBEAT_S


class Bridge:
    """The state shared by all requests: one pooled client per provider, the stream count."""

    def __init__(
        self,
        settings: BridgeSettings,
        *,
        clock: Callable[[], float] = time.time,
        new_id: IdFactory = random_id,
    ):
        self.settings = settings
        self.config = settings.config
        self.clock = clock
        self.new_id = new_id
        self.active = 0
        self._clients: dict[str, _Shards] = {}
        self._retired: list[_Shards] = []
        self._dropped_logged: set[str] = set()

    def client(self, provider: Provider) -> Client:
        """A pooled client for `provider`, taken in turn from its shards (see `_Shards`)."""
        shards = self._clients.get(provider.name)
        if shards is None or shards.provider is not provider:
            if shards is not None:
                self._retired.append(shards)  # a reloaded provider: close the old pools at exit
            shards = self._clients[provider.name] = _Shards(provider, self.settings)
        return shards.next()

    def warm(self) -> None:
        """Create the pooled clients of the configured providers now, not on a first request
        (an httpx client's TLS context costs tens of milliseconds to build)."""
        names = {self.config.default_provider, *(r.provider for r in self.config.routes.values())}
        for name in sorted(names):
            self.client(self.config.provider(name))

    async def aclose(self) -> None:
        for shards in [*self._clients.values(), *self._retired]:
            await shards.aclose()
        self._clients.clear()
        self._retired.clear()
        if self.settings.store is not None:
            await self.settings.store.close()

    def reasoning_summary(self, request: ResponsesRequest) -> bool:
        mode = self.settings.reasoning_summary
        return mode == "always" or (mode == "auto" and request.wants_reasoning_summary)

    def log_dropped_tools(self, chat: ChatRequest) -> None:
        for kind in chat.tool_map.dropped:
            if kind not in self._dropped_logged:  # once per tool type (rule P7)
                self._dropped_logged.add(kind)
                log.info("tools of type %r have no Chat Completions equivalent; not sent", kind)

    # -- POST /v1/responses ------------------------------------------------------------------

    async def responses(self, scope: Scope, receive: Receive, send: Send) -> None:
        state: dict[str, Any] = scope.setdefault("state", {})
        if self.active >= self.settings.max_concurrent_streams:
            await send_error(
                send,
                ApiError(
                    503,
                    f"the bridge is serving its maximum of {self.settings.max_concurrent_streams} "
                    "concurrent responses; retry shortly",
                    "server_error",
                    code="overloaded",
                    headers={"Retry-After": "1"},
                ),
            )
            return
        self.active += 1
        try:
            await self._responses(scope, receive, send, state)
        finally:
            self.active -= 1

    async def _responses(
        self, scope: Scope, receive: Receive, send: Send, state: dict[str, Any]
    ) -> None:
        try:
            raw = await read_body(scope, receive, self.settings.max_body_bytes)
            request = parse_request(raw, default_model=self.config.default_model)
            state["model"], state["stream"] = request.model, request.stream
            if log.isEnabledFor(logging.DEBUG):
                ignored = unknown_fields(raw)
                if ignored:
                    log.debug("ignoring unknown request fields: %s", ", ".join(ignored))
            items = await resolve_history(request, self.settings.store)
            provider, upstream_model = self.config.route(request.model)
            state["upstream"] = f"{provider.name}:{upstream_model}"
            chat = prepare_chat_request(request.prompt(items), upstream_model, provider)
            self.log_dropped_tools(chat)
        except Exception as exc:
            await send_error(send, map_exception(exc))
            return
        response_id = self.new_id("resp")
        state["response_id"] = response_id
        encoder = ResponsesEncoder(
            request.response_shell(response_id, int(self.clock())),
            new_id=self.new_id,
            frames=request.stream,
            reasoning_summary=self.reasoning_summary(request),
        )
        turn = _Turn(self, request, encoder, provider, send, state)
        events: AsyncIterator[Event] = self.client(provider).stream(chat)
        try:
            async with anyio.create_task_group() as tg:

                async def watch_disconnect() -> None:
                    while True:
                        message = await receive()
                        if message["type"] == "http.disconnect":
                            # Servers also report a disconnect once the answer is complete.
                            if not turn.complete:
                                state["disconnected"] = True
                            tg.cancel_scope.cancel()  # cancels the upstream request too
                            return

                tg.start_soon(watch_disconnect)
                if request.stream:
                    await turn.stream(events)
                else:
                    await turn.whole(events)
                tg.cancel_scope.cancel()
        finally:
            with anyio.CancelScope(shield=True), anyio.move_on_after(CLOSE_TIMEOUT_S):
                aclose = getattr(events, "aclose", None)  # closes the upstream connection
                if aclose is not None:
                    await aclose()


class _Shards:
    """One provider's upstream connections, split over several small httpx pools.

    httpcore's pool scans every connection it holds on each request and each release (a
    syscall per idle one: encode/httpx#3215), so its cost grows with the square of the streams in
    flight: 200 concurrent streams through one pool took up to 4.9 s where 16 pools took 0.35 s,
    and 1,000 idle connections in one pool made 1,000 streams cost 23.6 s of server CPU instead
    of 3.7 s (bench/). Requests take the pools in turn; each pool may open as many connections as
    the stream limit allows and keeps at most SHARD_KEEPALIVE of them idle.
    """

    def __init__(self, provider: Provider, settings: BridgeSettings):
        self.provider = provider
        limit = max(settings.max_concurrent_streams, 1)
        count = max(1, min(POOL_SHARDS, limit // CONNECTIONS_PER_SHARD))
        keepalive = max(1, min(SHARD_KEEPALIVE, -(-limit // count)))
        self.clients: list[tuple[Client, httpx.AsyncClient]] = []
        tls = httpx.create_ssl_context()  # built once: each costs ~30 ms (the CA bundle)
        for _ in range(count):
            http = httpx.AsyncClient(
                verify=tls,
                timeout=http_timeout(provider),
                limits=httpx.Limits(max_connections=limit, max_keepalive_connections=keepalive),
            )
            client = Client(
                provider,
                model="",
                http_client=http,
                finish_grace_s=settings.finish_grace_s,
                stream_tool_calls=True,  # relay function_call_arguments.delta as they come
            )
            self.clients.append((client, http))
        self._turn = itertools.cycle(range(count))

    def next(self) -> Client:
        return self.clients[next(self._turn)][0]

    async def aclose(self) -> None:
        for _, http in self.clients:
            await http.aclose()


class _Turn:
    """One response being relayed (streaming or not)."""

    def __init__(
        self,
        bridge: Bridge,
        request: ResponsesRequest,
        encoder: ResponsesEncoder,
        provider: Provider,
        send: Send,
        state: dict[str, Any],
    ):
        self.bridge = bridge
        self.request = request
        self.encoder = encoder
        self.provider = provider
        self.send = send
        self.state = state
        self.producing = True
        self.committed = False  # the 200 went out: failures are now `response.failed`
        self.early_error: BaseException | None = None  # a failure before the commit
        self.complete = False  # the last byte of the answer was handed to the server
        self.ready = anyio.Event()  # the first event arrived, or the upstream stream ended
        self.wake = anyio.Event()
        self.drained = anyio.Event()

    async def _record(self) -> None:
        """Store the finished response before the client sees its end (it may continue at once)."""
        self.state["outcome"] = self.encoder.response["status"]
        try:
            await record_response(self.bridge.settings.store, self.request, self.encoder.response)
        except Exception:
            log.exception("could not store response %s", self.encoder.response.get("id"))

    def _fail(self, exc: BaseException) -> None:
        error = map_exception(exc, self.provider.chat_url)
        log.warning("response %s failed: %s", self.encoder.response.get("id"), error.message)
        self.encoder.fail(error.failed_code, error.message)

    async def whole(self, events: AsyncIterator[Event]) -> None:
        try:
            async for event in events:
                self.encoder.feed(event)
        except Exception as exc:
            await self._error(exc)
            return
        if not self.encoder.finished:
            self.encoder.fail("server_error", "the upstream stream ended without completing")
        await self._record()
        body = _encode(self.encoder.response)
        headers = [(b"content-type", b"application/json"), (b"content-length", b"%d" % len(body))]
        await self.send({"type": "http.response.start", "status": 200, "headers": headers})
        self.complete = True
        await self.send({"type": "http.response.body", "body": body})

    async def _error(self, exc: BaseException) -> None:
        error = map_exception(exc, self.provider.chat_url)
        log.warning("upstream failure before the answer started: %s", error.message)
        self.state["outcome"] = "error"
        self.complete = True
        await send_error(self.send, error)

    async def stream(self, events: AsyncIterator[Event]) -> None:
        """Relay as SSE. The answer is committed (HTTP 200) at the first event, or after
        `commit_after_s` without one (a long prefill); before that a failure is an HTTP error."""
        async with anyio.create_task_group() as tg:
            tg.start_soon(self._produce, events)
            with anyio.move_on_after(self.bridge.settings.commit_after_s):
                await self.ready.wait()
            if self.early_error is not None:
                await self._error(self.early_error)
                return
            self.committed = True  # from here on, failures are `response.failed`
            await self.send({"type": "http.response.start", "status": 200, "headers": _SSE_HEADERS})
            self.encoder.start()
            # created, in_progress and the first event go out now, on their own: coalescing them
            # with the rest of the upstream read would hold the first byte until it is encoded.
            body = self.encoder.take()
            await self.send({"type": "http.response.body", "body": body, "more_body": True})
            await self._sender()

    async def _produce(self, events: AsyncIterator[Event]) -> None:
        encoder = self.encoder
        first = True
        try:
            async for event in events:
                encoder.feed(event)
                self.wake.set()
                if first:
                    first = False
                    self.ready.set()
                    await anyio.lowlevel.checkpoint()  # let the first bytes go out right away
                elif self.committed and encoder.buffered_frames >= SEND_HIGH_WATER_FRAMES:
                    await self.drained.wait()  # a slow client: let the sender catch up
        except Exception as exc:
            if self.committed:
                self._fail(exc)
            else:
                self.early_error = exc
        finally:
            if self.early_error is None and not encoder.finished:
                encoder.fail("server_error", "the upstream stream ended without completing")
            self.producing = False
            self.ready.set()
            self.wake.set()

    async def _sender(self) -> None:
        heartbeat_s = self.bridge.settings.heartbeat_s
        while True:
            with anyio.move_on_after(heartbeat_s) as idle:
                await self.wake.wait()
            if idle.cancelled_caught:
                # An SSE comment: keeps proxies and client idle timers from closing a stream
                # whose upstream is still thinking; every SSE parser skips it.
                await self.send(
                    {"type": "http.response.body", "body": KEEPALIVE, "more_body": True}
                )
                continue
            # No await between wait() returning and take(): nothing fed meanwhile is lost.
            self.wake = anyio.Event()
            producing = self.producing
            data = self.encoder.take()
            if not producing:
                await self._record()
                self.complete = True
                await self.send({"type": "http.response.body", "body": data, "more_body": False})
                return
            if data:
                await self.send({"type": "http.response.body", "body": data, "more_body": True})
            self.drained.set()
            self.drained = anyio.Event()


async def read_body(scope: Scope, receive: Receive, limit: int) -> bytes:
    """The request body, refusing more than `limit` bytes (413) before reading it all."""
    for name, value in scope["headers"]:
        if name == b"content-length":
            try:
                declared = int(value)
            except ValueError:
                raise ApiError.invalid("invalid Content-Length header") from None
            if declared > limit:
                raise _too_large(limit)
    chunks: list[bytes] = []
    size = 0
    more = True
    while more:
        message = await receive()
        if message["type"] == "http.disconnect":
            raise ApiError(499, "client closed the request", code="client_closed")
        body = message.get("body", b"")
        size += len(body)
        if size > limit:
            raise _too_large(limit)
        chunks.append(body)
        more = message.get("more_body", False)
    return b"".join(chunks)


def _too_large(limit: int) -> ApiError:
    return ApiError(
        413,
        f"request body is larger than the bridge's limit of {limit} bytes (--max-body-bytes)",
        code="request_too_large",
    )


# ---------------------------------------------------------------------------------------------
# The app


def create_app(
    settings: BridgeSettings,
    *,
    clock: Callable[[], float] = time.time,
    new_id: IdFactory = random_id,
    extra_routes: Sequence[BaseRoute] = (),
) -> ASGIApp:
    """The whole server as one ASGI app (auth and access log included).

    `extra_routes` are served behind the same auth and access log; they reach the bridge as
    `request.app.state.bridge`.
    """
    bridge = Bridge(settings, clock=clock, new_id=new_id)

    async def healthz(request: Request) -> Response:
        return JSONResponse({"status": "ok", "active_responses": bridge.active})

    async def models(request: Request) -> Response:
        return JSONResponse({"object": "list", "data": model_list(settings.config)})

    @asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        async with AsyncExitStack() as stack:
            stack.push_async_callback(bridge.aclose)
            if settings.store is None and settings.store_at_startup:
                location = parse_store_url(settings.store_url)
                settings.store = await open_store(
                    settings.store_url, ttl_seconds=settings.store_ttl_s
                )
                log.info("response store: %s %s", location.backend, redact_dsn(location.target))
            if settings.store is not None and settings.store_ttl_s is not None:
                await stack.enter_async_context(
                    background_expiry(settings.store, interval_s=settings.expiry_interval_s)
                )
            bridge.warm()
            yield

    async def http_error(request: Request, exc: Exception) -> Response:
        assert isinstance(exc, HTTPException)
        error = ApiError(
            exc.status_code,
            f"{request.method} {request.url.path}: {exc.detail}",
            code="not_found" if exc.status_code == 404 else None,
        )
        return Response(error.encode(), exc.status_code, media_type="application/json")

    responses = _Endpoint(bridge.responses)
    routes = [
        Route("/healthz", healthz, methods=["GET"]),
        Route("/v1/models", models, methods=["GET"]),
        Route("/models", models, methods=["GET"]),
        Route("/v1/responses", responses, methods=["POST"]),
        Route("/responses", responses, methods=["POST"]),  # base_url without /v1
        *stored_routes(lambda: settings.store),
        *extra_routes,
    ]
    app = Starlette(
        routes=routes, lifespan=lifespan, exception_handlers={HTTPException: http_error}
    )
    app.state.bridge = bridge
    return Gate(app, settings.api_keys)


class _Endpoint:
    """A raw ASGI endpoint (Starlette routes instances that are not functions as ASGI apps)."""

    def __init__(self, handler: Callable[[Scope, Receive, Send], Awaitable[None]]):
        self.handler = handler

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        await self.handler(scope, receive, send)


def model_list(config: Config) -> list[dict[str, Any]]:
    """`GET /v1/models`: the configured route names (and the default model), not the upstreams'."""
    names: dict[str, str] = {}
    if config.default_model:
        names[config.default_model] = config.route(config.default_model)[0].name
    for name, route in config.routes.items():
        names[name] = route.provider
    return [
        {"id": name, "object": "model", "created": 0, "owned_by": owner}
        for name, owner in names.items()
    ]
