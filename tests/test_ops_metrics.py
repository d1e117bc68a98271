"""/metrics after real traffic through a real bridge: a success, a retried upstream, a failure
and a cancelled stream, each visible in the counters and histograms; who may scrape."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.ops_helpers import scrape_until, value
from wirebridge.ops import OpsSettings
from wirebridge.responses import BridgeSettings
from wirebridge.responses.testing import passthrough_config, running_bridge
from wirebridge.testing import Reply, ScriptedUpstream, chat_chunk, sse_body, text_body

pytestmark = pytest.mark.anyio


def stored(upstream: ScriptedUpstream, tmp_path: Path, **kwargs: Any) -> BridgeSettings:
    """A bridge in front of `upstream` with a SQLite store of its own."""
    return BridgeSettings(
        passthrough_config(upstream.base_url),
        store_at_startup=True,
        store_url=f"sqlite:///{tmp_path}/responses.db",
        **kwargs,
    )


USAGE = {
    "prompt_tokens": 11,
    "completion_tokens": 7,
    "total_tokens": 18,
    "prompt_tokens_details": {"cached_tokens": 3},
    "completion_tokens_details": {"reasoning_tokens": 2},
}


async def test_scripted_traffic_shows_in_counters_and_histograms(
    upstream: ScriptedUpstream, tmp_path: Path
) -> None:
    ok = text_body(["Hel", "lo"], usage=USAGE)
    first = sse_body([chat_chunk({"content": "hello"})], done=False)
    upstream.push(
        Reply(ok),  # 1: success
        Reply(b'{"error":{"message":"busy"}}', status=503, headers={"Retry-After": "0"}),
        Reply(ok),  # 2: retried once, then a success
        Reply(b'{"error":{"message":"no"}}', status=400, content_type="application/json"),  # 3
        Reply(first + b"data: [DONE]\n\n", stall_after=len(first)),  # 4: cancelled by the client
    )
    payload = {"model": "m1", "input": "hi", "stream": True}
    async with (
        running_bridge(stored(upstream, tmp_path)) as bridge,
        httpx.AsyncClient(timeout=10) as http,
    ):
        url = f"{bridge.base_url}/responses"
        for _ in range(2):
            done = await http.post(url, json=payload)
            assert done.status_code == 200 and "response.completed" in done.text
        refused = await http.post(url, json=payload)
        assert refused.status_code == 400
        async with http.stream("POST", url, json=payload) as response:
            async for chunk in response.aiter_bytes():
                if b"response.output_text.delta" in chunk:
                    break
        metrics_url = f"{bridge.url}/metrics"
        text = await scrape_until(
            http,
            metrics_url,
            lambda t: (
                value(t, "wirebridge_requests_total", outcome="cancelled") == 1
                and value(t, "wirebridge_streams_in_flight") == 0
            ),
        )

    route = "/v1/responses"
    labels = {"route": route, "provider": "upstream", "model": "m1"}
    assert (
        value(text, "wirebridge_requests_total", **labels, status="200", outcome="completed") == 2
    )
    assert value(text, "wirebridge_requests_total", **labels, status="400", outcome="error") == 1
    assert (
        value(text, "wirebridge_requests_total", **labels, status="200", outcome="cancelled") == 1
    )
    assert value(text, "wirebridge_requests_total", route=route) == 4
    # Histograms: one observation per request, in seconds, with +Inf holding them all.
    assert value(text, "wirebridge_time_to_first_byte_seconds_count", **labels) == 4
    assert value(text, "wirebridge_request_duration_seconds_count", **labels) == 4
    assert value(text, "wirebridge_request_duration_seconds_bucket", **labels, le="+Inf") == 4
    assert value(text, "wirebridge_request_duration_seconds_sum", **labels) > 0
    ttfb_sum = value(text, "wirebridge_time_to_first_byte_seconds_sum", **labels)
    assert 0 < ttfb_sum <= value(text, "wirebridge_request_duration_seconds_sum", **labels)
    # Tokens of the two completed answers.
    tokens = {"provider": "upstream", "model": "m1"}
    assert value(text, "wirebridge_tokens_total", **tokens, kind="input") == 22
    assert value(text, "wirebridge_tokens_total", **tokens, kind="output") == 14
    assert value(text, "wirebridge_tokens_total", **tokens, kind="reasoning") == 4
    assert value(text, "wirebridge_tokens_total", **tokens, kind="cached") == 6
    # Upstream: 5 attempts, one retry after a 503, failures by kind.
    assert value(text, "wirebridge_upstream_attempts_total", provider="upstream") == 5
    assert value(text, "wirebridge_upstream_retries_total", kind="http_503") == 1
    assert value(text, "wirebridge_upstream_retries_total") == 1
    assert value(text, "wirebridge_upstream_failures_total", kind="http_503") == 1
    assert value(text, "wirebridge_upstream_failures_total", kind="http_400") == 1
    assert value(text, "wirebridge_upstream_response_seconds_count", provider="upstream") == 5
    assert value(text, "wirebridge_streams_in_flight") == 0
    assert "wirebridge_websocket_connections" in text
    # The store: the two completed responses saved (the refused and cancelled ones are not).
    assert value(text, "wirebridge_store_operation_seconds_count", operation="save") == 2
    assert value(text, "wirebridge_store_errors_total") == 0


async def test_a_stream_in_flight_is_counted_while_it_runs(upstream: ScriptedUpstream) -> None:
    first = sse_body([chat_chunk({"content": "hello"})], done=False)
    upstream.push(Reply(first + b"data: [DONE]\n\n", stall_after=len(first)))
    payload = {"model": "m", "input": "hi", "stream": True}
    async with (
        running_bridge(passthrough_config(upstream.base_url)) as bridge,
        httpx.AsyncClient(timeout=10) as http,
        http.stream("POST", f"{bridge.base_url}/responses", json=payload) as r,
    ):
        async for chunk in r.aiter_bytes():
            if b"response.output_text.delta" in chunk:
                break
        during = (await http.get(f"{bridge.url}/metrics")).text
        live = (await http.get(f"{bridge.url}/console/api/overview")).json()["live"]
    assert value(during, "wirebridge_streams_in_flight") == 1
    assert [(x["model"], x["provider"], x["outcome"]) for x in live] == [
        ("m", "upstream", "running")
    ]


async def test_store_operations_are_timed_and_unknown_ids_are_no_failures(
    upstream: ScriptedUpstream, tmp_path: Path
) -> None:
    async with (
        running_bridge(stored(upstream, tmp_path)) as bridge,
        httpx.AsyncClient(timeout=10) as http,
    ):
        missing = await http.get(f"{bridge.base_url}/responses/resp_unknown")
        assert missing.status_code == 404
        body = {"model": "m", "input": "x", "previous_response_id": "resp_unknown"}
        assert (await http.post(f"{bridge.base_url}/responses", json=body)).status_code == 400
        text = await scrape_until(
            http,
            f"{bridge.url}/metrics",
            lambda t: value(t, "wirebridge_requests_total", route="/v1/responses") == 1,
        )
    # Unknown ids are answers, not store failures; both operations are timed.
    assert value(text, "wirebridge_store_operation_seconds_count", operation="get") == 1
    assert value(text, "wirebridge_store_operation_seconds_count", operation="load_chain") == 1
    assert value(text, "wirebridge_store_errors_total") == 0
    assert value(text, "wirebridge_requests_total", route="/v1/responses/{response_id}") == 1


@pytest.mark.parametrize("metrics_open", [False, True])
async def test_metrics_need_a_key_unless_opened(
    upstream: ScriptedUpstream, metrics_open: bool
) -> None:
    settings = BridgeSettings(
        passthrough_config(upstream.base_url),
        api_keys=frozenset({"sekrit-key-1"}),
        ops=OpsSettings(metrics_open=metrics_open),
    )
    async with running_bridge(settings) as bridge, httpx.AsyncClient(timeout=10) as http:
        anonymous = await http.get(f"{bridge.url}/metrics")
        keyed = await scrape_until(
            http,
            f"{bridge.url}/metrics",
            # the refused scrape is itself counted, with its status
            lambda t: metrics_open or value(t, "wirebridge_requests_total", status="401") == 1,
            headers={"Authorization": "Bearer sekrit-key-1"},
        )
    assert anonymous.status_code == (200 if metrics_open else 401)
    assert "wirebridge_time_to_first_byte_seconds" in keyed
    assert "sekrit-key-1" not in keyed


async def test_no_metrics_turns_the_route_off(upstream: ScriptedUpstream) -> None:
    settings = BridgeSettings(passthrough_config(upstream.base_url), ops=OpsSettings(metrics=False))
    async with running_bridge(settings) as bridge, httpx.AsyncClient(timeout=10) as http:
        assert (await http.get(f"{bridge.url}/metrics")).status_code == 404


async def test_websocket_connections_are_counted_while_open(upstream: ScriptedUpstream) -> None:
    from websockets.asyncio.client import connect

    async with (
        running_bridge(passthrough_config(upstream.base_url)) as bridge,
        httpx.AsyncClient(timeout=10) as http,
    ):
        ws_url = bridge.base_url.replace("http://", "ws://") + "/responses"
        async with connect(ws_url), connect(ws_url):
            both = (await http.get(f"{bridge.url}/metrics")).text
        after = await scrape_until(
            http,
            f"{bridge.url}/metrics",
            lambda t: value(t, "wirebridge_websocket_connections") == 0,
        )
    assert value(both, "wirebridge_websocket_connections") == 2
    assert value(after, "wirebridge_websocket_connections") == 0


async def test_websocket_turns_count_their_upstream_attempts_and_tokens(
    upstream: ScriptedUpstream, tmp_path: Path
) -> None:
    from websockets.asyncio.client import connect

    upstream.push(
        Reply(b'{"error":{"message":"busy"}}', status=503, headers={"Retry-After": "0"}),
        Reply(text_body(["Hi"], usage=USAGE)),  # turn 1: retried once after a 503
        Reply(text_body(["Again"], usage=USAGE)),  # turn 2
    )
    async with (
        running_bridge(stored(upstream, tmp_path)) as bridge,
        httpx.AsyncClient(timeout=10) as http,
    ):
        metrics_url = f"{bridge.url}/metrics"
        before = (await http.get(metrics_url)).text
        ws_url = bridge.base_url.replace("http://", "ws://") + "/responses"
        async with connect(ws_url) as ws:
            for text in ("hi", "again"):
                await ws.send(json.dumps({"type": "response.create", "model": "m1", "input": text}))
                while json.loads(await ws.recv())["type"] != "response.completed":
                    pass
            after = await scrape_until(
                http,
                metrics_url,
                lambda t: value(t, "wirebridge_tokens_total", kind="input") == 22,
            )

    def rise(name: str, **labels: str) -> float:
        return value(after, name, **labels) - value(before, name, **labels)

    # Every upstream attempt of both turns, with the labels an HTTP turn's have.
    assert rise("wirebridge_upstream_attempts_total", provider="upstream") == 3
    assert rise("wirebridge_upstream_retries_total", provider="upstream", kind="http_503") == 1
    assert rise("wirebridge_upstream_failures_total", provider="upstream", kind="http_503") == 1
    assert rise("wirebridge_upstream_response_seconds_count", provider="upstream") == 3
    tokens = {"provider": "upstream", "model": "m1"}
    assert rise("wirebridge_tokens_total", **tokens, kind="input") == 22
    assert rise("wirebridge_tokens_total", **tokens, kind="output") == 14
    assert rise("wirebridge_tokens_total", **tokens, kind="reasoning") == 4
    assert rise("wirebridge_tokens_total", **tokens, kind="cached") == 6
    # The store operations of each turn are timed too; the turns are no HTTP answers.
    assert rise("wirebridge_store_operation_seconds_count", operation="save") == 2
    assert rise("wirebridge_requests_total", route="/v1/responses") == 0
