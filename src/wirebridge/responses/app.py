"""The bridge's ASGI app: `/v1/responses` in front of Chat Completions upstreams (the I/O shell).

    body -> parse_request -> resolve_history -> route -> prepare_chat_request -> Client.stream
         -> Relay (ResponsesEncoder) -> SSE frames (or one Response object) -> record_response

This module owns the HTTP side of a request's life: the body limit, the concurrency limit,
routing through the config (clients never choose upstream URLs or keys), client disconnects
(which cancel the upstream request at once; a stored stream goes on, resumable: runroutes.py),
and the Starlette assembly. The relay decides when an answer is committed and how failures
look; the pure modules decide what things mean: `request` (validation), `encoder` (the
Responses wire), `errors` (mapping).
"""

from __future__ import annotations

import logging
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass
from functools import partial
from typing import Any

import anyio
from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import BaseRoute, Route, WebSocketRoute
from starlette.types import ASGIApp, Receive, Scope, Send

from ..catalog.directory import ModelDirectory
from ..chat.request import ChatRequest, prepare_chat_request
from ..events import Event
from ..items import Item
from ..ops.observe import Observer
from ..ops.routes import ops_routes
from ..provider import Provider
from ..store import Store
from ..wire import Response as ResponseObject
from ..wire import encode
from .bodies import decode_body
from .codex_items import forward_cache_key
from .compacting import Compactor, Plan
from .conversations import conversation_routes
from .encoder import IdFactory, ResponsesEncoder, random_id
from .errors import ApiError, map_exception
from .gate import Gate, send_error
from .history import record_response, resolve_history
from .intake import StreamSlot, off_loop, read_within
from .models import model_routes
from .reasoning_tokens import ReasoningTokens
from .relay import Relay
from .request import ResponsesRequest, parse_request, unknown_fields
from .runroutes import answer_background, answer_resumable, run_routes
from .runtime import Runtime
from .settings import BridgeSettings
from .stored import stored_routes
from .tenants import scope_tenant
from .tokens import InputTokensEndpoint
from .toolcap import cap_tool_calls
from .truncating import TRUNCATED_HEADER, Truncator
from .websocket import ResponsesSocket

log = logging.getLogger("wirebridge.server")

KEEPALIVE = b": keep-alive\n\n"
CLOSE_TIMEOUT_S = 1.0
_SSE_HEADERS = [
    (b"content-type", b"text/event-stream; charset=utf-8"),
    (b"cache-control", b"no-cache"),
    (b"x-accel-buffering", b"no"),  # nginx: do not buffer the stream
]


class _SseSink:
    """The relay's output as an HTTP response: SSE frames, or an error before the commit."""

    def __init__(self, send: Send, state: dict[str, Any]):
        self.send = send
        self.state = state
        self.complete = False  # the last byte of the answer was handed to the server

    async def refuse(self, error: ApiError) -> None:
        self.state["outcome"] = "error"
        self.complete = True
        await send_error(self.send, error)

    async def commit(self) -> None:
        headers = _SSE_HEADERS + _truncated_header(self.state)
        await self.send({"type": "http.response.start", "status": 200, "headers": headers})

    async def write(self, data: bytes) -> None:
        await self.send({"type": "http.response.body", "body": data, "more_body": True})

    async def keepalive(self) -> None:
        # An SSE comment: keeps proxies and client idle timers from closing a stream whose
        # upstream is still thinking; every SSE parser skips it.
        await self.write(KEEPALIVE)

    async def finish(self, data: bytes) -> None:
        self.complete = True
        await self.send({"type": "http.response.body", "body": data, "more_body": False})


History = Callable[[ResponsesRequest, Store | None, str | None], Awaitable[list[Item]]]


@dataclass(slots=True)
class Turn:
    """One prepared turn: the request, the full history sent upstream, and the Chat request."""

    request: ResponsesRequest
    items: list[Item]
    plan: Plan
    provider: Provider
    chat: ChatRequest


