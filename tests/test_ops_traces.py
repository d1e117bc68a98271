"""OpenTelemetry traces through a real bridge, collected by the SDK's in-memory exporter: the
span tree (request -> store, request -> each upstream attempt), the client's `traceparent`
continued, and each attempt's own `traceparent` reaching the scripted upstream; a WebSocket
turn's span (one per turn, none for the socket) with the same tree under it."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import anyio
import anyio.lowlevel
import httpx
import pytest
from opentelemetry.sdk.trace import ReadableSpan
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import SpanKind, StatusCode

from tests.ops_helpers import recording
from wirebridge.ops import OpsSettings
from wirebridge.responses import BridgeSettings
from wirebridge.responses.testing import passthrough_config, running_bridge
from wirebridge.testing import Reply, ScriptedUpstream, chat_chunk, sse_body, text_body

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
    exporter, provider = recording()
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
    exporter, provider = recording()
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


async def test_each_websocket_turn_is_a_server_span_with_its_attempts_under_it(
    upstream: ScriptedUpstream, tmp_path: Path
) -> None:
    from websockets.asyncio.client import connect

    exporter, provider = recording()
    upstream.push(Reply(text_body(["Hi"], usage=USAGE)), Reply(text_body(["Again"], usage=USAGE)))
    settings = BridgeSettings(
        passthrough_config(upstream.base_url),
        store_at_startup=True,
        store_url=f"sqlite:///{tmp_path}/r.db",
        ops=OpsSettings(tracer_provider=provider),
    )
    upgrade = {"traceparent": f"00-{CLIENT_TRACE}-{CLIENT_SPAN}-01"}
    async with running_bridge(settings) as bridge:
        ws_url = bridge.base_url.replace("http://", "ws://") + "/responses"
        async with connect(ws_url, additional_headers=upgrade) as ws:
            for text in ("hello", "again"):
                await ws.send(json.dumps({"type": "response.create", "model": "m7", "input": text}))
                while json.loads(await ws.recv())["type"] != "response.completed":
                    pass
            spans = await finished(
                exporter, lambda ss: sum(s.kind == SpanKind.SERVER for s in ss) == 2
            )

    # One SERVER span per turn, none for the socket: each continues the upgrade's traceparent.
    turns = sorted((s for s in spans if s.kind == SpanKind.SERVER), key=lambda s: s.start_time or 0)
    assert [s.name for s in turns] == ["response.create /v1/responses"] * 2
    response_ids = []
    for turn in turns:
        assert f"{turn.context.trace_id:032x}" == CLIENT_TRACE
        assert turn.parent is not None and f"{turn.parent.span_id:016x}" == CLIENT_SPAN
        attrs = dict(turn.attributes or {})
        assert attrs["http.route"] == "/v1/responses"
        assert attrs["network.protocol.name"] == "websocket"
        assert "http.response.status_code" not in attrs  # no HTTP answer per turn
        assert attrs["gen_ai.operation.name"] == "chat"
        assert attrs["gen_ai.provider.name"] == "upstream"
        assert attrs["gen_ai.request.model"] == "m7"
        assert attrs["gen_ai.response.model"] == "m7"
        assert list(attrs["gen_ai.response.finish_reasons"]) == ["completed"]  # type: ignore[arg-type]
        assert attrs["gen_ai.usage.input_tokens"] == 5
        assert attrs["gen_ai.usage.output_tokens"] == 2
        assert turn.status.status_code != StatusCode.ERROR
        response_ids.append(attrs["gen_ai.response.id"])
        # Its upstream attempt and its store save are its children.
        children = [s for s in spans if s.parent and s.parent.span_id == turn.context.span_id]
        assert sorted(s.name for s in children) == ["chat m7", "save sqlite"]
    assert len(set(response_ids)) == 2
    assert all(str(r).startswith("resp_") for r in response_ids)


@pytest.mark.parametrize("ending", ["refused", "cancelled"])
async def test_a_websocket_turn_refused_or_left_is_an_error_span(
    upstream: ScriptedUpstream, ending: str
) -> None:
    from websockets.asyncio.client import connect

    exporter, provider = recording()
    if ending == "refused":  # answered with an error frame
        refusal = b'{"error":{"message":"no"}}'
        upstream.push(Reply(refusal, status=400, content_type="application/json"))
    else:  # the client goes away mid-stream
        first = sse_body([chat_chunk({"content": "hello"})], done=False)
        upstream.push(Reply(first + b"data: [DONE]\n\n", stall_after=len(first)))
    settings = BridgeSettings(
        passthrough_config(upstream.base_url), ops=OpsSettings(tracer_provider=provider)
    )
    async with running_bridge(settings) as bridge:
        ws_url = bridge.base_url.replace("http://", "ws://") + "/responses"
        async with connect(ws_url) as ws:
            await ws.send(json.dumps({"type": "response.create", "model": "m", "input": "x"}))
            with anyio.fail_after(10):
                while (kind := json.loads(await ws.recv())["type"]) == "response.created":
                    pass
            assert kind == ("error" if ending == "refused" else "response.in_progress")
            if ending == "cancelled":
                ws.transport.abort()  # gone without a close frame
        spans = await finished(exporter, lambda ss: any(s.kind == SpanKind.SERVER for s in ss))
    turn = next(s for s in spans if s.kind == SpanKind.SERVER)
    assert turn.parent is None  # no traceparent on the upgrade: a trace of its own
    assert turn.attributes is not None and turn.attributes["error.type"] == ending
    assert turn.status.status_code == StatusCode.ERROR
    attempt = next(s for s in spans if s.name == "chat m")
    assert attempt.parent is not None and attempt.parent.span_id == turn.context.span_id
