"""The Responses API over a WebSocket (`GET /v1/responses`), with a plain `websockets` client
against the real server and the scripted upstream: turns, prewarm, chaining with `store: false`,
one turn at a time, and every error frame and close path."""

from __future__ import annotations

import base64
import json
import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import anyio
import httpx
import pytest
import websockets
from websockets.asyncio.client import ClientConnection, connect
from websockets.extensions.permessage_deflate import PerMessageDeflate

from wirebridge.responses import BridgeSettings
from wirebridge.responses.runner import ServerLimits
from wirebridge.responses.socketwire import SocketSettings
from wirebridge.responses.testing import (
    check_stream_invariants,
    passthrough_config,
    running_bridge,
    validate_events,
)
from wirebridge.store import open_store
from wirebridge.testing import Reply, ScriptedUpstream
from wirebridge.testing.bodies import chat_chunk, sse_body, text_body, tool_call_body

pytestmark = pytest.mark.anyio

WS_FIXTURES = Path(__file__).parent / "fixtures" / "codex" / "ws"
TERMINAL = {"response.completed", "response.incomplete", "response.failed"}


def settings_for(upstream: ScriptedUpstream, **options: Any) -> BridgeSettings:
    return BridgeSettings(passthrough_config(upstream.base_url), **options)


def ws_url(base_url: str) -> str:
    return base_url.replace("http://", "ws://") + "/responses"


@asynccontextmanager
async def socket_to(
    settings: BridgeSettings, **options: Any
) -> AsyncIterator[tuple[ClientConnection, Any]]:
    async with (
        running_bridge(settings) as bridge,
        connect(ws_url(bridge.base_url), **options) as ws,
    ):
        yield ws, bridge


async def turn(ws: ClientConnection, **body: Any) -> list[dict[str, Any]]:
    """Send one response.create; the events up to and including the terminal (or error) one."""
    await ws.send(json.dumps({"type": "response.create", **body}))
    return await events_until_end(ws)


async def start_turn(ws: ClientConnection, text: str) -> None:
    """Send a response.create with input `text`; read its events up to the first text delta
    (the turn goes on: read the rest with events_until_end)."""
    await ws.send(json.dumps({"type": "response.create", "model": "m", "input": text}))
    with anyio.fail_after(10):
        while json.loads(await ws.recv())["type"] != "response.output_text.delta":
            pass


async def events_until_end(ws: ClientConnection) -> list[dict[str, Any]]:
    events = []
    with anyio.fail_after(10):
        while True:
            message = await ws.recv()
            assert isinstance(message, str), "a binary frame"
            event = json.loads(message)
            events.append(event)
            if event["type"] in TERMINAL or event["type"] == "error":
                return events


async def closed_with(ws: ClientConnection) -> tuple[int | None, str | None, list[Any]]:
    """Read until the server closes; its close code and reason, and what came before."""
    before = []
    with anyio.fail_after(10):
        try:
            while True:
                before.append(json.loads(await ws.recv()))
        except websockets.ConnectionClosed as exc:
            rcvd = exc.rcvd
            return (rcvd.code, rcvd.reason, before) if rcvd else (None, None, before)


def fixture(name: str) -> dict[str, Any]:
    data: dict[str, Any] = json.loads((WS_FIXTURES / name).read_text())
    return data


# -- turns ----------------------------------------------------------------------------------------


async def test_a_text_turn_is_one_text_frame_per_event_over_permessage_deflate(
    upstream: ScriptedUpstream,
) -> None:
    upstream.push(Reply(text_body(["Hel", "lo"])))
    async with socket_to(settings_for(upstream)) as (ws, _):
        events = await turn(ws, model="m", input="hi")
        state = ws.response.headers.get("x-codex-turn-state") if ws.response else None
        extensions = ws.protocol.extensions
    validate_events(events)
    final = check_stream_invariants(events)
    assert final["status"] == "completed"
    assert final["output"][0]["content"][0]["text"] == "Hello"
    assert state and state.startswith("wb-")
    assert any(isinstance(e, PerMessageDeflate) for e in extensions)
    assert upstream.requests[0].json["stream"] is True  # streamed upstream, without `stream`


