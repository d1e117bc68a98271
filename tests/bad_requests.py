"""The bad requests of docs/server.md ("### Bad requests"), as data: what is sent, what comes back.

`tests/test_bad_requests.py` sends each through a real bridge and checks the docs hold the same
table, row for row (`python -m tests.bad_requests` prints it in the docs' form).
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

KEY = "sk-bad-requests"
MAX_BODY_BYTES = 256 * 1024


@dataclass(frozen=True)
class Case:
    what: str  # the docs' first column (Markdown)
    body: Any  # a JSON value, or raw bytes
    status: int
    code: str | None
    param: str | None
    method: str = "POST"
    path: str = "/v1/responses"
    headers: dict[str, str] = field(default_factory=lambda: {"Authorization": f"Bearer {KEY}"})

    def content(self) -> bytes:
        return self.body if isinstance(self.body, bytes) else json.dumps(self.body).encode()


def ok(**fields: Any) -> dict[str, Any]:
    """A valid body, changed in the given fields (None removes one)."""
    body: dict[str, Any] = {"model": "m", "input": "hi", **fields}
    return {k: v for k, v in body.items() if v is not None}


def message(*parts: Any, role: str = "user") -> dict[str, Any]:
    return {"type": "message", "role": role, "content": list(parts)}


FUNCTION = {"type": "function", "name": "f", "parameters": {"type": "object"}}
DEEP = b'{"model":"m","input":' + b"[" * 1000 + b"]" * 1000 + b"}"

CASES: list[Case] = [
    Case("body is not JSON", b"{model: m}", 400, "invalid_json", None),
    Case("body is a JSON array", b"[]", 400, None, None),
    Case("JSON nested 1,000 deep", DEEP, 400, "invalid_json", "input"),
    Case("body over `--max-body-bytes`", ok(input="x" * MAX_BODY_BYTES), 413,
         "request_too_large", None),
    Case("no `Authorization` header", ok(), 401, "invalid_api_key", None, headers={}),
    Case("a wrong key", ok(), 401, "invalid_api_key", None,
         headers={"Authorization": "Bearer sk-wrong"}),
    Case("unknown path", ok(), 404, "not_found", None, path="/v1/nothing"),
    Case("no `model` (and no default model)", ok(model=None), 400, None, "model"),
    Case("NUL in `model`", ok(model="m\x00"), 400, None, "model"),
    Case("newline in `model`", ok(model="m\nINFO forged"), 400, None, "model"),
    Case("`model` of 300 characters", ok(model="m" * 300), 400, None, "model"),
    Case("no `input`", ok(input=None), 400, "empty_input", "input"),
    Case("`input: null`", {"model": "m", "input": None}, 400, "empty_input", "input"),
    Case('`input: ""`', ok(input=""), 400, "empty_input", "input"),
    Case("`input: []`", ok(input=[]), 400, "empty_input", "input"),
    Case("`input: 5`", ok(input=5), 400, None, "input"),
    Case("`conversation` with `previous_response_id`",
         ok(conversation="conv_1", previous_response_id="resp_1"), 400,
         "mutually_exclusive_parameters", "conversation"),
    Case("`conversation` naming no conversation (unknown, deleted, expired, another tenant's)",
         ok(conversation={"id": "conv_1"}), 400, "not_found", "conversation"),
    Case("`conversation: {}` (no `id`)", ok(conversation={}), 400, None, "conversation.id"),
    Case("an item with neither `type` nor `role`", ok(input=[{"content": "x"}]), 400, None,
         "input[0].type"),
    Case("an unknown item type", ok(input=[{"type": "banana"}]), 400, "invalid_value",
         "input[0].type"),
    Case("a message with role `robot`", ok(input=[message(role="robot")]), 400, None,
         "input[0].role"),
    Case("an `input_file` part", ok(input=[message({"type": "input_file", "file_id": "f"})]),
         400, "unsupported_value", "input[0].content[0]"),
    Case("an unknown content part", ok(input=[message({"type": "input_video"})]), 400,
         "invalid_value", "input[0].content[0].type"),
    Case("`input_image` without `image_url`", ok(input=[message({"type": "input_image"})]),
         400, None, "input[0].content[0].image_url"),
    Case("`function_call` without `call_id`",
         ok(input=[{"type": "function_call", "name": "f", "arguments": "{}"}]), 400, None,
         "input[0].call_id"),
    Case("`temperature: 99`", ok(temperature=99), 400, "invalid_value", "temperature"),
    Case("`temperature: -1`", ok(temperature=-1), 400, "invalid_value", "temperature"),
    Case('`temperature: "hot"`', ok(temperature="hot"), 400, None, "temperature"),
    Case("`top_p: 5`", ok(top_p=5), 400, "invalid_value", "top_p"),
    Case("`top_logprobs: 21`", ok(top_logprobs=21), 400, "invalid_value", "top_logprobs"),
    Case("`max_output_tokens: 0`", ok(max_output_tokens=0), 400, None, "max_output_tokens"),
    Case('`stream: "yes"`', ok(stream="yes"), 400, None, "stream"),
    Case('`truncation: "sometimes"`', ok(truncation="sometimes"), 400, "invalid_value",
         "truncation"),
    Case("`text.format.type: xml`", ok(text={"format": {"type": "xml"}}), 400,
         "invalid_value", "text.format.type"),
    Case("`json_schema` format without `schema`",
         ok(text={"format": {"type": "json_schema", "name": "s"}}), 400, None,
         "text.format.schema"),
    Case("`json_schema` format without `name`",
         ok(text={"format": {"type": "json_schema", "schema": {}}}), 400, None,
         "text.format.name"),
    Case('`text.verbosity: "loud"`', ok(text={"verbosity": "loud"}), 400, "invalid_value",
         "text.verbosity"),
    Case("17 `metadata` keys", ok(metadata={f"k{i}": "v" for i in range(17)}), 400,
         "invalid_value", "metadata"),
    Case("a `metadata` key of 65 characters", ok(metadata={"k" * 65: "v"}), 400,
         "invalid_value", "metadata"),
    Case("a `metadata` value of 200,000 characters", ok(metadata={"k": "v" * 200_000}), 400,
         "invalid_value", "metadata"),
    Case("a `metadata` value that is a number", ok(metadata={"k": 1}), 400, None, "metadata"),
    Case('`tool_choice: "sometimes"`', ok(tool_choice="sometimes"), 400, None, "tool_choice"),
    Case("`tool_choice` naming an undeclared function",
         ok(tools=[FUNCTION], tool_choice={"type": "function", "name": "g"}), 400,
         "invalid_value", "tool_choice"),
    Case("`tool_choice` naming an undeclared custom tool",
         ok(tool_choice={"type": "custom", "name": "g"}), 400, "invalid_value", "tool_choice"),
    Case("a tool without `type`", ok(tools=[{"name": "f"}]), 400, None, "tools[0].type"),
    Case("two tools with one name", ok(tools=[FUNCTION, FUNCTION]), 400, None, "tools[1].name"),
    Case("`background: true` with `store: false`", ok(background=True, store=False), 400,
         None, "background"),
    Case("`previous_response_id` on a bridge with `--no-store`",
         ok(previous_response_id="resp_1"), 400, "previous_response_not_found",
         "previous_response_id"),
    Case("a reasoning item whose `encrypted_content` token (`wb2.`) was altered",
         ok(input=[message({"type": "input_text", "text": "hi"}),
                   {"type": "reasoning", "summary": [], "encrypted_content": "wb2.e30.AAAA"}]),
         400, "invalid_encrypted_content", "input[1]"),
]  # fmt: skip


def markdown() -> str:
    """The docs' table."""
    lines = ["| request | status | `code` | `param` |", "|---|---|---|---|"]
    for case in CASES:
        code = f"`{case.code}`" if case.code else "-"
        param = f"`{case.param}`" if case.param else "-"
        lines.append(f"| {case.what} | {case.status} | {code} | {param} |")
    return "\n".join(lines)


if __name__ == "__main__":
    print(markdown())
