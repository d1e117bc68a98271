"""The item classes: small frozen values that everything past the edge works on."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal, TypeAlias

from ..jsontypes import JSON

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
