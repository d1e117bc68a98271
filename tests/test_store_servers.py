"""The response store seen through real `wirebridge serve` processes and the `openai` SDK.

The store's end-to-end promises: several bridges on one PostgreSQL database act as one (a response
made through one is continued and read through another, and the upstream gets the whole
history); two continuations of one response at once both survive; and `kill -9` of a bridge in
the middle of a stream leaves its SQLite file whole, every finished response readable by a fresh
bridge and no half-written one.
"""

from __future__ import annotations

import asyncio
import itertools
import json
import signal
import sqlite3
from collections.abc import AsyncIterator
from contextlib import AsyncExitStack, asynccontextmanager
from pathlib import Path
from typing import Any, Literal

import anyio
import asyncpg
import httpx
import openai
import pytest
from openai import AsyncOpenAI
from openai.types.responses import Response

from wirebridge.responses.runframes import ABANDONED_MESSAGE
from wirebridge.testing import Reply, ScriptedUpstream, SeenRequest, chat_chunk, sse_body, text_body

from .conftest import create_scratch_database, drop_scratch_database
from .test_server_cli import Serve, serve

pytestmark = pytest.mark.anyio


def echo(request: SeenRequest) -> Reply:
    """Answer every request with its last message: order-free replies for concurrent requests."""
    return Reply(text_body([f"echo: {request.json['messages'][-1]['content']}"]))


def sdk(server: Serve) -> AsyncOpenAI:
    return AsyncOpenAI(base_url=f"{server.url}/v1", api_key="unused", max_retries=0, timeout=10)


def user(text: str) -> dict[str, str]:
    return {"role": "user", "content": text}


def assistant(text: str) -> dict[str, str]:
    return {"role": "assistant", "content": text}


@pytest.fixture
async def postgres_url(postgres_server_url: str) -> AsyncIterator[str]:
    """A fresh PostgreSQL database for one test, dropped after it."""
    url = await create_scratch_database(postgres_server_url)
    try:
        yield url
    finally:
        await drop_scratch_database(postgres_server_url, url)


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)])
def shared_store_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """One store for two bridge processes: a SQLite file both open, or a PostgreSQL database."""
    if request.param == "sqlite":
        return f"sqlite://{tmp_path / 'responses.db'}"
    url: str = request.getfixturevalue("postgres_url")
    return url


@asynccontextmanager
async def bridges(count: int, upstream: str, store: str) -> AsyncIterator[list[AsyncOpenAI]]:
    """`count` `wirebridge serve` processes (each with its own WIREBRIDGE_HOME) on one store,
    each with an SDK client."""
    async with AsyncExitStack() as stack:
        clients = []
        for _ in range(count):
            server = await stack.enter_async_context(
                serve("--upstream", upstream, "--store", store)
            )
            clients.append(await stack.enter_async_context(sdk(server)))
        yield clients


async def count_rows(postgres: str) -> int:
    conn = await asyncpg.connect(postgres)
    try:
        count: int = await conn.fetchval("SELECT COUNT(*) FROM responses")
    finally:
        await conn.close()
    return count


# ---------------------------------------------------------------------------------------------
# Several bridges, one store


