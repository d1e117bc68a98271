"""The WebSocket section: a Codex-like session over HTTP and over the socket, side by side.

`python bench/ws_bench.py [--turns 50] [--sockets 1000] [--out bench/ws_results.json]`

One `wirebridge serve` process in front of the fast upstream (`upstream.py`). Two sessions run
turn by turn, interleaved (HTTP turn i, then socket turn i), each as Codex runs one with
`store: false`: a system prompt of ~12 KB, 23 tools, and per turn the model calls a tool
(`args-256-8`: a 256-byte call in 8 fragments) and the client answers a ~4 KB tool output.
- HTTP (`POST /v1/responses`, one kept-alive connection): each turn sends the whole history.
- WebSocket (one connection, permessage-deflate as Codex offers it): a prewarm
  (`generate: false`), then each turn only the new items with `previous_response_id`.
Per turn: bytes client -> bridge (HTTP: the body; the socket: the message before compression
and the bytes the client's TCP transport wrote, i.e. after deflate and framing), time from
sending to the first event, and the server's CPU (utime + stime from /proc, 10 ms ticks: the
session totals are what is exact, the per-turn figures are their means).

Then idle sockets: N connections opened (with and without permessage-deflate, each against a
fresh server), the server's RSS over its RSS before them, per socket.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import random
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

import httpx
import procs
import server_bench
from websockets.asyncio.client import ClientConnection, connect

MODEL = "args-256-8"
TOOL_OUTPUT_BYTES = 4096
SYSTEM_BYTES = 12_000
TOOLS = 23


def _tools() -> list[dict[str, Any]]:
    return [
        {
            "type": "function",
            "name": f"tool_{i}",
            "description": "Runs a command in a PTY and returns its output. " * 4,
            "strict": False,
            "parameters": {
                "type": "object",
                "properties": {"cmd": {"type": "string"}, "workdir": {"type": "string"}},
                "required": ["cmd"],
            },
        }
        for i in range(TOOLS)
    ]


def _message(role: str, text: str) -> dict[str, Any]:
    return {"type": "message", "role": role, "content": [{"type": "input_text", "text": text}]}


_WORDS = [
    "error",
    "warning",
    "note",
    "build",
    "test",
    "passed",
    "failed",
    "module",
    "import",
    "function",
    "return",
    "value",
    "line",
    "file",
    "path",
    "src",
    "lib",
    "tests",
    "assert",
    "expected",
    "actual",
    "got",
    "type",
    "str",
    "int",
    "None",
    "self",
    "def",
    "class",
    "compile",
    "link",
    "object",
    "target",
    "make",
    "cargo",
    "pytest",
    "npm",
    "run",
    "ok",
    "FAILED",
    "PASSED",
    "collected",
    "items",
]


def _tool_output(call_id: str, turn: int) -> dict[str, Any]:
    """~4 KB of build-log-like text: varied words, paths and numbers (deflates about 3x, as
    real command output does; a repeated line would flatter the compressed figures)."""
    rng = random.Random(turn)
    lines, size = [], 0
    while size < TOOL_OUTPUT_BYTES:
        words = " ".join(rng.choice(_WORDS) for _ in range(rng.randint(4, 12)))
        line = f"src/{rng.choice(_WORDS)}_{rng.randint(0, 999)}.py:{rng.randint(1, 4000)}: {words}"
        lines.append(line)
        size += len(line) + 1
    text = "\n".join(lines)[:TOOL_OUTPUT_BYTES]
    return {"type": "function_call_output", "call_id": call_id, "output": text}


def _base() -> dict[str, Any]:
    return {
        "model": MODEL,
        "tools": _tools(),
        "tool_choice": "auto",
        "parallel_tool_calls": True,
        "store": False,
        "stream": True,
        "include": ["reasoning.encrypted_content"],
        "prompt_cache_key": "bench-session",
    }


def _start() -> list[dict[str, Any]]:
    system = ("You are a coding agent. Follow the repository's conventions. " * 200)[:SYSTEM_BYTES]
    return [_message("developer", system), _message("user", "Fix the failing build.")]


class Counter:
    """Bytes a client's TCP transport wrote (wraps `transport.write`)."""

    def __init__(self, transport: Any):
        self.bytes = 0
        write = transport.write

        def counted(data: bytes | bytearray | memoryview) -> None:
            self.bytes += len(data)
            write(data)

        transport.write = counted


async def _http_turn(
    http: httpx.AsyncClient, url: str, body: dict[str, Any]
) -> tuple[float, dict[str, Any]]:
    data = json.dumps(body).encode()
    started = time.perf_counter()
    first = 0.0
    final: dict[str, Any] = {}
    headers = {"content-type": "application/json"}
    async with http.stream("POST", url, content=data, headers=headers) as response:
        assert response.status_code == 200, response.status_code
        async for line in response.aiter_lines():
            if line.startswith("data: "):
                if not first:
                    first = time.perf_counter() - started
                if '"response.completed"' in line[:60]:
                    final = json.loads(line[6:])["response"]
    assert final, "no response.completed"
    return first, final


