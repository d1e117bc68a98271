"""Rules of docs/design.md that neither the vectors nor the other tests would catch breaking.

- P4: a tool-call assistant message carries NO `content` key. The vectors cannot say this (they
  compare null as absent), yet `content: null` is what llama-cpp-python answers with HTTP 500.
- Aggregation: `streaming` mode yields the deltas and each item once; `aggregated` drops the
  deltas and yields each item once (one reasoning item, not the seed's two).
"""

from __future__ import annotations

import json
from typing import Any

import pytest

from wirebridge import Client, Prompt, Provider, aggregate, build_chat_payload, dump
from wirebridge.testing import Reply, ScriptedUpstream, text_body

CALLS: list[dict[str, Any]] = [
    {"type": "message", "role": "user", "content": [{"type": "input_text", "text": "go"}]},
    {"type": "function_call", "name": "shell", "arguments": '{"cmd":"ls"}', "call_id": "c1"},
    {"type": "custom_tool_call", "name": "apply_patch", "input": "*** Begin", "call_id": "c2"},
    {
        "type": "local_shell_call",
        "call_id": "c3",
        "status": "completed",
        "action": {"type": "exec", "command": ["ls"]},
    },
    {"type": "function_call_output", "call_id": "c1", "output": "a"},
    {"type": "custom_tool_call_output", "call_id": "c2", "output": "b"},
    {"type": "function_call_output", "call_id": "c3", "output": "c"},
    {"type": "function_call", "name": "shell", "arguments": "{}", "call_id": "c4"},
]


def _tool_call_messages(messages: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [m for m in messages if m["role"] == "assistant" and "tool_calls" in m]


def test_p4_tool_call_messages_have_no_content_key() -> None:
    payload = build_chat_payload(Prompt("s", CALLS), "m", Provider())
    groups = _tool_call_messages(payload["messages"])
    assert [len(m["tool_calls"]) for m in groups] == [3, 1]  # consecutive calls: one message
    for message in groups:
        assert "content" not in message, message


@pytest.mark.anyio
async def test_p4_no_content_key_reaches_the_server() -> None:
    async with ScriptedUpstream([Reply(text_body(["ok"]))]) as up:
        async with Client(Provider(name="p", base_url=up.base_url), model="m") as client:
            [e async for e in client.stream(Prompt("s", CALLS))]
        (request,) = up.requests
    groups = _tool_call_messages(json.loads(request.body)["messages"])
    assert groups and all("content" not in m for m in groups)


async def _events(mode: str | None) -> list[dict[str, Any]]:
    body = text_body(["Hel", "lo"], reasoning=["thinking ", "hard"])
    async with (
        ScriptedUpstream(default=Reply(body)) as up,
        Client(Provider(name="p", base_url=up.base_url), model="m") as client,
    ):
        stream = client.stream(Prompt("s", "hi"))
        source = stream if mode is None else aggregate(stream, mode)  # type: ignore[arg-type]
        return [dump(e) async for e in source]


@pytest.mark.anyio
async def test_streaming_mode_yields_the_deltas_and_each_item_once() -> None:
    raw = await _events(None)
    streaming = await _events("streaming")
    assert streaming == raw
    assert [e["type"] for e in streaming] == [
        "reasoning_content_delta",
        "reasoning_content_delta",
        "output_text_delta",
        "output_text_delta",
        "output_item_done",
        "output_item_done",
        "completed",
    ]
    items = [e["item"]["type"] for e in streaming if e["type"] == "output_item_done"]
    assert items == ["reasoning", "message"]


@pytest.mark.anyio
async def test_aggregated_mode_yields_each_item_once_and_no_deltas() -> None:
    aggregated = await _events("aggregated")
    assert [e["type"] for e in aggregated] == ["output_item_done", "output_item_done", "completed"]
    reasoning, message = (e["item"] for e in aggregated[:2])
    assert reasoning["type"] == "reasoning"
    assert reasoning["content"] == [{"type": "reasoning_text", "text": "thinking hard"}]
    assert message["content"] == [{"type": "output_text", "text": "Hello"}]
