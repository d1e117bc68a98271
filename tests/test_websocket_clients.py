"""Real clients over the bridge's WebSocket transport: Codex 0.171 with `supports_websockets`
on its provider table, and the openai SDK's own `client.responses.connect()`."""

from __future__ import annotations

import json
import logging
import re
import secrets
from pathlib import Path
from typing import Any

import pytest
from openai import AsyncOpenAI

from tests.codex_support import (
    CodexHome,
    catalog,
    custom_provider_config,
)
from tests.test_codex_cli import ProxyTrap, trap  # noqa: F401  (the fixture)
from tests.test_codex_compaction import (
    Model,
    carries_summary,
    compacting_bridge,
    is_bridge_summary,
)
from wirebridge.responses import BridgeSettings
from wirebridge.responses.compaction import SUMMARY_PREFIX
from wirebridge.responses.socketwire import SocketSettings
from wirebridge.responses.testing import passthrough_config, running_bridge, validate_events
from wirebridge.testing import Reply, ScriptedUpstream, SeenRequest
from wirebridge.testing.bodies import text_body, tool_call_body

pytestmark = pytest.mark.anyio


def socket_lines(caplog: pytest.LogCaptureFixture) -> list[str]:
    return [r.getMessage() for r in caplog.records if '"WEBSOCKET ' in r.getMessage()]


def http_turns(caplog: pytest.LogCaptureFixture) -> list[str]:
    return [r.getMessage() for r in caplog.records if '"POST /v1/responses' in r.getMessage()]


@pytest.mark.interop
async def test_codex_runs_a_tool_loop_over_the_websocket(
    tmp_path: Path,
    trap: ProxyTrap,  # noqa: F811
    caplog: pytest.LogCaptureFixture,
) -> None:
    token = f"ws-ok-{secrets.token_hex(4)}"

    def model(request: SeenRequest) -> Reply:
        tool_outputs = [m["content"] for m in request.json["messages"] if m["role"] == "tool"]
        if not tool_outputs:
            return Reply(tool_call_body([("call_ws_1", "exec_command", {"cmd": f"echo {token}"})]))
        found = re.search(r"ws-ok-[0-9a-f]+", tool_outputs[-1])
        return Reply(text_body([f"It printed {found.group(0) if found else '<nothing>'}"]))

    caplog.set_level(logging.INFO, logger="wirebridge.access")
    codex = CodexHome(tmp_path, trap)
    async with (
        ScriptedUpstream(default=model) as upstream,
        running_bridge(passthrough_config(upstream.base_url)) as bridge,
    ):
        config = custom_provider_config(bridge.base_url, codex.catalog_path)
        codex.write(config + "supports_websockets = true\n", catalog())
        env = codex.env(RUST_LOG="warn")  # the fallback warning is a warn-level line
        run = await codex.exec(
            "--ephemeral",
            "-s",
            "read-only",
            f"Run `echo {token}` and say what it printed.",
            env=env,
        )
    assert run.returncode == 0, f"codex exited {run.returncode}:\n{run.stderr[-4000:]}"
    # Codex's fallback warning: "Falling back from WebSockets to HTTPS transport"
    assert "falling back" not in run.stderr.lower(), run.stderr[-3000:]
    assert "websocket" not in run.stderr.lower(), run.stderr[-3000:]
    assert f"It printed {token}" in run.stdout
    assert http_turns(caplog) == [], "Codex used HTTP"
    assert socket_lines(caplog), "no WebSocket connection was served"
    assert len(upstream.requests) == 2
    first, second = (r.json["messages"] for r in upstream.requests)
    # Codex sent only the function_call_output; the upstream got the whole history
    assert second[: len(first)] == first
    assert second[-2]["tool_calls"][0]["id"] == "call_ws_1"
    assert second[-1]["role"] == "tool" and token in second[-1]["content"]
    assert trap.attempts == [], f"Codex tried to reach other hosts: {trap.attempts}"


async def _events_of(connection: Any) -> list[dict[str, Any]]:
    events = []
    async for event in connection:
        events.append(event.to_dict())
        if event.type in ("response.completed", "response.failed", "response.incomplete", "error"):
            return events
    raise AssertionError("the connection ended before the response did")


