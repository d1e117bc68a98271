"""Background runs: what persisting every event costs, against foreground streaming, in one run.

    .venv/bin/python bench/background_bench.py [--quick] [--out bench/background_results.json]
        [--postgres URL]   # also the cross-bridge phase (default: $WIREBRIDGE_TEST_POSTGRES_URL)

One process holds the timestamping upstream, the bridges (SQLite store in a temporary folder)
and the client, so all clocks are one clock; the modes' requests are interleaved, so load on
the machine hits them alike. Three modes:

- `plain`: `stream: true` on a bridge with `resumable_streams=False` (foreground streaming as
  it was before streams were resumable: nothing logged);
- `resumable`: `stream: true` (store on), the default: frames to the client first, to the
  event log behind it;
- `background`: `background: true, stream: true`, whose events reach the client only through
  the store (written, then read back).

Phases:
- latency: a paced stream (one text delta every 2 ms); each delta carries the upstream's send
  time, and the client takes the difference when it reads the delta: p50/p99 per mode.
- throughput: an unpaced stream of many deltas: events/s per mode, and in the logged modes the
  store transactions/s, frames/s and rows/s (the run log's calls are counted).
- growth: the store's size per 1,000 finished runs of 50 deltas, per mode (SQLite `dbstat`
  bytes per table), and what is left once the event logs' retention passed.
- cross-bridge (PostgreSQL): two bridges on one database; a background run on A followed live
  through B (per-delta latency on B), and a cancel made on B (until B answers, which is once A
  ended the run), with NOTIFY (the default) and with the 0.5 s poll alone.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import statistics
import sys
import tempfile
import time
from dataclasses import replace
from pathlib import Path
from typing import Any

import httpx

from wirebridge.responses import BridgeSettings
from wirebridge.responses.background import BackgroundSettings
from wirebridge.responses.testing import passthrough_config, running_bridge
from wirebridge.store import runs as runs_module

CALLS = {"append": 0, "finish": 0, "rows": 0, "frames": 0}
MODES = ("plain", "resumable", "background")


def _count_calls() -> None:
    """Count the run log's transactions and rows (the bench's only instrument in the bridge)."""
    log = runs_module.RunLog
    append, finish = log.append, log.finish

    async def counted_append(self: Any, run_id: str, frames: Any, snapshot: Any) -> None:
        CALLS["append"] += 1
        CALLS["rows"] += bool(frames)  # one row per batch
        CALLS["frames"] += len(frames)
        await append(self, run_id, frames, snapshot)

    async def counted_finish(self: Any, run_id: str, frames: Any, **kw: Any) -> bool:
        CALLS["finish"] += 1
        CALLS["rows"] += bool(frames)
        CALLS["frames"] += len(frames)
        return await finish(self, run_id, frames, **kw)

    log.append = counted_append  # type: ignore[method-assign]
    log.finish = counted_finish  # type: ignore[method-assign]


def _chunk(content: str) -> bytes:
    choice = {"index": 0, "delta": {"content": content}, "finish_reason": None}
    body = {"id": "c", "object": "chat.completion.chunk", "model": "b", "choices": [choice]}
    return b"data: " + json.dumps(body).encode() + b"\n\n"


_END = (
    b'data: {"id":"c","object":"chat.completion.chunk","model":"b","choices":[{"index":0,'
    b'"delta":{},"finish_reason":"stop"}]}\n\ndata: [DONE]\n\n'
)


async def _upstream(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    """`model` = "paced-N" (a delta every 2 ms) or "burst-N"; each delta is its send time."""
    try:
        head = await reader.readuntil(b"\r\n\r\n")
        length = next(
            int(line.split(b":")[1])
            for line in head.split(b"\r\n")
            if line.lower().startswith(b"content-length")
        )
        spec = json.loads(await reader.readexactly(length))["model"]
        kind, count = spec.split("-")
        writer.write(
            b"HTTP/1.1 200 OK\r\ncontent-type: text/event-stream\r\nconnection: close\r\n\r\n"
        )
        for _ in range(int(count)):
            writer.write(_chunk(f"{time.perf_counter_ns()} "))
            if kind == "paced":
                await writer.drain()
                await asyncio.sleep(0.002)
            elif writer.transport.get_write_buffer_size() > 1 << 16:
                await writer.drain()
        writer.write(_END)
        await writer.drain()
    except ConnectionError:
        pass  # the bridge closed the request (a cancelled run)
    finally:
        writer.close()


Clients = dict[str, httpx.AsyncClient]  # mode -> a client of the bridge that serves it


async def _read(answer: httpx.Response, latencies: list[int], first: asyncio.Event) -> None:
    """Per-delta latencies (ns) of an SSE answer, until its terminal event."""
    assert answer.status_code == 200, answer.status_code
    async for line in answer.aiter_lines():
        if line.startswith("data: ") and '"response.output_text.delta"' in line:
            now = time.perf_counter_ns()
            delta = json.loads(line[6:])["delta"]
            latencies.append(now - int(delta.split()[0]))
            first.set()
        elif line.startswith("data: ") and (
            '"response.completed"' in line or '"response.cancelled"' in line
        ):
            break


async def _one(clients: Clients, model: str, mode: str) -> tuple[list[int], float]:
    """Per-delta latencies (ns) and the wall time of one streamed response."""
    body: dict[str, Any] = {"model": model, "input": "go", "stream": True}
    if mode == "background":
        body["background"] = True
    latencies: list[int] = []
    start = time.perf_counter()
    async with clients[mode].stream("POST", "/v1/responses", json=body) as answer:
        await _read(answer, latencies, asyncio.Event())
    return latencies, time.perf_counter() - start


def _pct(values: list[float], q: int) -> float:
    return statistics.quantiles(values, n=100)[q - 1] if len(values) > 1 else values[0]


async def _latency(clients: Clients, reps: int, n: int) -> dict[str, Any]:
    per: dict[str, list[float]] = {m: [] for m in MODES}
    for _ in range(reps):
        for mode in per:
            lat, _ = await _one(clients, f"paced-{n}", mode)
            assert len(lat) == n
            per[mode] += [x / 1e6 for x in lat]
    out: dict[str, Any] = {
        m: {"p50_ms": _pct(v, 50), "p99_ms": _pct(v, 99), "n": len(v)} for m, v in per.items()
    }
    for mode in ("resumable", "background"):
        for q in ("p50", "p99"):
            out[f"{mode}_added_{q}_ms"] = out[mode][f"{q}_ms"] - out["plain"][f"{q}_ms"]
    return out


async def _throughput(clients: Clients, reps: int, n: int) -> dict[str, Any]:
    best = {m: float("inf") for m in MODES}
    store: dict[str, dict[str, float]] = {}
    for _ in range(reps):
        for mode in best:
            before = dict(CALLS)
            lat, wall = await _one(clients, f"burst-{n}", mode)
            assert len(lat) == n
            if wall < best[mode]:
                best[mode] = wall
                tx = CALLS["append"] + CALLS["finish"] - before["append"] - before["finish"]
                store[mode] = {
                    "transactions_per_s": tx / wall,
                    # a chunk: one frame (background), one relay write (resumable)
                    "chunks_per_s": (CALLS["frames"] - before["frames"]) / wall,
                    "rows_per_s": (CALLS["rows"] - before["rows"]) / wall,
                }
    out: dict[str, Any] = {"deltas": n}
    for mode in MODES:
        out[f"{mode}_events_per_s"] = n / best[mode]
        out[f"{mode}_us_per_event"] = best[mode] / n * 1e6
        if mode != "plain":
            out[f"{mode}_store"] = store[mode]
    return out


def _table_bytes(db: Path) -> dict[str, int]:
    import sqlite3

    with sqlite3.connect(db) as conn:
        conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
        rows = conn.execute("SELECT name, SUM(pgsize) FROM dbstat GROUP BY name").fetchall()
    return {name: int(size) for name, size in rows}


async def _growth(clients: Clients, db: Path, runs: int) -> dict[str, Any]:
    """Bytes per table (KiB per 1,000 runs) added by plain foreground runs, by resumable ones,
    then by background runs, then what they leave once their event logs' retention passed."""
    from wirebridge.store import open_store

    sem = asyncio.Semaphore(10)

    async def one(mode: str) -> None:
        async with sem:
            await _one(clients, "burst-50", mode)

    def grew(a: dict[str, int], b: dict[str, int]) -> dict[str, float]:
        names = set(a) | set(b)
        diff = {k: (b.get(k, 0) - a.get(k, 0)) * 1000 / runs / 1024 for k in sorted(names)}
        return {k: round(v, 1) for k, v in diff.items() if v}

    start = _table_bytes(db)
    await asyncio.gather(*(one("plain") for _ in range(runs)))
    after_plain = _table_bytes(db)
    await asyncio.gather(*(one("resumable") for _ in range(runs)))
    after_fg = _table_bytes(db)
    await asyncio.gather(*(one("background") for _ in range(runs)))
    after_bg = _table_bytes(db)
    store = await open_store(f"sqlite://{db}")
    try:
        await runs_module.run_log(store).expire(time.time() + 1, 0)  # retention 0
        counts = await runs_module.run_log(store).count()
    finally:
        await store.close()
    expired = _table_bytes(db)
    return {
        "runs": runs,
        "plain_kib_per_1000": grew(start, after_plain),
        "resumable_kib_per_1000": grew(after_plain, after_fg),
        "background_kib_per_1000": grew(after_fg, after_bg),
        # resumable and background runs together (2 x `runs`), halved: per 1,000 of either
        "logged_kib_per_1000_after_event_retention": {
            k: round(v / 2, 1) for k, v in grew(after_plain, expired).items()
        },
        "rows_left_runs_events": counts,
    }


