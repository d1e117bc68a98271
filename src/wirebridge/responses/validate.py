"""What the OpenAI API refuses, refused here too: value ranges, limits, and input a Chat upstream
cannot be sent.

Pure. `request.py` types the body (msgspec); this module checks the values the types let
through, with the API's documented ranges and the API's `param` names, so a client learns about
its mistake from a 400 instead of from an upstream that silently clamps, ignores or misreads it.

Input the bridge cannot send is decided per kind (docs/server.md, "Bad requests"):
- a type the Responses API does not have: 400 naming `input[i].type`;
- a Responses item that has no Chat Completions form (a hosted tool's call, e.g.
  `web_search_call`): dropped, with a warning in the log (it records what a hosted tool did;
  the model can go on without it, and Codex replays such items every turn);
- an `input_file` part: 400 naming it (the answer would silently ignore the file otherwise);
- `item_reference` and `compaction` items pass through untouched (resolved elsewhere).
"""

from __future__ import annotations

import logging
import re
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

from ..items import Item, Message, OtherItem, OtherPart
from .clip import clip
from .conversation_turn import check_conversation_param
from .errors import ApiError

if TYPE_CHECKING:
    from .request import ResponsesBody

log = logging.getLogger("wirebridge.server")

TEMPERATURE_RANGE = (0.0, 2.0)
TOP_P_RANGE = (0.0, 1.0)
TOP_LOGPROBS_RANGE = (0, 20)
FORMAT_TYPES = ("text", "json_object", "json_schema")
VERBOSITY = ("low", "medium", "high")
TRUNCATION = ("auto", "disabled")
METADATA_MAX_KEYS = 16
METADATA_KEY_MAX_CHARS = 64
METADATA_VALUE_MAX_CHARS = 512
MODEL_MAX_CHARS = 256

# Item types of the Responses API with no Chat Completions form: dropped with a warning.
HOSTED_ITEM_TYPES = frozenset(
    {
        "web_search_call",
        "file_search_call",
        "computer_call",
        "computer_call_output",
        "code_interpreter_call",
        "image_generation_call",
        "local_shell_call_output",
        "mcp_list_tools",
        "mcp_approval_request",
        "mcp_approval_response",
        "mcp_call",
        "shell_call",
        "shell_call_output",
        "apply_patch_call",
        "apply_patch_call_output",
        "ghost_snapshot",  # Codex's own undo record, never meant for a model
    }
)
_HOSTED_SUFFIXES = ("_call", "_call_output", "_output")
# Kept as they are: resolved (item_reference) or carried (compaction) by other parts.
PASS_THROUGH_ITEM_TYPES = frozenset(
    {"item_reference", "compaction", "compaction_summary", "compaction_trigger"}
    # newer Codex: folded into tools or messages by codex_items.py
    | {"additional_tools", "tool_search_output", "agent_message"}
)
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")


def check_body(body: ResponsesBody, model: str) -> None:
    """Ranges and limits of the request's options; raises `ApiError` (400) naming the param."""
    if _CONTROL.search(model):
        raise ApiError.invalid(
            "Invalid value for 'model': control characters are not allowed", param="model"
        )
    if len(model) > MODEL_MAX_CHARS:
        raise ApiError.invalid(
            f"Invalid value for 'model': longer than {MODEL_MAX_CHARS} characters",
            param="model",
        )
    if body.background and body.store is False:
        raise ApiError.invalid(
            "background mode requires store: true (the run is kept in the response store)",
            param="background",
        )
    if body.conversation is not None:
        _check_conversation(body)
    _in_range("temperature", body.temperature, TEMPERATURE_RANGE)
    _in_range("top_p", body.top_p, TOP_P_RANGE)
    _in_range("top_logprobs", body.top_logprobs, TOP_LOGPROBS_RANGE)
    _one_of("truncation", body.truncation, TRUNCATION)
    if body.text is not None:
        _one_of("text.verbosity", body.text.verbosity, VERBOSITY)
        if body.text.format is not None:
            _check_format(body.text.format)
    if body.metadata is not None:
        check_metadata(body.metadata)
    if isinstance(body.tool_choice, Mapping):
        _check_tool_choice(body.tool_choice, body.tools or [])


