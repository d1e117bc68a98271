"""The conversation-state seam: where a stored history comes in and a finished response goes out.

The handler calls exactly two functions here. `resolve_history` builds the items sent upstream
from the request's `input` (and, with a store, the stored chain of `previous_response_id` in
front of it); `record_response` is handed every finished response (completed, incomplete or
failed) so a store can keep it. Without a store, `previous_response_id` is a 400 naming that param
(the bridge keeps no state of its own), and finished responses are dropped.

`ResponseStore` is the whole interface a backend (issue 6: SQLite, PostgreSQL) has to provide.
"""

from __future__ import annotations

import importlib
import logging
import re
from dataclasses import dataclass
from typing import Any, Protocol, runtime_checkable

from ..items import Item
from .errors import ApiError
from .request import ResponsesRequest

JSON = dict[str, Any]
log = logging.getLogger("wirebridge.server")


@dataclass(slots=True)
class FinishedResponse:
    """What a store keeps of one turn."""

    response: JSON  # the final Response object, as sent to the client (status, output, usage)
    input_items: list[Item]  # this request's own `input` (without the stored chain)
    previous_response_id: str | None
    store: bool  # the client's `store` flag (the API's default: true)


@runtime_checkable
class ResponseStore(Protocol):
    async def history(self, response_id: str) -> list[Item] | None:
        """The chain ending at `response_id` (its inputs and outputs, in order); None if unknown."""

    async def save(self, finished: FinishedResponse) -> None:
        """Keep a finished response (called only when the client asked for `store`)."""

    async def aclose(self) -> None: ...


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
    chain = await store.history(previous)
    if chain is None:
        raise ApiError.invalid(
            f"Previous response with id {previous!r} not found.",
            param="previous_response_id",
            code="previous_response_not_found",
        )
    return [*chain, *request.items]


async def record_response(
    store: ResponseStore | None, request: ResponsesRequest, response: JSON
) -> None:
    """Hand a finished response to the store (if any, and if the client asked to store it)."""
    if store is None or not request.store:
        return
    await store.save(
        FinishedResponse(response, request.items, request.previous_response_id, request.store)
    )


def redact_url(url: str) -> str:
    """A store URL safe to log: the password of `scheme://user:password@host` hidden."""
    return re.sub(r"(://[^:/@]+:)[^@]*@", r"\1***@", url)


async def open_store(url: str) -> ResponseStore | None:
    """Open the store named by `--store URL` through `wirebridge.store.open_store`, if built."""
    try:
        opener = importlib.import_module("wirebridge.store").open_store
    except (ImportError, AttributeError):
        log.warning(
            "--store %s: this build has no response store yet; previous_response_id is refused",
            redact_url(url),
        )
        return None
    store: ResponseStore = await opener(url)
    return store
