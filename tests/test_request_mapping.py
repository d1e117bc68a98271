"""Request mapping beyond the vectors: tool-call pairing (a property), options, bad input."""

from __future__ import annotations

import json
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from wirebridge import Prompt, Provider, build_chat_payload
from wirebridge.errors import InputError

CALL_IDS = [f"c{i}" for i in range(6)]


def _user(text: str) -> dict[str, Any]:
    return {"type": "message", "role": "user", "content": [{"type": "input_text", "text": text}]}


def _assistant(text: str) -> dict[str, Any]:
    return {
        "type": "message",
        "role": "assistant",
        "content": [{"type": "output_text", "text": text}],
    }


@st.composite
def histories(draw: st.DrawFn) -> list[dict[str, Any]]:
    """Histories as clients really send them, and broken ones: lost outputs, orphans, repeats."""
    fresh = iter(f"call_{i}" for i in range(1000))
    issued: list[str] = []
    items: list[dict[str, Any]] = []
    for _ in range(draw(st.integers(0, 14))):
        kind = draw(
            st.sampled_from(["user", "assistant", "reasoning", "call", "custom", "output", "web"])
        )
        text = draw(st.text("abc ", max_size=4))
        if kind == "user":
            items.append(_user(text))
        elif kind == "assistant":
            items.append(_assistant(text))
        elif kind == "reasoning":
            items.append(
                {
                    "type": "reasoning",
                    "summary": [],
                    "content": [{"type": "reasoning_text", "text": text}],
                }
            )
        elif kind == "call":
            call_id = next(fresh)
            issued.append(call_id)
            items.append(
                {"type": "function_call", "name": "f", "arguments": "{}", "call_id": call_id}
            )
        elif kind == "custom":
            call_id = next(fresh)
            issued.append(call_id)
            items.append(
                {"type": "custom_tool_call", "name": "p", "input": text, "call_id": call_id}
            )
        elif kind == "output":
            pool = [*issued, "ghost"]
            call_id = draw(st.sampled_from(pool))
            kind_out = draw(st.sampled_from(["function_call_output", "custom_tool_call_output"]))
            items.append({"type": kind_out, "call_id": call_id, "output": f"out-{call_id}-{text}"})
        else:
            items.append({"type": "web_search_call", "id": "ws", "status": "completed"})
    return items


def assert_tool_calls_paired(messages: list[dict[str, Any]]) -> None:
    """Every tool message answers a call of the assistant message right before its run, and
    every call of an assistant message that is followed by anything is answered."""
    i = 0
    while i < len(messages):
        msg = messages[i]
        if msg["role"] == "tool":
            raise AssertionError(f"tool message at {i} follows no assistant tool_calls message")
        if msg["role"] == "assistant" and msg.get("tool_calls"):
            ids = [c["id"] for c in msg["tool_calls"]]
            j = i + 1
            answered: list[str] = []
            while j < len(messages) and messages[j]["role"] == "tool":
                answered.append(messages[j]["tool_call_id"])
                j += 1
            assert all(a in ids for a in answered), f"tool answer for an unknown call at {i}"
            assert len(answered) == len(set(answered)), "a call answered twice"
            if j < len(messages) or answered:
                assert sorted(answered) == sorted(ids), f"calls left unanswered at {i}"
            i = j
            continue
        i += 1


@settings(max_examples=400, deadline=None)
@given(histories())
def test_payload_never_breaks_tool_call_pairing(items: list[dict[str, Any]]) -> None:
    payload = build_chat_payload(Prompt("sys", items), model="m", provider=Provider())
    messages = payload["messages"][1:]
    assert_tool_calls_paired(messages)
    # Nothing is silently dropped: every output's text reaches the payload somewhere.
    text = json.dumps(messages)
    for item in items:
        if item["type"].endswith("_output"):
            assert json.dumps(item["output"])[1:-1] in text


def test_call_without_output_gets_aborted_answer_when_conversation_moved_on() -> None:
    items = [
        _user("go"),
        {"type": "function_call", "name": "f", "arguments": "{}", "call_id": "a"},
        {"type": "function_call", "name": "f", "arguments": "{}", "call_id": "b"},
        {"type": "function_call_output", "call_id": "a", "output": "A"},
        _user("next"),
    ]
    messages = build_chat_payload(Prompt("s", items), "m")["messages"]
    assert messages[3] == {"role": "tool", "tool_call_id": "a", "content": "A"}
    assert messages[4] == {"role": "tool", "tool_call_id": "b", "content": "aborted"}
    assert messages[5]["role"] == "user"


def test_output_without_its_call_becomes_user_message_naming_the_call() -> None:
    items = [_user("go"), {"type": "function_call_output", "call_id": "zz", "output": "late"}]
    messages = build_chat_payload(Prompt("s", items), "m")["messages"]
    assert messages[-1]["role"] == "user"
    assert "zz" in messages[-1]["content"] and "late" in messages[-1]["content"]


def test_orphan_output_inside_a_call_group_waits_until_the_group_is_answered() -> None:
    items = [
        _user("go"),
        {"type": "function_call", "name": "f", "arguments": "{}", "call_id": "a"},
        {"type": "function_call_output", "call_id": "ghost", "output": "G"},
        {"type": "function_call_output", "call_id": "a", "output": "A"},
    ]
    messages = build_chat_payload(Prompt("s", items), "m")["messages"]
    assert [m["role"] for m in messages] == ["system", "user", "assistant", "tool", "user"]
    assert_tool_calls_paired(messages[1:])


