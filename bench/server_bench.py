"""The server sections: bridge overhead and concurrency through one `wirebridge serve` process.

Both start `wirebridge serve --upstream <the fast upstream> --port P` as a subprocess on
127.0.0.1, with model names passing through, so a Responses request for model `text-N` makes the
upstream stream the `text-N` body (see `workload`). Clients read raw bytes and split lines,
without JSON parsing, so the client costs as little as it can and the figures are the server's.

- bridge: time to first byte and to the first text delta, reading the upstream's Chat stream
  directly against reading `/v1/responses` through the bridge (httpx), one request at a time,
  the two interleaved, each over a kept-alive connection (as SDK clients do; the bridge pools its
  upstream connections too); the difference of the percentiles is the added latency. Then one
  long stream (`text-50000`): relayed events/s by wall clock and per second of the server's CPU
  (utime + stime from /proc/PID/stat), i.e. per core.
- concurrency: N streams started together (100, 500, 1,000), each on a new connection, through
  a fresh server process per N (VmHWM only grows), read with a bare asyncio socket client (httpx
  costs ~1 ms per request, which at 1,000 streams would be most of what is measured): errors
  (any exception, non-200 or stream without `response.completed`; must be 0), TTFB and
  first-delta percentiles, and the server's peak RSS over its idle RSS, per stream. The same
  burst read from the upstream directly gives the machine's own latency for comparison.
"""

from __future__ import annotations

import asyncio
import json
import os
import statistics
import sys
import time
from pathlib import Path
from typing import Any

import httpx
import procs

SERVE = str(Path(sys.executable).parent / "wirebridge")
TICKS = os.sysconf("SC_CLK_TCK")


class Server(procs.Child):
    """`wirebridge serve` on a free loopback port; ready once /healthz answers."""

    def __init__(self, upstream_url: str, max_streams: int = 256):
        self.port = procs.free_port()
        argv = [SERVE, "serve", "--host", "127.0.0.1", "--port", str(self.port)]
        argv += ["--upstream", upstream_url, "--log-level", "warning"]
        # The default cap (256) answers 503 beyond it; the concurrency section raises it.
        argv += ["--max-concurrent-streams", str(max_streams)]
        super().__init__(argv)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    async def __aenter__(self) -> Server:
        self.start()
        deadline = time.monotonic() + 30
        async with httpx.AsyncClient(timeout=1) as http:
            while True:
                assert self.proc is not None
                if self.proc.poll() is not None:
                    raise RuntimeError(f"`wirebridge serve` exited with {self.proc.returncode}")
                try:
                    if (await http.get(f"{self.url}/healthz")).status_code == 200:
                        return self
                except httpx.TransportError:
                    pass
                if time.monotonic() > deadline:
                    self.stop()
                    raise RuntimeError("`wirebridge serve` did not answer /healthz within 30 s")
                await asyncio.sleep(0.05)  # polling a child process's readiness: no event to await

    async def __aexit__(self, *exc: object) -> None:
        self.stop()

    def cpu_s(self) -> float:
        with open(f"/proc/{self.pid}/stat") as f:
            fields = f.read().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / TICKS  # utime + stime


def _keepalive_client() -> httpx.AsyncClient:
    """One pooled connection per host, reused: how the SDKs and Codex talk to a server."""
    limits = httpx.Limits(max_connections=1, max_keepalive_connections=1)
    return httpx.AsyncClient(timeout=httpx.Timeout(60), limits=limits)


def chat_request(upstream_url: str, spec: str) -> tuple[str, dict[str, Any]]:
    body = {
        "model": spec,
        "messages": [{"role": "user", "content": "benchmark"}],
        "stream": True,
        "stream_options": {"include_usage": True},
    }
    return f"{upstream_url}/chat/completions", body


def responses_request(server_url: str, spec: str) -> tuple[str, dict[str, Any]]:
    return f"{server_url}/v1/responses", {"model": spec, "input": "benchmark", "stream": True}


