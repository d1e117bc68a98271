"""openai-node (`openai` on npm, pinned) through `wirebridge serve`: tests/js/openai_node.mjs."""

from __future__ import annotations

from pathlib import Path

import pytest

from .js_support import js_modules, thought, tier

pytestmark = [pytest.mark.anyio, pytest.mark.interop]
SCRIPT = "openai_node.mjs"
__all__ = ["js_modules"]  # scripts/test.sh installs the clients for modules that have it


async def test_streamed_turn(tmp_path: Path) -> None:
    async with tier(tmp_path, reasoning=True) as t:
        out = await t.run(SCRIPT, "stream")
    assert out["text"] == "Answer 1."
    kinds = out["types"]
    assert kinds[:2] == ["response.created", "response.in_progress"]
    assert kinds[-1] == "response.completed"
    # The reasoning item is done before the answer's first delta.
    assert kinds.index("response.output_item.done") < kinds.index("response.output_text.delta")
    assert [item["type"] for item in out["output"]] == ["reasoning", "message"]
    assert out["output"][0]["content"] == [{"type": "reasoning_text", "text": thought(1)}]
    assert t.sent(0) == [{"role": "user", "content": "Say hello."}]


async def test_tool_loop_with_items_sent_back(tmp_path: Path) -> None:
    async with tier(tmp_path) as t:
        out = await t.run(SCRIPT, "tool_loop")
    assert out["calls"] == [{"name": "get_weather", "arguments": {"city": "Paris"}}]
    assert out["text"] == "The tool said: Paris: 21 C, sunny"
    call = {
        "id": "call_1",
        "type": "function",
        "function": {"name": "get_weather", "arguments": '{"city": "Paris"}'},
    }
    assert t.sent(1) == [
        {"role": "user", "content": "What is the weather in Paris?"},
        {"role": "assistant", "tool_calls": [call]},
        {"role": "tool", "tool_call_id": "call_1", "content": "Paris: 21 C, sunny"},
    ]


async def test_previous_response_id(tmp_path: Path) -> None:
    async with tier(tmp_path) as t:
        out = await t.run(SCRIPT, "previous_response_id")
    assert out["texts"] == ["Answer 1.", "Answer 2."]
    assert t.sent(1) == [
        {"role": "user", "content": "My name is Ada."},
        {"role": "assistant", "content": "Answer 1."},
        {"role": "user", "content": "What is my name?"},
    ]


@pytest.mark.parametrize(
    "scenario", ["tool_loop", "previous_response_id_tool_loop", "stateless_tool_loop"]
)
async def test_reasoning_round_trips_behind_a_deepseek_like_upstream(
    tmp_path: Path, scenario: str
) -> None:
    async with tier(tmp_path, deepseek=True) as t:
        out = await t.run(SCRIPT, scenario)
    assert out["text"] == "The tool said: Paris: 21 C, sunny"
    assert out["reasoning"] == [thought(1), thought(2)]
    if scenario == "stateless_tool_loop":  # asked for: every reasoning item has a token
        tokens = [
            o.get("encrypted_content") for o in out["first_output"] if o["type"] == "reasoning"
        ]
        assert tokens and all(str(token).startswith("wb2.") for token in tokens)
    replayed = t.sent(1)[1]
    assert replayed["tool_calls"][0]["id"] == "call_1"
    assert replayed["reasoning_content"] == thought(1)
