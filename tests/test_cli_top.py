"""`wirebridge top`: the real console script against a real bridge in front of scripted upstreams.

The bridge runs in the test's event loop with a key; one stream is held open by its scripted
upstream (`Reply.hold`) while `wirebridge top --once` runs as a subprocess, so the stream is in
flight when top reads. The rows themselves (windows, percentiles, reasons) are pinned through
the pure module `wirebridge.ops.top`, without a server.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import pty
import signal
import socket
import subprocess
import sys
from collections.abc import AsyncIterator
from pathlib import Path

import anyio
import click
import httpx
import pytest

from tests.ops_helpers import scrape_until
from wirebridge.commands.top import DEFAULT_URL, bridge_root
from wirebridge.ops import OpsSettings
from wirebridge.ops.top import (
    Overview,
    failure_reason,
    parse_metrics,
    parse_overview,
    percentile,
    provider_rows,
    snapshot,
)
from wirebridge.provider import Config, Provider, Route
from wirebridge.responses import BridgeSettings
from wirebridge.responses.runner import DEFAULT_PORT
from wirebridge.responses.testing import running_bridge
from wirebridge.testing import Reply, ScriptedUpstream, chat_chunk, sse_body, text_body

pytestmark = pytest.mark.anyio

SCRIPT = Path(sys.executable).parent / "wirebridge"
COMMAND = [str(SCRIPT)] if SCRIPT.exists() else [sys.executable, "-m", "wirebridge"]
CLI_TIMEOUT_S = 20  # a bound on a hung child, not a wait
BRIDGE_KEY = "top-key-90e4d7"
USAGE = {"prompt_tokens": 7, "completion_tokens": 3, "total_tokens": 10}


async def top(*args: str, key: str | None = None) -> subprocess.CompletedProcess[bytes]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("WB_", "WIREBRIDGE_"))}
    env.update({"COLUMNS": "200", "PYTHONIOENCODING": "utf-8", "NO_COLOR": "1"})
    if key is not None:
        env["WIREBRIDGE_API_KEY"] = key
    with anyio.fail_after(CLI_TIMEOUT_S):
        return await anyio.run_process([*COMMAND, "top", *args], env=env, check=False)


def cells(output: str, first: str) -> list[str]:
    """The cells of the table row whose first cell is `first`."""
    for line in output.splitlines():
        parts = [p.strip() for p in line.split("│")[1:-1]]
        if parts and parts[0] == first:
            return parts
    raise AssertionError(f"no row {first!r} in:\n{output}")


def two_providers(local: ScriptedUpstream, gpu: ScriptedUpstream) -> Config:
    providers = {
        "local": Provider(name="local", base_url=local.base_url),
        "gpu-box": Provider(name="gpu-box", base_url=gpu.base_url),
    }
    routes = {"coder": Route(provider="gpu-box", model="qwen3-coder-30b")}
    return Config(providers, "local", routes=routes)


@pytest.fixture
async def bridge_url() -> AsyncIterator[str]:
    """A keyed bridge with no traffic."""
    async with (
        ScriptedUpstream() as upstream,
        running_bridge(
            BridgeSettings(
                Config({"local": Provider(name="local", base_url=upstream.base_url)}, "local"),
                api_keys=frozenset({BRIDGE_KEY}),
            )
        ) as bridge,
    ):
        yield bridge.url


async def test_once_shows_the_stream_in_flight_and_each_providers_numbers() -> None:
    async with ScriptedUpstream() as local, ScriptedUpstream() as gpu:
        local.push(Reply(text_body(["fine"], usage=USAGE)))
        # The error echoes the bridge's key: the bridge scrubs it from the exchange top reads.
        local.push(
            Reply(
                json.dumps({"error": {"message": f"model not loaded ({BRIDGE_KEY})"}}).encode(),
                status=404,
                content_type="application/json",
            )
        )
        gpu.push(Reply(text_body(["done"], usage=USAGE)))
        release = asyncio.Event()
        first = sse_body([chat_chunk({"content": "thinking about it"})], done=False)
        gpu.push(Reply(first + b"data: [DONE]\n\n", hold=release, hold_after=len(first)))
        settings = BridgeSettings(two_providers(local, gpu), api_keys=frozenset({BRIDGE_KEY}))
        headers = {"Authorization": f"Bearer {BRIDGE_KEY}"}
        async with (
            running_bridge(settings) as bridge,
            httpx.AsyncClient(timeout=10, headers=headers) as http,
        ):
            url = f"{bridge.base_url}/responses"
            assert (await http.post(url, json={"model": "m", "input": "a"})).status_code == 200
            assert (await http.post(url, json={"model": "m", "input": "b"})).status_code == 404
            assert (await http.post(url, json={"model": "coder", "input": "c"})).status_code == 200
            held = {"model": "coder", "input": "write it", "stream": True}
            async with http.stream("POST", url, json=held) as stream:
                # Read until the first delta; keep the iterator, so the stream stays open.
                chunks = stream.aiter_bytes()
                seen = b""
                while b"response.output_text.delta" not in seen:
                    seen += await chunks.__anext__()
                overview = json.loads(
                    await scrape_until(
                        http,
                        f"{bridge.url}/console/api/overview",
                        lambda t: len(json.loads(t)["recent"]) == 3,
                    )
                )
                [live] = overview["live"]
                shown = await top("--once", "--url", bridge.base_url, key=BRIDGE_KEY)
                release.set()
                async for chunk in chunks:
                    seen += chunk
            assert b"response.completed" in seen
    output = shown.stdout.decode()
    assert shown.returncode == 0, shown.stderr.decode()
    assert "streams 1" in output
    stream_row = cells(output, live["id"])
    assert stream_row[1:3] == ["coder", "gpu-box:qwen3-coder-30b"]
    assert stream_row[4].endswith(" B") and int(stream_row[4][:-2].replace(",", "")) > 0
    assert stream_row[5] == "1"  # one upstream attempt
    # provider | req | req/min | errors | ttfb p50 | ttfb p95 | live | total | up fail
    local_row = cells(output, "local")
    assert local_row[1:4] == ["2", "2.0", "1"]
    assert local_row[4].endswith(("ms", " s")) and local_row[5].endswith(("ms", " s"))
    assert local_row[6:] == ["0", "2", "1"]
    gpu_row = cells(output, "gpu-box")
    assert gpu_row[1:4] == ["1", "1.0", "0"]
    assert gpu_row[6:] == ["1", "1", "0"]
    # The failure, with its reason as the bridge answered it (the key scrubbed out).
    failure = overview["recent"][1]
    row = cells(output, failure["id"])
    assert row[2:6] == ["m", "local:m", "404", "error"]
    assert "model not loaded" in row[7]
    assert BRIDGE_KEY not in output + shown.stderr.decode()


PIECES = ["one ", "two ", "three ", "four ", "five "]
# Sent before the hold: created, in_progress, the message's output_item and content_part, and
# one text delta per piece.
EVENTS_BEFORE_HOLD = 4 + len(PIECES)


def held_stream(release: asyncio.Event, *, usage_per_chunk: bool) -> Reply:
    """PIECES, then held until `release`. With `usage_per_chunk`, each piece reports usage so
    far as vLLM does when asked for continuous usage stats: twice as many tokens as pieces, so
    the upstream's count and the counted deltas differ."""

    def usage(n: int) -> dict[str, int] | None:
        return {"prompt_tokens": 7, "completion_tokens": 2 * n, "total_tokens": 7 + 2 * n}

    chunks = [chat_chunk({"role": "assistant", "content": ""})]
    chunks += [
        chat_chunk({"content": p}, usage=usage(i + 1) if usage_per_chunk else None)
        for i, p in enumerate(PIECES)
    ]
    head = sse_body(chunks, done=False)
    tail = sse_body([chat_chunk({}, finish_reason="stop")])
    return Reply(head + tail, hold=release, hold_after=len(head))