class Reading:
    """What one raw read of an SSE stream saw."""

    __slots__ = ("completed", "events", "status", "t_end", "t_first_byte", "t_first_delta")

    def __init__(self) -> None:
        self.status = 0
        self.events = 0
        self.completed = False
        self.t_first_byte = 0.0
        self.t_first_delta = 0.0
        self.t_end = 0.0


async def read_stream(
    http: httpx.AsyncClient, url: str, body: dict[str, Any], t0: float, delta_mark: bytes
) -> Reading:
    """POST and read the SSE body raw; times are seconds after `t0`."""
    r = Reading()
    async with http.stream("POST", url, json=body) as response:
        r.status = response.status_code
        tail = b""
        async for raw in response.aiter_raw():
            if not r.t_first_byte:
                r.t_first_byte = time.perf_counter() - t0
            lines = (tail + raw).split(b"\n")
            tail = lines.pop()
            for line in lines:
                if line.startswith(b"data:"):
                    r.events += 1
                    if not r.t_first_delta and delta_mark in line:
                        r.t_first_delta = time.perf_counter() - t0
                    if b"response.completed" in line or line == b"data: [DONE]":
                        r.completed = True
    r.t_end = time.perf_counter() - t0
    return r


CHAT_DELTA = b'"delta":{"content":"'  # a text chunk, not the role chunk's empty content
RESPONSES_DELTA = b"response.output_text.delta"
DONE = b"response.completed"


def _pct(xs: list[float], q: float) -> float:
    xs = sorted(xs)
    return xs[min(len(xs) - 1, round(q / 100 * (len(xs) - 1)))]


def _summary(xs: list[float]) -> dict[str, float]:
    return {
        "p50_ms": _pct(xs, 50) * 1e3,
        "p99_ms": _pct(xs, 99) * 1e3,
        "mean_ms": statistics.fmean(xs) * 1e3,
    }


