"""Stored responses belong to the tenant that made them: one API key, or a named group of keys.

Through the real server (in-process, and `wirebridge serve` processes sharing one PostgreSQL)
with real clients: another tenant's response id answers exactly as an unknown id does, on every
route; rows from before tenants, and bridges without keys, behave as they always did; the store
holds a key id, never a key; and `item_reference` input resolves only the caller's items.
"""

from __future__ import annotations

import hashlib
import logging
import sqlite3
from collections.abc import AsyncIterator
from contextlib import AsyncExitStack, asynccontextmanager
from pathlib import Path
from typing import Any

import asyncpg
import httpx
import openai
import pytest
from openai import AsyncOpenAI

from wirebridge.responses import BridgeSettings
from wirebridge.responses.tenants import key_id, parse_tenant_groups
from wirebridge.responses.testing import passthrough_config, running_bridge
from wirebridge.store import StoredResponse, open_store
from wirebridge.store.records import record_to_row
from wirebridge.store.schema import MIGRATIONS
from wirebridge.store.sqlite import SQLiteStore
from wirebridge.testing import (
    Reply,
    ScriptedUpstream,
    chat_chunk,
    sse_body,
    text_body,
)

from .test_server_cli import serve
from .test_store_servers import echo, postgres_url, user  # noqa: F401  (postgres_url: a fixture)

pytestmark = pytest.mark.anyio

ALICE, BOB, CAROL = "alice-key-0f3c9e", "bob-key-7a1d42", "carol-key-c0ffee"
KEYS = frozenset({ALICE, BOB, CAROL})


@asynccontextmanager
async def keyed_bridge(db: Path, upstream: ScriptedUpstream, **options: Any) -> AsyncIterator[str]:
    """An in-process bridge with three keys on a SQLite file; yields its base URL (…/v1)."""
    store = await open_store(f"sqlite://{db}")
    settings = BridgeSettings(
        passthrough_config(upstream.base_url), api_keys=KEYS, store=store, **options
    )
    async with store, running_bridge(settings) as bridge:
        yield bridge.base_url


def files_in(folder: Path) -> bytes:
    return b"".join(p.read_bytes() for p in sorted(folder.iterdir()) if p.is_file())


def http(base_url: str, key: str | None) -> httpx.AsyncClient:
    headers = {"Authorization": f"Bearer {key}"} if key else {}
    return httpx.AsyncClient(base_url=base_url, headers=headers, timeout=10)


async def answers(client: httpx.AsyncClient, response_id: str) -> list[tuple[int, Any]]:
    """What GET, input_items, a continuation and DELETE answer for `response_id` (with the id
    itself written as ID, so two ids' answers compare)."""
    calls = [
        client.get(f"/responses/{response_id}"),
        client.get(f"/responses/{response_id}/input_items"),
        client.post(
            "/responses", json={"model": "m", "input": "go on", "previous_response_id": response_id}
        ),
        client.delete(f"/responses/{response_id}"),
    ]
    out = []
    for call in calls:
        answer = await call
        out.append((answer.status_code, answer.text.replace(response_id, "ID")))
    return out


async def test_another_tenants_response_answers_exactly_as_an_unknown_id(
    tmp_path: Path,
) -> None:
    db = tmp_path / "responses.db"
    async with (
        ScriptedUpstream(default=echo) as upstream,
        keyed_bridge(db, upstream) as base_url,
        http(base_url, ALICE) as alice,
        http(base_url, BOB) as bob,
    ):
        made = (await alice.post("/responses", json={"model": "m", "input": "secret"})).json()
        as_foreign = await answers(bob, made["id"])
        as_unknown = await answers(bob, "resp_never_made_by_anyone")
        still_there = await alice.get(f"/responses/{made['id']}")
        listed = await alice.get(f"/responses/{made['id']}/input_items")
    assert as_foreign == as_unknown
    assert [status for status, _ in as_foreign] == [404, 404, 400, 404]
    assert '"param":"previous_response_id"' in as_foreign[2][1]
    assert still_there.status_code == 200 and still_there.json()["output"][0]["content"][0][
        "text"
    ] == ("echo: secret")
    assert listed.json()["data"][0]["content"][0]["text"] == "secret"
    assert len(upstream.requests) == 1  # Bob's continuation never reached the upstream
    conn = sqlite3.connect(db)
    try:
        assert conn.execute("SELECT tenant FROM responses").fetchall() == [
            (f"key:{key_id(ALICE)}",)
        ]
    finally:
        conn.close()
    stored_bytes = files_in(tmp_path)  # the database, its WAL and shared memory
    assert ALICE.encode() not in stored_bytes and BOB.encode() not in stored_bytes


