"""Conversations in the store: each conversation's row and its items, in order.

A conversation is a row (`conversations`: tenant, metadata, expiry, and `next_position`, the
position its next item gets) and its items (`conversation_items`, one row per item, keyed by
conversation and position, with the item's id indexed for lookups). Appending reserves positions
by bumping `next_position` in the same transaction that inserts the items: the bump takes the
conversation row's write lock (PostgreSQL row lock; SQLite's single writer), so two appends to
one conversation are ordered, never interleaved, and never lose an item. A turn's input and
output are one append (`append`), so a reader sees all of a turn or none of it.

Tenant scoping and expiry are those of responses (`queries`): another tenant's conversation is
unknown, a conversation past its `expires_at` is unknown whether swept or not, and its items go
with it (ON DELETE CASCADE). Every write to a conversation renews its `expires_at` (last use plus
the store's TTL), so a conversation in use does not expire under its users.

One query text per statement (`$n` placeholders, converted for SQLite as in `queries`); each
method is one transaction. The two backends differ only in how a transaction is run.
"""

from __future__ import annotations

import math
import sqlite3
from abc import ABC, abstractmethod
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from ..jsontypes import JSON
from .errors import InvalidParameterError, StoreError
from .queries import sqlite_placeholders
from .records import DEFAULT_LIMIT, check_page_params, decode_json, encode_json
from .sqlitetx import transaction

if TYPE_CHECKING:
    from .base import Store

_LIVE = "(expires_at IS NULL OR expires_at > $2)"
_VISIBLE = "(tenant IS NULL OR tenant = $3)"
_C_LIVE = "(c.expires_at IS NULL OR c.expires_at > $2) AND (c.tenant IS NULL OR c.tenant = $3)"

# $1 id, $2 tenant, $3 created_at, $4 metadata, $5 expires_at, $6 item count
INSERT_CONVERSATION = (
    "INSERT INTO conversations (id, tenant, created_at, metadata, next_position, expires_at)"
    " VALUES ($1, $2, $3, $4, $6, $5) RETURNING id, created_at, metadata, next_position"
)
# $1 id, $2 now, $3 tenant
SELECT_CONVERSATION = (
    "SELECT id, created_at, metadata, next_position FROM conversations"
    f" WHERE id = $1 AND {_LIVE} AND {_VISIBLE}"
)
# $1 id, $2 now, $3 tenant, $4 positions to reserve, $5 new expires_at, $6 metadata (NULL: keep).
# The update is what orders appends: it holds the row's write lock until the commit.
RESERVE = (
    "UPDATE conversations SET next_position = next_position + $4, expires_at = $5,"
    " metadata = COALESCE($6, metadata)"
    f" WHERE id = $1 AND {_LIVE} AND {_VISIBLE}"
    " RETURNING id, created_at, metadata, next_position"
)
# $1 id, $2 now, $3 tenant
DELETE_CONVERSATION = (
    f"DELETE FROM conversations WHERE id = $1 AND {_LIVE} AND {_VISIBLE} RETURNING id"
)
# $1 conversation, $2 position, $3 item id, $4 item
INSERT_ITEM = (
    "INSERT INTO conversation_items (conversation_id, position, item_id, item)"
    " VALUES ($1, $2, $3, $4)"
)
# $1 conversation
SELECT_ALL_ITEMS = (
    "SELECT position, item FROM conversation_items WHERE conversation_id = $1 ORDER BY position"
)
# $1 conversation, $2 position bound, $3 limit
SELECT_ITEMS_ASC = (
    "SELECT position, item FROM conversation_items WHERE conversation_id = $1 AND position > $2"
    " ORDER BY position LIMIT $3"
)
SELECT_ITEMS_DESC = (
    "SELECT position, item FROM conversation_items WHERE conversation_id = $1 AND position < $2"
    " ORDER BY position DESC LIMIT $3"
)
# $1 conversation, $2 item id: the first item with that id (ids are unique unless a client
# appended one twice)
SELECT_ITEM = (
    "SELECT position, item FROM conversation_items WHERE conversation_id = $1 AND item_id = $2"
    " ORDER BY position LIMIT 1"
)
# $1 conversation, $2 item id
DELETE_ITEM = "DELETE FROM conversation_items WHERE conversation_id = $1 AND item_id = $2"
# $1 item id, $2 now, $3 tenant: an item_reference into a live, visible conversation
SELECT_ITEM_ANYWHERE = f"""
SELECT i.item FROM conversation_items AS i JOIN conversations AS c ON c.id = i.conversation_id
 WHERE i.item_id = $1 AND {_C_LIVE}
 ORDER BY c.created_at DESC, i.position DESC
 LIMIT 1
"""


