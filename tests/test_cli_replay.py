"""`wirebridge replay`: captured SSE bodies decoded by the pure core, through the real script."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import anyio
import pytest

from wirebridge import dump
from wirebridge.chat.decode import ChatStreamDecoder
from wirebridge.chat.sse import SSEParser
from wirebridge.testing import chat_chunk, sse_body, tool_call_body

from .conftest import TESTS, load_vectors
from .test_cli import err, out, run_cli
from .vectors import merge_deltas, normalize, vector_body

FIXTURES = TESTS / "fixtures" / "llamacpp"
SHARED_FIXTURES = TESTS.parent.parent / "shared" / "fixtures" / "llamacpp"
CAPTURES = sorted(FIXTURES.glob("*.sse"))
pytestmark = pytest.mark.anyio


def decode_in_process(body: bytes) -> list[dict[str, Any]]:
    parser, decoder = SSEParser(), ChatStreamDecoder()
    events = [dump(e) for data in parser.feed(body) for e in decoder.feed(data)]
    parser.close()
    return events + [dump(e) for e in decoder.end_of_stream()]


def json_lines(text: str) -> list[dict[str, Any]]:
    return [json.loads(line) for line in text.splitlines()]


def test_llamacpp_captures_are_present() -> None:
    assert len(CAPTURES) >= 4, "copy ../shared/fixtures/llamacpp/*.sse into tests/fixtures"


@pytest.mark.skipif(not SHARED_FIXTURES.is_dir(), reason="no ../shared checkout")
def test_fixture_copy_matches_shared() -> None:
    """The project's copy follows ../shared, where that exists (users have only the copy)."""
    shared = {p.name: p.read_bytes() for p in SHARED_FIXTURES.iterdir() if p.is_file()}
    ours = {p.name: p.read_bytes() for p in FIXTURES.iterdir() if p.is_file()}
    assert ours == shared


@pytest.mark.parametrize("capture", CAPTURES, ids=[p.stem for p in CAPTURES])
async def test_replay_decodes_every_llamacpp_capture(capture: Path, tmp_path: Path) -> None:
    result = await run_cli("replay", "--json", str(capture), home=tmp_path)
    assert result.returncode == 0, err(result)
    events = json_lines(out(result))
    assert events == decode_in_process(await anyio.Path(capture).read_bytes())
    assert events[-1]["type"] == "completed" and events[-1]["response_id"].startswith("chatcmpl-")
    items = [e["item"] for e in events if e["type"] == "output_item_done"]
    assert items, "every capture carries an answer or a tool call"
    summary = await run_cli("replay", str(capture), home=tmp_path)
    assert summary.returncode == 0, err(summary)
    assert summary.stdout.splitlines()[-1].startswith(b"completed")


async def test_replay_llamacpp_python_tool_call_is_read_once(tmp_path: Path) -> None:
    """The capture sends each fragment twice (legacy `function_call` and `tool_calls`)."""
    capture = FIXTURES / "llama-cpp-python-random-tools-named.sse"
    result = await run_cli("replay", "--json", str(capture), home=tmp_path)
    calls = [e["item"] for e in json_lines(out(result)) if e["type"] == "output_item_done"]
    assert [c["type"] for c in calls] == ["function_call"]
    assert calls[0]["name"] == "get_weather"
    json.loads(calls[0]["arguments"])  # whole JSON, not doubled fragments


async def test_replay_reads_stdin(tmp_path: Path) -> None:
    body = sse_body([chat_chunk({"content": "hi"}), chat_chunk({}, finish_reason="stop")])
    result = await run_cli("replay", "--json", "-", home=tmp_path, stdin=body)
    assert result.returncode == 0, err(result)
    assert [e["type"] for e in json_lines(out(result))] == [
        "output_text_delta",
        "output_item_done",
        "completed",
    ]