async def _ws_turn(ws: ClientConnection, message: dict[str, Any]) -> tuple[float, dict[str, Any]]:
    started = time.perf_counter()
    await ws.send(json.dumps(message))
    first = 0.0
    while True:
        frame = await ws.recv()
        if not first:
            first = time.perf_counter() - started
        assert isinstance(frame, str)
        if frame.startswith('{"type":"response.completed"'):
            return first, json.loads(frame)["response"]
        if frame.startswith('{"type":"error"') or '"response.failed"' in frame[:40]:
            raise RuntimeError(frame[:300])


def cpu_ns(pid: int) -> int:
    """CPU time of all the server's threads, in ns (`/proc/PID/task/*/schedstat`): the
    10 ms ticks of /proc/PID/stat are coarser than one turn."""
    total = 0
    for task in Path(f"/proc/{pid}/task").iterdir():
        with contextlib.suppress(FileNotFoundError, ProcessLookupError):  # a thread ended
            total += int((task / "schedstat").read_text().split()[0])
    return total


class _Socket:
    """One socket session: its connection, byte counter and last response."""

    def __init__(self, ws: ClientConnection):
        self.ws = ws
        self.counter = Counter(ws.transport)
        self.previous: dict[str, Any] = {}

    async def turn(self, base: dict[str, Any], items: list[dict[str, Any]]) -> dict[str, Any]:
        message = {"type": "response.create", **base, "input": items}
        if self.previous:
            message["previous_response_id"] = self.previous["id"]
        size, wire0 = len(json.dumps(message).encode()), self.counter.bytes
        first, self.previous = await _ws_turn(self.ws, message)
        return {"bytes": size, "wire": self.counter.bytes - wire0, "first": first}


async def session(server: server_bench.Server, turns: int) -> dict[str, Any]:
    url = f"{server.url}/v1/responses"
    ws_url = url.replace("http://", "ws://")
    history = _start()
    rows: list[dict[str, Any]] = []
    async with (
        server_bench._keepalive_client() as http,
        connect(ws_url, max_size=None) as deflated,
        connect(ws_url, max_size=None, compression=None) as plain,
    ):
        sockets = {"ws": _Socket(deflated), "wsplain": _Socket(plain)}
        for sock in sockets.values():  # Codex's prewarm: the instructions, no generation
            await sock.turn({**_base(), "generate": False}, history[:1])
        new_items = history[1:]
        for turn in range(1, turns + 1):
            row: dict[str, Any] = {"turn": turn}
            # HTTP: the whole history every turn
            body = {**_base(), "input": history}
            row["http_bytes"] = len(json.dumps(body).encode())
            cpu = cpu_ns(server.pid)
            row["http_first_event_s"], http_final = await _http_turn(http, url, body)
            row["http_cpu_s"] = (cpu_ns(server.pid) - cpu) / 1e9
            # the sockets: only what is new since the previous response
            for name, sock in sockets.items():
                cpu = cpu_ns(server.pid)
                seen = await sock.turn(_base(), new_items)
                row[f"{name}_cpu_s"] = (cpu_ns(server.pid) - cpu) / 1e9
                row[f"{name}_bytes"], row[f"{name}_wire_bytes"] = seen["bytes"], seen["wire"]
                row[f"{name}_first_event_s"] = seen["first"]
            call = http_final["output"][-1]
            assert call["type"] == "function_call", call["type"]
            output = _tool_output(call["call_id"], turn)
            history += [*http_final["output"], output]
            new_items = [output]
            rows.append(row)
    return {"turns": rows, "summary": _summary(rows)}


def _summary(rows: list[dict[str, Any]]) -> dict[str, Any]:
    early, late = rows[:10], rows[-10:]
    out: dict[str, Any] = {"n": len(rows)}
    for kind in ("http", "ws", "wsplain"):
        out[kind] = {
            "bytes_total": sum(r[f"{kind}_bytes"] for r in rows),
            "wire_bytes_total": sum(r.get(f"{kind}_wire_bytes", r[f"{kind}_bytes"]) for r in rows),
            "bytes_last_turn": rows[-1][f"{kind}_bytes"],
            "wire_bytes_last_turn": rows[-1].get(f"{kind}_wire_bytes", rows[-1][f"{kind}_bytes"]),
            "first_event_p50_s_first10": statistics.median(
                r[f"{kind}_first_event_s"] for r in early
            ),
            "first_event_p50_s_last10": statistics.median(r[f"{kind}_first_event_s"] for r in late),
            "cpu_per_turn_s": sum(r[f"{kind}_cpu_s"] for r in rows) / len(rows),
            "cpu_per_turn_s_last10": sum(r[f"{kind}_cpu_s"] for r in late) / len(late),
        }
    return out


