"""`wirebridge serve` as a real process: the one-line start, safety refusals, logs, shutdown."""

from __future__ import annotations

import json
import os
import re
import shutil
import signal
import sys
import tempfile
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import anyio
import httpx
import pytest
from anyio.abc import Process
from anyio.streams.text import TextReceiveStream

from wirebridge.responses.testing import check_stream_invariants, parse_sse
from wirebridge.testing import Reply, ScriptedUpstream, chat_chunk, sse_body, text_body

pytestmark = pytest.mark.anyio

WIREBRIDGE = str(Path(sys.executable).parent / "wirebridge")
LISTENING = re.compile(r"listening on (http://127\.0\.0\.1:\d+)/v1")


class Serve:
    """A running `wirebridge serve`; its stderr lines are collected as they come."""

    def __init__(self, process: Process):
        self.process = process
        self.lines: list[str] = []
        self.url = ""
        self._ready = anyio.Event()

    async def read_stderr(self) -> None:
        assert self.process.stderr is not None
        buffer = ""
        async for text in TextReceiveStream(self.process.stderr):
            buffer += text
            *complete, buffer = buffer.split("\n")
            for line in complete:
                self.lines.append(line)
                found = LISTENING.search(line)
                if found and not self.url:
                    self.url = found.group(1)
                    self._ready.set()
        self._ready.set()  # exited: let a waiter see it

    @property
    def stderr(self) -> str:
        return "\n".join(self.lines)


@asynccontextmanager
async def serve(*args: str, env: dict[str, str] | None = None) -> AsyncIterator[Serve]:
    argv = [WIREBRIDGE, "serve", "--port", "0", *args]
    home = tempfile.mkdtemp(prefix="wirebridge-home-")  # the default store lives here
    full_env = {**os.environ, "WIREBRIDGE_HOME": home, **(env or {})}
    if "WIREBRIDGE_API_KEYS" not in (env or {}):
        full_env.pop("WIREBRIDGE_API_KEYS", None)
    async with (
        await anyio.open_process(argv, env=full_env) as process,
        anyio.create_task_group() as tg,
    ):
        server = Serve(process)
        tg.start_soon(server.read_stderr)
        with anyio.fail_after(20):
            await server._ready.wait()
        assert server.url, f"`wirebridge serve` did not start:\n{server.stderr}"
        try:
            yield server
        finally:
            if process.returncode is None:
                process.terminate()
            with anyio.fail_after(20):
                await process.wait()
            shutil.rmtree(home, ignore_errors=True)


async def run_cli(*args: str, env: dict[str, str] | None = None) -> tuple[int, str]:
    full_env = {**os.environ, "WIREBRIDGE_HOME": "/nonexistent-wirebridge-home", **(env or {})}
    full_env.pop("WIREBRIDGE_API_KEYS", None)
    with anyio.fail_after(30):
        done = await anyio.run_process([WIREBRIDGE, "serve", *args], env=full_env, check=False)
    return done.returncode, done.stderr.decode()


async def test_refuses_to_listen_beyond_loopback_without_keys() -> None:
    code, stderr = await run_cli("--host", "0.0.0.0")
    assert code == 2
    assert "refusing to listen on 0.0.0.0 without authentication" in stderr
    assert "WIREBRIDGE_API_KEYS" in stderr and "--insecure-no-auth" in stderr


async def test_upstream_given_as_an_endpoint_is_refused_with_a_hint() -> None:
    code, stderr = await run_cli("--upstream", "http://127.0.0.1:9/v1/chat/completions")
    assert code == 1
    assert "drop '/chat/completions'" in stderr


async def test_missing_config_file_is_named() -> None:
    code, stderr = await run_cli("--config", "/nonexistent/wirebridge.toml")
    assert code == 1 and "/nonexistent/wirebridge.toml" in stderr


async def test_one_line_start_passes_model_names_through_with_json_logs(
    upstream: ScriptedUpstream,
) -> None:
    upstream.push(Reply(text_body(["pong"])))
    async with serve("--upstream", upstream.base_url, "--log-format", "json") as server:
        async with httpx.AsyncClient(timeout=10) as http:
            response = await http.post(
                f"{server.url}/v1/responses", json={"model": "qwen3:8b", "input": "ping"}
            )
        assert response.status_code == 200
        assert response.json()["output"][0]["content"][0]["text"] == "pong"
        assert upstream.requests[0].json["model"] == "qwen3:8b"
        server.process.terminate()
        await server.process.wait()
    records = [json.loads(line) for line in server.lines if line.startswith("{")]
    assert len(records) == len([line for line in server.lines if line.strip()]), server.stderr
    access = [r for r in records if r["logger"] == "wirebridge.access"]
    assert access and access[0]["status"] == 200 and access[0]["model"] == "qwen3:8b"
    assert access[0]["path"] == "/v1/responses" and "duration_ms" in access[0]


