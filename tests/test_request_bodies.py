"""Compressed request bodies over loopback HTTP: zstd, gzip and deflate are decoded, and the body
limit holds for the decoded size, so a zip bomb is a 413 without being inflated past the limit.
"""

from __future__ import annotations

import gzip
import json
import zlib
from typing import Any

import httpx
import pytest
import zstandard

from wirebridge.responses.bodies import decode_body
from wirebridge.responses.errors import ApiError
from wirebridge.responses.settings import BridgeSettings
from wirebridge.responses.testing import passthrough_config, running_bridge
from wirebridge.testing import Reply, ScriptedUpstream, text_body

pytestmark = pytest.mark.anyio

BODY = json.dumps({"model": "m", "input": "hello " * 200, "stream": False}).encode()
LIMIT = 64 * 1024

COMPRESS = {
    "zstd": lambda b: zstandard.ZstdCompressor().compress(b),
    "gzip": gzip.compress,
    "deflate": zlib.compress,
}


async def post(base_url: str, body: bytes, encoding: str) -> httpx.Response:
    headers = {"content-type": "application/json", "content-encoding": encoding}
    async with httpx.AsyncClient(timeout=30) as http:
        return await http.post(base_url + "/responses", content=body, headers=headers)


@pytest.mark.parametrize("encoding", sorted(COMPRESS))
async def test_compressed_bodies_are_decoded(upstream: ScriptedUpstream, encoding: str) -> None:
    upstream.push(Reply(text_body(["hi"])))
    async with running_bridge(BridgeSettings(passthrough_config(upstream.base_url))) as bridge:
        answer = await post(bridge.base_url, COMPRESS[encoding](BODY), encoding)
    assert answer.status_code == 200, answer.text
    assert upstream.requests[0].json["messages"][-1]["content"] == "hello " * 200


@pytest.mark.parametrize("encoding", sorted(COMPRESS))
async def test_a_zip_bomb_is_413_without_inflating_it(
    upstream: ScriptedUpstream, encoding: str
) -> None:
    bomb = COMPRESS[encoding](b"{" + b" " * (64 * 1024 * 1024))  # 64 MiB of spaces, ~KB packed
    assert len(bomb) < LIMIT
    settings = BridgeSettings(passthrough_config(upstream.base_url), max_body_bytes=LIMIT)
    async with running_bridge(settings) as bridge:
        answer = await post(bridge.base_url, bomb, encoding)
    assert answer.status_code == 413, answer.text
    assert answer.json()["error"]["code"] == "request_too_large"
    assert upstream.requests == []


@pytest.mark.parametrize("encoding", sorted(COMPRESS))
def test_decoding_stops_at_the_limit(encoding: str) -> None:
    """The decoder never holds more than the limit (plus one read) of inflated data."""
    packed = COMPRESS[encoding](b"x" * (10 * LIMIT))
    with pytest.raises(ApiError) as refused:
        decode_body([(b"content-encoding", encoding.encode())], packed, LIMIT)
    assert refused.value.status == 413
    assert decode_body([(b"content-encoding", encoding.encode())], packed, 10 * LIMIT) == (
        b"x" * (10 * LIMIT)
    )


async def test_unknown_and_broken_encodings_are_clear_errors(upstream: ScriptedUpstream) -> None:
    async with running_bridge(BridgeSettings(passthrough_config(upstream.base_url))) as bridge:
        unknown = await post(bridge.base_url, BODY, "br")
        broken = await post(bridge.base_url, b"not gzip at all", "gzip")
        truncated = await post(bridge.base_url, gzip.compress(BODY)[:-12], "gzip")
    assert unknown.status_code == 415 and "br" in unknown.json()["error"]["message"]
    for answer in (broken, truncated):
        error: dict[str, Any] = answer.json()["error"]
        assert answer.status_code == 400 and "gzip" in error["message"], error
    assert upstream.requests == []


def test_stacked_codings_are_undone_last_first() -> None:
    packed = gzip.compress(zstandard.ZstdCompressor().compress(BODY))
    headers = [(b"content-encoding", b"zstd, gzip")]
    assert decode_body(headers, packed, LIMIT) == BODY
    raw_deflate = zlib.compressobj(wbits=-zlib.MAX_WBITS)
    packed = raw_deflate.compress(BODY) + raw_deflate.flush()
    assert decode_body([(b"content-encoding", b"deflate")], packed, LIMIT) == BODY