async def test_once_shows_how_far_each_held_stream_has_got() -> None:
    async with ScriptedUpstream() as local, ScriptedUpstream() as gpu:
        release = asyncio.Event()
        local.push(held_stream(release, usage_per_chunk=False))
        gpu.push(held_stream(release, usage_per_chunk=True))
        settings = BridgeSettings(two_providers(local, gpu), api_keys=frozenset({BRIDGE_KEY}))
        headers = {"Authorization": f"Bearer {BRIDGE_KEY}"}
        async with (
            running_bridge(settings) as bridge,
            httpx.AsyncClient(timeout=10, headers=headers) as http,
            contextlib.AsyncExitStack() as streams,
        ):
            url = f"{bridge.base_url}/responses"
            received: dict[str, bytes] = {}
            readers = []  # kept: a reader collected would close its stream
            for model in ("m", "coder"):
                body = {"model": model, "input": "count", "stream": True}
                stream = await streams.enter_async_context(http.stream("POST", url, json=body))
                readers.append(stream.aiter_bytes())
                seen = b""
                while seen.count(b"event: response.output_text.delta") < len(PIECES):
                    seen += await readers[-1].__anext__()
                received[model] = seen  # the stream stays open: its upstream holds
            overview = json.loads((await http.get(f"{bridge.url}/console/api/overview")).content)
            shown = await top("--once", "--url", bridge.base_url, key=BRIDGE_KEY)
            release.set()
    live = {x["model"]: x for x in overview["live"]}
    assert set(live) == {"m", "coder"}
    for model, seen in received.items():
        assert seen.count(b"event: ") == EVENTS_BEFORE_HOLD
        assert live[model]["events"] == EVENTS_BEFORE_HOLD
        assert live[model]["tokens_per_s"] > 0
    # No usage from the upstream yet: the deltas sent, counted. Usage on every chunk: its own.
    counted, reported = live["m"], live["coder"]
    assert (counted["output_tokens"], counted["output_tokens_source"]) == (5, "deltas")
    assert (reported["output_tokens"], reported["output_tokens_source"]) == (10, "usage")
    output = shown.stdout.decode()
    assert shown.returncode == 0, shown.stderr.decode()
    assert "streams 2" in output
    # id | model | upstream | age | sent | attempts | events | tokens | tok/s
    for row, tokens in (
        (cells(output, counted["id"]), "~5"),
        (cells(output, reported["id"]), "10"),
    ):
        assert row[6:8] == [str(EVENTS_BEFORE_HOLD), tokens]
        assert float(row[8]) > 0
    assert "~ output deltas counted" in output