def expire_conversations(row_lock: str = "") -> str:
    """Delete at most $2 conversations expired at $1 (their items go with them)."""
    lock = f" {row_lock}" if row_lock else ""
    return (
        "DELETE FROM conversations WHERE id IN (SELECT id FROM conversations"
        f" WHERE expires_at IS NOT NULL AND expires_at <= $1 LIMIT $2{lock})"
    )


EXPIRE_BATCH = 500


@dataclass(frozen=True, slots=True)
class Conversation:
    """A conversation as the API shows it (its items are listed separately)."""

    id: str
    created_at: int
    metadata: dict[str, str]

    def to_json(self) -> JSON:
        """The API's `conversation` object."""
        return {
            "id": self.id,
            "object": "conversation",
            "created_at": self.created_at,
            "metadata": self.metadata,
        }


@dataclass(frozen=True, slots=True)
class ConversationItems:
    """One page of a conversation's items, shaped like the API's list object."""

    data: tuple[JSON, ...]
    has_more: bool

    def to_json(self) -> JSON:
        return {
            "object": "list",
            "data": list(self.data),
            "first_id": self.data[0].get("id") if self.data else None,
            "last_id": self.data[-1].get("id") if self.data else None,
            "has_more": self.has_more,
        }


class ConversationNotFoundError(StoreError):
    """No conversation with this id: never made, deleted, expired, or another tenant's."""

    code = "not_found"

    def __init__(self, conversation_id: str):
        self.conversation_id = conversation_id
        super().__init__(f"Conversation with id '{conversation_id}' not found.")


class ConversationItemNotFoundError(StoreError):
    """The conversation exists, but holds no item with this id."""

    code = "not_found"

    def __init__(self, item_id: str):
        self.item_id = item_id
        super().__init__(f"Item with id '{item_id}' not found.")


Row = tuple[Any, ...]
Step = tuple[str, list[tuple[Any, ...]]]


def _conversation(row: Row) -> Conversation:
    return Conversation(str(row[0]), int(row[1]), decode_json(row[2]))


def _item_rows(conversation_id: str, first: int, items: Sequence[JSON]) -> list[tuple[Any, ...]]:
    return [
        (conversation_id, first + n, str(item["id"]), encode_json(item))
        for n, item in enumerate(items)
    ]


def _check_ids(items: Sequence[JSON]) -> None:
    for item in items:
        if not isinstance(item.get("id"), str) or not item["id"]:
            raise ValueError("a conversation item needs an id before it is stored")


