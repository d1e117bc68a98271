"""The response store suite, run against both backends: SQLite and a real PostgreSQL server.

Every test takes the `store_url` fixture, parametrized "sqlite" (a fresh file under tmp_path)
and "postgresql" (a fresh database on the server from $WIREBRIDGE_TEST_POSTGRES_URL, else one
that scripts/start_postgres.sh starts). When no PostgreSQL can be had, the "postgresql" cases
skip with the reason, unless WIREBRIDGE_REQUIRE_POSTGRES=1 (CI), where they fail instead.
"""

from __future__ import annotations

import sqlite3
from collections.abc import AsyncIterator, Callable
from dataclasses import replace
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import anyio
import asyncpg
import pytest

from wirebridge.store import (
    DuplicateResponseError,
    InvalidParameterError,
    PreviousResponseNotFoundError,
    ResponseNotFoundError,
    SchemaVersionError,
    Store,
    StoredResponse,
    StoreError,
    background_expiry,
    open_store,
)
from wirebridge.store import postgres as pg_backend
from wirebridge.store import sqlite as sqlite_backend
from wirebridge.store.expiry import Expirer
from wirebridge.store.records import DEFAULT_TTL_SECONDS, MAX_CHAIN_DEPTH
from wirebridge.store.schema import MIGRATIONS, Migration

from .conftest import create_scratch_database, drop_scratch_database

pytestmark = pytest.mark.anyio

T0 = 1_750_000_000  # a fixed "now" (unix seconds) for every record and the injected clock