async def bridge(upstream: procs.Upstream, quick: bool) -> dict[str, Any]:
    samples = 100 if quick else 500
    spec = "text-20"
    direct: dict[str, list[float]] = {"ttfb": [], "ttfd": []}
    bridged: dict[str, list[float]] = {"ttfb": [], "ttfd": []}
    async with Server(upstream.base_url) as server, _keepalive_client() as http:
        chat_url, chat_body = chat_request(upstream.base_url, spec)
        resp_url, resp_body = responses_request(server.url, spec)
        for _ in range(10):  # warm up both paths
            await read_stream(http, chat_url, chat_body, time.perf_counter(), CHAT_DELTA)
            await read_stream(http, resp_url, resp_body, time.perf_counter(), RESPONSES_DELTA)
        cpu_before = server.cpu_s()
        for _ in range(samples):
            d = await read_stream(http, chat_url, chat_body, time.perf_counter(), CHAT_DELTA)
            b = await read_stream(http, resp_url, resp_body, time.perf_counter(), RESPONSES_DELTA)
            for name, reading in (("direct", d), ("bridge", b)):
                if reading.status != 200 or not reading.completed:
                    raise AssertionError(f"{name} stream failed: HTTP {reading.status}")
            direct["ttfb"].append(d.t_first_byte)
            direct["ttfd"].append(d.t_first_delta)
            bridged["ttfb"].append(b.t_first_byte)
            bridged["ttfd"].append(b.t_first_delta)
        server_cpu_per_request = (server.cpu_s() - cpu_before) / samples

        long_spec = "text-50000"
        chat_url, chat_body = chat_request(upstream.base_url, long_spec)
        resp_url, resp_body = responses_request(server.url, long_spec)
        await read_stream(http, chat_url, chat_body, time.perf_counter(), CHAT_DELTA)  # build it
        best_direct = best_bridge = None
        for _ in range(1 if quick else 3):
            d = await read_stream(http, chat_url, chat_body, time.perf_counter(), CHAT_DELTA)
            cpu0 = server.cpu_s()
            b = await read_stream(http, resp_url, resp_body, time.perf_counter(), RESPONSES_DELTA)
            server_cpu = server.cpu_s() - cpu0
            if b.status != 200 or not b.completed:
                raise AssertionError(f"bridged long stream failed: HTTP {b.status}")
            if best_direct is None or d.t_end < best_direct.t_end:
                best_direct = d
            if best_bridge is None or b.t_end < best_bridge[0].t_end:
                best_bridge = (b, server_cpu)
    assert best_direct is not None and best_bridge is not None
    b, server_cpu = best_bridge
    added = {
        key: {
            "p50_ms": _summary(bridged[key])["p50_ms"] - _summary(direct[key])["p50_ms"],
            "p99_ms": _summary(bridged[key])["p99_ms"] - _summary(direct[key])["p99_ms"],
        }
        for key in ("ttfb", "ttfd")
    }
    return {
        "samples": samples,
        "ttfb": {"direct": _summary(direct["ttfb"]), "bridge": _summary(bridged["ttfb"])},
        "time_to_first_delta": {
            "direct": _summary(direct["ttfd"]),
            "bridge": _summary(bridged["ttfd"]),
        },
        "server_cpu_ms_per_request": server_cpu_per_request * 1e3,
        "added_ttfb": added["ttfb"],
        "added_time_to_first_delta": added["ttfd"],
        "relay": {
            "spec": long_spec,
            "direct_chunks": best_direct.events,
            "direct_chunks_per_s": best_direct.events / best_direct.t_end,
            "bridge_events": b.events,
            "bridge_wall_s": b.t_end,
            "bridge_events_per_s": b.events / b.t_end,
            "server_cpu_s": server_cpu,
            "bridge_events_per_server_cpu_s": b.events / server_cpu if server_cpu else None,
        },
        "targets": {"added_ttfb_p50_ms": 2.0, "relayed_events_per_core_s": 50_000},
    }


class RawReading:
    """One stream read by `raw_stream`; times in seconds after the common start."""

    __slots__ = ("completed", "events", "status", "t_end", "t_first_byte", "t_first_delta")

    def __init__(self) -> None:
        self.status = 0
        self.events = 0
        self.completed = False
        self.t_first_byte = 0.0
        self.t_first_delta = 0.0
        self.t_end = 0.0


async def raw_stream(
    port: int, path: str, payload: bytes, t0: float, delta_mark: bytes, done_mark: bytes
) -> RawReading:
    """HTTP/1.1 over a bare asyncio socket: a few µs of client work per stream, where httpx
    spends ~1 ms; with a thousand streams in one client process, httpx's own cost would be
    most of the measured latency. Reads to EOF (`Connection: close`); events are counted as
    `data:` lines, which chunked framing cannot fake."""
    r = RawReading()
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    try:
        head = (
            f"POST {path} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\n"
            f"Content-Type: application/json\r\nAccept: text/event-stream\r\n"
            f"Content-Length: {len(payload)}\r\nConnection: close\r\n\r\n"
        )
        writer.write(head.encode() + payload)
        parts: list[bytes] = []
        window = b""
        while True:
            data = await reader.read(65536)
            if not data:
                break
            now = time.perf_counter() - t0
            if not r.t_first_byte:
                r.t_first_byte = now
            if not r.t_first_delta:
                window = window[-64:] + data
                if delta_mark in window:
                    r.t_first_delta = now
            parts.append(data)
        r.t_end = time.perf_counter() - t0
    finally:
        writer.close()
    body = b"".join(parts)
    status_line = body[: body.find(b"\r\n")].split()
    r.status = int(status_line[1]) if len(status_line) > 1 else 0
    r.events = body.count(b"\ndata:") + body.count(b"\rdata:")
    r.completed = done_mark in body
    return r


