"""Every stream vector (tests/conformance and tests/vectors) through the real HTTP path: whole,
and in random writes of 1-7 bytes; and through the pure core, byte by byte."""

from __future__ import annotations

import importlib
from typing import Any

import pytest

from wirebridge import Client, Prompt, Provider, aggregate, dump
from wirebridge.chat.decode import ChatStreamDecoder
from wirebridge.chat.sse import SSEParser
from wirebridge.chat.tools import map_tools
from wirebridge.testing import Reply, ScriptedUpstream

from .vectors import load_all_vectors, merge_deltas, normalize, vector_body

VECTORS = load_all_vectors("stream")
errors = importlib.import_module("wirebridge.errors")


async def _no_sleep(_: float) -> None:
    return None


def _provider(vector: dict[str, Any], base_url: str) -> Provider:
    return Provider(name="vector", base_url=base_url, **(vector.get("provider") or {}))


def _compare(got: list[dict[str, Any]], want: list[dict[str, Any]], merge: bool) -> None:
    if merge:
        got, want = merge_deltas(got), merge_deltas(want)
    assert normalize(got) == normalize(want)


async def _collect(vector: dict[str, Any], reply: Reply, mode: str | None) -> tuple[list[Any], Any]:
    prompt = Prompt("test", "hi", vector.get("tools", []))
    events: list[dict[str, Any]] = []
    async with ScriptedUpstream(default=reply) as up:
        provider = _provider(vector, up.base_url)
        async with Client(provider, model="m", sleep=_no_sleep) as client:
            stream = client.stream(prompt)
            source = stream if mode is None else aggregate(stream, mode)  # type: ignore[arg-type]
            try:
                async for event in source:
                    events.append(dump(event))
            except errors.WirebridgeError as exc:
                return events, exc
    return events, None


def _check_error(vector: dict[str, Any], error: Any) -> None:
    expected = vector.get("error")
    if expected is None:
        assert error is None, f"unexpected error: {error!r}"
        return
    assert error is not None, "the stream should have raised"
    assert isinstance(error, getattr(errors, expected["class"]))
    assert expected["contains"].lower() in str(error).lower()


@pytest.mark.anyio
@pytest.mark.parametrize("split", [None, (1, 7)], ids=["whole", "random-1-7-byte-writes"])
@pytest.mark.parametrize("vector", VECTORS, ids=[v["name"] for v in VECTORS])
async def test_stream_vector_over_http(
    vector: dict[str, Any], split: tuple[int, int] | None
) -> None:
    reply = Reply(vector_body(vector), split=split, seed=len(vector["name"]))
    raw, error = await _collect(vector, reply, None)
    _compare(raw, vector["raw"], vector.get("merge_deltas", False))
    _check_error(vector, error)
    aggregated, error = await _collect(vector, reply, "aggregated")
    _compare(aggregated, vector["aggregated"], vector.get("merge_deltas", False))
    _check_error(vector, error)


CRLF_VECTORS = [v for v in VECTORS if b"\r\n" in vector_body(v)]


@pytest.mark.anyio
@pytest.mark.parametrize("vector", CRLF_VECTORS, ids=[v["name"] for v in CRLF_VECTORS])
async def test_crlf_vector_over_http_with_every_cr_and_lf_in_separate_reads(
    vector: dict[str, Any],
) -> None:
    """D1 over real HTTP: every CRLF of the body is cut between its CR and its LF, and the pieces
    are written with a pause between them, so the client reads them apart."""
    body = vector_body(vector)
    pieces = [piece + b"\r" for piece in body.split(b"\r\n")]
    pieces = [pieces[0], *(b"\n" + piece for piece in pieces[1:])]
    pieces[-1] = pieces[-1][:-1]
    assert b"".join(pieces) == body
    reply = Reply(body, pieces=[p for p in pieces if p], drip_s=0.002)
    raw, error = await _collect(vector, reply, None)
    _compare(raw, vector["raw"], vector.get("merge_deltas", False))
    _check_error(vector, error)


@pytest.mark.parametrize("vector", VECTORS, ids=[v["name"] for v in VECTORS])
def test_stream_vector_byte_by_byte_sans_io(vector: dict[str, Any]) -> None:
    """The pure core alone, fed one byte at a time: the harshest split there is."""
    provider = _provider(vector, "http://127.0.0.1:9/v1")
    parser = SSEParser()
    decoder = ChatStreamDecoder(map_tools(vector.get("tools", [])), provider.think_tags)
    events: list[dict[str, Any]] = []
    error = None
    try:
        for byte in vector_body(vector):
            for data in parser.feed(bytes([byte])):
                events += [dump(e) for e in decoder.feed(data)]
        parser.close()
        events += [dump(e) for e in decoder.end_of_stream()]
    except errors.WirebridgeError as exc:
        error = exc
    _compare(events, vector["raw"], vector.get("merge_deltas", False))
    _check_error(vector, error)


def test_both_vector_sets_are_loaded_and_names_are_unique() -> None:
    names = [v["name"] for v in VECTORS]
    assert len(names) == len(set(names)), "a vector name is used twice"
    assert "parallel_tool_calls_by_index" in names  # tests/conformance
    assert "parallel_tool_calls_interleaved_with_repeated_ids" in names  # tests/vectors
