"""The ops section: what metrics and traces cost the bridge, three configurations in one run.

Three `wirebridge serve` processes in front of the same fast upstream:
- off: `--no-metrics --no-console` (no ops at all);
- metrics: the defaults (Prometheus metrics and the console's recorder of recent exchanges);
- metrics + traces: `--otel` too, exporting over OTLP/HTTP to a sink in this process that
  answers 200 (spans are made, batched, encoded and sent, as in production).

Measured interleaved (off, metrics, traces, off, ...) so drift in the machine's load hits all
three alike: the relay's speed on one long stream (`text-100000`), by wall clock (best of N)
and per second of the server's CPU (the mean over N: /proc counts CPU in 10 ms ticks); and time
to first byte, one request at a time over kept-alive connections, as p50/p99 over the same Chat
stream read directly (the added TTFB).
"""

from __future__ import annotations

import asyncio
import time
from typing import Any

import procs
from server_bench import (
    CHAT_DELTA,
    RESPONSES_DELTA,
    Server,
    _keepalive_client,
    _pct,
    chat_request,
    read_stream,
    responses_request,
)

CONFIGS = {
    "off": ["--no-metrics", "--no-console"],
    "metrics": [],
    "metrics + traces": ["--otel"],
}


class OtlpSink:
    """Accepts OTLP/HTTP exports on loopback and answers 200 with an empty body."""

    def __init__(self) -> None:
        self.server: asyncio.Server | None = None
        self.port = 0
        self.exports = 0

    async def __aenter__(self) -> OtlpSink:
        self.server = await asyncio.start_server(self._serve, "127.0.0.1", 0)
        self.port = self.server.sockets[0].getsockname()[1]
        return self

    async def __aexit__(self, *exc: object) -> None:
        assert self.server is not None
        self.server.close()

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            while True:
                head = await reader.readuntil(b"\r\n\r\n")
                length = 0
                for line in head.split(b"\r\n"):
                    if line.lower().startswith(b"content-length:"):
                        length = int(line.split(b":", 1)[1])
                await reader.readexactly(length)
                self.exports += 1
                writer.write(
                    b"HTTP/1.1 200 OK\r\nContent-Type: application/x-protobuf\r\n"
                    b"Content-Length: 0\r\n\r\n"
                )
                await writer.drain()
        except (asyncio.IncompleteReadError, ConnectionError):
            writer.close()
        except asyncio.CancelledError:
            writer.close()  # the run is over: the event loop is closing


def _server(upstream_url: str, extra: list[str], sink_port: int) -> Server:
    server = Server(upstream_url)
    server.argv += extra
    server.env = {
        "OTEL_EXPORTER_OTLP_ENDPOINT": f"http://127.0.0.1:{sink_port}",
        "OTEL_SERVICE_NAME": "wirebridge-bench",
    }
    return server


