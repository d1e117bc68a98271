"""The `openai` SDK's Responses client, unchanged, against the bridge (over loopback)."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from typing import Any

import openai
import pytest
from openai import AsyncOpenAI

from wirebridge.responses.runner import RunningBridge
from wirebridge.responses.testing import (
    check_stream_invariants,
    passthrough_config,
    running_bridge,
    validate_events,
    validate_response,
)
from wirebridge.testing import Reply, ScriptedUpstream, SeenRequest, text_body, tool_call_body

pytestmark = pytest.mark.anyio

WEATHER_TOOL = {
    "type": "function",
    "name": "get_weather",
    "description": "Current weather for a city.",
    "parameters": {
        "type": "object",
        "properties": {"city": {"type": "string"}},
        "required": ["city"],
        "additionalProperties": False,
    },
    "strict": True,
}
USAGE = {"prompt_tokens": 20, "completion_tokens": 7, "total_tokens": 27}


def weather_script(request: SeenRequest) -> Reply:
    """First turn: call the tool. Second turn: answer with what the tool returned."""
    tool_messages = [m for m in request.json["messages"] if m["role"] == "tool"]
    if not tool_messages:
        return Reply(tool_call_body([("call_w1", "get_weather", {"city": "Paris"})], usage=USAGE))
    return Reply(text_body(["The tool says: ", tool_messages[-1]["content"]], usage=USAGE))


@pytest.fixture
async def bridge() -> AsyncIterator[tuple[AsyncOpenAI, ScriptedUpstream]]:
    async with ScriptedUpstream(default=weather_script) as upstream:
        config = passthrough_config(upstream.base_url, request_max_retries=0)
        async with running_bridge(config) as server, sdk(server) as client:
            yield client, upstream


def sdk(server: RunningBridge) -> AsyncOpenAI:
    return AsyncOpenAI(base_url=server.base_url, api_key="unused", max_retries=0)


def dumped(event: Any) -> dict[str, Any]:
    """The event as it came over the wire (the SDK builds its objects without validating)."""
    data: dict[str, Any] = event.model_dump(
        mode="json", by_alias=True, exclude_unset=True, warnings=False
    )
    return data


async def test_streaming_text_events_validate_against_the_sdk_types(
    upstream: ScriptedUpstream,
) -> None:
    upstream.push(Reply(text_body(["Hello", ", ", "world"], reasoning=["hm"], usage=USAGE)))
    config = passthrough_config(upstream.base_url)
    async with running_bridge(config) as server, sdk(server) as client:
        stream = await client.responses.create(model="qwen3", input="Say hello", stream=True)
        events = [dumped(e) async for e in stream]
    validate_events(events)
    final = check_stream_invariants(events)
    text = "".join(e["delta"] for e in events if e["type"] == "response.output_text.delta")
    assert text == "Hello, world"
    assert final["usage"]["total_tokens"] == 27
    assert upstream.requests[0].json["messages"] == [{"role": "user", "content": "Say hello"}]


async def test_non_streaming_create_returns_a_valid_response(upstream: ScriptedUpstream) -> None:
    upstream.push(Reply(text_body(["Bonjour"])))
    config = passthrough_config(upstream.base_url)
    async with running_bridge(config) as server, sdk(server) as client:
        response = await client.responses.create(
            model="qwen3", instructions="Answer in French.", input="Hi"
        )
    validate_response(dumped(response))
    assert response.output_text == "Bonjour"
    assert response.status == "completed" and response.model == "qwen3"
    assert upstream.requests[0].json["messages"][0] == {
        "role": "system",
        "content": "Answer in French.",
    }


async def test_function_tool_round_trip_non_streaming(
    bridge: tuple[AsyncOpenAI, ScriptedUpstream],
) -> None:
    client, upstream = bridge
    history: list[Any] = [{"role": "user", "content": "Weather in Paris?"}]
    first = await client.responses.create(model="m", input=history, tools=[WEATHER_TOOL])
    calls = [o for o in first.output if o.type == "function_call"]
    assert len(calls) == 1
    call = calls[0]
    assert (call.name, call.call_id, json.loads(call.arguments)) == (
        "get_weather",
        "call_w1",
        {"city": "Paris"},
    )
    assert call.id is not None and call.id.startswith("fc_")
    history += [o.model_dump(exclude_none=True) for o in first.output]
    history.append({"type": "function_call_output", "call_id": call.call_id, "output": "18C sun"})
    second = await client.responses.create(model="m", input=history, tools=[WEATHER_TOOL])
    assert second.output_text == "The tool says: 18C sun"
    replayed = upstream.requests[1].json["messages"]
    assert replayed[-2]["tool_calls"][0]["id"] == "call_w1"
    assert replayed[-1] == {"role": "tool", "tool_call_id": "call_w1", "content": "18C sun"}


async def test_function_tool_round_trip_through_the_sdk_stream_helper(
    bridge: tuple[RunningBridge, ScriptedUpstream],
) -> None:
    # `responses.stream` rebuilds the response from the events and checks item identities.
    client, upstream = bridge
    history: list[Any] = [{"role": "user", "content": "Weather in Paris?"}]
    async with client.responses.stream(model="m", input=history, tools=[WEATHER_TOOL]) as stream:
        events = [dumped(e) async for e in stream]
        first = await stream.get_final_response()
    validate_events(events)
    check_stream_invariants(events)
    call = next(o for o in first.output if o.type == "function_call")
    assert json.loads(call.arguments) == {"city": "Paris"}
    history += [o.model_dump(exclude_none=True) for o in first.output]
    history.append({"type": "function_call_output", "call_id": call.call_id, "output": "rain"})
    async with client.responses.stream(model="m", input=history, tools=[WEATHER_TOOL]) as stream:
        events = [dumped(e) async for e in stream]
        second = await stream.get_final_response()
    validate_events(events)
    assert second.output_text == "The tool says: rain"
    assert len(upstream.requests) == 2


async def test_reasoning_items_round_trip_to_the_upstream(upstream: ScriptedUpstream) -> None:
    from wirebridge.testing import chat_chunk, sse_body

    tool_turn = sse_body(
        [
            chat_chunk({"reasoning_content": "Need the weather tool."}),
            chat_chunk(
                {
                    "tool_calls": [
                        {
                            "index": 0,
                            "id": "call_r",
                            "type": "function",
                            "function": {"name": "get_weather", "arguments": '{"city":"Oslo"}'},
                        }
                    ]
                }
            ),
            chat_chunk({}, finish_reason="tool_calls"),
        ]
    )
    upstream.push(Reply(tool_turn), Reply(text_body(["Cold."])))
    config = passthrough_config(upstream.base_url)
    async with running_bridge(config) as server, sdk(server) as client:
        history: list[Any] = [{"role": "user", "content": "Oslo?"}]
        first = await client.responses.create(model="m", input=history, tools=[WEATHER_TOOL])
        reasoning = next(o for o in first.output if o.type == "reasoning")
        assert reasoning.content is not None
        assert reasoning.content[0].text == "Need the weather tool."
        history += [o.model_dump(exclude_none=True) for o in first.output]
        history.append({"type": "function_call_output", "call_id": "call_r", "output": "-5C"})
        await client.responses.create(model="m", input=history, tools=[WEATHER_TOOL])
    assistant = upstream.requests[1].json["messages"][-2]
    assert assistant["tool_calls"][0]["id"] == "call_r"
    assert assistant["reasoning"] == "Need the weather tool."  # replayed (rule P2)


async def test_sdk_raises_typed_errors_with_the_param(upstream: ScriptedUpstream) -> None:
    upstream.push(
        Reply(
            b'{"error":{"message":"slow down"}}',
            status=429,
            headers={"Retry-After": "2"},
            content_type="application/json",
        )
    )
    config = passthrough_config(upstream.base_url, request_max_retries=0)
    async with running_bridge(config) as server, sdk(server) as client:
        with pytest.raises(openai.BadRequestError) as bad:
            await client.responses.create(model="m", input="x", temperature="hot")  # type: ignore[arg-type]
        with pytest.raises(openai.RateLimitError) as limited:
            await client.responses.create(model="m", input="x")
    assert bad.value.param == "temperature"
    assert limited.value.code == "rate_limit_exceeded"


async def test_call_arguments_stream_as_they_arrive(upstream: ScriptedUpstream) -> None:
    """Each upstream fragment is relayed as its own arguments delta, before the call is done."""
    calls = [("call_a", "get_weather", {"city": "Paris"}), ("call_b", "get_weather", "{}")]
    upstream.push(Reply(tool_call_body(calls, fragments=4)))
    config = passthrough_config(upstream.base_url)
    async with running_bridge(config) as server, sdk(server) as client:
        stream = await client.responses.create(
            model="m", input="Weather?", tools=[WEATHER_TOOL], stream=True
        )
        events = [dumped(e) async for e in stream]
    validate_events(events)
    final = check_stream_invariants(events)
    kinds = [e["type"] for e in events]
    first_done = kinds.index("response.output_item.done")
    deltas = [e for e in events if e["type"] == "response.function_call_arguments.delta"]
    assert len(deltas) >= 4, kinds  # the first call's 4 fragments, not one delta per call
    assert all(kinds.index(d["type"]) < first_done for d in deltas[:4])
    items = {e["item_id"]: "" for e in deltas}
    for d in deltas:
        items[d["item_id"]] += d["delta"]
    done = [o for o in final["output"] if o["type"] == "function_call"]
    assert [(o["call_id"], json.loads(o["arguments"])) for o in done] == [
        ("call_a", {"city": "Paris"}),
        ("call_b", {}),
    ]
    assert [items[o["id"]] for o in done] == [o["arguments"] for o in done]