async def test_the_openai_sdk_connect_does_a_text_turn_and_a_tool_round_trip(
    upstream: ScriptedUpstream,
) -> None:
    tools = [
        {
            "type": "function",
            "name": "lookup",
            "parameters": {"type": "object", "properties": {"q": {"type": "string"}}},
        }
    ]
    upstream.push(
        Reply(text_body(["Hello ", "there"])),
        Reply(tool_call_body([("call_sdk_1", "lookup", {"q": "tides"})])),
        Reply(text_body(["High tide at noon."])),
    )
    async with running_bridge(passthrough_config(upstream.base_url)) as bridge:
        client = AsyncOpenAI(base_url=bridge.base_url, api_key="unused", max_retries=0)
        async with client.responses.connect() as connection:
            await connection.response.create(model="m", input="hi", store=False)
            text = await _events_of(connection)
            await connection.response.create(
                model="m", input="tides?", tools=tools, store=False,
                previous_response_id=text[-1]["response"]["id"],
            )  # fmt: skip
            called = await _events_of(connection)
            call = called[-1]["response"]["output"][0]
            await connection.response.create(
                model="m",
                store=False,
                tools=tools,
                previous_response_id=called[-1]["response"]["id"],
                input=[
                    {"type": "function_call_output", "call_id": call["call_id"], "output": "noon"}
                ],
            )
            answered = await _events_of(connection)
        await client.close()
    for events in (text, called, answered):
        validate_events(events)
    assert text[-1]["response"]["output"][0]["content"][0]["text"] == "Hello there"
    assert (call["type"], call["name"], json.loads(call["arguments"])) == (
        "function_call",
        "lookup",
        {"q": "tides"},
    )
    assert answered[-1]["response"]["output"][0]["content"][0]["text"] == "High tide at noon."
    last = upstream.requests[2].json["messages"]
    assert [m["role"] for m in last] == ["user", "assistant", "user", "assistant", "tool"]
    assert last[-1] == {"role": "tool", "tool_call_id": "call_sdk_1", "content": "noon"}


@pytest.mark.interop
async def test_codex_starts_over_with_the_whole_input_when_the_chain_is_not_found(
    tmp_path: Path,
    trap: ProxyTrap,  # noqa: F811
    caplog: pytest.LogCaptureFixture,
) -> None:
    """A bridge that holds no chain (as when the previous response lives in another process's
    connection): `previous_response_not_found` makes Codex send the whole history again."""
    token = f"ws-ok-{secrets.token_hex(4)}"

    def model(request: SeenRequest) -> Reply:
        tool_outputs = [m["content"] for m in request.json["messages"] if m["role"] == "tool"]
        if not tool_outputs:
            return Reply(tool_call_body([("call_ws_2", "exec_command", {"cmd": f"echo {token}"})]))
        return Reply(text_body([f"Seen {token}" if token in tool_outputs[-1] else "no output"]))

    caplog.set_level(logging.INFO, logger="wirebridge.access")
    codex = CodexHome(tmp_path, trap)
    async with ScriptedUpstream(default=model) as upstream:
        settings = BridgeSettings(
            passthrough_config(upstream.base_url), websocket=SocketSettings(chain_entries=0)
        )
        async with running_bridge(settings) as bridge:
            config = custom_provider_config(bridge.base_url, codex.catalog_path)
            codex.write(config + "supports_websockets = true\n", catalog())
            run = await codex.exec(
                "--ephemeral", "-s", "read-only", f"Run `echo {token}`.", env=codex.env()
            )
    assert run.returncode == 0, f"codex exited {run.returncode}:\n{run.stderr[-4000:]}"
    assert f"Seen {token}" in run.stdout, run.stdout + run.stderr[-3000:]
    # Observed: Codex closes the socket on the error and sends the full input on a new one
    assert len(socket_lines(caplog)) >= 2, socket_lines(caplog)
    assert len(upstream.requests) == 2  # no turn was lost or sent twice upstream
    assert http_turns(caplog) == [], "Codex fell back to HTTP"
    last = upstream.requests[-1].json["messages"]
    assert last[-2]["tool_calls"][0]["id"] == "call_ws_2" and last[-1]["role"] == "tool"
    assert any(m["role"] == "user" for m in last)  # the whole history, from Codex itself


@pytest.mark.interop
async def test_codex_openai_provider_compacts_remotely_over_the_websocket(
    tmp_path: Path,
    trap: ProxyTrap,  # noqa: F811
    caplog: pytest.LogCaptureFixture,
) -> None:
    """`openai_base_url` at the bridge: Codex's built-in provider speaks WebSocket first; its
    remote compaction (v2) goes over the socket too (here on the same one); no HTTP turn."""
    summary = f"Summary {secrets.token_hex(4)}: the user asked to echo a token."
    model = Model(summary, is_bridge_summary)
    caplog.set_level(logging.INFO, logger="wirebridge.access")
    codex = CodexHome(tmp_path, trap)
    async with (
        ScriptedUpstream(default=model) as upstream,
        compacting_bridge(upstream, codex, RUST_LOG="warn") as env,
    ):
        run = await codex.exec("--ephemeral", "-s", "read-only", "Echo a token.", env=env)
    assert run.returncode == 0, f"codex exited {run.returncode}:\n{run.stderr[-4000:]}"
    assert "falling back" not in run.stderr.lower(), run.stderr[-3000:]
    assert model.summaries >= 1, "Codex never compacted through the bridge"
    assert http_turns(caplog) == [], "Codex used HTTP"
    assert socket_lines(caplog), "no WebSocket connection was served"
    after = next(i for i, r in enumerate(upstream.requests) if is_bridge_summary(r))
    later = upstream.requests[after + 1 :]
    assert later and all(carries_summary(r, SUMMARY_PREFIX + summary) for r in later)
    assert f"Finished {model.token}." in run.stdout
    assert trap.attempts == [], f"Codex tried to reach other hosts: {trap.attempts}"
