"""Background runs across real `wirebridge serve` processes: two bridges on one store (start on
A, resume live on B, cancel on B), `kill -9` mid-run then restart, and SIGTERM's drain.

Each store is a SQLite file both processes open, or a PostgreSQL database (marked `postgres`).
The upstream holds its answer part way until the test releases it (`Reply.hold`).
"""

from __future__ import annotations

import asyncio
import json
import signal
import sqlite3
from collections.abc import AsyncIterator
from contextlib import AsyncExitStack, asynccontextmanager
from pathlib import Path

import anyio
import pytest
from openai import AsyncOpenAI

from wirebridge.responses.runframes import ABANDONED_MESSAGE
from wirebridge.responses.testing import check_stream_invariants, validate_events
from wirebridge.testing import ScriptedUpstream

from .test_background import (
    FULL_TEXT,
    HELD_AFTER,
    PIECES,
    deltas,
    dumped,
    first_events,
    held_reply,
    until_done,
)
from .test_server_cli import Serve, serve
from .test_store_servers import postgres_url, shared_store_url

pytestmark = pytest.mark.anyio
__all__ = ["postgres_url", "shared_store_url"]  # fixtures used by name

LEASE = "1"  # seconds: a killed bridge's run is noticed within a few of them


def sdk(server: Serve) -> AsyncOpenAI:
    return AsyncOpenAI(base_url=f"{server.url}/v1", api_key="unused", max_retries=0, timeout=20)


@asynccontextmanager
async def bridge(upstream: str, store: str, *args: str) -> AsyncIterator[tuple[Serve, AsyncOpenAI]]:
    async with (
        serve("--upstream", upstream, "--store", store, "--background-lease", LEASE, *args) as s,
        sdk(s) as client,
    ):
        yield s, client


async def test_start_on_a_resume_live_and_cancel_on_b(shared_store_url: str) -> None:
    finish, never = asyncio.Event(), asyncio.Event()
    async with ScriptedUpstream() as upstream, AsyncExitStack() as stack:
        upstream.push(held_reply(finish), held_reply(never))
        _, a = await stack.enter_async_context(bridge(upstream.base_url, shared_store_url))
        _, b = await stack.enter_async_context(bridge(upstream.base_url, shared_store_url))

        stream = await a.responses.create(model="m", input="x", background=True, stream=True)
        before = await first_events(stream, 3)
        await stream.close()
        last = before[-1]["sequence_number"]
        response_id = before[0]["response"]["id"]
        resumed = await b.responses.retrieve(response_id, stream=True, starting_after=last)
        finish.set()  # B follows the rest live, from A's writes to the shared store
        after = [dumped(e) async for e in resumed]
        with anyio.fail_after(10):
            await upstream.closed.wait()  # the first run's upstream connection is gone

        second = await a.responses.create(model="m", input="y", background=True, stream=True)
        shown = await first_events(second, HELD_AFTER - 1)
        second_id = shown[0]["response"]["id"]
        cancelled = await b.responses.cancel(second_id)
        with anyio.fail_after(10):
            await upstream.closed.wait()  # A closed the upstream request B cancelled
        seen_on_a = await a.responses.retrieve(second_id)

    validate_events(before + after)
    assert [e["sequence_number"] for e in after] == list(range(last + 1, last + 1 + len(after)))
    assert check_stream_invariants(before + after)["status"] == "completed"
    assert deltas(before) + deltas(after) == FULL_TEXT
    assert cancelled.status == seen_on_a.status == "cancelled"
    assert cancelled.output_text == "".join(PIECES[: HELD_AFTER - 1])


async def test_kill_9_mid_run_then_restart_marks_the_run_failed(shared_store_url: str) -> None:
    never = asyncio.Event()
    async with ScriptedUpstream() as upstream:
        upstream.push(held_reply(never))
        async with bridge(upstream.base_url, shared_store_url) as (server, client):
            stream = await client.responses.create(
                model="m", input="x", background=True, stream=True
            )
            before = await first_events(stream, 2)
            await stream.close()
            server.process.kill()  # SIGKILL: no shutdown, no drain, no final write
            await server.process.wait()
        response_id = before[0]["response"]["id"]
        last = before[-1]["sequence_number"]
        async with bridge(upstream.base_url, shared_store_url) as (_, restarted):
            final = await until_done(restarted, response_id, within_s=30)
            tail = await restarted.responses.retrieve(response_id, stream=True, starting_after=last)
            after = [dumped(e) async for e in tail]
    assert final.status == "failed"
    assert final.error is not None and final.error.message == ABANDONED_MESSAGE
    validate_events(before + after)
    assert after[-1]["type"] == "response.failed"
    assert deltas(before) + deltas(after) == "".join(PIECES[: HELD_AFTER - 1])


