"""The Vercel AI SDK (`ai` + `@ai-sdk/openai`, pinned) through `wirebridge serve` (ai_sdk.mjs).

Its multi-turn chats send earlier turns back as `item_reference`s by default (store true) and as
items carrying `encrypted_content` with store false; both must reach the upstream whole.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from .js_support import js_modules, thought, tier

pytestmark = [pytest.mark.anyio, pytest.mark.interop]
SCRIPT = "ai_sdk.mjs"
__all__ = ["js_modules"]  # scripts/test.sh installs the clients for modules that have it

CALL = {
    "id": "call_1",
    "type": "function",
    "function": {"name": "get_weather", "arguments": {"city": "Paris"}},
}
CALL3 = {**CALL, "id": "call_3"}
WEATHER = "What is the weather in Paris?"
ANSWER = "The tool said: Paris: 21 C, sunny"


async def test_streamed_turn(tmp_path: Path) -> None:
    async with tier(tmp_path) as t:
        out = await t.run(SCRIPT, "stream")
    assert out["text"] == "Answer 1."
    assert out["types"][-2:] == ["finish-step", "finish"]
    assert "text-delta" in out["types"]
    assert t.sent(0) == [{"role": "user", "content": "Say hello."}]


async def test_tool_loop_then_a_second_turn_over_references(tmp_path: Path) -> None:
    async with tier(tmp_path) as t:
        out = await t.run(SCRIPT, "tool_loop")
    assert out["steps"] == [2, 2]
    assert out["texts"] == [ANSWER, ANSWER]
    assert out["types"][:7] == [
        "start",
        "start-step",
        "tool-input-start",
        "tool-input-delta",
        "tool-input-end",
        "tool-call",
        "tool-result",
    ]
    tool = {"role": "tool", "tool_call_id": "call_1", "content": "Paris: 21 C, sunny"}
    first_loop = [
        {"role": "user", "content": WEATHER},
        {"role": "assistant", "tool_calls": [CALL]},
        tool,
    ]
    assert [_call(m) for m in t.sent(1)] == first_loop
    # The second question's history: the earlier calls and answer come back as item_references.
    assert [_call(m) for m in t.sent(2)] == [
        *first_loop,
        {"role": "assistant", "content": ANSWER},
        {"role": "user", "content": "And tomorrow?"},
    ]


def _two_turns(t: Any) -> None:
    assert t.sent(1) == [
        {"role": "user", "content": "My name is Ada."},
        {"role": "assistant", "content": "Answer 1."},
        {"role": "user", "content": "What is my name?"},
    ]


@pytest.mark.parametrize("store", ["store_true", "store_false"])
async def test_messages_carry_the_history(tmp_path: Path, store: str) -> None:
    async with tier(tmp_path) as t:
        out = await t.run(SCRIPT, f"messages_{store}")
    assert out["texts"] == ["Answer 1.", "Answer 2."]
    _two_turns(t)


async def test_previous_response_id(tmp_path: Path) -> None:
    async with tier(tmp_path) as t:
        out = await t.run(SCRIPT, "previous_response_id")
    assert out["texts"] == ["Answer 1.", "Answer 2."]
    _two_turns(t)


@pytest.mark.parametrize(
    ("bridge_args", "shown"), [((), ""), (("--reasoning-summary", "always"), thought(1))]
)
async def test_without_options_reasoning_shows_only_when_the_bridge_always_summarises(
    tmp_path: Path, bridge_args: tuple[str, ...], shown: str
) -> None:
    async with tier(tmp_path, reasoning=True, bridge_args=bridge_args) as t:
        out = await t.run(SCRIPT, "reasoning_default")
    assert out["text"] == "Answer 1."
    assert out["reasoning"] == shown


async def test_reasoning_is_shown_when_a_summary_is_asked_for(tmp_path: Path) -> None:
    async with tier(tmp_path, reasoning=True) as t:
        out = await t.run(SCRIPT, "reasoning_visible")
    assert out["reasoning"] == thought(1)
    types = out["types"]
    # Reasoning ends before the answer starts (the SDK shows "thinking" until reasoning-end).
    assert types.index("reasoning-delta") < types.index("reasoning-end") < types.index("text-start")
    assert t.upstream.requests[0].json.get("reasoning_effort") is None


@pytest.mark.parametrize("store", ["store_true", "store_false"])
async def test_reasoning_round_trips_behind_a_deepseek_like_upstream(
    tmp_path: Path, store: str
) -> None:
    async with tier(tmp_path, deepseek=True) as t:
        out = await t.run(SCRIPT, f"reasoning_tool_loop_{store}")
    assert out["texts"] == [ANSWER, ANSWER]
    assert out["reasoning"] == [thought(1) + thought(2), thought(3) + thought(4)]
    assert not out["warnings"], out["warnings"]
    assert len(t.upstream.requests) == 4
    # Each tool loop replays its call with the reasoning that led to it (the first one's
    # reasoning came back by item_reference, or in encrypted_content with store false).
    assert _call(t.sent(1)[1]) == {"role": "assistant", "tool_calls": [CALL], **thought_of(1)}
    assert _call(t.sent(3)[-2]) == {"role": "assistant", "tool_calls": [CALL3], **thought_of(3)}


async def test_generate_text_tool_loop_stateless_behind_a_deepseek_like_upstream(
    tmp_path: Path,
) -> None:
    async with tier(tmp_path, deepseek=True) as t:
        out = await t.run(SCRIPT, "generate_tool_loop_store_false")
    assert out == {
        "text": ANSWER,
        "steps": 2,
        "reasoning": [thought(1), thought(2)],
        "warnings": [],
    }
    assert _call(t.sent(1)[1]) == {"role": "assistant", "tool_calls": [CALL], **thought_of(1)}


def thought_of(n: int) -> dict[str, str]:
    return {"reasoning_content": thought(n)}


def _call(message: dict[str, Any]) -> dict[str, Any]:
    """`message` with its calls' arguments parsed (the SDK re-serialises what it sends back)."""
    calls = [
        {**c, "function": {**c["function"], "arguments": json.loads(c["function"]["arguments"])}}
        for c in message.get("tool_calls", ())
    ]
    return {**message, "tool_calls": calls} if calls else message


async def test_reasoning_with_previous_response_id_behind_a_deepseek_like_upstream(
    tmp_path: Path,
) -> None:
    async with tier(tmp_path, deepseek=True) as t:
        out = await t.run(SCRIPT, "reasoning_tool_loop_previous_response_id")
    assert out["texts"] == [ANSWER, ANSWER]
    assert _call(t.sent(3)[-2]) == {"role": "assistant", "tool_calls": [CALL3], **thought_of(3)}
