"""The web console in a real browser: Debian's Chromium, headless, driven by Playwright.

A bridge with keys and capture on serves scripted traffic; the page refuses to show anything
without a key, then with one lists the requests, opens an exchange down to the Chat payload
sent upstream, and downloads the replay file, which `wirebridge replay` decodes to the same
output the client received. Secrets (the bridge's key, the upstream's key) appear nowhere on
the page or in the downloads. Set WIREBRIDGE_CONSOLE_SCREENSHOT=PATH to keep a screenshot
(docs/console.png is made that way).
"""

from __future__ import annotations

import asyncio
import json
import os
import shutil
import sys
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import anyio
import httpx
import pytest

from wirebridge.ops import OpsSettings
from wirebridge.ops.findings import save_findings
from wirebridge.provider import Config, Provider, Route
from wirebridge.responses import BridgeSettings
from wirebridge.responses.testing import parse_sse, running_bridge
from wirebridge.testing import (
    Reply,
    ScriptedUpstream,
    chat_chunk,
    sse_body,
    text_body,
    tool_call_body,
)

pytestmark = pytest.mark.anyio

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]
WIREBRIDGE = str(Path(sys.executable).parent / "wirebridge")
BRIDGE_KEY = "console-key-5fd1c"
UPSTREAM_KEY = "sk-upstream-secret-7781"
TOOLS = [
    {
        "type": "function",
        "name": "get_weather",
        "description": "Weather in a city",
        "parameters": {"type": "object", "properties": {"city": {"type": "string"}}},
    }
]
USAGE = {"prompt_tokens": 40, "completion_tokens": 12, "total_tokens": 52}

if not Path(CHROMIUM).exists():
    pytest.skip(
        "Debian's chromium is not installed (scripts/install_chromium.sh)",
        allow_module_level=True,
    )


@pytest.fixture
async def browser() -> AsyncIterator[Any]:
    from playwright.async_api import async_playwright

    async with async_playwright() as playwright:
        launched = await playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        try:
            yield launched
        finally:
            await launched.close()


def two_providers(local: ScriptedUpstream, gpu: ScriptedUpstream) -> Config:
    providers = {
        "local": Provider(name="local", base_url=local.base_url),
        "gpu-box": Provider(name="gpu-box", base_url=gpu.base_url, env_key="WB_TEST_GPU_KEY"),
    }
    routes = {"coder": Route(provider="gpu-box", model="qwen3-coder-30b")}
    return Config(providers, "local", routes=routes)


def sent_items(body: str) -> list[dict[str, Any]]:
    """The items a client received, by their `response.output_item.done` events."""
    return [e["item"] for e in parse_sse(body.encode()) if e["type"] == "response.output_item.done"]


def replayed_items(lines: str) -> list[dict[str, Any]]:
    events = [json.loads(line) for line in lines.splitlines() if line.strip()]
    return [e["item"] for e in events if e["type"] == "output_item_done"]


def comparable(item: dict[str, Any]) -> dict[str, Any]:
    """What must match between a replay and the live answer (ids are made per run)."""
    keep = ("type", "name", "call_id", "arguments", "role")
    out = {k: item[k] for k in keep if k in item}
    if item.get("content"):
        out["text"] = "".join(part.get("text", "") for part in item["content"])
    return out


async def traffic(bridge_url: str, local: ScriptedUpstream, gpu: ScriptedUpstream) -> str:
    """Scripted requests; returns the SSE body of the tool-call turn (the one replayed)."""
    call = tool_call_body([("call_w1", "get_weather", {"city": "Paris"})], usage=USAGE)
    gpu.push(Reply(call, split=(5, 40), seed=3))
    for i in range(6):
        local.push(
            Reply(
                text_body(["The answer ", f"is {i}."], usage=USAGE), drip_s=0.002 * i, pieces=None
            )
        )
    local.push(
        Reply(
            b'{"error":{"message":"model not loaded"}}', status=404, content_type="application/json"
        )
    )
    local.push(Reply(text_body([f"echo {UPSTREAM_KEY} and {BRIDGE_KEY}"])))
    headers = {"Authorization": f"Bearer {BRIDGE_KEY}"}
    async with httpx.AsyncClient(timeout=10, headers=headers) as http:
        url = f"{bridge_url}/v1/responses"
        turn = await http.post(
            url,
            json={"model": "coder", "input": "Weather in Paris?", "tools": TOOLS, "stream": True},
        )
        assert turn.status_code == 200
        for i in range(6):
            answer = await http.post(
                url, json={"model": "qwen3:8b", "input": f"q{i}", "stream": True}
            )
            assert answer.status_code == 200
        assert (await http.post(url, json={"model": "qwen3:8b", "input": "x"})).status_code == 404
        echo = await http.post(url, json={"model": "qwen3:8b", "input": "leak?"})
        assert echo.status_code == 200
    return turn.text


