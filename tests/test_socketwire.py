"""The WebSocket transport's pure rules (`responses/socketwire.py`), on plain data."""

from __future__ import annotations

import json

import pytest

from wirebridge.events import Completed, OutputTextDelta
from wirebridge.items import parse_items
from wirebridge.responses.encoder import ResponsesEncoder
from wirebridge.responses.errors import ApiError
from wirebridge.responses.socketwire import (
    BadMessage,
    ChainCache,
    connection_limit_reached,
    error_frame,
    messages_of,
    read_message,
)
from wirebridge.responses.testing import parse_sse
from wirebridge.wire import Response


def test_each_sse_frame_becomes_the_json_of_its_data_line() -> None:
    encoder = ResponsesEncoder(Response(id="resp_1", created_at=0, model="m"))
    for piece in ("a\n\nb", "data: x", '\u2028 "q"'):  # text that looks like framing
        encoder.feed(OutputTextDelta(piece))
    encoder.feed(Completed())
    sse = encoder.take()
    frames = [json.loads(m) for m in messages_of(sse)]
    assert frames == parse_sse(sse)
    deltas = [f["delta"] for f in frames if f["type"] == "response.output_text.delta"]
    assert deltas == ["a\n\nb", "data: x", '\u2028 "q"']


def test_keepalive_comments_are_not_frames() -> None:
    assert messages_of(b": keep-alive\n\n") == []
    assert messages_of(b"") == []


def test_an_error_frame_is_the_http_error_with_its_status() -> None:
    error = ApiError(429, "slow down", "rate_limit_error", code="rate_limit_exceeded")
    assert json.loads(error_frame(error)) == {
        "type": "error",
        "status": 429,
        "error": {
            "message": "slow down",
            "type": "rate_limit_error",
            "param": None,
            "code": "rate_limit_exceeded",
        },
    }
    limit = json.loads(error_frame(connection_limit_reached(3600)))
    assert limit["error"]["code"] == "websocket_connection_limit_reached"
    assert "3600 seconds" in limit["error"]["message"]


def test_reading_messages() -> None:
    message = read_message('{"type":"response.create","generate":false,"input":"x"}')
    assert (message.kind, message.generate) == ("response.create", False)
    assert read_message('{"input":"x"}').generate is True
    with pytest.raises(BadMessage):
        read_message("{nope")
    with pytest.raises(ApiError) as wrong:
        read_message('{"type":"response.create","generate":"no"}')
    assert wrong.value.status == 400
    with pytest.raises(ApiError) as background:
        read_message('{"type":"response.create","background":true}')
    assert background.value.param == "background"


def test_the_chain_cache_keeps_the_last_entries() -> None:
    items = parse_items("hello")
    cache = ChainCache(2)
    cache.put("r1", items)
    cache.put("r2", items)
    assert cache.get("r1") is items  # touched: now the most recent
    cache.put("r3", items)
    assert (cache.get("r2"), len(cache)) == (None, 2)
    assert cache.get("r1") is items and cache.get("r3") is items
    off = ChainCache(0)
    off.put("r1", items)
    assert off.get("r1") is None