async def _burst(
    n: int, port: int, path: str, payload: bytes, delta_mark: bytes, done_mark: bytes
) -> tuple[list[RawReading | BaseException], float]:
    """n streams started together; returns their outcomes and the wall time of the burst."""
    start = asyncio.Event()
    t0 = 0.0

    async def one() -> RawReading | BaseException:
        await start.wait()
        try:
            return await raw_stream(port, path, payload, t0, delta_mark, done_mark)
        except Exception as exc:
            return exc

    tasks = [asyncio.create_task(one()) for _ in range(n)]
    await asyncio.sleep(0)  # every task reaches start.wait() before the clock starts
    t0 = time.perf_counter()
    start.set()
    outcomes = await asyncio.wait_for(asyncio.gather(*tasks), timeout=600)
    return list(outcomes), time.perf_counter() - t0


def _tally(outcomes: list[RawReading | BaseException], wall: float) -> dict[str, Any]:
    good: list[RawReading] = []
    kinds: dict[str, int] = {}
    for o in outcomes:
        if isinstance(o, BaseException):
            key = type(o).__name__
        elif o.status != 200:
            key = f"HTTP {o.status}"
        elif not o.completed:
            key = "stream not completed"
        else:
            good.append(o)
            continue
        kinds[key] = kinds.get(key, 0) + 1
    events = sum(r.events for r in good)
    return {
        "errors": len(outcomes) - len(good),
        "error_kinds": kinds,
        "ttfb": _summary([r.t_first_byte for r in good]) if good else None,
        "first_delta": _summary([r.t_first_delta for r in good]) if good else None,
        "end": _summary([r.t_end for r in good]) if good else None,
        "wall_s": wall,
        "events": events,
        "events_per_s": events / wall,
    }


async def concurrency_level(upstream: procs.Upstream, n: int, spec: str) -> dict[str, Any]:
    chat_payload = json.dumps(chat_request(upstream.base_url, spec)[1]).encode()
    resp_payload = json.dumps({"model": spec, "input": "benchmark", "stream": True}).encode()
    # The same burst read from the upstream directly: what the machine itself costs.
    outcomes, wall = await _burst(
        n, upstream.port, "/v1/chat/completions", chat_payload, CHAT_DELTA, b"[DONE]"
    )
    direct = _tally(outcomes, wall)
    async with Server(upstream.base_url, max_streams=n) as server:
        path = "/v1/responses"
        warm = await raw_stream(
            server.port, path, resp_payload, time.perf_counter(), RESPONSES_DELTA, DONE
        )
        if warm.status != 200 or not warm.completed:
            raise AssertionError(f"warm-up stream through the bridge failed: HTTP {warm.status}")
        idle_rss = procs.vm_rss_kib(server.pid)
        cpu0 = server.cpu_s()
        outcomes, wall = await _burst(n, server.port, path, resp_payload, RESPONSES_DELTA, DONE)
        server_cpu = server.cpu_s() - cpu0
        hwm = procs.vm_hwm_kib(server.pid)
    bridged = _tally(outcomes, wall)
    return {
        "streams": n,
        **bridged,
        "direct": direct,
        "server_cpu_s": server_cpu,
        "server_idle_rss_mib": idle_rss / 1024,
        "server_peak_rss_mib": hwm / 1024,
        "peak_rss_per_stream_kib": (hwm - idle_rss) / n,
    }


async def concurrency(upstream: procs.Upstream, quick: bool) -> dict[str, Any]:
    spec = "text-100"
    levels = [100, 1_000] if quick else [100, 500, 1_000]
    return {
        "spec": spec,
        "levels": [await concurrency_level(upstream, n, spec) for n in levels],
        "target": {"errors": 0},
    }


async def run(name: str, upstream: procs.Upstream, quick: bool) -> dict[str, Any]:
    if name == "bridge":
        return await bridge(upstream, quick)
    if name == "concurrency":
        return await concurrency(upstream, quick)
    raise ValueError(name)


