"""The sans-I/O stream core: SSE framing (D1), chunk decoding (D2-D7), split invariance."""

from __future__ import annotations

import json
from itertools import pairwise
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from wirebridge import dump
from wirebridge.chat.decode import ChatStreamDecoder
from wirebridge.chat.sse import SSEParser
from wirebridge.chat.think import ThinkSplitter
from wirebridge.chat.tools import map_tools
from wirebridge.errors import ProviderError, StreamError
from wirebridge.testing.bodies import chat_chunk, sse_body


def decode(body: bytes, cuts: list[int] | None = None, **kwargs: Any) -> list[dict[str, Any]]:
    """Feed `body` split at `cuts` through parser and decoder; the dumped events."""
    parser, decoder = SSEParser(), ChatStreamDecoder(**kwargs)
    events: list[dict[str, Any]] = []
    bounds = [0, *sorted(set(cuts or [])), len(body)]
    for start, end in pairwise(bounds):
        for data in parser.feed(body[start:end]):
            events += [dump(e) for e in decoder.feed(data)]
    parser.close()
    events += [dump(e) for e in decoder.end_of_stream()]
    return events


def one_call_body(name: str, arguments: str, call_id: str = "c") -> bytes:
    """A turn that makes one tool call, whole in one chunk."""
    call = {"index": 0, "id": call_id, "function": {"name": name, "arguments": arguments}}
    return sse_body(
        [chat_chunk({"tool_calls": [call]}), chat_chunk({}, finish_reason="tool_calls")]
    )


def merged(events: list[dict[str, Any]]) -> list[dict[str, Any]]:
    out: list[dict[str, Any]] = []
    for e in events:
        if out and "delta" in e and out[-1]["type"] == e["type"]:
            out[-1] = {**out[-1], "delta": out[-1]["delta"] + e["delta"]}
        else:
            out.append(e)
    return out


# -- SSE framing -------------------------------------------------------------------------------


@pytest.mark.parametrize("eol", ["\n", "\r", "\r\n"])
def test_sse_line_ends_are_all_accepted(eol: str) -> None:
    body = f"data: a{eol}data: b{eol}{eol}: comment{eol}data:c{eol}{eol}".encode()
    parser = SSEParser()
    assert parser.feed(body) == ["a\nb", "c"]


def test_sse_crlf_split_between_cr_and_lf_is_one_line_end() -> None:
    parser = SSEParser()
    assert parser.feed(b"data: x\r") == []
    assert parser.feed(b"\n\r") == ["x"]
    assert parser.feed(b"\ndata: y\r\n\r\n") == ["y"]


def test_sse_strips_one_leading_bom_even_split() -> None:
    parser = SSEParser()
    assert parser.feed(b"\xef") == []
    assert parser.feed(b"\xbb") == []
    assert parser.feed(b"\xbfdata: x\n\n") == ["x"]
    assert SSEParser().feed(b"\xef\xbb\xbf\xef\xbb\xbfdata: x\n\n") == []  # only one is stripped


def test_sse_dispatches_only_events_with_data() -> None:
    assert SSEParser().feed(b"event: ping\n\nid: 4\nretry: 10\n\ndata\n\n") == [""]


def test_sse_invalid_utf8_is_a_stream_error_even_split_inside_a_character() -> None:
    parser = SSEParser()
    assert parser.feed("data: é".encode()[:-1]) == []
    with pytest.raises(StreamError, match="utf-8"):
        parser.feed(b"\x80\x80\n\n")


def test_sse_multibyte_character_split_across_feeds_is_kept() -> None:
    raw = "data: 🦀 crab\n\n".encode()
    parser = SSEParser()
    out = [d for i in range(len(raw)) for d in parser.feed(raw[i : i + 1])]
    assert out == ["🦀 crab"]


def test_sse_unterminated_event_at_eof_is_discarded() -> None:
    parser = SSEParser()
    assert parser.feed(b"data: x\n") == []
    parser.close()