@pytest.mark.parametrize(
    ("key", "said"),
    [(None, "needs a key (--api-key or $WIREBRIDGE_API_KEY)"), ("wrong-key-31", "refused the key")],
)
async def test_a_missing_or_refused_key_is_one_line_and_exit_1(
    bridge_url: str, key: str | None, said: str
) -> None:
    shown = await top("--once", "--url", bridge_url, key=key)
    assert shown.returncode == 1
    assert shown.stdout == b""
    assert shown.stderr.decode() == f"error: the bridge at {bridge_url} {said}\n"


async def test_the_key_flag_wins_and_is_never_shown(bridge_url: str) -> None:
    refused = await top("--once", "--url", bridge_url, "--api-key", "wrong-key-31", key=BRIDGE_KEY)
    assert refused.returncode == 1
    assert b"wrong-key-31" not in refused.stderr + refused.stdout
    shown = await top("--once", "--url", bridge_url, "--api-key", BRIDGE_KEY)
    assert shown.returncode == 0, shown.stderr.decode()
    assert BRIDGE_KEY.encode() not in shown.stdout + shown.stderr
    assert "no stream running" in shown.stdout.decode()


async def test_an_unreachable_bridge_is_one_line_and_exit_1() -> None:
    with socket.socket() as probe:  # a loopback port nobody listens on: bound, never listened
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
        shown = await top("--once", "--url", f"http://127.0.0.1:{port}", key=BRIDGE_KEY)
    stderr = shown.stderr.decode()
    assert shown.returncode == 1
    assert stderr.startswith(f"error: cannot reach the bridge at http://127.0.0.1:{port} (")
    assert stderr.count("\n") == 1 and "Traceback" not in stderr
    assert BRIDGE_KEY not in stderr


