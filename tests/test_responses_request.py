"""Request validation: what Codex and the openai SDK send is accepted; mistakes name their param."""

from __future__ import annotations

import json
import logging
from pathlib import Path
from typing import Any

import pytest

from wirebridge.chat.request import prepare_chat_request
from wirebridge.items import FunctionCall, FunctionCallOutput, Message
from wirebridge.provider import Provider
from wirebridge.responses.errors import ApiError
from wirebridge.responses.request import parse_request, unknown_fields
from wirebridge.responses.testing import validate_response
from wirebridge.wire import to_json

CODEX = Path(__file__).parent / "fixtures" / "codex"


def body(**fields: Any) -> bytes:
    return json.dumps({"model": "m", "input": "hi", **fields}).encode()


def rejected(raw: bytes) -> ApiError:
    with pytest.raises(ApiError) as info:
        parse_request(raw)
    assert info.value.status == 400
    return info.value


@pytest.mark.parametrize("name", ["say-hi", "after-toolcall"])
def test_codex_request_bodies_validate_and_map(name: str) -> None:
    raw = (CODEX / f"codex-responses-request-{name}.json").read_bytes()
    request = parse_request(raw)
    assert (request.model, request.stream, request.store) == ("mock-model", True, False)
    assert request.wants_reasoning_summary  # Codex sends reasoning.summary = "auto"
    assert unknown_fields(raw) == []
    chat = prepare_chat_request(request.prompt(request.items), "upstream-model", Provider())
    payload = chat.payload
    assert payload["model"] == "upstream-model"
    assert payload["tool_choice"] == "auto" and payload["parallel_tool_calls"] is True
    names = [t["function"]["name"] for t in payload["tools"]]
    assert "exec_command" in names and "close_agent" in names  # namespace tools flattened
    assert chat.tool_map.dropped == ["web_search"]
    assert payload["messages"][0]["role"] == "system"  # developer -> system (P5)
    if name == "after-toolcall":
        assert isinstance(request.items[-2], FunctionCall)
        assert isinstance(request.items[-1], FunctionCallOutput)
        assert payload["messages"][-1]["role"] == "tool"
        assert payload["messages"][-1]["tool_call_id"] == "call_mock1"


def test_codex_response_shell_is_a_valid_sdk_response() -> None:
    request = parse_request((CODEX / "codex-responses-request-say-hi.json").read_bytes())
    shell = to_json(request.response("resp_1", 1700000000))
    assert shell["tools"] and shell["store"] is False
    validate_response(shell)


def test_sdk_style_body_maps_every_option() -> None:
    raw = body(
        instructions="be brief",
        input=[{"role": "user", "content": "hello"}],
        tools=[{"type": "function", "name": "f", "parameters": {"type": "object"}}],
        tool_choice={"type": "function", "name": "f"},
        parallel_tool_calls=False,
        max_output_tokens=50,
        temperature=0.2,
        top_p=0.9,
        text={"format": {"type": "json_schema", "name": "x", "schema": {"type": "object"}}},
        reasoning={"effort": "low"},
        store=True,
        include=["reasoning.encrypted_content"],
        metadata={"k": "v"},
        prompt_cache_key="abc",
        user="u",
        stream=False,
    )
    request = parse_request(raw)
    payload = prepare_chat_request(request.prompt(request.items), "m", Provider()).payload
    assert payload["messages"] == [
        {"role": "system", "content": "be brief"},
        {"role": "user", "content": "hello"},
    ]
    assert payload["tool_choice"] == {"type": "function", "function": {"name": "f"}}
    assert payload["parallel_tool_calls"] is False
    assert (payload["max_tokens"], payload["temperature"], payload["top_p"]) == (50, 0.2, 0.9)
    assert payload["response_format"]["type"] == "json_schema"
    assert payload["reasoning_effort"] == "low"
    shell = to_json(request.response("resp_1", 1))
    assert shell["metadata"] == {"k": "v"} and shell["instructions"] == "be brief"
    assert shell["text"]["format"]["type"] == "json_schema"
    validate_response(shell)