async def test_the_turn_state_the_client_sends_is_echoed(upstream: ScriptedUpstream) -> None:
    headers = {"x-codex-turn-state": "sticky-123"}
    async with socket_to(settings_for(upstream), additional_headers=headers) as (ws, _):
        assert ws.response is not None
        assert ws.response.headers["x-codex-turn-state"] == "sticky-123"


async def test_codex_session_prewarm_turn_and_tool_output_chain_with_store_false(
    upstream: ScriptedUpstream,
) -> None:
    """The three messages of a real Codex session: the upstream gets no call for the prewarm,
    and the whole history on the turn after the tool call, though Codex sent only its output."""
    prewarm, first, tool_output = (
        fixture(n)
        for n in (
            "1-prewarm-generate-false.json",
            "2-turn-with-previous-response-id.json",
            "3-tool-output-only.json",
        )
    )
    call_id = tool_output["input"][0]["call_id"]
    upstream.push(
        Reply(tool_call_body([(call_id, "exec_command", {"cmd": "ls"})])),
        Reply(text_body(["done"])),
    )
    async with socket_to(settings_for(upstream)) as (ws, _):
        warm = await turn(ws, **{k: v for k, v in prewarm.items() if k != "type"})
        assert [e["type"] for e in warm] == [
            "response.created",
            "response.in_progress",
            "response.completed",
        ]
        validate_events(warm)
        assert upstream.requests == []  # no upstream call for a prewarm
        first["previous_response_id"] = warm[-1]["response"]["id"]
        called = await turn(ws, **{k: v for k, v in first.items() if k != "type"})
        assert called[-1]["response"]["output"][0]["type"] == "function_call"
        tool_output["previous_response_id"] = called[-1]["response"]["id"]
        answered = await turn(ws, **{k: v for k, v in tool_output.items() if k != "type"})
    assert answered[-1]["type"] == "response.completed"
    assert answered[-1]["response"]["store"] is False
    messages = upstream.requests[1].json["messages"]
    roles = [m["role"] for m in messages]
    # the prewarm's developer prompt, turn 2's developer and user messages, the call, its output
    assert roles[0] == "system" and prewarm["input"][0]["content"][0]["text"][:40] in str(
        messages[0]["content"]
    )
    assert "say hi" in json.dumps(messages)
    assert messages[-2]["tool_calls"][0]["id"] == call_id
    assert messages[-1] == {
        "role": "tool",
        "tool_call_id": call_id,
        "content": tool_output["input"][0]["output"],
    }
    assert len(upstream.requests[0].json["messages"]) == len(messages) - 2


async def test_a_previous_response_held_by_another_connection_is_not_found(
    upstream: ScriptedUpstream,
) -> None:
    """Several bridges, or a reconnect: the answer on which Codex sends the whole input."""
    upstream.push(Reply(text_body(["one"])), Reply(text_body(["two"])))
    async with running_bridge(settings_for(upstream)) as bridge:
        async with connect(ws_url(bridge.base_url)) as first:
            done = await turn(first, model="m", input="hi", store=False)
        async with connect(ws_url(bridge.base_url)) as second:
            previous = done[-1]["response"]["id"]
            events = await turn(second, model="m", input="again", previous_response_id=previous)
            again = await turn(second, model="m", input="whole history")  # still open
    assert events == [
        {
            "type": "error",
            "status": 400,
            "error": {
                "type": "invalid_request_error",
                "code": "previous_response_not_found",
                "param": "previous_response_id",
                "message": events[0]["error"]["message"],
            },
        }
    ]
    assert again[-1]["type"] == "response.completed"  # the socket is still usable
    assert len(upstream.requests) == 2