@settings(max_examples=300, deadline=None)
@given(
    st.lists(
        st.text(
            st.characters(blacklist_categories=["Cs"], blacklist_characters="\r\n"), max_size=12
        ),
        max_size=6,
    ),
    st.sampled_from(["\n", "\r", "\r\n"]),
    st.lists(st.integers(0, 400), max_size=12),
    st.booleans(),
)
def test_sse_events_do_not_depend_on_how_bytes_are_split(
    datas: list[str], eol: str, cuts: list[int], bom: bool
) -> None:
    body = ("\ufeff" if bom else "") + "".join(
        f": keep-alive{eol}data: {d}{eol}{eol}" for d in datas
    )
    raw = body.encode()
    whole = SSEParser().feed(raw)
    parser = SSEParser()
    pieces: list[str] = []
    bounds = [0, *sorted({c % (len(raw) + 1) for c in cuts}), len(raw)]
    for start, end in pairwise(bounds):
        pieces += parser.feed(raw[start:end])
    assert whole == pieces == datas


# -- chunk decoding --------------------------------------------------------------------------


@st.composite
def turns(draw: st.DrawFn) -> bytes:
    """A generated Chat Completions turn: reasoning, text, several tool calls, usage, finish."""
    text = st.text(st.characters(blacklist_categories=["Cs"]), min_size=1, max_size=8)
    chunks: list[dict[str, Any]] = []
    for piece in draw(st.lists(text, max_size=4)):
        field = draw(st.sampled_from(["reasoning_content", "reasoning"]))
        chunks.append(chat_chunk({field: piece}))
    for piece in draw(st.lists(text, max_size=5)):
        chunks.append(chat_chunk({"content": piece}))
    n_calls = draw(st.integers(0, 3))
    fragments = []
    for index in range(n_calls):
        chunks.append(
            chat_chunk(
                {
                    "tool_calls": [
                        {
                            "index": index,
                            "id": f"call_{index}",
                            "type": "function",
                            "function": {"name": f"tool{index}", "arguments": ""},
                        }
                    ]
                }
            )
        )
        args = json.dumps({"q": draw(text)})
        fragments += [(index, args[i : i + 3]) for i in range(0, len(args), 3)]
    order = draw(st.permutations(fragments))
    # fragments of one call stay in order; calls interleave
    per_call = {i: [f for j, f in fragments if j == i] for i in range(n_calls)}
    for index, _ in order:
        piece = per_call[index].pop(0)
        chunks.append(
            chat_chunk({"tool_calls": [{"index": index, "function": {"arguments": piece}}]})
        )
    finish = draw(st.sampled_from(["stop", "tool_calls", "length", "content_filter"]))
    chunks.append(chat_chunk({}, finish_reason=finish))
    if draw(st.booleans()):
        chunks.append(
            chat_chunk(
                usage={"prompt_tokens": 5, "completion_tokens": 7, "total_tokens": 12},
                choices=False,
            )
        )
    return sse_body(chunks, done=draw(st.booleans()))


@settings(max_examples=200, deadline=None)
@given(turns(), st.lists(st.integers(0, 10_000), max_size=20))
def test_events_do_not_depend_on_how_bytes_are_split(body: bytes, cuts: list[int]) -> None:
    whole = decode(body)
    split = decode(body, [c % (len(body) + 1) for c in cuts])
    assert split == whole
    assert whole[-1]["type"] == "completed"
    items = [e["item"] for e in whole if e["type"] == "output_item_done"]
    calls = [i for i in items if i["type"] == "function_call"]
    assert [c["call_id"] for c in calls] == sorted(c["call_id"] for c in calls)
    for call in calls:
        assert isinstance(json.loads(call["arguments"]), dict)


