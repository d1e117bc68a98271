"""`item_reference` input items, replaced by the stored items they name.

A Responses client may send `{"type": "item_reference", "id": "msg_..."}` instead of an item it
got earlier (the AI SDK sends earlier assistant turns and reasoning this way). The id names an
input or output item of a stored response; only the caller's tenant's responses (and responses
with no tenant) are searched, so another tenant's id is unknown. An unknown id is a 400 whose
`param` names the input index: sending the turn without it would silently change its meaning.
"""

from __future__ import annotations

from ..errors import InputError
from ..items import Item, OtherItem, parse_item
from ..store import Store
from .errors import ApiError

REFERENCE_TYPE = "item_reference"
_ECHO_MAX = 200  # characters of a client's id worth echoing in a message


def is_reference(item: Item) -> bool:
    return isinstance(item, OtherItem) and item.type == REFERENCE_TYPE


async def resolve_references(
    items: list[Item], store: Store | None, tenant: str | None
) -> list[Item]:
    """`items` with each `item_reference` replaced by the stored item (unchanged if none)."""
    if not any(is_reference(item) for item in items):
        return items
    resolved: list[Item] = []
    for index, item in enumerate(items):
        if not isinstance(item, OtherItem) or item.type != REFERENCE_TYPE:
            resolved.append(item)
            continue
        param = f"input[{index}]"
        ref = item.raw.get("id")
        if not isinstance(ref, str) or not ref:
            raise ApiError.invalid(
                f"{param}.id: an item_reference needs the id of a stored item",
                param=f"{param}.id",
            )
        if store is None:
            raise ApiError.invalid(
                f"{param}: item_reference needs the response store, and this bridge runs "
                "without one (--no-store); send the item itself instead",
                param=param,
                code="item_not_found",
            )
        stored = await store.find_item(ref, tenant=tenant)
        if stored is None:
            shown = ref if len(ref) <= _ECHO_MAX else f"{ref[:_ECHO_MAX]}..."
            raise ApiError.invalid(
                f"{param}: Item with id '{shown}' not found.", param=param, code="item_not_found"
            )
        try:
            resolved.append(parse_item(stored, index))
        except InputError as exc:  # our own record: a failure here is the store's
            raise ApiError(
                500, f"stored item {ref[:_ECHO_MAX]!r} is unreadable: {exc}", "server_error"
            ) from None
    return resolved