async def test_sigterm_lets_runs_finish_within_the_grace_then_marks_the_rest(
    tmp_path: Path,
) -> None:
    db = tmp_path / "responses.db"
    finish, never = asyncio.Event(), asyncio.Event()
    async with ScriptedUpstream() as upstream:
        upstream.push(held_reply(finish), held_reply(never))
        async with bridge(upstream.base_url, f"sqlite://{db}", "--shutdown-grace", "3") as (
            server,
            client,
        ):
            ids = []
            for _ in range(2):
                stream = await client.responses.create(
                    model="m", input="x", background=True, stream=True
                )
                ids.append((await first_events(stream, 1))[0]["response"]["id"])
                await stream.close()
            await client.close()
            server.process.send_signal(signal.SIGTERM)
            finish.set()  # the first run can only finish after the signal was sent
            with anyio.fail_after(20):
                await server.process.wait()
    with sqlite3.connect(db) as conn:
        rows = dict(conn.execute("SELECT id, response FROM runs").fetchall())
    finished, cut = (json.loads(rows[i]) for i in ids)
    assert finished["status"] == "completed"
    assert finished["output"][0]["content"][0]["text"] == FULL_TEXT
    assert cut["status"] == "failed"
    assert "shut down" in cut["error"]["message"]
    assert not upstream.replies  # both runs reached the upstream
    assert any("background run(s)" in line for line in server.lines)  # it drained them


async def test_a_foreground_stream_started_on_a_resumes_live_on_b(shared_store_url: str) -> None:
    finish = asyncio.Event()
    async with ScriptedUpstream() as upstream, AsyncExitStack() as stack:
        upstream.push(held_reply(finish))
        _, a = await stack.enter_async_context(bridge(upstream.base_url, shared_store_url))
        _, b = await stack.enter_async_context(bridge(upstream.base_url, shared_store_url))
        stream = await a.responses.create(model="m", input="x", stream=True)  # not background
        before = await first_events(stream, 3)
        await stream.close()  # A's client is gone; the run goes on in A
        last = before[-1]["sequence_number"]
        response_id = before[0]["response"]["id"]
        resumed = await b.responses.retrieve(response_id, stream=True, starting_after=last)
        finish.set()
        after = [dumped(e) async for e in resumed]
        on_b = await b.responses.retrieve(response_id)
    validate_events(before + after)
    assert [e["sequence_number"] for e in after] == list(range(last + 1, last + 1 + len(after)))
    assert check_stream_invariants(before + after)["status"] == "completed"
    assert deltas(before) + deltas(after) == FULL_TEXT
    assert len(upstream.requests) == 1
    assert on_b.status == "completed" and on_b.output_text == FULL_TEXT


@pytest.mark.postgres
async def test_notices_make_resume_and_cancel_on_b_live_without_polling(postgres_url: str) -> None:
    """Both bridges poll only every 30 s and renew leases every 20 s: a resume on B that follows
    A's writes live, and a cancel on B that A obeys at once, can only come from NOTIFY."""
    slow = ("--background-poll", "30", "--background-lease", "60")
    finish, never = asyncio.Event(), asyncio.Event()
    async with ScriptedUpstream() as upstream, AsyncExitStack() as stack:
        upstream.push(held_reply(finish), held_reply(never))
        _, a = await stack.enter_async_context(bridge(upstream.base_url, postgres_url, *slow))
        _, b = await stack.enter_async_context(bridge(upstream.base_url, postgres_url, *slow))
        with anyio.fail_after(10):
            stream = await a.responses.create(model="m", input="x", background=True, stream=True)
            before = await first_events(stream, 3)
            await stream.close()
            last = before[-1]["sequence_number"]
            resumed = await b.responses.retrieve(
                before[0]["response"]["id"], stream=True, starting_after=last
            )
            finish.set()
            after = [dumped(e) async for e in resumed]
            await upstream.closed.wait()

            second = await a.responses.create(model="m", input="y", background=True, stream=True)
            shown = await first_events(second, HELD_AFTER - 1)
            cancelled = await b.responses.cancel(shown[0]["response"]["id"])
            await upstream.closed.wait()  # A closed the upstream request B cancelled
    assert deltas(before) + deltas(after) == FULL_TEXT
    assert after[-1]["type"] == "response.completed"
    assert cancelled.status == "cancelled"
    assert cancelled.output_text == "".join(PIECES[: HELD_AFTER - 1])
