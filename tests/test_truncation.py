"""`truncation: "auto"`, the pure choice of what to drop (responses/truncation.py).

Histories are generated as agent sessions are made: user messages, developer messages,
assistant text, and steps of (reasoning, then one or more calls, then their outputs, in any
order). Whatever the costs and the budget, the cut must never split a call from its output,
never drop an instruction or the last user message, keep a contiguous suffix, drop the oldest
first, and drop no more than needed.
"""

from __future__ import annotations

from collections.abc import Sequence

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from wirebridge.errors import ProviderError, UnexpectedStatusError
from wirebridge.items import (
    CustomToolCall,
    CustomToolCallOutput,
    FunctionCall,
    FunctionCallOutput,
    InputText,
    Item,
    Message,
    OutputText,
    Reasoning,
)
from wirebridge.responses.siblings import call_id_of
from wirebridge.responses.truncating import Overflow, is_overflow, read_overflow
from wirebridge.responses.truncation import allowed_cuts, pinned, truncate


def user(text: str) -> Message:
    return Message("user", (InputText(text),))


def developer(text: str) -> Message:
    return Message("developer", (InputText(text),))


def assistant(text: str) -> Message:
    return Message("assistant", (OutputText(text),))


@st.composite
def step(draw: st.DrawFn, n: int) -> list[Item]:
    """One model step with tool calls: reasoning (maybe), the calls, then their outputs."""
    calls = draw(st.integers(1, 3))
    ids = [f"call_{n}_{j}" for j in range(calls)]
    out: list[Item] = [Reasoning(summary=("thinking",))] if draw(st.booleans()) else []
    custom = draw(st.booleans())
    for cid in ids:
        out.append(
            CustomToolCall(cid, "apply_patch", "*") if custom else FunctionCall("f", "{}", cid)
        )
    order = draw(st.permutations(ids))
    for cid in order:
        output = CustomToolCallOutput(cid, "done") if custom else FunctionCallOutput(cid, "42")
        out.append(output)
        if draw(st.integers(0, 5)) == 0:  # a user interjects between outputs
            out.append(user("and also"))
    return out


@st.composite
def history(draw: st.DrawFn) -> list[Item]:
    items: list[Item] = []
    if draw(st.booleans()):
        items.append(developer("be brief"))
    for n in range(draw(st.integers(0, 8))):
        kind = draw(st.sampled_from(["user", "assistant", "step", "developer"]))
        if kind == "user":
            items.append(user(f"question {n}"))
        elif kind == "assistant":
            items.append(assistant(f"answer {n}"))
        elif kind == "developer":
            items.append(developer(f"note {n}"))
        else:
            items.extend(draw(step(n)))
    if draw(st.booleans()):
        items.append(user("the last question"))
    return items


def costs_for(items: Sequence[Item]) -> st.SearchStrategy[list[int]]:
    return st.lists(st.integers(0, 50), min_size=len(items), max_size=len(items))


@st.composite
def case(draw: st.DrawFn) -> tuple[list[Item], list[int], int]:
    items = draw(history())
    costs = draw(costs_for(items))
    budget = draw(st.integers(0, sum(costs) + 10))
    return items, costs, budget


def _pairs(items: Sequence[Item]) -> dict[str, list[int]]:
    out: dict[str, list[int]] = {}
    for i, item in enumerate(items):
        cid = call_id_of(item)
        if cid is None and isinstance(item, FunctionCallOutput | CustomToolCallOutput):
            cid = item.call_id
        if cid is not None:
            out.setdefault(cid, []).append(i)
    return out


@settings(max_examples=400, deadline=None)
@given(case())
def test_a_cut_never_splits_a_call_from_its_output(c: tuple[list[Item], list[int], int]) -> None:
    items, costs, budget = c
    cut = truncate(items, costs, budget)
    dropped = set(cut.dropped)
    for cid, places in _pairs(items).items():
        assert len({i in dropped for i in places}) == 1, f"{cid} split by {cut.dropped}"


@settings(max_examples=400, deadline=None)
@given(case())
def test_instructions_and_the_last_user_message_are_never_dropped(
    c: tuple[list[Item], list[int], int],
) -> None:
    items, costs, budget = c
    cut = truncate(items, costs, budget)
    assert all(not pinned(items[i]) for i in cut.dropped)
    users = [i for i, it in enumerate(items) if isinstance(it, Message) and it.role == "user"]
    if users:
        assert users[-1] not in cut.dropped
    assert [it for it in items if pinned(it)] == [it for it in cut.kept if pinned(it)]


