"""Background runs in one bridge on SQLite, through the `openai` SDK: start, poll, resume after a
dropped connection, cancel (the upstream request is closed), tenants, shutdown.

The upstream holds its answer part way (`Reply.hold`) until the test releases it, so "still
running" is a fact of the script, never a matter of timing.
"""

from __future__ import annotations

import asyncio
import json
import sqlite3
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import anyio
import httpx
import openai
import pytest
from openai import AsyncOpenAI

from wirebridge.responses import BridgeSettings
from wirebridge.responses.background import BackgroundSettings
from wirebridge.responses.runframes import SHUTDOWN_MESSAGE
from wirebridge.responses.runner import RunningBridge
from wirebridge.responses.testing import (
    check_stream_invariants,
    passthrough_config,
    running_bridge,
    validate_events,
    validate_response,
)
from wirebridge.testing import Reply, ScriptedUpstream, chat_chunk, sse_body, text_body

pytestmark = pytest.mark.anyio

PIECES = [f"word{i} " for i in range(40)]
FULL_TEXT = "".join(PIECES)
HELD_AFTER = 6  # chunks sent before the hold (the role chunk and five pieces)


def held_reply(hold: asyncio.Event) -> Reply:
    """The whole answer, paused after HELD_AFTER chunks until `hold` is set."""
    head = [chat_chunk({"role": "assistant", "content": ""})]
    head += [chat_chunk({"content": p}) for p in PIECES[: HELD_AFTER - 1]]
    cut = len(sse_body(head, done=False))
    return Reply(text_body(PIECES), hold=hold, hold_after=cut, split=(40, 200))


def sdk(server: RunningBridge, key: str = "unused") -> AsyncOpenAI:
    return AsyncOpenAI(base_url=server.base_url, api_key=key, max_retries=0, timeout=20)


def dumped(event: Any) -> dict[str, Any]:
    data: dict[str, Any] = event.model_dump(
        mode="json", by_alias=True, exclude_unset=True, warnings=False
    )
    return data


def deltas(events: list[dict[str, Any]]) -> str:
    return "".join(e["delta"] for e in events if e["type"] == "response.output_text.delta")


async def until_done(client: AsyncOpenAI, response_id: str, within_s: float = 20) -> Any:
    """Poll as the SDK's users do, until the run leaves queued/in_progress (fail after
    `within_s`)."""
    with anyio.fail_after(within_s):
        while True:
            response = await client.responses.retrieve(response_id)
            if response.status not in ("queued", "in_progress"):
                return response
            await anyio.sleep(0.05)


@pytest.fixture
async def upstream() -> AsyncIterator[ScriptedUpstream]:
    async with ScriptedUpstream() as up:
        yield up


@pytest.fixture
def db(tmp_path: Path) -> str:
    return str(tmp_path / "responses.db")


@pytest.fixture
def hold(upstream: ScriptedUpstream) -> asyncio.Event:
    """The upstream's next answer is `held_reply(hold)`: paused after HELD_AFTER chunks until the
    test sets `hold` (a test that never sets it has an upstream that holds forever)."""
    release = asyncio.Event()
    upstream.push(held_reply(release))
    return release


def settings(
    upstream: ScriptedUpstream, db: str, *, keys: bool = False, **options: Any
) -> BridgeSettings:
    return BridgeSettings(
        passthrough_config(upstream.base_url, request_max_retries=0),
        api_keys=frozenset({"key-a", "key-b"}) if keys else frozenset(),
        store_at_startup=True,
        store_url=f"sqlite://{db}",
        background=BackgroundSettings(poll_s=0.05, **options),
    )


async def first_events(stream: Any, count: int) -> list[dict[str, Any]]:
    """Read the stream until `count` text deltas arrived (all sent before the hold)."""
    seen: list[dict[str, Any]] = []
    async for event in stream:
        seen.append(dumped(event))
        if sum(e["type"] == "response.output_text.delta" for e in seen) == count:
            return seen
    raise AssertionError(f"the stream ended after {seen}")