async def test_a_second_create_while_one_runs_waits_its_turn(upstream: ScriptedUpstream) -> None:
    hold = anyio.Event()
    head = sse_body([chat_chunk({"content": "first "})], done=False)
    rest = sse_body([chat_chunk({"content": "answer"}), chat_chunk({}, finish_reason="stop")])
    upstream.push(Reply(head + rest, hold=hold, hold_after=len(head)), Reply(text_body(["second"])))
    upstream.push(Reply(text_body(["third"])))
    async with socket_to(settings_for(upstream)) as (ws, _):
        await start_turn(ws, "a")
        await ws.send(json.dumps({"type": "response.create", "model": "m", "input": "b"}))
        hold.set()
        first = await events_until_end(ws)
        second = await events_until_end(ws)
        for _ in range(3):  # round trips: the server's turn loop is back to waiting by now
            await (await ws.ping())
        third = await turn(ws, model="m", input="c")  # the socket is still open
    # the first stream's frames all come before the second's: never interleaved
    assert {e.get("response", {}).get("id") for e in first if "response" in e} == {
        first[-1]["response"]["id"]
    }
    assert first[-1]["response"]["output"][0]["content"][0]["text"] == "first answer"
    check_stream_invariants(second)
    assert second[-1]["response"]["output"][0]["content"][0]["text"] == "second"
    assert third[-1]["response"]["output"][0]["content"][0]["text"] == "third"
    assert [r.json["messages"][-1]["content"] for r in upstream.requests] == ["a", "b", "c"]


# -- error frames ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("message", "status", "code", "param"),
    [
        ({"type": "session.update"}, 400, "unknown_message_type", "type"),
        ({"type": "response.create", "model": "m", "input": 5}, 400, None, "input"),
        ({"type": "response.create", "model": "m", "temperature": 9}, 400, None, "temperature"),
        ({"type": "response.create", "input": "x", "background": True}, 400, None, "background"),
        ({"type": "response.create", "generate": "no"}, 400, None, None),
    ],
)
async def test_a_bad_message_is_an_error_frame_and_the_socket_stays_open(
    upstream: ScriptedUpstream, message: dict[str, Any], status: int, code: str, param: str
) -> None:
    upstream.push(Reply(text_body(["fine"])))
    async with socket_to(settings_for(upstream)) as (ws, _):
        await ws.send(json.dumps(message))
        error = await events_until_end(ws)
        after = await turn(ws, model="m", input="still here")
    assert len(error) == 1 and error[0]["type"] == "error" and error[0]["status"] == status
    assert error[0]["error"]["type"] == "invalid_request_error"
    if code is not None:
        assert error[0]["error"]["code"] == code
    if param is not None:
        assert error[0]["error"]["param"] == param
    assert after[-1]["type"] == "response.completed"


async def test_an_upstream_refusal_before_the_answer_is_an_error_frame_with_its_status(
    upstream: ScriptedUpstream,
) -> None:
    body = b'{"error":{"message":"slow down"}}'
    limited = Reply(body, status=429, content_type="application/json", headers={"Retry-After": "0"})
    upstream.push(*[limited] * 10)
    async with socket_to(settings_for(upstream)) as (ws, _):
        events = await turn(ws, model="m", input="hi")
    assert len(events) == 1 and events[0]["type"] == "error"
    assert events[0]["status"] == 429
    assert events[0]["error"]["code"] == "rate_limit_exceeded"


async def test_a_failure_after_the_answer_began_is_response_failed(
    upstream: ScriptedUpstream,
) -> None:
    first = sse_body([chat_chunk({"content": "par"})], done=False)
    upstream.push(Reply(first, disconnect_after=len(first)))
    async with socket_to(settings_for(upstream)) as (ws, _):
        events = await turn(ws, model="m", input="hi")
    validate_events(events)
    final = check_stream_invariants(events)
    assert final["status"] == "failed"
    assert final["output"][0]["content"][0]["text"] == "par"


# -- closing --------------------------------------------------------------------------------------


async def test_bad_json_is_an_error_frame_then_close_1007(upstream: ScriptedUpstream) -> None:
    async with socket_to(settings_for(upstream)) as (ws, _):
        await ws.send("{not json")
        code, _, before = await closed_with(ws)
    assert code == 1007
    assert [e["error"]["code"] for e in before] == ["invalid_json"]
    assert before[0]["status"] == 400


async def test_a_binary_frame_closes_1003(upstream: ScriptedUpstream) -> None:
    async with socket_to(settings_for(upstream)) as (ws, _):
        await ws.send(b'{"type":"response.create"}')
        code, _, before = await closed_with(ws)
    assert (code, before) == (1003, [])