async def test_rows_from_before_tenants_stay_everyones_and_a_keyless_bridge_sees_only_those(
    tmp_path: Path,
) -> None:
    """A store written by the previous schema (no tenant column) is migrated on start; its rows
    are readable and continuable by every key, as before. A bridge without keys on the same
    store sees those rows and its own, never a tenant's."""
    db = tmp_path / "responses.db"
    legacy = await SQLiteStore.open(str(db), migrations=MIGRATIONS[:1])
    await legacy.close()
    old = StoredResponse(
        id="resp_legacy",
        created_at=1_750_000_000,
        model="m",
        status="completed",
        previous_response_id=None,
        input_items=({"id": "msg_legacy_in", **user("from before")},),
        output_items=(),
        usage=None,
        response={"id": "resp_legacy", "object": "response", "status": "completed"},
    )
    conn = sqlite3.connect(db)
    with conn:
        conn.execute(
            "INSERT INTO responses VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)", record_to_row(old)[:10]
        )
    conn.close()
    async with ScriptedUpstream(default=echo) as upstream:
        async with (
            keyed_bridge(db, upstream) as base_url,
            http(base_url, ALICE) as alice,
            http(base_url, BOB) as bob,
        ):
            seen = [(await c.get("/responses/resp_legacy")).status_code for c in (alice, bob)]
            continued = await bob.post(
                "/responses",
                json={"model": "m", "input": "and now", "previous_response_id": "resp_legacy"},
            )
            owned = (await alice.post("/responses", json={"model": "m", "input": "mine"})).json()
        store = await open_store(f"sqlite://{db}")
        async with (
            store,
            running_bridge(
                BridgeSettings(passthrough_config(upstream.base_url), store=store)
            ) as keyless,
            http(keyless.base_url, None) as anyone,
        ):
            legacy_seen = await anyone.get("/responses/resp_legacy")
            foreign = await anyone.get(f"/responses/{owned['id']}")
            own = (await anyone.post("/responses", json={"model": "m", "input": "open"})).json()
            own_seen = await anyone.get(f"/responses/{own['id']}")
    assert seen == [200, 200]
    assert continued.status_code == 200
    assert upstream.requests[0].json["messages"][:2] == [user("from before"), user("and now")]
    assert legacy_seen.status_code == 200 and own_seen.status_code == 200
    assert foreign.status_code == 404


async def test_item_reference_resolves_the_callers_stored_items_only(tmp_path: Path) -> None:
    async with (
        ScriptedUpstream(default=echo) as upstream,
        keyed_bridge(tmp_path / "responses.db", upstream) as base_url,
        AsyncOpenAI(base_url=base_url, api_key=ALICE, max_retries=0) as alice,
        http(base_url, BOB) as bob,
        http(base_url, ALICE) as alice_http,
    ):
        first = await alice.responses.create(model="m", input="My name is Ada.", store=True)
        [asked] = (await alice.responses.input_items.list(first.id)).data
        answer_id = first.output[0].id
        second = await alice.responses.create(
            model="m",
            input=[
                {"type": "item_reference", "id": asked.id},
                {"type": "item_reference", "id": answer_id},
                {"role": "user", "content": "What is my name?"},
            ],
        )
        listed = await alice.responses.input_items.list(second.id, order="asc")
        foreign = await bob.post(
            "/responses",
            json={"model": "m", "input": [{"type": "item_reference", "id": answer_id}]},
        )
        unknown = await alice_http.post(
            "/responses",
            json={
                "model": "m",
                "input": [user("hi"), {"type": "item_reference", "id": "msg_nobody_has"}],
            },
        )
    assert upstream.requests[1].json["messages"] == [
        user("My name is Ada."),
        {"role": "assistant", "content": "echo: My name is Ada."},
        user("What is my name?"),
    ]
    # What was sent is what is stored: the referenced items, not the references.
    assert [item.type for item in listed.data] == ["message", "message", "message"]
    assert [item.id for item in listed.data][:2] == [asked.id, answer_id]
    for refused, index in ((foreign, 0), (unknown, 1)):
        assert refused.status_code == 400
        error = refused.json()["error"]
        assert error["param"] == f"input[{index}]" and error["code"] == "item_not_found"
    assert len(upstream.requests) == 2  # the refused requests never went upstream


def team_config(tmp_path: Path, upstream: str) -> Path:
    """A config file putting Alice and Carol in one tenant group (by key id, no key in it)."""
    ids = ", ".join(f'"{hashlib.sha256(k.encode()).hexdigest()[:32]}"' for k in (ALICE, CAROL))
    path = tmp_path / "config.toml"
    path.write_text(f"[tenants.team]\nkey_ids = [{ids}]\n")
    assert parse_tenant_groups({"tenants": {"team": {"key_ids": [key_id(ALICE)]}}}) == {
        "team": frozenset({key_id(ALICE)})
    }
    return path


