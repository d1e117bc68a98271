"""A `POST /v1/responses` body -> a validated request: the `Prompt`, the routing key, the echo.

Pure: bytes in, a `ResponsesRequest` out, or an `ApiError` (400) whose `param` names the offending
field the way the OpenAI API does (`temperature`, `text.format`, `input[3].call_id`). The body's
known fields are typed by a `msgspec` struct (one decode, no per-field Python checks); fields we do
not know are ignored (the API grows faster than any bridge) and listed for a debug log line.

Accepted: what Codex sends (its `client_metadata`, `include`, `prompt_cache_key`, namespace and
web_search tools) and what the openai SDK sends (`input` as a string or a list, `instructions`,
`tools`, `tool_choice`, `text.format`, `reasoning`, `store`, `metadata`, ...).
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

import msgspec

from ..errors import InputError
from ..items import Item, parse_items
from ..jsontypes import JSON
from ..prompt import Prompt
from ..wire import ConversationRef, Response
from .conversation_turn import conversation_of
from .errors import ApiError
from .validate import check_body, check_input, too_deep


class TextOptions(msgspec.Struct):
    format: JSON | None = None
    verbosity: str | None = None


class ReasoningOptions(msgspec.Struct):
    effort: str | None = None
    summary: str | None = None
    generate_summary: str | None = None


class ResponsesBody(msgspec.Struct):
    """The request fields we read or echo, with the types the OpenAI API gives them."""

    model: str | None = None
    input: str | list[Any] | None = None
    instructions: str | None = None
    stream: bool | None = None
    tools: list[JSON] | None = None
    tool_choice: str | JSON | None = None
    parallel_tool_calls: bool | None = None
    max_output_tokens: int | None = None
    temperature: float | None = None
    top_p: float | None = None
    text: TextOptions | None = None
    reasoning: ReasoningOptions | None = None
    store: bool | None = None
    include: list[str] | None = None
    metadata: dict[str, str] | None = None
    previous_response_id: str | None = None
    prompt_cache_key: str | None = None
    prompt_cache_retention: str | None = None
    user: str | None = None
    safety_identifier: str | None = None
    service_tier: str | None = None
    truncation: str | None = None
    background: bool | None = None
    max_tool_calls: int | None = None
    top_logprobs: int | None = None
    stream_options: JSON | None = None
    client_metadata: JSON | None = None  # Codex
    conversation: str | JSON | None = None


KNOWN_FIELDS = frozenset(ResponsesBody.__struct_fields__)
TOOL_CHOICES = ("none", "auto", "required")

_decode_body = msgspec.json.Decoder(ResponsesBody).decode
_decode_any = msgspec.json.Decoder().decode
_PATH = re.compile(r"^(?P<msg>.*?)(?: - at `\$(?P<path>[^`]*)`)?$", re.DOTALL)


@dataclass(slots=True)
class ResponsesRequest:
    body: ResponsesBody
    model: str
    stream: bool
    items: list[Item]  # this request's own input (a stored history is prepended later)
    unknown_fields: list[str] = field(default_factory=list)

    @property
    def previous_response_id(self) -> str | None:
        return self.body.previous_response_id

    @property
    def store(self) -> bool:
        """Whether the client asked for the response to be stored (the API's default: yes)."""
        return self.body.store is not False

    @property
    def wants_reasoning_summary(self) -> bool:
        reasoning = self.body.reasoning
        if reasoning is None:
            return False
        summary = reasoning.summary or reasoning.generate_summary
        return summary is not None and summary != "none"

    def prompt(self, items: list[Item]) -> Prompt:
        """The turn to send upstream; `items` is the full history (stored chain + this input)."""
        b = self.body
        return Prompt(
            b.instructions,
            items,
            b.tools or (),
            tool_choice=b.tool_choice,
            # One call allowed: ask for one (toolcap.py drops any further ones anyway).
            parallel_tool_calls=False
            if b.parallel_tool_calls is None and b.max_tool_calls == 1
            else b.parallel_tool_calls,
            temperature=b.temperature,
            top_p=b.top_p,
            max_output_tokens=b.max_output_tokens,
            text_format=b.text.format if b.text is not None else None,
            reasoning_effort=b.reasoning.effort if b.reasoning is not None else None,
        )

    def response(self, response_id: str, created_at: int) -> Response:
        """The Response object, in progress, echoing the request options as the API does."""
        b = self.body
        reasoning = None
        if b.reasoning is not None:
            reasoning = {"effort": b.reasoning.effort, "summary": b.reasoning.summary}
        conversation = conversation_of(b.conversation)
        text: JSON = {"format": {"type": "text"}}
        if b.text is not None:
            text = {"format": b.text.format or {"type": "text"}}
            if b.text.verbosity is not None:
                text["verbosity"] = b.text.verbosity
        return Response(
            id=response_id,
            created_at=created_at,
            background=bool(b.background),
            instructions=b.instructions,
            max_output_tokens=b.max_output_tokens,
            max_tool_calls=b.max_tool_calls,
            model=self.model,
            parallel_tool_calls=b.parallel_tool_calls is not False,
            previous_response_id=b.previous_response_id,
            conversation=None if conversation is None else ConversationRef(conversation),
            prompt_cache_key=b.prompt_cache_key,
            reasoning=reasoning,
            safety_identifier=b.safety_identifier,
            store=self.store,
            temperature=b.temperature,
            text=text,
            tool_choice=b.tool_choice if b.tool_choice is not None else "auto",
            tools=b.tools or [],
            top_logprobs=b.top_logprobs,
            top_p=b.top_p,
            truncation=b.truncation or "disabled",
            user=b.user,
            metadata=b.metadata or {},
        )


def _param(path: str) -> str:
    """msgspec's `$.text.format` / `$.tools[0]` -> the API's `text.format` / `tools[0]`.

    A map value is reported as `[...]` (no key): the param is then the map itself."""
    path = path.replace("[...]", "")
    return path[1:] if path.startswith(".") else path


def parse_request(raw: bytes, *, default_model: str | None = None) -> ResponsesRequest:
    """Validate a request body; raise `ApiError` (400) naming the param on any mistake."""
    try:
        body = _decode_body(raw)
    except msgspec.ValidationError as exc:
        match = _PATH.match(str(exc))
        message = match.group("msg") if match else str(exc)
        path = (match.group("path") if match else None) or ""
        param = _param(path) or None
        if param is None and message.startswith("Expected `object`"):
            raise ApiError.invalid("the request body must be a JSON object") from None
        where = f"Invalid type for '{param}': " if param else ""
        raise ApiError.invalid(f"{where}{_lower_first(message)}", param=param) from None
    except msgspec.DecodeError as exc:
        raise ApiError.invalid(
            f"the request body is not valid JSON: {exc}", code="invalid_json"
        ) from None
    except RecursionError:
        raise too_deep(raw) from None

    model = body.model if body.model is not None else default_model
    if not model:
        raise ApiError.invalid("you must provide a model parameter", param="model")
    if isinstance(body.tool_choice, str) and body.tool_choice not in TOOL_CHOICES:
        raise ApiError.invalid(
            f"Invalid value for 'tool_choice': {body.tool_choice!r}; "
            f"expected one of {', '.join(TOOL_CHOICES)} or an object",
            param="tool_choice",
        )
    for name in ("max_output_tokens", "max_tool_calls"):
        value = getattr(body, name)
        if value is not None and value < 1:
            raise ApiError.invalid(
                f"Invalid value for '{name}': must be at least 1, got {value}", param=name
            )
    if body.text is not None and body.text.format is not None:
        kind = body.text.format.get("type")
        if not isinstance(kind, str):
            raise ApiError.invalid(
                "Invalid value for 'text.format.type': a string is required",
                param="text.format.type",
            )
    check_body(body, model)
    try:
        items = parse_items(body.input) if body.input is not None else []
    except InputError as exc:
        raise ApiError.invalid(str(exc), param=exc.param or "input") from None
    items = check_input(body, items)
    return ResponsesRequest(body, model, bool(body.stream), items)


def unknown_fields(raw: bytes) -> list[str]:
    """The top-level fields we ignore (for a debug log line; costs a second decode)."""
    try:
        data = _decode_any(raw)
    except msgspec.DecodeError:
        return []
    return sorted(k for k in data if k not in KNOWN_FIELDS) if isinstance(data, dict) else []


def _lower_first(text: str) -> str:
    return text[:1].lower() + text[1:]