@pytest.mark.parametrize("vector", load_vectors("stream"), ids=lambda v: v["name"])
async def test_replay_matches_the_stream_vectors(vector: dict[str, Any], tmp_path: Path) -> None:
    capture = tmp_path / "body.sse"
    capture.write_bytes(vector_body(vector))
    args = ["replay", "--json", str(capture)]
    if vector.get("tools"):
        (tmp_path / "tools.json").write_text(json.dumps(vector["tools"]))
        args += ["--tools", str(tmp_path / "tools.json")]
    think = (vector.get("provider") or {}).get("think_tags")
    if think:
        args += ["--think-tags", think]
    result = await run_cli(*args, home=tmp_path)
    got, want = json_lines(out(result)), vector["raw"]
    if vector.get("merge_deltas"):
        got, want = merge_deltas(got), merge_deltas(want)
    assert normalize(got) == normalize(want)
    if vector.get("error"):
        assert result.returncode == 1
        assert vector["error"]["contains"].lower() in err(result).lower()
        assert len(err(result).strip().splitlines()) == 1
    else:
        assert result.returncode == 0, err(result)


async def test_replay_maps_custom_and_namespace_tools_back(tmp_path: Path) -> None:
    capture = tmp_path / "calls.sse"
    capture.write_bytes(
        tool_call_body([("c1", "apply_patch", {"input": "*** patch"}), ("c2", "lookup", {"q": 1})])
    )
    tools = {
        "tools": [
            {"type": "custom", "name": "apply_patch", "description": "Edit files."},
            {
                "type": "namespace",
                "name": "docs",
                "tools": [{"type": "function", "name": "lookup"}],
            },
        ]
    }
    (tmp_path / "request.json").write_text(json.dumps(tools))
    result = await run_cli(
        "replay", "--json", "--tools", str(tmp_path / "request.json"), str(capture), home=tmp_path
    )
    assert result.returncode == 0, err(result)
    items = [e["item"] for e in json_lines(out(result)) if e["type"] == "output_item_done"]
    assert items[0]["type"] == "custom_tool_call" and items[0]["input"] == "*** patch"
    assert items[1]["type"] == "function_call" and items[1]["namespace"] == "docs"


async def test_replay_summary_merges_deltas(tmp_path: Path) -> None:
    capture = tmp_path / "text.sse"
    capture.write_bytes(
        sse_body(
            [
                chat_chunk({"reasoning_content": "think "}),
                chat_chunk({"reasoning_content": "hard"}),
                *[chat_chunk({"content": c}) for c in ("a", "b", "c")],
                chat_chunk({}, finish_reason="length"),
            ]
        )
    )
    result = await run_cli("replay", str(capture), home=tmp_path)
    assert result.returncode == 0, err(result)
    lines = out(result).splitlines()
    assert lines[0].split(None, 1) == ["reasoning_content", '"think hard" (2 deltas)']
    assert lines[1].split(None, 1) == ["output_text", '"abc" (3 deltas)']
    assert lines[-2].split() == ["incomplete", "max_output_tokens"]
    assert lines[-1].startswith("completed")


async def test_replay_truncated_capture_fails_after_printing_what_decoded(tmp_path: Path) -> None:
    capture = tmp_path / "cut.sse"
    capture.write_bytes(sse_body([chat_chunk({"content": "par"})], done=False))
    result = await run_cli("replay", "--json", str(capture), home=tmp_path)
    assert result.returncode == 1
    assert json_lines(out(result)) == [{"type": "output_text_delta", "delta": "par"}]
    assert err(result).startswith(f"error: {capture}: stream closed before completion")


@pytest.mark.parametrize(
    ("args", "needle"),
    [
        (["replay"], "Missing argument"),
        (["replay", "/nonexistent.sse"], "No such file"),
        (["replay", "--think-tags", "sometimes", "-"], "--think-tags"),
    ],
)
async def test_replay_usage_errors_exit_2(tmp_path: Path, args: list[str], needle: str) -> None:
    result = await run_cli(*args, home=tmp_path)
    assert result.returncode == 2 and needle in err(result)


async def test_replay_bad_tools_file_is_a_usage_error(tmp_path: Path) -> None:
    (tmp_path / "tools.json").write_text('{"tools": "nope"}')
    result = await run_cli(
        "replay", "--tools", str(tmp_path / "tools.json"), "-", home=tmp_path, stdin=b""
    )
    assert result.returncode == 2 and "--tools" in err(result)
