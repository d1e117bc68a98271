"""The JavaScript tier's harness: pinned npm clients, a scripted model, a real `wirebridge serve`.

`scripts/install_js_clients.sh` installs the pinned packages once into the user cache; a test
module that imports `js_modules` makes `scripts/test.sh` install them (as `codex_binary` does
for Codex). Each test starts the scripted upstream and `wirebridge serve` as a process, runs one
scenario of a script in tests/js/ with `node`, and reads its JSON result from stdout; what went
upstream is in `upstream.requests`.

The scripted model calls `get_weather` once per user turn when tools are declared, then answers
with the tool's output; without tools it says which user message it answers. Every reply can
carry reasoning (`Thought N.` for the Nth request, as DeepSeek streams it in
`reasoning_content`), and behind `deepseek=True` a replayed tool-call turn without its reasoning
is refused with DeepSeek's 400.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import anyio
import pytest

from wirebridge.testing import Reply, ScriptedUpstream, SeenRequest, chat_chunk, sse_body
from wirebridge.testing.strict import requires_reasoning_content

from .test_server_cli import serve

ROOT = Path(__file__).resolve().parents[1]
INSTALL = ROOT / "scripts" / "install_js_clients.sh"
SCRIPTS = ROOT / "tests" / "js"
SECRET = "js-tier-secret-0123456789abcdef"
NODE_TIMEOUT_S = 120


def js_modules() -> Path:
    """The node_modules directory of the pinned clients, installed on first use."""
    if shutil.which("node") is None or shutil.which("npm") is None:
        pytest.skip("node/npm is not installed, so the JavaScript clients cannot run")
    done = subprocess.run(
        ["bash", str(INSTALL)], capture_output=True, text=True, timeout=600, check=False
    )
    if done.returncode == 3:
        pytest.skip(done.stderr.strip())
    assert done.returncode == 0, f"install_js_clients.sh failed:\n{done.stderr}"
    return Path(done.stdout.strip().splitlines()[-1])


def thought(n: int) -> str:
    return f"Thought {n}."


class WeatherModel:
    """The scripted model (see the module docstring); `reasoning` adds `reasoning_content`."""

    def __init__(self, *, reasoning: bool):
        self.reasoning = reasoning
        self.count = 0

    def __call__(self, request: SeenRequest) -> Reply:
        self.count += 1
        messages = request.json["messages"]
        users = [i for i, m in enumerate(messages) if m["role"] == "user"]
        after = messages[users[-1] + 1 :]
        chunks: list[dict[str, Any]] = [chat_chunk({"role": "assistant", "content": ""})]
        if self.reasoning:
            chunks.append(chat_chunk({"reasoning_content": thought(self.count)}))
        outputs = [m["content"] for m in after if m["role"] == "tool"]
        if request.json.get("tools") and not outputs:
            call = {
                "index": 0,
                "id": f"call_{self.count}",
                "type": "function",
                "function": {"name": "get_weather", "arguments": '{"city": "Paris"}'},
            }
            chunks.append(chat_chunk({"tool_calls": [call]}))
            chunks.append(chat_chunk({}, finish_reason="tool_calls"))
        else:
            text = f"The tool said: {outputs[-1]}" if outputs else f"Answer {len(users)}."
            chunks += [chat_chunk({"content": text[:5]}), chat_chunk({"content": text[5:]})]
            chunks.append(chat_chunk({}, finish_reason="stop"))
        return Reply(sse_body(chunks))


@dataclass
class Tier:
    upstream: ScriptedUpstream
    base_url: str  # the bridge's …/v1
    modules: Path
    bridge_log: list[str]

    def sent(self, index: int) -> list[dict[str, Any]]:
        """The messages of the `index`th upstream request, without the system prompt."""
        messages: list[dict[str, Any]] = self.upstream.requests[index].json["messages"]
        return [m for m in messages if m["role"] != "system"]

    async def run(self, script: str, scenario: str) -> Any:
        """`node tests/js/<script> <scenario>`; its JSON result (the test fails on an error)."""
        env = {
            "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
            "HOME": os.environ.get("HOME", "/tmp"),
            "WIREBRIDGE_BASE_URL": self.base_url,
            "WIREBRIDGE_JS_MODULES": str(self.modules),
            "AI_SDK_LOG_WARNINGS": "false",
            "OPENAI_AGENTS_DISABLE_TRACING": "1",
            "NO_PROXY": "127.0.0.1",
        }
        with anyio.fail_after(NODE_TIMEOUT_S):
            done = await anyio.run_process(
                ["node", str(SCRIPTS / script), scenario],
                env=env,
                check=False,
                stdin=subprocess.DEVNULL,
            )
        stdout, stderr = done.stdout.decode(), done.stderr.decode()
        assert done.returncode == 0, (
            f"node {script} {scenario} exited {done.returncode}:\n{stderr[-4000:]}\n"
            f"bridge:\n" + "\n".join(self.bridge_log[-20:])
        )
        return json.loads(stdout.strip().splitlines()[-1])


@asynccontextmanager
async def tier(
    tmp_path: Path,
    *,
    deepseek: bool = False,
    reasoning: bool | None = None,
    bridge_args: tuple[str, ...] = (),
) -> AsyncIterator[Tier]:
    """The upstream (DeepSeek-like with `deepseek`) and `wirebridge serve` in front of it."""
    modules = js_modules()
    model = WeatherModel(reasoning=deepseek if reasoning is None else reasoning)
    script = requires_reasoning_content(model) if deepseek else model
    async with ScriptedUpstream(default=script) as upstream:
        config = tmp_path / "bridge.toml"
        field = "reasoning_content" if deepseek else "reasoning"
        config.write_text(
            'model_provider = "scripted"\n\n[model_providers.scripted]\n'
            f'base_url = "{upstream.base_url}"\nreasoning_field = "{field}"\n'
        )
        argv = ("--config", str(config), *bridge_args)
        async with serve(*argv, env={"WIREBRIDGE_SECRET": SECRET}) as bridge:
            yield Tier(upstream, f"{bridge.url}/v1", modules, bridge.lines)
