"""What a stored response is, and the pure rules every backend shares.

This module owns the record (`StoredResponse`), the page of input items (`ItemPage`), and the
logic that must not differ between SQLite and PostgreSQL: preparing a record for writing (item
ids, expiry), paging input items with a cursor, and assembling a `previous_response_id` chain
from the rows a backend fetched. It performs no I/O and reads no clock: `now` is always passed in.

A record holds only what the Responses API returns to a client (items, usage, the Response
object). It has no field for request headers or provider settings, and the one place a client
may put a credential inside a Response object (an `mcp` tool's `headers` / `authorization`,
echoed in `tools`) is stripped before writing: no secret reaches the database.
"""

from __future__ import annotations

import itertools
import json
import secrets
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, replace
from typing import Any, Literal, get_args

from ..jsontypes import JSON
from .errors import InvalidParameterError, PreviousResponseNotFoundError

Status = Literal["completed", "failed", "incomplete"]
Order = Literal["asc", "desc"]
STATUSES: frozenset[str] = frozenset(get_args(Status))

DEFAULT_TTL_SECONDS = 30 * 24 * 3600  # default retention: 30 days
DEFAULT_LIMIT = 20  # OpenAI's input_items defaults: limit 20 (1..100), order desc
MAX_LIMIT = 100
DEFAULT_ORDER: Order = "desc"
MAX_CHAIN_DEPTH = 10_000  # bounds the walk so a corrupt (cyclic) chain ends in an error
MAX_CHILDREN = 16  # sibling steps searched for a call's reasoning (`Store.child_outputs`)

# Prefixes the OpenAI API uses for item ids; anything else gets a generic one.
ITEM_ID_PREFIX = {
    "message": "msg",
    "function_call": "fc",
    "function_call_output": "fco",
    "custom_tool_call": "ctc",
    "custom_tool_call_output": "ctco",
    "reasoning": "rs",
    "local_shell_call": "lsh",
    "web_search_call": "ws",
}


@dataclass(frozen=True, slots=True)
class StoredResponse:
    """One finished response, written in one transaction and read back whole.

    `input_items` are the items sent with this request only (not the earlier chain);
    `expires_at` is unix seconds, `None` on a record being saved meaning "the store's TTL".
    `tenant` is who made it (a key id or a group name, never a key); `None` is no one: every
    reader may see it (rows from before tenants, bridges without keys).
    """

    id: str
    created_at: int
    model: str
    status: Status
    previous_response_id: str | None
    input_items: tuple[JSON, ...]
    output_items: tuple[JSON, ...]
    usage: JSON | None
    response: JSON
    expires_at: int | None = None
    tenant: str | None = None


@dataclass(frozen=True, slots=True)
class ItemPage:
    """One page of a response's input items, shaped like the OpenAI list object."""

    data: tuple[JSON, ...]
    first_id: str | None
    last_id: str | None
    has_more: bool

    def to_json(self) -> JSON:
        """The body of `GET /v1/responses/{id}/input_items`."""
        return {
            "object": "list",
            "data": list(self.data),
            "first_id": self.first_id,
            "last_id": self.last_id,
            "has_more": self.has_more,
        }


@dataclass(frozen=True, slots=True)
class ChainLink:
    """One row of a `previous_response_id` walk, as a backend fetched it (newest first)."""

    id: str
    previous_response_id: str | None
    input_items: str  # JSON text, decoded only once the chain is known to be whole
    output_items: str


# ---------------------------------------------------------------------------------------------
# JSON text


def encode_json(value: Any) -> str:
    """Compact JSON text that both SQLite and PostgreSQL TEXT columns accept.

    Non-ASCII stays readable; a lone surrogate (valid in a JSON escape, invalid in UTF-8)
    falls back to `\\u` escapes rather than failing the write. NUL is always escaped by `json`.
    """
    text = json.dumps(value, ensure_ascii=False, separators=(",", ":"))
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        text = json.dumps(value, ensure_ascii=True, separators=(",", ":"))
    return text


def decode_json(text: str | None) -> Any:
    return None if text is None else json.loads(text)


# ---------------------------------------------------------------------------------------------
# Writing


def new_item_id(item_type: str) -> str:
    return f"{ITEM_ID_PREFIX.get(item_type, 'item')}_{secrets.token_hex(24)}"


def with_item_ids(
    items: Iterable[JSON], new_id: Callable[[str], str] = new_item_id
) -> tuple[JSON, ...]:
    """Give every item an `id` (kept when present): input-item cursors are item ids."""
    out: list[JSON] = []
    for item in items:
        if isinstance(item.get("id"), str) and item["id"]:
            out.append(item)
        else:
            out.append({"id": new_id(str(item.get("type", "item"))), **item})
    return tuple(out)


def prepare_for_save(
    record: StoredResponse,
    *,
    ttl_seconds: float | None,
    new_id: Callable[[str], str] = new_item_id,
) -> StoredResponse:
    """Check a record and fill in what the store decides: input item ids and `expires_at`."""
    if not record.id:
        raise ValueError("a stored response needs a non-empty id")
    if record.status not in STATUSES:
        raise ValueError(
            f"status must be one of {sorted(STATUSES)} to be stored, not {record.status!r}"
        )
    expires_at = record.expires_at
    if expires_at is None and ttl_seconds is not None:
        expires_at = record.created_at + int(ttl_seconds)
    return replace(
        record,
        input_items=with_item_ids(record.input_items, new_id),
        output_items=tuple(record.output_items),
        response=without_credentials(record.response),
        expires_at=expires_at,
    )


