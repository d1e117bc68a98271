"""Every item and tool type Codex sends is handled, over loopback HTTP to the scripted upstream.

Namespaces are flattened, `web_search` (tool) and `web_search_call` (item) are dropped, newer
Codex's `additional_tools` / `tool_search_output` bring their tools in, `agent_message` becomes
a user message naming its author, `client_metadata` is accepted, and `prompt_cache_key` reaches
only upstreams whose provider takes it.
"""

from __future__ import annotations

from typing import Any

import httpx
import pytest

from wirebridge.responses.testing import passthrough_config, running_bridge
from wirebridge.testing import Reply, ScriptedUpstream, text_body

pytestmark = pytest.mark.anyio


def user(text: str) -> dict[str, Any]:
    return {"type": "message", "role": "user", "content": [{"type": "input_text", "text": text}]}


def fn(name: str) -> dict[str, Any]:
    return {"type": "function", "name": name, "parameters": {"type": "object", "properties": {}}}


def codex_body(items: list[dict[str, Any]]) -> dict[str, Any]:
    return {
        "model": "m",
        "stream": True,
        "store": False,
        "input": items,
        "tools": [
            fn("exec_command"),
            {"type": "namespace", "name": "multi_agent_v1", "tools": [fn("spawn_agent")]},
            {"type": "web_search", "external_web_access": False},
        ],
        "tool_choice": "auto",
        "parallel_tool_calls": True,
        "include": ["reasoning.encrypted_content"],
        "prompt_cache_key": "thread-42",
        "client_metadata": {"session_id": "thread-42", "x-codex-window-id": "thread-42:0"},
    }


async def send(upstream: ScriptedUpstream, body: dict[str, Any], **options: Any) -> Any:
    upstream.push(Reply(text_body(["ok"])))
    async with (
        running_bridge(passthrough_config(upstream.base_url, **options)) as bridge,
        httpx.AsyncClient(timeout=30) as http,
    ):
        answer = await http.post(bridge.base_url + "/responses", json=body)
    assert answer.status_code == 200, answer.text
    return upstream.requests[-1].json


async def test_codex_fields_and_tools(upstream: ScriptedUpstream) -> None:
    web_call = {"type": "web_search_call", "id": "ws_1", "status": "completed", "action": {}}
    sent = await send(upstream, codex_body([user("hi"), web_call, user("again")]))
    assert [t["function"]["name"] for t in sent["tools"]] == ["exec_command", "spawn_agent"]
    assert "prompt_cache_key" not in sent and "client_metadata" not in sent
    assert [m["content"] for m in sent["messages"]] == ["hi", "again"]


async def test_prompt_cache_key_is_forwarded_where_the_provider_takes_it(
    upstream: ScriptedUpstream,
) -> None:
    sent = await send(upstream, codex_body([user("hi")]), prompt_cache_key=True)
    assert sent["prompt_cache_key"] == "thread-42"


async def test_items_that_bring_tools_and_agent_messages(upstream: ScriptedUpstream) -> None:
    items = [
        user("find a tool"),
        {"type": "tool_search_call", "id": "ts_1", "call_id": "ts_1", "arguments": {}},
        {"type": "tool_search_output", "id": "tso_1", "tools": [fn("read_calendar")]},
        {"type": "additional_tools", "id": "at_1", "tools": [fn("send_mail"), fn("exec_command")]},
        {
            "type": "agent_message",
            "author": "reviewer",
            "recipient": "main",
            "content": [{"type": "input_text", "text": "Looks good."}],
        },
    ]
    sent = await send(upstream, codex_body(items))
    names = [t["function"]["name"] for t in sent["tools"]]
    assert names == ["exec_command", "spawn_agent", "read_calendar", "send_mail"]
    assert sent["messages"][-1] == {
        "role": "user",
        "content": "[Message from agent reviewer]\nLooks good.",
    }
