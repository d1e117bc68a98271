"""The interop fixtures themselves: each real server says its scripted model's text.

Plain HTTP against both servers, stream and non-stream, before any wirebridge code is involved,
so that a failure in the library tests points at wirebridge rather than at the fixtures. These
also pin the servers' quirks that the library tests rely on.
"""

from __future__ import annotations

import json
from typing import Any

import httpx
import pytest

from .llamacpp import ServerProcess
from .scripted_model import (
    EMOJI_SENTENCE,
    HERMES_TOOL_CALL,
    TEXT_SENTENCE,
    TOOL_ARGUMENTS,
    TOOL_NAME,
)

pytestmark = pytest.mark.interop

WEATHER_TOOL = {
    "type": "function",
    "function": {
        "name": TOOL_NAME,
        "description": "Get the current weather for a city.",
        "parameters": {
            "type": "object",
            "properties": {"city": {"type": "string"}},
            "required": ["city"],
        },
    },
}
NAMED_CHOICE = {"type": "function", "function": {"name": TOOL_NAME}}


def body(server: ServerProcess, **extra: Any) -> dict[str, Any]:
    return {
        "model": server.alias,
        "messages": [
            {"role": "system", "content": "You are a test double."},
            {"role": "user", "content": "Say your line."},
        ],
        "temperature": 0,
        **extra,
    }


def complete(server: ServerProcess, payload: dict[str, Any]) -> dict[str, Any]:
    resp = httpx.post(server.base_url + "/chat/completions", json=payload, timeout=60)
    assert resp.status_code == 200, resp.text
    result: dict[str, Any] = resp.json()
    return result


def stream(server: ServerProcess, payload: dict[str, Any]) -> list[dict[str, Any]]:
    """The JSON chunks of a streamed completion, up to `[DONE]` (which must come)."""
    chunks: list[dict[str, Any]] = []
    url = server.base_url + "/chat/completions"
    with httpx.stream("POST", url, json={**payload, "stream": True}, timeout=60) as resp:
        assert resp.status_code == 200, resp.read().decode(errors="replace")
        for line in resp.iter_lines():
            if not line.startswith("data:"):
                continue
            data = line[len("data:") :].strip()
            if data == "[DONE]":
                return chunks
            chunks.append(json.loads(data))
    raise AssertionError(f"stream ended without [DONE] after {len(chunks)} chunks")


def content_of(chunks: list[dict[str, Any]]) -> str:
    return "".join(
        c["delta"].get("content") or "" for ch in chunks for c in ch.get("choices") or []
    )


