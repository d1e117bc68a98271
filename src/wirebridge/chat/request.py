"""Responses items -> a Chat Completions request payload (rules P1-P8 of DESIGN.md).

Pure: items and options in, the JSON-able payload out. Two passes: the first decides where
replayed reasoning goes (P2), the second emits messages through `_MessageBuilder`, which owns the
tool-call pairing invariant: in the payload every `tool` message answers a call of the assistant
message right before it, and every call of an assistant message that is followed by anything gets
an answer (servers answer 400 otherwise: codex #7051, #8479).
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from ..items import (
    CustomToolCall,
    CustomToolCallOutput,
    FunctionCall,
    FunctionCallOutput,
    InputImage,
    InputText,
    Item,
    LocalShellCall,
    Message,
    OutputText,
    Reasoning,
    ToolCallItem,
    ToolOutput,
)
from ..jsontypes import JSON
from ..prompt import Prompt
from ..provider import Provider
from .tools import ToolMap, map_tool_choice, map_tools
from .vendors import decode_state, replay_reasoning_details, sign_tool_call, thought_signatures

ABORTED_OUTPUT = "aborted"  # what Codex itself records for a call that never got its output


@dataclass(slots=True)
class ChatRequest:
    """The payload to POST and the reverse tool map the stream decoder needs."""

    payload: JSON
    tool_map: ToolMap


def build_chat_payload(prompt: Prompt, model: str, provider: Provider | None = None) -> JSON:
    """The Chat Completions request body for one turn."""
    return prepare_chat_request(prompt, model, provider).payload


def prepare_chat_request(
    prompt: Prompt, model: str, provider: Provider | None = None
) -> ChatRequest:
    provider = provider or Provider()
    tool_map = map_tools(prompt.tools)
    messages: list[JSON] = []
    if prompt.instructions:
        messages.append({"role": "system", "content": prompt.instructions})  # P1
    messages.extend(build_messages(prompt.input, provider))
    payload: JSON = {"model": model, "messages": messages, "stream": True}  # P8
    if provider.include_usage:
        payload["stream_options"] = {"include_usage": True}
    if tool_map.chat_tools:
        payload["tools"] = tool_map.chat_tools
        # Servers reject these two without tools (OpenAI: "only allowed when tools are specified").
        if prompt.tool_choice is not None:
            payload["tool_choice"] = map_tool_choice(prompt.tool_choice)
        if prompt.parallel_tool_calls is not None:
            payload["parallel_tool_calls"] = prompt.parallel_tool_calls
    if prompt.temperature is not None:
        payload["temperature"] = prompt.temperature
    if prompt.top_p is not None:
        payload["top_p"] = prompt.top_p
    if prompt.max_output_tokens is not None:
        payload["max_tokens"] = prompt.max_output_tokens
    response_format = map_text_format(prompt.text_format)
    if response_format is not None:
        payload["response_format"] = response_format
    if prompt.reasoning_effort is not None:
        payload["reasoning_effort"] = prompt.reasoning_effort
    return ChatRequest(payload, tool_map)


def map_text_format(fmt: JSON | None) -> JSON | None:
    """Responses `text.format` -> Chat `response_format`."""
    if not fmt or fmt.get("type") in (None, "text"):
        return None
    if fmt.get("type") == "json_schema":
        schema = {k: fmt[k] for k in ("name", "description", "schema", "strict") if k in fmt}
        return {"type": "json_schema", "json_schema": schema}
    return {"type": fmt["type"]}


# ---------------------------------------------------------------------------------------------
# P2: where replayed reasoning goes


def _emitted_role(item: Item, provider: Provider) -> str | None:
    if isinstance(item, Message):
        return _chat_role(item.role, provider)
    if isinstance(item, FunctionCall | CustomToolCall | LocalShellCall):
        return "assistant"
    if isinstance(item, FunctionCallOutput | CustomToolCallOutput):
        return "tool"
    return None


def _is_call(item: Item) -> bool:
    return isinstance(item, FunctionCall | CustomToolCall | LocalShellCall)


def _is_assistant_message(item: Item) -> bool:
    return isinstance(item, Message) and item.role == "assistant"


@dataclass(slots=True)
class Replay:
    """What one assistant message or call carries back upstream."""

    text: str = ""
    details: list[JSON] | None = None  # OpenRouter `reasoning_details`


def reasoning_anchors(items: Sequence[Item], provider: Provider) -> dict[int, Replay]:
    """Index of the assistant message or call that carries each replayed reasoning."""
    if provider.reasoning_field == "none":
        return {}
    last_role = None
    last_user = -1
    for i, item in enumerate(items):
        role = _emitted_role(item, provider)
        if role is not None:
            last_role = role
        if isinstance(item, Message) and item.role == "user":
            last_user = i
    if last_role == "user":
        return {}
    anchors: dict[int, Replay] = {}
    for i in range(last_user + 1, len(items)):
        item = items[i]
        if not isinstance(item, Reasoning):
            continue
        text = item.text if item.text.strip() else ""
        state = decode_state(item.encrypted_content)
        details = state.reasoning_details if state else []
        if not text and not details:
            continue
        # Neighbours, looking past other reasoning items (they emit nothing themselves).
        prev = i - 1
        while prev > last_user and isinstance(items[prev], Reasoning):
            prev -= 1
        nxt = i + 1
        while nxt < len(items) and isinstance(items[nxt], Reasoning):
            nxt += 1
        if prev > last_user and _is_assistant_message(items[prev]):
            anchor = prev
        elif nxt < len(items) and (_is_call(items[nxt]) or _is_assistant_message(items[nxt])):
            anchor = nxt
        elif prev > last_user and _is_call(items[prev]):
            # The bridge's own last reasoning item, which carries state known only at the end
            # of the answer (responses/encoder.py), follows the calls it belongs to.
            anchor = prev
        else:
            continue
        replay = anchors.setdefault(anchor, Replay())
        replay.text += text
        if details:
            replay.details = (replay.details or []) + details
    return anchors


# ---------------------------------------------------------------------------------------------
# Messages


def _chat_role(role: str, provider: Provider) -> str:
    if role == "developer" and provider.developer_role != "developer":
        return "system"  # P5: many Chat servers reject `developer` (codex #9392, #9612)
    return role


def _content(parts: Sequence[Any]) -> str | list[JSON]:
    """P6: text-only content stays a string; with images it becomes a list of parts."""
    if not any(isinstance(p, InputImage) for p in parts):
        return "".join(p.text for p in parts if isinstance(p, InputText | OutputText))
    out: list[JSON] = []
    for p in parts:
        if isinstance(p, InputText | OutputText):
            out.append({"type": "text", "text": p.text})
        elif isinstance(p, InputImage):
            image: JSON = {"url": p.image_url}
            if p.detail:
                image["detail"] = p.detail
            out.append({"type": "image_url", "image_url": image})
    return out


def _output_text(output: ToolOutput) -> str:
    if isinstance(output, str):
        return output
    return "".join(p.text for p in output if isinstance(p, InputText | OutputText))


def _output_images(output: ToolOutput) -> list[InputImage]:
    return [] if isinstance(output, str) else [p for p in output if isinstance(p, InputImage)]


def _tool_call(item: ToolCallItem) -> JSON:
    if isinstance(item, FunctionCall):
        function = {"name": item.name, "arguments": item.arguments}
        return {"id": item.call_id, "type": "function", "function": function}
    if isinstance(item, CustomToolCall):  # P7: emulated as a function taking {"input": ...}
        arguments = json.dumps({"input": item.input}, ensure_ascii=False)
        return {
            "id": item.call_id,
            "type": "function",
            "function": {"name": item.name, "arguments": arguments},
        }
    call: JSON = {"id": item.pairing_id, "type": "local_shell_call"}  # the seed's shape
    if item.status is not None:
        call["status"] = item.status
    call["action"] = item.action
    return call


def _call_id(item: ToolCallItem) -> str:
    return item.pairing_id if isinstance(item, LocalShellCall) else item.call_id


class _MessageBuilder:
    """Emits Chat messages in order while keeping every tool call paired with an answer."""

    def __init__(self, provider: Provider, signatures: dict[str, str] | None = None):
        self.provider = provider
        self.signatures = signatures or {}
        self.messages: list[JSON] = []
        self.group: JSON | None = None  # the assistant message holding the open calls
        self.pending: list[str] = []  # its calls still waiting for an output
        self.answered = False  # an output of the group was emitted (no more calls join it)
        self.deferred: list[JSON] = []  # user messages that must wait for the group to close
        self.last_assistant_text: str | None = None

    def reasoning(self, message: JSON, replay: Replay | None) -> None:
        if replay is None:
            return
        if replay.text:
            key = self.provider.reasoning_field
            message[key] = message.get(key, "") + replay.text
        if replay.details:
            replay_reasoning_details(message, replay.details)

    def message(self, item: Message, reasoning: Replay | None) -> None:
        self.close_group()
        text = item.text
        if item.role == "assistant":
            if text == self.last_assistant_text:
                return  # P3: the seed's duplicate suppression
            self.last_assistant_text = text
        msg: JSON = {
            "role": _chat_role(item.role, self.provider),
            "content": _content(item.content),
        }
        if item.role == "assistant":
            self.reasoning(msg, reasoning)
        self.messages.append(msg)

    def call(self, item: ToolCallItem, reasoning: Replay | None) -> None:
        if self.group is None or self.answered:  # P4: consecutive calls share one message
            self.close_group()
            # No `content` key at all: OpenAI allows that beside tool_calls, and servers with
            # strict schemas (llama-cpp-python) reject the seed's `"content": null`.
            self.group = {"role": "assistant", "tool_calls": []}
            self.messages.append(self.group)
        call = _tool_call(item)
        signature = self.signatures.get(_call_id(item))
        if signature:
            sign_tool_call(call, signature)
        self.group["tool_calls"].append(call)
        self.pending.append(_call_id(item))
        self.reasoning(self.group, reasoning)

    def output(self, call_id: str, output: ToolOutput) -> None:
        text = _output_text(output)
        images = _output_images(output)
        if call_id in self.pending:
            self.pending.remove(call_id)
            self.answered = True
            self.messages.append({"role": "tool", "tool_call_id": call_id, "content": text})
            if images:  # Chat tool messages carry text only: show the images right after
                self.deferred.append(self._images_message(call_id, images))
            return
        # An output whose call is not in the assistant message before it: say what it is.
        orphan: JSON = {
            "role": "user",
            "content": f"Output of tool call {call_id}:\n{text}",
        }
        if images:
            orphan["content"] = [{"type": "text", "text": orphan["content"]}] + [
                {"type": "image_url", "image_url": {"url": i.image_url}} for i in images
            ]
        if self.group is not None:
            self.deferred.append(orphan)
        else:
            self.messages.append(orphan)

    @staticmethod
    def _images_message(call_id: str, images: list[InputImage]) -> JSON:
        parts: list[JSON] = [{"type": "text", "text": f"Images returned by tool call {call_id}:"}]
        parts += [{"type": "image_url", "image_url": {"url": i.image_url}} for i in images]
        return {"role": "user", "content": parts}

    def close_group(self, *, at_end: bool = False) -> None:
        if self.group is not None:
            # A trailing call turn with no answer at all is left as the seed sent it.
            trailing = at_end and not self.answered and not self.deferred
            if not trailing:
                for call_id in self.pending:
                    self.messages.append(
                        {"role": "tool", "tool_call_id": call_id, "content": ABORTED_OUTPUT}
                    )
            self.group, self.pending, self.answered = None, [], False
        self.messages.extend(self.deferred)
        self.deferred = []


def build_messages(items: Sequence[Item], provider: Provider) -> list[JSON]:
    """The history part of the payload (everything after the instructions)."""
    anchors = reasoning_anchors(items, provider)
    b = _MessageBuilder(provider, thought_signatures(items))
    for i, item in enumerate(items):
        if isinstance(item, Message):
            b.message(item, anchors.get(i))
        elif isinstance(item, FunctionCall | CustomToolCall | LocalShellCall):
            b.call(item, anchors.get(i))
        elif isinstance(item, FunctionCallOutput | CustomToolCallOutput):
            b.output(item.call_id, item.output)
        # reasoning travels only as replayed reasoning (P2); web_search_call and unknown
        # items have no Chat equivalent and are not sent (P4).
    b.close_group(at_end=True)
    return b.messages
