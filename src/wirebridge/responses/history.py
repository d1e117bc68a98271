"""The conversation-state seam: where a stored history comes in and a finished response goes out.

The handler calls exactly two functions here. `resolve_history` builds the items sent upstream
from the request's `input` (and, with a store, the stored chain of `previous_response_id` in
front of it); `record_response` is handed every finished response (completed, incomplete or
failed) so a store can keep it. Without a store, `previous_response_id` is a 400 naming that param
(the bridge keeps no state of its own), and finished responses are dropped.

`ResponseStore` is the part of `wirebridge.store.Store` (issue 6: SQLite, PostgreSQL) the handler
uses; it is duck-typed so the server does not import a database driver unless `--store` is given.
"""

from __future__ import annotations

import importlib
import logging
import re
from typing import Any, Protocol

from ..errors import InputError
from ..items import Item, dump_item, parse_items
from .errors import ApiError
from .request import ResponsesRequest

JSON = dict[str, Any]
log = logging.getLogger("wirebridge.server")


class ResponseStore(Protocol):
    async def load_chain(self, previous_response_id: str) -> list[JSON]:
        """The items the id stands for (each response's inputs, then outputs, root first).

        Raises an error whose `param` is `previous_response_id` when it is unknown."""
        ...

    async def save(self, record: Any) -> Any:
        """Keep a finished response (a `wirebridge.store.StoredResponse`)."""
        ...

    async def close(self) -> None: ...


async def resolve_history(request: ResponsesRequest, store: ResponseStore | None) -> list[Item]:
    """The items to send upstream for this request."""
    previous = request.previous_response_id
    if previous is None:
        return request.items
    if store is None:
        raise ApiError.invalid(
            "previous_response_id needs a response store, and this bridge runs without one "
            "(start it with --store); send the whole history in `input` instead",
            param="previous_response_id",
            code="previous_response_not_found",
        )
    try:
        chain = await store.load_chain(previous)
    except Exception as exc:
        if getattr(exc, "param", None) == "previous_response_id":
            raise ApiError.invalid(
                str(exc), param="previous_response_id", code="previous_response_not_found"
            ) from None
        raise
    try:
        stored = parse_items(chain)
    except InputError as exc:  # our own records: a failure here is the store's, not the client's
        raise ApiError(
            500, f"stored history of {previous!r} is unreadable: {exc}", "server_error"
        ) from None
    return [*stored, *request.items]


async def record_response(
    store: ResponseStore | None, request: ResponsesRequest, response: JSON
) -> None:
    """Hand a finished response to the store (if any, and if the client asked to store it)."""
    if store is None or not request.store:
        return
    # Imported here: only a bridge started with --store has the store package loaded.
    stored_response = importlib.import_module("wirebridge.store").StoredResponse
    record = stored_response(
        id=response["id"],
        created_at=int(response["created_at"]),
        model=response["model"],
        status=response["status"],
        previous_response_id=request.previous_response_id,
        input_items=tuple(dump_item(item) for item in request.items),
        output_items=tuple(response["output"]),
        usage=response.get("usage"),
        response=response,
    )
    await store.save(record)


def redact_url(url: str) -> str:
    """A store URL safe to log: the password of `scheme://user:password@host` hidden."""
    return re.sub(r"(://[^:/@]+:)[^@]*@", r"\1***@", url)


async def open_store(url: str) -> ResponseStore | None:
    """Open the store named by `--store URL` through `wirebridge.store.open_store`, if built."""
    try:
        opener = importlib.import_module("wirebridge.store").open_store
    except (ImportError, AttributeError):
        log.warning(
            "--store %s: this build has no response store; previous_response_id is refused",
            redact_url(url),
        )
        return None
    store: ResponseStore = await opener(url)
    return store