def tool_call_deltas(chunks: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [tc for ch in chunks for c in ch["choices"] for tc in c["delta"].get("tool_calls") or []]


def test_text_non_stream(text_server: ServerProcess) -> None:
    choice = complete(text_server, body(text_server))["choices"][0]
    assert choice["message"]["content"] == TEXT_SENTENCE
    assert choice["finish_reason"] == "stop"


def test_text_stream(text_server: ServerProcess) -> None:
    chunks = stream(text_server, body(text_server))
    assert content_of(chunks) == TEXT_SENTENCE
    finishes = [c["finish_reason"] for ch in chunks for c in ch["choices"] if c["finish_reason"]]
    assert finishes == ["stop"]


def test_emoji_stream_is_whole_utf8(emoji_server: ServerProcess) -> None:
    chunks = stream(emoji_server, body(emoji_server))
    assert content_of(chunks) == EMOJI_SENTENCE
    deltas = [c["delta"].get("content") or "" for ch in chunks for c in ch["choices"]]
    assert not any("\ufffd" in d for d in deltas)


def test_emoji_non_stream(emoji_server: ServerProcess) -> None:
    choice = complete(emoji_server, body(emoji_server))["choices"][0]
    assert choice["message"]["content"] == EMOJI_SENTENCE


def test_llama_server_tool_call(llamacpp_servers: Any) -> None:
    server: ServerProcess = llamacpp_servers.get("llama-server", "tool")
    message = complete(server, body(server, tools=[WEATHER_TOOL]))["choices"][0]["message"]
    (call,) = message["tool_calls"]
    assert call["function"]["name"] == TOOL_NAME
    assert json.loads(call["function"]["arguments"]) == TOOL_ARGUMENTS


def test_llama_server_tool_call_stream(llamacpp_servers: Any) -> None:
    server: ServerProcess = llamacpp_servers.get("llama-server", "tool")
    chunks = stream(server, body(server, tools=[WEATHER_TOOL]))
    calls = tool_call_deltas(chunks)
    # id and name come once, the arguments in fragments after them.
    assert calls[0]["id"] and calls[0]["function"]["name"] == TOOL_NAME
    assert all("name" not in (tc.get("function") or {}) for tc in calls[1:])
    arguments = "".join(tc["function"].get("arguments") or "" for tc in calls)
    assert json.loads(arguments) == TOOL_ARGUMENTS
    finishes = [c["finish_reason"] for ch in chunks for c in ch["choices"] if c["finish_reason"]]
    assert finishes == ["tool_calls"]


def test_llama_server_ignores_named_tool_choice(llamacpp_servers: Any) -> None:
    server: ServerProcess = llamacpp_servers.get("llama-server", "tool")
    payload = body(server, tools=[WEATHER_TOOL], tool_choice=NAMED_CHOICE)
    message = complete(server, payload)["choices"][0]["message"]
    (call,) = message["tool_calls"]
    assert json.loads(call["function"]["arguments"]) == TOOL_ARGUMENTS


def test_llama_server_usage_chunk(llamacpp_servers: Any) -> None:
    server: ServerProcess = llamacpp_servers.get("llama-server", "text")
    chunks = stream(server, body(server, stream_options={"include_usage": True}))
    (last,) = [ch for ch in chunks if ch.get("usage")]
    assert last["choices"] == []
    assert last["usage"]["prompt_tokens"] > 0
    assert last["usage"]["completion_tokens"] >= 4
    assert "timings" in last


def test_llama_cpp_python_named_tool_choice(llamacpp_servers: Any) -> None:
    server: ServerProcess = llamacpp_servers.get("llama-cpp-python", "tool")
    payload = body(server, tools=[WEATHER_TOOL], tool_choice=NAMED_CHOICE)
    message = complete(server, payload)["choices"][0]["message"]
    (call,) = message["tool_calls"]
    assert call["function"]["name"] == TOOL_NAME
    assert json.loads(call["function"]["arguments"]) == TOOL_ARGUMENTS
    assert message["function_call"]["name"] == TOOL_NAME  # the legacy field, too


def test_llama_cpp_python_tool_call_stream(llamacpp_servers: Any) -> None:
    server: ServerProcess = llamacpp_servers.get("llama-cpp-python", "tool")
    payload = body(server, tools=[WEATHER_TOOL], tool_choice=NAMED_CHOICE)
    chunks = stream(server, payload)
    calls = tool_call_deltas(chunks)
    # id and name are repeated in every chunk.
    assert len(calls) > 1
    assert {(tc["id"], tc["function"]["name"]) for tc in calls} == {(calls[0]["id"], TOOL_NAME)}
    arguments = "".join(tc["function"]["arguments"] or "" for tc in calls)
    assert json.loads(arguments) == TOOL_ARGUMENTS


def test_llama_cpp_python_auto_tool_choice_is_text(llamacpp_servers: Any) -> None:
    """Without a named tool_choice llama-cpp-python (template handler) parses no tool calls."""
    server: ServerProcess = llamacpp_servers.get("llama-cpp-python", "tool")
    message = complete(server, body(server, tools=[WEATHER_TOOL]))["choices"][0]["message"]
    assert message["content"] == HERMES_TOOL_CALL
    assert not message.get("tool_calls")


def test_llama_cpp_python_ignores_include_usage(llamacpp_servers: Any) -> None:
    server: ServerProcess = llamacpp_servers.get("llama-cpp-python", "text")
    chunks = stream(server, body(server, stream_options={"include_usage": True}))
    assert content_of(chunks) == TEXT_SENTENCE
    assert not any(ch.get("usage") for ch in chunks)


def test_long_prompt_fits(llamacpp_servers: Any, server_kind: Any) -> None:
    """Codex sends ~6,000 prompt tokens: the 32k context takes them."""
    server: ServerProcess = llamacpp_servers.get(server_kind, "text")
    filler = "word " * 6500  # one token per " word"
    payload = body(server)
    payload["messages"][0]["content"] = filler
    result = complete(server, payload)
    assert result["choices"][0]["message"]["content"] == TEXT_SENTENCE
    assert result["usage"]["prompt_tokens"] > 6000


def test_llama_cpp_python_rejects_content_null(llamacpp_servers: Any) -> None:
    """Its request model types assistant `content` as a string: the `"content": null` that
    OpenAI documents beside `tool_calls` fails validation, answered as HTTP 500."""
    server: ServerProcess = llamacpp_servers.get("llama-cpp-python", "text")
    call = {
        "id": "call_1",
        "type": "function",
        "function": {"name": TOOL_NAME, "arguments": json.dumps(TOOL_ARGUMENTS)},
    }
    payload = body(server, tools=[WEATHER_TOOL])
    payload["messages"] += [
        {"role": "assistant", "content": None, "tool_calls": [call]},
        {"role": "tool", "tool_call_id": "call_1", "content": "Sunny"},
    ]
    resp = httpx.post(server.base_url + "/chat/completions", json=payload, timeout=60)
    assert resp.status_code == 500
    assert "content" in resp.text
    del payload["messages"][-2]["content"]  # no key at all is accepted
    assert complete(server, payload)["choices"][0]["message"]["content"] == TEXT_SENTENCE