async def test_a_bridge_without_its_console_says_so() -> None:
    async with (
        ScriptedUpstream() as upstream,
        running_bridge(
            BridgeSettings(
                Config({"local": Provider(name="local", base_url=upstream.base_url)}, "local"),
                ops=OpsSettings(console=False),
            )
        ) as bridge,
    ):
        shown = await top("--once", "--url", bridge.url)
    assert shown.returncode == 1
    assert "serves no console data (started with --no-console?)" in shown.stderr.decode()


# Runs argv[1:] with SIGINT at its default disposition (see test_cli.py: a suite started in the
# background inherits SIGINT ignored, and the CLI rightly keeps an inherited ignore).
WITH_DEFAULT_SIGINT = [
    sys.executable,
    "-c",
    "import os, signal, sys; signal.signal(signal.SIGINT, signal.SIG_DFL); "
    "os.execvp(sys.argv[1], sys.argv[1:])",
]


async def test_the_live_view_redraws_on_a_terminal_and_ctrl_c_ends_it() -> None:
    async with ScriptedUpstream() as upstream:
        upstream.push(Reply(text_body(["fine"], usage=USAGE)))
        config = Config({"local": Provider(name="local", base_url=upstream.base_url)}, "local")
        async with running_bridge(config) as bridge:
            master, slave = pty.openpty()
            env = {k: v for k, v in os.environ.items() if not k.startswith("WIREBRIDGE_")}
            env.update({"TERM": "xterm-256color", "COLUMNS": "160", "LINES": "40"})
            screen = bytearray()

            def read() -> bool:
                """One read of the terminal; False once the child's side has closed."""
                try:
                    data = os.read(master, 65536)
                except OSError:  # EIO: the child side of the terminal closed
                    return False
                screen.extend(data)
                return bool(data)

            async def read_until(text: bytes) -> None:
                while text not in screen:
                    assert await anyio.to_thread.run_sync(read, abandon_on_cancel=True)

            try:
                with anyio.fail_after(CLI_TIMEOUT_S):
                    process = await anyio.open_process(
                        [
                            *WITH_DEFAULT_SIGINT,
                            *COMMAND,
                            "top",
                            "--url",
                            bridge.url,
                            "--interval",
                            "0.3",
                        ],
                        stdin=slave,
                        stdout=slave,
                        stderr=slave,
                        env=env,
                    )
                    os.close(slave)
                    slave = -1
                    await read_until(b"no stream running")
                    assert b"no request yet" in screen
                    async with httpx.AsyncClient(timeout=10) as http:
                        answer = await http.post(
                            f"{bridge.base_url}/responses", json={"model": "m", "input": "a"}
                        )
                        assert answer.status_code == 200
                    await read_until("│ local ".encode())  # a redraw shows the provider
                    process.send_signal(signal.SIGINT)
                    while await anyio.to_thread.run_sync(read, abandon_on_cancel=True):
                        pass  # drain, so the last frame is never blocked on a full terminal
                    code = await process.wait()
                    await process.aclose()
            finally:
                if slave >= 0:
                    os.close(slave)
                os.close(master)
    assert code == 0
    assert b"Traceback" not in screen


# The pure part: rows from the endpoints' JSON.


def overview(**fields: object) -> Overview:
    body = {"now": 1000.0, "live": [], "recent": [], "health": [], **fields}
    return parse_overview(json.dumps(body).encode())


