"""Retry budgets and limits: the real openai SDK does not multiply the bridge's retries, a failed
stream's bridge codes parse in the SDK, and the pure parts (budget, SSE cap, whole answers)."""

from __future__ import annotations

import json
from typing import Any

import anyio
import openai
import pytest
from openai import AsyncOpenAI

from wirebridge import Client, Prompt
from wirebridge.chat.completion import completion_chunk, decode_completion
from wirebridge.chat.decode import ChatStreamDecoder
from wirebridge.chat.sse import SSEParser
from wirebridge.errors import ProviderError, StreamError, StreamLimitError
from wirebridge.events import Completed, OutputItemDone, OutputTextDelta
from wirebridge.provider import DEFAULT_STREAM_MAX_EVENT_BYTES, Provider
from wirebridge.responses import BridgeSettings
from wirebridge.responses.testing import passthrough_config, running_bridge
from wirebridge.testing import Reply, ScriptedUpstream, chat_chunk, sse_body, text_body
from wirebridge.upstream.budget import Budget

pytestmark = pytest.mark.anyio

BUSY = Reply(b'{"error":{"message":"busy"}}', status=500, content_type="application/json")


@pytest.mark.parametrize("stream", [False, True], ids=["create", "stream"])
async def test_one_sdk_call_makes_only_the_bridges_attempts(stream: bool) -> None:
    """The SDK (max_retries 2 by default) retries a 500 twice more unless told not to: without
    `x-should-retry: false` this call made 3 x 2 upstream requests."""
    async with ScriptedUpstream(default=BUSY) as upstream:
        config = passthrough_config(upstream.base_url, request_max_retries=1)
        async with running_bridge(config) as bridge:
            client = AsyncOpenAI(base_url=bridge.base_url, api_key="unused")
            assert client.max_retries == 2
            with pytest.raises(openai.InternalServerError) as info:
                if stream:
                    async for _ in await client.responses.create(
                        model="m", input="hi", stream=True
                    ):
                        pass
                else:
                    await client.responses.create(model="m", input="hi")
            await client.close()
    assert info.value.response.headers["x-should-retry"] == "false"
    assert len(upstream.requests) == 2  # the bridge's own two attempts, nothing more


async def test_a_failed_stream_carries_the_bridges_code_through_the_sdk() -> None:
    """After the commit, `response.failed` has the code a status answer would have had; the
    SDK's stream parses it (it types codes as OpenAI's list but does not check streamed ones)."""
    slow_500 = Reply(BUSY.body, status=500, content_type="application/json", head_delay_s=0.3)
    async with ScriptedUpstream(default=slow_500) as upstream:
        config = passthrough_config(upstream.base_url, request_max_retries=0)
        async with running_bridge(BridgeSettings(config, commit_after_s=0.05)) as bridge:
            client = AsyncOpenAI(base_url=bridge.base_url, api_key="unused", max_retries=0)
            events = [
                e async for e in await client.responses.create(model="m", input="hi", stream=True)
            ]
            await client.close()
    assert events[-1].type == "response.failed"
    assert events[-1].response.error is not None
    code: str = events[-1].response.error.code  # a str the SDK's Literal does not list
    assert code == "upstream_error"
    assert "busy" in events[-1].response.error.message


async def test_after_the_finish_only_the_grace_applies() -> None:
    """Pings after a finish_reason end in the grace completion, not a no-content timeout."""
    body = text_body(["Hi"], done=False)
    async with ScriptedUpstream([Reply(body, repeat=b": ping\n\n", drip_s=0.02)]) as upstream:
        provider = Provider(name="p", base_url=upstream.base_url, stream_no_content_timeout_ms=100)
        async with Client(provider, model="m", finish_grace_s=0.4) as client:
            with anyio.fail_after(5):
                events = [e async for e in client.stream(Prompt("", "hi"))]
    assert isinstance(events[-1], Completed)


# -- the budget (pure) ---------------------------------------------------------------------------


def test_a_wait_may_not_straddle_the_commit_or_pass_the_deadline() -> None:
    budget = Budget.start(100.0, turn_timeout_ms=10_000, commit_at=102.0)
    assert budget.refuses_wait(100.0, 1.5) is None  # ends before the commit
    assert budget.refuses_wait(100.5, 3.0) == "past_commit"  # 429 Retry-After 3: hand it back
    assert budget.refuses_wait(102.5, 3.0) is None  # committed already: retry unseen
    assert budget.refuses_wait(108.0, 3.0) == "past_deadline"
    assert Budget.start(0.0, turn_timeout_ms=0).refuses_wait(0.0, 1e9) is None


# -- the SSE cap (pure) --------------------------------------------------------------------------