def test_tool_calls_without_index_start_a_new_call_on_a_new_id() -> None:
    body = sse_body(
        [
            chat_chunk(
                {"tool_calls": [{"id": "a", "function": {"name": "f", "arguments": '{"x"'}}]}
            ),
            chat_chunk({"tool_calls": [{"function": {"arguments": ":1}"}}]}),
            chat_chunk({"tool_calls": [{"id": "b", "function": {"name": "g", "arguments": "{}"}}]}),
            chat_chunk({}, finish_reason="tool_calls"),
        ]
    )
    items = [e["item"] for e in decode(body) if e["type"] == "output_item_done"]
    assert [(i["call_id"], i["name"], i["arguments"]) for i in items] == [
        ("a", "f", '{"x":1}'),
        ("b", "g", "{}"),
    ]


def test_repeated_id_and_name_in_every_chunk_are_not_concatenated() -> None:
    """llama-cpp-python repeats id and name in every tool-call chunk (and a legacy field)."""
    head = {"index": 0, "id": "c1", "type": "function"}
    body = sse_body(
        [
            chat_chunk(
                {
                    "function_call": {"name": "w", "arguments": ""},
                    "tool_calls": [{**head, "function": {"name": "w", "arguments": '{"a":'}}],
                }
            ),
            chat_chunk(
                {
                    "function_call": {"name": "w", "arguments": "1}"},
                    "tool_calls": [{**head, "function": {"name": "w", "arguments": "1}"}}],
                }
            ),
            chat_chunk({}, finish_reason="tool_calls"),
        ]
    )
    (item,) = [e["item"] for e in decode(body) if e["type"] == "output_item_done"]
    assert (item["call_id"], item["name"], item["arguments"]) == ("c1", "w", '{"a":1}')


def test_every_tool_call_entry_of_one_chunk_is_read() -> None:
    body = sse_body(
        [
            chat_chunk(
                {
                    "tool_calls": [
                        {"index": 0, "id": "a", "function": {"name": "f", "arguments": "{}"}},
                        {"index": 1, "id": "b", "function": {"name": "g", "arguments": "{}"}},
                    ]
                }
            ),
            chat_chunk({}, finish_reason="tool_calls"),
        ]
    )
    names = [e["item"]["name"] for e in decode(body) if e["type"] == "output_item_done"]
    assert names == ["f", "g"]


def test_reasoning_is_emitted_before_content_of_the_same_chunk() -> None:
    body = sse_body(
        [
            chat_chunk({"content": "A", "reasoning_content": "R"}),
            chat_chunk({}, finish_reason="stop"),
        ]
    )
    assert [e["type"] for e in decode(body)][:2] == ["reasoning_content_delta", "output_text_delta"]


def test_only_the_first_reasoning_field_of_a_chunk_counts() -> None:
    """vLLM sends the same text as `reasoning` and `reasoning_content`: read it once."""
    body = sse_body(
        [
            chat_chunk({"reasoning": "R", "reasoning_content": "R"}),
            chat_chunk({}, finish_reason="stop"),
        ]
    )
    assert [e for e in decode(body) if e["type"] == "reasoning_content_delta"] == [
        {"type": "reasoning_content_delta", "delta": "R"}
    ]


def test_reasoning_details_text_is_reasoning() -> None:
    body = sse_body(
        [
            chat_chunk(
                {
                    "reasoning_details": [
                        {"type": "reasoning.text", "text": "x"},
                        {"type": "reasoning.text", "text": "y"},
                    ]
                }
            ),
            chat_chunk({}, finish_reason="stop"),
        ]
    )
    assert decode(body)[0] == {"type": "reasoning_content_delta", "delta": "xy"}


def test_usage_on_the_finish_chunk_is_read() -> None:
    usage = {"prompt_tokens": 3, "completion_tokens": 1, "total_tokens": 4}
    body = sse_body([chat_chunk({"content": "a"}, finish_reason="stop", usage=usage)])
    assert decode(body)[-1]["token_usage"]["total_tokens"] == 4


def test_error_object_is_a_provider_error_with_its_message_and_code() -> None:
    body = sse_body(
        ['{"error": {"message": "context too long", "code": "context_length_exceeded"}}']
    )
    with pytest.raises(ProviderError, match="context too long") as info:
        decode(body)
    assert info.value.code == "context_length_exceeded"