def _check_conversation(body: ResponsesBody) -> None:
    """A conversation id (or `{"id": ...}`), never with `previous_response_id`, as in the API."""
    if body.previous_response_id is not None:
        raise ApiError.invalid(
            "Mutually exclusive parameters: Ensure you are only providing one of: "
            "'previous_response_id' or 'conversation'.",
            param="conversation",
            code="mutually_exclusive_parameters",
        )
    check_conversation_param(body.conversation)


def check_input(body: ResponsesBody, items: list[Item]) -> list[Item]:
    """The items to send: unknown types and `input_file` parts refused, hosted calls dropped."""
    empty = not items or body.input == ""
    if empty and body.previous_response_id is None and body.conversation is None:
        raise ApiError.invalid(
            "'input' is required and must not be empty (unless previous_response_id or "
            "conversation names a conversation to continue)",
            param="input",
            code="empty_input",
        )
    kept: list[Item] = []
    dropped: list[str] = []
    for i, item in enumerate(items):
        if isinstance(item, OtherItem):
            if item.type in PASS_THROUGH_ITEM_TYPES:
                kept.append(item)
                continue
            if not _hosted(item.type):
                raise ApiError.invalid(
                    f"Invalid value for 'input[{i}].type': {clip(item.type)!r} is not a "
                    "Responses item type",
                    param=f"input[{i}].type",
                    code="invalid_value",
                )
            dropped.append(f"input[{i}] ({item.type})")
            continue
        if isinstance(item, Message):
            _check_parts(item, i)
        kept.append(item)
    if dropped:
        log.warning("dropped input items with no Chat Completions form: %s", ", ".join(dropped))
    return kept


def _hosted(kind: str) -> bool:
    """A Responses item the upstream cannot take: a hosted tool's call or output (the API adds
    such tools faster than any list here: their names say what they are)."""
    return kind in HOSTED_ITEM_TYPES or kind.endswith(_HOSTED_SUFFIXES) or kind.startswith("mcp_")


def _check_parts(message: Message, index: int) -> None:
    for j, part in enumerate(message.content):
        if not isinstance(part, OtherPart):
            continue
        where = f"input[{index}].content[{j}]"
        if part.type == "input_file":
            raise ApiError.invalid(
                f"'{where}': input_file parts cannot be sent to a Chat Completions upstream; "
                "send the file's text as input_text",
                param=where,
                code="unsupported_value",
            )
        raise ApiError.invalid(
            f"Invalid value for '{where}.type': {clip(part.type)!r} is not a content part "
            "type (input_text, output_text, input_image)",
            param=f"{where}.type",
            code="invalid_value",
        )


def _in_range(name: str, value: float | None, bounds: tuple[float, float]) -> None:
    low, high = bounds
    if value is not None and not low <= value <= high:
        raise ApiError.invalid(
            f"Invalid value for '{name}': {clip(repr(value))}; it must be between "
            f"{_num(low)} and {_num(high)}",
            param=name,
            code="invalid_value",
        )


def _num(value: float) -> str:
    return str(int(value)) if value == int(value) else str(value)


def _one_of(name: str, value: str | None, allowed: Sequence[str]) -> None:
    if value is not None and value not in allowed:
        raise ApiError.invalid(
            f"Invalid value for '{name}': {clip(value)!r}; supported values are "
            + ", ".join(allowed),
            param=name,
            code="invalid_value",
        )


