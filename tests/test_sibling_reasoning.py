"""A call sent back without its reasoning gets it back from the sibling step that made it.

The AI SDK with `previousResponseId` chains every step of a turn to the previous turn's last
response and sends the turn's calls inline without their reasoning (responses/siblings.py). The
pure rule first, then the exact request pattern through a real bridge, with the openai SDK and
a DeepSeek-like upstream that refuses a replayed tool call without its `reasoning_content`.
Tenant scoping of the sibling lookup is the store's (tests/test_store.py, `child_outputs`).
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import pytest
from openai import AsyncOpenAI

from wirebridge.items import FunctionCall, FunctionCallOutput, Item, Message, Reasoning
from wirebridge.items import InputText as Text
from wirebridge.responses import BridgeSettings
from wirebridge.responses.siblings import calls_without_reasoning, restore_reasoning
from wirebridge.responses.testing import passthrough_config, running_bridge
from wirebridge.store import open_store
from wirebridge.testing import Reply, ScriptedUpstream, SeenRequest, chat_chunk, sse_body
from wirebridge.testing.strict import requires_reasoning_content


def call(call_id: str, item_id: str | None = None) -> FunctionCall:
    return FunctionCall(name="get_weather", arguments="{}", call_id=call_id, id=item_id)


def thought(text: str) -> Reasoning:
    return Reasoning(id=f"rs_{text}", encrypted_content=None, summary=(), content=None)


USER = Message(role="user", content=(Text("weather?"),))


def output(call_id: str) -> FunctionCallOutput:
    return FunctionCallOutput(call_id=call_id, output="21 C")


# -- the rule -------------------------------------------------------------------------------


def test_a_call_neither_stored_nor_preceded_by_reasoning_is_wanted() -> None:
    items: list[Item] = [USER, call("c_new"), thought("x"), call("c_with"), call("c_old")]
    assert calls_without_reasoning(items, [call("c_old")]) == {"c_new"}


def test_each_call_gets_the_reasoning_run_that_ended_at_it_in_the_newest_sibling() -> None:
    older = [thought("stale"), call("c1", "fc_old")]
    newer = [thought("a"), thought("b"), call("c1", "fc_1"), call("c2", "fc_2")]
    sent: list[Item] = [USER, call("c1"), call("c2"), output("c1"), output("c2")]
    restored = restore_reasoning(sent, [newer, older], {"c1", "c2"})
    # c2 followed c1 in the sibling: the reasoning run belongs to c1 alone.
    assert restored == [USER, thought("a"), thought("b"), call("c1"), call("c2"), *sent[3:]]


def test_nothing_found_or_nothing_wanted_leaves_the_items_as_sent() -> None:
    sent: list[Item] = [USER, call("c1"), output("c1")]
    assert restore_reasoning(sent, [[call("c1")]], {"c1"}) == sent  # no reasoning before it
    assert restore_reasoning(sent, [[thought("a"), call("c9")]], {"c1"}) == sent
    assert restore_reasoning(sent, [[thought("a"), call("c1")]], set()) == sent


# -- through the bridge ---------------------------------------------------------------------


def model(request: SeenRequest) -> Reply:
    """Reasoning then a call on a fresh question; after the tool's output, the answer."""
    messages = request.json["messages"]
    n = len([m for m in messages if m["role"] == "user"])
    if messages[-1]["role"] == "tool":
        chunks = [chat_chunk({"content": f"Answer {n}."}, finish_reason="stop")]
    else:
        tool_call = {
            "index": 0,
            "id": f"call_{n}",
            "function": {"name": "get_weather", "arguments": "{}"},
        }
        chunks = [
            chat_chunk({"reasoning_content": f"Thought {n}."}),
            chat_chunk({"tool_calls": [tool_call]}),
            chat_chunk({}, finish_reason="tool_calls"),
        ]
    return Reply(sse_body(chunks))


@asynccontextmanager
async def strict_bridge(tmp_path: Path) -> AsyncIterator[tuple[ScriptedUpstream, str]]:
    """A stored bridge in front of the DeepSeek-like upstream; yields it and the base URL."""
    store = await open_store(f"sqlite://{tmp_path / 'responses.db'}")
    async with ScriptedUpstream(default=requires_reasoning_content(model)) as upstream:
        config = passthrough_config(upstream.base_url, reasoning_field="reasoning_content")
        settings = BridgeSettings(config, store=store)
        async with store, running_bridge(settings) as bridge:
            yield upstream, bridge.base_url


async def turn_step(client: AsyncOpenAI, previous: str | None, input: list[Any]) -> Any:
    return await client.responses.create(
        model="m", input=input, previous_response_id=previous, tools=[TOOL]
    )


TOOL: Any = {"type": "function", "name": "get_weather", "parameters": {"type": "object"}}


def inline(call_item: Any) -> dict[str, Any]:
    """A call as the AI SDK sends it with previousResponseId: no id, no reasoning before it."""
    return {
        "type": "function_call",
        "call_id": call_item.call_id,
        "name": call_item.name,
        "arguments": call_item.arguments,
    }


@pytest.mark.anyio
async def test_every_step_chained_to_the_last_turn_keeps_each_calls_reasoning(
    tmp_path: Path,
) -> None:
    async with (
        strict_bridge(tmp_path) as (upstream, base_url),
        AsyncOpenAI(base_url=base_url, api_key="unused", max_retries=0) as client,
    ):
        # Turn 1, stepped as the SDK does without previousResponseId: whole history inline.
        q1 = {"role": "user", "content": "Weather in Paris?"}
        step = await turn_step(client, None, [q1])
        call1 = step.output[-1]
        out1 = {"type": "function_call_output", "call_id": call1.call_id, "output": "21 C"}
        turn1 = await turn_step(client, None, [q1, *[o.model_dump() for o in step.output], out1])
        # Turn 2, chained to turn 1's last response at every step.
        q2 = {"role": "user", "content": "And tomorrow?"}
        step = await turn_step(client, turn1.id, [q2])
        call2 = step.output[-1]
        out2 = {"type": "function_call_output", "call_id": call2.call_id, "output": "19 C"}
        final = await turn_step(client, turn1.id, [q2, inline(call2), out2])
        listed = await client.responses.input_items.list(final.id, order="asc")
    assert final.output_text == "Answer 2."
    replayed = upstream.requests[-1].json["messages"]
    assert replayed[-2] == {
        "role": "assistant",
        "tool_calls": [
            {
                "id": call2.call_id,
                "type": "function",
                "function": {"name": "get_weather", "arguments": "{}"},
            }
        ],
        "reasoning_content": "Thought 2.",
    }
    # What was sent is what is stored: the restored reasoning is this response's input too.
    assert [item.type for item in listed.data] == [
        "message",
        "reasoning",
        "function_call",
        "function_call_output",
    ]
