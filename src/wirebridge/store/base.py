"""`Store`: the one interface the server uses, whatever database is behind it.

The public methods live here and are the same for every backend: they check arguments, read the
clock once, and apply the shared rules of `records` (item ids, expiry, paging, chain assembly).
A backend implements only the small `_`-prefixed primitives, each one transaction, so a response
is written whole or not at all and a reader never sees a row past its `expires_at`.

Every read and delete takes the caller's `tenant`: a row is visible to its own tenant, and a
row with no tenant to everyone; another tenant's row answers exactly as an unknown id does.
"""

from __future__ import annotations

import math
import time
from abc import ABC, abstractmethod
from collections.abc import Callable, Sequence
from types import TracebackType
from typing import Literal

import anyio

from ..jsontypes import JSON
from .conversations import conversation_log
from .errors import ResponseNotFoundError, StoreError
from .records import (
    DEFAULT_LIMIT,
    DEFAULT_ORDER,
    DEFAULT_TTL_SECONDS,
    MAX_CHAIN_DEPTH,
    MAX_CHILDREN,
    ChainLink,
    ItemPage,
    StoredResponse,
    assemble_chain,
    check_page_params,
    check_ttl,
    decode_json,
    paginate,
    prepare_for_save,
)


class Store(ABC):
    """Stored responses: save once, read, delete, continue a chain, expire."""

    backend: Literal["sqlite", "postgresql"]

    def __init__(
        self,
        *,
        ttl_seconds: float | None = DEFAULT_TTL_SECONDS,
        clock: Callable[[], float] = time.time,
    ):
        self.ttl_seconds = check_ttl(ttl_seconds)
        self.clock = clock

    # -- the interface -------------------------------------------------------------------------

    async def save(
        self, record: StoredResponse, *, timeout_s: float | None = None
    ) -> StoredResponse:
        """Store a finished response in one transaction; returns it as stored.

        Input items without an `id` get one (they are the cursors of `list_input_items`), and
        `expires_at=None` becomes `created_at + ttl_seconds`. Raises `DuplicateResponseError`
        if the id is taken. Two responses continuing the same `previous_response_id` are two
        rows: branches never overwrite each other. With `timeout_s`, a write not committed
        within it (a locked or stuck database) raises `StoreError` and leaves nothing behind.
        """
        prepared = prepare_for_save(record, ttl_seconds=self.ttl_seconds)
        if timeout_s is None:
            await self._insert(prepared, math.inf)
            return prepared
        deadline = time.monotonic() + timeout_s
        try:
            with anyio.fail_after(timeout_s):
                await self._insert(prepared, deadline)
        except TimeoutError:
            raise StoreError(
                f"storing response {record.id} took longer than {timeout_s:g}s"
            ) from None
        return prepared

    async def get(self, response_id: str, *, tenant: str | None = None) -> StoredResponse:
        """The stored response; `ResponseNotFoundError` if unknown, deleted, expired or
        another tenant's."""
        record = await self._select(response_id, self._now(), tenant)
        if record is None:
            raise ResponseNotFoundError(response_id)
        return record

    async def find_item(self, item_id: str, *, tenant: str | None = None) -> JSON | None:
        """The input or output item with this id in a live response visible to `tenant`
        (the newest such response), else in such a conversation, or None: what an
        `item_reference` stands for."""
        found = await self._item(item_id, self._now(), tenant)
        if found is None:
            found = await conversation_log(self).find_item(item_id, tenant=tenant)
        return found

    async def delete(self, response_id: str, *, tenant: str | None = None) -> None:
        """Delete for good (the row is removed); `ResponseNotFoundError` if already unknown.

        Responses that continued this one keep their rows, but their chains now have a
        missing link, so continuing from them fails as for an unknown id.
        """
        if not await self._delete(response_id, self._now(), tenant):
            raise ResponseNotFoundError(response_id)

    async def load_chain(
        self, previous_response_id: str, *, tenant: str | None = None
    ) -> list[JSON]:
        """The items `previous_response_id` stands for: from the root response to it, each
        response's input items then its output items.

        Raises `PreviousResponseNotFoundError` (param `previous_response_id`) if it, or any
        response before it, is unknown, deleted or expired.
        """
        links = await self._chain(previous_response_id, self._now(), tenant, MAX_CHAIN_DEPTH)
        return assemble_chain(previous_response_id, links, max_depth=MAX_CHAIN_DEPTH)

    async def child_outputs(
        self, response_id: str, *, tenant: str | None = None, limit: int = MAX_CHILDREN
    ) -> list[list[JSON]]:
        """The output items of the live responses visible to `tenant` that continued
        `response_id`, newest first, at most `limit` of them (none if it is unknown).

        A client that chains every step of a turn to the same response (the AI SDK's
        `previousResponseId`) sends a call back without the reasoning that led to it; that
        reasoning is in the sibling step's output, one of these."""
        texts = await self._children(response_id, self._now(), tenant, limit)
        return [decode_json(text) for text in texts]

    async def list_input_items(
        self,
        response_id: str,
        *,
        after: str | None = None,
        limit: int = DEFAULT_LIMIT,
        order: str = DEFAULT_ORDER,
        tenant: str | None = None,
    ) -> ItemPage:
        """A page of the input items sent with this response (OpenAI semantics: `limit` 1..100,
        default 20; `order` `desc` (default) or `asc`; `after` an item id from the last page)."""
        check_page_params(limit, order)
        text = await self._input_items(response_id, self._now(), tenant)
        if text is None:
            raise ResponseNotFoundError(response_id)
        items: list[JSON] = decode_json(text)
        return paginate(items, after=after, limit=limit, order=order)

    async def expire(self, now: float | None = None) -> int:
        """Delete every response and conversation whose `expires_at` is at or before `now`;
        returns how many.

        The background sweep (`wirebridge.store.expiry`) calls this; tests call it with `now`.
        """
        at = self._now() if now is None else now
        return await self._expire(at) + await conversation_log(self).expire(at)

    @abstractmethod
    async def close(self) -> None:
        """Release connections; the store is unusable afterwards."""

    async def __aenter__(self) -> Store:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.close()

    def _now(self) -> float:
        return self.clock()

    # -- backend primitives: each one transaction ---------------------------------------------

    @abstractmethod
    async def _insert(self, record: StoredResponse, deadline: float) -> None:
        """Insert the row and its item ids; give up waiting for locks at `deadline`
        (`time.monotonic()`; `math.inf`: the backend's own limits)."""

    @abstractmethod
    async def _select(
        self, response_id: str, now: float, tenant: str | None
    ) -> StoredResponse | None: ...

    @abstractmethod
    async def _item(self, item_id: str, now: float, tenant: str | None) -> JSON | None: ...

    @abstractmethod
    async def _delete(self, response_id: str, now: float, tenant: str | None) -> bool: ...

    @abstractmethod
    async def _chain(
        self, response_id: str, now: float, tenant: str | None, max_depth: int
    ) -> Sequence[ChainLink]:
        """Live rows visible to `tenant` from `response_id` following `previous_response_id`,
        newest first, at most `max_depth + 1` of them."""

    @abstractmethod
    async def _children(
        self, response_id: str, now: float, tenant: str | None, limit: int
    ) -> Sequence[str]:
        """The JSON text of the output items of live rows visible to `tenant` whose
        `previous_response_id` is `response_id`, newest first, at most `limit`."""

    @abstractmethod
    async def _input_items(self, response_id: str, now: float, tenant: str | None) -> str | None:
        """The JSON text of a live response's input items visible to `tenant`, or None."""

    @abstractmethod
    async def _expire(self, now: float) -> int: ...
