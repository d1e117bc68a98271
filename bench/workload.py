"""The benchmark's data: Chat Completions SSE bodies, built once and named by a spec string.

Every consumer in one run reads the same bytes, so each ratio compares like with like. A spec
travels as the request's `model` field (the upstream subprocess builds the body the spec names),
so the benchmark needs no side channel to tell the server what to send:

- `mix-N`: N chunks as a reasoning model answers a tool-using turn: a role chunk, reasoning
  deltas (20 %), text deltas (60 %), two tool calls whose arguments arrive in fragments (20 %),
  a finish chunk and a usage chunk (`choices: []`), then `[DONE]`. Chunks carry the fields
  OpenAI sends (`created`, `system_fingerprint`, `logprobs`), so parsers pay the real price.
- `args-BYTES-N`: one tool call whose arguments (a JSON object of BYTES characters) arrive in N
  fragments, then a usage chunk: the long-arguments figure (arguments gathered in time linear in
  size).
- `text-N`: N text deltas, a finish chunk and a usage chunk: the bridge's relay workload.
"""

from __future__ import annotations

import functools
import json
from dataclasses import dataclass
from typing import Any

_HEAD = {
    "id": "chatcmpl-bench0123456789",
    "object": "chat.completion.chunk",
    "created": 1760000000,
    "model": "bench-model",
    "system_fingerprint": "fp_bench",
}
_WORDS = (" the", " quick", " brown", " fox", " jumps", " over", " a", " lazy", " dog", ".")
USAGE = {
    "prompt_tokens": 1200,
    "completion_tokens": 50_000,
    "total_tokens": 51_200,
    "prompt_tokens_details": {"cached_tokens": 1024},
    "completion_tokens_details": {"reasoning_tokens": 10_000},
}


@dataclass(frozen=True)
class Expect:
    """What a correct consumer must see in a body: used to check every run, not only time it."""

    chunks: int  # `data:` lines that are JSON chunks (not `[DONE]`)
    text: str
    reasoning: str
    arguments: tuple[str, ...]  # each tool call's arguments, in index order


def _chunk(delta: dict[str, Any] | None, finish: str | None = None) -> str:
    choice = {"index": 0, "delta": delta or {}, "logprobs": None, "finish_reason": finish}
    return json.dumps({**_HEAD, "choices": [choice]}, separators=(",", ":"))


def _usage_chunk() -> str:
    return json.dumps({**_HEAD, "choices": [], "usage": USAGE}, separators=(",", ":"))


def _sse(lines: list[str]) -> bytes:
    return "".join(f"data: {line}\n\n" for line in lines).encode() + b"data: [DONE]\n\n"


def _arguments(size: int) -> str:
    """A JSON object of exactly `size` characters (size >= 16)."""
    shell = '{"path":"a.txt","content":""}'
    return shell[:-2] + "x" * max(0, size - len(shell)) + '"}'


def _split(text: str, parts: int) -> list[str]:
    step, extra = divmod(len(text), parts)
    out, start = [], 0
    for i in range(parts):
        end = start + step + (1 if i < extra else 0)
        out.append(text[start:end])
        start = end
    return out


def mix(n: int) -> tuple[bytes, Expect]:
    if n < 20:
        raise ValueError("mix needs at least 20 chunks")
    fixed = 1 + 2 + 1 + 1  # role, two tool-call heads, finish, usage
    reasoning_n = n // 5
    tool_n = n // 5
    text_n = n - fixed - reasoning_n - tool_n
    lines = [_chunk({"role": "assistant", "content": ""})]
    reasoning = [f" step{i}" for i in range(reasoning_n)]
    lines += [_chunk({"reasoning_content": r}) for r in reasoning]
    text = [_WORDS[i % len(_WORDS)] for i in range(text_n)]
    lines += [_chunk({"content": t}) for t in text]
    calls = []
    for index, share in enumerate((tool_n // 2, tool_n - tool_n // 2)):
        args = _arguments(share * 8)
        calls.append(args)
        head = {"index": index, "id": f"call_{index}", "type": "function"}
        head["function"] = {"name": "write_file", "arguments": ""}
        lines.append(_chunk({"tool_calls": [head]}))
        for piece in _split(args, share):
            fragment = {"index": index, "function": {"arguments": piece}}
            lines.append(_chunk({"tool_calls": [fragment]}))
    lines.append(_chunk({}, "tool_calls"))
    lines.append(_usage_chunk())
    assert len(lines) == n
    return _sse(lines), Expect(n, "".join(text), "".join(reasoning), tuple(calls))


def args(size: int, n: int) -> tuple[bytes, Expect]:
    arguments = _arguments(size)
    head = {"index": 0, "id": "call_0", "type": "function"}
    head["function"] = {"name": "write_file", "arguments": ""}
    lines = [_chunk({"role": "assistant", "content": None, "tool_calls": [head]})]
    for piece in _split(arguments, n):
        lines.append(_chunk({"tool_calls": [{"index": 0, "function": {"arguments": piece}}]}))
    lines.append(_chunk({}, "tool_calls"))
    lines.append(_usage_chunk())
    return _sse(lines), Expect(n + 3, "", "", (arguments,))


def text(n: int) -> tuple[bytes, Expect]:
    pieces = [_WORDS[i % len(_WORDS)] for i in range(n)]
    lines = [_chunk({"role": "assistant", "content": ""})]
    lines += [_chunk({"content": p}) for p in pieces]
    lines.append(_chunk({}, "stop"))
    lines.append(_usage_chunk())
    return _sse(lines), Expect(n + 3, "".join(pieces), "", ())


@functools.lru_cache(maxsize=16)
def body(spec: str) -> tuple[bytes, Expect]:
    """The body a spec names (see the module docstring); cached, so built once per process."""
    kind, _, rest = spec.partition("-")
    numbers = [int(x) for x in rest.split("-")] if rest else []
    if kind == "mix" and len(numbers) == 1:
        return mix(numbers[0])
    if kind == "args" and len(numbers) == 2:
        return args(numbers[0], numbers[1])
    if kind == "text" and len(numbers) == 1:
        return text(numbers[0])
    raise ValueError(f"unknown body spec {spec!r} (mix-N, args-BYTES-N or text-N)")