class ConversationLog(ABC):
    """The conversations of one store (use `conversation_log(store)`).

    Items arrive with their ids already given (the caller shapes them as the API shows them);
    the log keeps them in order and never rewrites them.
    """

    def __init__(self, store: Any):
        self.store = store

    # -- backend primitives --------------------------------------------------------------------

    @abstractmethod
    async def _write(
        self, first: tuple[str, tuple[Any, ...]], then: Callable[[Row], list[Step]]
    ) -> Row | None:
        """One transaction: run `first` and take its first row; if there is one, run each
        statement of `then(row)` once per parameter tuple, else write nothing. Returns the row."""

    @abstractmethod
    async def _read(self, steps: list[tuple[str, tuple[Any, ...]]]) -> list[list[Row]]:
        """The rows of each statement, read in one transaction (one snapshot)."""

    @abstractmethod
    async def _expire_batch(self, now: int) -> int: ...

    # -- the interface -------------------------------------------------------------------------

    def _now(self) -> float:
        now: float = self.store._now()
        return now

    def _expires_at(self, now: float) -> int | None:
        ttl = self.store.ttl_seconds
        return None if ttl is None else math.floor(now) + int(ttl)

    async def create(
        self,
        conversation_id: str,
        *,
        metadata: dict[str, str],
        items: Sequence[JSON] = (),
        tenant: str | None = None,
    ) -> Conversation:
        """A new conversation holding `items`, in one transaction."""
        _check_ids(items)
        now = self._now()
        params = (
            conversation_id,
            tenant,
            math.floor(now),
            encode_json(metadata),
            self._expires_at(now),
            len(items),
        )
        row = await self._write(
            (INSERT_CONVERSATION, params),
            lambda _: [(INSERT_ITEM, _item_rows(conversation_id, 0, items))],
        )
        assert row is not None  # an INSERT ... RETURNING always returns its row
        return _conversation(row)

    async def get(self, conversation_id: str, *, tenant: str | None = None) -> Conversation:
        [rows] = await self._read([(SELECT_CONVERSATION, self._key(conversation_id, tenant))])
        if not rows:
            raise ConversationNotFoundError(conversation_id)
        return _conversation(rows[0])

    async def update(
        self, conversation_id: str, *, metadata: dict[str, str], tenant: str | None = None
    ) -> Conversation:
        """Replace the metadata (the API replaces it whole)."""
        return await self._append(conversation_id, [], tenant, encode_json(metadata))

    async def delete(self, conversation_id: str, *, tenant: str | None = None) -> None:
        """Delete the conversation and its items for good."""
        key = self._key(conversation_id, tenant)
        if await self._write((DELETE_CONVERSATION, key), lambda _: []) is None:
            raise ConversationNotFoundError(conversation_id)

    async def append(
        self, conversation_id: str, items: Sequence[JSON], *, tenant: str | None = None
    ) -> Conversation:
        """Add `items` at the end, all in one transaction (after every earlier append)."""
        return await self._append(conversation_id, items, tenant, None)

    async def _append(
        self,
        conversation_id: str,
        items: Sequence[JSON],
        tenant: str | None,
        metadata: str | None,
    ) -> Conversation:
        _check_ids(items)
        now = self._now()
        params = (
            conversation_id,
            math.floor(now),
            tenant,
            len(items),
            self._expires_at(now),
            metadata,
        )

        def inserts(row: Row) -> list[Step]:
            first = int(row[3]) - len(items)  # the positions just reserved
            return [(INSERT_ITEM, _item_rows(conversation_id, first, items))]

        row = await self._write((RESERVE, params), inserts)
        if row is None:
            raise ConversationNotFoundError(conversation_id)
        return _conversation(row)

    async def items(self, conversation_id: str, *, tenant: str | None = None) -> list[JSON]:
        """Every item, oldest first: the history a turn on this conversation continues."""
        key = self._key(conversation_id, tenant)
        found, rows = await self._read(
            [(SELECT_CONVERSATION, key), (SELECT_ALL_ITEMS, (conversation_id,))]
        )
        if not found:
            raise ConversationNotFoundError(conversation_id)
        return [decode_json(row[1]) for row in rows]

    async def list_items(
        self,
        conversation_id: str,
        *,
        after: str | None = None,
        limit: int = DEFAULT_LIMIT,
        order: str = "desc",
        tenant: str | None = None,
    ) -> ConversationItems:
        """A page of items after the item `after` in `order` (the API's defaults: 20, desc).

        Paging reads by position, so a page costs `limit` rows however long the conversation."""
        check_page_params(limit, order)
        key = self._key(conversation_id, tenant)
        steps = [(SELECT_CONVERSATION, key)]
        if after is not None:
            steps.append((SELECT_ITEM, (conversation_id, after)))
        found, *cursor = await self._read(steps)
        if not found:
            raise ConversationNotFoundError(conversation_id)
        if cursor and not cursor[0]:
            raise InvalidParameterError(
                "after", f"no item with id '{after}' in conversation '{conversation_id}'"
            )
        if order == "asc":
            bound = int(cursor[0][0][0]) if cursor else -1
            query = SELECT_ITEMS_ASC
        else:
            bound = int(cursor[0][0][0]) if cursor else int(found[0][3])
            query = SELECT_ITEMS_DESC
        [rows] = await self._read([(query, (conversation_id, bound, limit + 1))])
        page = tuple(decode_json(row[1]) for row in rows[:limit])
        return ConversationItems(page, has_more=len(rows) > limit)

    async def get_item(
        self, conversation_id: str, item_id: str, *, tenant: str | None = None
    ) -> JSON:
        key = self._key(conversation_id, tenant)
        found, rows = await self._read(
            [(SELECT_CONVERSATION, key), (SELECT_ITEM, (conversation_id, item_id))]
        )
        if not found:
            raise ConversationNotFoundError(conversation_id)
        if not rows:
            raise ConversationItemNotFoundError(item_id)
        item: JSON = decode_json(rows[0][1])
        return item

    async def delete_item(
        self, conversation_id: str, item_id: str, *, tenant: str | None = None
    ) -> Conversation:
        """Remove the item (every copy of its id); returns the conversation, as the API does."""
        await self.get_item(conversation_id, item_id, tenant=tenant)  # the right 404 first
        now = self._now()
        params = (conversation_id, math.floor(now), tenant, 0, self._expires_at(now), None)
        row = await self._write(
            (RESERVE, params), lambda _: [(DELETE_ITEM, [(conversation_id, item_id)])]
        )
        if row is None:
            raise ConversationNotFoundError(conversation_id)
        return _conversation(row)

    async def find_item(self, item_id: str, *, tenant: str | None = None) -> JSON | None:
        """The item with this id in a live conversation visible to `tenant` (item_reference)."""
        [rows] = await self._read(
            [(SELECT_ITEM_ANYWHERE, (item_id, math.floor(self._now()), tenant))]
        )
        if not rows:
            return None
        item: JSON = decode_json(rows[0][0])
        return item

    async def expire(self, now: float) -> int:
        """Delete conversations (and their items) past their `expires_at`; returns how many."""
        total = 0
        while True:  # short transactions: other writers run between batches
            deleted = await self._expire_batch(math.floor(now))
            total += deleted
            if deleted < EXPIRE_BATCH:
                return total

    def _key(self, conversation_id: str, tenant: str | None) -> tuple[Any, ...]:
        return (conversation_id, math.floor(self._now()), tenant)


