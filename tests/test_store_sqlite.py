"""What only the embedded SQLite backend promises: its default place and file mode, WAL, and
crash safety: a writer killed with SIGKILL mid-save leaves a file that passes
`PRAGMA integrity_check`, holds every response it reported committed, and no partial one."""

from __future__ import annotations

import json
import os
import signal
import sqlite3
import stat
import sys
from pathlib import Path

import anyio
import pytest
from anyio.streams.text import TextReceiveStream

from wirebridge.store import StoreError, open_store

pytestmark = pytest.mark.anyio


async def test_default_store_is_an_owner_only_wal_file_under_wirebridge_home(
    tmp_path: Path,
) -> None:
    home = tmp_path / "home"
    store = await open_store(None, env={"WIREBRIDGE_HOME": str(home)})
    await store.close()
    db = home / "responses.db"
    assert db.is_file()
    assert stat.S_IMODE(db.stat().st_mode) == 0o600
    assert stat.S_IMODE(home.stat().st_mode) == 0o700
    conn = sqlite3.connect(db)
    try:
        assert conn.execute("PRAGMA journal_mode").fetchone() == ("wal",)
    finally:
        conn.close()


async def test_file_that_is_not_a_database_is_a_store_error_naming_it(tmp_path: Path) -> None:
    bogus = tmp_path / "notes.db"
    bogus.write_bytes(b"these are not the pages you are looking for" * 100)
    with pytest.raises(StoreError, match=str(bogus)):
        await open_store(f"sqlite://{bogus}")


async def test_in_memory_store_works_for_one_process() -> None:
    async with await open_store("sqlite://:memory:") as store:
        assert await store.expire() == 0


# ---------------------------------------------------------------------------------------------
# kill -9

WRITER = r"""
import sys
import anyio
from wirebridge.store import StoredResponse, open_store

def make(i: int) -> StoredResponse:
    n = 1 + i % 7  # 1..7 items each way, up to ~7 KB each: rows span many pages
    rid = f"resp_{i:06d}"
    inputs = tuple(
        {"id": f"in_{i}_{k}", "type": "message", "role": "user",
         "content": [{"type": "input_text", "text": f"{i}:{k}:" + "q" * (1000 * k)}]}
        for k in range(n))
    outputs = tuple(
        {"id": f"out_{i}_{k}", "type": "message", "role": "assistant",
         "content": [{"type": "output_text", "text": f"{i}:{k}:" + "a" * (1000 * k)}]}
        for k in range(n))
    return StoredResponse(
        id=rid, created_at=2_000_000_000, model="m", status="completed",
        previous_response_id=None if i == 0 else f"resp_{i - 1:06d}",
        input_items=inputs, output_items=outputs, usage={"total_tokens": i},
        response={"id": rid, "object": "response", "n": n}, expires_at=None)

async def main(path: str, start: int) -> None:
    store = await open_store("sqlite://" + path)
    i = start
    while True:
        await store.save(make(i))
        print(i, flush=True)  # reported only after the commit returned
        i += 1

anyio.run(main, sys.argv[1], int(sys.argv[2]))
"""


def check_row_is_whole(row: tuple[str, str, str, str, str]) -> int:
    rid, inputs_text, outputs_text, usage_text, response_text = row
    i = int(rid.removeprefix("resp_"))
    n = 1 + i % 7
    inputs, outputs = json.loads(inputs_text), json.loads(outputs_text)
    assert [item["id"] for item in inputs] == [f"in_{i}_{k}" for k in range(n)], rid
    assert [item["id"] for item in outputs] == [f"out_{i}_{k}" for k in range(n)], rid
    for k in range(n):
        assert inputs[k]["content"][0]["text"] == f"{i}:{k}:" + "q" * (1000 * k), rid
        assert outputs[k]["content"][0]["text"] == f"{i}:{k}:" + "a" * (1000 * k), rid
    assert json.loads(usage_text) == {"total_tokens": i}
    assert json.loads(response_text) == {"id": rid, "object": "response", "n": n}
    return i


async def write_until_killed(path: Path, start: int, commits: int) -> int:
    """Run the writer, SIGKILL it once `commits` saves were reported; the last reported id."""
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    process = await anyio.open_process(
        [sys.executable, "-c", WRITER, str(path), str(start)], env=env
    )
    last = start - 1
    try:
        assert process.stdout is not None
        buffer = ""
        with anyio.fail_after(60):
            async for chunk in TextReceiveStream(process.stdout):
                buffer += chunk
                *lines, buffer = buffer.split("\n")
                if lines:
                    last = int(lines[-1])
                if last >= start + commits - 1:
                    break
        process.send_signal(signal.SIGKILL)  # mid-write: the writer never pauses
    finally:
        if process.returncode is None:
            process.kill()
        await process.wait()
        await process.aclose()
    assert process.returncode == -signal.SIGKILL
    return last


async def test_kill_9_mid_write_leaves_a_consistent_file_with_every_commit(
    tmp_path: Path,
) -> None:
    path = tmp_path / "responses.db"
    start = 0
    for _ in range(3):  # each round also recovers the previous round's WAL
        reported = await write_until_killed(path, start, commits=15)
        conn = sqlite3.connect(path)
        try:
            assert conn.execute("PRAGMA integrity_check").fetchall() == [("ok",)]
            rows = conn.execute(
                "SELECT id, input_items, output_items, usage, response FROM responses ORDER BY id"
            ).fetchall()
        finally:
            conn.close()
        ids = [check_row_is_whole(row) for row in rows]
        # every reported commit survived; at most the one in flight was also committed
        assert ids == list(range(len(ids)))
        assert reported <= ids[-1] <= reported + 1
        start = ids[-1] + 1
    async with await open_store(f"sqlite://{path}") as store:
        history = await store.load_chain(f"resp_{start - 1:06d}")
    assert len(history) == sum(2 * (1 + i % 7) for i in range(start))