async def test_console_shows_an_exchange_and_its_replay_file_replays(
    browser: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from playwright.async_api import expect  # waits without eval: the page's CSP refuses it

    monkeypatch.setenv("WB_TEST_GPU_KEY", UPSTREAM_KEY)
    doctor = tmp_path / "doctor.json"
    save_findings(
        {
            "provider": "gpu-box",
            "base_url": "http://gpu-box:8000/v1",
            "model": "qwen3-coder-30b",
            "reachable": True,
            "findings": {
                "streaming": {"status": "ok", "summary": "streams, ends with [DONE]"},
                "developer_role": {"status": "warn", "summary": "role developer: HTTP 400"},
                "usage": {"status": "ok", "summary": "usage chunk after the finish"},
            },
        },
        doctor,
    )
    async with ScriptedUpstream() as local, ScriptedUpstream() as gpu:
        settings = BridgeSettings(
            two_providers(local, gpu),
            api_keys=frozenset({BRIDGE_KEY}),
            ops=OpsSettings(capture=True, doctor_report=str(doctor)),
        )
        async with running_bridge(settings) as bridge:
            turn_body = await traffic(bridge.url, local, gpu)
            async with httpx.AsyncClient(timeout=10) as http:
                refused = await http.get(f"{bridge.url}/console/api/overview")
                assert refused.status_code == 401  # the data needs a key
            page = await browser.new_page(
                viewport={"width": 1400, "height": 1000}, accept_downloads=True
            )
            await page.goto(f"{bridge.url}/console")
            # Without a key: the key form, nothing else.
            await page.wait_for_selector("#auth", state="visible")
            assert await page.is_hidden("#main")
            await page.fill("#key", "wrong-key")
            await page.click("#auth button[type=submit]")
            await page.locator("#auth-message", has_text="refused").wait_for()
            assert await page.is_hidden("#main")
            # With the key: the requests, newest first.
            await page.fill("#key", BRIDGE_KEY)
            await page.click("#auth button[type=submit]")
            await page.wait_for_selector("#main", state="visible")
            # All nine (the page polls; the last is recorded just after its last byte).
            await expect(page.locator("#recent tbody tr[data-exchange]")).to_have_count(
                9, timeout=30_000
            )
            assert (
                await page.evaluate("sessionStorage.getItem('wirebridge.console.key')")
                == BRIDGE_KEY
            )
            # Open the tool-call turn: its Chat payload as sent to the gpu box.
            await page.locator("#recent tbody tr", has_text="coder").click()
            await page.wait_for_selector("#exchange", state="visible")
            await page.locator("#upstream-payload", has_text="messages").wait_for()
            payload = json.loads(await page.text_content("#upstream-payload") or "")
            assert payload["model"] == "qwen3-coder-30b"
            assert payload["stream"] is True
            assert payload["tools"][0]["function"]["name"] == "get_weather"
            assert payload["messages"][-1] == {"role": "user", "content": "Weather in Paris?"}
            request = await page.text_content("#part-request") or ""
            assert json.loads(request)["tools"] == TOOLS
            assert "chat.completion.chunk" in (await page.text_content("#part-upstream") or "")
            assert "response.completed" in (await page.text_content("#part-sent") or "")
            summary = await page.text_content("#exchange-summary") or ""
            assert "gpu-box:qwen3-coder-30b" in summary and "tokens/s" in summary
            # Download the replay file and the request, and replay them offline.
            async with page.expect_download() as replay_download:
                await page.click("#download-replay")
            replay_file = tmp_path / "turn.sse"
            await (await replay_download.value).save_as(replay_file)
            async with page.expect_download() as request_download:
                await page.click("#download-request")
            request_file = tmp_path / "request.json"
            await (await request_download.value).save_as(request_file)
            # Providers and the doctor's findings are shown too.
            await page.wait_for_selector("#health .chart[data-provider='local'] svg polyline")
            await page.wait_for_selector("#health .chart[data-provider='gpu-box']")
            assert "developer_role" in (await page.text_content("#doctor") or "")
            shown = await page.content()
            shot = tmp_path / "console.png"
            await page.screenshot(path=str(shot), full_page=True)
            keep = os.environ.get("WIREBRIDGE_CONSOLE_SCREENSHOT")
            if keep:
                shutil.copyfile(shot, keep)
    # No secret anywhere: not the bridge's key, not the upstream's (masked in the headers,
    # scrubbed out of the echo the model sent back).
    downloads = replay_file.read_text() + request_file.read_text()
    for secret in (BRIDGE_KEY, UPSTREAM_KEY):
        assert secret not in shown
        assert secret not in downloads
    with anyio.fail_after(60):
        replay = await anyio.run_process(
            [WIREBRIDGE, "replay", "--json", "--tools", str(request_file), str(replay_file)]
        )
    replayed = [comparable(i) for i in replayed_items(replay.stdout.decode())]
    received = [comparable(i) for i in sent_items(turn_body)]
    assert replayed == received
    assert received[0]["name"] == "get_weather"
    assert json.loads(received[0]["arguments"]) == {"city": "Paris"}


async def test_a_live_stream_shows_how_far_it_has_got(browser: Any) -> None:
    """A stream held part way by its upstream: its row shows the events sent and the output
    deltas counted (marked `~`: the upstream has reported no usage yet)."""
    pieces = ["one ", "two ", "three "]
    head = sse_body(
        [chat_chunk({"role": "assistant", "content": ""})]
        + [chat_chunk({"content": p}) for p in pieces],
        done=False,
    )
    release = asyncio.Event()
    async with ScriptedUpstream() as local, ScriptedUpstream() as gpu:
        tail = sse_body([chat_chunk({}, finish_reason="stop")])
        local.push(Reply(head + tail, hold=release, hold_after=len(head)))
        settings = BridgeSettings(two_providers(local, gpu), api_keys=frozenset({BRIDGE_KEY}))
        headers = {"Authorization": f"Bearer {BRIDGE_KEY}"}
        async with (
            running_bridge(settings) as bridge,
            httpx.AsyncClient(timeout=10, headers=headers) as http,
        ):
            body = {"model": "qwen3:8b", "input": "count", "stream": True}
            async with http.stream("POST", f"{bridge.url}/v1/responses", json=body) as stream:
                reader = stream.aiter_bytes()
                seen = b""
                while seen.count(b"event: response.output_text.delta") < len(pieces):
                    seen += await reader.__anext__()
                page = await browser.new_page(viewport={"width": 1400, "height": 1000})
                await page.goto(f"{bridge.url}/console")
                await page.fill("#key", BRIDGE_KEY)
                await page.click("#auth button[type=submit]")
                await page.wait_for_selector("#live tbody tr[data-exchange]")
                row = await page.locator("#live tbody tr[data-exchange] td").all_text_contents()
                release.set()
    # exchange | model | provider | elapsed | bytes sent | events | tokens | tok/s
    assert row[1:3] == ["qwen3:8b", "local"]
    # created, in_progress, the message's added and content_part, one delta per piece
    assert row[5:7] == [str(4 + len(pieces)), f"~{len(pieces)}"]
    assert float(row[7]) > 0


async def test_echoed_secrets_are_scrubbed_from_the_exchange(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Checked through the API too: the page shows what it returns."""
    monkeypatch.setenv("WB_TEST_GPU_KEY", UPSTREAM_KEY)
    async with ScriptedUpstream() as local, ScriptedUpstream() as gpu:
        gpu.push(Reply(text_body([f"your key: {UPSTREAM_KEY}, mine: {BRIDGE_KEY}"])))
        settings = BridgeSettings(
            two_providers(local, gpu),
            api_keys=frozenset({BRIDGE_KEY}),
            ops=OpsSettings(capture=True),
        )
        headers = {"Authorization": f"Bearer {BRIDGE_KEY}"}
        async with (
            running_bridge(settings) as bridge,
            httpx.AsyncClient(timeout=10, headers=headers) as http,
        ):
            answer = await http.post(
                f"{bridge.url}/v1/responses", json={"model": "coder", "input": "x"}
            )
            assert UPSTREAM_KEY in answer.text  # the client gets what the model said
            assert BRIDGE_KEY in answer.text
            overview = (await http.get(f"{bridge.url}/console/api/overview")).json()
            exchange_id = overview["recent"][0]["id"]
            exchange = (await http.get(f"{bridge.url}/console/api/exchanges/{exchange_id}")).text
            replay = await http.get(f"{bridge.url}/console/api/exchanges/{exchange_id}/replay")
            assert gpu.requests[0].headers["authorization"] == f"Bearer {UPSTREAM_KEY}"
    assert UPSTREAM_KEY not in exchange and BRIDGE_KEY not in exchange
    assert UPSTREAM_KEY not in replay.text and BRIDGE_KEY not in replay.text
    shown = json.loads(exchange)
    assert shown["request"]["headers"]["authorization"] == "***"
    assert shown["upstream_request"]["headers"]["authorization"] == "***"
    assert "***" in shown["upstream_body"]["text"] and "***" in shown["sent"]["text"]


async def test_console_page_is_served_from_the_package_with_no_outside_source(
    tmp_path: Path,
) -> None:
    async with ScriptedUpstream() as local, ScriptedUpstream() as gpu:
        settings = BridgeSettings(two_providers(local, gpu), api_keys=frozenset({BRIDGE_KEY}))
        async with running_bridge(settings) as bridge, httpx.AsyncClient(timeout=10) as http:
            page = await http.get(f"{bridge.url}/console")
            script = await http.get(f"{bridge.url}/console/static/console.js")
            missing = await http.get(f"{bridge.url}/console/static/nothing.js")
            escape = await http.get(f"{bridge.url}/console/static/%2e%2e%2fapp.py")
    assert page.status_code == 200 and "text/html" in page.headers["content-type"]
    assert "default-src 'self'" in page.headers["content-security-policy"]
    assert script.status_code == 200
    assert missing.status_code == 404 and escape.status_code == 404
    for text in (page.text, script.text):
        assert "http://" not in text.replace("http://www.w3.org/2000/svg", "")
        assert "https://" not in text