@pytest.mark.postgres
async def test_two_bridges_on_one_postgres_agree_on_tenants_and_groups(
    tmp_path: Path,
    postgres_url: str,  # noqa: F811
) -> None:
    """Alice (in group `team` with Carol) stores through one `wirebridge serve`; through the
    other, Alice and Carol read and continue it, and Bob gets 404s as for an unknown id."""
    env = {"WIREBRIDGE_API_KEYS": ",".join(sorted(KEYS))}
    async with ScriptedUpstream(default=echo) as upstream, AsyncExitStack() as stack:
        config = team_config(tmp_path, upstream.base_url)
        urls = []
        for _ in range(2):
            server = await stack.enter_async_context(
                serve(
                    "--upstream",
                    upstream.base_url,
                    "--store",
                    postgres_url,
                    "--config",
                    str(config),
                    env=env,
                )
            )
            urls.append(f"{server.url}/v1")

        def sdk(url: str, key: str) -> AsyncOpenAI:
            return AsyncOpenAI(base_url=url, api_key=key, max_retries=0, timeout=10)

        alice_1 = await stack.enter_async_context(sdk(urls[0], ALICE))
        alice_2, bob_2, carol_2 = [
            await stack.enter_async_context(sdk(urls[1], key)) for key in (ALICE, BOB, CAROL)
        ]
        made = await alice_1.responses.create(model="m", input="team secret")
        by_alice = await alice_2.responses.retrieve(made.id)
        by_carol = await carol_2.responses.retrieve(made.id)
        await carol_2.responses.create(model="m", input="go on", previous_response_id=made.id)
        with pytest.raises(openai.NotFoundError):
            await bob_2.responses.retrieve(made.id)
        with pytest.raises(openai.NotFoundError):
            await bob_2.responses.delete(made.id)
        with pytest.raises(openai.BadRequestError) as continued:
            await bob_2.responses.create(model="m", input="x", previous_response_id=made.id)
        bob_own = await bob_2.responses.create(model="m", input="bob's")
        with pytest.raises(openai.NotFoundError):
            await alice_1.responses.retrieve(bob_own.id)
    assert by_alice.output_text == by_carol.output_text == "echo: team secret"
    assert continued.value.code == "previous_response_not_found"
    conn = await asyncpg.connect(postgres_url)
    try:
        rows = await conn.fetch("SELECT id, tenant FROM responses ORDER BY created_at, id")
    finally:
        await conn.close()
    tenants = {row["id"]: row["tenant"] for row in rows}
    assert tenants[made.id] == "group:team"
    assert tenants[bob_own.id] == f"key:{key_id(BOB)}"
    assert len(upstream.requests) == 3  # Bob's continuation never went upstream


async def test_the_access_log_names_the_tenant_never_the_key(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    with caplog.at_level(logging.INFO, logger="wirebridge.access"):
        async with (
            ScriptedUpstream(default=echo) as upstream,
            keyed_bridge(tmp_path / "responses.db", upstream) as base_url,
            http(base_url, ALICE) as alice,
        ):
            made = (await alice.post("/responses", json={"model": "m", "input": "hi"})).json()
            await alice.get(f"/responses/{made['id']}")
    records = [r for r in caplog.records if r.name == "wirebridge.access"]
    assert [r.access["tenant"] for r in records] == [f"key:{key_id(ALICE)}"] * 2  # type: ignore[attr-defined]
    assert all(ALICE not in r.getMessage() for r in caplog.records)


async def test_item_reference_brings_back_reasoning_and_calls_as_the_ai_sdk_sends_them(
    tmp_path: Path,
) -> None:
    """The AI SDK's continuation of a tool call: earlier reasoning and the call as references,
    then the tool's output. The upstream gets the call with its reasoning replayed."""
    call = {"index": 0, "id": "call_1", "type": "function"}
    thinking_then_call = sse_body(
        [
            chat_chunk({"role": "assistant", "reasoning_content": "I should look it up"}),
            chat_chunk({"tool_calls": [{**call, "function": {"name": "lookup", "arguments": ""}}]}),
            chat_chunk({"tool_calls": [{"index": 0, "function": {"arguments": '{"q": 1}'}}]}),
            chat_chunk({}, finish_reason="tool_calls"),
        ]
    )
    tool = {"type": "function", "name": "lookup", "parameters": {"type": "object"}}
    async with ScriptedUpstream() as upstream:
        upstream.push(Reply(thinking_then_call), Reply(text_body(["It is 42."])))
        async with (
            keyed_bridge(tmp_path / "responses.db", upstream) as base_url,
            http(base_url, ALICE) as alice,
        ):
            first = (
                await alice.post(
                    "/responses", json={"model": "m", "input": "find it", "tools": [tool]}
                )
            ).json()
            asked = (await alice.get(f"/responses/{first['id']}/input_items")).json()["data"][0]
            reasoning, called = first["output"]
            second = await alice.post(
                "/responses",
                json={
                    "model": "m",
                    "tools": [tool],
                    "input": [
                        {"type": "item_reference", "id": asked["id"]},
                        {"type": "item_reference", "id": reasoning["id"]},
                        {"type": "item_reference", "id": called["id"]},
                        {"type": "function_call_output", "call_id": "call_1", "output": "42"},
                    ],
                },
            )
    assert (reasoning["type"], called["type"]) == ("reasoning", "function_call")
    assert second.status_code == 200, second.text
    assert upstream.requests[1].json["messages"] == [
        user("find it"),
        {
            "role": "assistant",
            "reasoning": "I should look it up",
            "tool_calls": [
                {
                    "id": "call_1",
                    "type": "function",
                    "function": {"name": "lookup", "arguments": '{"q": 1}'},
                }
            ],
        },
        {"role": "tool", "tool_call_id": "call_1", "content": "42"},
    ]