def check_ttl(ttl_seconds: float | None) -> float | None:
    if ttl_seconds is not None and not ttl_seconds > 0:
        raise ValueError(f"ttl_seconds must be positive (None keeps forever), not {ttl_seconds}")
    return ttl_seconds


TOOL_CREDENTIAL_KEYS = ("headers", "authorization")  # fields of the Responses `mcp` tool


def without_credentials(response: JSON) -> JSON:
    """The Response object minus credentials a client put in its tool definitions."""
    tools = response.get("tools")
    if not isinstance(tools, list) or not any(
        isinstance(t, dict) and any(k in t for k in TOOL_CREDENTIAL_KEYS) for t in tools
    ):
        return response
    clean = [
        {k: v for k, v in t.items() if k not in TOOL_CREDENTIAL_KEYS} if isinstance(t, dict) else t
        for t in tools
    ]
    return {**response, "tools": clean}


# ---------------------------------------------------------------------------------------------
# Reading


def check_page_params(limit: int, order: str) -> None:
    if isinstance(limit, bool) or not isinstance(limit, int) or not 1 <= limit <= MAX_LIMIT:
        raise InvalidParameterError("limit", f"must be an integer from 1 to {MAX_LIMIT}")
    if order not in ("asc", "desc"):
        raise InvalidParameterError("order", f"must be 'asc' or 'desc', not {order!r}")


def paginate(
    items: Sequence[JSON],
    *,
    after: str | None = None,
    limit: int = DEFAULT_LIMIT,
    order: str = DEFAULT_ORDER,
) -> ItemPage:
    """The page of `items` (stored oldest first) after the item `after`, in `order`.

    `after` is an item id from an earlier page in the same order; with duplicate ids the first
    one in that order is the cursor. An id that is not among the items is an error naming
    `after`, as a cursor that silently restarts would repeat items forever.
    """
    check_page_params(limit, order)
    ordered = list(items) if order == "asc" else list(reversed(items))
    start = 0
    if after is not None:
        for index, item in enumerate(ordered):
            if item.get("id") == after:
                start = index + 1
                break
        else:
            raise InvalidParameterError(
                "after", f"no input item with id '{after}' in this response"
            )
    page = tuple(ordered[start : start + limit])
    return ItemPage(
        data=page,
        first_id=page[0].get("id") if page else None,
        last_id=page[-1].get("id") if page else None,
        has_more=start + limit < len(ordered),
    )


def assemble_chain(start_id: str, links: Sequence[ChainLink], *, max_depth: int) -> list[JSON]:
    """The history `previous_response_id = start_id` stands for: each response's inputs then
    outputs, oldest response first.

    `links` is the walk from `start_id` towards the root, newest first, as far as live rows
    reach (at most `max_depth + 1` rows). A walk that stops on a row that still names a
    previous response has a missing link (deleted or expired), which makes the whole chain
    unknown: continuing from half a conversation would silently change its meaning.
    """
    if not links or links[0].id != start_id:
        raise PreviousResponseNotFoundError(start_id)
    for newer, older in itertools.pairwise(links):
        if newer.previous_response_id != older.id:
            raise PreviousResponseNotFoundError(start_id, missing_id=newer.previous_response_id)
    root = links[-1]
    if root.previous_response_id is not None:
        if len(links) > max_depth:
            raise PreviousResponseNotFoundError(start_id, max_depth=max_depth)
        raise PreviousResponseNotFoundError(start_id, missing_id=root.previous_response_id)
    history: list[JSON] = []
    for link in reversed(links):
        history.extend(decode_json(link.input_items))
        history.extend(decode_json(link.output_items))
    return history


# ---------------------------------------------------------------------------------------------
# Rows: the column order every backend's SELECT and INSERT use

COLUMNS = (
    "id",
    "created_at",
    "model",
    "status",
    "previous_response_id",
    "input_items",
    "output_items",
    "usage",
    "response",
    "expires_at",
    "tenant",
)


def record_to_row(record: StoredResponse) -> tuple[Any, ...]:
    return (
        record.id,
        record.created_at,
        record.model,
        record.status,
        record.previous_response_id,
        encode_json(list(record.input_items)),
        encode_json(list(record.output_items)),
        None if record.usage is None else encode_json(record.usage),
        encode_json(record.response),
        record.expires_at,
        record.tenant,
    )


def row_to_record(row: Sequence[Any]) -> StoredResponse:
    rid, created_at, model, status, previous, inputs, outputs = row[:7]
    usage, response, expires_at, tenant = row[7:]
    return StoredResponse(
        id=rid,
        created_at=int(created_at),
        model=model,
        status=status,
        previous_response_id=previous,
        input_items=tuple(decode_json(inputs)),
        output_items=tuple(decode_json(outputs)),
        usage=decode_json(usage),
        response=decode_json(response),
        expires_at=None if expires_at is None else int(expires_at),
        tenant=tenant,
    )


def item_ids(record: StoredResponse) -> list[str]:
    """The distinct ids of a record's input and output items (what `item_reference` finds)."""
    ids = (item.get("id") for item in (*record.input_items, *record.output_items))
    return list(dict.fromkeys(i for i in ids if isinstance(i, str) and i))


def find_item(item_id: str, inputs: str, outputs: str) -> JSON | None:
    """The item with this id among one row's input then output items (JSON text), or None."""
    for text in (inputs, outputs):
        for item in decode_json(text):
            if isinstance(item, dict) and item.get("id") == item_id:
                found: JSON = item
                return found
    return None
