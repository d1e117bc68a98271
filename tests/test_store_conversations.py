"""Conversations in the store, on both backends: order and paging by position, one append is one
transaction, tenants and expiry as for responses, items found by `item_reference`."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import anyio
import pytest

from wirebridge.store import InvalidParameterError, Store, open_store
from wirebridge.store.conversations import (
    ConversationItemNotFoundError,
    ConversationNotFoundError,
    conversation_log,
)

from . import test_store
from .test_store import T0, Clock, fetch_all

store_url = test_store.store_url  # the same two backends

pytestmark = pytest.mark.anyio

TTL = 3600


def msg(n: int) -> dict[str, Any]:
    return {
        "id": f"msg_{n}",
        "type": "message",
        "role": "user",
        "status": "completed",
        "content": [{"type": "input_text", "text": f"item {n}"}],
    }


@pytest.fixture
async def store(store_url: str, clock: Clock) -> AsyncIterator[Store]:
    async with await open_store(store_url, clock=clock, ttl_seconds=TTL) as opened:
        yield opened


@pytest.fixture
def clock() -> Clock:
    return Clock()


async def test_items_keep_their_order_and_page_by_position_both_ways(store: Store) -> None:
    log = conversation_log(store)
    made = await log.create("conv_1", metadata={"k": "v"}, items=[msg(0), msg(1)])
    await log.append("conv_1", [msg(2), msg(3), msg(4)])
    assert made.to_json() == {
        "id": "conv_1",
        "object": "conversation",
        "created_at": T0,
        "metadata": {"k": "v"},
    }
    assert [i["id"] for i in await log.items("conv_1")] == [f"msg_{n}" for n in range(5)]

    seen: list[str] = []
    after = None
    while True:
        page = await log.list_items("conv_1", after=after, limit=2, order="asc")
        seen += [i["id"] for i in page.data]
        if not page.has_more:
            break
        after = page.data[-1]["id"]
    assert seen == [f"msg_{n}" for n in range(5)]
    desc = await log.list_items("conv_1", limit=3)  # the API's default order: newest first
    assert [i["id"] for i in desc.data] == ["msg_4", "msg_3", "msg_2"] and desc.has_more
    body = desc.to_json()
    assert (body["first_id"], body["last_id"]) == ("msg_4", "msg_2")
    rest = await log.list_items("conv_1", after="msg_2", limit=3)
    assert [i["id"] for i in rest.data] == ["msg_1", "msg_0"] and not rest.has_more
    with pytest.raises(InvalidParameterError) as bad:
        await log.list_items("conv_1", after="msg_nope")
    assert bad.value.param == "after"
    with pytest.raises(InvalidParameterError):
        await log.list_items("conv_1", limit=101)


async def test_delete_item_update_metadata_and_delete_conversation(store: Store) -> None:
    log = conversation_log(store)
    await log.create("conv_1", metadata={}, items=[msg(0), msg(1), msg(2)])
    after = await log.delete_item("conv_1", "msg_1")
    assert after.id == "conv_1"
    assert [i["id"] for i in await log.items("conv_1")] == ["msg_0", "msg_2"]
    with pytest.raises(ConversationItemNotFoundError):
        await log.get_item("conv_1", "msg_1")
    assert (await log.get_item("conv_1", "msg_2"))["content"][0]["text"] == "item 2"
    await log.append("conv_1", [msg(3)])  # positions go on after a deleted item
    assert [i["id"] for i in await log.items("conv_1")] == ["msg_0", "msg_2", "msg_3"]

    updated = await log.update("conv_1", metadata={"topic": "x"})
    assert updated.metadata == {"topic": "x"}
    assert (await log.get("conv_1")).metadata == {"topic": "x"}
    await log.delete("conv_1")
    for call in (log.get("conv_1"), log.items("conv_1"), log.delete("conv_1")):
        with pytest.raises(ConversationNotFoundError):
            await call
    with pytest.raises(ConversationNotFoundError):
        await log.append("conv_1", [msg(9)])


async def test_another_tenants_conversation_is_an_unknown_id(store: Store) -> None:
    log = conversation_log(store)
    await log.create("conv_a", metadata={}, items=[msg(0)], tenant="key:a")
    await log.create("conv_open", metadata={}, items=[msg(1)])  # no tenant: everyone's
    for call in (
        log.get("conv_a", tenant="key:b"),
        log.get("conv_a"),
        log.items("conv_a", tenant="key:b"),
        log.list_items("conv_a", tenant="key:b"),
        log.get_item("conv_a", "msg_0", tenant="key:b"),
        log.append("conv_a", [msg(2)], tenant="key:b"),
        log.update("conv_a", metadata={}, tenant="key:b"),
        log.delete("conv_a", tenant="key:b"),
    ):
        with pytest.raises(ConversationNotFoundError):
            await call
    assert [i["id"] for i in await log.items("conv_a", tenant="key:a")] == ["msg_0"]
    assert await store.find_item("msg_0", tenant="key:b") is None
    assert (await store.find_item("msg_0", tenant="key:a")) == msg(0)
    assert (await store.find_item("msg_1", tenant="key:b")) == msg(1)


async def test_a_conversation_expires_a_ttl_after_its_last_write_and_the_sweep_drops_it(
    store: Store,
    store_url: str,
    clock: Clock,
) -> None:
    log = conversation_log(store)
    await log.create("conv_1", metadata={}, items=[msg(0)])
    await log.create("conv_2", metadata={}, items=[msg(1)])
    clock.now = T0 + TTL - 10
    await log.append("conv_2", [msg(2)])  # in use: renewed
    clock.now = T0 + TTL
    with pytest.raises(ConversationNotFoundError):
        await log.get("conv_1")  # past its expiry, swept or not
    assert await store.find_item("msg_0") is None
    assert await store.expire() == 1
    assert await fetch_all(store_url, "SELECT conversation_id FROM conversation_items") == [
        ("conv_2",),
        ("conv_2",),
    ]
    assert [i["id"] for i in await log.items("conv_2")] == ["msg_1", "msg_2"]


async def test_concurrent_appends_to_one_conversation_never_interleave(store: Store) -> None:
    log = conversation_log(store)
    await log.create("conv_1", metadata={}, items=[])

    async def turn(n: int) -> None:
        await log.append("conv_1", [msg(n * 100 + k) for k in range(5)])

    async with anyio.create_task_group() as tg:
        for n in range(8):
            tg.start_soon(turn, n)
    ids = [i["id"] for i in await log.items("conv_1")]
    assert len(ids) == 40
    runs = [ids[k : k + 5] for k in range(0, 40, 5)]
    assert sorted(runs) == sorted([f"msg_{n * 100 + k}" for k in range(5)] for n in range(8))
