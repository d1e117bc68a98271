"""The request edge under abuse, through real servers: slow and partial bodies on raw sockets,
connection caps, big bodies parsed off the event loop, forged log lines, WebSocket auth, echoed
ids cut short, and what a failed response keeps of the text it had streamed."""

from __future__ import annotations

import json
import logging
from pathlib import Path
from typing import Any

import anyio
import httpx
import pytest
import websockets
from anyio.abc import SocketStream
from starlette.routing import WebSocketRoute
from starlette.websockets import WebSocket

from wirebridge.responses import BridgeSettings
from wirebridge.responses.app import create_app
from wirebridge.responses.runner import running
from wirebridge.responses.testing import (
    check_stream_invariants,
    parse_sse,
    passthrough_config,
    running_bridge,
    validate_events,
)
from wirebridge.store import open_store
from wirebridge.testing import Reply, ScriptedUpstream, chat_chunk, sse_body, text_body

from .test_server_cli import serve

pytestmark = pytest.mark.anyio


async def read_response(stream: SocketStream) -> tuple[int, bytes]:
    """One HTTP/1.1 response read off a raw socket: (status, body)."""
    data = b""
    while b"\r\n\r\n" not in data:
        data += await stream.receive()
    head, _, body = data.partition(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    length = next(
        int(line.split(":", 1)[1]) for line in lines if line.lower().startswith("content-length:")
    )
    while len(body) < length:
        body += await stream.receive()
    return int(lines[0].split()[1]), body


PARTIAL_BODY = b'{"model":"m","input":"hi"  '  # 27 bytes of the 100 declared


def partial_head(port: int, *, expect: bool = False) -> bytes:
    continue_ = "Expect: 100-continue\r\n" if expect else ""
    return (
        f"POST /v1/responses HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\n{continue_}"
        "Content-Type: application/json\r\nContent-Length: 100\r\n\r\n"
    ).encode()


async def send_partial_body(stream: SocketStream, port: int) -> None:
    """Head, then (once the app asks for the body: `100 Continue`) 27 of 100 bytes."""
    await stream.send(partial_head(port, expect=True))
    data = b""
    while b"\r\n\r\n" not in data:
        data += await stream.receive()
    assert data.startswith(b"HTTP/1.1 100"), data
    await stream.send(PARTIAL_BODY)


# -- item 1: slow bodies ------------------------------------------------------------------------


async def test_slow_bodies_take_no_stream_slot_and_get_408(upstream: ScriptedUpstream) -> None:
    upstream.push(Reply(text_body(["served"])))
    settings = BridgeSettings(
        passthrough_config(upstream.base_url), max_concurrent_streams=2, body_timeout_s=2.0
    )
    async with running_bridge(settings) as bridge, httpx.AsyncClient(timeout=10) as http:
        slow = [await anyio.connect_tcp("127.0.0.1", bridge.port) for _ in range(3)]
        for stream in slow:  # the handler is reading each body (it asked for it) when we go on
            await send_partial_body(stream, bridge.port)
        served = await http.post(f"{bridge.base_url}/responses", json={"model": "m", "input": "x"})
        answers = [await read_response(stream) for stream in slow]
        for stream in slow:
            await stream.aclose()
    assert served.status_code == 200, served.text
    for status, body in answers:
        assert status == 408
        error = json.loads(body)["error"]
        assert error["code"] == "request_timeout" and error["type"] == "invalid_request_error"
        assert set(error) == {"message", "type", "param", "code"}


async def test_serve_options_set_the_body_deadline_and_the_connection_cap(
    upstream: ScriptedUpstream,
) -> None:
    args = ("--upstream", upstream.base_url, "--body-timeout", "0.5", "--max-connections", "4")
    async with serve(*args) as server:
        port = int(server.url.rsplit(":", 1)[1])
        # A short body on its own: answered 408 once the deadline passes.
        partial = await anyio.connect_tcp("127.0.0.1", port)
        await partial.send(partial_head(port) + PARTIAL_BODY)
        status, body = await read_response(partial)
        await partial.aclose()
        assert status == 408 and json.loads(body)["error"]["code"] == "request_timeout"
        # Three kept-alive connections are open: the fourth is refused at once.
        idle = [await anyio.connect_tcp("127.0.0.1", port) for _ in range(3)]
        for stream in idle:
            await stream.send(b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
            assert (await read_response(stream))[0] == 200
        async with httpx.AsyncClient(timeout=10) as http:
            refused = await http.get(f"{server.url}/healthz")
        for stream in idle:
            await stream.aclose()
    assert refused.status_code == 503


# -- item 6: big bodies off the event loop ------------------------------------------------------


async def test_a_big_body_is_parsed_off_the_event_loop(
    upstream: ScriptedUpstream, caplog: pytest.LogCaptureFixture
) -> None:
    """The dropped-item warning is logged by the parser, so its thread is the parser's thread."""
    upstream.push(Reply(text_body(["small"])), Reply(text_body(["big"])))
    settings = BridgeSettings(passthrough_config(upstream.base_url), offload_bytes=64 * 1024)
    hosted = {"type": "web_search_call", "id": "ws_1", "status": "completed"}
    filler = [{"role": "user", "content": "x" * 100} for _ in range(1000)]  # ~100 KB
    caplog.set_level(logging.WARNING, "wirebridge.server")
    async with running_bridge(settings) as bridge, httpx.AsyncClient(timeout=30) as http:
        for items in ([hosted, {"role": "user", "content": "hi"}], [hosted, *filler]):
            answer = await http.post(
                f"{bridge.base_url}/responses", json={"model": "m", "input": items}
            )
            assert answer.status_code == 200, answer.text
    dropped = [r for r in caplog.records if "dropped input items" in r.getMessage()]
    assert dropped[0].threadName == "MainThread"
    assert dropped[1].threadName != "MainThread"
    assert len(upstream.requests[1].json["messages"]) == 1000


# -- item 9: forged log lines -------------------------------------------------------------------

FORGED = "06:41:00 INFO wirebridge.access: 127.0.0.1 forged"


@pytest.mark.parametrize("log_format", ["text", "json"])
async def test_control_characters_never_start_a_log_line(
    upstream: ScriptedUpstream, log_format: str
) -> None:
    keys = {"WIREBRIDGE_API_KEYS": "sk-wb-key"}
    args = ("--upstream", upstream.base_url, "--log-format", log_format, "--log-level", "debug")
    async with serve(*args, env=keys) as server, httpx.AsyncClient(timeout=10) as http:
        # No key: a 401, logged with the path the client chose.
        path = await http.get(f"{server.url}/x%0A{FORGED.replace(' ', '%20')}")
        model = await http.post(
            f"{server.url}/v1/responses",
            json={"model": f"m\n{FORGED}", "input": "hi", f"odd\r\n{FORGED}": 1},
            headers={"Authorization": "Bearer sk-wb-key"},
        )
        ids = [r.headers["x-request-id"] for r in (path, model)]
    # The server has exited here: every line it wrote has been read.
    assert path.status_code == 401 and model.status_code == 400
    assert model.json()["error"]["param"] == "model"
    assert not [line for line in server.lines if line.startswith("06:41:00")]
    logged = next(line for line in server.lines if ids[0] in line)
    if log_format == "json":
        assert json.loads(logged)["path"] == f"/x\\n{FORGED}"
    else:
        assert f"/x\\n{FORGED}" in logged


# -- item 14: WebSocket routes behind the same key ----------------------------------------------


async def test_websocket_routes_need_the_key(upstream: ScriptedUpstream) -> None:
    async def echo(websocket: WebSocket) -> None:
        await websocket.accept()
        await websocket.send_text(await websocket.receive_text())
        await websocket.close()

    settings = BridgeSettings(passthrough_config(upstream.base_url), api_keys=frozenset({"k1"}))
    app = create_app(settings, extra_routes=[WebSocketRoute("/v1/echo", echo)])
    async with running(app) as bridge:
        url = f"ws://127.0.0.1:{bridge.port}/v1/echo"
        for headers in ({}, {"Authorization": "Bearer wrong"}):
            with pytest.raises(websockets.InvalidStatus) as refused:
                async with websockets.connect(url, additional_headers=headers):
                    pass
            assert refused.value.response.status_code == 401
        async with websockets.connect(url, additional_headers={"Authorization": "Bearer k1"}) as ws:
            await ws.send("ping")
            assert await ws.recv() == "ping"
    # uvicorn lets the app answer the handshake: the OpenAI error object, as over HTTP.
    body = json.loads(refused.value.response.body or b"{}")
    assert body["error"]["code"] == "invalid_api_key"


# -- item 15b: echoed values are cut ------------------------------------------------------------


async def test_error_messages_do_not_echo_a_huge_id(
    tmp_path: Path, upstream: ScriptedUpstream
) -> None:
    huge = "resp_" + "a" * 60_000
    store = await open_store(f"sqlite://{tmp_path / 'responses.db'}")
    settings = BridgeSettings(passthrough_config(upstream.base_url), store=store)
    try:
        async with running_bridge(settings) as bridge, httpx.AsyncClient(timeout=10) as http:
            continued = await http.post(
                f"{bridge.base_url}/responses",
                json={"model": "m", "input": "x", "previous_response_id": huge},
            )
            model = await http.post(
                f"{bridge.base_url}/responses",
                json={"model": "m\x00" + "b" * 60_000, "input": "x"},
            )
            fetched = await http.get(f"{bridge.base_url}/responses/{huge}")
    finally:
        await store.close()
    assert fetched.status_code == 404 and len(fetched.content) < 3000
    for answer in (continued, model):
        assert answer.status_code == 400
        assert len(answer.content) < 3000, len(answer.content)
    assert continued.json()["error"]["param"] == "previous_response_id"
    assert "more characters" in continued.json()["error"]["message"]


# -- item 11: what a failed response keeps ------------------------------------------------------


async def test_text_streamed_before_a_reset_is_kept_and_its_item_closed(
    tmp_path: Path, upstream: ScriptedUpstream
) -> None:
    started = sse_body([chat_chunk({"content": "Hel"}), chat_chunk({"content": "lo"})], done=False)
    upstream.push(
        Reply(started + b"data: {", disconnect_after=len(started)),
        Reply(text_body(["again"])),
    )
    provider: dict[str, Any] = {"request_max_retries": 0, "stream_max_retries": 0}
    store = await open_store(f"sqlite://{tmp_path / 'responses.db'}")
    settings = BridgeSettings(passthrough_config(upstream.base_url, **provider), store=store)
    try:
        async with running_bridge(settings) as bridge, httpx.AsyncClient(timeout=10) as http:
            payload = {"model": "m", "input": "hi", "stream": True}
            async with http.stream("POST", f"{bridge.base_url}/responses", json=payload) as r:
                events = parse_sse(await r.aread())
            validate_events(events[:-1])
            final = check_stream_invariants(events)
            stored = (await http.get(f"{bridge.base_url}/responses/{final['id']}")).json()
            continued = await http.post(
                f"{bridge.base_url}/responses",
                json={"model": "m", "input": "go on", "previous_response_id": final["id"]},
            )
    finally:
        await store.close()
    kinds = [e["type"] for e in events]
    assert kinds[-1] == "response.failed"
    assert kinds[-4:-1] == [
        "response.output_text.done",
        "response.content_part.done",
        "response.output_item.done",
    ]
    assert events[-4]["text"] == "Hello"
    for response in (final, stored):
        message = response["output"][0]
        assert message["status"] == "incomplete"
        assert message["content"][0]["text"] == "Hello"
    assert continued.status_code == 200, continued.text
    assert upstream.requests[1].json["messages"] == [
        {"role": "user", "content": "hi"},
        {"role": "assistant", "content": "Hello"},
        {"role": "user", "content": "go on"},
    ]


async def test_a_cut_tool_call_and_reasoning_are_closed_too(upstream: ScriptedUpstream) -> None:
    call = {"index": 0, "id": "call_1", "function": {"name": "f", "arguments": '{"a":'}}
    started = sse_body(
        [chat_chunk({"reasoning_content": "think"}), chat_chunk({"tool_calls": [call]})],
        done=False,
    )
    upstream.push(Reply(started + b"data: {", disconnect_after=len(started)))
    provider: dict[str, Any] = {"request_max_retries": 0, "stream_max_retries": 0}
    settings = BridgeSettings(passthrough_config(upstream.base_url, **provider), store=None)
    tools = [{"type": "function", "name": "f", "parameters": {"type": "object"}}]
    payload = {"model": "m", "input": "hi", "stream": True, "tools": tools}
    async with (
        running_bridge(settings) as bridge,
        httpx.AsyncClient(timeout=10) as http,
        http.stream("POST", f"{bridge.base_url}/responses", json=payload) as r,
    ):
        events = parse_sse(await r.aread())
    validate_events(events[:-1])  # the closing events too (the failed code is not ours)
    final = check_stream_invariants(events)
    assert final["status"] == "failed"
    added = [e["item"]["id"] for e in events if e["type"] == "response.output_item.added"]
    done = {e["item"]["id"]: e["item"] for e in events if e["type"] == "response.output_item.done"}
    assert sorted(done) == sorted(added) and added
    by_type = {o["type"]: o for o in final["output"]}
    assert by_type["reasoning"]["content"][0]["text"] == "think"
    call_item = by_type["function_call"]
    assert call_item["status"] == "incomplete" and call_item["arguments"] == '{"a":'
    assert done[call_item["id"]] == call_item
    arguments = [e for e in events if e["type"] == "response.function_call_arguments.done"]
    assert [e["arguments"] for e in arguments] == ['{"a":']


async def test_cut_reasoning_is_closed_with_its_text(upstream: ScriptedUpstream) -> None:
    started = sse_body([chat_chunk({"reasoning_content": "thinking..."})], done=False)
    upstream.push(Reply(started + b"data: {", disconnect_after=len(started)))
    provider: dict[str, Any] = {"request_max_retries": 0, "stream_max_retries": 0}
    settings = BridgeSettings(
        passthrough_config(upstream.base_url, **provider), reasoning_summary="always"
    )
    async with running_bridge(settings) as bridge, httpx.AsyncClient(timeout=10) as http:
        payload = {"model": "m", "input": "hi", "stream": True}
        async with http.stream("POST", f"{bridge.base_url}/responses", json=payload) as r:
            events = parse_sse(await r.aread())
    validate_events(events[:-1])  # the closing events too (the failed code is not ours)
    final = check_stream_invariants(events)
    kinds = [e["type"] for e in events]
    for kind in (
        "response.reasoning_text.done",
        "response.content_part.done",
        "response.reasoning_summary_text.done",
        "response.reasoning_summary_part.done",
        "response.output_item.done",
    ):
        assert kind in kinds
    reasoning = final["output"][0]
    assert reasoning["status"] == "incomplete"
    assert reasoning["content"][0]["text"] == "thinking..."
    assert reasoning["summary"][0]["text"] == "thinking..."
