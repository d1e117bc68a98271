"""Metrics from two `wirebridge serve` processes on one PostgreSQL store, collected both ways:
one scrape per bridge (each counts its own requests), or prometheus_client's multiprocess mode
(`PROMETHEUS_MULTIPROC_DIR` shared by both: any one scrape sums them)."""

from __future__ import annotations

from pathlib import Path

import httpx
import pytest

from tests.ops_helpers import scrape_until, value
from tests.test_server_cli import serve
from tests.test_store_servers import postgres_url
from wirebridge.testing import Reply, ScriptedUpstream, text_body

pytestmark = [pytest.mark.anyio, pytest.mark.postgres]
__all__ = ["postgres_url"]  # a fixture used by name
ROUTE = "/v1/responses"


@pytest.mark.parametrize("shared_dir", [False, True], ids=["scrape-each", "multiproc-dir"])
async def test_two_bridges_on_one_postgres(
    upstream: ScriptedUpstream, postgres_url: str, tmp_path: Path, shared_dir: bool
) -> None:
    upstream.push(Reply(text_body(["one"])), Reply(text_body(["two"])))
    env: dict[str, str] = {}
    if shared_dir:
        (tmp_path / "prom").mkdir()
        env["PROMETHEUS_MULTIPROC_DIR"] = str(tmp_path / "prom")
    args = ("--upstream", upstream.base_url, "--store", postgres_url)
    async with (
        serve(*args, env=env) as first,
        serve(*args, env=env) as second,
        httpx.AsyncClient(timeout=10) as http,
    ):
        made = await http.post(f"{first.url}/v1/responses", json={"model": "m", "input": "a"})
        assert made.status_code == 200
        follow = {"model": "m", "input": "b", "previous_response_id": made.json()["id"]}
        continued = await http.post(f"{second.url}/v1/responses", json=follow)
        assert continued.status_code == 200  # the second bridge read the first one's response
        counted = 2 if shared_dir else 1  # a request is counted just after its last byte
        scrapes = [
            await scrape_until(
                http,
                f"{b.url}/metrics",
                lambda t: value(t, "wirebridge_requests_total", route=ROUTE) == counted,
            )
            for b in (first, second)
        ]
    for text in scrapes:
        if shared_dir:  # either scrape sees both processes
            assert value(text, "wirebridge_requests_total", route=ROUTE, status="200") == 2
            assert value(text, "wirebridge_store_operation_seconds_count", operation="save") == 2
            assert value(text, "wirebridge_upstream_attempts_total") == 2
        else:  # each scrape is its own bridge: Prometheus sums them by `instance`
            assert value(text, "wirebridge_requests_total", route=ROUTE, status="200") == 1
            assert value(text, "wirebridge_store_operation_seconds_count", operation="save") == 1
        assert value(text, "wirebridge_streams_in_flight") == 0
    load_chains = [
        value(t, "wirebridge_store_operation_seconds_count", operation="load_chain")
        for t in scrapes
    ]
    assert load_chains == ([1, 1] if shared_dir else [0, 1])
