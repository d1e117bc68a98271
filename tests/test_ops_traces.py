"""OpenTelemetry traces through a real bridge, collected by the SDK's in-memory exporter: the
span tree (request -> store, request -> each upstream attempt), the client's `traceparent`
continued, and each attempt's own `traceparent` reaching the scripted upstream."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import anyio
import anyio.lowlevel
import httpx
import pytest
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import SpanKind, StatusCode

from wirebridge.ops import OpsSettings
from wirebridge.responses import BridgeSettings
from wirebridge.responses.testing import passthrough_config, running_bridge
from wirebridge.testing import Reply, ScriptedUpstream, text_body

pytestmark = pytest.mark.anyio

CLIENT_TRACE = "4bf92f3577b34da6a3ce929d0e0e4736"
CLIENT_SPAN = "00f067aa0ba902b7"
USAGE = {"prompt_tokens": 5, "completion_tokens": 2, "total_tokens": 7}


async def finished(
    exporter: InMemorySpanExporter, ready: Callable[[list[ReadableSpan]], bool]
) -> list[ReadableSpan]:
    """The finished spans once `ready`: the server span ends just after the client's read."""
    with anyio.fail_after(10):
        while not ready(spans := list(exporter.get_finished_spans())):
            await anyio.lowlevel.checkpoint()  # the bridge runs in this event loop
    return spans


async def test_span_tree_and_traceparent_reach_the_upstream(
    upstream: ScriptedUpstream, tmp_path: Path
) -> None:
    exporter = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    upstream.push(
        Reply(b'{"error":{"message":"busy"}}', status=503, headers={"Retry-After": "0"}),
        Reply(text_body(["Hi"], usage=USAGE)),
    )
    settings = BridgeSettings(
        passthrough_config(upstream.base_url),
        store_at_startup=True,
        store_url=f"sqlite:///{tmp_path}/r.db",
        ops=OpsSettings(tracer_provider=provider),
    )
    headers = {"traceparent": f"00-{CLIENT_TRACE}-{CLIENT_SPAN}-01"}
    async with running_bridge(settings) as bridge, httpx.AsyncClient(timeout=10) as http:
        answer = await http.post(
            f"{bridge.base_url}/responses",
            json={"model": "m7", "input": "hello", "stream": True},
            headers=headers,
        )
        assert answer.status_code == 200
        spans = await finished(exporter, lambda ss: any(s.kind == SpanKind.SERVER for s in ss))

    def ids(span: Any) -> tuple[str, str]:
        return f"{span.context.trace_id:032x}", f"{span.context.span_id:016x}"

    server = next(s for s in spans if s.kind == SpanKind.SERVER)
    attempts = [s for s in spans if s.kind == SpanKind.CLIENT and s.name.startswith("chat")]
    stores = [s for s in spans if s.attributes and s.attributes.get("db.system.name")]
    # The client's trace goes on: the server span is its child.
    assert ids(server)[0] == CLIENT_TRACE
    assert server.parent is not None and f"{server.parent.span_id:016x}" == CLIENT_SPAN
    assert server.name == "POST /v1/responses"
    attrs = dict(server.attributes or {})
    assert attrs["http.route"] == "/v1/responses"
    assert attrs["http.response.status_code"] == 200
    assert attrs["gen_ai.operation.name"] == "chat"
    assert attrs["gen_ai.provider.name"] == "upstream"
    assert attrs["gen_ai.request.model"] == "m7"
    assert attrs["gen_ai.response.model"] == "m7"
    assert str(attrs["gen_ai.response.id"]).startswith("resp_")
    assert list(attrs["gen_ai.response.finish_reasons"]) == ["completed"]  # type: ignore[arg-type]
    assert attrs["gen_ai.usage.input_tokens"] == 5
    assert attrs["gen_ai.usage.output_tokens"] == 2
    # One child span per upstream attempt, in order: the 503, then the answer.
    assert len(attempts) == 2
    for span in attempts:
        assert span.parent is not None and span.parent.span_id == server.context.span_id
        assert ids(span)[0] == CLIENT_TRACE
        assert span.name == "chat m7"
        assert span.attributes is not None
        assert span.attributes["gen_ai.request.model"] == "m7"
        assert span.attributes["server.address"] == "127.0.0.1"
    first, second = sorted(attempts, key=lambda s: s.start_time or 0)
    assert first.attributes is not None and second.attributes is not None
    assert first.attributes["http.response.status_code"] == 503
    assert first.status.status_code == StatusCode.ERROR
    assert second.attributes["http.response.status_code"] == 200
    # Each attempt's own traceparent reached the upstream with its request.
    sent = [r.headers.get("traceparent") for r in upstream.requests]
    assert sent == [f"00-{CLIENT_TRACE}-{ids(s)[1]}-01" for s in (first, second)]
    # The store: the finished response saved, in a child span of the request.
    assert [s.name for s in stores] == ["save sqlite"]
    assert stores[0].parent is not None and stores[0].parent.span_id == server.context.span_id


async def test_without_a_client_trace_the_request_starts_one(upstream: ScriptedUpstream) -> None:
    exporter = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    upstream.push(Reply(text_body(["Hi"])))
    settings = BridgeSettings(
        passthrough_config(upstream.base_url), ops=OpsSettings(tracer_provider=provider)
    )
    async with running_bridge(settings) as bridge, httpx.AsyncClient(timeout=10) as http:
        answer = await http.post(f"{bridge.base_url}/responses", json={"model": "m", "input": "x"})
        assert answer.status_code == 200
        spans = await finished(exporter, lambda ss: any(s.kind == SpanKind.SERVER for s in ss))
    server = next(s for s in spans if s.kind == SpanKind.SERVER)
    assert server.parent is None
    traceparent = upstream.requests[0].headers["traceparent"]
    assert traceparent.split("-")[1] == f"{server.context.trace_id:032x}"
