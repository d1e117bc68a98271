"""`Prompt`: one turn's request in Responses terms (instructions, history, tools, options)."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from .items import Item, parse_item


@dataclass(slots=True)
class Prompt:
    """A history of Responses items plus what the Responses API lets a turn choose.

    `input` accepts item dicts (Responses JSON) or item objects; dicts are parsed here, once, so a
    malformed item fails early with an `InputError` naming its index and field.
    """

    instructions: str | None = None
    input: list[Item] = field(default_factory=list)
    tools: list[dict[str, Any]] = field(default_factory=list)
    tool_choice: str | dict[str, Any] | None = None
    parallel_tool_calls: bool | None = None
    temperature: float | None = None
    top_p: float | None = None
    max_output_tokens: int | None = None
    text_format: dict[str, Any] | None = None  # Responses `text.format`
    reasoning_effort: str | None = None

    def __init__(
        self,
        instructions: str | None = None,
        input: Iterable[Item | Mapping[str, Any]] | str = (),
        tools: Iterable[Mapping[str, Any]] = (),
        *,
        tool_choice: str | dict[str, Any] | None = None,
        parallel_tool_calls: bool | None = None,
        temperature: float | None = None,
        top_p: float | None = None,
        max_output_tokens: int | None = None,
        text_format: dict[str, Any] | None = None,
        reasoning_effort: str | None = None,
    ) -> None:
        self.instructions = instructions
        if isinstance(input, str):
            input = [{"type": "message", "role": "user", "content": input}]
        self.input = [parse_item(x, i) for i, x in enumerate(input)]
        self.tools = [dict(t) for t in tools]
        self.tool_choice = tool_choice
        self.parallel_tool_calls = parallel_tool_calls
        self.temperature = temperature
        self.top_p = top_p
        self.max_output_tokens = max_output_tokens
        self.text_format = text_format
        self.reasoning_effort = reasoning_effort
