"""Build Chat Completions SSE bodies the way servers send them."""

from __future__ import annotations

import json
from collections.abc import Iterable, Sequence
from typing import Any


def chat_chunk(
    delta: dict[str, Any] | None = None,
    *,
    finish_reason: str | None = None,
    usage: dict[str, Any] | None = None,
    chunk_id: str = "chatcmpl-test",
    choices: bool = True,
) -> dict[str, Any]:
    chunk: dict[str, Any] = {"id": chunk_id, "object": "chat.completion.chunk", "model": "test"}
    chunk["choices"] = (
        [{"index": 0, "delta": delta or {}, "finish_reason": finish_reason}] if choices else []
    )
    if usage is not None:
        chunk["usage"] = usage
    return chunk


def sse_body(chunks: Iterable[dict[str, Any] | str], *, done: bool = True) -> bytes:
    """`data: <json>\\n\\n` per chunk (a str is sent verbatim as the data), then `[DONE]`."""
    parts = [f"data: {c if isinstance(c, str) else json.dumps(c)}\n\n" for c in chunks]
    if done:
        parts.append("data: [DONE]\n\n")
    return "".join(parts).encode()


def text_body(
    pieces: Sequence[str],
    *,
    reasoning: Sequence[str] = (),
    finish_reason: str = "stop",
    usage: dict[str, Any] | None = None,
    done: bool = True,
) -> bytes:
    chunks: list[dict[str, Any]] = [chat_chunk({"role": "assistant", "content": ""})]
    chunks += [chat_chunk({"reasoning_content": r}) for r in reasoning]
    chunks += [chat_chunk({"content": p}) for p in pieces]
    chunks.append(chat_chunk({}, finish_reason=finish_reason))
    if usage is not None:
        chunks.append(chat_chunk(usage=usage, choices=False))
    return sse_body(chunks, done=done)


def tool_call_body(
    calls: Sequence[tuple[str, str, dict[str, Any] | str]],
    *,
    fragments: int = 3,
    usage: dict[str, Any] | None = None,
) -> bytes:
    """One streamed turn calling each `(call_id, name, arguments)`, arguments in fragments."""
    chunks: list[dict[str, Any]] = []
    for index, (call_id, name, arguments) in enumerate(calls):
        args = arguments if isinstance(arguments, str) else json.dumps(arguments)
        step = max(1, -(-len(args) // fragments))
        head = {"index": index, "id": call_id, "type": "function"}
        chunks.append(
            chat_chunk({"tool_calls": [{**head, "function": {"name": name, "arguments": ""}}]})
        )
        for start in range(0, len(args), step):
            piece = {"index": index, "function": {"arguments": args[start : start + step]}}
            chunks.append(chat_chunk({"tool_calls": [piece]}))
    chunks.append(chat_chunk({}, finish_reason="tool_calls"))
    if usage is not None:
        chunks.append(chat_chunk(usage=usage, choices=False))
    return sse_body(chunks)
