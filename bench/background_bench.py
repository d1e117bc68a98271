"""Background runs: what persisting every event costs, against foreground streaming, in one run.

    .venv/bin/python bench/background_bench.py [--quick] [--out bench/background_results.json]

One process holds the timestamping upstream, the bridge (SQLite store in a temporary folder)
and the client, so all clocks are one clock; foreground and background requests are
interleaved, so load on the machine hits both alike.

- latency: a paced stream (one text delta every 2 ms); each delta carries the upstream's send
  time, and the client takes the difference when it reads the delta: p50/p99 per mode.
  Foreground is `stream: true` (store on); background is `background: true, stream: true`,
  whose events reach the client only through the store (written, then read back).
- throughput: an unpaced stream of many deltas: events/s per mode, and in background mode the
  store transactions/s and event rows/s (the run log's calls are counted).
- growth: the store's size per 1,000 finished runs of 50 deltas, background vs foreground
  (SQLite `dbstat` bytes per table), and what is left once the event logs' retention passed.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import httpx

from wirebridge.responses import BridgeSettings
from wirebridge.responses.testing import passthrough_config, running_bridge
from wirebridge.store import runs as runs_module

CALLS = {"append": 0, "finish": 0, "rows": 0}


def _count_calls() -> None:
    """Count the run log's transactions and rows (the bench's only instrument in the bridge)."""
    log = runs_module.RunLog
    append, finish = log.append, log.finish

    async def counted_append(self: Any, run_id: str, frames: Any, snapshot: Any) -> None:
        CALLS["append"] += 1
        CALLS["rows"] += len(frames)
        await append(self, run_id, frames, snapshot)

    async def counted_finish(self: Any, run_id: str, frames: Any, **kw: Any) -> bool:
        CALLS["finish"] += 1
        CALLS["rows"] += len(frames)
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
    finally:
        writer.close()


async def _one(client: httpx.AsyncClient, model: str, background: bool) -> tuple[list[int], float]:
    """Per-delta latencies (ns) and the wall time of one streamed response."""
    body: dict[str, Any] = {"model": model, "input": "go", "stream": True}
    if background:
        body["background"] = True
    latencies: list[int] = []
    start = time.perf_counter()
    async with client.stream("POST", "/v1/responses", json=body) as answer:
        assert answer.status_code == 200, answer.status_code
        async for line in answer.aiter_lines():
            if line.startswith("data: ") and '"response.output_text.delta"' in line:
                now = time.perf_counter_ns()
                delta = json.loads(line[6:])["delta"]
                latencies.append(now - int(delta.split()[0]))
            elif line.startswith("data: ") and '"response.completed"' in line:
                break
    return latencies, time.perf_counter() - start


def _pct(values: list[float], q: int) -> float:
    return statistics.quantiles(values, n=100)[q - 1] if len(values) > 1 else values[0]


async def _latency(client: httpx.AsyncClient, reps: int, n: int) -> dict[str, Any]:
    per: dict[str, list[float]] = {"foreground": [], "background": []}
    for _ in range(reps):
        for mode in per:
            lat, _ = await _one(client, f"paced-{n}", mode == "background")
            assert len(lat) == n
            per[mode] += [x / 1e6 for x in lat]
    out: dict[str, Any] = {
        m: {"p50_ms": _pct(v, 50), "p99_ms": _pct(v, 99), "n": len(v)} for m, v in per.items()
    }
    out["added_p50_ms"] = out["background"]["p50_ms"] - out["foreground"]["p50_ms"]
    out["added_p99_ms"] = out["background"]["p99_ms"] - out["foreground"]["p99_ms"]
    return out


async def _throughput(client: httpx.AsyncClient, reps: int, n: int) -> dict[str, Any]:
    best = {"foreground": float("inf"), "background": float("inf")}
    tx = rows = 0.0
    for _ in range(reps):
        for mode in best:
            before = dict(CALLS)
            lat, wall = await _one(client, f"burst-{n}", mode == "background")
            assert len(lat) == n
            if wall < best[mode]:
                best[mode] = wall
                if mode == "background":
                    tx = (
                        CALLS["append"] + CALLS["finish"] - before["append"] - before["finish"]
                    ) / wall
                    rows = (CALLS["rows"] - before["rows"]) / wall
    return {
        "deltas": n,
        "foreground_events_per_s": n / best["foreground"],
        "background_events_per_s": n / best["background"],
        "store_transactions_per_s": tx,
        "event_rows_per_s": rows,
    }


def _table_bytes(db: Path) -> dict[str, int]:
    import sqlite3

    with sqlite3.connect(db) as conn:
        conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
        rows = conn.execute("SELECT name, SUM(pgsize) FROM dbstat GROUP BY name").fetchall()
    return {name: int(size) for name, size in rows}


async def _growth(client: httpx.AsyncClient, db: Path, runs: int) -> dict[str, Any]:
    """Bytes per table (KiB per 1,000 runs) added by foreground runs, then by background runs,
    then what the background runs leave once their event logs' retention passed."""
    from wirebridge.store import open_store

    sem = asyncio.Semaphore(10)

    async def one(background: bool) -> None:
        async with sem:
            await _one(client, "burst-50", background)

    def grew(a: dict[str, int], b: dict[str, int]) -> dict[str, float]:
        names = set(a) | set(b)
        diff = {k: (b.get(k, 0) - a.get(k, 0)) * 1000 / runs / 1024 for k in sorted(names)}
        return {k: round(v, 1) for k, v in diff.items() if v}

    start = _table_bytes(db)
    await asyncio.gather(*(one(False) for _ in range(runs)))
    after_fg = _table_bytes(db)
    await asyncio.gather(*(one(True) for _ in range(runs)))
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
        "foreground_kib_per_1000": grew(start, after_fg),
        "background_kib_per_1000": grew(after_fg, after_bg),
        "background_kib_per_1000_after_event_retention": grew(after_fg, expired),
        "rows_left_runs_events": counts,
    }


async def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--out", default="bench/background_results.json")
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
            async with (
                running_bridge(settings) as bridge,
                httpx.AsyncClient(
                    base_url=bridge.base_url.removesuffix("/v1"), timeout=120
                ) as client,
            ):
                if phase == "speed":
                    result["latency"] = await _latency(client, reps, paced)
                    result["throughput"] = await _throughput(client, reps, burst)
                else:
                    result["growth"] = await _growth(client, db, runs)
    server.close()
    result["machine"] = {"python": sys.version.split()[0], "load_end": _load()}
    _write(Path(args.out), result)


def _write(path: Path, result: dict[str, Any]) -> None:
    path.write_text(json.dumps(result, indent=2) + "\n")
    print(json.dumps(result, indent=2))


def _load() -> list[float]:
    import os

    return list(os.getloadavg())


if __name__ == "__main__":
    asyncio.run(main())
