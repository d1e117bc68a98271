"""A turn on a conversation (`responses.create(conversation=...)`): its history in, its items out.

Before the turn, the conversation's items are the history in front of `input` (read in one
statement: a turn sees every earlier append whole, or not at all). After it, the turn's input
and output items are appended in one transaction (`ConversationLog.append`), so a conversation
never holds half a turn. Two turns running at once on one conversation each see the items
appended before they started; their appends are ordered by commit, each turn's items together.
A failed turn appends nothing (the client retries it); `store: false` still appends, as the API
does: the conversation is the state the client asked for, the response object is not kept.

The input items get their ids here, before the response is stored, so a response's
`input_items` and the conversation's items name the same items with the same ids.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from ..errors import InputError
from ..items import Item, parse_items
from ..jsontypes import JSON
from ..store import Store
from ..store.conversations import ConversationNotFoundError, conversation_log
from .conversation_items import as_conversation_items
from .errors import ApiError

PARAM = "conversation"


def conversation_of(value: str | JSON | None) -> str | None:
    """The conversation id a request's `conversation` names (a string, or `{"id": ...}`)."""
    if value is None or isinstance(value, str):
        return value
    found = value.get("id")
    return found if isinstance(found, str) else None


def check_conversation_param(value: Any) -> None:
    """400 unless `conversation` is a non-empty id or an object with one (validate.py)."""
    if isinstance(value, dict) and not isinstance(value.get("id"), str):
        raise ApiError.invalid(
            "Missing required parameter: 'conversation.id'.", param="conversation.id"
        )
    if not conversation_of(value):
        raise ApiError.invalid("Invalid 'conversation': expected a conversation id.", param=PARAM)


def not_found(conversation_id: str) -> ApiError:
    """An unknown, deleted, expired or other tenant's conversation, named in a turn."""
    return ApiError.invalid(
        f"Conversation with id '{conversation_id}' not found.", param=PARAM, code="not_found"
    )


async def conversation_history(
    conversation_id: str, store: Store | None, tenant: str | None
) -> list[Item]:
    """The conversation's items, oldest first, as the history in front of this turn's input."""
    if store is None:
        raise ApiError.invalid(
            "conversation needs the response store, and this bridge runs without one "
            "(--no-store); send the whole history in `input` instead",
            param=PARAM,
            code="not_found",
        )
    try:
        items = await conversation_log(store).items(conversation_id, tenant=tenant)
    except ConversationNotFoundError:
        raise not_found(conversation_id) from None
    return parse_stored_items(items, f"conversation {conversation_id!r}")


def parse_stored_items(items: list[JSON], what: str) -> list[Item]:
    """Items the store kept (a conversation, a response chain), parsed; they are our own records,
    so a failure here is the store's (a 500 saying which `what`), not the client's (a 400)."""
    try:
        return parse_items(items)
    except InputError as exc:
        raise ApiError(500, f"stored {what} is unreadable: {exc}", "server_error") from None


def turn_inputs(inputs: Sequence[JSON]) -> tuple[JSON, ...]:
    """This turn's input items with the ids (and statuses) both the conversation and the stored
    response keep."""
    return tuple(as_conversation_items(inputs))


async def append_turn(
    store: Store,
    conversation_id: str,
    inputs: Sequence[JSON],
    outputs: Sequence[JSON],
    *,
    tenant: str | None,
) -> None:
    """Append the turn's input then output items, in one transaction."""
    items = [*inputs, *as_conversation_items(outputs)]
    await conversation_log(store).append(conversation_id, items, tenant=tenant)
