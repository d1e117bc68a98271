"""Items one after another: the encoder closes reasoning before the answer or a call opens.

The OpenAI API closes each output item before the next one opens; clients that render items in
order showed our reasoning after the answer when it stayed open. Provider state (the decoder's
`encrypted_content`) is known only at the end, so it rides on the reasoning item if that is
still open, else on one extra reasoning item just before the terminal event.
"""

from __future__ import annotations

from typing import Any

from tests.test_responses_encoder import encode, message, reasoning, types
from wirebridge.events import (
    Completed,
    OutputItemDone,
    OutputTextDelta,
    ReasoningContentDelta,
    ToolCallDelta,
)
from wirebridge.items import CustomToolCall, FunctionCall, Reasoning, ReasoningPart


def done_items(wire: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [e["item"] for e in wire if e["type"] == "response.output_item.done"]


def test_reasoning_closes_when_the_answer_starts() -> None:
    wire, _ = encode(
        [
            ReasoningContentDelta("think"),
            OutputTextDelta("Hel"),
            OutputTextDelta("lo"),
            OutputItemDone(reasoning("think")),
            OutputItemDone(message("Hello")),
            Completed(),
        ]
    )
    assert types(wire) == [
        "response.created",
        "response.in_progress",
        "response.output_item.added",  # reasoning
        "response.content_part.added",
        "response.reasoning_text.delta",
        "response.reasoning_text.done",  # closed before the message opens
        "response.content_part.done",
        "response.output_item.done",
        "response.output_item.added",  # message
        "response.content_part.added",
        "response.output_text.delta",
        "response.output_text.delta",
        "response.output_text.done",
        "response.content_part.done",
        "response.output_item.done",
        "response.completed",
    ]
    items = done_items(wire)
    assert [i["type"] for i in items] == ["reasoning", "message"]
    assert items[0]["content"][0]["text"] == "think"
    assert items[1]["content"][0]["text"] == "Hello"


def test_reasoning_closes_when_a_streamed_call_starts() -> None:
    wire, _ = encode(
        [
            ReasoningContentDelta("plan"),
            ToolCallDelta(0, "call_1", "f", '{"a"'),
            ToolCallDelta(0, "call_1", "f", ":1}"),
            OutputItemDone(reasoning("plan")),
            OutputItemDone(FunctionCall("f", '{"a":1}', "call_1")),
            Completed(),
        ]
    )
    kinds = types(wire)
    assert kinds.index("response.reasoning_text.done") < kinds.index(
        "response.function_call_arguments.delta"
    )
    assert [i["type"] for i in done_items(wire)] == ["reasoning", "function_call"]


def test_reasoning_that_resumes_after_text_is_a_new_item() -> None:
    wire, encoder = encode(
        [
            ReasoningContentDelta("one "),
            OutputTextDelta("A"),
            ReasoningContentDelta("two"),
            OutputTextDelta("B"),
            OutputItemDone(reasoning("one two")),
            OutputItemDone(message("AB")),
            Completed(),
        ]
    )
    items = done_items(wire)
    assert [(i["type"], i["content"][0]["text"]) for i in items] == [
        ("reasoning", "one "),
        ("message", "A"),
        ("reasoning", "two"),
        ("message", "B"),
    ]
    assert [o.id for o in encoder.output] == [i["id"] for i in items]


def test_provider_state_rides_on_the_open_reasoning_item() -> None:
    state = Reasoning(content=(ReasoningPart("hmm"),), encrypted_content="wb1.abc")
    wire, _ = encode(
        [ReasoningContentDelta("hmm"), OutputItemDone(state), Completed()],
    )
    items = done_items(wire)
    assert len(items) == 1 and items[0]["encrypted_content"] == "wb1.abc"


def test_provider_state_known_at_the_end_comes_on_one_last_reasoning_item() -> None:
    state = Reasoning(content=(ReasoningPart("hmm"),), encrypted_content="wb1.abc")
    wire, encoder = encode(
        [
            ReasoningContentDelta("hmm"),
            OutputTextDelta("Hi"),
            OutputItemDone(state),
            OutputItemDone(message("Hi")),
            OutputItemDone(CustomToolCall("call_1", "apply_patch", "*** Begin Patch")),
            Completed(),
        ]
    )
    items = done_items(wire)
    assert [i["type"] for i in items] == ["reasoning", "message", "custom_tool_call", "reasoning"]
    assert "encrypted_content" not in items[0]
    assert items[0]["content"][0]["text"] == "hmm"
    assert items[-1]["encrypted_content"] == "wb1.abc"
    assert items[-1]["content"][0]["text"] == ""  # shown already, not repeated
    assert types(wire)[-2:] == ["response.output_item.done", "response.completed"]
    assert encoder.response.output[-1].encrypted_content == "wb1.abc"  # type: ignore[union-attr]


def test_reasoning_that_comes_whole_after_the_answer_is_added_after_it() -> None:
    wire, _ = encode(
        [
            OutputTextDelta("Hi"),
            OutputItemDone(reasoning("late")),
            OutputItemDone(message("Hi")),
            Completed(),
        ]
    )
    items = done_items(wire)
    assert [(i["type"], i["content"][0]["text"]) for i in items] == [
        ("message", "Hi"),
        ("reasoning", "late"),
    ]


def test_parallel_calls_stream_one_at_a_time_in_index_order() -> None:
    """Interleaved calls (index 1 first, then 0 and 1 alternating): only the call that is next
    in index order streams; the other comes whole after it."""
    wire, _ = encode(
        [
            ToolCallDelta(1, "call_b", "g", '{"b"'),
            ToolCallDelta(0, "call_a", "f", '{"a"'),
            ToolCallDelta(1, "call_b", "g", ":2}"),
            ToolCallDelta(0, "call_a", "f", ":1}"),
            OutputItemDone(FunctionCall("f", '{"a":1}', "call_a")),
            OutputItemDone(FunctionCall("g", '{"b":2}', "call_b")),
            Completed(),
        ]
    )
    deltas = [e["delta"] for e in wire if e["type"] == "response.function_call_arguments.delta"]
    assert deltas == ['{"a"', ":1}", '{"b":2}']
    assert [i["call_id"] for i in done_items(wire)] == ["call_a", "call_b"]
    opened: list[str] = []
    for e in wire:
        if e["type"] == "response.output_item.added":
            assert not opened
            opened.append(e["item"]["id"])
        elif e["type"] == "response.output_item.done":
            opened.remove(e["item"]["id"])