async def test_a_message_over_the_body_limit_closes_1009_unread(upstream: ScriptedUpstream) -> None:
    settings = settings_for(upstream, max_body_bytes=64 * 1024)
    async with socket_to(settings, compression=None) as (ws, _):
        big = json.dumps({"type": "response.create", "model": "m", "input": "x" * 100_000})
        await ws.send(big)
        code, _, before = await closed_with(ws)
    assert (code, before) == (1009, [])
    assert upstream.requests == []


async def test_the_key_is_checked_on_the_upgrade(upstream: ScriptedUpstream) -> None:
    settings = settings_for(upstream, api_keys=frozenset({"k-right"}))
    async with running_bridge(settings) as bridge:
        url = ws_url(bridge.base_url)
        with pytest.raises(websockets.InvalidStatus) as refused:
            async with connect(url, additional_headers={"Authorization": "Bearer k-wrong"}):
                pass
        async with connect(url, additional_headers={"Authorization": "Bearer k-right"}) as ws:
            upstream.push(Reply(text_body(["ok"])))
            events = await turn(ws, model="m", input="hi")
    response = refused.value.response
    assert response.status_code == 401
    assert json.loads(response.body)["error"]["code"] == "invalid_api_key"
    assert b"k-wrong" not in response.body
    assert events[-1]["type"] == "response.completed"


async def test_sockets_past_the_cap_are_refused_with_503(upstream: ScriptedUpstream) -> None:
    settings = settings_for(upstream, websocket=SocketSettings(max_sockets=1))
    async with running_bridge(settings) as bridge, connect(ws_url(bridge.base_url)) as first:
        with pytest.raises(websockets.InvalidStatus) as refused:
            async with connect(ws_url(bridge.base_url)):
                pass
        await first.ping()  # the first one is still served
    assert refused.value.response.status_code == 503
    assert json.loads(refused.value.response.body)["error"]["code"] == "overloaded"


async def test_a_connection_past_its_age_ends_with_websocket_connection_limit_reached(
    upstream: ScriptedUpstream,
) -> None:
    settings = settings_for(upstream, websocket=SocketSettings(max_age_s=0))
    async with socket_to(settings) as (ws, _):
        code, _, before = await closed_with(ws)
    assert code == 1000
    assert [(e["type"], e["error"]["code"]) for e in before] == [
        ("error", "websocket_connection_limit_reached")
    ]


async def test_an_idle_connection_is_closed(upstream: ScriptedUpstream) -> None:
    settings = settings_for(upstream, websocket=SocketSettings(idle_s=0))
    async with socket_to(settings) as (ws, _):
        code, reason, before = await closed_with(ws)
    assert (code, reason, before) == (1000, "idle timeout", [])


async def test_too_many_queued_messages_close_1008(upstream: ScriptedUpstream) -> None:
    hold = anyio.Event()
    upstream.push(Reply(text_body(["slow"]), hold=hold, hold_after=0))
    settings = settings_for(upstream, websocket=SocketSettings(max_queued=1))
    async with socket_to(settings) as (ws, _):
        for text in ("a", "b", "c"):
            await ws.send(json.dumps({"type": "response.create", "model": "m", "input": text}))
        code, _, _ = await closed_with(ws)
    assert code == 1008


async def test_ping_is_answered(upstream: ScriptedUpstream) -> None:
    async with socket_to(settings_for(upstream)) as (ws, _):
        with anyio.fail_after(5):
            await (await ws.ping(b"are you there"))


async def test_client_disconnect_mid_stream_cancels_the_upstream_request(
    upstream: ScriptedUpstream,
) -> None:
    first = sse_body([chat_chunk({"content": "hello"})], done=False)
    upstream.push(Reply(first + b"data: [DONE]\n\n", stall_after=len(first)))
    async with running_bridge(settings_for(upstream)) as bridge:
        async with connect(ws_url(bridge.base_url)) as ws:
            await start_turn(ws, "x")
            assert upstream.open_connections == 1  # stalled, not finished
            ws.transport.abort()  # gone without a close frame
        with anyio.fail_after(1.0):  # cancelled within a second
            await upstream.closed.wait()
    assert upstream.open_connections == 0