async def idle_sockets(upstream_url: str, count: int, compression: str | None) -> dict[str, Any]:
    async with server_bench.Server(upstream_url) as server:
        url = f"ws://127.0.0.1:{server.port}/v1/responses"
        # one socket first, so what the first connection allocates once is not counted
        async with connect(url, compression=compression):
            before = procs.vm_rss_kib(server.pid)
            sockets = []
            try:
                for _ in range(count):
                    sockets.append(await connect(url, compression=compression, ping_interval=None))
                await asyncio.gather(*(s.ping() for s in sockets))  # all of them are served
                after = procs.vm_rss_kib(server.pid)
            finally:
                await asyncio.gather(*(s.close() for s in sockets), return_exceptions=True)
    return {
        "sockets": count,
        "compression": compression or "none",
        "rss_before_kib": before,
        "rss_after_kib": after,
        "kib_per_socket": (after - before) / count,
    }


def report(results: dict[str, Any]) -> str:
    s = results["session"]["summary"]
    h, w, p = s["http"], s["ws"], s["wsplain"]
    ms = 1000.0

    def row(label: str, key: str, scale: float = 1.0, fmt: str = "{:,.0f}") -> str:
        cells = [fmt.format(x[key] * scale) for x in (h, w, p)]
        return f"| {label} | " + " | ".join(cells) + " |"

    lines = [
        f"### A {s['n']}-turn Codex-like session: HTTP and WebSocket side by side",
        "",
        "| per session / per turn | HTTP | WebSocket, permessage-deflate | WebSocket, plain |",
        "|---|---:|---:|---:|",
        row("bytes client -> bridge, whole session (payload)", "bytes_total"),
        row("bytes client -> bridge, whole session (TCP, client side)", "wire_bytes_total"),
        row(f"bytes client -> bridge, turn {s['n']} (payload)", "bytes_last_turn"),
        row(f"bytes client -> bridge, turn {s['n']} (TCP)", "wire_bytes_last_turn"),
        row("time to first event p50, turns 1-10 (ms)", "first_event_p50_s_first10", ms, "{:.2f}"),
        row(
            "time to first event p50, last 10 turns (ms)", "first_event_p50_s_last10", ms, "{:.2f}"
        ),
        row("bridge CPU per turn, mean (ms)", "cpu_per_turn_s", ms, "{:.2f}"),
        row("bridge CPU per turn, last 10 turns (ms)", "cpu_per_turn_s_last10", ms, "{:.2f}"),
        "",
        "### Idle sockets",
        "",
        "| sockets | permessage-deflate | server RSS before | after | per socket |",
        "|---:|---|---:|---:|---:|",
    ]
    for row in results["idle"]:
        lines.append(
            f"| {row['sockets']:,} | {row['compression']} | {row['rss_before_kib'] / 1024:.1f} MiB"
            f" | {row['rss_after_kib'] / 1024:.1f} MiB | {row['kib_per_socket']:.1f} KiB |"
        )
    return "\n".join(lines)


async def measure(upstream: procs.Upstream, turns: int, sockets: int) -> dict[str, Any]:
    results: dict[str, Any] = {"load_start": os.getloadavg()}
    async with server_bench.Server(upstream.base_url) as server:
        results["session"] = await session(server, turns)
    results["idle"] = [
        await idle_sockets(upstream.base_url, sockets, "deflate"),
        await idle_sockets(upstream.base_url, sockets, None),
    ]
    results["load_end"] = os.getloadavg()
    return results


async def run_section(upstream: procs.Upstream, quick: bool) -> dict[str, Any]:
    """`bench/run.py --only websocket`: 20 turns and 200 sockets when quick."""
    return await measure(upstream, 20 if quick else 50, 200 if quick else 1000)


def markdown(results: dict[str, Any]) -> list[str]:
    return report(results).split("\n")


async def run(args: argparse.Namespace) -> dict[str, Any]:
    home = tempfile.mkdtemp(prefix="wirebridge-bench-")
    os.environ["WIREBRIDGE_HOME"] = home  # the bridges' store, not the user's
    with procs.Upstream() as upstream:
        return await measure(upstream, args.turns, args.sockets)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--turns", type=int, default=50)
    parser.add_argument("--sockets", type=int, default=1000)
    parser.add_argument("--out", default=str(Path(__file__).parent / "ws_results.json"))
    args = parser.parse_args()
    results = asyncio.run(run(args))
    Path(args.out).write_text(json.dumps(results, indent=1) + "\n")
    print(report(results))
    print(f"\nload average {results['load_start'][0]:.2f} -> {results['load_end'][0]:.2f}")


if __name__ == "__main__":
    main()