@pytest.mark.postgres
async def test_two_bridges_on_one_postgres_continue_each_others_responses(
    postgres_url: str,
) -> None:
    """Made through one, continued and read through the other; a deletion through one is seen
    by the other (its id is then a 400 naming `previous_response_id`, as an unknown id is)."""
    async with (
        ScriptedUpstream(default=echo) as upstream,
        bridges(2, upstream.base_url, postgres_url) as (first, second),
    ):
        made = await first.responses.create(model="m", input="My name is Ada.")
        continued = await second.responses.create(
            model="m", input="What is my name?", previous_response_id=made.id
        )
        fetched = await second.responses.retrieve(made.id)
        with pytest.raises(openai.BadRequestError) as unknown:
            await second.responses.create(
                model="m", input="x", previous_response_id="resp_unknown_to_both"
            )
        await first.responses.delete(continued.id)
        with pytest.raises(openai.NotFoundError):
            await second.responses.retrieve(continued.id)
        with pytest.raises(openai.BadRequestError) as deleted:
            await second.responses.create(model="m", input="y", previous_response_id=continued.id)
    # The second process holds nothing in memory of the first: the history came from PostgreSQL.
    assert upstream.requests[1].json["messages"] == [
        user("My name is Ada."),
        assistant("echo: My name is Ada."),
        user("What is my name?"),
    ]
    assert continued.previous_response_id == made.id
    assert continued.output_text == "echo: What is my name?"
    assert fetched.id == made.id and fetched.output_text == made.output_text
    assert unknown.value.status_code == deleted.value.status_code == 400
    assert unknown.value.param == deleted.value.param == "previous_response_id"
    assert unknown.value.code == "previous_response_not_found"
    assert "resp_unknown_to_both" in unknown.value.message
    assert continued.id in deleted.value.message
    assert len(upstream.requests) == 2  # the refused requests never went upstream
    assert await count_rows(postgres_url) == 1  # the deleted one is gone from the database


async def test_concurrent_branches_of_one_response_through_two_bridges_are_all_kept(
    shared_store_url: str,
) -> None:
    """Eight clients continue one response at once, half through each bridge; every branch is
    stored, readable through the other bridge, and continues with its own history."""
    branches = 8
    async with (
        ScriptedUpstream(default=echo) as upstream,
        bridges(2, upstream.base_url, shared_store_url) as clients,
    ):
        root = await clients[0].responses.create(model="m", input="root")
        made = await asyncio.gather(
            *(
                clients[n % 2].responses.create(
                    model="m", input=f"branch {n}", previous_response_id=root.id
                )
                for n in range(branches)
            )
        )
        fetched = await asyncio.gather(
            *(clients[(n + 1) % 2].responses.retrieve(r.id) for n, r in enumerate(made))
        )
        await asyncio.gather(
            *(
                clients[(n + 1) % 2].responses.create(
                    model="m", input=f"after {n}", previous_response_id=r.id
                )
                for n, r in enumerate(made)
            )
        )
    assert len({r.id for r in made}) == branches
    assert [f.output_text for f in fetched] == [f"echo: branch {n}" for n in range(branches)]
    sent = {r.json["messages"][-1]["content"]: r.json["messages"] for r in upstream.requests}
    for n in range(branches):
        assert sent[f"after {n}"] == [
            user("root"),
            assistant("echo: root"),
            user(f"branch {n}"),
            assistant(f"echo: branch {n}"),
            user(f"after {n}"),
        ]


# ---------------------------------------------------------------------------------------------
# What is stored, and for how long


def cut_reply(before: str, after: str, fault: Literal["stall", "disconnect"]) -> Reply:
    """A streamed answer that sends `before`, then stalls (goes silent, the connection held) or
    is cut (the connection dropped) instead of sending `after` and its end."""
    head = sse_body(
        [chat_chunk({"role": "assistant", "content": ""}), chat_chunk({"content": before})],
        done=False,
    )
    tail = sse_body([chat_chunk({"content": after}), chat_chunk({}, finish_reason="stop")])
    if fault == "stall":
        return Reply(head + tail, stall_after=len(head))
    return Reply(head + tail, disconnect_after=len(head))


async def test_failed_and_incomplete_responses_are_stored_with_their_status(
    tmp_path: Path,
) -> None:
    async with ScriptedUpstream() as upstream:
        upstream.push(
            Reply(text_body(["cut short"], finish_reason="length")),
            cut_reply("half", "never sent", "disconnect"),
            Reply(text_body(["going on"])),
        )
        async with (
            serve(
                "--upstream", upstream.base_url, "--store", f"sqlite://{tmp_path / 'r.db'}"
            ) as server,
            sdk(server) as client,
        ):
            incomplete = await client.responses.create(model="m", input="long one")
            stream = await client.responses.create(model="m", input="doomed", stream=True)
            failed = [e.response async for e in stream if e.type == "response.failed"]
            stored = [await client.responses.retrieve(r.id) for r in (incomplete, *failed)]
            await client.responses.create(
                model="m", input="go on", previous_response_id=incomplete.id
            )
    assert [r.status for r in stored] == ["incomplete", "failed"]
    assert stored[0].incomplete_details is not None
    assert stored[0].incomplete_details.reason == "max_output_tokens"
    assert stored[1].error is not None and stored[1].id == failed[0].id
    assert upstream.requests[-1].json["messages"] == [
        user("long one"),
        assistant("cut short"),
        user("go on"),
    ]


