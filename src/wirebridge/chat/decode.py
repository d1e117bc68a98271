"""Chat Completions chunks -> wirebridge events (rules D2-D7). Sans-I/O, the hot path.

`ChatStreamDecoder` owns every bit of per-response state: text and reasoning gathered so far,
tool calls keyed by index, usage, whether the output has finished and whether the response has
completed. It is fed the `data` of each SSE event (`feed`) and told when the stream ends
(`end_of_stream`); it returns events and raises `ProviderError` / `StreamError`. It knows nothing
of sockets, retries or time.

Speed: one `msgspec` parse per chunk into plain dicts, no model validation, deltas gathered in
lists and joined once when the item is done, so the cost is linear in the bytes.
"""

from __future__ import annotations

import json
import uuid
from typing import Any

import msgspec

from ..errors import ProviderError, StreamError
from ..events import (
    Completed,
    Event,
    Incomplete,
    OutputItemDone,
    OutputTextDelta,
    ReasoningContentDelta,
    TokenUsage,
    ToolCallDelta,
)
from ..items import (
    CustomToolCall,
    FunctionCall,
    Item,
    Message,
    OutputText,
    Reasoning,
    ReasoningPart,
)
from ..provider import ThinkTags
from .think import ThinkSplitter
from .tools import ToolMap
from .vendors import (
    DetailsAccumulator,
    ProviderState,
    encode_state,
    reasoning_details,
    thought_signature,
)

_json_decode = msgspec.json.Decoder().decode
_INCOMPLETE = {"length": "max_output_tokens", "content_filter": "content_filter"}


class _ToolCall:
    __slots__ = ("arguments", "id", "index", "name", "signature", "streamed")

    def __init__(self, index: int) -> None:
        self.index = index  # position among this turn's calls (the upstream's, or arrival order)
        self.id = ""
        self.name = ""
        self.arguments: list[str] = []
        self.streamed = 0  # argument pieces already reported as ToolCallDelta
        self.signature = ""  # Gemini's thought_signature, echoed back via encrypted_content


def _reasoning_text(delta: dict[str, Any]) -> str:
    """D2: the first present of the reasoning fields servers use."""
    value = delta.get("reasoning_content")
    if value and isinstance(value, str):
        return value
    value = delta.get("reasoning")
    if value:
        if isinstance(value, str):
            return value
        if isinstance(value, dict):
            text = value.get("text") or value.get("content")
            if isinstance(text, str):
                return text
    details = reasoning_details(delta)
    if details:
        return "".join(
            d["text"] for d in details if isinstance(d, dict) and isinstance(d.get("text"), str)
        )
    return ""


def usage_from_chunk(usage: dict[str, Any]) -> TokenUsage:
    def num(obj: Any, key: str) -> int:
        value = obj.get(key) if isinstance(obj, dict) else None
        return value if isinstance(value, int) and not isinstance(value, bool) else 0

    input_tokens = num(usage, "prompt_tokens")
    output_tokens = num(usage, "completion_tokens")
    return TokenUsage(
        input_tokens=input_tokens,
        cached_input_tokens=num(usage.get("prompt_tokens_details"), "cached_tokens"),
        output_tokens=output_tokens,
        reasoning_output_tokens=num(usage.get("completion_tokens_details"), "reasoning_tokens"),
        total_tokens=num(usage, "total_tokens") or input_tokens + output_tokens,
    )