def test_string_input_is_one_user_message() -> None:
    request = parse_request(body(input="hello there"))
    assert request.items == [Message("user", request.items[0].content)]
    assert request.items[0].text == "hello there"  # type: ignore[union-attr]
    assert not request.stream and request.store  # the API's defaults


@pytest.mark.parametrize(
    ("fields", "param"),
    [
        ({"model": 5}, "model"),
        ({"stream": "yes"}, "stream"),
        ({"temperature": "hot"}, "temperature"),
        ({"max_output_tokens": 1.5}, "max_output_tokens"),
        ({"max_output_tokens": True}, "max_output_tokens"),
        ({"tools": {"type": "function"}}, "tools"),
        ({"tools": ["f"]}, "tools[0]"),
        ({"instructions": ["x"]}, "instructions"),
        ({"text": {"format": "json"}}, "text.format"),
        ({"reasoning": {"effort": 3}}, "reasoning.effort"),
        ({"metadata": {"k": 1}}, "metadata"),
        ({"parallel_tool_calls": "no"}, "parallel_tool_calls"),
        ({"input": 7}, "input"),
        ({"previous_response_id": 1}, "previous_response_id"),
    ],
)
def test_wrong_types_are_400_naming_the_param(fields: dict[str, Any], param: str) -> None:
    error = rejected(body(**fields))
    assert error.param == param
    assert error.body()["error"]["type"] == "invalid_request_error"
    assert param.split("[")[0].split(".")[0] in error.message


@pytest.mark.parametrize(
    ("fields", "param"),
    [
        ({"tool_choice": "sometimes"}, "tool_choice"),
        ({"max_output_tokens": 0}, "max_output_tokens"),
        ({"text": {"format": {"name": "x"}}}, "text.format.type"),
        ({"input": [{"type": "function_call_output", "output": "x"}]}, "input[0].call_id"),
        ({"input": [{"role": "wizard", "content": "x"}]}, "input[0].role"),
        ({"input": ["not an item"]}, "input[0]"),
    ],
)
def test_wrong_values_are_400_naming_the_param(fields: dict[str, Any], param: str) -> None:
    assert rejected(body(**fields)).param == param


def test_missing_model_is_400_unless_the_config_has_a_default() -> None:
    raw = json.dumps({"input": "hi"}).encode()
    assert rejected(raw).param == "model"
    assert parse_request(raw, default_model="qwen3").model == "qwen3"


def test_body_that_is_not_json_or_not_an_object_is_400() -> None:
    assert rejected(b"{not json").code == "invalid_json"
    assert "JSON object" in rejected(b"[1, 2]").message


def test_unknown_fields_are_ignored_and_listed() -> None:
    raw = body(future_option={"x": 1}, another=True)
    request = parse_request(raw)
    assert request.model == "m"
    assert unknown_fields(raw) == ["another", "future_option"]


def test_unknown_item_types_are_kept_not_rejected() -> None:
    request = parse_request(body(input=[{"type": "item_reference", "id": "x"}]))
    assert request.items[0].type == "item_reference"


def test_summary_wanted_only_when_asked() -> None:
    assert parse_request(body(reasoning={"summary": "auto"})).wants_reasoning_summary
    assert not parse_request(body(reasoning={"effort": "low"})).wants_reasoning_summary
    assert not parse_request(body(reasoning={"summary": "none"})).wants_reasoning_summary
    assert not parse_request(body()).wants_reasoning_summary


def test_debug_log_names_ignored_fields(caplog: pytest.LogCaptureFixture) -> None:
    # The handler logs what `unknown_fields` returns; here the function itself is pinned.
    with caplog.at_level(logging.DEBUG):
        assert unknown_fields(body(zzz=1)) == ["zzz"]
