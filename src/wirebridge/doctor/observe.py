"""What one probe saw: the raw fields of a Chat Completions stream, recorded as they came. No I/O.

`StreamObserver` is fed the response body as it arrives (`feed(bytes, at)`, the caller's clock
reading passed in) and records the wire facts the doctor reasons about: chunk count, `[DONE]`,
every `finish_reason`, where usage arrived, which delta field carried reasoning, the content text
(for inline `<think>` tags), and the shape of each streamed tool call (index present, id and name
repeated per chunk, legacy `function_call`). Unlike `chat.decode` it interprets nothing: it never
merges, repairs or raises on a strange body; a garbled stream is itself a fact to report.

`ProbeResult` is what the I/O shell hands back for one request: HTTP status, content type, the
observation, timings, and the transport failure if any. `answer()` says in one line what the
server answered, which every failed finding quotes.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

from ..chat.sse import SSEParser
from ..errors import StreamError, excerpt

HEAD_BYTES = 4096  # raw bytes kept for quoting a body that is not a stream
EXCERPT_CHARS = 300  # how much of an answer a finding quotes
REASONING_FIELDS = ("reasoning_content", "reasoning", "reasoning_details")


@dataclass
class ToolCallShape:
    """One streamed tool call as the chunks spelled it."""

    index: int | None
    id: str = ""
    name: str = ""
    arguments: str = ""
    chunks: int = 0  # tool_calls entries that belonged to this call
    id_chunks: int = 0  # ... of which carried an `id`
    name_chunks: int = 0  # ... of which carried a `function.name`

    def arguments_json(self) -> Any:
        """The parsed arguments, or None when they are not JSON."""
        try:
            return json.loads(self.arguments) if self.arguments else {}
        except ValueError:
            return None


@dataclass
class StreamObservation:
    chunks: int = 0  # JSON chunks parsed from SSE data
    events: int = 0  # SSE events of any kind (including [DONE] and unparseable data)
    unparseable: int = 0
    done: bool = False
    data_after_done: bool = False
    finish_reasons: list[str] = field(default_factory=list)  # in order, repeats kept
    usage: dict[str, Any] | None = None
    usage_on_choice_chunk: bool = False  # usage came on a chunk that also had choices
    reasoning_fields: list[str] = field(default_factory=list)  # in order of first sight
    content: str = ""
    tool_calls: list[ToolCallShape] = field(default_factory=list)
    entries_with_index: int = 0
    entries_without_index: int = 0
    legacy_function_call: bool = False
    errors: list[str] = field(default_factory=list)  # in-stream error objects
    decode_error: str | None = None  # the body is not UTF-8
    head: bytes = b""  # the first bytes of the body, verbatim
    body_bytes: int = 0
    first_byte_at: float | None = None
    first_token_at: float | None = None  # first chunk carrying content, reasoning or a call
    last_token_at: float | None = None
    token_chunks: int = 0

    @property
    def finished(self) -> bool:
        """The stream told us it was over: a finish_reason or `[DONE]` (D5)."""
        return self.done or bool(self.finish_reasons)


class StreamObserver:
    """Feed it the body as it arrives; read `observation` at any point."""

    def __init__(self) -> None:
        self.observation = StreamObservation()
        self._parser = SSEParser()
        self._by_index: dict[int, ToolCallShape] = {}
        self._latest: ToolCallShape | None = None

    def feed(self, data: bytes, at: float) -> None:
        obs = self.observation
        if not data:
            return
        if obs.first_byte_at is None:
            obs.first_byte_at = at
        if len(obs.head) < HEAD_BYTES:
            obs.head += data[: HEAD_BYTES - len(obs.head)]
        obs.body_bytes += len(data)
        if obs.decode_error is not None:
            return
        try:
            events = self._parser.feed(data)
        except StreamError as exc:
            obs.decode_error = str(exc)
            return
        for event in events:
            self._event(event, at)

    def close(self) -> StreamObservation:
        if self.observation.decode_error is None:
            try:
                self._parser.close()
            except StreamError as exc:
                self.observation.decode_error = str(exc)
        return self.observation

    def _event(self, data: str, at: float) -> None:
        obs = self.observation
        obs.events += 1
        if obs.done:
            obs.data_after_done = True
            return
        if data.strip() == "[DONE]":
            obs.done = True
            return
        try:
            chunk = json.loads(data)
        except ValueError:
            obs.unparseable += 1
            return
        if not isinstance(chunk, dict):
            obs.unparseable += 1
            return
        obs.chunks += 1
        error = chunk.get("error")
        if error:
            message = error.get("message") if isinstance(error, dict) else None
            obs.errors.append(str(message or json.dumps(error)))
        choices = chunk.get("choices")
        usage = chunk.get("usage")
        if isinstance(usage, dict) and usage:
            obs.usage = usage
            obs.usage_on_choice_chunk = bool(choices)
        if not isinstance(choices, list) or not choices or not isinstance(choices[0], dict):
            return
        choice = choices[0]
        delta = choice.get("delta")
        token = False
        if isinstance(delta, dict):
            token = self._delta(delta)
        message = choice.get("message")
        if isinstance(message, dict) and message.get("reasoning"):
            self._saw_reasoning("message.reasoning")
            token = True
        finish = choice.get("finish_reason")
        if finish:
            obs.finish_reasons.append(str(finish))
        if token:
            obs.token_chunks += 1
            if obs.first_token_at is None:
                obs.first_token_at = at
            obs.last_token_at = at

    def _delta(self, delta: dict[str, Any]) -> bool:
        obs = self.observation
        token = False
        for name in REASONING_FIELDS:
            value = delta.get(name)
            if value and isinstance(value, str | dict | list):
                self._saw_reasoning(name)
                token = True
        content = delta.get("content")
        if isinstance(content, str) and content:
            obs.content += content
            token = True
        if delta.get("function_call"):
            obs.legacy_function_call = True
        calls = delta.get("tool_calls")
        if isinstance(calls, list):
            for entry in calls:
                if isinstance(entry, dict):
                    self._tool_entry(entry)
                    token = True
        return token

    def _saw_reasoning(self, name: str) -> None:
        if name not in self.observation.reasoning_fields:
            self.observation.reasoning_fields.append(name)

    def _tool_entry(self, entry: dict[str, Any]) -> None:
        """Group entries into calls the way D3 does, counting how each field was spelled."""
        obs = self.observation
        index = entry.get("index")
        call_id = entry.get("id") if isinstance(entry.get("id"), str) else ""
        call: ToolCallShape | None
        if isinstance(index, int) and not isinstance(index, bool):
            obs.entries_with_index += 1
            call = self._by_index.get(index)
            if call is None:
                call = self._by_index[index] = ToolCallShape(index)
                obs.tool_calls.append(call)
        else:
            obs.entries_without_index += 1
            call = self._latest
            if call is None or (call_id and call.id and call_id != call.id):
                call = ToolCallShape(None)
                obs.tool_calls.append(call)
        self._latest = call
        call.chunks += 1
        if call_id:
            call.id_chunks += 1
            call.id = call.id or call_id
        function = entry.get("function")
        if isinstance(function, dict):
            name = function.get("name")
            if isinstance(name, str) and name:
                call.name_chunks += 1
                call.name = call.name or name
            arguments = function.get("arguments")
            if isinstance(arguments, str):
                call.arguments += arguments


@dataclass
class ProbeResult:
    """One probe's request and what came back."""

    probe: str
    status: int | None = None  # HTTP status; None when no response came
    content_type: str = ""
    observation: StreamObservation = field(default_factory=StreamObservation)
    started_at: float = 0.0  # the caller's clock when the request went out
    elapsed_s: float = 0.0
    ttfb_s: float | None = None  # request sent -> first body byte
    error: str | None = None  # transport failure, in words
    unreachable: bool = False  # no connection could be made at all
    timed_out: bool = False
    truncated: bool = False  # the body was longer than the doctor reads

    @property
    def http_ok(self) -> bool:
        return self.status is not None and 200 <= self.status < 300

    @property
    def rejected(self) -> bool:
        """The server refused the request itself: a 4xx/5xx, or an error object in the stream."""
        if self.status is not None and not self.http_ok:
            return True
        return self.http_ok and bool(self.observation.errors)

    @property
    def streamed(self) -> bool:
        """A 2xx event stream of chunks that ended properly, with no error object in it."""
        obs = self.observation
        return (
            self.http_ok
            and obs.chunks > 0
            and obs.finished
            and not obs.errors
            and obs.decode_error is None
            and not self.timed_out
        )

    def answer(self) -> str:
        """What the server answered, in one line, for a finding to quote."""
        obs = self.observation
        if self.status is None:
            return self.error or "no answer"
        body = _quote(obs.head)
        kind = self.content_type or "no content type"
        if not self.http_ok:
            return f"HTTP {self.status}: {body}" if body else f"HTTP {self.status} (empty body)"
        if obs.errors:
            return f"HTTP {self.status}, then an error in the stream: {_quote(obs.errors[0])}"
        if obs.decode_error:
            return f"HTTP {self.status}, body {obs.decode_error}"
        if obs.chunks == 0:
            if _is_chat_completion(obs.head):
                return f"HTTP {self.status} {kind}: one chat.completion, not a stream"
            if self.timed_out:
                return f"HTTP {self.status}, no chunk before the timeout ({self.error})"
            if obs.unparseable:
                return (
                    f"HTTP {self.status} {kind}: {obs.unparseable} events, none a JSON chunk: "
                    f"{body}"
                )
            return f"HTTP {self.status} {kind}, not an event stream: {body or '(empty body)'}"
        if self.timed_out:
            return f"HTTP {self.status}, {obs.chunks} chunks, then silence ({self.error})"
        if self.truncated and not obs.finished:
            return (
                f"HTTP {self.status}, {obs.chunks} chunks in {obs.body_bytes} bytes "
                "with no end in sight (stopped reading)"
            )
        if not obs.finished:
            return (
                f"HTTP {self.status}, {obs.chunks} chunks, then the stream ended "
                "with no finish_reason and no [DONE]"
            )
        return f"HTTP {self.status}, {obs.chunks} chunks"


def _quote(raw: bytes | str) -> str:
    text = raw.decode("utf-8", "replace") if isinstance(raw, bytes) else raw
    return " ".join(excerpt(text, EXCERPT_CHARS).split())


def _is_chat_completion(head: bytes) -> bool:
    try:
        body = json.loads(head)
    except ValueError:
        return False
    return isinstance(body, dict) and isinstance(body.get("choices"), list)