class _SQLiteConversations(ConversationLog):
    async def _write(
        self, first: tuple[str, tuple[Any, ...]], then: Callable[[Row], list[Step]]
    ) -> Row | None:
        sql, params = sqlite_placeholders(first[0]), first[1]

        def write(conn: sqlite3.Connection) -> Row | None:
            with transaction(conn, "IMMEDIATE"):
                rows = conn.execute(sql, params).fetchall()
                row: Row | None = tuple(rows[0]) if rows else None
                if row is not None:
                    for text, many in then(row):
                        conn.executemany(sqlite_placeholders(text), many)
            return row

        result: Row | None = await self.store._run(write)
        return result

    async def _read(self, steps: list[tuple[str, tuple[Any, ...]]]) -> list[list[Row]]:
        converted = [(sqlite_placeholders(sql), params) for sql, params in steps]

        def read(conn: sqlite3.Connection) -> list[list[Row]]:
            with transaction(conn, "DEFERRED"):  # one snapshot for every statement
                return [[tuple(r) for r in conn.execute(s, p).fetchall()] for s, p in converted]

        result: list[list[Row]] = await self.store._run(read, read=True)
        return result

    async def _expire_batch(self, now: int) -> int:
        sql = sqlite_placeholders(expire_conversations())

        def expire(conn: sqlite3.Connection) -> int:
            with transaction(conn, "IMMEDIATE"):
                count = conn.execute(sql, (now, EXPIRE_BATCH)).rowcount
            return count

        result: int = await self.store._run(expire)
        return result


class _PostgresConversations(ConversationLog):
    async def _write(
        self, first: tuple[str, tuple[Any, ...]], then: Callable[[Row], list[Step]]
    ) -> Row | None:
        async with self.store._connection() as conn, conn.transaction():
            found = await conn.fetchrow(first[0], *first[1])
            if found is None:
                return None
            row = tuple(found)
            for text, many in then(row):
                if many:
                    await conn.executemany(text, many)
            return row

    async def _read(self, steps: list[tuple[str, tuple[Any, ...]]]) -> list[list[Row]]:
        async with (
            self.store._connection() as conn,
            conn.transaction(isolation="repeatable_read", readonly=True),
        ):
            return [[tuple(r) for r in await conn.fetch(s, *p)] for s, p in steps]

    async def _expire_batch(self, now: int) -> int:
        async with self.store._connection() as conn:
            status: str = await conn.execute(
                expire_conversations("FOR UPDATE SKIP LOCKED"), now, EXPIRE_BATCH
            )
        return int(status.rsplit(" ", 1)[-1])


def conversation_log(store: Store) -> ConversationLog:
    """The conversations kept in `store`'s database (the backend's own connections)."""
    inner = getattr(store, "_inner", store)  # a timed proxy (wirebridge.ops) wraps the store
    if inner.backend == "postgresql":
        return _PostgresConversations(inner)
    return _SQLiteConversations(inner)
