"""The events a stream yields, and `dump()`, their (and items') JSON form.

Events are plain slots classes: the decoder makes one per delta on the hot path, so they carry
no validation and are not frozen (a frozen dataclass builds ~3x slower); treat them as values.
`dump` gives the JSON shape of DESIGN.md ("Events") for events and items.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal, TypeAlias

from .items import ITEM_CLASSES, Item, dump_item

IncompleteReason = Literal["max_output_tokens", "content_filter"]


@dataclass(frozen=True, slots=True)
class TokenUsage:
    input_tokens: int = 0
    cached_input_tokens: int = 0
    output_tokens: int = 0
    reasoning_output_tokens: int = 0
    total_tokens: int = 0

    def dump(self) -> dict[str, int]:
        return {
            "input_tokens": self.input_tokens,
            "cached_input_tokens": self.cached_input_tokens,
            "output_tokens": self.output_tokens,
            "reasoning_output_tokens": self.reasoning_output_tokens,
            "total_tokens": self.total_tokens,
        }


@dataclass(slots=True)
class OutputTextDelta:
    delta: str
    type: Literal["output_text_delta"] = "output_text_delta"


@dataclass(slots=True)
class ReasoningContentDelta:
    delta: str
    type: Literal["reasoning_content_delta"] = "reasoning_content_delta"


@dataclass(slots=True)
class ToolCallDelta:
    """A piece of a function call's arguments as it streams (opt-in: `stream_tool_calls`).

    `index` is the call's position among this turn's calls; the finished call still comes whole
    as `output_item_done`. Emulated custom tools are not streamed (their input is JSON-wrapped).
    """

    index: int
    call_id: str
    name: str
    delta: str
    namespace: str | None = None
    type: Literal["tool_call_delta"] = "tool_call_delta"


@dataclass(slots=True)
class OutputItemDone:
    item: Item
    type: Literal["output_item_done"] = "output_item_done"


@dataclass(slots=True)
class Incomplete:
    reason: IncompleteReason
    type: Literal["incomplete"] = "incomplete"


@dataclass(slots=True)
class Completed:
    response_id: str = ""
    token_usage: TokenUsage | None = None
    type: Literal["completed"] = "completed"


Event: TypeAlias = (
    OutputTextDelta
    | ReasoningContentDelta
    | ToolCallDelta
    | OutputItemDone
    | Incomplete
    | Completed
)
DELTA_TYPES = (OutputTextDelta, ReasoningContentDelta)
STREAMED_TYPES = (*DELTA_TYPES, ToolCallDelta)  # what `aggregated` mode drops


def dump(x: Event | Item) -> dict[str, Any]:
    """An event or an item -> its JSON-able dict (the shapes of DESIGN.md)."""
    if isinstance(x, ITEM_CLASSES):
        return dump_item(x)
    if isinstance(x, DELTA_TYPES):
        return {"type": x.type, "delta": x.delta}
    if isinstance(x, OutputItemDone):
        return {"type": "output_item_done", "item": dump_item(x.item)}
    if isinstance(x, ToolCallDelta):
        out: dict[str, Any] = {"type": x.type, "index": x.index, "call_id": x.call_id}
        out["name"] = x.name
        if x.namespace is not None:
            out["namespace"] = x.namespace
        out["delta"] = x.delta
        return out
    if isinstance(x, Completed):
        usage = x.token_usage.dump() if x.token_usage is not None else None
        return {"type": "completed", "response_id": x.response_id, "token_usage": usage}
    if isinstance(x, Incomplete):
        return {"type": "incomplete", "reason": x.reason}
    raise TypeError(f"dump() takes an item or an event, not {type(x).__name__}")
