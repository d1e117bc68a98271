"""The wirebridge library against real Chat Completions servers: llama.cpp's llama-server and
llama-cpp-python's server, each running a scripted model (see scripted_model.py).

Each test runs against both servers (`server_kind` is parametrized). What differs between them
is what they actually do: llama-server honours `include_usage` and parses Qwen's `<tool_call>`
with any tool_choice; llama-cpp-python sends no usage when streaming and only calls a tool when
the request names it (then it repeats id and name in every chunk and adds `function_call`).
"""

from __future__ import annotations

import json
from typing import Any

import pytest

from wirebridge import Client, Prompt, Provider, aggregate, dump

from .llamacpp import ServerKind, ServerPool, ServerProcess
from .scripted_model import EMOJI_SENTENCE, TEXT_SENTENCE, TOOL_ARGUMENTS, TOOL_NAME, WEATHER_TOOL

pytestmark = [pytest.mark.interop, pytest.mark.anyio]

NAMED_CHOICE = {"type": "function", "name": TOOL_NAME}
INSTRUCTIONS = "You are a test double that always says the same thing."


def provider_for(server: ServerProcess, **options: Any) -> Provider:
    return Provider(
        name=server.kind,
        base_url=server.base_url,
        request_max_retries=0,
        stream_max_retries=0,
        stream_idle_timeout_ms=60_000,
        **options,
    )


async def events_of(server: ServerProcess, prompt: Prompt, **options: Any) -> list[dict[str, Any]]:
    async with Client(provider_for(server, **options), model=server.alias) as client:
        return [dump(event) async for event in client.stream(prompt)]


def text_of(events: list[dict[str, Any]]) -> str:
    return "".join(e["delta"] for e in events if e["type"] == "output_text_delta")


def items_of(events: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [e["item"] for e in events if e["type"] == "output_item_done"]


def say(text: str = "Say your line.", **options: Any) -> Prompt:
    return Prompt(instructions=INSTRUCTIONS, input=text, temperature=0.0, **options)


def assert_well_ordered(events: list[dict[str, Any]]) -> None:
    """Deltas, then the items, then exactly one `completed`, last."""
    types = [e["type"] for e in events if e["type"] != "created"]
    assert types.count("completed") == 1 and types[-1] == "completed", types
    first_item = types.index("output_item_done")
    assert "output_text_delta" not in types[first_item:], types


async def test_text_turn(text_server: ServerProcess) -> None:
    events = await events_of(text_server, say())
    assert text_of(events) == TEXT_SENTENCE
    assert len([e for e in events if e["type"] == "output_text_delta"]) > 1  # really streamed
    (item,) = items_of(events)
    assert item["type"] == "message" and item["role"] == "assistant"
    assert item["content"] == [{"type": "output_text", "text": TEXT_SENTENCE}]
    assert_well_ordered(events)
    assert events[-1]["response_id"]  # both servers send a chunk id


async def test_text_turn_aggregated(text_server: ServerProcess) -> None:
    async with Client(provider_for(text_server), model=text_server.alias) as client:
        events = [dump(e) async for e in aggregate(client.stream(say()), mode="aggregated")]
    assert [e["type"] for e in events if e["type"] != "created"] == [
        "output_item_done",
        "completed",
    ]
    assert events[-2]["item"]["content"][0]["text"] == TEXT_SENTENCE


async def test_tool_call_turn(tool_server: ServerProcess) -> None:
    # llama-cpp-python only parses a call when tool_choice names the tool; llama-server
    # ignores the name and parses Qwen's <tool_call> either way.
    prompt = say("What is the weather in Oslo?", tools=[WEATHER_TOOL], tool_choice=NAMED_CHOICE)
    events = await events_of(tool_server, prompt)
    (call,) = items_of(events)
    assert call["type"] == "function_call"
    assert call["name"] == TOOL_NAME
    assert json.loads(call["arguments"]) == TOOL_ARGUMENTS
    assert call["call_id"]
    assert text_of(events) == ""
    assert_well_ordered(events)


async def test_tool_call_turn_auto_on_llama_server(llamacpp_servers: ServerPool) -> None:
    server = llamacpp_servers.get("llama-server", "tool")
    events = await events_of(server, say("Weather in Oslo?", tools=[WEATHER_TOOL]))
    (call,) = items_of(events)
    assert call["type"] == "function_call" and call["name"] == TOOL_NAME
    assert json.loads(call["arguments"]) == TOOL_ARGUMENTS


async def test_tool_history_is_accepted(text_server: ServerProcess) -> None:
    """A turn after a tool call: the servers take wirebridge's tool messages (llama-cpp-python
    answers `"content": null` beside `tool_calls` with a validation error, as HTTP 500)."""
    prompt = Prompt(
        instructions=INSTRUCTIONS,
        input=[
            {"type": "message", "role": "user", "content": "Weather in Oslo?"},
            {
                "type": "function_call",
                "name": TOOL_NAME,
                "arguments": json.dumps(TOOL_ARGUMENTS),
                "call_id": "call_1",
            },
            {"type": "function_call_output", "call_id": "call_1", "output": "Sunny, 21 C"},
        ],
        tools=[WEATHER_TOOL],
        temperature=0.0,
    )
    events = await events_of(text_server, prompt)
    assert text_of(events) == TEXT_SENTENCE


async def test_usage(text_server: ServerProcess, server_kind: ServerKind) -> None:
    events = await events_of(text_server, say())
    usage = events[-1]["token_usage"]
    if server_kind == "llama-server":  # honours stream_options.include_usage
        assert usage is not None
        assert usage["input_tokens"] > 0
        assert usage["output_tokens"] == 5  # four tokens and <|im_end|>
        assert usage["total_tokens"] == usage["input_tokens"] + usage["output_tokens"]
    else:  # llama-cpp-python sends no usage in a stream
        assert usage is None


async def test_usage_not_asked(llamacpp_servers: ServerPool) -> None:
    server = llamacpp_servers.get("llama-server", "text")
    events = await events_of(server, say(), include_usage=False)
    assert text_of(events) == TEXT_SENTENCE
    assert events[-1]["type"] == "completed"


async def test_emoji_split_across_tokens_arrives_whole(emoji_server: ServerProcess) -> None:
    events = await events_of(emoji_server, say())
    assert text_of(events) == EMOJI_SENTENCE
    assert not any("\ufffd" in e.get("delta", "") for e in events)
    (item,) = items_of(events)
    assert item["content"][0]["text"] == EMOJI_SENTENCE


async def test_codex_sized_prompt(text_server: ServerProcess) -> None:
    """~6,000 prompt tokens, as Codex sends, fit the 32k context."""
    history: list[dict[str, Any]] = []
    for i in range(30):
        history.append({"type": "message", "role": "user", "content": f"question {i} " * 50})
        history.append({"type": "message", "role": "assistant", "content": f"answer {i} " * 50})
    history.append({"type": "message", "role": "user", "content": "Say your line."})
    prompt = Prompt(instructions=INSTRUCTIONS * 20, input=history, temperature=0.0)
    events = await events_of(text_server, prompt)
    assert text_of(events) == TEXT_SENTENCE