async def test_config_file_routes_models(tmp_path: Path, upstream: ScriptedUpstream) -> None:
    listing = {"object": "list", "data": [{"id": "qwen2.5-coder:7b", "object": "model"}]}
    upstream.push(Reply(json.dumps(listing).encode(), content_type="application/json"))
    upstream.push(Reply(text_body(["ok"])))
    config = tmp_path / "config.toml"
    config.write_text(
        f"""
model_provider = "local"

[model_providers.local]
base_url = "{upstream.base_url}"

[models.coder]
provider = "local"
model = "qwen2.5-coder:7b"
"""
    )
    async with serve("--config", str(config)) as server, httpx.AsyncClient(timeout=10) as http:
        models = (await http.get(f"{server.url}/v1/models")).json()
        response = await http.post(
            f"{server.url}/v1/responses", json={"model": "coder", "input": "hi"}
        )
    assert response.status_code == 200
    # The routes, then what the default provider's upstream lists.
    assert [m["id"] for m in models["data"]] == ["coder", "qwen2.5-coder:7b"]
    assert upstream.requests[0].path == "/v1/models"
    assert upstream.requests[1].json["model"] == "qwen2.5-coder:7b"


async def test_api_keys_from_the_environment_are_enforced_and_never_logged(
    upstream: ScriptedUpstream,
) -> None:
    upstream.push(Reply(text_body(["ok"])))
    keys = {"WIREBRIDGE_API_KEYS": "sk-wb-alpha, sk-wb-beta"}
    args = ("--upstream", upstream.base_url, "--log-level", "debug")
    async with serve(*args, env=keys) as server, httpx.AsyncClient(timeout=10) as http:
        url = f"{server.url}/v1/responses"
        body: dict[str, Any] = {"model": "m", "input": "hi"}
        refused = await http.post(url, json=body, headers={"Authorization": "Bearer sk-wrong"})
        accepted = await http.post(url, json=body, headers={"Authorization": "Bearer sk-wb-beta"})
    assert refused.status_code == 401 and accepted.status_code == 200
    assert "sk-wb-" not in server.stderr and "sk-wrong" not in server.stderr


async def test_sigterm_lets_a_running_stream_finish(upstream: ScriptedUpstream) -> None:
    pieces = [sse_body([chat_chunk({"content": f"part{i} "})], done=False) for i in range(8)]
    pieces.append(sse_body([chat_chunk({}, finish_reason="stop")]))
    upstream.push(Reply(b"".join(pieces), pieces=pieces, drip_s=0.1))
    args = ("--upstream", upstream.base_url, "--shutdown-grace", "10")
    async with serve(*args) as server, httpx.AsyncClient(timeout=10) as http:
        payload = {"model": "m", "input": "count", "stream": True}
        received = b""
        signalled = False
        async with http.stream("POST", f"{server.url}/v1/responses", json=payload) as response:
            async for chunk in response.aiter_bytes():
                received += chunk
                if b"part0" in received and not signalled:
                    server.process.send_signal(signal.SIGTERM)  # mid-stream
                    signalled = True
        with anyio.fail_after(10):
            code = await server.process.wait()
    events = parse_sse(received)
    final = check_stream_invariants(events)
    assert events[-1]["type"] == "response.completed"
    assert final["output"][0]["content"][0]["text"] == "".join(f"part{i} " for i in range(8))
    assert code in (0, -signal.SIGTERM)  # uvicorn re-raises the signal once drained
    assert "Shutting down" in server.stderr


async def test_store_option_continues_a_conversation(
    tmp_path: Path, upstream: ScriptedUpstream
) -> None:
    pytest.importorskip("wirebridge.store")
    upstream.push(Reply(text_body(["first answer"])), Reply(text_body(["second answer"])))
    store = f"sqlite://{tmp_path / 'bridge.db'}"
    async with (
        serve("--upstream", upstream.base_url, "--store", store) as server,
        httpx.AsyncClient(timeout=10) as http,
    ):
        url = f"{server.url}/v1/responses"
        first = (await http.post(url, json={"model": "m", "input": "one"})).json()
        second = await http.post(
            url, json={"model": "m", "input": "two", "previous_response_id": first["id"]}
        )
    assert second.status_code == 200, second.text
    assert [m["content"] for m in upstream.requests[1].json["messages"]] == [
        "one",
        "first answer",
        "two",
    ]
    assert f"response store: sqlite {tmp_path / 'bridge.db'}" in server.stderr


async def test_responses_are_stored_by_default_and_no_store_keeps_none(
    upstream: ScriptedUpstream,
) -> None:
    upstream.push(Reply(text_body(["kept"])), Reply(text_body(["not kept"])))
    body = {"model": "m", "input": "hi"}
    async with serve("--upstream", upstream.base_url) as server:
        async with httpx.AsyncClient(timeout=10) as http:
            made = (await http.post(f"{server.url}/v1/responses", json=body)).json()
            fetched = await http.get(f"{server.url}/v1/responses/{made['id']}")
        home = server.stderr.split("response store: sqlite ", 1)[1].split()[0]
    assert fetched.status_code == 200 and fetched.json()["output"] == made["output"]
    assert home.endswith("responses.db")
    async with (
        serve("--upstream", upstream.base_url, "--no-store") as server,
        httpx.AsyncClient(timeout=10) as http,
    ):
        made = (await http.post(f"{server.url}/v1/responses", json=body)).json()
        fetched = await http.get(f"{server.url}/v1/responses/{made['id']}")
    assert fetched.status_code == 404 and "--no-store" in fetched.json()["error"]["message"]


async def test_store_and_no_store_exclude_each_other() -> None:
    code, stderr = await run_cli("--store", "sqlite:///x.db", "--no-store")
    assert code == 2 and "exclude each other" in stderr


async def test_unknown_store_scheme_is_refused_before_starting() -> None:
    code, stderr = await run_cli("--store", "mysql://db/x")
    assert code == 1 and "mysql" in stderr
