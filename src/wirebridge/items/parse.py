"""The edge: Responses JSON (dicts) in, items out, errors that name the index and the field."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from ..errors import InputError
from .model import (
    ITEM_CLASSES,
    ROLES,
    ContentPart,
    CustomToolCall,
    CustomToolCallOutput,
    FunctionCall,
    FunctionCallOutput,
    InputImage,
    InputText,
    Item,
    LocalShellCall,
    Message,
    OtherItem,
    OtherPart,
    OutputText,
    Reasoning,
    ReasoningPart,
    ToolOutput,
)


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