def test_provider_rates_count_only_the_window_and_ttfb_only_of_successes() -> None:
    health = [
        [900.0, "a", True, 50.0, 80.0],  # before the 60 s window
        [950.0, "a", True, 10.0, 20.0],
        [960.0, "a", True, 30.0, 40.0],
        [970.0, "a", False, 1.0, 2.0],  # an error's TTFB is not a latency
        [990.0, "a", True, 20.0, 25.0],
        [999.0, "b", False, None, 5.0],
    ]
    live = [{"id": "x9", "provider": "b", "upstream_model": "m"}]
    a, b = provider_rows(overview(health=health, live=live), None, window_s=60)
    assert (a.provider, a.requests, a.errors, a.per_min) == ("a", 4, 1, 4.0)
    assert (a.ttfb_p50_ms, a.ttfb_p95_ms) == (20.0, 30.0)
    assert (a.live, a.total, a.upstream_failures) == (0, None, None)
    assert (b.requests, b.errors, b.ttfb_p50_ms, b.live) == (1, 1, None, 1)


def test_metrics_totals_skip_samples_without_a_provider() -> None:
    scrape = (
        "# TYPE wirebridge_requests counter\n"
        'wirebridge_requests_total{route="/v1/responses",status="200",provider="a",model="m",'
        'outcome="completed"} 3.0\n'
        'wirebridge_requests_total{route="/v1/responses",status="502",provider="a",model="m",'
        'outcome="error"} 2.0\n'
        'wirebridge_requests_total{route="/metrics",status="200",provider="",model="",'
        'outcome="ok"} 40.0\n'
        "# TYPE wirebridge_upstream_failures counter\n"
        'wirebridge_upstream_failures_total{provider="a",kind="http_502"} 2.0\n'
        "# TYPE wirebridge_streams_in_flight gauge\n"
        "wirebridge_streams_in_flight 1.0\n"
    )
    totals = parse_metrics(scrape)
    assert dict(totals.requests) == {"a": 5}
    assert dict(totals.upstream_failures) == {"a": 2}
    assert totals.in_flight == 1
    # A provider seen only in the counters (nothing in the window) still gets its row.
    [row] = snapshot(overview(), totals).providers
    assert (row.provider, row.requests, row.total, row.upstream_failures) == ("a", 0, 5, 2)


def test_failures_are_failed_or_error_outcomes_newest_first_not_cancels() -> None:
    recent = [
        {"id": "x4", "outcome": "failed", "status": 200, "provider": "a", "upstream_model": "m"},
        {"id": "x3", "outcome": "cancelled", "status": 200},
        {"id": "x2", "outcome": "error", "status": 400},
        {"id": "x1", "outcome": "completed", "status": 200},
    ]
    shot = snapshot(overview(recent=recent), reasons={"x4": "server_error: boom"})
    assert [(f.id, f.upstream, f.reason) for f in shot.failures] == [
        ("x4", "a:m", "server_error: boom"),
        ("x2", "", ""),
    ]


@pytest.mark.parametrize(
    ("sent", "reason"),
    [
        (
            '{"error":{"message":"no such model","code":"model_not_found"}}',
            "model_not_found: no such model",
        ),
        (
            'event: response.failed\ndata: {"type":"response.failed","response":'
            '{"error":{"code":"server_error","message":"upstream went away"}}}\n\n',
            "server_error: upstream went away",
        ),
        (
            'event: error\ndata: {"type":"error","code":null,"message":"too many events"}\n\n',
            "too many events",
        ),
        ("event: response.created\ndata: {not json\n\n", ""),
    ],
)
def test_a_failures_reason_is_the_error_the_bridge_sent(sent: str, reason: str) -> None:
    assert failure_reason(json.dumps({"sent": {"text": sent}}).encode()) == reason


def test_percentile_is_nearest_rank() -> None:
    assert percentile([], 0.5) is None
    assert percentile([5.0], 0.95) == 5.0
    assert percentile([float(i) for i in range(1, 101)], 0.95) == 95.0
    assert percentile([3.0, 1.0, 2.0, 4.0], 0.5) == 2.0


def test_the_url_may_be_the_client_base_url_and_the_default_is_serves() -> None:
    assert bridge_root("http://127.0.0.1:8787/v1/") == "http://127.0.0.1:8787"
    assert f"http://127.0.0.1:{DEFAULT_PORT}" == DEFAULT_URL
    with pytest.raises(click.BadParameter):
        bridge_root("127.0.0.1:8787")