async def test_store_ttl_sets_each_rows_expiry_and_zero_keeps_forever(
    tmp_path: Path,
) -> None:
    expiry: dict[str, list[tuple[int, int | None]]] = {}
    async with ScriptedUpstream(default=echo) as upstream:
        for days in ("0.5", "0"):
            db = tmp_path / f"ttl-{days}.db"
            async with (
                serve(
                    "--upstream", upstream.base_url, "--store", str(db), "--store-ttl", days
                ) as server,
                sdk(server) as client,
            ):
                made = await client.responses.create(model="m", input="hi")
            conn = sqlite3.connect(db)
            try:
                expiry[days] = conn.execute(
                    "SELECT created_at, expires_at FROM responses WHERE id = ?", (made.id,)
                ).fetchall()
            finally:
                conn.close()
    [(created, expires)] = expiry["0.5"]
    assert expires is not None and expires - created == 43_200  # half a day, in seconds
    assert [row[1] for row in expiry["0"]] == [None]


# ---------------------------------------------------------------------------------------------
# Crash safety


def stored_rows(path: Path) -> list[tuple[Any, ...]]:
    """The SQLite file checked as a whole, then its rows, read past the store's own code."""
    conn = sqlite3.connect(path)
    try:
        assert conn.execute("PRAGMA integrity_check").fetchall() == [("ok",)]
        return conn.execute(
            "SELECT id, status, previous_response_id, input_items, output_items, usage, response"
            " FROM responses"
        ).fetchall()
    finally:
        conn.close()


def check_row_is_whole(row: tuple[Any, ...]) -> tuple[str, str]:
    """Every JSON column parses and agrees with the others; (the row's id, its input text)."""
    rid, status, previous, input_text, output_text, usage_text, response_text = row
    inputs, outputs, response = (json.loads(t) for t in (input_text, output_text, response_text))
    usage = None if usage_text is None else json.loads(usage_text)
    assert status == "completed" and response["status"] == status, rid
    assert response["id"] == rid and response["previous_response_id"] == previous
    assert response["output"] == outputs and outputs, f"{rid}: output items differ"
    assert response["usage"] == usage and usage["total_tokens"] == 5, f"{rid}: usage"
    [message] = inputs
    return str(rid), message["content"][0]["text"]


USAGE = {"prompt_tokens": 3, "completion_tokens": 2, "total_tokens": 5}


def echo_or_stall(request: SeenRequest) -> Reply:
    """Echo every request (with usage), except that a request saying "stall" stalls mid-answer."""
    said = request.json["messages"][-1]["content"]
    if said == "stall":
        return cut_reply("half an ans", "wer", "stall")
    return Reply(text_body([f"echo: {said}"], usage=USAGE))


async def settled(client: openai.AsyncOpenAI, response_id: str) -> Response | None:
    """The response once no longer queued or in progress (a sweep marks a dead bridge's runs),
    or None if the store never had it."""
    with anyio.fail_after(30):
        while True:
            try:
                response = await client.responses.retrieve(response_id)
            except openai.NotFoundError:
                return None
            if response.status not in ("queued", "in_progress"):
                return response
            await anyio.sleep(0.1)  # polling a status another process changes