async def test_background_returns_queued_then_polls_to_completed(
    upstream: ScriptedUpstream, db: str, hold: asyncio.Event
) -> None:
    async with running_bridge(settings(upstream, db)) as server, sdk(server) as client:
        started = await client.responses.create(model="m", input="count", background=True)
        assert started.status == "queued" and started.background is True
        while_held = await client.responses.retrieve(started.id)
        assert while_held.status == "in_progress"
        hold.set()
        final = await until_done(client, started.id)
    assert final.status == "completed"
    assert final.output_text == FULL_TEXT
    validate_response(final.model_dump(mode="json"))


async def test_resume_after_a_dropped_connection_has_every_later_event_once(
    upstream: ScriptedUpstream, db: str, hold: asyncio.Event
) -> None:
    async with running_bridge(settings(upstream, db)) as server, sdk(server) as client:
        stream = await client.responses.create(
            model="m", input="count", background=True, stream=True
        )
        before = await first_events(stream, 3)
        await stream.close()  # the connection drops; the run goes on in the server
        last = before[-1]["sequence_number"]
        resumed = await client.responses.retrieve(
            before[0]["response"]["id"], stream=True, starting_after=last
        )
        hold.set()  # the rest arrives while the resumed stream follows the live run
        after = [dumped(e) async for e in resumed]
    validate_events(before + after)
    assert [e["sequence_number"] for e in after] == list(range(last + 1, last + 1 + len(after)))
    final = check_stream_invariants(before + after)
    assert deltas(before) + deltas(after) == FULL_TEXT
    assert final["status"] == "completed"


async def test_resume_from_the_start_replays_a_finished_run(
    upstream: ScriptedUpstream, db: str
) -> None:
    upstream.push(Reply(text_body(PIECES)))
    async with running_bridge(settings(upstream, db)) as server, sdk(server) as client:
        started = await client.responses.create(model="m", input="count", background=True)
        await until_done(client, started.id)
        replay = [dumped(e) async for e in await client.responses.retrieve(started.id, stream=True)]
        tail = await client.responses.retrieve(started.id, stream=True, starting_after=10)
        tail_events = [dumped(e) async for e in tail]
    validate_events(replay)
    check_stream_invariants(replay)
    assert deltas(replay) == FULL_TEXT
    assert tail_events == replay[11:]


async def test_cancel_mid_run_closes_the_upstream_request_and_keeps_the_output(
    upstream: ScriptedUpstream, db: str, hold: asyncio.Event
) -> None:
    # hold is never set: the upstream holds its answer forever
    async with running_bridge(settings(upstream, db)) as server, sdk(server) as client:
        stream = await client.responses.create(
            model="m", input="count", background=True, stream=True
        )
        before = await first_events(stream, HELD_AFTER - 1)
        response_id = before[0]["response"]["id"]
        cancelled = await client.responses.cancel(response_id)
        with anyio.fail_after(10):
            await upstream.closed.wait()  # the upstream saw its request closed
        rest = [dumped(e) async for e in stream]  # the live stream ends
        polled = await client.responses.retrieve(response_id)
        again = await client.responses.cancel(response_id)  # idempotent
    assert cancelled.status == "cancelled" == polled.status == again.status
    assert cancelled.output_text == "".join(PIECES[: HELD_AFTER - 1])
    assert [item.model_dump()["status"] for item in cancelled.output] == ["incomplete"]
    validate_events(before + rest)
    assert not any(e["type"].startswith("response.completed") for e in rest)


async def test_cancel_answers_as_the_api_does(upstream: ScriptedUpstream, db: str) -> None:
    upstream.push(Reply(text_body(["hi"])), Reply(text_body(["hi"])))
    async with running_bridge(settings(upstream, db)) as server, sdk(server) as client:
        done = await client.responses.create(model="m", input="x", background=True)
        await until_done(client, done.id)
        with pytest.raises(openai.BadRequestError, match="Cannot cancel"):
            await client.responses.cancel(done.id)
        foreground = await client.responses.create(model="m", input="x")
        with pytest.raises(openai.BadRequestError, match="background=true"):
            await client.responses.cancel(foreground.id)
        with pytest.raises(openai.BadRequestError, match="background=true") as streamed:
            await client.responses.retrieve(foreground.id, stream=True)
        assert streamed.value.param == "stream"
        with pytest.raises(openai.NotFoundError):
            await client.responses.cancel("resp_unknown")
        with pytest.raises(openai.BadRequestError) as no_store:
            await client.responses.create(model="m", input="x", background=True, store=False)
        assert no_store.value.param == "background"