class ResponsesEndpoint:
    """`POST /v1/responses`, streamed or whole."""

    def __init__(
        self,
        settings: BridgeSettings,
        runtime: Callable[[], Runtime],
        *,
        clock: Callable[[], float] = time.time,
        new_id: IdFactory = random_id,
    ):
        self.settings = settings
        self.runtime = runtime
        self.config = settings.config
        self.clock = clock
        self.new_id = new_id
        self.compactor = Compactor.from_settings(settings, new_id=new_id)
        self.reasoning_tokens = ReasoningTokens.from_secret(self.compactor.sealer.secret)
        # The upstreams' models and windows, probed through the provider's pooled client:
        # shared by GET /v1/models and truncation: "auto" (one cache of what was probed).
        self.directory = ModelDirectory(
            settings.config, http=lambda provider: self.runtime().pools.http(provider)
        )
        self.truncator = Truncator(  # truncation: "auto" (truncating.py)
            settings.config,
            http=lambda provider: self.runtime().pools.http(provider),
            metrics=lambda: self.runtime().ops.metrics,
            directory=self.directory,
        )

    def reasoning_summary(self, request: ResponsesRequest) -> bool:
        mode = self.settings.reasoning_summary
        return mode == "always" or (mode == "auto" and request.wants_reasoning_summary)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        state: dict[str, Any] = scope.setdefault("state", {})
        runtime = self.runtime()
        # Counted once the request is parsed (in _respond): a slow body holds no stream slot.
        slot = StreamSlot(runtime, self.settings.max_concurrent_streams)
        try:
            await self._respond(runtime, scope, receive, send, state, slot)
        finally:
            slot.release()

    async def prepare_turn(
        self,
        runtime: Runtime,
        scope: Scope,
        state: dict[str, Any],
        raw: bytes,
        *,
        history: History = resolve_history,
    ) -> Turn:
        """body -> request -> history -> compaction plan -> route -> Chat request: one turn,
        whichever transport carries it (an HTTP body here, a WebSocket message in websocket.py,
        which resolves `previous_response_id` from its connection first: `history`)."""
        offload = self.settings.offload_bytes
        parse = partial(parse_request, default_model=self.config.default_model)
        request = await off_loop(len(raw), offload, parse, raw)
        state["model"], state["stream"] = request.model, request.stream
        if log.isEnabledFor(logging.DEBUG):
            ignored = unknown_fields(raw)
            if ignored:
                log.debug("ignoring unknown request fields: %s", ", ".join(ignored))
        request.items = self.reasoning_tokens.open_input(request.items)  # a bad token: 400
        items = await history(request, runtime.store, scope_tenant(scope))
        plan = self.compactor.plan(request, items, scope)  # compaction items, a trigger
        provider, upstream_model = self.config.route(request.model)
        state["upstream"] = f"{provider.name}:{upstream_model}"
        chat = await off_loop(
            len(raw), offload, prepare_chat_request, plan.prompt, upstream_model, provider
        )
        runtime.log_dropped_tools(chat)
        self.compactor.check(plan, chat.payload)
        forward_cache_key(request.body.prompt_cache_key, provider, chat.payload)
        return Turn(request, items, plan, provider, chat)

    async def _respond(
        self,
        runtime: Runtime,
        scope: Scope,
        receive: Receive,
        send: Send,
        state: dict[str, Any],
        slot: StreamSlot,
    ) -> None:
        try:
            raw = await read_within(
                self.settings.body_timeout_s,
                read_body(scope, receive, self.settings.max_body_bytes),
            )
            turn = await self.prepare_turn(runtime, scope, state, raw)
        except Exception as exc:
            await send_error(send, map_exception(exc))
            return
        request, plan, provider = turn.request, turn.plan, turn.provider
        refused = slot.take()
        if refused is not None:
            await send_error(send, refused)
            return
        response_id = self.new_id("resp")
        state["response_id"] = response_id
        encoder = ResponsesEncoder(
            request.response(response_id, int(self.clock())),
            new_id=self.new_id,
            frames=request.stream or bool(request.body.background),
            reasoning_summary=self.reasoning_summary(request),
            seal=self.reasoning_tokens.sealer(request),
        )

        async def record(response: ResponseObject) -> None:
            state["outcome"] = response.status
            state["response"] = response  # usage and finish, for metrics and traces
            await record_response(
                runtime.store,
                request,
                response,
                tenant=scope_tenant(scope),
                timeout_s=self.settings.store_write_timeout_s,
            )

        relay = Relay(
            encoder,
            record=record,
            upstream_url=provider.chat_url,
            timing=self.settings.relay_timing,
        )
        sink = _SseSink(send, state)
        # A streamed answer's commit bounds the upstream's retries (upstream/budget.py).
        commit_at = relay.commit_at if request.stream else None
        events = self.truncator.events(turn, runtime.client(provider), state, commit_at=commit_at)
        events = cap_tool_calls(events, request.body.max_tool_calls)  # toolcap.py
        events = self.compactor.events(plan, events)
        if request.body.background:  # the server owns the run; this request only starts it
            await answer_background(
                runtime.background,
                relay,
                events,
                stream=request.stream,
                scope=scope,
                receive=receive,
                send=send,
            )
            return
        runs = runtime.background
        if request.stream and request.store and runs is not None and runs.resumable:
            # Stored streams are resumable: the server owns the run (runroutes.py).
            await answer_resumable(
                runs, relay, events, sink, scope=scope, receive=receive, state=state
            )
            return
        try:
            async with anyio.create_task_group() as tg:

                async def watch_disconnect() -> None:
                    while True:
                        message = await receive()
                        if message["type"] == "http.disconnect":
                            # Servers also report a disconnect once the answer is complete.
                            if not sink.complete:
                                state["disconnected"] = True
                            tg.cancel_scope.cancel()  # cancels the upstream request too
                            return

                tg.start_soon(watch_disconnect)
                if request.stream:
                    await relay.stream(events, sink)
                else:
                    await self._whole(relay, events, sink)
                tg.cancel_scope.cancel()
        finally:
            with anyio.CancelScope(shield=True), anyio.move_on_after(CLOSE_TIMEOUT_S):
                aclose = getattr(events, "aclose", None)  # closes the upstream connection
                if aclose is not None:
                    await aclose()

    @staticmethod
    async def _whole(relay: Relay, events: AsyncIterator[Event], sink: _SseSink) -> None:
        result = await relay.whole(events)
        if isinstance(result, ApiError):
            await sink.refuse(result)
            return
        body = encode(result)
        headers = [(b"content-type", b"application/json"), (b"content-length", b"%d" % len(body))]
        headers += _truncated_header(sink.state)
        await sink.send({"type": "http.response.start", "status": 200, "headers": headers})
        sink.complete = True
        await sink.send({"type": "http.response.body", "body": body})


