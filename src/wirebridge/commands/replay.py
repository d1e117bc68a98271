"""`wirebridge replay FILE`: decode a captured Chat Completions SSE body, with no network.

The tool for debugging a provider: feed a saved response body (a file, or `-` for stdin)
through the same pure core the client uses (`SSEParser` -> `ChatStreamDecoder`) and print the
events. `--json` prints every event, one per line, exactly as `wirebridge exec --json` would;
the default view merges runs of deltas into one line each, so a long capture stays readable.
`--tools FILE` supplies the request's Responses tools, so emulated custom tools and namespaced
functions map back as the client would map them; `--think-tags` reads inline reasoning (D7).
"""

from __future__ import annotations

import json
import sys
from collections.abc import Iterator
from typing import IO, Any

import click

from ..chat.decode import ChatStreamDecoder
from ..chat.sse import SSEParser
from ..chat.tools import ToolMap, map_tools
from ..errors import InputError, WirebridgeError
from ..events import Event, dump
from .output import THINK_TAGS, fail, one_line

READ_SIZE = 64 * 1024


def decode_body(
    source: IO[bytes], tool_map: ToolMap | None = None, think_tags: str = "off"
) -> Iterator[Event]:
    """The events of a captured body, read in blocks; raises the decoder's errors."""
    parser = SSEParser()
    decoder = ChatStreamDecoder(tool_map, think_tags)  # type: ignore[arg-type]
    while block := source.read(READ_SIZE):
        for data in parser.feed(block):
            yield from decoder.feed(data)
    parser.close()
    yield from decoder.end_of_stream()


def load_tools(source: IO[bytes]) -> ToolMap:
    """A JSON list of Responses tools, or a request body with a `tools` key."""
    try:
        document = json.loads(source.read())
    except ValueError as exc:
        raise click.BadParameter(f"not JSON: {exc}", param_hint="--tools") from None
    tools = document.get("tools") if isinstance(document, dict) else document
    if not isinstance(tools, list):
        raise click.BadParameter(
            "expected a JSON list of tools or an object with a `tools` list", param_hint="--tools"
        )
    try:
        return map_tools(tools)
    except InputError as exc:
        raise click.BadParameter(str(exc), param_hint="--tools") from None


def _quote(text: str, limit: int = 400) -> str:
    shown = json.dumps(text, ensure_ascii=False)
    return shown if len(shown) <= limit else shown[:limit] + f'..." [{len(text)} chars]'


def _describe_item(item: dict[str, Any]) -> str:
    kind = item.get("type")
    if kind == "message":
        text = "".join(p.get("text", "") for p in item.get("content", []))
        return f"message ({item.get('role')}): {_quote(text)}"
    if kind == "reasoning":
        parts = item.get("content") or []
        text = "".join(p.get("text", "") for p in parts)
        return f"reasoning: {_quote(text)}"
    if kind == "function_call":
        ns = f"{item['namespace']}." if item.get("namespace") else ""
        call = f"{ns}{item.get('name')} [{item.get('call_id')}]"
        return f"function_call {call}: {item.get('arguments')}"
    if kind == "custom_tool_call":
        call = f"{item.get('name')} [{item.get('call_id')}]"
        return f"custom_tool_call {call}: {_quote(item.get('input', ''))}"
    return json.dumps(item, ensure_ascii=False)


class Summary:
    """The readable view: runs of deltas of one kind merged into one line each."""

    def __init__(self, out: IO[str]):
        self.out = out
        self._kind: str | None = None
        self._parts: list[str] = []

    def event(self, event: Event) -> None:
        data = dump(event)
        kind = data["type"]
        if "delta" in data:
            if kind != self._kind:
                self.flush()
                self._kind = kind
            self._parts.append(data["delta"])
            return
        self.flush()
        if kind == "output_item_done":
            self._line("item", _describe_item(data["item"]))
        elif kind == "completed":
            usage = data["token_usage"]
            shown = " ".join(f"{k}={v}" for k, v in usage.items()) if usage else "none"
            self._line("completed", f"response_id={data['response_id'] or '-'} usage: {shown}")
        elif kind == "incomplete":
            self._line("incomplete", data["reason"])
        else:
            self._line(kind, "")

    def flush(self) -> None:
        if self._kind is not None:
            n = len(self._parts)
            label = self._kind.removesuffix("_delta")
            self._line(label, f"{_quote(''.join(self._parts))} ({n} delta{'s' if n != 1 else ''})")
        self._kind, self._parts = None, []

    def _line(self, label: str, text: str) -> None:
        self.out.write(f"{label:<24} {text}".rstrip() + "\n")


@click.command(name="replay")
@click.argument("file", type=click.File("rb"))
@click.option("--json", "as_json", is_flag=True, help="Print one dumped event per line.")
@click.option(
    "--tools",
    "tools_file",
    type=click.File("rb"),
    help="The request's Responses tools (JSON list, or a body with `tools`).",
)
@click.option(
    "--think-tags",
    type=THINK_TAGS,
    default="off",
    show_default=True,
    help="Read inline <think> reasoning (rule D7).",
)
def command(file: IO[bytes], as_json: bool, tools_file: IO[bytes] | None, think_tags: str) -> None:
    """Decode a captured Chat Completions SSE body (FILE, or - for stdin) and print its events."""
    tool_map = load_tools(tools_file) if tools_file is not None else None
    out = sys.stdout
    summary = Summary(out)
    try:
        for event in decode_body(file, tool_map, think_tags):
            if as_json:
                out.write(json.dumps(dump(event), ensure_ascii=False) + "\n")
            else:
                summary.event(event)
    except WirebridgeError as exc:
        summary.flush()
        out.flush()
        fail(f"{getattr(file, 'name', 'input')}: {one_line(str(exc))}")
    summary.flush()
