"""`max_tool_calls`: the model's calls past the cap are ignored, in the stream and the Response.

Through a real bridge with the openai SDK, whose types validate every event and the Response.
"""

from __future__ import annotations

from typing import Any

import openai
import pytest

from wirebridge.events import OutputItemDone, ToolCallDelta
from wirebridge.items import FunctionCall, Message, OutputText
from wirebridge.responses.testing import passthrough_config, running_bridge
from wirebridge.responses.toolcap import ToolCallCap
from wirebridge.testing import Reply, ScriptedUpstream, tool_call_body

pytestmark = pytest.mark.anyio

TOOL = {
    "type": "function",
    "name": "weather",
    "description": "The weather in a city",
    "parameters": {"type": "object", "properties": {"city": {"type": "string"}}},
}
CALLS = [(f"call_{city}", "weather", {"city": city}) for city in ("Paris", "Rome", "Oslo")]


def test_the_cap_admits_calls_in_the_order_they_begin() -> None:
    cap = ToolCallCap(2)
    events = [
        ToolCallDelta(0, "a", "f", "{"),
        ToolCallDelta(1, "b", "f", "{"),
        ToolCallDelta(2, "c", "f", "{"),
        ToolCallDelta(0, "a", "f", "}"),
        ToolCallDelta(2, "c", "f", "}"),
        OutputItemDone(FunctionCall("f", "{}", "c")),
        OutputItemDone(Message("assistant", (OutputText("text"),))),
        OutputItemDone(FunctionCall("f", "{}", "a")),
        OutputItemDone(FunctionCall("f", "{}", "b")),
    ]
    assert [cap.keep(e) for e in events] == [
        True,
        True,
        False,
        True,
        False,
        False,
        True,
        True,
        True,
    ]
    assert cap.ignored == ["c"]


async def _run(max_tool_calls: int | None, *, stream: bool) -> tuple[Any, list[Any], Any]:
    request: dict[str, Any] = {"model": "m", "input": "Weather in three cities?", "tools": [TOOL]}
    if max_tool_calls is not None:
        request["max_tool_calls"] = max_tool_calls
    async with (
        ScriptedUpstream(default=Reply(tool_call_body(CALLS))) as up,
        running_bridge(passthrough_config(up.base_url)) as bridge,
    ):
        client = openai.AsyncOpenAI(base_url=bridge.base_url, api_key="k", max_retries=0)
        async with client:
            if not stream:
                return await client.responses.create(**request), [], up.requests[0].json
            events = [e async for e in await client.responses.create(**request, stream=True)]
    assert events[-1].type == "response.completed"
    return events[-1].response, events, up.requests[0].json


@pytest.mark.parametrize("stream", [True, False])
async def test_calls_past_max_tool_calls_are_ignored(stream: bool) -> None:
    response, events, sent = await _run(2, stream=stream)
    assert response.status == "completed" and response.max_tool_calls == 2
    assert [(o.type, o.call_id) for o in response.output] == [
        ("function_call", "call_Paris"),
        ("function_call", "call_Rome"),
    ]
    if stream:  # no trace of the third call: not added, no argument deltas, not done
        added = [e.item.call_id for e in events if e.type == "response.output_item.added"]
        assert added == ["call_Paris", "call_Rome"]
        deltas = {e.item_id for e in events if e.type == "response.function_call_arguments.delta"}
        assert deltas == {o.id for o in response.output}
        indexes = [e.output_index for e in events if e.type == "response.output_item.done"]
        assert indexes == [0, 1]
    assert "parallel_tool_calls" not in sent  # more than one call allowed: the model chooses


async def test_one_call_allowed_asks_the_upstream_for_one() -> None:
    response, _, sent = await _run(1, stream=True)
    assert [o.call_id for o in response.output] == ["call_Paris"]
    assert sent["parallel_tool_calls"] is False


async def test_without_max_tool_calls_every_call_is_kept() -> None:
    response, _, sent = await _run(None, stream=True)
    assert [o.call_id for o in response.output] == ["call_Paris", "call_Rome", "call_Oslo"]
    assert response.max_tool_calls is None and "parallel_tool_calls" not in sent
