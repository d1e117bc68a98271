"""The pure Responses-SSE encoder, with plain data: events in, wire events out."""

from __future__ import annotations

import itertools
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from wirebridge.events import (
    Completed,
    Event,
    Incomplete,
    OutputItemDone,
    OutputTextDelta,
    ReasoningContentDelta,
    TokenUsage,
)
from wirebridge.items import (
    CustomToolCall,
    FunctionCall,
    LocalShellCall,
    Message,
    OutputText,
    Reasoning,
    ReasoningPart,
)
from wirebridge.responses.encoder import ResponsesEncoder
from wirebridge.responses.testing import (
    check_stream_invariants,
    parse_sse,
    validate_events,
    validate_response,
)
from wirebridge.wire import Response, to_json


def shell() -> Response:
    return Response(id="resp_test", created_at=1700000000, model="m")


def counter_ids() -> Any:
    counter = itertools.count(1)
    return lambda prefix: f"{prefix}_{next(counter)}"


def encode(events: list[Event], **options: Any) -> tuple[list[dict[str, Any]], ResponsesEncoder]:
    encoder = ResponsesEncoder(shell(), new_id=counter_ids(), **options)
    encoder.start()
    for event in events:
        encoder.feed(event)
    wire = parse_sse(encoder.take())
    validate_events(wire)
    check_stream_invariants(wire)
    return wire, encoder


def message(text: str) -> Message:
    return Message("assistant", (OutputText(text),))


def reasoning(text: str) -> Reasoning:
    return Reasoning(content=(ReasoningPart(text),))


def types(wire: list[dict[str, Any]]) -> list[str]:
    return [e["type"] for e in wire]


def test_text_answer_streams_the_full_event_sequence() -> None:
    wire, encoder = encode(
        [
            OutputTextDelta("Hel"),
            OutputTextDelta("lo"),
            OutputItemDone(message("Hello")),
            Completed("chatcmpl-1", None),
        ]
    )
    assert types(wire) == [
        "response.created",
        "response.in_progress",
        "response.output_item.added",
        "response.content_part.added",
        "response.output_text.delta",
        "response.output_text.delta",
        "response.output_text.done",
        "response.content_part.done",
        "response.output_item.done",
        "response.completed",
    ]
    assert [e["sequence_number"] for e in wire] == list(range(10))
    added, delta = wire[2], wire[4]
    assert added["item"] == {
        "id": "msg_1",
        "type": "message",
        "status": "in_progress",
        "role": "assistant",
        "content": [],
    }
    assert (delta["item_id"], delta["output_index"], delta["content_index"]) == ("msg_1", 0, 0)
    final = wire[-1]["response"]
    assert final["status"] == "completed"
    assert final["output"][0]["content"][0]["text"] == "Hello"
    assert final["output"][0]["status"] == "completed"
    assert encoder.finished and to_json(encoder.response) == final
    validate_response(final)


def test_created_and_in_progress_carry_the_response_in_progress() -> None:
    wire, _ = encode([OutputItemDone(message("x")), Completed()])
    for event in wire[:2]:
        assert event["response"]["status"] == "in_progress"
        assert event["response"]["output"] == []
        validate_response(event["response"])


