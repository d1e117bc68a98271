"""The hooks the request path calls, and the per-request context they report to.

The middleware sets `current` for each request it observes; code deep in the request path
(the transport's attempts, the store) finds its request's metrics, exchange and span there,
without the relay, the client or the transport carrying them. Outside a server (the library,
`exec`, `doctor`) nothing is set and every hook does nothing.
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import AsyncIterator, Callable, Iterator
from contextvars import ContextVar
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import httpx

from .exchange import Attempt, Capture, Exchange

if TYPE_CHECKING:
    from ..upstream.transport import Outgoing
    from .metrics import Metrics
    from .tracing import Tracing


@dataclass
class RequestOps:
    """What one request's hooks report to."""

    metrics: Metrics | None
    exchange: Exchange | None
    tracing: Tracing | None
    state: dict[str, Any]  # the request's scope state: model and upstream, once routed
    last_failure: str | None = None  # the previous attempt's failure: the next one's retry kind


current: ContextVar[RequestOps | None] = ContextVar("wirebridge_request_ops", default=None)


def failure_kind(answer: int | BaseException) -> str:
    """A bounded name for why an upstream attempt failed."""
    if isinstance(answer, int):
        return f"http_{answer}"
    if isinstance(answer, httpx.TimeoutException):
        return "connect_timeout" if isinstance(answer, httpx.ConnectTimeout) else "timeout"
    if isinstance(answer, httpx.ConnectError | ConnectionRefusedError):
        return "connect"
    return "transport"


class _Watched(httpx.AsyncByteStream):
    """The upstream body, passed through: captured (bounded) and timed to its close."""

    def __init__(
        self, inner: httpx.AsyncByteStream, capture: Capture | None, done: Callable[[], None]
    ):
        self.inner = inner
        self.capture = capture
        self.done: Callable[[], None] | None = done

    async def __aiter__(self) -> AsyncIterator[bytes]:
        capture = self.capture
        async for chunk in self.inner:
            if capture is not None:
                capture.add(chunk)
            yield chunk

    async def aclose(self) -> None:
        try:
            await self.inner.aclose()
        finally:
            done, self.done = self.done, None
            if done is not None:
                done()


class AttemptProbe:
    """One upstream attempt as the ops see it; `opened` is handed the response."""

    def __init__(self, ctx: RequestOps | None, out: Outgoing | None):
        self.ctx = ctx
        self.out = out
        self.span: Any = None
        self.attempt: Attempt | None = None
        # Timed here, not by the console's Attempt: a turn without an exchange (a WebSocket
        # turn, --no-console) has its status line timed too.
        self.started = time.perf_counter()

    def opened(self, response: httpx.Response) -> httpx.Response:
        ctx, out = self.ctx, self.out
        if ctx is None or out is None:
            return response
        status = response.status_code
        provider = out.provider.name
        headers_s = time.perf_counter() - self.started
        if self.attempt is not None:
            self.attempt.status = status
            self.attempt.headers_s = headers_s
        if ctx.metrics is not None:
            ctx.metrics.upstream_headers.labels(provider).observe(headers_s)
        if 200 <= status < 300:
            ctx.last_failure = "stream"  # only a stream that breaks early is retried after this
        else:
            self._failed(failure_kind(status))
        capture = None
        exchange = ctx.exchange
        identity = response.headers.get("content-encoding", "identity") == "identity"
        if exchange is not None and exchange.capture_upstream and 200 <= status < 300 and identity:
            capture = exchange.upstream  # a compressed body would not replay
        if self.span is not None or capture is not None:
            span = self.span
            tracing = ctx.tracing

            def done() -> None:
                if span is not None and tracing is not None:
                    tracing.end_attempt(span, status)

            stream = response.stream
            assert isinstance(stream, httpx.AsyncByteStream)
            response.stream = _Watched(stream, capture, done)
        return response

    def _failed(self, kind: str) -> None:
        assert self.ctx is not None and self.out is not None
        if self.attempt is not None:
            self.attempt.error = kind
        if self.ctx.metrics is not None:
            self.ctx.metrics.upstream_failures.labels(self.out.provider.name, kind).inc()
        self.ctx.last_failure = kind


_NOTHING = AttemptProbe(None, None)


@contextlib.contextmanager
def upstream_attempt(out: Outgoing) -> Iterator[AttemptProbe]:
    """Around one upstream POST: counts it (a retry too, after a failure), starts its span and
    puts the span's `traceparent` on the request, and notes the Chat payload for the console."""
    ctx = current.get()
    if ctx is None:
        yield _NOTHING
        return
    probe = AttemptProbe(ctx, out)
    provider = out.provider.name
    if ctx.metrics is not None:
        ctx.metrics.upstream_attempts.labels(provider).inc()
        if ctx.last_failure is not None:
            ctx.metrics.upstream_retries.labels(provider, ctx.last_failure).inc()
    exchange = ctx.exchange
    if exchange is not None:
        if not exchange.attempts:
            exchange.secrets.update(out.secrets)
            exchange.payload.add(out.request.content)
            exchange.note_headers(dict(out.request.headers), out.provider.env_http_headers or ())
        probe.attempt = Attempt(out.shown_url, probe.started)
        exchange.attempts.append(probe.attempt)
    if ctx.tracing is not None:
        probe.span = ctx.tracing.start_attempt(out, ctx.state.get("upstream", ""))
    try:
        yield probe
    except BaseException as exc:
        if isinstance(exc, Exception):
            probe._failed(failure_kind(exc))
        if probe.span is not None and ctx.tracing is not None:
            ctx.tracing.end_attempt(probe.span, None, exc)
        raise


def _ignore(key: str, value: Any) -> None:
    pass


@contextlib.contextmanager
def truncation_span(
    provider: str, model: str, trigger: str
) -> Iterator[Callable[[str, Any], None]]:
    """Around one cut of `truncation: "auto"` (and the probe and counts it makes): a span,
    whose attributes the caller notes with what it yields. `trigger`: `overflow` (the upstream
    refused the turn), `learnt_window` or `probed_window` (cut before it was sent, by a window
    learnt from an earlier overflow or read from a cached probe)."""
    ctx = current.get()
    if ctx is None or ctx.tracing is None:
        yield _ignore
        return
    with ctx.tracing.truncation_span(provider, model, trigger) as span:
        yield span.set_attribute