async def _cross_bridge(port: int, url: str, reps: int, paced: int) -> dict[str, Any]:
    """On PostgreSQL: a run on A followed through B, and a cancel made on B, with NOTIFY and
    with the poll alone (the backend's notices switched off for the bridges of that pass)."""
    import asyncpg  # type: ignore[import-untyped]

    name = f"wirebridge_bench_{int(time.time())}"
    admin = await asyncpg.connect(url)
    await admin.execute(f"CREATE DATABASE {name}")
    scratch = url.rsplit("/", 1)[0] + f"/{name}"
    out: dict[str, Any] = {}
    try:
        for way in ("poll", "notify"):
            runs_module._PostgresRunLog.notifies = way == "notify"
            settings = BridgeSettings(
                passthrough_config(f"http://127.0.0.1:{port}/v1", request_max_retries=0),
                store_at_startup=True,
                store_url=scratch,
            )
            async with (
                running_bridge(settings) as a_bridge,
                running_bridge(settings) as b_bridge,
                httpx.AsyncClient(base_url=a_bridge.base_url, timeout=120) as a,
                httpx.AsyncClient(base_url=b_bridge.base_url, timeout=120) as b,
            ):
                follow: list[float] = []
                cancel: list[float] = []
                for _ in range(reps):
                    body = {"model": f"paced-{paced}", "input": "go", "background": True}
                    started = (await a.post("/responses", json=body)).json()
                    lat: list[int] = []
                    path = f"/responses/{started['id']}?stream=true"
                    async with b.stream("GET", path) as answer:
                        await _read(answer, lat, asyncio.Event())
                    follow += [x / 1e6 for x in lat]

                    long = {"model": "paced-100000", "input": "go", "background": True}
                    async with a.stream("POST", "/responses", json={**long, "stream": True}) as s:
                        lines = s.aiter_lines()
                        run_id = ""
                        async for line in lines:  # up to the first delta: the run is running
                            if '"response.created"' in line:
                                run_id = json.loads(line[6:])["response"]["id"]
                            if '"response.output_text.delta"' in line:
                                break
                        t0 = time.perf_counter()
                        done = await b.post(f"/responses/{run_id}/cancel")
                        cancel.append((time.perf_counter() - t0) * 1000)
                        assert done.json()["status"] == "cancelled", done.text
                        async for _ in lines:  # the stream ends (a cancelled run's does)
                            pass
                out[way] = {
                    "follow_p50_ms": _pct(follow, 50),
                    "follow_p99_ms": _pct(follow, 99),
                    "follow_n": len(follow),
                    "cancel_p50_ms": _pct(cancel, 50),
                    "cancel_max_ms": max(cancel),
                    "cancel_n": len(cancel),
                }
    finally:
        runs_module._PostgresRunLog.notifies = True
        await admin.execute(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")
        await admin.close()
    return out


async def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--out", default="bench/background_results.json")
    parser.add_argument("--postgres", default=os.environ.get("WIREBRIDGE_TEST_POSTGRES_URL"))
    args = parser.parse_args()
    reps, paced, burst, runs = (2, 300, 5000, 200) if args.quick else (5, 500, 20000, 1000)
    _count_calls()
    server = await asyncio.start_server(_upstream, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    with tempfile.TemporaryDirectory() as tmp:
        result: dict[str, Any] = {}
        for phase in ("speed", "growth"):
            db = Path(tmp) / f"{phase}.db"
            settings = BridgeSettings(
                passthrough_config(f"http://127.0.0.1:{port}/v1", request_max_retries=0),
                store_at_startup=True,
                store_url=f"sqlite://{db}",
            )
            before = replace(
                settings, background=BackgroundSettings(resumable_streams=False)
            )  # foreground streaming as it was: nothing logged
            async with (
                running_bridge(settings) as bridge,
                running_bridge(before) as plain,
                httpx.AsyncClient(
                    base_url=bridge.base_url.removesuffix("/v1"), timeout=120
                ) as client,
                httpx.AsyncClient(
                    base_url=plain.base_url.removesuffix("/v1"), timeout=120
                ) as plain_client,
            ):
                clients = {"plain": plain_client, "resumable": client, "background": client}
                if phase == "speed":
                    result["latency"] = await _latency(clients, reps, paced)
                    result["throughput"] = await _throughput(clients, reps, burst)
                else:
                    result["growth"] = await _growth(clients, db, runs)
        if args.postgres:
            result["cross_bridge"] = await _cross_bridge(port, args.postgres, reps * 2, paced)
    server.close()
    result["machine"] = {"python": sys.version.split()[0], "load_end": _load()}
    _write(Path(args.out), result)


def _write(path: Path, result: dict[str, Any]) -> None:
    path.write_text(json.dumps(result, indent=2) + "\n")
    print(json.dumps(result, indent=2))


def _load() -> list[float]:
    return list(os.getloadavg())


if __name__ == "__main__":
    asyncio.run(main())