def test_reasoning_text_and_tool_calls_get_consistent_indices_and_prefixed_ids() -> None:
    call = FunctionCall("get_weather", '{"city":"Paris"}', "call_a")
    ns_call = FunctionCall("spawn", "{}", "call_b", namespace="agents")
    wire, _ = encode(
        [
            ReasoningContentDelta("Let me "),
            ReasoningContentDelta("think."),
            OutputTextDelta("Checking."),
            OutputItemDone(reasoning("Let me think.")),
            OutputItemDone(message("Checking.")),
            OutputItemDone(call),
            OutputItemDone(ns_call),
            Completed(),
        ]
    )
    added = [e for e in wire if e["type"] == "response.output_item.added"]
    assert [(e["output_index"], e["item"]["type"], e["item"]["id"]) for e in added] == [
        (0, "reasoning", "rs_1"),
        (1, "message", "msg_2"),
        (2, "function_call", "fc_3"),
        (3, "function_call", "fc_4"),
    ]
    reasoning_delta = next(e for e in wire if e["type"] == "response.reasoning_text.delta")
    assert (reasoning_delta["item_id"], reasoning_delta["content_index"]) == ("rs_1", 0)
    args = [e for e in wire if e["type"].startswith("response.function_call_arguments")]
    assert [(e["type"], e["output_index"]) for e in args] == [
        ("response.function_call_arguments.delta", 2),
        ("response.function_call_arguments.done", 2),
        ("response.function_call_arguments.delta", 3),
        ("response.function_call_arguments.done", 3),
    ]
    final = wire[-1]["response"]["output"]
    assert final[0]["content"] == [{"type": "reasoning_text", "text": "Let me think."}]
    assert final[2] == {
        "id": "fc_3",
        "type": "function_call",
        "status": "completed",
        "call_id": "call_a",
        "name": "get_weather",
        "arguments": '{"city":"Paris"}',
    }
    assert final[3]["namespace"] == "agents"
    validate_response(wire[-1]["response"])


def test_every_item_is_added_before_any_of_its_deltas() -> None:
    wire, _ = encode(
        [
            ReasoningContentDelta("r"),
            OutputTextDelta("t"),
            OutputItemDone(reasoning("r")),
            OutputItemDone(message("t")),
            Completed(),
        ]
    )
    seen_added: set[str] = set()
    for event in wire:
        if event["type"] == "response.output_item.added":
            seen_added.add(event["item"]["id"])
        elif event["type"].endswith(".delta"):
            assert event["item_id"] in seen_added, event


def test_custom_tool_call_streams_its_input() -> None:
    call = CustomToolCall("call_p", "apply_patch", "*** Begin Patch\n*** End Patch")
    wire, _ = encode([OutputItemDone(call), Completed()])
    assert types(wire)[2:-1] == [
        "response.output_item.added",
        "response.custom_tool_call_input.delta",
        "response.custom_tool_call_input.done",
        "response.output_item.done",
    ]
    done = wire[-2]["item"]
    assert done["id"].startswith("ctc_")
    assert (done["type"], done["call_id"], done["name"]) == (
        "custom_tool_call",
        "call_p",
        "apply_patch",
    )
    assert done["input"] == "*** Begin Patch\n*** End Patch"
    assert wire[4]["input"] == done["input"]


def test_tool_call_with_empty_arguments_sends_no_delta() -> None:
    wire, _ = encode([OutputItemDone(FunctionCall("ping", "", "c1")), Completed()])
    assert "response.function_call_arguments.delta" not in types(wire)
    assert next(e for e in wire if e["type"].endswith("arguments.done"))["arguments"] == ""


def test_usage_maps_cached_and_reasoning_tokens() -> None:
    usage = TokenUsage(
        input_tokens=100,
        cached_input_tokens=40,
        output_tokens=30,
        reasoning_output_tokens=12,
        total_tokens=130,
    )
    wire, _ = encode([OutputItemDone(message("x")), Completed("id", usage)])
    assert wire[-1]["response"]["usage"] == {
        "input_tokens": 100,
        "input_tokens_details": {"cached_tokens": 40, "cache_write_tokens": 0},
        "output_tokens": 30,
        "output_tokens_details": {"reasoning_tokens": 12},
        "total_tokens": 130,
    }


def test_no_usage_from_upstream_leaves_usage_null() -> None:
    wire, _ = encode([OutputItemDone(message("x")), Completed()])
    assert wire[-1]["response"]["usage"] is None


def test_incomplete_ends_with_response_incomplete_and_its_reason() -> None:
    wire, _ = encode(
        [
            OutputTextDelta("cut"),
            OutputItemDone(message("cut")),
            Incomplete("max_output_tokens"),
            Completed(),
        ]
    )
    assert wire[-1]["type"] == "response.incomplete"
    assert wire[-1]["response"]["status"] == "incomplete"
    assert wire[-1]["response"]["incomplete_details"] == {"reason": "max_output_tokens"}
    assert "response.completed" not in types(wire)


