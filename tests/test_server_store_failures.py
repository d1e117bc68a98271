"""When the store fails, clients are told the truth, and only the requests that store wait.

Through the real server and a real SQLite file that another connection holds locked: a response
that could not be stored within the write timeout is answered whole with `store: false` (streamed
or not), and is not there afterwards; requests that only read the store (`store: false` with
`previous_response_id`, `GET`) go on while a write is stuck. And the rule for failures: a turn
whose answer began is stored as `failed`, streamed or not; one refused before that is not.
"""

from __future__ import annotations

import sqlite3
from collections.abc import AsyncIterator, Callable, Iterator
from contextlib import asynccontextmanager, contextmanager
from pathlib import Path
from typing import Any

import anyio
import httpx
import openai
import pytest
from openai import AsyncOpenAI

from wirebridge.responses import BridgeSettings
from wirebridge.responses.relay import RESPONSE_ID_HEADER
from wirebridge.responses.testing import (
    check_stream_invariants,
    parse_sse,
    passthrough_config,
    running_bridge,
)
from wirebridge.store import open_store
from wirebridge.testing import Reply, ScriptedUpstream, SeenRequest, text_body

from .test_store_servers import cut_reply

pytestmark = pytest.mark.anyio


def echo(request: SeenRequest) -> Reply:
    return Reply(text_body([f"echo: {request.json['messages'][-1]['content']}"]))


@asynccontextmanager
async def bridge_on(db: Path, upstream: ScriptedUpstream, **options: Any) -> AsyncIterator[str]:
    store = await open_store(f"sqlite://{db}")
    settings = BridgeSettings(passthrough_config(upstream.base_url), store=store, **options)
    async with store, running_bridge(settings) as bridge:
        yield bridge.base_url


@contextmanager
def write_locked(db: Path) -> Iterator[Callable[[], None]]:
    """Another connection holding the file's write lock until released (or the block ends);
    yields the release function."""
    conn = sqlite3.connect(db, isolation_level=None)
    conn.execute("BEGIN IMMEDIATE")

    def release() -> None:
        if conn.in_transaction:
            conn.execute("ROLLBACK")

    try:
        yield release
    finally:
        release()
        conn.close()


def sdk(base_url: str) -> AsyncOpenAI:
    return AsyncOpenAI(base_url=base_url, api_key="unused", max_retries=0, timeout=30)


async def test_a_response_the_locked_store_cannot_keep_says_store_false(tmp_path: Path) -> None:
    db = tmp_path / "responses.db"
    async with (
        ScriptedUpstream(default=echo) as upstream,
        bridge_on(db, upstream, store_write_timeout_s=0.5) as base_url,
        sdk(base_url) as client,
        httpx.AsyncClient(base_url=base_url, timeout=30) as raw,
    ):
        with write_locked(db), anyio.fail_after(25):
            whole = await client.responses.create(model="m", input="one")
            streamed = await raw.post(
                "/responses", json={"model": "m", "input": "two", "stream": True}
            )
        events = parse_sse(streamed.content)
        final = check_stream_invariants(events)
        for made in (whole.id, final["id"]):
            with pytest.raises(openai.NotFoundError):
                await client.responses.retrieve(made)
        stored_later = await client.responses.create(model="m", input="three")
    assert whole.status == "completed" and whole.output_text == "echo: one"
    assert whole.store is False
    assert events[-1]["type"] == "response.completed" and final["store"] is False
    assert final["output"][0]["content"][0]["text"] == "echo: two"
    assert stored_later.store is True  # the lock is gone: storing works again


async def test_requests_that_only_read_never_wait_behind_a_stuck_write(tmp_path: Path) -> None:
    """A storing request is stuck on the lock (a long write timeout); meanwhile a `store: false`
    continuation and a GET are answered. Released, the stuck one is stored after all."""
    db = tmp_path / "responses.db"
    stuck: dict[str, Any] = {}
    async with (
        ScriptedUpstream(default=echo) as upstream,
        bridge_on(db, upstream, store_write_timeout_s=120) as base_url,
        sdk(base_url) as client,
    ):
        earlier = await client.responses.create(model="m", input="earlier")
        with write_locked(db) as release:
            async with anyio.create_task_group() as tg:

                async def storing() -> None:
                    stuck["response"] = await client.responses.create(model="m", input="stuck")

                tg.start_soon(storing)
                # Well inside SQLite's own 30 s busy timeout, which bounded the wait before.
                with anyio.fail_after(25):
                    while len(upstream.requests) < 2:  # the stuck one was answered upstream...
                        await anyio.wait_all_tasks_blocked()
                    await anyio.wait_all_tasks_blocked()  # ...and now waits for the store
                    assert "response" not in stuck
                    reading = await client.responses.create(
                        model="m", input="again", store=False, previous_response_id=earlier.id
                    )
                    fetched = await client.responses.retrieve(earlier.id)
                assert "response" not in stuck  # still waiting for the lock
                release()  # the stuck write goes through now
        kept = await client.responses.retrieve(stuck["response"].id)
    assert reading.output_text == "echo: again" and fetched.id == earlier.id
    assert upstream.requests[2].json["messages"][:2] == [
        {"role": "user", "content": "earlier"},
        {"role": "assistant", "content": "echo: earlier"},
    ]
    assert stuck["response"].store is True and kept.output_text == "echo: stuck"


async def test_a_failure_after_the_answer_began_is_stored_streamed_or_not(
    tmp_path: Path,
) -> None:
    """One rule for both modes: the upstream cut off mid-answer -> the response is stored as
    `failed` with what was generated. Streamed, its id came with `response.created`; not
    streamed, the error answer names it in a header. A refusal before any answer stores
    nothing and names no response."""
    db = tmp_path / "responses.db"
    async with (
        ScriptedUpstream() as upstream,
        bridge_on(db, upstream) as base_url,
        sdk(base_url) as client,
    ):
        upstream.push(
            cut_reply("half an ans", "wer", "disconnect"),
            cut_reply("half an ans", "wer", "disconnect"),
            Reply(
                b'{"error": {"message": "bad model"}}', status=400, content_type="application/json"
            ),
        )
        with pytest.raises(openai.APIStatusError) as whole:
            await client.responses.create(model="m", input="whole")
        stream = await client.responses.create(model="m", input="streamed", stream=True)
        streamed = [e.response async for e in stream if e.type == "response.failed"]
        with pytest.raises(openai.BadRequestError) as refused:
            await client.responses.create(model="m", input="refused")
        stored_id = whole.value.response.headers.get(RESPONSE_ID_HEADER)
        assert stored_id is not None, "the non-streamed failure names no stored response"
        stored = [await client.responses.retrieve(i) for i in (stored_id, streamed[0].id)]
    assert whole.value.status_code == 502
    assert [s.status for s in stored] == ["failed", "failed"]
    assert all(s.error is not None for s in stored)
    assert RESPONSE_ID_HEADER not in refused.value.response.headers
    conn = sqlite3.connect(db)
    try:
        assert conn.execute("SELECT COUNT(*) FROM responses").fetchone() == (2,)
    finally:
        conn.close()
