"""The ops middleware: every HTTP request counted and timed, each `/v1/responses` exchange
recorded for the console and traced, and the pages that need no key served.

It sits outside the Gate (so refused requests are counted too) and shares the request's
`scope["state"]` with it and with the handler, which put the model, the upstream and the
finished response there. It answers three things itself, before the Gate: the console's static
files (they hold no data; the data API behind them needs a key), and `/metrics` when the
settings open it (a loopback bind, or `--metrics-no-auth`).
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Callable, Iterator
from typing import Any

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from .console import STATIC_PREFIX, serve_static
from .hooks import RequestOps, current
from .hub import Ops

RESPONSES_PATHS = frozenset({"/v1/responses", "/responses"})
METRICS_PATH = "/metrics"


def split_upstream(upstream: str) -> tuple[str, str]:
    """`provider:model` (as the handler notes it) -> (provider, model)."""
    provider, _, model = upstream.partition(":")
    return provider, model


def outcome_of(state: dict[str, Any], status: int) -> str:
    if state.get("disconnected"):
        return "cancelled"
    outcome = state.get("outcome")
    if isinstance(outcome, str):
        return outcome  # completed, incomplete, failed (the Response's status) or error
    return "ok" if 0 < status < 400 else "error"


def usage_of(response: Any) -> dict[str, int]:
    usage = getattr(response, "usage", None)
    if usage is None:
        return {}
    return {
        "input": usage.input_tokens,
        "output": usage.output_tokens,
        "reasoning": usage.output_tokens_details.reasoning_tokens,
        "cached": usage.input_tokens_details.cached_tokens,
    }


class Observer:
    def __init__(self, app: ASGIApp, ops: Callable[[], Ops], metrics_open: bool):
        self.app = app
        self.ops = ops
        self.metrics_open = metrics_open

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        kind = scope["type"]
        if kind == "websocket":
            await self._websocket(scope, receive, send)
            return
        if kind != "http":
            await self.app(scope, receive, send)
            return
        path: str = scope["path"]
        if path.startswith(STATIC_PREFIX) or path == "/console":
            await serve_static(path, send)
            return
        ops = self.ops()
        if path == METRICS_PATH and self.metrics_open and ops.metrics is not None:
            await metrics_answer(ops, send)
            return
        if not ops.active:
            await self.app(scope, receive, send)
            return
        await self._observed(ops, scope, receive, send)

    async def _websocket(self, scope: Scope, receive: Receive, send: Send) -> None:
        metrics = self.ops().metrics
        if metrics is None:
            await self.app(scope, receive, send)
            return
        gauge = metrics.websocket_connections
        gauge.inc()
        try:
            await self.app(scope, receive, send)
        finally:
            gauge.dec()

    async def _observed(self, ops: Ops, scope: Scope, receive: Receive, send: Send) -> None:
        start = time.perf_counter()
        state: dict[str, Any] = scope.setdefault("state", {})
        path: str = scope["path"]
        responses = path in RESPONSES_PATHS and scope["method"] == "POST"
        recorder = ops.recorder if responses else None
        exchange = None
        if recorder is not None:
            headers = {k.decode("latin-1"): v.decode("latin-1") for k, v in scope["headers"]}
            exchange = recorder.start(scope["method"], path, headers, state)
        span = None
        if ops.tracing is not None and responses:
            span = ops.tracing.start_request(scope["method"], path, scope["headers"])
        seen: dict[str, Any] = {"status": 0, "ttfb": None}
        metrics = ops.metrics
        in_flight = metrics.streams_in_flight if metrics is not None and responses else None

        async def observed_receive() -> Message:
            message = await receive()
            if exchange is not None and message["type"] == "http.request":
                exchange.request.add(message.get("body", b""))
            return message

        async def observed_send(message: Message) -> None:
            if message["type"] == "http.response.start":
                seen["status"] = message["status"]
            elif message["type"] == "http.response.body":
                body = message.get("body", b"")
                if body and seen["ttfb"] is None:
                    seen["ttfb"] = time.perf_counter() - start
                if exchange is not None:
                    exchange.sent.add(body)
            await send(message)

        token = current.set(RequestOps(metrics, exchange, ops.tracing, state))
        if in_flight is not None:
            in_flight.inc()
        try:
            await self.app(scope, observed_receive if exchange else receive, observed_send)
        finally:
            current.reset(token)
            if in_flight is not None:
                in_flight.dec()
            duration = time.perf_counter() - start
            status: int = seen["status"]
            route_obj = scope.get("route")
            route = getattr(route_obj, "path", None) or "unrouted"
            provider, model = split_upstream(state.get("upstream", ""))
            outcome = outcome_of(state, status)
            response = state.get("response")
            usage = usage_of(response)
            if metrics is not None:
                metrics.observe_request(
                    route=route,
                    status=status,
                    provider=provider,
                    model=model,
                    outcome=outcome,
                    ttfb_s=seen["ttfb"],
                    duration_s=duration,
                )
                if usage:
                    metrics.observe_tokens(provider, model, usage)
            if exchange is not None and recorder is not None:
                exchange.status, exchange.ttfb_s, exchange.duration_s = (
                    status,
                    seen["ttfb"],
                    duration,
                )
                exchange.outcome, exchange.usage = outcome, usage
                exchange.model = state.get("model") or ""
                exchange.provider, exchange.upstream_model = provider, model
                exchange.request_id = state.get("request_id")
                exchange.response_id = state.get("response_id")
                recorder.finish(exchange)
            if span is not None and ops.tracing is not None:
                ops.tracing.end_request(span, route, status, genai_attributes(state, response))


@contextlib.contextmanager
def socket_turn(ops: Ops, scope: Scope, state: dict[str, Any]) -> Iterator[None]:
    """One WebSocket turn (a `response.create` message, websocket.py) observed as a
    `POST /v1/responses` is: the hooks find it in `current` (its upstream attempts counted and
    traced, its store operations timed, its truncation cuts), it gets a SERVER span
    (`response.create /v1/responses`) and its tokens are counted. `state` is the turn's, filled
    as an HTTP request's is (model, upstream, outcome, response, disconnected).

    The socket itself gets no span: it lives up to `--ws-max-age` (an hour) and holds a whole
    Codex session, so one span for it would keep every turn in one trace that is exported only
    when the socket closes (and lost if the process dies first), where operators expect a
    trace per turn, as over HTTP. Each turn continues the `traceparent` sent on the upgrade
    instead (none: a trace of its own); the connection is the gauge
    `wirebridge_websocket_connections` and its access-log line. It is no HTTP answer either:
    `wirebridge_requests_total` and the console's exchanges stay HTTP's.
    """
    if not ops.active:
        yield
        return
    metrics, tracing = ops.metrics, ops.tracing
    path: str = scope["path"]
    span = tracing.start_socket_turn(path, scope["headers"]) if tracing is not None else None
    token = current.set(RequestOps(metrics, None, tracing, state))
    try:
        yield
    finally:
        current.reset(token)
        response = state.get("response")
        if metrics is not None:
            usage = usage_of(response)
            if usage:
                metrics.observe_tokens(*split_upstream(state.get("upstream", "")), usage)
        if span is not None and tracing is not None:
            route = getattr(scope.get("route"), "path", None) or path
            tracing.end_socket_turn(span, route, genai_attributes(state, response))


def genai_attributes(state: dict[str, Any], response: Any) -> dict[str, Any]:
    provider, model = split_upstream(state.get("upstream", ""))
    info: dict[str, Any] = {
        "gen_ai.operation.name": "chat",
        "gen_ai.provider.name": provider or None,
        "gen_ai.request.model": state.get("model"),
    }
    if response is not None:
        usage = usage_of(response)
        finish = getattr(response, "incomplete_details", None)
        reason = getattr(finish, "reason", None) or response.status
        info.update(
            {
                "gen_ai.response.id": response.id,
                "gen_ai.response.model": model or response.model,
                "gen_ai.response.finish_reasons": [reason],
                "gen_ai.usage.input_tokens": usage.get("input"),
                "gen_ai.usage.output_tokens": usage.get("output"),
            }
        )
        error = getattr(response, "error", None)
        if error is not None:
            info["error.type"] = error.code
    outcome = state.get("outcome")
    if state.get("disconnected"):
        info["error.type"] = "cancelled"
    elif outcome == "error":
        info["error.type"] = "refused"
    return info


async def metrics_answer(ops: Ops, send: Send) -> None:
    assert ops.metrics is not None
    body, content_type = ops.metrics.render()
    headers = [(b"content-type", content_type.encode()), (b"content-length", b"%d" % len(body))]
    await send({"type": "http.response.start", "status": 200, "headers": headers})
    await send({"type": "http.response.body", "body": body})