def markdown(name: str, data: dict[str, Any]) -> list[str]:
    if name == "bridge":
        return _bridge_md(data)
    return _concurrency_md(data)


def _bridge_md(d: dict[str, Any]) -> list[str]:
    def row(label: str, key: str) -> list[str]:
        s = d[key]
        return [
            label,
            f"{s['direct']['p50_ms']:.2f}",
            f"{s['bridge']['p50_ms']:.2f}",
            f"{s['bridge']['p50_ms'] - s['direct']['p50_ms']:+.2f}",
            f"{s['direct']['p99_ms']:.2f}",
            f"{s['bridge']['p99_ms']:.2f}",
            f"{s['bridge']['p99_ms'] - s['direct']['p99_ms']:+.2f}",
        ]

    head = ["ms", "direct p50", "bridge p50", "added p50", "direct p99", "bridge p99", "added p99"]
    lines = [f"### Bridge overhead ({d['samples']} sequential requests each way)", ""]
    lines += ["| " + " | ".join(head) + " |", "|" + "|".join("---" for _ in head) + "|"]
    for label, key in (("first byte", "ttfb"), ("first text delta", "time_to_first_delta")):
        lines.append("| " + " | ".join(row(label, key)) + " |")
    r = d["relay"]
    per_core = r["bridge_events_per_server_cpu_s"]
    lines += [
        "",
        f"Server CPU per request ({d['samples']} requests of `text-20`): "
        f"{d['server_cpu_ms_per_request']:.2f} ms.",
        f"Relay ({r['spec']}): direct read {r['direct_chunks_per_s']:,.0f} chunks/s; through the "
        f"bridge {r['bridge_events']:,} events in {r['bridge_wall_s']:.2f} s = "
        f"**{r['bridge_events_per_s']:,.0f} events/s**, server CPU {r['server_cpu_s']:.2f} s = "
        + (f"**{per_core:,.0f} events per server CPU second**." if per_core else "n/a."),
        f"Targets: added first-byte p50 < 2 ms ({d['added_ttfb']['p50_ms']:+.2f} ms); "
        f"≥ 50,000 relayed events/s per core ({per_core or 0:,.0f}).",
    ]
    return lines


def _concurrency_md(d: dict[str, Any]) -> list[str]:
    head = [
        "streams",
        "errors",
        "TTFB p50 / p99 ms",
        "first delta p50 / p99 ms",
        "direct (no bridge) first delta p50 / p99 ms",
        "wall s",
        "events/s",
        "server CPU s",
        "server RSS idle → peak MiB",
        "peak RSS / stream KiB",
    ]
    lines = [f"### Concurrency (one server process, `{d['spec']}` per stream)", ""]
    lines += ["| " + " | ".join(head) + " |", "|" + "|".join("---" for _ in head) + "|"]
    nan = {"p50_ms": float("nan"), "p99_ms": float("nan")}

    def pp(x: dict[str, float] | None) -> str:
        x = x or nan
        return f"{x['p50_ms']:.1f} / {x['p99_ms']:.1f}"

    for lv in d["levels"]:
        direct = lv["direct"]
        cells = [
            f"{lv['streams']:,}",
            str(lv["errors"]) + (f" {lv['error_kinds']}" if lv["errors"] else ""),
            pp(lv["ttfb"]),
            pp(lv["first_delta"]),
            pp(direct["first_delta"])
            + (f" ({direct['errors']} errors)" if direct["errors"] else ""),
            f"{lv['wall_s']:.2f}",
            f"{lv['events_per_s']:,.0f}",
            f"{lv['server_cpu_s']:.2f}",
            f"{lv['server_idle_rss_mib']:.1f} → {lv['server_peak_rss_mib']:.1f}",
            f"{lv['peak_rss_per_stream_kib']:.1f}",
        ]
        lines.append("| " + " | ".join(cells) + " |")
    return lines