def test_custom_tool_reply_that_ignores_the_schema_passes_its_text() -> None:
    tools = map_tools([{"type": "custom", "name": "apply_patch", "description": "d"}])
    body = one_call_body("apply_patch", "*** Begin Patch")
    (event,) = [e for e in decode(body, tool_map=tools) if e["type"] == "output_item_done"]
    assert event["item"] == {
        "type": "custom_tool_call",
        "call_id": "c",
        "name": "apply_patch",
        "input": "*** Begin Patch",
    }


def test_chunks_after_completion_are_ignored() -> None:
    decoder = ChatStreamDecoder()
    assert [e.type for e in decoder.feed("[DONE]")] == ["completed"]
    assert decoder.feed(json.dumps(chat_chunk({"content": "late"}))) == []
    assert decoder.end_of_stream() == []


# -- think tags (D7) -------------------------------------------------------------------------


def _split_think(mode: str, pieces: list[str]) -> tuple[str, str]:
    splitter = ThinkSplitter(mode)  # type: ignore[arg-type]
    reasoning, text = "", ""
    for piece in pieces:
        r, t = splitter.feed(piece)
        reasoning, text = reasoning + r, text + t
    r, t = splitter.flush()
    return reasoning + r, text + t


@settings(max_examples=300, deadline=None)
@given(
    st.text(max_size=10).filter(lambda s: "</think>" not in s and "<" not in s),
    st.text(max_size=10),
    st.lists(st.integers(1, 30), max_size=8),
)
def test_think_tags_split_anywhere_give_the_same_result(
    thought: str, answer: str, cuts: list[int]
) -> None:
    content = f"  <think>{thought}</think>\n\n{answer}"
    bounds = [0, *sorted({c % (len(content) + 1) for c in cuts}), len(content)]
    pieces = [content[a:b] for a, b in pairwise(bounds)]
    assert _split_think("on", pieces) == (thought, answer.lstrip())


def test_think_tags_on_leave_content_alone_without_a_leading_tag() -> None:
    assert _split_think("on", ["Hello <think>x</think>"]) == ("", "Hello <think>x</think>")
    assert _split_think("on", ["<th"]) == ("", "<th")


def test_stream_ending_inside_the_think_block_yields_reasoning_only() -> None:
    assert _split_think("preopened", ["still thinking </thi"]) == ("still thinking </thi", "")
    body = sse_body([chat_chunk({"content": "<think>hmm"}), chat_chunk({}, finish_reason="length")])
    events = decode(body, think_tags="on")
    items = [e["item"]["type"] for e in events if e["type"] == "output_item_done"]
    assert items == ["reasoning"]


# -- provider state echoed through encrypted_content -------------------------------------------


def test_openrouter_reasoning_details_round_trip_through_encrypted_content() -> None:
    from wirebridge import Prompt, build_chat_payload

    body = sse_body(
        [
            chat_chunk(
                {
                    "reasoning_details": [
                        {"type": "reasoning.text", "index": 0, "text": "Let ", "format": "x"}
                    ]
                }
            ),
            chat_chunk(
                {
                    "reasoning_details": [
                        {"type": "reasoning.text", "index": 0, "text": "me", "signature": "sig"}
                    ]
                }
            ),
            chat_chunk(
                {
                    "tool_calls": [
                        {"index": 0, "id": "c1", "function": {"name": "f", "arguments": "{}"}}
                    ]
                }
            ),
            chat_chunk({}, finish_reason="tool_calls"),
        ]
    )
    items = [e["item"] for e in decode(body) if e["type"] == "output_item_done"]
    reasoning, call = items
    assert reasoning["content"] == [{"type": "reasoning_text", "text": "Let me"}]
    assert reasoning["encrypted_content"].startswith("wb1.")
    history = [
        {"type": "message", "role": "user", "content": "go"},
        reasoning,
        call,
        {"type": "function_call_output", "call_id": "c1", "output": "ok"},
    ]
    assistant = build_chat_payload(Prompt("s", history), "m")["messages"][2]
    assert assistant["reasoning_details"] == [
        {"type": "reasoning.text", "index": 0, "text": "Let me", "format": "x", "signature": "sig"}
    ]


