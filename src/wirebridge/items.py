"""The Responses item model: what a conversation history is made of.

Items arrive as Responses JSON (dicts, as Codex and the OpenAI SDKs send them) and are parsed
once, at the edge, into the small frozen classes below; everything past the edge works on these.
`parse_item` names the item's index and the field when a known item is malformed; an unknown
`type` becomes an `OtherItem` that is kept (and dumped back) but never sent upstream.
`dump_item` is the exact inverse for the fields we use.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal, TypeAlias

from .errors import InputError
from .jsontypes import JSON

Role = Literal["user", "assistant", "system", "developer"]
ROLES: frozenset[str] = frozenset({"user", "assistant", "system", "developer"})


# ---------------------------------------------------------------------------------------------
# Content parts


@dataclass(frozen=True, slots=True)
class InputText:
    text: str
    type: Literal["input_text"] = "input_text"


@dataclass(frozen=True, slots=True)
class OutputText:
    text: str
    type: Literal["output_text"] = "output_text"


@dataclass(frozen=True, slots=True)
class InputImage:
    image_url: str
    detail: str | None = None
    type: Literal["input_image"] = "input_image"


@dataclass(frozen=True, slots=True)
class OtherPart:
    """A content part we do not map (e.g. `input_file`); kept for dump, not sent upstream."""

    raw: JSON
    type: str = "other"


ContentPart: TypeAlias = InputText | OutputText | InputImage | OtherPart


@dataclass(frozen=True, slots=True)
class ReasoningPart:
    text: str
    type: Literal["reasoning_text", "text"] = "reasoning_text"


# ---------------------------------------------------------------------------------------------
# Items


@dataclass(frozen=True, slots=True)
class Message:
    role: Role
    content: tuple[ContentPart, ...]
    id: str | None = None
    status: str | None = None
    type: Literal["message"] = "message"

    @property
    def text(self) -> str:
        """The message's text parts joined (rule P1)."""
        return "".join(p.text for p in self.content if isinstance(p, InputText | OutputText))

    @property
    def images(self) -> tuple[InputImage, ...]:
        return tuple(p for p in self.content if isinstance(p, InputImage))


@dataclass(frozen=True, slots=True)
class Reasoning:
    summary: tuple[str, ...] = ()
    content: tuple[ReasoningPart, ...] | None = None
    encrypted_content: str | None = None
    id: str | None = None
    status: str | None = None
    type: Literal["reasoning"] = "reasoning"

    @property
    def text(self) -> str:
        """The reasoning text that is replayed upstream (rule P2): the content, not the summary."""
        return "".join(p.text for p in self.content or ())


@dataclass(frozen=True, slots=True)
class FunctionCall:
    name: str
    arguments: str
    call_id: str
    namespace: str | None = None
    id: str | None = None
    status: str | None = None
    type: Literal["function_call"] = "function_call"


ToolOutput: TypeAlias = str | tuple[ContentPart, ...]


@dataclass(frozen=True, slots=True)
class FunctionCallOutput:
    call_id: str
    output: ToolOutput
    id: str | None = None
    status: str | None = None
    type: Literal["function_call_output"] = "function_call_output"


@dataclass(frozen=True, slots=True)
class CustomToolCall:
    call_id: str
    name: str
    input: str
    id: str | None = None
    status: str | None = None
    type: Literal["custom_tool_call"] = "custom_tool_call"


@dataclass(frozen=True, slots=True)
class CustomToolCallOutput:
    call_id: str
    output: ToolOutput
    id: str | None = None
    status: str | None = None
    type: Literal["custom_tool_call_output"] = "custom_tool_call_output"


@dataclass(frozen=True, slots=True)
class LocalShellCall:
    action: JSON
    status: str | None = None
    call_id: str | None = None
    id: str | None = None
    type: Literal["local_shell_call"] = "local_shell_call"

    @property
    def pairing_id(self) -> str:
        """The id its output answers: `call_id` when present, else the item `id` (the seed's)."""
        return self.call_id or self.id or ""


@dataclass(frozen=True, slots=True)
class OtherItem:
    """An item with no Chat Completions form (`web_search_call`, or a type we do not know): kept
    and dumped back unchanged, never sent upstream."""

    raw: JSON = field(default_factory=dict)
    type: str = "other"


Item: TypeAlias = (
    Message
    | Reasoning
    | FunctionCall
    | FunctionCallOutput
    | CustomToolCall
    | CustomToolCallOutput
    | LocalShellCall
    | OtherItem
)
ToolCallItem: TypeAlias = FunctionCall | CustomToolCall | LocalShellCall
ToolOutputItem: TypeAlias = FunctionCallOutput | CustomToolCallOutput
ITEM_CLASSES = (
    Message,
    Reasoning,
    FunctionCall,
    FunctionCallOutput,
    CustomToolCall,
    CustomToolCallOutput,
    LocalShellCall,
    OtherItem,
)


