"""The Responses API's objects as the bridge sends them: one definition, as msgspec Structs.

The Response object, its output items, usage and error. The encoder builds them, the store keeps
them, history reads them back and the stored routes answer them; nothing else builds these
shapes as loose dicts. Encoding is msgspec's (`encode`), and `decode_response` reads a stored one
back with its types checked.

The input side (what clients send) is the item model in `items.py`: it accepts the API's
shorthands and every item type, where this module holds only what the bridge emits.
Field order follows the OpenAI API's own objects, so logs and dumps read the same.
"""

from __future__ import annotations

from typing import Any, Literal, TypeAlias

import msgspec
from msgspec import UNSET, Struct, UnsetType, field

from .events import TokenUsage
from .jsontypes import JSON

ItemStatus = Literal["in_progress", "completed", "incomplete"]
ResponseStatus = Literal["queued", "in_progress", "completed", "incomplete", "failed", "cancelled"]


class OutputText(Struct, tag="output_text", tag_field="type"):
    text: str
    annotations: list[Any] = field(default_factory=list)
    logprobs: list[Any] = field(default_factory=list)


class SummaryText(Struct, tag="summary_text", tag_field="type"):
    text: str


class ReasoningText(Struct, tag="reasoning_text", tag_field="type"):
    text: str


class MessageItem(Struct, tag="message", tag_field="type"):
    id: str
    status: ItemStatus
    content: list[OutputText]
    role: Literal["assistant"] = "assistant"


class ReasoningItem(Struct, tag="reasoning", tag_field="type"):
    id: str
    summary: list[SummaryText]
    content: list[ReasoningText]
    encrypted_content: str | UnsetType = UNSET  # provider state to echo back (chat/vendors.py)
    status: ItemStatus | UnsetType = UNSET  # set only when a failure cut the item short


class FunctionCallItem(Struct, tag="function_call", tag_field="type"):
    id: str
    status: ItemStatus
    call_id: str
    name: str
    arguments: str
    namespace: str | UnsetType = UNSET


class CustomToolCallItem(Struct, tag="custom_tool_call", tag_field="type"):
    id: str
    status: ItemStatus
    call_id: str
    name: str
    input: str


class LocalShellCallItem(Struct, tag="local_shell_call", tag_field="type"):
    id: str
    status: ItemStatus
    call_id: str | None
    action: JSON


class CompactionItem(Struct, tag="compaction", tag_field="type"):
    """A compacted history: the summary sealed in `encrypted_content` (responses/sealed.py)."""

    id: str
    encrypted_content: str


OutputItem: TypeAlias = (
    MessageItem
    | ReasoningItem
    | FunctionCallItem
    | CustomToolCallItem
    | LocalShellCallItem
    | CompactionItem
)


class InputTokensDetails(Struct):
    cached_tokens: int = 0
    cache_write_tokens: int = 0  # Chat Completions servers do not report cache writes


class OutputTokensDetails(Struct):
    reasoning_tokens: int = 0


class Usage(Struct):
    input_tokens: int
    input_tokens_details: InputTokensDetails
    output_tokens: int
    output_tokens_details: OutputTokensDetails
    total_tokens: int

    @classmethod
    def of(cls, usage: TokenUsage) -> Usage:
        """Our token usage -> the Responses `usage` object."""
        return cls(
            usage.input_tokens,
            InputTokensDetails(cached_tokens=usage.cached_input_tokens),
            usage.output_tokens,
            OutputTokensDetails(reasoning_tokens=usage.reasoning_output_tokens),
            usage.total_tokens,
        )


class ResponseError(Struct):
    code: str
    message: str
    param: str | None = None


class IncompleteDetails(Struct):
    reason: str


class ConversationRef(Struct):
    """The Response object's `conversation`: which conversation the turn belongs to."""

    id: str


class Response(Struct, kw_only=True):
    """The Response object. The request options it echoes are fixed when it is made
    (`ResponsesRequest.response`); the encoder fills in status, output, usage and the end."""

    id: str
    object: Literal["response"] = "response"
    created_at: int
    status: ResponseStatus = "in_progress"
    background: bool = False
    error: ResponseError | None = None
    incomplete_details: IncompleteDetails | None = None
    instructions: str | None = None
    max_output_tokens: int | None = None
    max_tool_calls: int | None = None
    model: str
    output: list[OutputItem] = field(default_factory=list)
    parallel_tool_calls: bool = True
    previous_response_id: str | None = None
    conversation: ConversationRef | None = None  # the conversation this turn was appended to
    prompt_cache_key: str | None = None
    reasoning: JSON | None = None
    safety_identifier: str | None = None
    store: bool = True
    temperature: float | None = None
    text: JSON = field(default_factory=lambda: {"format": {"type": "text"}})
    tool_choice: str | JSON = "auto"
    tools: list[JSON] = field(default_factory=list)
    top_logprobs: int | None = None
    top_p: float | None = None
    truncation: str = "disabled"
    usage: Usage | None = None
    user: str | None = None
    metadata: dict[str, str] = field(default_factory=dict)


class CompactedResponse(Struct, kw_only=True):
    """`POST /v1/responses/compact`'s answer: the user messages (as given, so plain JSON),
    then one compaction item, and the usage of the summary pass."""

    id: str
    object: Literal["response.compaction"] = "response.compaction"
    created_at: int
    output: list[JSON | CompactionItem]
    usage: Usage


encode = msgspec.json.Encoder().encode
_decode_response = msgspec.json.Decoder(Response).decode


def decode_response(data: bytes | str) -> Response:
    """A Response object written by `encode` (a stored one) -> the Struct."""
    return _decode_response(data)


def to_json(obj: Struct) -> JSON:
    """A wire object as plain JSON data (dicts and lists)."""
    out: JSON = msgspec.to_builtins(obj)
    return out