async def test_kill_9_mid_stream_leaves_the_sqlite_store_whole_and_readable(
    tmp_path: Path,
) -> None:
    """SIGKILL while one response streams and two clients keep storing others (so the kill may
    land inside a write): the file passes `PRAGMA integrity_check`; every response a client saw
    finish is there, whole; the only others are whole ones that were in flight; the streaming
    one is not among them; and a fresh bridge on the file serves and continues them. The
    streaming one was a resumable run: the fresh bridge answers it 404 if the kill came before
    its run row was written, and otherwise `failed` once its lease lapses, never in progress
    for ever."""
    db = tmp_path / "responses.db"
    store = f"sqlite://{db}"  # an absolute path: sqlite:///tmp/...
    finished: dict[str, str] = {}  # id -> input, for each response a client saw finish
    attempted: set[str] = set()
    events: list[str] = []
    killed_id = ""
    lease = ("--background-lease", "1")  # a killed bridge's run is failed within seconds
    async with (
        ScriptedUpstream(default=echo_or_stall) as upstream,
        serve(*lease, "--upstream", upstream.base_url, "--store", store) as server,
        sdk(server) as client,
    ):
        previous = None
        for n in range(3):  # a chain, made both ways
            text = f"chain {n}"
            if n % 2:
                stream = await client.responses.create(
                    model="m", input=text, previous_response_id=previous, stream=True
                )
                done = [e.response async for e in stream if e.type == "response.completed"]
                previous = done[0].id
            else:
                made = await client.responses.create(
                    model="m", input=text, previous_response_id=previous
                )
                previous = made.id
            finished[previous] = text
        warmed = anyio.Event()

        async def writer(k: int) -> None:
            """Store responses one after another until the server is gone."""
            for i in itertools.count():
                text = f"writer {k} #{i}"
                attempted.add(text)
                try:
                    made = await client.responses.create(model="m", input=text)
                except openai.APIConnectionError:
                    return
                finished[made.id] = text
                if len(finished) >= 13:
                    warmed.set()

        async with anyio.create_task_group() as tg:
            for k in range(2):
                tg.start_soon(writer, k)
            with anyio.fail_after(10):
                await warmed.wait()  # the writers are going
            killed = await client.responses.create(
                model="m", input="stall", previous_response_id=previous, stream=True
            )
            with (
                pytest.raises((httpx.HTTPError, openai.APIConnectionError)),
                anyio.fail_after(10),
            ):
                async with killed:
                    async for event in killed:
                        events.append(event.type)
                        if event.type == "response.created":
                            killed_id = event.response.id
                        elif event.type == "response.output_text.delta":
                            # A delta reached the client: the server is mid-stream.
                            server.process.send_signal(signal.SIGKILL)
                            await server.process.wait()
    assert server.process.returncode == -signal.SIGKILL
    assert "response.output_text.delta" in events
    assert not {"response.completed", "response.failed", "response.incomplete"} & set(events)

    stored = dict(check_row_is_whole(row) for row in stored_rows(db))
    assert finished.items() <= stored.items()  # nothing a client saw finish was lost
    in_flight = attempted - set(finished.values())
    extra = {rid: text for rid, text in stored.items() if rid not in finished}
    assert set(extra.values()) <= in_flight and len(in_flight) <= 2, (extra, in_flight)
    # The streaming response never finished upstream: it was never stored as a response.
    assert killed_id.startswith("resp_") and killed_id not in stored

    async with (
        ScriptedUpstream(default=echo_or_stall) as upstream,
        serve(*lease, "--upstream", upstream.base_url, "--store", store) as server,
        sdk(server) as client,
    ):
        fetched = [await client.responses.retrieve(rid) for rid in stored]
        abandoned = await settled(client, killed_id)
        await client.responses.create(model="m", input="after", previous_response_id=previous)
    if abandoned is not None:  # its run row was written before the kill
        assert abandoned.status == "failed", abandoned.status
        assert abandoned.error is not None and abandoned.error.message == ABANDONED_MESSAGE
        assert abandoned.output_text in ("", "half an ans")
    assert [f.output_text for f in fetched] == [f"echo: {text}" for text in stored.values()]
    assert upstream.requests[0].json["messages"] == [
        message for n in range(3) for message in (user(f"chain {n}"), assistant(f"echo: chain {n}"))
    ] + [user("after")]