def _truncated_header(state: dict[str, Any]) -> list[tuple[bytes, bytes]]:
    """How many items `truncation: "auto"` dropped from this turn, when it dropped any."""
    dropped = state.get("truncated_items")
    return [(TRUNCATED_HEADER.encode(), b"%d" % dropped)] if dropped else []


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
    return decode_body(scope["headers"], b"".join(chunks), limit)  # the limit holds decoded


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

    `extra_routes` are served behind the same auth and access log; they reach what the server
    holds open as `request.app.state.runtime` (a `Runtime`).
    """
    live: list[Runtime] = []  # the runtime, once the lifespan has opened it

    def runtime() -> Runtime:
        if not live:
            raise RuntimeError("the app's lifespan has not started (run it under an ASGI server)")
        return live[0]

    async def healthz(request: Request) -> Response:
        return JSONResponse({"status": "ok", "active_responses": runtime().active})

    @asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        async with Runtime.open(settings) as opened:
            live.append(opened)
            app.state.runtime = opened
            try:
                yield
            finally:
                live.clear()

    async def http_error(request: Request, exc: Exception) -> Response:
        assert isinstance(exc, HTTPException)
        error = ApiError(
            exc.status_code,
            f"{request.method} {request.url.path}: {exc.detail}",
            code="not_found" if exc.status_code == 404 else None,
        )
        return Response(error.encode(), exc.status_code, media_type="application/json")

    responses = ResponsesEndpoint(settings, runtime, clock=clock, new_id=new_id)
    socket = ResponsesSocket(responses, runtime, settings.websocket, clock=clock, new_id=new_id)
    body = partial(read_body, limit=settings.max_body_bytes)
    count_tokens = InputTokensEndpoint(responses, body).handle
    routes = [
        Route("/healthz", healthz, methods=["GET"]),
        *model_routes(settings.config, directory=responses.directory),
        Route("/v1/responses", responses, methods=["POST"]),
        Route("/responses", responses, methods=["POST"]),  # base_url without /v1
        Route("/v1/responses/input_tokens", count_tokens, methods=["POST"]),
        Route("/responses/input_tokens", count_tokens, methods=["POST"]),
        WebSocketRoute("/v1/responses", socket),  # GET with Upgrade: websocket
        WebSocketRoute("/responses", socket),
        *responses.compactor.routes(
            settings,
            runtime,
            lambda scope, receive: read_body(scope, receive, settings.max_body_bytes),
        ),
        *run_routes(lambda: (runtime().store, runtime().background)),  # before stored_routes
        *stored_routes(lambda: runtime().store),
        *conversation_routes(lambda: runtime().store, body),
        *ops_routes(),  # /metrics, /console/api/...
        *extra_routes,
    ]
    app = Starlette(
        routes=routes, lifespan=lifespan, exception_handlers={HTTPException: http_error}
    )
    gate = Gate(app, settings.api_keys, settings.tenant_groups)
    return Observer(gate, lambda: runtime().ops, settings.ops.metrics_open)  # metrics, console