def test_the_default_cap_keeps_a_2_mb_line() -> None:
    line = b"data: " + "ü".encode() * 1_000_000 + b"\n\n"
    parser = SSEParser(DEFAULT_STREAM_MAX_EVENT_BYTES)
    got = [d for i in range(0, len(line), 65536) for d in parser.feed(line[i : i + 65536])]
    assert got == ["ü" * 1_000_000]


@pytest.mark.parametrize("piece", [1, 7, 4096, 1 << 20], ids=lambda n: f"{n}-byte-feeds")
def test_a_line_over_the_cap_raises_as_soon_as_it_is_over(piece: int) -> None:
    limit = 1000
    body = b"data: " + b"x" * 5000  # never a newline
    parser = SSEParser(limit)
    fed = 0
    with pytest.raises(StreamLimitError) as info:
        for i in range(0, len(body), piece):
            parser.feed(body[i : i + piece])
            fed = i + piece
    assert fed <= limit + piece  # nothing much past the cap was buffered
    assert "stream_max_event_bytes" in str(info.value) and not info.value.retryable


def test_an_event_of_many_short_data_lines_is_capped_too() -> None:
    parser = SSEParser(1000)
    with pytest.raises(StreamLimitError, match="SSE event"):
        for _ in range(200):
            parser.feed(b"data: 0123456789\n")


def test_a_long_line_inside_one_big_feed_is_caught() -> None:
    parser = SSEParser(100)
    with pytest.raises(StreamLimitError):
        parser.feed(b"data: a\n\n" + b"data: " + b"y" * 500 + b"\n\ndata: b\n\n")
    assert SSEParser(0).feed(b"data: " + b"y" * 500 + b"\n\n") == ["y" * 500]  # 0: no cap


# -- garbage and whole answers (pure) ------------------------------------------------------------


def test_only_garbage_then_done_fails_in_strict_mode_only() -> None:
    strict = ChatStreamDecoder(strict=True)
    assert strict.feed("{oops") == []
    with pytest.raises(StreamError, match="none of them JSON"):
        strict.feed("[DONE]")
    lenient = ChatStreamDecoder()  # the conformance vectors' (Codex's) reading
    lenient.feed("{oops")
    assert [e.type for e in lenient.feed("[DONE]")] == ["completed"]
    mixed = ChatStreamDecoder(strict=True)
    mixed.feed("{oops")
    mixed.feed(json.dumps(chat_chunk({"content": "hi"})))
    assert mixed.feed("[DONE]")[-1].type == "completed"


def _whole(message: dict[str, Any], **extra: Any) -> bytes:
    choice = {"index": 0, "message": message, "finish_reason": "stop"}
    return json.dumps(
        {"id": "c1", "object": "chat.completion", "choices": [choice], **extra}
    ).encode()


def test_a_whole_completion_gives_the_events_of_the_same_answer_streamed() -> None:
    usage = {"prompt_tokens": 3, "completion_tokens": 2, "total_tokens": 5}
    whole = decode_completion(
        _whole({"role": "assistant", "content": "Hi", "reasoning_content": "think"}, usage=usage),
        ChatStreamDecoder(),
    )
    streamed_decoder = ChatStreamDecoder()
    streamed: list[Any] = []
    body = sse_body(
        [
            chat_chunk({"reasoning_content": "think"}),
            chat_chunk({"content": "Hi"}),
            chat_chunk({}, finish_reason="stop", usage=usage),
        ]
    )
    for data in SSEParser().feed(body):
        streamed += streamed_decoder.feed(data)
    assert [type(e) for e in whole] == [type(e) for e in streamed]
    assert [e.delta for e in whole if isinstance(e, OutputTextDelta)] == ["Hi"]
    assert isinstance(whole[-1], Completed) and whole[-1].token_usage == streamed[-1].token_usage
    assert sum(isinstance(e, OutputItemDone) for e in whole) == 2


@pytest.mark.parametrize(
    ("body", "error"),
    [
        (b"not json", StreamError),
        (b"[1, 2]", StreamError),
        (b'{"object": "list", "data": []}', StreamError),
        (b'{"error": {"message": "overloaded", "code": "busy"}}', ProviderError),
    ],
)
def test_what_is_not_a_completion_raises(body: bytes, error: type[Exception]) -> None:
    with pytest.raises(error):
        decode_completion(body, ChatStreamDecoder())


def test_whole_tool_calls_get_their_positions_as_indexes() -> None:
    call = {"id": "a", "type": "function", "function": {"name": "f", "arguments": "{}"}}
    chunk = completion_chunk(json.loads(_whole({"tool_calls": [call, {**call, "id": "b"}]})))
    assert [c["index"] for c in chunk["choices"][0]["delta"]["tool_calls"]] == [0, 1]
