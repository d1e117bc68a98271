"""The stall one large request causes: how long `/healthz` waits while a 20 MB body is parsed.

A client polls `GET /healthz` back to back on one kept-alive connection while one `POST
/v1/responses` with a 20 MB body of 300,000 input items goes through the same `wirebridge
serve` process. Parsing and mapping such a body takes seconds of CPU; on the event loop
(`--offload-bytes 0`) every other request waits that long, in a worker thread (the default)
they do not. Both modes run here, each in a fresh server, on the same bytes: the figures are the
worst `/healthz` latency while the big request was in flight, its median before, and the big
request's own time.
"""

from __future__ import annotations

import asyncio
import json
import statistics
import time
from typing import Any

import httpx
import procs
import server_bench

ITEMS = 300_000
MODES = {"on the event loop": "0", "in a worker thread": None}  # --offload-bytes


def big_body(items: int) -> bytes:
    """About 20 MB: `items` short user messages, then the question (the model names the answer)."""
    history = [
        {"type": "message", "role": "user", "content": f"note {i:06d}: " + "x" * 10}
        for i in range(items)
    ]
    body = {"model": "text-10", "input": history, "store": False}
    return json.dumps(body, separators=(",", ":")).encode()


async def one_mode(upstream_url: str, offload: str | None, body: bytes) -> dict[str, Any]:
    server = server_bench.Server(upstream_url)
    server.argv += ["--no-store", "--max-body-bytes", str(64 * 1024 * 1024)]
    if offload is not None:
        server.argv += ["--offload-bytes", offload]
    async with server, httpx.AsyncClient(timeout=600) as http:
        polls: list[tuple[float, float]] = []  # (start, latency)
        big: dict[str, float] = {}
        done = asyncio.Event()

        async def poll() -> None:
            while not done.is_set():
                start = time.perf_counter()
                answer = await http.get(f"{server.url}/healthz")
                answer.raise_for_status()
                polls.append((start, time.perf_counter() - start))

        async def post() -> None:
            await asyncio.sleep(1.0)  # a baseline of quiet polls first (a fixed warm-up)
            big["start"] = time.perf_counter()
            answer = await http.post(
                f"{server.url}/v1/responses",
                content=body,
                headers={"Content-Type": "application/json"},
            )
            big["end"] = time.perf_counter()
            answer.raise_for_status()
            done.set()

        await asyncio.gather(poll(), post())
    before = [lat for start, lat in polls if start + lat < big["start"]]
    during = [lat for start, lat in polls if start < big["end"] and start + lat > big["start"]]
    return {
        "healthz_p50_before_ms": statistics.median(before) * 1000,
        "healthz_max_during_ms": max(during) * 1000,
        "healthz_answers_during": len(during),
        "big_request_s": big["end"] - big["start"],
    }


async def run(upstream: procs.Upstream, quick: bool) -> dict[str, Any]:
    items = ITEMS // 10 if quick else ITEMS
    body = big_body(items)
    modes = {name: await one_mode(upstream.base_url, flag, body) for name, flag in MODES.items()}
    return {"items": items, "body_mib": len(body) / 1024 / 1024, "modes": modes}


def markdown(d: dict[str, Any]) -> list[str]:
    lines = [
        "### Event-loop stall: one large request",
        "",
        f"One `POST /v1/responses` of {d['body_mib']:.1f} MiB ({d['items']:,} input items) while "
        "a client polls `/healthz` back to back through the same server process.",
        "",
        "| big body parsed | `/healthz` p50 before, ms | `/healthz` worst during, ms "
        "| `/healthz` answers during | big request, s |",
        "|---|---|---|---|---|",
    ]
    for name, m in d["modes"].items():
        lines.append(
            f"| {name} | {m['healthz_p50_before_ms']:.2f} | {m['healthz_max_during_ms']:.0f} "
            f"| {m['healthz_answers_during']} | {m['big_request_s']:.2f} |"
        )
    return lines