def test_tool_output_images_follow_the_tool_messages_as_a_user_message() -> None:
    items = [
        _user("look"),
        {"type": "function_call", "name": "shot", "arguments": "{}", "call_id": "a"},
        {
            "type": "function_call_output",
            "call_id": "a",
            "output": [
                {"type": "input_text", "text": "see image"},
                {"type": "input_image", "image_url": "data:image/png;base64,AA=="},
            ],
        },
    ]
    messages = build_chat_payload(Prompt("s", items), "m")["messages"]
    assert messages[3] == {"role": "tool", "tool_call_id": "a", "content": "see image"}
    assert messages[4]["role"] == "user"
    assert messages[4]["content"][1]["image_url"]["url"] == "data:image/png;base64,AA=="


def test_reasoning_field_follows_the_provider_option() -> None:
    items = [
        _user("u"),
        {"type": "reasoning", "summary": [], "content": [{"type": "reasoning_text", "text": "r"}]},
        {"type": "function_call", "name": "f", "arguments": "{}", "call_id": "a"},
    ]
    deepseek = Provider(reasoning_field="reasoning_content")
    msg = build_chat_payload(Prompt("s", items), "m", deepseek)["messages"][2]
    assert msg["reasoning_content"] == "r" and "reasoning" not in msg
    none = build_chat_payload(Prompt("s", items), "m", Provider(reasoning_field="none"))
    assert "reasoning" not in none["messages"][2]


def test_several_reasoning_items_on_one_anchor_concatenate() -> None:
    def r(text: str) -> dict[str, Any]:
        return {
            "type": "reasoning",
            "summary": [],
            "content": [{"type": "reasoning_text", "text": text}],
        }

    items = [
        _user("u"),
        r("one "),
        r("two"),
        {"type": "function_call", "name": "f", "arguments": "{}", "call_id": "a"},
    ]
    msg = build_chat_payload(Prompt("s", items), "m")["messages"][2]
    assert msg["reasoning"] == "one two"


def test_options_map_to_chat_fields() -> None:
    tools = [{"type": "function", "name": "f", "parameters": {"type": "object", "properties": {}}}]
    prompt = Prompt(
        "s",
        "hi",
        tools,
        tool_choice={"type": "function", "name": "f"},
        parallel_tool_calls=False,
        temperature=0.2,
        top_p=0.9,
        max_output_tokens=64,
        text_format={
            "type": "json_schema",
            "name": "x",
            "schema": {"type": "object"},
            "strict": True,
        },
        reasoning_effort="low",
    )
    payload = build_chat_payload(prompt, "m", Provider(include_usage=False))
    assert payload["tool_choice"] == {"type": "function", "function": {"name": "f"}}
    assert payload["parallel_tool_calls"] is False
    assert payload["temperature"] == 0.2 and payload["top_p"] == 0.9
    assert payload["max_tokens"] == 64
    assert payload["response_format"] == {
        "type": "json_schema",
        "json_schema": {"name": "x", "schema": {"type": "object"}, "strict": True},
    }
    assert payload["reasoning_effort"] == "low"
    assert "stream_options" not in payload


def test_tool_choice_is_not_sent_without_tools() -> None:
    payload = build_chat_payload(
        Prompt("s", "hi", tool_choice="auto", parallel_tool_calls=True), "m"
    )
    assert "tool_choice" not in payload and "parallel_tool_calls" not in payload
    assert payload["stream_options"] == {"include_usage": True}


def test_tools_without_chat_equivalent_are_dropped_and_reported() -> None:
    from wirebridge.chat.tools import map_tools

    tool_map = map_tools([{"type": "web_search"}, {"type": "local_shell"}])
    assert tool_map.chat_tools == []
    assert tool_map.dropped == ["web_search", "local_shell"]


@pytest.mark.parametrize(
    ("item", "field"),
    [
        ({"type": "function_call", "name": "f", "arguments": "{}"}, "call_id"),
        ({"type": "function_call", "call_id": "c", "arguments": "{}"}, "name"),
        (
            {"type": "function_call", "name": "f", "call_id": "c", "arguments": {"a": 1}},
            "arguments",
        ),
        ({"type": "message", "role": "user", "content": 5}, "content"),
        ({"type": "message", "role": "robot", "content": []}, "role"),
        (
            {"type": "message", "role": "user", "content": [{"type": "input_text", "text": 1}]},
            "content[0].text",
        ),
        ({"type": "function_call_output", "call_id": "c"}, "output"),
        ({"type": "custom_tool_call", "call_id": "c", "name": "p"}, "input"),
        ({"type": "local_shell_call", "call_id": "c", "action": "ls"}, "action"),
        ({"type": "reasoning", "summary": "x"}, "summary"),
        ({"content": "no type, no role"}, "type"),
    ],
)
def test_malformed_item_names_its_index_and_field(item: dict[str, Any], field: str) -> None:
    with pytest.raises(InputError) as info:
        Prompt("s", [_user("fine"), item])
    assert info.value.index == 1
    assert info.value.field == field
    assert f"input[1].{field}" in str(info.value)


def test_unknown_item_types_are_kept_but_not_sent() -> None:
    prompt = Prompt(
        "s", [_user("u"), {"type": "image_generation_call", "id": "ig", "result": "..."}]
    )
    assert prompt.input[1].type == "image_generation_call"
    assert len(build_chat_payload(prompt, "m")["messages"]) == 2
