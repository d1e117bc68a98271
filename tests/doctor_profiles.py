"""Quirk profiles for the scripted upstream: Chat Completions servers that answer by the request.

A profile is a `Quirks` value; `script(quirks)` turns it into the `ScriptedUpstream` default, a
function from the request to the reply. It answers like a model would: text for a plain turn,
tool calls when tools are forced (one, or two when `parallel_tool_calls` is asked and the profile
makes parallel calls), the named tool when the profile honours a named `tool_choice`, and a text
answer after a replayed tool turn. Each quirk is one field, modelled on a real server:

- DeepSeek / Kimi: reasoning in `reasoning_content`; a replayed assistant tool-call message
  without `reasoning_content` is a 400 ("Missing `reasoning_content` field ...").
- llama-cpp-python: ignores `stream_options.include_usage`; makes no call for `tool_choice:
  "required"` (its template handler prints the Hermes text); repeats id and name in every
  tool-call chunk and adds the legacy `function_call` next to `tool_calls` (see the captures in
  tests/fixtures/llamacpp/); answers validation failures (role `developer`, assistant
  `content: null`) with HTTP 500.
- Qwen / sglang / llama.cpp `--reasoning-format none`: `<think>...</think>` inline; templates that
  open the block themselves send only the closing tag.
- servers that 400 on role `developer`, that never send `[DONE]`, that reject unknown message
  fields, that reject `stream_options`.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any, Literal

from wirebridge.testing.bodies import chat_chunk, sse_body
from wirebridge.testing.upstream import Reply, Script, SeenRequest

Reasoning = Literal[
    "none", "reasoning_content", "reasoning", "reasoning_details", "think", "preopened"
]
THOUGHT = "The user wants a short answer."
HERMES_TEXT = '<tool_call>\n{"name": "get_weather", "arguments": {"city": "Paris"}}\n</tool_call>'
USAGE = {"prompt_tokens": 21, "completion_tokens": 5, "total_tokens": 26}


@dataclass(frozen=True)
class Quirks:
    usage: Literal["honour", "ignore", "reject"] = "honour"
    done: bool = True
    developer: bool = True  # role "developer" accepted
    reject_status: int = 400  # the status of a validation failure (llama-cpp-python: 500)
    assistant_content_null: bool = True  # `content: null` next to tool_calls accepted
    reasoning: Reasoning = "none"
    replay_requires: str | None = None  # field an assistant tool-call message must carry
    strict_messages: bool = False  # 400 on any field a message does not define
    tool_index: bool = True
    repeat_id_name: bool = False
    legacy_function_call: bool = False
    required_honoured: bool = True  # tool_choice "required" makes a call
    parallel: bool = True
    named_honoured: bool = True
    tool_finish: str = "tool_calls"


def error_reply(message: str, status: int = 400) -> Reply:
    body = {"error": {"message": message, "type": "invalid_request_error", "param": None}}
    return Reply(json.dumps(body).encode(), status=status, content_type="application/json")


_MESSAGE_FIELDS = {"role", "content", "name", "tool_calls", "tool_call_id"}


def _check(q: Quirks, body: dict[str, Any]) -> Reply | None:
    """The 400s a strict or quirky server gives before it generates anything."""
    if q.usage == "reject" and "stream_options" in body:
        return error_reply("stream_options: Extra inputs are not permitted")
    status = q.reject_status
    for i, message in enumerate(body["messages"]):
        if message["role"] == "developer" and not q.developer:
            return error_reply("Unexpected message role: developer", status)
        content_null = message["role"] == "assistant" and message.get("content", "") is None
        if content_null and not q.assistant_content_null:
            return error_reply(f"messages.{i}.content: Input should be a valid string", status)
        if q.strict_messages:
            extra = sorted(set(message) - _MESSAGE_FIELDS)
            if extra:
                return error_reply(
                    f"messages.{i}.{extra[0]}: Extra inputs are not permitted", status
                )
        if (
            q.replay_requires
            and message["role"] == "assistant"
            and message.get("tool_calls")
            and q.replay_requires not in message
        ):
            return error_reply(
                f"Missing `{q.replay_requires}` field in the assistant message at message "
                f"index {i}. For more information, please refer to the thinking-mode guide.",
                status,
            )
    return None


def _reasoning_chunks(q: Quirks) -> list[dict[str, Any]]:
    if q.reasoning == "reasoning_content":
        return [chat_chunk({"reasoning_content": THOUGHT})]
    if q.reasoning == "reasoning":
        return [chat_chunk({"reasoning": THOUGHT})]
    if q.reasoning == "reasoning_details":
        detail = {"type": "reasoning.text", "text": THOUGHT}
        return [chat_chunk({"reasoning_details": [detail]})]
    if q.reasoning == "think":
        return [chat_chunk({"content": p}) for p in ("<thi", "nk>", THOUGHT, "</think>", "\n\n")]
    if q.reasoning == "preopened":
        return [chat_chunk({"content": p}) for p in (THOUGHT, "</th", "ink>", "\n\n")]
    return []


def _tool_chunks(q: Quirks, calls: list[tuple[str, str, dict[str, Any]]]) -> list[dict[str, Any]]:
    chunks = []
    for index, (call_id, name, arguments) in enumerate(calls):
        text = json.dumps(arguments)
        pieces = [text[i : i + 6] for i in range(0, len(text), 6)]
        for n, piece in enumerate(pieces):
            entry: dict[str, Any] = {"function": {"arguments": piece}}
            if n == 0 or q.repeat_id_name:
                entry.update(id=call_id, type="function")
                entry["function"]["name"] = name
            if q.tool_index:
                entry["index"] = index
            delta: dict[str, Any] = {"tool_calls": [entry]}
            if q.legacy_function_call:
                delta["function_call"] = {"name": name, "arguments": piece}
            chunks.append(chat_chunk(delta))
    return chunks


def _calls_for(q: Quirks, body: dict[str, Any]) -> list[tuple[str, str, dict[str, Any]]]:
    choice = body.get("tool_choice")
    if isinstance(choice, dict) and q.named_honoured:
        return [("call_a1", choice["function"]["name"], {"city": "Paris"})]
    if body.get("parallel_tool_calls") and q.parallel:
        return [
            ("call_a1", "get_weather", {"city": "Paris"}),
            ("call_a2", "get_weather", {"city": "Tokyo"}),
        ]
    return [("call_a1", "get_weather", {"city": "Paris"})]


def respond(q: Quirks, request: SeenRequest) -> Reply:
    if request.path.endswith(("/apply-template", "/tokenize")):  # no tokenizer, as most servers
        return Reply(b'{"error":"Not Found"}', status=404, content_type="application/json")
    body = request.json
    rejected = _check(q, body)
    if rejected is not None:
        return rejected
    chunks: list[dict[str, Any]] = [chat_chunk({"role": "assistant", "content": ""})]
    chunks += _reasoning_chunks(q)
    replayed = any(m["role"] == "tool" for m in body["messages"])
    choice = body.get("tool_choice")
    if choice == "required" and not q.required_honoured:
        chunks += [chat_chunk({"content": HERMES_TEXT}), chat_chunk({}, finish_reason="stop")]
    elif body.get("tools") and choice and not replayed:
        chunks += _tool_chunks(q, _calls_for(q, body))
        chunks.append(chat_chunk({}, finish_reason=q.tool_finish))
    else:
        text = "It is 18 °C and clear in Paris." if replayed else "Hello!"
        chunks += [chat_chunk({"content": p}) for p in (text[:3], text[3:])]
        chunks.append(chat_chunk({}, finish_reason="stop"))
    wants_usage = (body.get("stream_options") or {}).get("include_usage")
    if wants_usage and q.usage == "honour":
        chunks.append(chat_chunk(usage=USAGE, choices=False))
    return Reply(sse_body(chunks, done=q.done))


def script(q: Quirks) -> Script:
    return lambda request: respond(q, request)


STANDARD = Quirks()
DEEPSEEK = Quirks(reasoning="reasoning_content", replay_requires="reasoning_content")
# As the real llama-cpp-python 0.3.36 behaves (tests/interop/test_doctor_llamacpp.py): pydantic
# validation failures are HTTP 500, and its request model types assistant content as a string.
LLAMA_CPP_PYTHON = Quirks(
    usage="ignore",
    developer=False,
    reject_status=500,
    assistant_content_null=False,
    required_honoured=False,
    repeat_id_name=True,
    legacy_function_call=True,
)
QWEN = Quirks(reasoning="think", tool_finish="stop")
PREOPENED = Quirks(reasoning="preopened")
NO_DEVELOPER = Quirks(developer=False)
NO_DONE = Quirks(done=False)
STRICT = Quirks(strict_messages=True, reasoning="reasoning", tool_index=False)
REJECTS_STREAM_OPTIONS = Quirks(usage="reject", named_honoured=False, reasoning="reasoning_details")
