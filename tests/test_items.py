"""The item model: every item Codex sends parses and dumps back; `dump` of events."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from wirebridge import dump
from wirebridge.events import Completed, Incomplete, OutputItemDone, OutputTextDelta, TokenUsage
from wirebridge.items import Message, OtherItem, OutputText, parse_item, parse_items

FIXTURES = Path(__file__).parent / "fixtures" / "codex"
SHARED_FIXTURES = Path(__file__).resolve().parents[2] / "shared" / "fixtures" / "codex"


REDACTED = "[Codex's own text, left out of this repository: see shared/fixtures/codex]"


def _codex_bodies() -> list[Path]:
    return sorted(FIXTURES.glob("codex-responses-request-*.json"))


@pytest.mark.parametrize("path", _codex_bodies(), ids=lambda p: p.name)
def test_every_codex_input_item_round_trips(path: Path) -> None:
    body = json.loads(path.read_text())
    for index, raw in enumerate(body["input"]):
        item = parse_item(raw, index)
        assert not isinstance(item, OtherItem), f"input[{index}] ({raw['type']}) not understood"
        assert dump(item) == raw


def test_codex_fixtures_are_present() -> None:
    assert len(_codex_bodies()) == 2


def _without_codex_text(value: Any, key: str = "") -> Any:
    """The body with every string our copy redacts replaced by the marker."""
    if isinstance(value, dict):
        if value.get("role") == "developer":
            return {**value, "content": [{**p, "text": REDACTED} for p in value["content"]]}
        return {k: _without_codex_text(v, k) for k, v in value.items()}
    if isinstance(value, list):
        return [_without_codex_text(v, key) for v in value]
    return REDACTED if key == "description" and isinstance(value, str) else value


@pytest.mark.skipif(not SHARED_FIXTURES.is_dir(), reason="no shared/ checkout beside the repo")
@pytest.mark.parametrize("path", _codex_bodies(), ids=lambda p: p.name)
def test_our_codex_bodies_are_the_captures_minus_codex_text(path: Path) -> None:
    shared = json.loads((SHARED_FIXTURES / path.name).read_text())
    ours = json.loads(path.read_text())
    assert ours == _without_codex_text(shared)
    assert REDACTED not in json.dumps(shared)  # the marker stands only where text was removed


@pytest.mark.parametrize(
    "raw",
    [
        {
            "type": "reasoning",
            "id": "rs_1",
            "summary": [{"type": "summary_text", "text": "s"}],
            "content": [{"type": "reasoning_text", "text": "t"}],
            "encrypted_content": "opaque",
        },
        {
            "type": "function_call",
            "name": "spawn",
            "namespace": "agents",
            "arguments": "{}",
            "call_id": "c",
        },
        {
            "type": "function_call_output",
            "call_id": "c",
            "output": [
                {"type": "input_text", "text": "a"},
                {"type": "input_image", "image_url": "data:,"},
            ],
        },
        {"type": "custom_tool_call", "call_id": "c", "name": "apply_patch", "input": "*** Begin"},
        {"type": "custom_tool_call_output", "call_id": "c", "output": "done"},
        {
            "type": "local_shell_call",
            "id": "ls",
            "call_id": "c",
            "status": "completed",
            "action": {"type": "exec", "command": ["ls"], "timeout_ms": 5},
        },
        {
            "type": "web_search_call",
            "id": "ws",
            "status": "completed",
            "action": {"type": "search"},
        },
        {"type": "something_new", "id": "x", "payload": [1, 2]},
    ],
)
def test_items_dump_back_unchanged(raw: dict[str, Any]) -> None:
    assert dump(parse_item(raw)) == raw


def test_string_input_is_one_user_message() -> None:
    (item,) = parse_items("hello")
    assert isinstance(item, Message) and item.role == "user" and item.text == "hello"


def test_easy_input_message_without_type_parses() -> None:
    item = parse_item({"role": "assistant", "content": "hi"})
    assert item == Message("assistant", (OutputText("hi"),))


def test_events_dump_to_the_design_shapes() -> None:
    usage = TokenUsage(11, 4, 2, 1, 13)
    assert dump(OutputTextDelta("x")) == {"type": "output_text_delta", "delta": "x"}
    assert dump(Incomplete("max_output_tokens")) == {
        "type": "incomplete",
        "reason": "max_output_tokens",
    }
    assert dump(Completed("id", usage))["token_usage"] == {
        "input_tokens": 11,
        "cached_input_tokens": 4,
        "output_tokens": 2,
        "reasoning_output_tokens": 1,
        "total_tokens": 13,
    }
    assert dump(Completed()) == {"type": "completed", "response_id": "", "token_usage": None}
    item = Message("assistant", (OutputText("a"),))
    assert dump(OutputItemDone(item))["item"]["content"] == [{"type": "output_text", "text": "a"}]