def _check_format(fmt: Mapping[str, Any]) -> None:
    kind = fmt.get("type")
    if not isinstance(kind, str):
        raise ApiError.invalid(
            "Invalid value for 'text.format.type': a string is required",
            param="text.format.type",
        )
    _one_of("text.format.type", kind, FORMAT_TYPES)
    if kind != "json_schema":
        return
    if not isinstance(fmt.get("name"), str) or not fmt["name"]:
        raise ApiError.invalid(
            "Missing required parameter: 'text.format.name'", param="text.format.name"
        )
    if not isinstance(fmt.get("schema"), Mapping):
        raise ApiError.invalid(
            "Missing required parameter: 'text.format.schema' (a JSON Schema object)",
            param="text.format.schema",
        )


def check_metadata(metadata: Mapping[str, str]) -> None:
    if len(metadata) > METADATA_MAX_KEYS:
        raise _bad_metadata(f"{len(metadata)} keys; at most {METADATA_MAX_KEYS} are allowed")
    for key, value in metadata.items():
        if len(key) > METADATA_KEY_MAX_CHARS:
            raise _bad_metadata(
                f"the key {clip(key)!r} is longer than {METADATA_KEY_MAX_CHARS} characters"
            )
        if len(value) > METADATA_VALUE_MAX_CHARS:
            raise _bad_metadata(
                f"the value of {clip(key)!r} is {len(value)} characters; "
                f"at most {METADATA_VALUE_MAX_CHARS} are allowed"
            )


def _bad_metadata(why: str) -> ApiError:
    """Every metadata limit is reported alike: OpenAI's `invalid_value` on `metadata`."""
    return ApiError.invalid(f"Invalid 'metadata': {why}", param="metadata", code="invalid_value")


def _declared_names(tools: Sequence[Any]) -> set[str]:
    names: set[str] = set()
    for tool in tools:
        if not isinstance(tool, Mapping):
            continue
        if tool.get("type") in ("function", "custom") and isinstance(tool.get("name"), str):
            names.add(tool["name"])
        elif tool.get("type") == "namespace" and isinstance(tool.get("tools"), list):
            names |= _declared_names(tool["tools"])
    return names


def _check_tool_choice(choice: Mapping[str, Any], tools: Sequence[Any]) -> None:
    kind = choice.get("type")
    if kind not in ("function", "custom"):
        return
    name = choice.get("name")
    if not isinstance(name, str):
        raise ApiError.invalid(
            "Missing required parameter: 'tool_choice.name'", param="tool_choice.name"
        )
    if name not in _declared_names(tools):
        raise ApiError.invalid(
            f"Invalid value for 'tool_choice': no {kind} tool named {clip(name)!r} is declared "
            "in 'tools'",
            param="tool_choice",
            code="invalid_value",
        )


_TOKEN = re.compile(rb'"(?:[^"\\]|\\.)*"|[\[\]{}]')
_COLON = re.compile(rb"\s*:")
_SURELY_TOO_DEEP = 2000


def too_deep(raw: bytes) -> ApiError:
    """The 400 for a body nested deeper than the JSON decoder goes, naming the top-level field.

    Only the failed decode pays for this scan (strings and brackets, in C); it names the
    top-level field that nests deepest."""
    depth = 0
    key: bytes | None = None
    deepest: dict[bytes, int] = {}
    for match in _TOKEN.finditer(raw):
        token = match.group()
        if token[0] == 0x22:  # a string: at depth 1, followed by ':', it names a field
            if depth == 1 and _COLON.match(raw, match.end()):
                key = token[1:-1]
            continue
        depth += 1 if token in (b"[", b"{") else -1
        if key is not None and depth > deepest.get(key, 0):
            deepest[key] = depth
            if depth > _SURELY_TOO_DEEP:
                break
    param = None
    if deepest:
        name = max(deepest, key=lambda k: deepest[k]).decode("utf-8", "replace")
        param = clip(name)
    where = f"'{param}'" if param else "the request body"
    return ApiError.invalid(
        f"Invalid value for {where}: JSON nested too deeply", param=param, code="invalid_json"
    )
