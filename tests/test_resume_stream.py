"""Resuming a *foreground* streamed response, through the `openai` SDK on one bridge (SQLite).

A stored stream (`store` on, the default) is owned by the server: its client may drop the
connection mid-answer and `responses.retrieve(id, stream=True, starting_after=N)` picks it up;
the upstream is asked once. A stream nobody follows is cancelled after the detach grace; a
`store: false` stream is cancelled at the disconnect, as before.

The upstream holds its answer part way (`Reply.hold`) until the test releases it, so "still
running" is a fact of the script, never a matter of timing.
"""

from __future__ import annotations

import asyncio
from typing import Any

import anyio
import openai
import pytest

from wirebridge.responses.testing import check_stream_invariants, running_bridge, validate_events
from wirebridge.testing import ScriptedUpstream

from .test_background import (
    FULL_TEXT,
    HELD_AFTER,
    PIECES,
    db,
    deltas,
    dumped,
    first_events,
    hold,
    sdk,
    settings,
    until_done,
    upstream,
)

pytestmark = pytest.mark.anyio
__all__ = ["db", "hold", "upstream"]  # fixtures used by name


async def _drop_mid_answer(client: openai.AsyncOpenAI, **options: Any) -> list[dict[str, Any]]:
    """Stream, read three deltas, then close the connection as a client that lost it would."""
    stream = await client.responses.create(model="m", input="count", stream=True, **options)
    before = await first_events(stream, 3)
    await stream.close()
    return before


async def test_a_dropped_foreground_stream_resumes_with_every_later_event_once(
    upstream: ScriptedUpstream, db: str, hold: asyncio.Event
) -> None:
    async with running_bridge(settings(upstream, db)) as server, sdk(server) as client:
        before = await _drop_mid_answer(client)
        response_id = before[0]["response"]["id"]
        last = before[-1]["sequence_number"]
        while_running = await client.responses.retrieve(response_id)
        resumed = await client.responses.retrieve(response_id, stream=True, starting_after=last)
        hold.set()  # the rest arrives while the resumed stream follows the live run
        after = [dumped(e) async for e in resumed]
        stored = await client.responses.retrieve(response_id)
        replay = [
            dumped(e) async for e in await client.responses.retrieve(response_id, stream=True)
        ]
    assert while_running.status == "in_progress" and while_running.background is False
    validate_events(before + after)  # the SDK's own types, event by event
    assert [e["sequence_number"] for e in after] == list(range(last + 1, last + 1 + len(after)))
    assert check_stream_invariants(before + after)["status"] == "completed"
    assert deltas(before) + deltas(after) == FULL_TEXT
    assert len(upstream.requests) == 1  # the upstream was asked once
    assert stored.status == "completed" and stored.output_text == FULL_TEXT
    assert replay == before + after  # the log holds what the live client saw, in order


async def test_a_foreground_stream_nobody_follows_is_cancelled_after_the_grace(
    upstream: ScriptedUpstream, db: str, hold: asyncio.Event
) -> None:
    # hold is never set: the upstream holds its answer forever
    bridge = settings(upstream, db, detach_grace_s=0.2)
    async with running_bridge(bridge) as server, sdk(server) as client:
        before = await _drop_mid_answer(client)
        with anyio.fail_after(10):
            await upstream.closed.wait()  # the bridge closed the upstream request
        final = await until_done(client, before[0]["response"]["id"])
    assert final.status == "cancelled"
    assert final.output_text == "".join(PIECES[: HELD_AFTER - 1])  # the output so far is kept


async def test_a_store_false_stream_still_ends_with_its_client(
    upstream: ScriptedUpstream, db: str, hold: asyncio.Event
) -> None:
    # hold is never set: the upstream holds its answer forever
    async with running_bridge(settings(upstream, db)) as server, sdk(server) as client:
        before = await _drop_mid_answer(client, store=False)
        with anyio.fail_after(10):
            await upstream.closed.wait()  # cancelled at the disconnect, as before
        response_id = before[0]["response"]["id"]
        with pytest.raises(openai.NotFoundError):
            await client.responses.retrieve(response_id, stream=True, starting_after=0)


async def test_a_foreground_stream_cannot_be_cancelled_as_the_api_answers(
    upstream: ScriptedUpstream, db: str, hold: asyncio.Event
) -> None:
    async with running_bridge(settings(upstream, db)) as server, sdk(server) as client:
        stream = await client.responses.create(model="m", input="count", stream=True)
        before = await first_events(stream, 1)
        with pytest.raises(openai.BadRequestError, match="background=true"):
            await client.responses.cancel(before[0]["response"]["id"])
        hold.set()
        rest = [dumped(e) async for e in stream]
    assert deltas(before) + deltas(rest) == FULL_TEXT  # the stream went on