def test_gemini_thought_signature_is_echoed_on_its_tool_call() -> None:
    from wirebridge import Prompt, build_chat_payload

    extra = {"google": {"thought_signature": "SIG=="}}
    body = sse_body(
        [
            chat_chunk(
                {
                    "tool_calls": [
                        {
                            "index": 0,
                            "id": "g1",
                            "function": {"name": "f", "arguments": "{}"},
                            "extra_content": extra,
                        }
                    ]
                }
            ),
            chat_chunk({}, finish_reason="tool_calls"),
        ]
    )
    items = [e["item"] for e in decode(body) if e["type"] == "output_item_done"]
    assert [i["type"] for i in items] == ["reasoning", "function_call"]
    history = [
        {"type": "message", "role": "user", "content": "go"},
        *items,
        {"type": "function_call_output", "call_id": "g1", "output": "ok"},
    ]
    call = build_chat_payload(Prompt("s", history), "m")["messages"][2]["tool_calls"][0]
    assert call["extra_content"] == extra


def test_foreign_encrypted_content_is_left_alone() -> None:
    from wirebridge import Prompt, build_chat_payload

    history = [
        {"type": "message", "role": "user", "content": "go"},
        {"type": "reasoning", "summary": [], "encrypted_content": "gAAAA-openai-ciphertext"},
        {"type": "function_call", "name": "f", "arguments": "{}", "call_id": "c"},
    ]
    msg = build_chat_payload(Prompt("s", history), "m")["messages"][2]
    assert "reasoning_details" not in msg and "reasoning" not in msg


# -- opt-in live tool-call deltas ------------------------------------------------------------


def test_streamed_call_deltas_carry_one_id_from_first_piece_to_the_item() -> None:
    body = sse_body(
        [
            chat_chunk(
                {"tool_calls": [{"index": 0, "function": {"name": "f", "arguments": '{"a"'}}]}
            ),
            chat_chunk({"tool_calls": [{"index": 0, "function": {"arguments": ":1}"}}]}),
            chat_chunk({}, finish_reason="tool_calls"),
        ]
    )
    events = decode(body, stream_tool_calls=True)
    deltas = [e for e in events if e["type"] == "tool_call_delta"]
    (item,) = [e["item"] for e in events if e["type"] == "output_item_done"]
    assert [d["delta"] for d in deltas] == ['{"a"', ":1}"]
    assert {d["call_id"] for d in deltas} == {item["call_id"]}  # no id from the server: made once
    assert item["arguments"] == '{"a":1}'
    plain = decode(body)  # without the option: the same events, less the call deltas
    assert [e["type"] for e in plain] == [
        e["type"] for e in events if e["type"] != "tool_call_delta"
    ]


def test_arguments_before_the_name_are_streamed_once_the_name_is_known() -> None:
    body = sse_body(
        [
            chat_chunk({"tool_calls": [{"index": 0, "id": "c", "function": {"arguments": "{"}}]}),
            chat_chunk({"tool_calls": [{"index": 0, "function": {"name": "g", "arguments": "}"}}]}),
            chat_chunk({}, finish_reason="tool_calls"),
        ]
    )
    deltas = [e for e in decode(body, stream_tool_calls=True) if e["type"] == "tool_call_delta"]
    assert [(d["name"], d["delta"]) for d in deltas] == [("g", "{}")]


def test_emulated_custom_tools_are_not_streamed_as_call_deltas() -> None:
    tools = map_tools([{"type": "custom", "name": "apply_patch", "description": "d"}])
    body = one_call_body("apply_patch", '{"input":"x"}')
    events = decode(body, tool_map=tools, stream_tool_calls=True)
    assert not [e for e in events if e["type"] == "tool_call_delta"]


async def _aggregate_drops_call_deltas() -> list[str]:
    from wirebridge import aggregate
    from wirebridge.events import Completed, ToolCallDelta

    async def events() -> Any:
        yield ToolCallDelta(0, "c", "f", "{}")
        yield Completed()

    return [e.type async for e in aggregate(events(), "aggregated")]