def test_failure_mid_stream_ends_with_one_response_failed() -> None:
    encoder = ResponsesEncoder(shell(), new_id=counter_ids())
    encoder.start()
    encoder.feed(OutputTextDelta("partial"))
    encoder.fail("server_error", "upstream broke")
    encoder.feed(OutputTextDelta("ignored"))
    encoder.feed(Completed())
    encoder.fail("server_error", "twice")
    wire = parse_sse(encoder.take())
    validate_events(wire)
    check_stream_invariants(wire)
    assert types(wire)[-1] == "response.failed"
    assert sum(t == "response.failed" for t in types(wire)) == 1
    failed = wire[-1]["response"]
    assert failed["status"] == "failed"
    assert failed["error"] == {"code": "server_error", "message": "upstream broke", "param": None}
    assert failed["output"][0]["status"] == "incomplete"  # the open message, as far as it got
    assert encoder.finished


def test_failure_before_any_output_still_opens_the_stream() -> None:
    encoder = ResponsesEncoder(shell(), new_id=counter_ids())
    encoder.fail("rate_limit_exceeded", "slow down")
    wire = parse_sse(encoder.take())
    assert types(wire) == ["response.created", "response.in_progress", "response.failed"]


def test_items_reported_whole_are_streamed_as_one_delta() -> None:
    wire, _ = encode(
        [OutputItemDone(reasoning("thought")), OutputItemDone(message("answer")), Completed()]
    )
    text = [e["delta"] for e in wire if e["type"] == "response.output_text.delta"]
    thought = [e["delta"] for e in wire if e["type"] == "response.reasoning_text.delta"]
    assert (text, thought) == (["answer"], ["thought"])


def test_reasoning_summary_mirrors_the_reasoning_when_asked() -> None:
    wire, _ = encode(
        [
            ReasoningContentDelta("a"),
            ReasoningContentDelta("b"),
            OutputItemDone(reasoning("ab")),
            Completed(),
        ],
        reasoning_summary=True,
    )
    kinds = types(wire)
    assert kinds.index("response.reasoning_summary_part.added") < kinds.index(
        "response.reasoning_summary_text.delta"
    )
    summary_deltas = [e["delta"] for e in wire if e["type"].endswith("summary_text.delta")]
    assert summary_deltas == ["a", "b"]
    item = wire[-2]["item"]
    assert item["summary"] == [{"type": "summary_text", "text": "ab"}]
    assert item["content"] == [{"type": "reasoning_text", "text": "ab"}]


def test_reasoning_summary_off_sends_no_summary_events() -> None:
    wire, _ = encode([ReasoningContentDelta("a"), OutputItemDone(reasoning("a")), Completed()])
    assert not [t for t in types(wire) if "summary" in t]
    assert wire[-2]["item"]["summary"] == []


def test_a_summary_that_comes_whole_travels_on_the_done_item() -> None:
    wire, _ = encode([OutputItemDone(Reasoning(summary=("sum",))), Completed()])
    assert wire[-2]["item"]["summary"] == [{"type": "summary_text", "text": "sum"}]


def test_encrypted_content_travels_on_the_done_item() -> None:
    item = Reasoning(content=(ReasoningPart("r"),), encrypted_content="opaque-token")
    wire, _ = encode([ReasoningContentDelta("r"), OutputItemDone(item), Completed()])
    assert wire[-2]["item"]["encrypted_content"] == "opaque-token"


def test_other_items_are_added_then_done() -> None:
    shell_call = LocalShellCall(
        {"type": "exec", "command": ["ls"], "env": {}}, "completed", "call_l"
    )
    wire, _ = encode([OutputItemDone(shell_call), Completed()])
    assert types(wire)[2:4] == ["response.output_item.added", "response.output_item.done"]
    assert wire[3]["item"]["call_id"] == "call_l"


