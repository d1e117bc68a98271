"""Codex CLI (pinned, from npm), unchanged, runs a tool turn through the bridge.

`scripts/install_codex.sh` installs `@openai/codex@0.171.0` once into the user cache; this test
runs it there (installing it first if npm is present) and skips only where npm is absent. Codex
talks `wire_api = "responses"` to the bridge, the bridge talks Chat Completions to the scripted
upstream. The upstream first asks for an `exec_command` call; Codex runs the command in its
sandbox and sends the output back; the upstream's final answer quotes the output it received,
and that answer is what Codex prints.

Codex must reach nothing but the bridge: every proxy variable points at a local trap that records
connection attempts (loopback is exempt via NO_PROXY), and the config turns off what would call
out (the plugin catalogue sync, update checks, analytics).
"""

from __future__ import annotations

import asyncio
import os
import re
import secrets
import shutil
import subprocess
from collections.abc import AsyncIterator
from pathlib import Path

import anyio
import pytest

from wirebridge.responses.testing import passthrough_config, running_bridge
from wirebridge.testing import Reply, ScriptedUpstream, SeenRequest, text_body, tool_call_body

pytestmark = [pytest.mark.anyio, pytest.mark.interop]

CODEX_VERSION = "0.171.0"
ROOT = Path(__file__).resolve().parents[1]
INSTALL = ROOT / "scripts" / "install_codex.sh"


def codex_binary() -> Path:
    cache = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache")
    binary = cache / "wirebridge" / f"codex-{CODEX_VERSION}" / "node_modules" / ".bin" / "codex"
    if binary.exists() and (binary.parent.parent.parent / ".installed").exists():
        return binary
    if shutil.which("npm") is None:
        pytest.skip(f"npm is not installed, so @openai/codex@{CODEX_VERSION} cannot be installed")
    done = subprocess.run(
        ["bash", str(INSTALL)], capture_output=True, text=True, timeout=600, check=False
    )
    assert done.returncode == 0, f"install_codex.sh failed:\n{done.stderr}"
    return Path(done.stdout.strip().splitlines()[-1])


class ProxyTrap:
    """A loopback 'proxy' that answers nothing and records the request line of every attempt."""

    def __init__(self) -> None:
        self.attempts: list[str] = []
        self.port = 0
        self._server: asyncio.Server | None = None

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            line = await asyncio.wait_for(reader.readline(), 5)
            self.attempts.append(line.decode("latin-1").strip() or "<connection, no request>")
            writer.write(b"HTTP/1.1 403 Forbidden\r\nContent-Length: 0\r\n\r\n")
            await writer.drain()
        except (TimeoutError, ConnectionError):
            self.attempts.append("<connection, no request>")
        finally:
            writer.close()

    async def __aenter__(self) -> ProxyTrap:
        self._server = await asyncio.start_server(self._serve, "127.0.0.1", 0)
        self.port = self._server.sockets[0].getsockname()[1]
        return self

    async def __aexit__(self, *exc: object) -> None:
        assert self._server is not None
        self._server.close()


def codex_config(base_url: str) -> str:
    return f"""\
model = "bridge-model"
model_provider = "wirebridge"
check_for_update_on_startup = false

[analytics]
enabled = false

[features]
plugins = false

[model_providers.wirebridge]
name = "wirebridge"
base_url = "{base_url}"
wire_api = "responses"
"""


def codex_env(home: Path, codex_home: Path) -> dict[str, str]:
    """A bare environment for Codex: its own HOME and CODEX_HOME, nothing of the caller's."""
    return {
        "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
        "HOME": str(home),
        "CODEX_HOME": str(codex_home),
        "LANG": "C.UTF-8",
        "NO_COLOR": "1",
        "RUST_LOG": "error",
    }


@pytest.fixture
async def trap() -> AsyncIterator[ProxyTrap]:
    async with ProxyTrap() as proxy:
        yield proxy


async def test_codex_exec_runs_a_tool_turn_through_the_bridge(
    tmp_path: Path, trap: ProxyTrap
) -> None:
    codex = codex_binary()
    token = f"bridge-ok-{secrets.token_hex(4)}"
    quoted: list[str] = []

    def model(request: SeenRequest) -> Reply:
        tool_outputs = [m["content"] for m in request.json["messages"] if m["role"] == "tool"]
        if not tool_outputs:
            return Reply(
                tool_call_body([("call_codex_1", "exec_command", {"cmd": f"echo {token}"})])
            )
        # Quote what the tool really printed (taken from this request), not what we asked for.
        found = re.search(r"bridge-ok-[0-9a-f]+", tool_outputs[-1])
        line = found.group(0) if found else "<no output>"
        quoted.append(line)
        return Reply(text_body([f"The command printed: {line}"]))

    home = tmp_path / "home"
    codex_home = tmp_path / "codex-home"
    workdir = tmp_path / "work"
    for folder in (home, codex_home, workdir):
        folder.mkdir()
    proxy = f"http://127.0.0.1:{trap.port}"
    env = codex_env(home, codex_home)
    env["NO_PROXY"] = env["no_proxy"] = "127.0.0.1,localhost"
    for name in ("HTTPS_PROXY", "HTTP_PROXY", "ALL_PROXY"):
        env[name] = env[name.lower()] = proxy

    async with (
        ScriptedUpstream(default=model) as upstream,
        running_bridge(passthrough_config(upstream.base_url)) as bridge,
    ):
        (codex_home / "config.toml").write_text(codex_config(bridge.base_url))
        with anyio.fail_after(180):
            done = await anyio.run_process(
                [
                    str(codex),
                    "exec",
                    "--skip-git-repo-check",
                    "--ephemeral",
                    "-s",
                    "read-only",
                    f"Run `echo {token}` and tell me what it printed.",
                ],
                cwd=workdir,
                env=env,
                check=False,
                stdin=subprocess.DEVNULL,
            )
    stdout, stderr = done.stdout.decode(), done.stderr.decode()
    assert done.returncode == 0, f"codex exited {done.returncode}:\n{stderr[-3000:]}"
    assert quoted == [token], f"the upstream saw no tool output with {token}:\n{stderr[-3000:]}"
    assert f"The command printed: {token}" in stdout, stdout
    assert len(upstream.requests) == 2
    second = upstream.requests[1].json["messages"]
    assert second[-2]["tool_calls"][0]["function"]["name"] == "exec_command"
    assert second[-1]["role"] == "tool" and second[-1]["tool_call_id"] == "call_codex_1"
    assert trap.attempts == [], f"Codex tried to reach other hosts: {trap.attempts}"