async def run(upstream: procs.Upstream, quick: bool) -> dict[str, Any]:
    samples = 100 if quick else 300
    repeats = 3 if quick else 5
    short, long = "text-20", "text-100000"
    ttfb: dict[str, list[float]] = {"direct": [], **{name: [] for name in CONFIGS}}
    relay: dict[str, list[tuple[float, float, int]]] = {name: [] for name in CONFIGS}
    async with OtlpSink() as sink:
        servers = {
            name: _server(upstream.base_url, extra, sink.port) for name, extra in CONFIGS.items()
        }
        for server in servers.values():
            await server.__aenter__()
        try:
            async with _keepalive_client() as http:
                chat_url, chat_body = chat_request(upstream.base_url, short)
                targets = {n: responses_request(s.url, short) for n, s in servers.items()}
                for _ in range(10):  # warm every path
                    await read_stream(http, chat_url, chat_body, time.perf_counter(), CHAT_DELTA)
                    for url, body in targets.values():
                        await read_stream(http, url, body, time.perf_counter(), RESPONSES_DELTA)
                for _ in range(samples):
                    d = await read_stream(
                        http, chat_url, chat_body, time.perf_counter(), CHAT_DELTA
                    )
                    ttfb["direct"].append(d.t_first_byte)
                    for name, (url, body) in targets.items():
                        r = await read_stream(http, url, body, time.perf_counter(), RESPONSES_DELTA)
                        if r.status != 200 or not r.completed:
                            raise AssertionError(f"{name}: HTTP {r.status}")
                        ttfb[name].append(r.t_first_byte)
                longs = {n: responses_request(s.url, long) for n, s in servers.items()}
                for _ in range(repeats):
                    for name, (url, body) in longs.items():
                        cpu0 = servers[name].cpu_s()
                        r = await read_stream(http, url, body, time.perf_counter(), RESPONSES_DELTA)
                        cpu = servers[name].cpu_s() - cpu0
                        if r.status != 200 or not r.completed:
                            raise AssertionError(f"{name} long stream: HTTP {r.status}")
                        relay[name].append((r.t_end, cpu, r.events))
        finally:
            for server in servers.values():
                await server.__aexit__()
    direct_p50 = _pct(ttfb["direct"], 50)
    out: dict[str, Any] = {"samples": samples, "repeats": repeats, "otlp_exports": sink.exports}
    configs: dict[str, Any] = {}
    for name in CONFIGS:
        wall, _, events = min(relay[name], key=lambda x: x[0])
        # CPU time comes in 10 ms ticks: the total over every repetition, per event.
        cpu = sum(c for _, c, _ in relay[name]) / len(relay[name])
        configs[name] = {
            "ttfb_p50_ms": _pct(ttfb[name], 50) * 1e3,
            "ttfb_p99_ms": _pct(ttfb[name], 99) * 1e3,
            "added_ttfb_p50_ms": (_pct(ttfb[name], 50) - direct_p50) * 1e3,
            "events": events,
            "events_per_s": events / wall,
            "events_per_server_cpu_s": events / cpu if cpu else None,
        }
    base = configs["off"]
    for c in configs.values():
        c["throughput_vs_off"] = c["events_per_s"] / base["events_per_s"]
        if c["events_per_server_cpu_s"] and base["events_per_server_cpu_s"]:
            c["cpu_throughput_vs_off"] = (
                c["events_per_server_cpu_s"] / base["events_per_server_cpu_s"]
            )
    out["direct_ttfb_p50_ms"] = direct_p50 * 1e3
    out["configs"] = configs
    out["target"] = {"metrics_throughput_cost_max": 0.05}
    return out


def markdown(d: dict[str, Any]) -> list[str]:
    lines = [
        f"#### Ops: metrics and traces on vs off ({d['samples']} TTFB samples each, "
        f"relay best of {d['repeats']}, interleaved)",
        "",
        "| configuration | events/s | ÷ off | events per server CPU s | ÷ off | TTFB p50 ms "
        "| added TTFB p50 ms | TTFB p99 ms |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for name, c in d["configs"].items():
        per_cpu = c["events_per_server_cpu_s"]
        lines.append(
            f"| {name} | {c['events_per_s']:,.0f} | {c['throughput_vs_off']:.3f} | "
            f"{per_cpu:,.0f} | {c.get('cpu_throughput_vs_off', 0):.3f} | "
            f"{c['ttfb_p50_ms']:.2f} | {c['added_ttfb_p50_ms']:+.2f} | {c['ttfb_p99_ms']:.2f} |"
        )
    metrics = d["configs"]["metrics"]
    cost = 1 - metrics.get("cpu_throughput_vs_off", metrics["throughput_vs_off"])
    verdict = "met" if cost < d["target"]["metrics_throughput_cost_max"] else "missed"
    lines += [
        "",
        f"Metrics cost {cost * 100:.1f} % of the relay's throughput per server CPU second "
        f"(target under 5 %: **{verdict}**); OTLP exports received by the sink: "
        f"{d['otlp_exports']}.",
    ]
    return lines
