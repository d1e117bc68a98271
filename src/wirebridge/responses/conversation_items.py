"""Items as a conversation holds them: the API's shape, given once, when they are added.

Pure. The Conversations API answers items in their output form: every item has an `id` (a
`msg_`, `fc_`, ... id, kept for good: it is the paging cursor and what `item_reference` names)
and the kinds that carry a `status` have one (the openai SDK's conversation item types require
it). A client's input item is parsed and dumped back (`items.parse` / `items.dump`), so a string
`content` becomes the list of parts the API lists, and a mistake is a 400 naming `items[i]`.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from typing import Any

from ..errors import InputError
from ..items import Item, dump_item, parse_item
from ..jsontypes import JSON
from ..store.records import new_item_id, with_item_ids
from .errors import ApiError

MAX_ITEMS_PER_REQUEST = 20  # the API's limit for create and items.create
# Kinds whose conversation item type has a required `status` (openai SDK `ConversationItem`).
_WITH_STATUS = frozenset(
    {"message", "function_call", "function_call_output", "custom_tool_call", "local_shell_call"}
)


def as_conversation_items(
    items: Iterable[JSON], new_id: Callable[[str], str] = new_item_id
) -> list[JSON]:
    """`items` (dumped Responses items) with ids and statuses, as a conversation lists them."""
    shaped: list[JSON] = []
    for item in with_item_ids(items, new_id):
        if item.get("type") in _WITH_STATUS and not isinstance(item.get("status"), str):
            item = {**item, "status": "completed"}
        content = item.get("content")
        if item.get("type") == "message" and isinstance(content, list):
            item = {**item, "content": [_part(p) for p in content]}
        shaped.append(item)
    return shaped


def _part(part: Any) -> Any:
    """A content part with the fields the API always lists (`annotations`, `detail`)."""
    if not isinstance(part, dict):
        return part
    kind = part.get("type")
    if kind == "output_text" and "annotations" not in part:
        return {**part, "annotations": []}
    if kind == "input_image" and part.get("detail") is None:
        return {**part, "detail": "auto"}
    return part


def parse_new_items(raw: Sequence[Any], param: str = "items") -> list[Item]:
    """A client's `items` (create, or items.create): each a Responses input item; at most 20."""
    if len(raw) > MAX_ITEMS_PER_REQUEST:
        raise ApiError.invalid(
            f"Invalid '{param}': array too long. Expected an array with maximum length "
            f"{MAX_ITEMS_PER_REQUEST}, but got an array with length {len(raw)} instead.",
            param=param,
            code="array_above_max_length",
        )
    parsed: list[Item] = []
    for index, value in enumerate(raw):
        where = f"{param}[{index}]"
        try:
            parsed.append(parse_item(value, index))
        except InputError as exc:  # its `input[i]` is this request's `items[i]`
            prefix = f"input[{index}]"
            raise ApiError.invalid(
                str(exc).replace(prefix, where, 1), param=exc.param.replace(prefix, where, 1)
            ) from None
    return parsed


def dump_items(items: Iterable[Item]) -> list[JSON]:
    return [dump_item(item) for item in items]
