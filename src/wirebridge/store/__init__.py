"""Conversation state for the server: stored responses behind one interface, two backends.

    store = await open_store(url)           # None -> SQLite under $WIREBRIDGE_HOME
    async with store, background_expiry(store):
        await store.save(StoredResponse(...))
        history = await store.load_chain(previous_response_id)

Chat Completions servers keep no state while Responses clients expect it (`store`,
`previous_response_id`, `GET/DELETE /v1/responses/{id}`). SQLite is the embedded default (one
file, WAL, no service to run); PostgreSQL lets several bridge processes share one state. See
docs/store.md for how the server uses this package.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable, Mapping

from .base import Store
from .errors import (
    DuplicateResponseError,
    InvalidParameterError,
    PreviousResponseNotFoundError,
    ResponseNotFoundError,
    SchemaVersionError,
    StoreError,
)
from .expiry import Expirer, background_expiry
from .location import StoreLocation, parse_store_url
from .records import DEFAULT_TTL_SECONDS, ItemPage, StoredResponse

__all__ = [
    "DEFAULT_TTL_SECONDS",
    "DuplicateResponseError",
    "Expirer",
    "InvalidParameterError",
    "ItemPage",
    "PreviousResponseNotFoundError",
    "ResponseNotFoundError",
    "SchemaVersionError",
    "Store",
    "StoreError",
    "StoreLocation",
    "StoredResponse",
    "background_expiry",
    "open_store",
    "parse_store_url",
]


async def open_store(
    url: str | None = None,
    *,
    ttl_seconds: float | None = DEFAULT_TTL_SECONDS,
    clock: Callable[[], float] = time.time,
    env: Mapping[str, str] = os.environ,
) -> Store:
    """Open (creating and migrating as needed) the store `url` names; see `parse_store_url`.

    `ttl_seconds=None` keeps responses forever. Raises `StoreError` when the database cannot be
    opened (the message never shows a password) and `ConfigError` for an unknown URL scheme.
    """
    location = parse_store_url(url, env)
    if location.backend == "postgresql":
        from .postgres import PostgresStore  # asyncpg is loaded only when used

        return await PostgresStore.open(location.target, ttl_seconds=ttl_seconds, clock=clock)
    from .sqlite import SQLiteStore

    return await SQLiteStore.open(location.target, ttl_seconds=ttl_seconds, clock=clock)
