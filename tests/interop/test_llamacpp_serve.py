"""`wirebridge serve` in front of real Chat Completions servers, driven by the `openai` SDK.

The SDK's `client.responses.create(...)`, stream and non-stream, through a `wirebridge serve`
process whose `--upstream` is llama-server or llama-cpp-python running a scripted model.
"""

from __future__ import annotations

import json

import pytest
from openai import OpenAI
from openai.types.responses import ToolChoiceFunctionParam

from .llamacpp import ServerKind, ServerPool, ServerProcess
from .scripted_model import EMOJI_SENTENCE, TEXT_SENTENCE, TOOL_ARGUMENTS, TOOL_NAME, WEATHER_TOOL

pytestmark = pytest.mark.interop

# llama-cpp-python calls a tool only when the request names it; llama-server does either way.
NAMED_CHOICE: ToolChoiceFunctionParam = {"type": "function", "name": TOOL_NAME}


def sdk(bridge: ServerProcess) -> OpenAI:
    return OpenAI(base_url=bridge.base_url, api_key="unused", max_retries=0, timeout=60)


@pytest.fixture(scope="session")
def text_bridge(llamacpp_servers: ServerPool, server_kind: ServerKind) -> ServerProcess:
    return llamacpp_servers.bridge(server_kind, "text")


@pytest.fixture(scope="session")
def tool_bridge(llamacpp_servers: ServerPool, server_kind: ServerKind) -> ServerProcess:
    return llamacpp_servers.bridge(server_kind, "tool")


@pytest.fixture(scope="session")
def emoji_bridge(llamacpp_servers: ServerPool, server_kind: ServerKind) -> ServerProcess:
    return llamacpp_servers.bridge(server_kind, "emoji")


def test_text_non_stream(text_bridge: ServerProcess, server_kind: ServerKind) -> None:
    response = sdk(text_bridge).responses.create(
        model=text_bridge.alias, instructions="Be brief.", input="Hi", temperature=0
    )
    assert response.status == "completed"
    assert response.output_text == TEXT_SENTENCE
    assert [item.type for item in response.output] == ["message"]
    if server_kind == "llama-server":
        assert response.usage is not None
        assert response.usage.input_tokens > 0
        assert response.usage.output_tokens == 5
    else:  # llama-cpp-python streams no usage, and the bridge always streams upstream
        assert response.usage is None


def test_text_stream(text_bridge: ServerProcess) -> None:
    with sdk(text_bridge).responses.create(
        model=text_bridge.alias, input="Hi", temperature=0, stream=True
    ) as stream:
        events = list(stream)
    types = [e.type for e in events]
    assert types[:2] == ["response.created", "response.in_progress"]
    assert types[-1] == "response.completed"
    deltas = [e.delta for e in events if e.type == "response.output_text.delta"]
    assert len(deltas) > 1 and "".join(deltas) == TEXT_SENTENCE
    assert [e.sequence_number for e in events] == list(range(len(events)))
    final = events[-1].response  # type: ignore[union-attr]
    assert final.output_text == TEXT_SENTENCE


def test_tool_call_non_stream(tool_bridge: ServerProcess) -> None:
    response = sdk(tool_bridge).responses.create(
        model=tool_bridge.alias,
        input="What is the weather in Oslo?",
        tools=[WEATHER_TOOL],
        tool_choice=NAMED_CHOICE,
        temperature=0,
    )
    (call,) = response.output
    assert call.type == "function_call"
    assert call.name == TOOL_NAME
    assert json.loads(call.arguments) == TOOL_ARGUMENTS
    assert call.call_id


def test_tool_call_stream(tool_bridge: ServerProcess) -> None:
    with sdk(tool_bridge).responses.create(
        model=tool_bridge.alias,
        input="What is the weather in Oslo?",
        tools=[WEATHER_TOOL],
        tool_choice=NAMED_CHOICE,
        stream=True,
    ) as stream:
        events = list(stream)
    arguments = "".join(
        e.delta for e in events if e.type == "response.function_call_arguments.delta"
    )
    assert json.loads(arguments) == TOOL_ARGUMENTS
    (done,) = [e for e in events if e.type == "response.output_item.done"]
    assert done.item.type == "function_call" and done.item.name == TOOL_NAME
    assert events[-1].type == "response.completed"


def test_emoji_stream(emoji_bridge: ServerProcess) -> None:
    with sdk(emoji_bridge).responses.create(
        model=emoji_bridge.alias, input="Hi", stream=True
    ) as stream:
        events = list(stream)
    deltas = [e.delta for e in events if e.type == "response.output_text.delta"]
    assert "".join(deltas) == EMOJI_SENTENCE
    assert not any("\ufffd" in d for d in deltas)


def test_tool_result_turn(text_bridge: ServerProcess) -> None:
    """The SDK sends the call and its output back; the bridge maps them for the server."""
    response = sdk(text_bridge).responses.create(
        model=text_bridge.alias,
        input=[
            {"role": "user", "content": "Weather in Oslo?"},
            {
                "type": "function_call",
                "call_id": "call_1",
                "name": TOOL_NAME,
                "arguments": json.dumps(TOOL_ARGUMENTS),
            },
            {"type": "function_call_output", "call_id": "call_1", "output": "Sunny, 21 C"},
        ],
        tools=[WEATHER_TOOL],
    )
    assert response.output_text == TEXT_SENTENCE