# ---------------------------------------------------------------------------------------------
# Parsing (the edge: dicts in, items out, errors that name index and field)


class _Fields:
    """Typed field access on one raw item that reports `input[i].field` on a mismatch."""

    __slots__ = ("index", "raw")

    def __init__(self, raw: Mapping[str, Any], index: int | None):
        self.raw = raw
        self.index = index

    def fail(self, name: str, message: str) -> InputError:
        return InputError(message, index=self.index, field=name)

    def text(self, name: str) -> str:
        value = self.raw.get(name)
        if value is None:
            raise self.fail(name, "is required")
        if not isinstance(value, str):
            raise self.fail(name, f"must be a string, got {type(value).__name__}")
        return value

    def opt_text(self, name: str) -> str | None:
        value = self.raw.get(name)
        if value is None or isinstance(value, str):
            return value
        raise self.fail(name, f"must be a string, got {type(value).__name__}")

    def seq(self, name: str) -> Sequence[Any]:
        value = self.raw.get(name)
        if not isinstance(value, list):
            got = "nothing" if value is None else type(value).__name__
            raise self.fail(name, f"must be a list, got {got}")
        return value


def _parse_part(raw: Any, f: _Fields, where: str) -> ContentPart:
    if not isinstance(raw, Mapping):
        raise f.fail(where, f"must be an object, got {type(raw).__name__}")
    kind = raw.get("type")
    if kind in ("input_text", "output_text", "text"):
        text = raw.get("text")
        if not isinstance(text, str):
            raise f.fail(f"{where}.text", "must be a string")
        return OutputText(text) if kind == "output_text" else InputText(text)
    if kind == "input_image":
        url = raw.get("image_url")
        if not isinstance(url, str):
            # Responses also allows `file_id`; Chat servers cannot fetch those.
            raise f.fail(f"{where}.image_url", "must be a string (a URL or a data: URL)")
        detail = raw.get("detail")
        return InputImage(url, detail if isinstance(detail, str) else None)
    return OtherPart(dict(raw), kind if isinstance(kind, str) else "other")


def _parse_content(f: _Fields, name: str, role: str | None = None) -> tuple[ContentPart, ...]:
    value = f.raw.get(name)
    if isinstance(value, str):  # the OpenAI API's shorthand (EasyInputMessage)
        return (OutputText(value) if role == "assistant" else InputText(value),)
    parts = f.seq(name)
    return tuple(_parse_part(p, f, f"{name}[{i}]") for i, p in enumerate(parts))


def _parse_output(f: _Fields) -> ToolOutput:
    value = f.raw.get("output")
    if isinstance(value, str):
        return value
    if isinstance(value, list):
        return tuple(_parse_part(p, f, f"output[{i}]") for i, p in enumerate(value))
    got = "nothing" if value is None else type(value).__name__
    raise f.fail("output", f"must be a string or a list of content parts, got {got}")


def _parse_message(f: _Fields) -> Message:
    role = f.text("role")
    if role not in ROLES:
        raise f.fail("role", f"must be one of user, assistant, system, developer; got {role!r}")
    content = _parse_content(f, "content", role)
    return Message(role, content, f.opt_text("id"), f.opt_text("status"))  # type: ignore[arg-type]


def _parse_reasoning(f: _Fields) -> Reasoning:
    summary_raw = f.raw.get("summary") or []
    if not isinstance(summary_raw, list):
        raise f.fail("summary", "must be a list")
    summary: list[str] = []
    for i, part in enumerate(summary_raw):
        if not isinstance(part, Mapping) or not isinstance(part.get("text"), str):
            raise f.fail(f"summary[{i}].text", "must be a string")
        summary.append(part["text"])
    content: tuple[ReasoningPart, ...] | None = None
    if f.raw.get("content") is not None:
        parts: list[ReasoningPart] = []
        for i, part in enumerate(f.seq("content")):
            if not isinstance(part, Mapping) or not isinstance(part.get("text"), str):
                raise f.fail(f"content[{i}].text", "must be a string")
            if part.get("type") == "text":
                parts.append(ReasoningPart(part["text"], "text"))
            else:
                parts.append(ReasoningPart(part["text"]))
        content = tuple(parts)
    return Reasoning(
        tuple(summary),
        content,
        f.opt_text("encrypted_content"),
        f.opt_text("id"),
        f.opt_text("status"),
    )


def _parse_function_call(f: _Fields) -> FunctionCall:
    arguments = f.raw.get("arguments", "")
    if not isinstance(arguments, str):
        raise f.fail("arguments", "must be a string of JSON")
    return FunctionCall(
        f.text("name"),
        arguments,
        f.text("call_id"),
        f.opt_text("namespace"),
        f.opt_text("id"),
        f.opt_text("status"),
    )