class ChatStreamDecoder:
    """State machine: `feed(data)` per SSE event, then `end_of_stream()` at EOF.

    `strict`: a stream of nothing but unparseable data events and `[DONE]` raises `StreamError`
    (the server's rule: garbage must not look like success) instead of completing empty (D1 and
    the conformance vectors, which follow Codex).
    """

    def __init__(
        self,
        tool_map: ToolMap | None = None,
        think_tags: ThinkTags = "off",
        *,
        stream_tool_calls: bool = False,
        strict: bool = False,
    ):
        self.tool_map = tool_map or ToolMap()
        self.strict = strict
        self.stream_tool_calls = stream_tool_calls  # emit ToolCallDelta as arguments arrive
        self.response_id = ""
        self.usage: TokenUsage | None = None
        self.finished = False  # a finish_reason (or [DONE]) ended the output; items were emitted
        self.completed = False  # `completed` was emitted; nothing more comes out
        self._text: list[str] = []
        self._reasoning: list[str] = []
        self._calls: dict[int, _ToolCall] = {}  # D3: keyed by index
        self._latest: _ToolCall | None = None
        self._next_free_index = 0
        self._think = ThinkSplitter(think_tags) if think_tags != "off" else None
        self._details: DetailsAccumulator | None = None
        self._skipped = 0  # unparseable data events (D1 skips them; only them is a failure)

    # -- input -------------------------------------------------------------------------------

    def feed(self, data: str) -> list[Event]:
        if self.completed:
            return []
        if data == "[DONE]":
            return self._complete()
        try:
            chunk = _json_decode(data)
        except msgspec.DecodeError:
            self._skipped += 1
            return []  # D1: an unparseable chunk is skipped
        if type(chunk) is not dict:
            return []
        if chunk.get("error"):
            self._raise_provider_error(chunk["error"])
        if not self.response_id:
            rid = chunk.get("id")
            if isinstance(rid, str):
                self.response_id = rid
        usage = chunk.get("usage")
        if usage and type(usage) is dict:
            self.usage = usage_from_chunk(usage)
        choices = chunk.get("choices")
        if not choices or self.finished or type(choices) is not list:
            return []
        choice = choices[0]
        if type(choice) is not dict:
            return []
        events: list[Event] = []
        delta = choice.get("delta")
        if delta and type(delta) is dict:
            reasoning = _reasoning_text(delta)
            details = reasoning_details(delta)
            if details is not None:
                if self._details is None:
                    self._details = DetailsAccumulator()
                self._details.add(details)
            if reasoning:
                self._reasoning.append(reasoning)
                events.append(ReasoningContentDelta(reasoning))
            content = delta.get("content")
            if content and type(content) is str:
                self._content(content, events)
            calls = delta.get("tool_calls")
            if calls and type(calls) is list:
                for entry in calls:
                    if type(entry) is dict:
                        self._tool_call_delta(entry, events)
            elif delta.get("function_call") and type(delta["function_call"]) is dict:
                legacy = {"index": 0, "function": delta["function_call"]}
                self._tool_call_delta(legacy, events)
        message = choice.get("message")
        if message and type(message) is dict:
            final = message.get("reasoning")
            if final and isinstance(final, str):
                self._reasoning.append(final)
                events.append(ReasoningContentDelta(final))
        finish = choice.get("finish_reason")
        if finish:
            self._finish(finish if isinstance(finish, str) else str(finish), events)
        return events

    def end_of_stream(self) -> list[Event]:
        """EOF: complete after a finish_reason (D5); otherwise the stream was cut short."""
        if self.completed:
            return []
        if not self.finished:
            raise StreamError(
                "stream closed before completion (no finish_reason and no [DONE])", retryable=True
            )
        return self._complete()

    # -- state changes -----------------------------------------------------------------------

    def _content(self, content: str, events: list[Event]) -> None:
        if self._think is None:
            self._text.append(content)
            events.append(OutputTextDelta(content))
            return
        reasoning, text = self._think.feed(content)
        if reasoning:
            self._reasoning.append(reasoning)
            events.append(ReasoningContentDelta(reasoning))
        if text:
            self._text.append(text)
            events.append(OutputTextDelta(text))

    def _tool_call_delta(self, entry: dict[str, Any], events: list[Event]) -> None:
        index = entry.get("index")
        call_id = entry.get("id")
        if not isinstance(call_id, str):
            call_id = ""
        if isinstance(index, int) and not isinstance(index, bool):
            call = self._calls.get(index)
            if call is None:
                call = self._calls[index] = _ToolCall(index)
                self._next_free_index = max(self._next_free_index, index + 1)
        elif call_id and (self._latest is None or call_id != self._latest.id):
            call = self._new_call()  # D3: a new id, a new call
        elif self._latest is not None:
            call = self._latest
        else:
            call = self._new_call()
        self._latest = call
        if call_id and not call.id:
            call.id = call_id  # taken once, never concatenated (D3)
        function = entry.get("function")
        if function and type(function) is dict:
            name = function.get("name")
            if name and not call.name and isinstance(name, str):
                call.name = name
            arguments = function.get("arguments")
            if arguments and isinstance(arguments, str):
                call.arguments.append(arguments)
        signature = thought_signature(entry)
        if signature is not None:
            call.signature = signature
        if self.stream_tool_calls and call.name and len(call.arguments) > call.streamed:
            self._stream_arguments(call, events)

    def _new_call(self) -> _ToolCall:
        call = self._calls[self._next_free_index] = _ToolCall(self._next_free_index)
        self._next_free_index += 1
        return call

    def _stream_arguments(self, call: _ToolCall, events: list[Event]) -> None:
        target = self.tool_map.target(call.name)
        if target.kind == "custom":
            return  # its input is JSON-wrapped ({"input": ...}): reported whole at the end
        if not call.id:
            call.id = _new_call_id()  # fixed now, so the finished item carries the same id
        piece = "".join(call.arguments[call.streamed :])
        call.streamed = len(call.arguments)
        events.append(ToolCallDelta(call.index, call.id, call.name, piece, target.namespace))

    def _flush_think(self, events: list[Event]) -> None:
        if self._think is None:
            return
        reasoning, text = self._think.flush()
        if reasoning:
            self._reasoning.append(reasoning)
            events.append(ReasoningContentDelta(reasoning))
        if text:
            self._text.append(text)
            events.append(OutputTextDelta(text))

    def _finish(self, reason: str, events: list[Event]) -> None:
        """D4: the output ended; emit reasoning, message, then each call in index order."""
        self._flush_think(events)
        self.finished = True
        for item in self.output_items():
            events.append(OutputItemDone(item))
        incomplete = _INCOMPLETE.get(reason)
        if incomplete is not None:
            events.append(Incomplete(incomplete))  # type: ignore[arg-type]

    def _complete(self) -> list[Event]:
        if self.strict and self._skipped and not self.finished and not self._read_anything():
            # Garbage then [DONE] must not look like an empty success.
            raise StreamError(
                f"the upstream sent {self._skipped} data event(s), none of them JSON, "
                "then [DONE]: no answer"
            )
        events: list[Event] = []
        if not self.finished:
            self._finish("", events)  # D5: [DONE] with no finish_reason flushes the items
        self.completed = True
        events.append(Completed(self.response_id, self.usage))
        return events

    def _read_anything(self) -> bool:
        """Whether any chunk said something (an id, usage, text, reasoning or a call)."""
        return bool(self.response_id or self.usage or self._text or self._reasoning or self._calls)

    def output_items(self) -> list[Item]:
        """Reasoning, message, then the calls in index order (D4)."""
        state = ProviderState(self._details.result() if self._details else [])
        calls: list[Item] = []
        for index in sorted(self._calls):
            call = self._calls[index]
            call_id = call.id or _new_call_id()
            if call.signature:
                state.thought_signatures[call_id] = call.signature
            calls.append(self._call_item(call, call_id))
        items: list[Item] = []
        if self._reasoning or state:
            content = (ReasoningPart("".join(self._reasoning)),) if self._reasoning else None
            token = encode_state(state) if state else None
            items.append(Reasoning(content=content, encrypted_content=token))
        if self._text:
            items.append(Message("assistant", (OutputText("".join(self._text)),)))
        return items + calls

    def _call_item(self, call: _ToolCall, call_id: str) -> Item:
        arguments = "".join(call.arguments)
        target = self.tool_map.target(call.name)
        if target.kind == "custom":
            return CustomToolCall(call_id, call.name, _custom_input(arguments))
        return FunctionCall(call.name, arguments, call_id, target.namespace)

    @staticmethod
    def _raise_provider_error(error: Any) -> None:
        if isinstance(error, dict):
            message = error.get("message") or json.dumps(error)
            code = error.get("code") or error.get("type")
            raise ProviderError(str(message), code if isinstance(code, str | int) else None)
        raise ProviderError(str(error))


def _new_call_id() -> str:
    """For servers that send a call without an id (some llama.cpp builds, legacy function_call)."""
    return f"call_{uuid.uuid4().hex[:24]}"


def _custom_input(arguments: str) -> str:
    """An emulated custom tool's `{"input": "..."}` -> the raw input (P7)."""
    try:
        parsed = json.loads(arguments)
    except ValueError:
        return arguments  # the model ignored the schema: pass its text through
    if isinstance(parsed, dict) and isinstance(parsed.get("input"), str):
        return str(parsed["input"])
    return arguments
