"""`wirebridge codex` as a process: dry runs, where models come from, and its one-line errors.

Against scripted model servers on loopback; `--instructions FILE` stands in for Codex's prompt
here (the runs with the real Codex binary are in test_codex_setup.py).
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import anyio
import pytest

from wirebridge.responses.settings import BridgeSettings
from wirebridge.responses.testing import passthrough_config, running_bridge
from wirebridge.testing import Reply, ScriptedUpstream
from wirebridge.testing.servers import ServedModel, model_server

pytestmark = pytest.mark.anyio

WIREBRIDGE = str(Path(sys.executable).parent / "wirebridge")
MODELS = [ServedModel("qwen3:8b", 16_384), ServedModel("phi4:14b", 4_096)]
OUR_TEXT = "Our own test instructions."


@dataclass
class Done:
    code: int
    out: str
    err: str


def closed_port_url() -> str:
    """A loopback URL nothing listens on (no running bridge there)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    return f"http://127.0.0.1:{port}/v1"


async def run(tmp_path: Path, *args: str, env: dict[str, str] | None = None) -> Done:
    instructions = tmp_path / "instructions.txt"
    instructions.write_text(OUR_TEXT)
    full_env = {**os.environ, "WIREBRIDGE_HOME": str(tmp_path / "wbhome"), **(env or {})}
    with anyio.fail_after(60):
        done = await anyio.run_process(
            [
                WIREBRIDGE,
                "codex",
                "--codex-home",
                str(tmp_path / "codex-home"),
                "--instructions",
                str(instructions),
                "--bridge-url",
                closed_port_url(),
                *args,
            ],
            check=False,
            env=full_env,
            stdin=subprocess.DEVNULL,
        )
    return Done(done.returncode, done.stdout.decode(), done.stderr.decode())


async def test_dry_run_prints_the_config_and_catalog_and_writes_nothing(tmp_path: Path) -> None:
    async with ScriptedUpstream(default=model_server("vllm", MODELS, Reply(b""))) as up:
        done = await run(tmp_path, "--upstream", up.base_url, "--dry-run")
    assert done.code == 0, done.err
    assert 'model_provider = "wirebridge"' in done.out and 'wire_api = "responses"' in done.out
    assert '"context_window": 16384' in done.out and '"context_window": 4096' in done.out
    assert f"<{len(OUR_TEXT)} characters from Codex>" in done.out
    assert not (tmp_path / "codex-home").exists()


async def test_a_server_that_reports_no_window_needs_context_window(tmp_path: Path) -> None:
    async with ScriptedUpstream(default=model_server("openai", MODELS, Reply(b""))) as up:
        refused = await run(tmp_path, "--upstream", up.base_url)
        written = await run(tmp_path, "--upstream", up.base_url, "--context-window", "8192")
    assert refused.code == 1
    assert refused.err.startswith("error: no context window reported for qwen3:8b, phi4:14b")
    assert f"GET {up.base_url}/models: HTTP 200" in refused.err
    assert "--context-window" in refused.err and refused.err.count("\n") == 1
    assert written.code == 0, written.err
    catalog = json.loads((tmp_path / "codex-home" / "wirebridge-models.json").read_text())
    assert [e["context_window"] for e in catalog["models"]] == [8192, 8192]
    assert [e["base_instructions"] for e in catalog["models"]] == [OUR_TEXT, OUR_TEXT]


async def test_the_bridges_config_is_probed_when_no_bridge_runs(tmp_path: Path) -> None:
    async with ScriptedUpstream(default=model_server("ollama", MODELS, Reply(b""))) as up:
        (tmp_path / "wbhome").mkdir()
        (tmp_path / "wbhome" / "config.toml").write_text(
            f'model_provider = "local"\nmodel = "phi4:14b"\n\n'
            f'[model_providers.local]\nbase_url = "{up.base_url}"\n'
        )
        done = await run(tmp_path)
    assert done.code == 0, done.err
    config = (tmp_path / "codex-home" / "config.toml").read_text()
    assert 'model = "phi4:14b"' in config  # the bridge's default model
    catalog = json.loads((tmp_path / "codex-home" / "wirebridge-models.json").read_text())
    assert {e["slug"]: e["context_window"] for e in catalog["models"]} == {
        "phi4:14b": 4_096,
        "qwen3:8b": 16_384,
    }


