"""`wirebridge codex`, then real Codex CLI 0.171 through `wirebridge serve`: Codex knows the model.

For each server kind the scripted upstream imitates (llama.cpp, vLLM, Ollama, LM Studio, and a
plain OpenAI-style list), `wirebridge codex` probes it, writes the catalog and merges Codex's
config; Codex then runs a turn without warning "Model metadata ... not found", and sends its
`apply_patch` tool and the catalog's prompt. A control run without the catalog shows the warning,
so the check can fail. Codex also fetches the catalog from the bridge (`model_catalog_url` with
`env_key`, no catalog file at all), and the built-in `openai` provider setup works the same way.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tomllib
from pathlib import Path

import anyio
import pytest

from wirebridge.testing import Reply, ScriptedUpstream, SeenRequest, text_body
from wirebridge.testing.servers import SERVER_KINDS, ServedModel, ServerKind, model_server

from .test_codex_cli import codex_binary, codex_env
from .test_server_cli import Serve, serve

pytestmark = [pytest.mark.anyio, pytest.mark.interop]

WIREBRIDGE = str(Path(sys.executable).parent / "wirebridge")
WARNING = "Model metadata for `qwen3:8b` not found"
MODELS = [ServedModel("qwen3:8b", 16_384), ServedModel("qwen3:32b", 40_960)]
WINDOW: dict[ServerKind, int] = {
    "llama.cpp": 16_384,
    "vllm": 16_384,
    "ollama": 16_384,
    "lmstudio": 16_384,
    "openai": 12_000,  # from --context-window: the server does not say
}
# The user's own Codex config, which `wirebridge codex` must merge into, keeping it.
USER_CONFIG = """\
# keep Codex local in tests
check_for_update_on_startup = false

[analytics]
enabled = false  # no telemetry

[features]
plugins = false
"""


class Chat:
    """The upstream's Chat Completions side: answers, and records what Codex sent."""

    def __init__(self) -> None:
        self.seen: list[dict[str, object]] = []

    def __call__(self, request: SeenRequest) -> Reply:
        self.seen.append(request.json)
        return Reply(text_body(["Setup works."]))

    def tool_names(self) -> list[str]:
        tools = self.seen[-1].get("tools") or []
        assert isinstance(tools, list)
        return [t["function"]["name"] for t in tools]

    def system_prompt(self) -> str:
        messages = self.seen[-1]["messages"]
        assert isinstance(messages, list)
        content = messages[0]["content"]
        return content if isinstance(content, str) else "".join(p["text"] for p in content)


def folders(tmp_path: Path) -> tuple[Path, Path, Path]:
    home, codex_home, work = tmp_path / "home", tmp_path / "codex-home", tmp_path / "work"
    for folder in (home, codex_home, work):
        folder.mkdir()
    (codex_home / "config.toml").write_text(USER_CONFIG)
    return home, codex_home, work


async def wirebridge_codex(*args: str, env: dict[str, str] | None = None) -> str:
    """Run `wirebridge codex ...`; its stdout, after checking it exited 0."""
    with anyio.fail_after(120):
        done = await anyio.run_process(
            [WIREBRIDGE, "codex", *args],
            check=False,
            env={**os.environ, **(env or {})},
            stdin=subprocess.DEVNULL,
        )
    assert done.returncode == 0, f"wirebridge codex failed:\n{done.stderr.decode()}"
    return done.stdout.decode()


async def codex_setup(
    upstream: ScriptedUpstream, bridge: Serve, codex_home: Path, *args: str
) -> str:
    """`wirebridge codex` for `qwen3:8b`: probe `upstream`, point Codex (its config in
    `codex_home`) at `bridge`; more options in `args`."""
    return await wirebridge_codex(
        "--upstream",
        upstream.base_url,
        "--bridge-url",
        f"{bridge.url}/v1",
        "--codex",
        str(codex_binary()),
        "--codex-home",
        str(codex_home),
        "--model",
        "qwen3:8b",
        *args,
    )


async def run_codex(home: Path, codex_home: Path, work: Path, **extra_env: str) -> str:
    """`codex exec` in the temp homes; its stderr, after checking it exited 0."""
    env = {**codex_env(home, codex_home), **extra_env}
    with anyio.fail_after(180):
        done = await anyio.run_process(
            [str(codex_binary()), "exec", "--skip-git-repo-check", "--ephemeral", "hi"],
            cwd=work,
            env=env,
            check=False,
            stdin=subprocess.DEVNULL,
        )
    stderr = done.stderr.decode()
    assert done.returncode == 0, f"codex exited {done.returncode}:\n{stderr[-3000:]}"
    assert "Setup works." in done.stdout.decode()
    return stderr


