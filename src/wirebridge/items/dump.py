"""Items -> Responses JSON: the exact inverse of `parse` for the fields we use."""

from __future__ import annotations

from ..jsontypes import JSON
from .model import (
    ContentPart,
    CustomToolCall,
    CustomToolCallOutput,
    FunctionCall,
    FunctionCallOutput,
    InputImage,
    Item,
    Message,
    OtherItem,
    OtherPart,
    Reasoning,
    ToolOutput,
)


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