async def test_another_tenants_run_is_a_404(
    upstream: ScriptedUpstream, db: str, hold: asyncio.Event
) -> None:
    async with (
        running_bridge(settings(upstream, db, keys=True)) as server,
        sdk(server, "key-a") as owner,
        sdk(server, "key-b") as other,
    ):
        started = await owner.responses.create(model="m", input="x", background=True)
        for call in (
            other.responses.retrieve(started.id),
            other.responses.cancel(started.id),
        ):
            with pytest.raises(openai.NotFoundError):
                await call
        async with httpx.AsyncClient() as http:
            url = f"{server.base_url}/responses/{started.id}?stream=true"
            answer = await http.get(url, headers={"authorization": "Bearer key-b"})
        assert answer.status_code == 404
        assert (await owner.responses.retrieve(started.id)).status == "in_progress"
        hold.set()
        assert (await until_done(owner, started.id)).status == "completed"


async def test_shutdown_drains_then_marks_what_is_left_failed(
    upstream: ScriptedUpstream, db: str, hold: asyncio.Event
) -> None:
    # hold is never set: the upstream holds its answer forever
    async with running_bridge(settings(upstream, db, drain_s=0.2)) as server, sdk(server) as c:
        stream = await c.responses.create(model="m", input="x", background=True, stream=True)
        before = await first_events(stream, 1)
        await stream.close()
    response_id = before[0]["response"]["id"]
    with sqlite3.connect(db) as conn:
        status, text = conn.execute(
            "SELECT status, response FROM runs WHERE id = ?", (response_id,)
        ).fetchone()
    assert status == "failed"
    assert json.loads(text)["error"]["message"] == SHUTDOWN_MESSAGE
    assert json.loads(text)["output"][0]["content"][0]["text"] == "".join(PIECES[: HELD_AFTER - 1])


async def test_no_mcp_credential_reaches_the_run_log(upstream: ScriptedUpstream, db: str) -> None:
    upstream.push(Reply(text_body(["hi"])))
    secret = "Bearer sk-do-not-store-me"
    mcp = {
        "type": "mcp",
        "server_label": "docs",
        "server_url": "https://mcp.example/sse",
        "headers": {"Authorization": secret},
        "authorization": secret,
    }
    async with running_bridge(settings(upstream, db)) as server, sdk(server) as client:
        started = await client.responses.create(
            model="m",
            input="x",
            background=True,
            tools=[mcp],  # type: ignore[list-item]
        )
        final = await until_done(client, started.id)
        replay = [dumped(e) async for e in await client.responses.retrieve(started.id, stream=True)]
    assert final.status == "completed" and replay
    with sqlite3.connect(db) as conn:
        rows = conn.execute("SELECT response FROM runs").fetchall()
        rows += conn.execute("SELECT data FROM run_events").fetchall()
    assert rows and not any("sk-do-not-store-me" in text for (text,) in rows)
    assert "sk-do-not-store-me" not in json.dumps(replay)


async def test_an_upstream_refusal_ends_the_run_failed_with_its_error(
    upstream: ScriptedUpstream, db: str
) -> None:
    upstream.push(
        Reply(b'{"error":{"message":"model not loaded"}}', 400, content_type="application/json")
    )
    async with running_bridge(settings(upstream, db)) as server, sdk(server) as client:
        started = await client.responses.create(model="m", input="x", background=True)
        final = await until_done(client, started.id)
        events = [dumped(e) async for e in await client.responses.retrieve(started.id, stream=True)]
    assert final.status == "failed"
    assert final.error is not None and "model not loaded" in final.error.message
    validate_events(events)
    assert [e["type"] for e in events][-1] == "response.failed"
