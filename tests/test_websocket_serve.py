"""The WebSocket transport under `wirebridge serve` (a subprocess): its options and the body
limit reach the socket, and the key is checked on the upgrade."""

from __future__ import annotations

import json

import pytest
import websockets
from websockets.asyncio.client import connect

from tests.test_server_cli import serve
from tests.test_websocket import closed_with, turn
from wirebridge.testing import Reply, ScriptedUpstream
from wirebridge.testing.bodies import text_body

pytestmark = pytest.mark.anyio


def ws(url: str) -> str:
    return url.replace("http://", "ws://") + "/v1/responses"


async def test_serve_takes_websockets_with_its_limits(upstream: ScriptedUpstream) -> None:
    upstream.push(Reply(text_body(["pong"])))
    args = ("--upstream", upstream.base_url, "--max-body-bytes", "65536", "--log-format", "json")
    key = {"Authorization": "Bearer k1"}
    async with serve(*args, env={"WIREBRIDGE_API_KEYS": "k1"}) as server:
        with pytest.raises(websockets.InvalidStatus) as no_key:
            async with connect(ws(server.url)):
                pass
        async with connect(ws(server.url), additional_headers=key) as socket:
            events = await turn(socket, model="m", input="ping")
        async with connect(ws(server.url), additional_headers=key, compression=None) as socket:
            big = {"type": "response.create", "model": "m", "input": "x" * 100_000}
            await socket.send(json.dumps(big))
            code, _, before = await closed_with(socket)
    assert no_key.value.response.status_code == 401
    assert events[-1]["response"]["output"][0]["content"][0]["text"] == "pong"
    assert (code, before) == (1009, [])
    assert len(upstream.requests) == 1
    assert "k1" not in server.stderr
    records = [json.loads(line) for line in server.lines if line.startswith("{")]
    sockets = [r for r in records if r.get("method") == "WEBSOCKET"]
    assert [(r["path"], r["status"], r["turns"]) for r in sockets] == [
        ("/v1/responses", 101, 1),
        ("/v1/responses", 101, 0),
    ]
    assert [r["closed"] for r in sockets] == ["disconnect 1000", "disconnect 1009"]


async def test_serve_caps_open_websockets(upstream: ScriptedUpstream) -> None:
    async with (
        serve("--upstream", upstream.base_url, "--max-websockets", "1") as server,
        connect(ws(server.url)) as first,
    ):
        with pytest.raises(websockets.InvalidStatus) as over_cap:
            async with connect(ws(server.url)):
                pass
        await first.ping()
    assert over_cap.value.response.status_code == 503