async def test_a_stored_response_continues_on_a_new_socket_and_over_http(
    upstream: ScriptedUpstream, tmp_path: Path
) -> None:
    """With `store: true` the store is the chain's source when the connection does not hold it;
    a socket turn's stored response continues over HTTP too."""
    store = await open_store(f"sqlite://{tmp_path / 'responses.db'}")
    upstream.push(*(Reply(text_body([word])) for word in ("one", "two", "three")))
    try:
        settings = settings_for(upstream, store=store)
        async with running_bridge(settings) as bridge:
            async with connect(ws_url(bridge.base_url)) as first:
                done = await turn(first, model="m", input="first question")
            async with connect(ws_url(bridge.base_url)) as second:
                previous = done[-1]["response"]["id"]
                again = await turn(second, model="m", input="second", previous_response_id=previous)
            async with httpx.AsyncClient(timeout=10) as http:
                body = {
                    "model": "m",
                    "input": "third",
                    "previous_response_id": again[-1]["response"]["id"],
                }
                answer = await http.post(f"{bridge.base_url}/responses", json=body)
    finally:
        await store.close()
    assert again[-1]["type"] == "response.completed"
    assert answer.status_code == 200, answer.text
    contents = [m["content"] for m in upstream.requests[2].json["messages"]]
    assert contents == ["first question", "one", "second", "two", "third"]


async def test_a_client_that_never_answers_pings_is_closed(upstream: ScriptedUpstream) -> None:
    """A raw socket that completes the handshake, then reads and never answers: the server's
    ping goes unanswered and the server ends the connection."""
    limits = ServerLimits(ws_ping_interval_s=0.05, ws_ping_timeout_s=0.05)
    async with running_bridge(settings_for(upstream), limits=limits) as bridge:
        stream = await anyio.connect_tcp("127.0.0.1", bridge.port)
        async with stream:
            key = base64.b64encode(b"0123456789abcdef").decode()
            await stream.send(
                (
                    f"GET /v1/responses HTTP/1.1\r\nHost: 127.0.0.1\r\nUpgrade: websocket\r\n"
                    f"Connection: Upgrade\r\nSec-WebSocket-Key: {key}\r\n"
                    "Sec-WebSocket-Version: 13\r\n\r\n"
                ).encode()
            )
            received = b""
            with anyio.fail_after(10):
                try:
                    while True:
                        received += await stream.receive()
                except (anyio.EndOfStream, anyio.BrokenResourceError):
                    pass
    head, _, frames = received.partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 101")
    opcodes = [frames[0] & 0x0F] if frames else []
    assert opcodes == [0x9], frames[:20]  # a ping came first; then the server closed on us


async def test_a_turn_past_the_stream_limit_is_an_overloaded_error_frame(
    upstream: ScriptedUpstream,
) -> None:
    hold = anyio.Event()
    head = sse_body([chat_chunk({"content": "busy"})], done=False)
    upstream.push(Reply(head + text_body([""]), hold=hold, hold_after=len(head)))
    upstream.push(Reply(text_body(["later"])))
    settings = settings_for(upstream, max_concurrent_streams=1)
    async with (
        running_bridge(settings) as bridge,
        connect(ws_url(bridge.base_url)) as busy,
        connect(ws_url(bridge.base_url)) as other,
    ):
        await start_turn(busy, "a")
        refused = await turn(other, model="m", input="b")
        hold.set()
        await events_until_end(busy)
        later = await turn(other, model="m", input="c")
    assert [(e["type"], e["status"], e["error"]["code"]) for e in refused] == [
        ("error", 503, "overloaded")
    ]
    assert later[-1]["type"] == "response.completed"


async def test_a_client_leaving_while_frames_flow_ends_quietly(
    upstream: ScriptedUpstream, caplog: pytest.LogCaptureFixture
) -> None:
    """The client goes away while the bridge is sending (not stalled): whichever notices
    first, the receive or a send, the upstream request ends and nothing is logged as an error."""
    body = text_body([f"w{i} " for i in range(20_000)])
    upstream.push(Reply(body, split=(64, 512)))
    async with running_bridge(settings_for(upstream)) as bridge:
        async with connect(ws_url(bridge.base_url)) as ws:
            await start_turn(ws, "x")
            ws.transport.abort()
        with anyio.fail_after(5):
            await upstream.closed.wait()
    errors = [r for r in caplog.records if r.levelno >= logging.ERROR]
    assert errors == [], [r.getMessage() for r in errors]