# ---------------------------------------------------------------------------------------------
# Backends


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)])
async def store_url(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[str]:
    """A URL naming an empty store: a new SQLite file, or a new PostgreSQL database."""
    if request.param == "sqlite":
        yield f"sqlite://{tmp_path / 'responses.db'}"
        return
    server: str = request.getfixturevalue("postgres_server_url")
    url = await create_scratch_database(server)
    try:
        yield url
    finally:
        await drop_scratch_database(server, url)


class Clock:
    """The store's injected clock: tests move time by hand."""

    def __init__(self, now: float = T0):
        self.now = now

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
async def store(store_url: str, clock: Clock) -> AsyncIterator[Store]:
    async with await open_store(store_url, clock=clock) as opened:
        yield opened


async def fetch_all(url: str, sql: str) -> list[tuple[Any, ...]]:
    """Rows straight from the database, past the store's own reading code."""
    if url.startswith("sqlite://"):
        conn = sqlite3.connect(url.removeprefix("sqlite://"))
        try:
            return [tuple(r) for r in conn.execute(sql)]
        finally:
            conn.close()
    pg = await asyncpg.connect(url)
    try:
        return [tuple(r) for r in await pg.fetch(sql)]
    finally:
        await pg.close()


async def open_with(url: str, migrations: tuple[Migration, ...], **kwargs: Any) -> Store:
    if url.startswith("sqlite://"):
        return await sqlite_backend.SQLiteStore.open(
            url.removeprefix("sqlite://"), migrations=migrations, **kwargs
        )
    return await pg_backend.PostgresStore.open(url, migrations=migrations, **kwargs)


# ---------------------------------------------------------------------------------------------
# Records


def user(text: str, item_id: str | None = None) -> dict[str, Any]:
    item: dict[str, Any] = {
        "type": "message",
        "role": "user",
        "content": [{"type": "input_text", "text": text}],
    }
    return item if item_id is None else {"id": item_id, **item}


def assistant(text: str, item_id: str) -> dict[str, Any]:
    return {
        "id": item_id,
        "type": "message",
        "role": "assistant",
        "status": "completed",
        "content": [{"type": "output_text", "text": text, "annotations": []}],
    }


def record(
    response_id: str,
    *,
    previous: str | None = None,
    inputs: tuple[dict[str, Any], ...] | None = None,
    outputs: tuple[dict[str, Any], ...] | None = None,
    status: Any = "completed",
    created_at: int = T0,
    expires_at: int | None = None,
) -> StoredResponse:
    if inputs is None:
        inputs = (user(f"question for {response_id}", f"msg_in_{response_id}"),)
    if outputs is None:
        outputs = (assistant(f"answer from {response_id}", f"msg_out_{response_id}"),)
    usage = {"input_tokens": 7, "output_tokens": 3, "total_tokens": 10}
    return StoredResponse(
        id=response_id,
        created_at=created_at,
        model="qwen2.5-coder",
        status=status,
        previous_response_id=previous,
        input_items=inputs,
        output_items=outputs,
        usage=usage,
        response={
            "id": response_id,
            "object": "response",
            "created_at": created_at,
            "status": status,
            "model": "qwen2.5-coder",
            "output": list(outputs),
            "previous_response_id": previous,
            "usage": usage,
        },
        expires_at=expires_at,
    )


# ---------------------------------------------------------------------------------------------
# Save and get


async def test_saved_response_reads_back_whole(store: Store) -> None:
    odd_text = 'NUL \x00, lone surrogate \ud800, emoji \U0001f600, accents é, quote " and \\'
    rec = record(
        "resp_whole",
        inputs=(
            user(odd_text, "msg_1"),
            {"id": "fco_1", "type": "function_call_output", "call_id": "c1", "output": odd_text},
        ),
        outputs=(assistant(odd_text, "msg_2"),),
        status="incomplete",
    )
    saved = await store.save(rec)
    assert saved == replace(rec, expires_at=T0 + DEFAULT_TTL_SECONDS)
    assert await store.get("resp_whole") == saved


@pytest.mark.parametrize("status", ["completed", "failed", "incomplete"])
async def test_each_final_status_is_stored(store: Store, status: str) -> None:
    await store.save(record("resp_s", status=status))
    assert (await store.get("resp_s")).status == status


async def test_status_that_is_not_final_is_refused_before_writing(
    store: Store, store_url: str
) -> None:
    with pytest.raises(ValueError, match="status"):
        await store.save(record("resp_busy", status="in_progress"))
    assert await fetch_all(store_url, "SELECT id FROM responses") == []


async def test_input_items_without_id_get_one_and_given_ids_are_kept(store: Store) -> None:
    saved = await store.save(
        record(
            "resp_ids",
            inputs=(user("no id"), user("has id", "msg_given")),
            outputs=({"type": "reasoning", "summary": []},),
        )
    )
    first, second = saved.input_items
    assert first["id"].startswith("msg_") and len(first["id"]) > 20
    assert {k: v for k, v in first.items() if k != "id"} == user("no id")
    assert second == user("has id", "msg_given")
    assert saved.output_items == ({"type": "reasoning", "summary": []},)  # outputs untouched
    assert (await store.get("resp_ids")).input_items == saved.input_items


async def test_tool_credentials_in_the_response_object_never_reach_the_database(
    store: Store, store_url: str
) -> None:
    rec = record("resp_mcp")
    mcp = {
        "type": "mcp",
        "server_label": "tracker",
        "server_url": "https://mcp.example/sse",
        "headers": {"Authorization": "Bearer sk-live-TOKEN1"},
        "authorization": "oauth-TOKEN2",
    }
    fn = {"type": "function", "name": "shell", "parameters": {}}
    saved = await store.save(replace(rec, response={**rec.response, "tools": [mcp, fn]}))
    stored_tools = (await store.get("resp_mcp")).response["tools"]
    assert stored_tools == saved.response["tools"]
    assert stored_tools == [
        {k: v for k, v in mcp.items() if k not in ("headers", "authorization")},
        fn,
    ]
    (raw,) = await fetch_all(store_url, "SELECT response FROM responses")
    assert "TOKEN" not in raw[0]


async def test_duplicate_id_is_refused_and_the_first_record_kept(store: Store) -> None:
    first = await store.save(record("resp_dup"))
    with pytest.raises(DuplicateResponseError, match="resp_dup"):
        await store.save(record("resp_dup", inputs=(user("other", "msg_other"),)))
    assert await store.get("resp_dup") == first


async def test_unknown_id_is_not_found(store: Store) -> None:
    with pytest.raises(ResponseNotFoundError, match="resp_nope") as info:
        await store.get("resp_nope")
    assert not isinstance(info.value, PreviousResponseNotFoundError)


# ---------------------------------------------------------------------------------------------
# Delete


async def test_deleted_response_behaves_as_unknown_everywhere(store: Store) -> None:
    await store.save(record("resp_del"))
    await store.delete("resp_del")
    with pytest.raises(ResponseNotFoundError):
        await store.get("resp_del")
    with pytest.raises(ResponseNotFoundError):
        await store.delete("resp_del")
    with pytest.raises(ResponseNotFoundError):
        await store.list_input_items("resp_del")
    with pytest.raises(PreviousResponseNotFoundError):
        await store.load_chain("resp_del")


async def test_delete_removes_the_row(store: Store, store_url: str) -> None:
    await store.save(record("resp_gone"))
    await store.save(record("resp_kept"))
    await store.delete("resp_gone")
    assert await fetch_all(store_url, "SELECT id FROM responses") == [("resp_kept",)]


# ---------------------------------------------------------------------------------------------
# previous_response_id chains


async def test_chain_is_each_response_inputs_then_outputs_root_first(store: Store) -> None:
    await store.save(record("resp_a"))
    await store.save(record("resp_b", previous="resp_a"))
    await store.save(record("resp_c", previous="resp_b"))
    history = await store.load_chain("resp_c")
    assert [item["id"] for item in history] == [
        "msg_in_resp_a", "msg_out_resp_a",
        "msg_in_resp_b", "msg_out_resp_b",
        "msg_in_resp_c", "msg_out_resp_c",
    ]  # fmt: skip
    assert history[0] == user("question for resp_a", "msg_in_resp_a")
    assert [item["id"] for item in await store.load_chain("resp_a")] == [
        "msg_in_resp_a",
        "msg_out_resp_a",
    ]


async def test_unknown_previous_response_names_the_parameter(store: Store) -> None:
    with pytest.raises(PreviousResponseNotFoundError) as info:
        await store.load_chain("resp_missing")
    err = info.value
    assert err.param == "previous_response_id"
    assert err.code == "previous_response_not_found"
    assert str(err) == "Previous response with id 'resp_missing' not found."


async def test_chain_with_a_deleted_link_is_refused_naming_the_link(store: Store) -> None:
    await store.save(record("resp_a"))
    await store.save(record("resp_b", previous="resp_a"))
    await store.save(record("resp_c", previous="resp_b"))
    await store.delete("resp_b")
    with pytest.raises(PreviousResponseNotFoundError, match="'resp_b'") as info:
        await store.load_chain("resp_c")
    assert info.value.missing_id == "resp_b"
    assert info.value.param == "previous_response_id"
    assert len(await store.load_chain("resp_a")) == 2  # the root itself is still whole


async def test_chain_with_an_expired_root_is_refused(store: Store, clock: Clock) -> None:
    await store.save(record("resp_old", expires_at=T0 + 100))
    await store.save(record("resp_new", previous="resp_old", created_at=T0 + 50))
    assert len(await store.load_chain("resp_new")) == 4
    clock.now = T0 + 100
    with pytest.raises(PreviousResponseNotFoundError) as info:
        await store.load_chain("resp_new")
    assert info.value.missing_id == "resp_old"


async def test_concurrent_branches_from_one_response_are_all_kept(
    store: Store, store_url: str, clock: Clock
) -> None:
    """Two clients continue the same response at once, through two store instances (as two
    bridge processes would): every branch is its own row and its chain loads whole."""
    await store.save(record("resp_root"))
    other = await open_store(store_url, clock=clock)
    async with other, anyio.create_task_group() as tg:
        for n in range(24):
            target = store if n % 2 else other
            tg.start_soon(target.save, record(f"resp_branch_{n}", previous="resp_root"))
    for n in range(24):
        history = await store.load_chain(f"resp_branch_{n}")
        assert [item["id"] for item in history] == [
            "msg_in_resp_root",
            "msg_out_resp_root",
            f"msg_in_resp_branch_{n}",
            f"msg_out_resp_branch_{n}",
        ]
    rows = await fetch_all(store_url, "SELECT COUNT(*) FROM responses")
    assert rows == [(25,)]


async def test_children_are_the_live_visible_continuations_newest_first(
    store: Store, clock: Clock
) -> None:
    await store.save(record("resp_root"))
    for n, tenant in enumerate((None, "team-a", None, "team-b")):
        await store.save(
            replace(
                record(f"resp_child_{n}", previous="resp_root", created_at=T0 + n), tenant=tenant
            )
        )
    await store.save(record("resp_grandchild", previous="resp_child_0", created_at=T0 + 9))
    await store.save(
        record("resp_expired", previous="resp_root", created_at=T0 + 8, expires_at=T0 + 5)
    )
    clock.now = T0 + 6

    def ids(outputs: list[list[Any]]) -> list[str]:
        return [output[0]["id"] for output in outputs]

    # Another tenant's child, an expired one and a grandchild are not among them.
    assert ids(await store.child_outputs("resp_root", tenant="team-a")) == [
        "msg_out_resp_child_2",
        "msg_out_resp_child_1",
        "msg_out_resp_child_0",
    ]
    assert ids(await store.child_outputs("resp_root", limit=1)) == ["msg_out_resp_child_2"]
    assert await store.child_outputs("resp_unknown") == []


async def test_a_chain_that_loops_is_an_error_not_a_hang(store: Store) -> None:
    # Not creatable through the server (a previous id must exist first), but a store must
    # survive a corrupt database.
    await store.save(record("resp_x", previous="resp_y"))
    await store.save(record("resp_y", previous="resp_x"))
    with anyio.fail_after(20), pytest.raises(PreviousResponseNotFoundError) as info:
        await store.load_chain("resp_x")
    assert f"longer than {MAX_CHAIN_DEPTH}" in str(info.value)


# ---------------------------------------------------------------------------------------------
# Input items: cursor pagination


def numbered(n: int) -> tuple[dict[str, Any], ...]:
    return tuple(user(f"item {i}", f"msg_{i:03d}") for i in range(n))


async def test_input_items_default_page_is_the_newest_twenty(store: Store) -> None:
    await store.save(record("resp_p", inputs=numbered(25)))
    page = await store.list_input_items("resp_p")
    assert [item["id"] for item in page.data] == [f"msg_{i:03d}" for i in range(24, 4, -1)]
    assert (page.first_id, page.last_id, page.has_more) == ("msg_024", "msg_005", True)
    assert page.to_json() == {
        "object": "list",
        "data": list(page.data),
        "first_id": "msg_024",
        "last_id": "msg_005",
        "has_more": True,
    }


@pytest.mark.parametrize("order", ["asc", "desc"])
async def test_cursor_walks_every_input_item_once_in_order(store: Store, order: str) -> None:
    await store.save(record("resp_walk", inputs=numbered(23)))
    seen: list[str] = []
    after: str | None = None
    pages = 0
    while True:
        page = await store.list_input_items("resp_walk", after=after, limit=7, order=order)
        pages += 1
        seen += [item["id"] for item in page.data]
        if not page.has_more:
            break
        after = page.last_id
    expected = [f"msg_{i:03d}" for i in range(23)]
    assert seen == (expected if order == "asc" else expected[::-1])
    assert pages == 4


async def test_last_page_that_fills_exactly_says_no_more(store: Store) -> None:
    await store.save(record("resp_exact", inputs=numbered(6)))
    first = await store.list_input_items("resp_exact", limit=3, order="asc")
    second = await store.list_input_items("resp_exact", after=first.last_id, limit=3, order="asc")
    assert (first.has_more, second.has_more) == (True, False)
    assert second.last_id == "msg_005"


async def test_response_without_input_items_lists_an_empty_page(store: Store) -> None:
    await store.save(record("resp_empty", inputs=()))
    page = await store.list_input_items("resp_empty")
    assert page.to_json() == {
        "object": "list",
        "data": [],
        "first_id": None,
        "last_id": None,
        "has_more": False,
    }


@pytest.mark.parametrize(
    ("kwargs", "param"),
    [
        ({"limit": 0}, "limit"),
        ({"limit": 101}, "limit"),
        ({"order": "newest"}, "order"),
        ({"after": "msg_not_here"}, "after"),
    ],
)
async def test_bad_listing_parameter_is_named(
    store: Store, kwargs: dict[str, Any], param: str
) -> None:
    await store.save(record("resp_q", inputs=numbered(3)))
    with pytest.raises(InvalidParameterError) as info:
        await store.list_input_items("resp_q", **kwargs)
    assert info.value.param == param


async def test_listing_input_items_of_unknown_response_is_not_found(store: Store) -> None:
    with pytest.raises(ResponseNotFoundError):
        await store.list_input_items("resp_nobody")


async def test_limit_of_one_hundred_is_allowed(store: Store) -> None:
    await store.save(record("resp_big", inputs=numbered(120)))
    page = await store.list_input_items("resp_big", limit=100, order="asc")
    assert len(page.data) == 100 and page.has_more and page.last_id == "msg_099"


# ---------------------------------------------------------------------------------------------
# Retention


async def test_expired_response_is_unknown_before_any_sweep(store: Store, clock: Clock) -> None:
    saved = await store.save(record("resp_ttl"))
    assert saved.expires_at == T0 + DEFAULT_TTL_SECONDS
    clock.now = T0 + DEFAULT_TTL_SECONDS - 1
    assert (await store.get("resp_ttl")).id == "resp_ttl"
    clock.now = T0 + DEFAULT_TTL_SECONDS
    with pytest.raises(ResponseNotFoundError):
        await store.get("resp_ttl")
    with pytest.raises(ResponseNotFoundError):
        await store.list_input_items("resp_ttl")
    with pytest.raises(PreviousResponseNotFoundError):
        await store.load_chain("resp_ttl")
    with pytest.raises(ResponseNotFoundError):
        await store.delete("resp_ttl")


async def test_expire_deletes_exactly_the_rows_that_are_due(store: Store, store_url: str) -> None:
    await store.save(record("resp_10", expires_at=T0 + 10))
    await store.save(record("resp_20", expires_at=T0 + 20))
    await store.save(record("resp_ttl"))  # the store's 30 days
    assert await store.expire(now=T0 + 9) == 0
    assert await store.expire(now=T0 + 10) == 1
    assert await store.expire(now=T0 + 15) == 0
    rows = await fetch_all(store_url, "SELECT id FROM responses ORDER BY id")
    assert rows == [("resp_20",), ("resp_ttl",)]
    assert await store.expire(now=T0 + DEFAULT_TTL_SECONDS) == 2


async def test_expire_works_through_many_batches(
    store: Store, store_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(sqlite_backend, "EXPIRE_BATCH", 3)
    monkeypatch.setattr(pg_backend, "EXPIRE_BATCH", 3)
    for n in range(10):
        await store.save(record(f"resp_{n}", expires_at=T0 + n))
    assert await store.expire(now=T0 + 8) == 9
    assert await fetch_all(store_url, "SELECT id FROM responses") == [("resp_9",)]


async def test_ttl_is_configurable_and_none_keeps_forever(store_url: str, clock: Clock) -> None:
    async with await open_store(store_url, clock=clock, ttl_seconds=60) as short:
        assert (await short.save(record("resp_60"))).expires_at == T0 + 60
    async with await open_store(store_url, clock=clock, ttl_seconds=None) as forever:
        assert (await forever.save(record("resp_forever"))).expires_at is None
        assert await forever.expire(now=T0 + 10**9) == 1  # only resp_60
        clock.now = T0 + 10**9
        assert (await forever.get("resp_forever")).expires_at is None


async def test_background_expiry_sweeps_due_rows(store: Store, clock: Clock) -> None:
    for n in range(3):
        await store.save(record(f"resp_{n}", expires_at=T0 + 1))
    await store.save(record("resp_live"))
    clock.now = T0 + 2
    with anyio.fail_after(10):
        async with background_expiry(store, interval_s=0.01) as expirer:
            await expirer.wait_for_sweeps(2)
    assert expirer.deleted == 3 and expirer.failures == 0
    assert (await store.get("resp_live")).id == "resp_live"


async def test_a_failed_sweep_is_counted_and_does_not_raise(store_url: str, clock: Clock) -> None:
    store = await open_store(store_url, clock=clock)
    await store.close()
    expirer = Expirer(store, interval_s=60)
    assert await expirer.sweep() == 0
    assert (expirer.sweeps, expirer.failures) == (1, 1)


# ---------------------------------------------------------------------------------------------
# Schema migrations

NEXT = len(MIGRATIONS) + 1  # the version a new migration would take
EXTRA = Migration(NEXT, "test-only table", ("CREATE TABLE extra (x INTEGER)",))


async def test_schema_version_is_recorded_once_per_migration(store_url: str, clock: Clock) -> None:
    for _ in range(2):
        async with await open_store(store_url, clock=clock):
            pass
    rows = await fetch_all(store_url, "SELECT version FROM schema_version ORDER BY version")
    assert rows == [(m.version,) for m in MIGRATIONS]


async def test_new_migration_is_applied_to_an_existing_store(store_url: str, clock: Clock) -> None:
    async with await open_store(store_url, clock=clock) as first:
        await first.save(record("resp_before"))
    migrations = (*MIGRATIONS, EXTRA)
    async with await open_with(store_url, migrations, clock=clock) as upgraded:
        assert (await upgraded.get("resp_before")).id == "resp_before"
    assert await fetch_all(store_url, "SELECT MAX(version) FROM schema_version") == [(NEXT,)]
    assert await fetch_all(store_url, "SELECT COUNT(*) FROM extra") == [(0,)]


async def test_concurrent_opens_apply_each_migration_once(store_url: str) -> None:
    # EXTRA is not idempotent (no IF NOT EXISTS): applying it twice would fail an open.
    migrations = (*MIGRATIONS, EXTRA)
    opened: list[Store] = []

    async def open_one() -> None:
        opened.append(await open_with(store_url, migrations))

    with anyio.fail_after(60):
        async with anyio.create_task_group() as tg:
            for _ in range(8):
                tg.start_soon(open_one)
    for s in opened:
        await s.close()
    assert len(opened) == 8
    rows = await fetch_all(store_url, "SELECT version FROM schema_version ORDER BY version")
    assert rows == [(v,) for v in range(1, NEXT + 1)]


async def test_failing_migration_leaves_the_schema_as_it_was(store_url: str) -> None:
    async with await open_store(store_url):
        pass
    broken = Migration(NEXT, "broken", ("CREATE TABLE half (x INTEGER)", "THIS IS NOT SQL"))
    with pytest.raises(StoreError):
        await open_with(store_url, (*MIGRATIONS, broken))
    assert await fetch_all(store_url, "SELECT MAX(version) FROM schema_version") == [(NEXT - 1,)]
    tables = (
        "SELECT name FROM sqlite_master WHERE name = 'half'"
        if store_url.startswith("sqlite://")
        else "SELECT tablename FROM pg_tables WHERE tablename = 'half'"
    )
    assert await fetch_all(store_url, tables) == []
    async with await open_store(store_url) as again:  # and the store still opens
        await again.save(record("resp_after"))


async def test_schema_from_a_newer_wirebridge_is_refused(store_url: str) -> None:
    async with await open_store(store_url):
        pass
    newer = "INSERT INTO schema_version (version, description, applied_at) VALUES (99, 'x', 0)"
    if store_url.startswith("sqlite://"):
        conn = sqlite3.connect(store_url.removeprefix("sqlite://"))
        with conn:
            conn.execute(newer)
        conn.close()
    else:
        pg = await asyncpg.connect(store_url)
        await pg.execute(newer)
        await pg.close()
    with pytest.raises(SchemaVersionError, match="version 99"):
        await open_store(store_url)


# ---------------------------------------------------------------------------------------------
# Opening


async def test_ttl_must_be_positive(store_url: str) -> None:
    with pytest.raises(ValueError, match="ttl_seconds"):
        await open_store(store_url, ttl_seconds=0)


async def test_closed_store_says_so(store_url: str) -> None:
    store = await open_store(store_url)
    await store.close()
    await store.close()  # closing twice is harmless
    with pytest.raises(StoreError, match="closed"):
        await store.get("resp_any")


async def test_unreachable_postgres_error_hides_the_password(
    unused_tcp_port: Callable[[], int],
) -> None:
    url = f"postgresql://wb:s3cr3t-pw@127.0.0.1:{unused_tcp_port()}/db"
    with pytest.raises(StoreError) as info:
        await open_store(url)
    message = str(info.value)
    assert "s3cr3t-pw" not in message
    assert f"postgresql://wb:***@127.0.0.1:{urlsplit(url).port}/db" in message


@pytest.fixture
def unused_tcp_port() -> Callable[[], int]:
    """A port on 127.0.0.1 that nothing listens on (bound, then released)."""
    import socket

    def pick() -> int:
        with socket.socket() as sock:
            sock.bind(("127.0.0.1", 0))
            port: int = sock.getsockname()[1]
        return port

    return pick
