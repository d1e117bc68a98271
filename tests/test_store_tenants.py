"""The store's tenant scoping, item lookup and bounded writes, on both backends.

Run against SQLite and a real PostgreSQL (the `store_url` fixture of test_store.py): another
tenant's row is unknown to every read and to delete, a row with no tenant is everyone's, a
caller with no tenant sees only those; `find_item` finds input and output items by id within
the same scope, and forgets a response's items with it; a write that cannot get its lock within
`timeout_s` fails and leaves nothing behind.
"""

from __future__ import annotations

import sqlite3
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import replace

import anyio
import asyncpg
import pytest

from wirebridge.store import (
    PreviousResponseNotFoundError,
    ResponseNotFoundError,
    Store,
    StoreError,
    open_store,
)

from .test_store import (  # noqa: F401  (store_url, clock and store are fixtures)
    Clock,
    clock,
    fetch_all,
    record,
    store,
    store_url,
)

pytestmark = pytest.mark.anyio

ALICE, BOB = "key:aaaa", "key:bbbb"


async def test_another_tenants_row_is_unknown_everywhere(store: Store) -> None:  # noqa: F811
    await store.save(replace(record("resp_a"), tenant=ALICE))
    await store.save(replace(record("resp_none"), tenant=None))
    assert (await store.get("resp_a", tenant=ALICE)).tenant == ALICE
    with pytest.raises(ResponseNotFoundError):
        await store.get("resp_a", tenant=BOB)
    with pytest.raises(ResponseNotFoundError):
        await store.get("resp_a")  # no tenant sees only rows without one
    with pytest.raises(ResponseNotFoundError):
        await store.list_input_items("resp_a", tenant=BOB)
    with pytest.raises(PreviousResponseNotFoundError):
        await store.load_chain("resp_a", tenant=BOB)
    with pytest.raises(ResponseNotFoundError):
        await store.delete("resp_a", tenant=BOB)
    for tenant in (ALICE, BOB, None):  # no one's row: everyone's
        assert (await store.get("resp_none", tenant=tenant)).id == "resp_none"
    await store.delete("resp_a", tenant=ALICE)
    with pytest.raises(ResponseNotFoundError):
        await store.get("resp_a", tenant=ALICE)


async def test_a_chain_through_another_tenants_row_is_broken(store: Store) -> None:  # noqa: F811
    await store.save(replace(record("resp_root"), tenant=None))
    await store.save(replace(record("resp_mid", previous="resp_root"), tenant=BOB))
    await store.save(replace(record("resp_top", previous="resp_mid"), tenant=ALICE))
    assert len(await store.load_chain("resp_mid", tenant=BOB)) == 4
    with pytest.raises(PreviousResponseNotFoundError) as broken:
        await store.load_chain("resp_top", tenant=ALICE)
    assert broken.value.missing_id == "resp_mid"


async def test_find_item_by_id_within_the_tenant_and_gone_with_its_response(
    store: Store,  # noqa: F811
    clock: Clock,  # noqa: F811
) -> None:
    await store.save(replace(record("resp_a"), tenant=ALICE))
    saved = await store.save(
        replace(record("resp_n", inputs=({"type": "message", "role": "user", "content": []},)))
    )
    assigned = saved.input_items[0]["id"]  # the store gave the input item its id
    found = await store.find_item("msg_out_resp_a", tenant=ALICE)
    assert found is not None and found["content"][0]["text"] == "answer from resp_a"
    assert (await store.find_item("msg_in_resp_a", tenant=ALICE)) is not None
    assert await store.find_item("msg_out_resp_a", tenant=BOB) is None
    assert (await store.find_item(assigned, tenant=BOB)) == saved.input_items[0]
    assert await store.find_item("msg_nobody", tenant=ALICE) is None
    await store.delete("resp_a", tenant=ALICE)
    assert await store.find_item("msg_out_resp_a", tenant=ALICE) is None
    clock.now += 10 * 365 * 86400  # past every expiry
    assert await store.find_item(assigned) is None
    await store.expire()
    assert await fetch_all_items(store) == 0


async def fetch_all_items(opened: Store) -> int:
    url = getattr(opened, "url", None) or f"sqlite://{getattr(opened, 'path', '')}"
    [(count,)] = await fetch_all(url, "SELECT COUNT(*) FROM response_items")
    return int(count)


@asynccontextmanager
async def write_locked(url: str) -> AsyncIterator[None]:
    """Another connection holding what a write needs until the block ends."""
    if url.startswith("sqlite://"):
        conn = sqlite3.connect(url.removeprefix("sqlite://"), isolation_level=None)
        conn.execute("BEGIN IMMEDIATE")
        try:
            yield
        finally:
            conn.execute("ROLLBACK")
            conn.close()
        return
    pg = await asyncpg.connect(url)
    try:
        async with pg.transaction():
            await pg.execute("LOCK TABLE responses IN ACCESS EXCLUSIVE MODE")
            yield
    finally:
        await pg.close()


async def test_a_write_that_cannot_get_its_lock_in_time_fails_and_leaves_nothing(
    store_url: str,  # noqa: F811
    clock: Clock,  # noqa: F811
) -> None:
    async with await open_store(store_url, clock=clock) as opened:
        async with write_locked(store_url):
            with anyio.fail_after(20), pytest.raises(StoreError, match=r"locked|longer than"):
                await opened.save(record("resp_late"), timeout_s=0.3)
        with pytest.raises(ResponseNotFoundError):
            await opened.get("resp_late")
        await opened.save(record("resp_late"), timeout_s=5)  # unlocked: it goes through
        assert (await opened.get("resp_late")).id == "resp_late"