@pytest.mark.parametrize("kind", SERVER_KINDS)
async def test_after_wirebridge_codex_codex_knows_the_model(
    kind: ServerKind, tmp_path: Path
) -> None:
    home, codex_home, work = folders(tmp_path)
    chat = Chat()
    window = ["--context-window", "12000"] if kind == "openai" else []
    async with (
        ScriptedUpstream(default=model_server(kind, MODELS, chat)) as upstream,
        serve("--upstream", upstream.base_url) as bridge,
    ):
        await codex_setup(upstream, bridge, codex_home, *window)
        stderr = await run_codex(home, codex_home, work)

    config_text = (codex_home / "config.toml").read_text()
    config = tomllib.loads(config_text)
    assert "# no telemetry" in config_text and config["features"]["plugins"] is False
    assert config["model"] == "qwen3:8b" and config["model_provider"] == "wirebridge"
    catalog_file = codex_home / "wirebridge-models.json"
    assert config["model_catalog_json"] == str(catalog_file)
    catalog = json.loads(catalog_file.read_text())
    windows = {e["slug"]: e["context_window"] for e in catalog["models"]}
    assert windows["qwen3:8b"] == WINDOW[kind]
    assert WARNING not in stderr, stderr[-3000:]
    assert "apply_patch" in chat.tool_names()
    entry = next(e for e in catalog["models"] if e["slug"] == "qwen3:8b")
    prompt_sent = entry["base_instructions"] in chat.system_prompt()
    assert prompt_sent, "Codex did not send the catalog's base_instructions"


async def test_without_the_catalog_codex_warns(tmp_path: Path) -> None:
    """The control: the same run with no catalog logs the warning the tests above look for."""
    home, codex_home, work = folders(tmp_path)
    chat = Chat()
    async with (
        ScriptedUpstream(default=model_server("vllm", MODELS, chat)) as upstream,
        serve("--upstream", upstream.base_url) as bridge,
    ):
        (codex_home / "config.toml").write_text(
            f'model = "qwen3:8b"\nmodel_provider = "wirebridge"\n{USER_CONFIG}\n'
            "[model_providers.wirebridge]\n"
            f'name = "wirebridge"\nbase_url = "{bridge.url}/v1"\nwire_api = "responses"\n'
        )
        stderr = await run_codex(home, codex_home, work)
    assert WARNING in stderr
    assert "apply_patch" not in chat.tool_names()


async def test_codex_fetches_the_catalog_from_the_bridge(tmp_path: Path) -> None:
    home, codex_home, work = folders(tmp_path)
    chat = Chat()
    key = "bridge-key-for-codex"
    async with (
        ScriptedUpstream(default=model_server("llama.cpp", MODELS[:1], chat)) as upstream,
        serve(
            "--upstream",
            upstream.base_url,
            env={"WIREBRIDGE_API_KEYS": key, "WIREBRIDGE_CODEX": str(codex_binary())},
        ) as bridge,
    ):
        # No --upstream: the running bridge's own catalog says what it serves.
        out = await wirebridge_codex(
            "--bridge-url",
            f"{bridge.url}/v1",
            "--codex-home",
            str(codex_home),
            "--env-key",
            "WB_TEST_BRIDGE_KEY",
            "--catalog-url",
            env={"WB_TEST_BRIDGE_KEY": key},
        )
        stderr = await run_codex(home, codex_home, work, WB_TEST_BRIDGE_KEY=key)
    assert "16,384" in out
    config = tomllib.loads((codex_home / "config.toml").read_text())
    assert "model_catalog_json" not in config
    table = config["model_providers"]["wirebridge"]
    assert table["model_catalog_url"] == f"{bridge.url}/v1/models"
    assert table["env_key"] == "WB_TEST_BRIDGE_KEY"
    assert not (codex_home / "wirebridge-models.json").exists(), "no catalog file is written"
    # Codex's own cache of what it fetched: proof that it asked the bridge.
    cached = json.loads((codex_home / "models_cache.json").read_text())
    assert "qwen3:8b" in json.dumps(cached)
    assert WARNING not in stderr, stderr[-3000:]
    assert "apply_patch" in chat.tool_names()
    assert key not in "\n".join(bridge.lines)


async def test_the_builtin_openai_provider_setup(tmp_path: Path) -> None:
    """`--openai-provider`: Codex's own provider, `openai_base_url` at the bridge, logged in
    with one of the bridge's keys; the catalog file works there too."""
    home, codex_home, work = folders(tmp_path)
    chat = Chat()
    key = "bridge-key-for-openai-provider"
    async with (
        ScriptedUpstream(default=model_server("vllm", MODELS, chat)) as upstream,
        serve("--upstream", upstream.base_url, env={"WIREBRIDGE_API_KEYS": key}) as bridge,
    ):
        await codex_setup(upstream, bridge, codex_home, "--openai-provider")
        with anyio.fail_after(60):
            login = await anyio.run_process(
                [str(codex_binary()), "login", "--with-api-key"],
                input=f"{key}\n".encode(),
                env=codex_env(home, codex_home),
                check=False,
            )
        assert login.returncode == 0, login.stderr.decode()
        stderr = await run_codex(home, codex_home, work)
    config = tomllib.loads((codex_home / "config.toml").read_text())
    assert config["model_provider"] == "openai"
    assert config["openai_base_url"] == f"{bridge.url}/v1"
    assert "model_providers" not in config
    assert WARNING not in stderr, stderr[-3000:]
    assert "apply_patch" in chat.tool_names()