def _parse_function_call_output(f: _Fields) -> FunctionCallOutput:
    return FunctionCallOutput(
        f.text("call_id"), _parse_output(f), f.opt_text("id"), f.opt_text("status")
    )


def _parse_custom_tool_call(f: _Fields) -> CustomToolCall:
    return CustomToolCall(
        f.text("call_id"), f.text("name"), f.text("input"), f.opt_text("id"), f.opt_text("status")
    )


def _parse_custom_tool_call_output(f: _Fields) -> CustomToolCallOutput:
    return CustomToolCallOutput(
        f.text("call_id"), _parse_output(f), f.opt_text("id"), f.opt_text("status")
    )


def _parse_local_shell_call(f: _Fields) -> LocalShellCall:
    action = f.raw.get("action")
    if not isinstance(action, Mapping):
        raise f.fail("action", "must be an object")
    call = LocalShellCall(
        dict(action), f.opt_text("status"), f.opt_text("call_id"), f.opt_text("id")
    )
    if not call.pairing_id:
        raise f.fail("call_id", "is required (or `id`)")
    return call


_PARSERS: dict[str, Any] = {
    "message": _parse_message,
    "reasoning": _parse_reasoning,
    "function_call": _parse_function_call,
    "function_call_output": _parse_function_call_output,
    "custom_tool_call": _parse_custom_tool_call,
    "custom_tool_call_output": _parse_custom_tool_call_output,
    "local_shell_call": _parse_local_shell_call,
}


def parse_item(raw: Any, index: int | None = None) -> Item:
    """One Responses item (a dict) -> an item; `index` is used in error messages."""
    if isinstance(raw, ITEM_CLASSES):
        return raw
    if not isinstance(raw, Mapping):
        raise InputError(f"must be an object, got {type(raw).__name__}", index=index)
    kind = raw.get("type")
    if kind is None and "role" in raw:  # EasyInputMessage: {"role": ..., "content": ...}
        kind = "message"
    if not isinstance(kind, str):
        raise InputError("is required", index=index, field="type")
    parser = _PARSERS.get(kind)
    if parser is not None:
        item: Item = parser(_Fields(raw, index))
        return item
    return OtherItem(dict(raw), kind)


def parse_items(raw: Any) -> list[Item]:
    """A list of Responses items -> items; a string is one user message (the API's shorthand)."""
    if isinstance(raw, str):
        return [Message("user", (InputText(raw),))]
    if not isinstance(raw, list | tuple):
        raise InputError(
            f"must be a string or a list of items, got {type(raw).__name__}", field="input"
        )
    return [parse_item(x, i) for i, x in enumerate(raw)]


# ---------------------------------------------------------------------------------------------
# Dumping (items -> Responses JSON)


def _dump_part(part: ContentPart) -> JSON:
    if isinstance(part, OtherPart):
        return dict(part.raw)
    if isinstance(part, InputImage):
        out: JSON = {"type": "input_image", "image_url": part.image_url}
        if part.detail is not None:
            out["detail"] = part.detail
        return out
    return {"type": part.type, "text": part.text}


def _dump_output(output: ToolOutput) -> str | list[JSON]:
    return output if isinstance(output, str) else [_dump_part(p) for p in output]


def _with_ids(out: JSON, item_id: str | None, status: str | None) -> JSON:
    if item_id is not None:
        out["id"] = item_id
    if status is not None:
        out["status"] = status
    return out


def dump_item(item: Item) -> JSON:
    """An item -> its Responses JSON form."""
    if isinstance(item, OtherItem):
        return dict(item.raw)
    if isinstance(item, Message):
        out: JSON = {
            "type": "message",
            "role": item.role,
            "content": [_dump_part(p) for p in item.content],
        }
    elif isinstance(item, Reasoning):
        out = {
            "type": "reasoning",
            "summary": [{"type": "summary_text", "text": t} for t in item.summary],
        }
        if item.content is not None:
            out["content"] = [{"type": p.type, "text": p.text} for p in item.content]
        if item.encrypted_content is not None:
            out["encrypted_content"] = item.encrypted_content
    elif isinstance(item, FunctionCall):
        out = {"type": "function_call", "name": item.name}
        if item.namespace is not None:
            out["namespace"] = item.namespace
        out["arguments"] = item.arguments
        out["call_id"] = item.call_id
    elif isinstance(item, FunctionCallOutput | CustomToolCallOutput):
        out = {"type": item.type, "call_id": item.call_id, "output": _dump_output(item.output)}
    elif isinstance(item, CustomToolCall):
        out = {"type": "custom_tool_call", "call_id": item.call_id, "name": item.name}
        out["input"] = item.input
    else:  # LocalShellCall
        out = {"type": "local_shell_call", "call_id": item.call_id, "action": dict(item.action)}
        return _with_ids(out, item.id, item.status)
    return _with_ids(out, item.id, item.status)
