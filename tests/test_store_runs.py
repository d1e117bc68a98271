"""The run log (store/runs.py) on SQLite and PostgreSQL, and the pure frame helpers beside it.

What the HTTP tests cannot pin down exactly: of several bridges sweeping one abandoned run,
exactly one marks it; frames land whole and in order; a finished run takes no more frames;
another tenant's run is invisible; retention drops event logs but keeps the run.
"""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from wirebridge.responses.runframes import ABANDONED_MESSAGE, abandoned, split_frames
from wirebridge.store import Store, open_store
from wirebridge.store.runs import RunLog, run_log

from .conftest import create_scratch_database, drop_scratch_database

pytestmark = pytest.mark.anyio

RESPONSE = json.dumps(
    {
        "id": "resp_1",
        "status": "in_progress",
        "output": [{"type": "message", "status": "in_progress", "content": []}],
    }
)


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)])
async def store(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[Store]:
    if request.param == "sqlite":
        async with await open_store(f"sqlite://{tmp_path / 'r.db'}") as opened:
            yield opened
        return
    server: str = request.getfixturevalue("postgres_server_url")
    url = await create_scratch_database(server)
    try:
        async with await open_store(url) as opened:
            yield opened
    finally:
        await drop_scratch_database(server, url)


def frame(seq: int) -> tuple[int, str]:
    return seq, f'event: x\ndata: {{"type":"x","sequence_number":{seq}}}\n\n'


async def create(log: RunLog, run_id: str = "resp_1", *, lease_until: float = 0.0) -> None:
    await log.create(
        run_id,
        tenant="key:a",
        response=RESPONSE,
        owner="bridge-a",
        lease_until=lease_until,
        created_at=int(time.time()),
        expires_at=None,
    )


async def test_frames_are_kept_in_order_and_a_finished_run_takes_no_more(store: Store) -> None:
    log = run_log(store)
    await create(log, lease_until=time.time() + 60)
    await log.append("resp_1", [frame(0), frame(1)], RESPONSE)
    await log.append("resp_1", [frame(2)], None)
    assert await log.finish(
        "resp_1", [frame(3)], last_seq=3, status="completed", response="{}", now=time.time()
    )
    assert not await log.finish(
        "resp_1", [frame(4)], last_seq=4, status="failed", response="{}", now=time.time()
    )
    assert [seq for seq, _ in await log.events_after("resp_1", -1)] == [0, 1, 2, 3]
    assert [seq for seq, _ in await log.events_after("resp_1", 1)] == [2, 3]
    row = await log.get("resp_1", tenant="key:a", now=time.time())
    assert row is not None and row.status == "completed" and row.last_seq == 3
    assert await log.get("resp_1", tenant="key:b", now=time.time()) is None


async def test_exactly_one_of_several_sweepers_marks_an_abandoned_run(store: Store) -> None:
    logs = [run_log(store) for _ in range(4)]
    await create(logs[0], lease_until=time.time() - 5)  # its bridge stopped renewing
    await logs[0].append("resp_1", [frame(0)], None)
    [(run_id, response, last_seq)] = await logs[0].abandoned(time.time())
    text, final = abandoned(response, last_seq + 1)
    marked = await asyncio.gather(
        *(log.finish_abandoned(run_id, final, response=text, now=time.time()) for log in logs)
    )
    assert sorted(marked) == [False, False, False, True]
    assert [seq for seq, _ in await logs[0].events_after("resp_1", -1)] == [0, 1]
    row = await logs[0].get("resp_1", tenant=None, now=time.time())
    assert row is None  # another tenant's (here: no tenant's caller) run is invisible
    row = await logs[0].get("resp_1", tenant="key:a", now=time.time())
    assert row is not None and row.status == "failed"
    assert json.loads(row.response)["error"]["message"] == ABANDONED_MESSAGE
    assert await logs[0].abandoned(time.time()) == []


async def test_retention_drops_the_event_log_and_keeps_the_run(store: Store) -> None:
    log = run_log(store)
    await create(log, lease_until=time.time() + 60)
    await log.finish(
        "resp_1", [frame(0)], last_seq=0, status="completed", response="{}", now=time.time()
    )
    await log.expire(time.time(), retention_s=3600)
    assert await log.count() == (1, 1)
    await log.expire(time.time() + 3601, retention_s=3600)
    assert await log.count() == (1, 0)


async def test_cancel_flag_reaches_only_the_owner_of_an_active_run(store: Store) -> None:
    log = run_log(store)
    await create(log, lease_until=time.time() + 60)
    assert not await log.request_cancel("resp_1", tenant="key:b")
    assert await log.request_cancel("resp_1", tenant="key:a")
    assert await log.cancel_requests("bridge-a") == ["resp_1"]
    assert await log.cancel_requests("bridge-b") == []


async def test_a_batch_is_one_row_and_reads_back_cut_at_any_number(store: Store) -> None:
    """Frames written together are one row, keyed by the last number; `starting_after` inside
    a batch still gives exactly the later frames, and a batch written twice (a retried write
    whose first try had landed) is read once."""
    log = run_log(store)
    await create(log, lease_until=time.time() + 60)
    await log.append("resp_1", [frame(0), frame(1), frame(2)], RESPONSE)
    await log.append("resp_1", [frame(3), frame(4)], None)
    await log.append("resp_1", [frame(3), frame(4), frame(5)], None)  # 3 and 4 again
    assert await log.count() == (1, 3)
    everything = await log.events_after("resp_1", -1)
    assert everything == [frame(i) for i in range(6)]
    for after in range(-1, 6):
        assert await log.events_after("resp_1", after) == everything[after + 1 :]


async def test_a_discarded_run_leaves_nothing(store: Store) -> None:
    log = run_log(store)
    await create(log, lease_until=time.time() + 60)
    await log.append("resp_1", [frame(0)], RESPONSE)
    await log.discard("resp_1")
    assert await log.count() == (0, 0)
    assert await log.get("resp_1", tenant="key:a", now=time.time()) is None


async def test_listen_hears_writes_and_cancel_requests_of_other_connections(
    store: Store,
) -> None:
    """PostgreSQL: what another bridge's log does reaches a listener, once committed."""
    log, other = run_log(store), run_log(store)
    if not log.notifies:
        pytest.skip("SQLite has no notices (its bridges poll)")
    heard: list[tuple[str, str]] = []
    got = asyncio.Event()

    def on_notice(kind: str, run_id: str) -> None:
        heard.append((kind, run_id))
        got.set()

    async with log.listen(on_notice, lambda: None) as listening:
        assert listening
        await create(other, lease_until=time.time() + 60)
        for step in (
            other.append("resp_1", [frame(0)], None),
            other.request_cancel("resp_1", tenant="key:a"),
            other.ping("resp_1"),
            other.finish(
                "resp_1", [frame(1)], last_seq=1, status="completed", response="{}", now=time.time()
            ),
        ):
            got.clear()
            await step
            await asyncio.wait_for(got.wait(), 10)
    assert heard == [("e", "resp_1"), ("c", "resp_1"), ("f", "resp_1"), ("e", "resp_1")]


def test_split_frames_reads_sequence_numbers_and_skips_keepalives() -> None:
    data = frame(7)[1].encode() + b": keep-alive\n\n" + frame(8)[1].encode()
    assert split_frames(data) == [frame(7), frame(8)]
    with pytest.raises(ValueError, match="sequence number"):
        split_frames(b"event: x\ndata: {}\n\n")


def test_an_abandoned_response_is_failed_with_its_items_incomplete() -> None:
    text, (seq, last) = abandoned(RESPONSE, 5)
    response = json.loads(text)
    assert response["status"] == "failed"
    assert response["output"][0]["status"] == "incomplete"
    event = json.loads(last.split("data: ", 1)[1])
    assert seq == 5 and event["sequence_number"] == 5
    assert event["type"] == "response.failed" and event["response"] == response
