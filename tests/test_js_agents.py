"""OpenAI Agents JS (`@openai/agents`, pinned) through `wirebridge serve`: tests/js/agents.mjs."""

from __future__ import annotations

from pathlib import Path

import pytest

from .js_support import js_modules, thought, tier

pytestmark = [pytest.mark.anyio, pytest.mark.interop]
SCRIPT = "agents.mjs"
__all__ = ["js_modules"]  # scripts/test.sh installs the clients for modules that have it

ANSWER = "The tool said: Paris: 21 C, sunny"
TOOL = {"role": "tool", "tool_call_id": "call_1", "content": "Paris: 21 C, sunny"}


async def test_streamed_turn(tmp_path: Path) -> None:
    async with tier(tmp_path) as t:
        out = await t.run(SCRIPT, "stream")
    assert out["text"] == out["final"] == "Answer 1."
    assert "output_text_delta" in out["kinds"]
    assert t.upstream.requests[0].json["messages"] == [
        {"role": "system", "content": "Be brief."},
        {"role": "user", "content": "Say hello."},
    ]


@pytest.mark.parametrize("deepseek", [False, True])
async def test_streamed_tool_loop(tmp_path: Path, deepseek: bool) -> None:
    async with tier(tmp_path, deepseek=deepseek) as t:
        out = await t.run(SCRIPT, "tool_loop")
    assert out["final"] == ANSWER
    items = ["tool_call_item", "tool_call_output_item", "message_output_item"]
    if deepseek:
        items = ["reasoning_item", *items[:2], "reasoning_item", items[2]]
    assert out["items"] == items
    assert t.sent(1)[-1] == TOOL
    assert t.sent(1)[-2].get("reasoning_content") == (thought(1) if deepseek else None)


@pytest.mark.parametrize("scenario", ["history", "previous_response_id"])
async def test_second_run_sees_the_first(tmp_path: Path, scenario: str) -> None:
    async with tier(tmp_path) as t:
        out = await t.run(SCRIPT, scenario)
    assert out["finals"] == [ANSWER, ANSWER]
    second_run = t.sent(2)
    assert [m["role"] for m in second_run] == ["user", "assistant", "tool", "assistant", "user"]
    assert second_run[2] == TOOL and second_run[3] == {"role": "assistant", "content": ANSWER}
    assert second_run[4] == {"role": "user", "content": "And tomorrow?"}


@pytest.mark.parametrize("scenario", ["history", "previous_response_id", "history_stateless"])
async def test_reasoning_round_trips_behind_a_deepseek_like_upstream(
    tmp_path: Path, scenario: str
) -> None:
    async with tier(tmp_path, deepseek=True) as t:
        out = await t.run(SCRIPT, scenario)
    assert out["finals"] == [ANSWER, ANSWER]
    # Each tool loop replays its call with the reasoning that led to it; the first loop's
    # reasoning is not replayed once a new user message follows it (rule P2).
    assert len(t.upstream.requests) == 4
    assert t.sent(1)[1]["reasoning_content"] == thought(1)
    assert "reasoning_content" not in t.sent(2)[1]
    assert t.sent(3)[-2]["reasoning_content"] == thought(3)