@settings(max_examples=400, deadline=None)
@given(case())
def test_the_oldest_go_first_and_the_kept_rest_is_contiguous(
    c: tuple[list[Item], list[int], int],
) -> None:
    items, costs, budget = c
    cut = truncate(items, costs, budget)
    # Dropped: every unpinned item before some place k, nothing after it.
    k = max(cut.dropped, default=-1) + 1
    assert cut.dropped == [i for i in range(k) if not pinned(items[i])]
    assert cut.kept == [it for it in items[:k] if pinned(it)] + items[k:]
    # A reasoning item is never left behind without the item it led to.
    assert k == 0 or not isinstance(items[k - 1], Reasoning) or (k - 1) not in cut.dropped


@settings(max_examples=400, deadline=None)
@given(case())
def test_it_drops_no_more_than_needed(c: tuple[list[Item], list[int], int]) -> None:
    items, costs, budget = c
    cut = truncate(items, costs, budget)
    kept_cost = sum(costs) - sum(costs[i] for i in cut.dropped)
    assert cut.cost == kept_cost
    if cut.fits:
        assert kept_cost <= budget
    # No allowed cut dropping fewer items fits.
    for k in allowed_cuts(items):
        fewer = [i for i in range(k) if not pinned(items[i])]
        if len(fewer) < len(cut.dropped):
            assert sum(costs) - sum(costs[i] for i in fewer) > budget
    if not cut.fits:  # nothing fitted: the most that may be dropped was
        assert max(cut.dropped, default=-1) + 1 <= allowed_cuts(items)[-1]


def test_a_session_is_cut_before_a_whole_step_never_inside_it() -> None:
    items: list[Item] = [
        developer("rules"),
        user("q1"),
        assistant("a1"),
        user("q2"),
        Reasoning(summary=("plan",)),
        FunctionCall("f", "{}", "c1"),
        FunctionCall("f", "{}", "c2"),
        FunctionCallOutput("c2", "2"),
        FunctionCallOutput("c1", "1"),
        assistant("a2"),
        user("q3"),
    ]
    assert allowed_cuts(items) == [0, 1, 2, 3, 4, 9, 10]
    cut = truncate(items, [1] * len(items), budget=3)  # rules, a2, q3
    assert cut.dropped == [1, 2, 3, 4, 5, 6, 7, 8]
    assert cut.kept == [items[0], items[9], items[10]] and cut.fits
    cut = truncate(items, [1] * len(items), budget=7)  # one step too big to keep partly
    assert cut.dropped == [1, 2, 3, 4, 5, 6, 7, 8] and cut.cost == 3
    cut = truncate(items, [1] * len(items), budget=8)
    assert cut.dropped == [1, 2, 3] and cut.cost == 8
    nothing = truncate(items, [1] * len(items), budget=1)
    assert not nothing.fits and nothing.kept == [items[0], items[10]]


@pytest.mark.parametrize(
    ("error", "window", "prompt"),
    [
        (  # llama-server
            UnexpectedStatusError(
                400,
                '{"error":{"code":400,"message":"the request exceeds the available context '
                'size, try increasing it","type":"exceed_context_size_error",'
                '"n_prompt_tokens":5000,"n_ctx":4096}}',
            ),
            4096,
            5000,
        ),
        (  # vLLM, and llama-cpp-python's non-streamed answer, with max_tokens
            UnexpectedStatusError(
                400,
                '{"object":"error","message":"This model\'s maximum context length is 8192 '
                "tokens. However, you requested 9000 tokens (8000 in the messages, 1000 in the "
                'completion). Please reduce the length of the messages or completion.",'
                '"type":"BadRequestError","param":null,"code":400}',
            ),
            8192,
            8000,
        ),
        (  # vLLM without max_tokens
            UnexpectedStatusError(
                400,
                '{"error":{"message":"This model\'s maximum context length is 2048 tokens. '
                "However, your request has 3000 input tokens. Please reduce the length of the "
                'input messages.","type":"BadRequestError","param":null,"code":400}}',
            ),
            2048,
            3000,
        ),
        (  # OpenAI: the functions are part of the prompt
            UnexpectedStatusError(
                400,
                '{"error":{"message":"This model\'s maximum context length is 128000 tokens. '
                "However, your messages resulted in 130000 tokens (129000 in the messages, "
                "1000 in the functions). Please reduce the length of the messages or "
                'functions.","type":"invalid_request_error","param":"messages",'
                '"code":"context_length_exceeded"}}',
            ),
            128000,
            130000,
        ),
        (  # an error inside the stream, numbers in its words
            ProviderError("maximum context length is 4096 tokens, requested 5000 tokens"),
            4096,
            5000,
        ),
        (UnexpectedStatusError(400, '{"error":{"message":"prompt is too long"}}'), None, None),
    ],
)
def test_the_numbers_servers_put_in_their_overflow_errors(
    error: Exception, window: int | None, prompt: int | None
) -> None:
    assert is_overflow(error)
    assert read_overflow(error) == Overflow(window, prompt)