async def test_doctor_findings_give_reasoning_levels(tmp_path: Path) -> None:
    doctor = tmp_path / "doctor.json"
    doctor.write_text(
        json.dumps(
            {
                "model": "qwen3:8b",
                "reachable": True,
                "findings": {
                    "reasoning": {
                        "status": "ok",
                        "summary": "in delta.reasoning_content",
                        "value": {"fields": ["reasoning_content"], "think_tags": "off"},
                    }
                },
            }
        )
    )
    async with ScriptedUpstream(default=model_server("vllm", MODELS, Reply(b""))) as up:
        done = await run(tmp_path, "--upstream", up.base_url, "--doctor-json", str(doctor))
    assert done.code == 0, done.err
    catalog = json.loads((tmp_path / "codex-home" / "wirebridge-models.json").read_text())
    levels = {e["slug"]: len(e["supported_reasoning_levels"]) for e in catalog["models"]}
    assert levels == {"qwen3:8b": 3, "phi4:14b": 0}


async def test_failures_are_one_line_and_leave_the_config_untouched(tmp_path: Path) -> None:
    home = tmp_path / "codex-home"
    home.mkdir()
    (home / "config.toml").write_text("model = \n")
    async with ScriptedUpstream(default=model_server("vllm", MODELS, Reply(b""))) as up:
        bad_toml = await run(tmp_path, "--upstream", up.base_url)
        unknown = await run(tmp_path, "--upstream", up.base_url, "--model", "nope")
        url = up.base_url
    gone = await run(tmp_path, "--upstream", url)
    usage = await run(tmp_path, "--catalog-url")
    assert bad_toml.code == 1 and "invalid TOML, not touched" in bad_toml.err
    assert (home / "config.toml").read_text() == "model = \n"
    assert unknown.code == 1 and "model 'nope' is not served" in unknown.err
    assert gone.code == 1 and gone.err.startswith("error: no models found from")
    assert usage.code == 2 and "--env-key" in usage.err
    for done in (bad_toml, unknown, gone):
        assert done.err.count("error: ") == 1


async def test_no_codex_binary_is_a_clear_error(tmp_path: Path) -> None:
    async with ScriptedUpstream(default=model_server("vllm", MODELS, Reply(b""))) as up:
        done = await anyio.run_process(
            [
                WIREBRIDGE,
                "codex",
                "--upstream",
                up.base_url,
                "--codex-home",
                str(tmp_path),
                "--codex",
                str(tmp_path / "no-codex"),
            ],
            check=False,
            stdin=subprocess.DEVNULL,
        )
    err = done.stderr.decode()
    assert done.returncode == 1
    assert err.startswith(f"error: no Codex binary found at {tmp_path / 'no-codex'}")
    assert "--instructions FILE" in err


async def test_a_running_bridge_that_wants_a_key_says_so(tmp_path: Path) -> None:
    async with (
        ScriptedUpstream(default=model_server("vllm", MODELS, Reply(b""))) as up,
        running_bridge(
            BridgeSettings(passthrough_config(up.base_url), api_keys=frozenset({"k-right"}))
        ) as bridge,
    ):
        no_key = await run(tmp_path, "--bridge-url", bridge.base_url)
        wrong = await run(
            tmp_path,
            "--bridge-url",
            bridge.base_url,
            "--env-key",
            "WB_TEST_KEY",
            env={"WB_TEST_KEY": "k-wrong"},
        )
        right = await run(
            tmp_path,
            "--bridge-url",
            bridge.base_url,
            "--env-key",
            "WB_TEST_KEY",
            env={"WB_TEST_KEY": "k-right"},
        )
    assert no_key.code == 1 and "requires one of its API keys: pass --env-key" in no_key.err
    assert wrong.code == 1 and "the key in $WB_TEST_KEY was refused" in wrong.err
    assert "k-wrong" not in wrong.err
    assert right.code == 0, right.err
    assert "next: export WB_TEST_KEY=<one of the bridge's WIREBRIDGE_API_KEYS>" in right.err
    config = (tmp_path / "codex-home" / "config.toml").read_text()
    assert 'env_key = "WB_TEST_KEY"' in config and "k-right" not in config
