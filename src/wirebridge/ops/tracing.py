"""OpenTelemetry traces (the `otel` extra): a span per request (and per WebSocket turn),
children for the store and for each upstream attempt, W3C `traceparent` taken from clients and
passed upstream.

Attributes follow the OpenTelemetry semantic conventions: HTTP server and client spans
(`http.request.method`, `http.route`, `http.response.status_code`, `server.address`) and GenAI
ones (`gen_ai.operation.name` "chat", `gen_ai.provider.name`, `gen_ai.request.model`,
`gen_ai.response.model`, `gen_ai.response.id`, `gen_ai.response.finish_reasons`,
`gen_ai.usage.input_tokens`, `gen_ai.usage.output_tokens`). Prompts and answers are never put
on spans. The SDK is imported only when a tracer provider is configured.
"""

from __future__ import annotations

import contextlib
import urllib.parse
from collections.abc import Iterator
from typing import TYPE_CHECKING, Any

from .._version import __version__

if TYPE_CHECKING:
    from opentelemetry.sdk.trace import TracerProvider

    from ..upstream.transport import Outgoing

TRACE_HEADERS = (b"traceparent", b"tracestate")
SOCKET_TURN = "response.create"  # a WebSocket turn's span: the message that starts it


def otlp_provider() -> TracerProvider:
    """A provider exporting over OTLP/HTTP as the standard `OTEL_*` variables say
    (`OTEL_EXPORTER_OTLP_ENDPOINT`, `OTEL_SERVICE_NAME`, ...)."""
    try:
        from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
        from opentelemetry.sdk.resources import Resource
        from opentelemetry.sdk.trace import TracerProvider
        from opentelemetry.sdk.trace.export import BatchSpanProcessor
    except ImportError as exc:
        raise RuntimeError("traces need the otel extra: pip install 'wirebridge[otel]'") from exc
    resource = Resource.create({"service.name": "wirebridge", "service.version": __version__})
    provider = TracerProvider(resource=resource)
    provider.add_span_processor(BatchSpanProcessor(OTLPSpanExporter()))
    return provider


class Tracing:
    def __init__(self, provider: Any):
        from opentelemetry import context, trace
        from opentelemetry.trace.propagation.tracecontext import TraceContextTextMapPropagator

        self._context = context
        self._trace = trace
        self.kind = trace.SpanKind
        self.status = trace.Status
        self.status_code = trace.StatusCode
        self.tracer = provider.get_tracer("wirebridge", __version__)
        self.propagator = TraceContextTextMapPropagator()

    def start_request(self, method: str, path: str, headers: list[tuple[bytes, bytes]]) -> Any:
        """The request's span, current (in this task and the ones it starts) until `end`."""
        attributes = {"http.request.method": method, "url.path": path}
        return self._start_server(f"{method} {path}", headers, attributes)

    def end_request(self, started: Any, route: str, status: int, info: dict[str, Any]) -> None:
        span = started[0]
        name = f"{span.name.split(' ')[0]} {route}"
        info = {"http.route": route, "http.response.status_code": status, **info}
        self._end_server(started, name, info, failed=status >= 500)

    def start_socket_turn(self, path: str, headers: list[tuple[bytes, bytes]]) -> Any:
        """A WebSocket turn's span (`response.create /v1/responses`), current until
        `end_socket_turn`, continuing the `traceparent` the client sent on the upgrade."""
        attributes = {"url.path": path, "network.protocol.name": "websocket"}
        return self._start_server(f"{SOCKET_TURN} {path}", headers, attributes)

    def end_socket_turn(self, started: Any, route: str, info: dict[str, Any]) -> None:
        """No status code: a turn is a message on the socket, not an HTTP answer; a refused
        one (an error frame) has `error.type`."""
        self._end_server(started, f"{SOCKET_TURN} {route}", {"http.route": route, **info})

    def _start_server(
        self, name: str, headers: list[tuple[bytes, bytes]], attributes: dict[str, str]
    ) -> Any:
        carrier = {k.decode(): v.decode("latin-1") for k, v in headers if k in TRACE_HEADERS}
        parent = self.propagator.extract(carrier)
        span = self.tracer.start_span(
            name, context=parent, kind=self.kind.SERVER, attributes=attributes
        )
        token = self._context.attach(self._trace.set_span_in_context(span, parent))
        return span, token

    def _end_server(
        self, started: Any, name: str, info: dict[str, Any], *, failed: bool = False
    ) -> None:
        span, token = started
        try:
            span.update_name(name)
            for key, value in info.items():
                if value is not None:
                    span.set_attribute(key, value)
            if failed or info.get("error.type"):
                self._error(span, str(info.get("error.type") or info["http.response.status_code"]))
        finally:
            self._context.detach(token)
            span.end()

    def start_attempt(self, out: Outgoing, upstream: str) -> Any:
        """A client span for one upstream POST; its `traceparent` goes on the request."""
        provider = out.provider.name
        model = upstream.split(":", 1)[1] if ":" in upstream else ""
        url = urllib.parse.urlsplit(out.shown_url)
        span = self.tracer.start_span(
            f"chat {model}".strip(),
            kind=self.kind.CLIENT,
            attributes={
                "gen_ai.operation.name": "chat",
                "gen_ai.provider.name": provider,
                "gen_ai.request.model": model,
                "http.request.method": "POST",
                "server.address": url.hostname or "",
                "server.port": url.port or (443 if url.scheme == "https" else 80),
                "url.full": out.shown_url,
            },
        )
        carrier: dict[str, str] = {}
        self.propagator.inject(carrier, context=self._trace.set_span_in_context(span))
        for name, value in carrier.items():
            out.request.headers[name] = value
        return span

    def end_attempt(self, span: Any, status: int | None, exc: BaseException | None = None) -> None:
        if status is not None:
            span.set_attribute("http.response.status_code", status)
            if status >= 400:
                self._error(span, str(status))
        if exc is not None:
            self._error(span, type(exc).__name__)
        span.end()

    @contextlib.contextmanager
    def store_span(self, operation: str, backend: str) -> Iterator[None]:
        with self.tracer.start_as_current_span(
            f"{operation} {backend}",
            kind=self.kind.CLIENT,
            attributes={"db.system.name": backend, "db.operation.name": operation},
        ):
            yield

    @contextlib.contextmanager
    def truncation_span(self, provider: str, model: str, trigger: str) -> Iterator[Any]:
        """An INTERNAL span for one cut of `truncation: "auto"` (hooks.truncation_span)."""
        with self.tracer.start_as_current_span(
            f"truncate {model}".strip(),
            kind=self.kind.INTERNAL,
            attributes={
                "gen_ai.provider.name": provider,
                "gen_ai.request.model": model,
                "wirebridge.truncation.trigger": trigger,
            },
        ) as span:
            yield span

    def _error(self, span: Any, kind: str) -> None:
        span.set_attribute("error.type", kind)
        span.set_status(self.status(self.status_code.ERROR))