def test_frames_off_builds_the_same_response_without_bytes() -> None:
    events: list[Event] = [
        ReasoningContentDelta("r"),
        OutputTextDelta("t"),
        OutputItemDone(reasoning("r")),
        OutputItemDone(message("t")),
        OutputItemDone(FunctionCall("f", "{}", "c")),
        Completed("x", TokenUsage(1, 0, 2, 0, 3)),
    ]
    streamed, _ = encode(events)
    quiet = ResponsesEncoder(shell(), new_id=counter_ids(), frames=False)
    for event in events:
        quiet.feed(event)
    assert quiet.take() == b""
    assert to_json(quiet.response) == streamed[-1]["response"]
    validate_response(to_json(quiet.response))


def test_text_with_quotes_and_unicode_is_escaped_in_the_fast_path() -> None:
    tricky = 'He said "hi"\n\\ \u2028 ✓ </script>'
    wire, _ = encode([OutputTextDelta(tricky), OutputItemDone(message(tricky)), Completed()])
    assert next(e for e in wire if e["type"] == "response.output_text.delta")["delta"] == tricky


# -- property: any decoder-shaped stream keeps the wire rules -----------------------------------

texts = st.text(min_size=1, max_size=8)
deltas = st.lists(
    st.one_of(texts.map(OutputTextDelta), texts.map(ReasoningContentDelta)), max_size=12
)
calls = st.lists(
    st.tuples(st.booleans(), st.text(min_size=1, max_size=5), st.text(max_size=12), st.booleans()),
    max_size=3,
)


@settings(max_examples=200, deadline=None)
@given(
    deltas=deltas,
    calls=calls,
    incomplete=st.booleans(),
    summary=st.booleans(),
    usage=st.booleans(),
)
def test_any_decoder_stream_keeps_the_wire_rules(
    deltas: list[Event],
    calls: list[tuple[bool, str, str, bool]],
    incomplete: bool,
    summary: bool,
    usage: bool,
) -> None:
    # Shaped like the decoder's output (D4): deltas, then reasoning, message, calls, terminal.
    events: list[Event] = list(deltas)
    text = "".join(e.delta for e in deltas if isinstance(e, OutputTextDelta))
    thought = "".join(e.delta for e in deltas if isinstance(e, ReasoningContentDelta))
    if thought:
        events.append(OutputItemDone(reasoning(thought)))
    if text:
        events.append(OutputItemDone(message(text)))
    for i, (custom, name, payload, ns) in enumerate(calls):
        if custom:
            events.append(OutputItemDone(CustomToolCall(f"call_{i}", name, payload)))
        else:
            namespace = "ns" if ns else None
            events.append(OutputItemDone(FunctionCall(name, payload, f"call_{i}", namespace)))
    if incomplete:
        events.append(Incomplete("content_filter"))
    events.append(Completed("", TokenUsage(3, 1, 2, 1, 5) if usage else None))

    wire, encoder = encode(events, reasoning_summary=summary)
    final = check_stream_invariants(wire)
    validate_response(final)
    assert final["status"] == ("incomplete" if incomplete else "completed")
    assert final == to_json(encoder.response)
    # Items one after another: each run of text or of reasoning is an item of its own, closed
    # before the next one is added.
    runs = [k for i, k in enumerate(map(type, deltas)) if i == 0 or k is not type(deltas[i - 1])]
    assert len(final["output"]) == len(runs) + len(calls)
    assert [o["type"] for o in final["output"][: len(runs)]] == [
        "message" if k is OutputTextDelta else "reasoning" for k in runs
    ]
    opened: list[str] = []
    for e in wire:
        if e["type"] == "response.output_item.added":
            assert not opened, f"{e['item']['id']} added while {opened} is open"
            opened.append(e["item"]["id"])
        elif e["type"] == "response.output_item.done":
            opened.remove(e["item"]["id"])
    said = [o["content"][0]["text"] for o in final["output"] if o["type"] == "message"]
    assert "".join(said) == text
    thought_items = [o for o in final["output"] if o["type"] == "reasoning"]
    assert "".join(o["content"][0]["text"] for o in thought_items) == thought
    call_ids = [o["call_id"] for o in final["output"] if "call_id" in o]
    assert call_ids == [f"call_{i}" for i in range(len(calls))]