@pytest.mark.anyio
async def test_aggregated_mode_drops_call_deltas() -> None:
    assert await _aggregate_drops_call_deltas() == ["completed"]


# -- D1: a CRLF split between two reads inside a multi-line event ------------------------------


def test_sse_crlf_split_inside_a_two_data_line_event_keeps_one_event() -> None:
    """The CR of the first data line ends one read, its LF starts the next: that LF is the
    second half of one line end, not a blank line that would dispatch half the event."""
    parser = SSEParser()
    assert parser.feed(b'data: {"a":\r') == []
    assert parser.feed(b"\ndata: 1}\r\n\r\n") == ['{"a":\n1}']


def test_sse_crlf_split_with_an_empty_read_between_cr_and_lf() -> None:
    parser = SSEParser()
    assert parser.feed(b"data: one\r") == []
    assert parser.feed(b"") == []
    assert parser.feed(b"\ndata: two\r\n\r\n") == ["one\ntwo"]


MULTI_LINE_CRLF = b"data: one\r\ndata: two\r\ndata: three\r\n\r\ndata: four\r\n\r\n"


@pytest.mark.parametrize("first", range(1, len(MULTI_LINE_CRLF)))
def test_sse_multi_line_crlf_event_survives_any_two_cuts(first: int) -> None:
    """Every cut, and every second cut after it: the same two events, the lines joined by LF."""
    for second in range(first, len(MULTI_LINE_CRLF) + 1):
        parser = SSEParser()
        pieces = [MULTI_LINE_CRLF[:first], MULTI_LINE_CRLF[first:second], MULTI_LINE_CRLF[second:]]
        out = [data for piece in pieces for data in parser.feed(piece)]
        assert out == ["one\ntwo\nthree", "four"], (first, second)


def test_chat_chunk_spread_over_two_crlf_data_lines_decodes_once() -> None:
    """Through the decoder too: a chunk whose JSON spans two data lines is one delta."""
    body = (
        b'data: {"choices":[{"index":0,"delta":{"content":"hi"}}\r\n'
        b"data: ]}\r\n\r\n"
        b'data: {"choices":[{"index":0,"delta":{},"finish_reason":"stop"}]}\r\n\r\n'
        b"data: [DONE]\r\n\r\n"
    )
    cr = body.index(b"\r\n")
    for cuts in ([], [cr + 1], list(range(1, len(body)))):
        events = decode(body, cuts)
        assert [e["type"] for e in events] == ["output_text_delta", "output_item_done", "completed"]
        assert events[0]["delta"] == "hi"


def test_sse_invalid_utf8_in_the_unterminated_tail_is_a_stream_error_at_close() -> None:
    """D1 at EOF: bytes after the last line end are discarded, but must still be UTF-8."""
    parser = SSEParser()
    assert parser.feed(b"data: x\n\n\xff\xfe") == ["x"]
    with pytest.raises(StreamError, match="utf-8"):
        parser.close()


@pytest.mark.parametrize(
    ("delta", "reasoning"),
    [
        ({"reasoning_content": "first", "reasoning": "second"}, "first"),
        ({"reasoning": "first", "reasoning_details": [{"text": "second"}]}, "first"),
        ({"reasoning": {"text": "first", "content": "second"}}, "first"),
        ({"reasoning": {"content": "only"}}, "only"),
    ],
)
def test_the_first_present_reasoning_field_wins_when_they_differ(
    delta: dict[str, Any], reasoning: str
) -> None:
    """D2: reasoning_content, then reasoning (string, or the object's text else content), then
    reasoning_details[].text; the first present is the chunk's reasoning, the rest ignored."""
    body = sse_body([chat_chunk(delta), chat_chunk({}, finish_reason="stop")])
    deltas = [e["delta"] for e in decode(body) if e["type"] == "reasoning_content_delta"]
    assert deltas == [reasoning]
