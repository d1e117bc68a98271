"""`wirebridge doctor` against real llama.cpp servers: it finds what the captures show.

The captures in tests/fixtures/llamacpp/ (and the server tests next door) pin each server's
quirks: llama-server sends usage in its own `choices: []` chunk and `[DONE]`, streams a call's id
and name once, and answers a named tool_choice with whatever the model calls; llama-cpp-python
ignores `stream_options.include_usage`, repeats id and name in every tool-call chunk next to a
legacy `function_call`, parses no tool calls without a named tool_choice, and honours a named
one through a grammar. The doctor must report exactly those, on the "tool" scripted model (which
calls get_weather {"city": "Oslo"} when it may, and prints the Hermes text otherwise).
"""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path
from typing import Any

import anyio
import pytest

from wirebridge import Provider
from wirebridge.doctor import Diagnosis, diagnose

from .llamacpp import ServerPool, ServerProcess

pytestmark = [pytest.mark.interop, pytest.mark.anyio]


def findings(diagnosis: Diagnosis) -> dict[str, tuple[str, Any]]:
    """The findings of the chat probes (latency varies; input_tokens has its own tests)."""
    skip = ("latency", "input_tokens")
    return {f.key: (f.status, f.value) for f in diagnosis.findings if f.key not in skip}


async def run(server: ServerProcess) -> Diagnosis:
    provider = Provider(name=server.kind, base_url=server.base_url)
    return await diagnose(provider, server.alias, timeout_s=60)


async def test_doctor_on_llama_server(llamacpp_servers: ServerPool) -> None:
    diagnosis = await run(llamacpp_servers.get("llama-server", "tool"))
    assert findings(diagnosis) == {
        "streaming": ("ok", True),
        "done": ("ok", True),
        "finish_reasons": ("ok", ["stop", "tool_calls"]),
        "include_usage": ("ok", {"accepted": True, "honoured": True}),
        "developer_role": ("ok", True),
        "reasoning": ("info", {"fields": [], "think_tags": "off"}),
        "tool_required": ("ok", {"calls": 1, "name": "get_weather", "arguments_json": True}),
        "tool_parallel": ("warn", {"calls": 1}),  # the scripted model makes one call
        "tool_index": ("ok", "present"),
        "tool_id_repeated": ("ok", False),
        "tool_name_repeated": ("ok", False),
        "legacy_function_call": ("ok", False),
        "tool_named": ("warn", False),  # asked for get_time, the model called get_weather
        "replay": ("ok", {"field": "reasoning", "rejected": {}}),
    }
    assert diagnosis.finding("include_usage").summary == (
        "accepted and honoured: usage in its own chunk"
    )
    assert diagnosis.recommendation.table == {
        "base_url": diagnosis.base_url,
        "developer_role": "developer",
        "reasoning_field": "reasoning",
        "include_usage": True,
        "think_tags": "off",
        "tokenize": "llamacpp",  # /apply-template + /tokenize count the probe's prompt exactly
    }
    counted = diagnosis.finding("input_tokens")
    assert counted.status == "warn" and counted.value["detected"] == "llamacpp"
    assert counted.value["tokens"] == counted.value["prompt_tokens"] > 0
    latency = diagnosis.finding("latency").value
    assert latency["ttfb_ms"] > 0 and latency["chunks_per_s"] > 0


async def test_doctor_on_llama_cpp_python(llamacpp_servers: ServerPool) -> None:
    diagnosis = await run(llamacpp_servers.get("llama-cpp-python", "tool"))
    result = findings(diagnosis)
    replay = result.pop("replay")
    assert result == {
        "streaming": ("ok", True),
        "done": ("ok", True),
        "finish_reasons": ("ok", ["stop", "tool_calls"]),
        "include_usage": ("warn", {"accepted": True, "honoured": False}),
        "developer_role": ("warn", False),  # pydantic rejects the role, as HTTP 500
        "reasoning": ("info", {"fields": [], "think_tags": "off"}),
        "tool_required": ("fail", {"calls": 0}),  # the template handler parses no calls
        "tool_parallel": ("warn", {"calls": 0}),
        "tool_index": ("ok", "present"),
        "tool_id_repeated": ("info", True),
        "tool_name_repeated": ("info", True),
        "legacy_function_call": ("info", True),
        "tool_named": ("ok", True),  # the grammar makes the named call
    }
    assert diagnosis.finding("tool_required").summary.startswith(
        "no call: answered text instead ('<tool_call>"
    )
    # A replayed tool-call turn carries no `content` key, which its request model accepts.
    assert replay == ("ok", {"field": "reasoning", "rejected": {}})
    assert diagnosis.recommendation.table == {
        "base_url": diagnosis.base_url,
        "developer_role": "system",
        "reasoning_field": "reasoning",
        "include_usage": False,
        "think_tags": "off",
    }
    # no chat-template tokenizer endpoint (and no usage to check one against)
    counted = diagnosis.finding("input_tokens")
    assert (counted.status, counted.value["count"], counted.value["detected"]) == (
        "info",
        "none",
        None,
    )


async def test_console_script_sees_usage_only_from_llama_server(
    llama_server_url: str, llama_cpp_python_url: str, tmp_path: Path
) -> None:
    """The installed `wirebridge doctor`, on the text model of each server."""
    wirebridge = str(Path(sys.executable).parent / "wirebridge")
    env = {**os.environ, "WIREBRIDGE_HOME": str(tmp_path)}
    usage = {}
    for url in (llama_server_url, llama_cpp_python_url):
        done = await anyio.run_process(
            [wirebridge, "doctor", "--base-url", url, "-m", "text", "--json", "--timeout", "60"],
            env=env,
            check=False,
        )
        assert done.returncode == 0, done.stderr.decode()
        report = json.loads(done.stdout)
        assert report["findings"]["streaming"]["status"] == "ok"
        usage[url] = report["findings"]["include_usage"]["value"]
    assert usage == {
        llama_server_url: {"accepted": True, "honoured": True},
        llama_cpp_python_url: {"accepted": True, "honoured": False},
    }
