"""`wirebridge doctor` as users run it: the installed console script in a subprocess (and click's
runner for the table), against the scripted upstream. Exit codes, progress lines on stderr, JSON
on stdout, `--write` merging into a commented config, keys never printed.
"""

from __future__ import annotations

import functools
import json
import os
import sys
from pathlib import Path
from typing import Any

import anyio
import pytest
from click.testing import CliRunner, Result

from wirebridge.cli import main
from wirebridge.provider import load_config
from wirebridge.testing import Reply, ScriptedUpstream

from . import doctor_profiles as profiles
from .conftest import free_port

pytestmark = pytest.mark.anyio
WIREBRIDGE = str(Path(sys.executable).parent / "wirebridge")
SECRET = "sk-doctor-test-0123456789"


async def wirebridge(
    *args: str, home: Path, env: dict[str, str] | None = None
) -> anyio.abc.Process | Any:
    """Run the real console script; returns the completed process."""
    environ = {**os.environ, "WIREBRIDGE_HOME": str(home), **(env or {})}
    return await anyio.run_process([WIREBRIDGE, "doctor", *args], env=environ, check=False)


async def invoke(*args: str, env: dict[str, str]) -> Result:
    """click's runner in a worker thread: the command runs its own event loop there."""
    runner = CliRunner()
    call = functools.partial(runner.invoke, main, ["doctor", *args], env=env)
    return await anyio.to_thread.run_sync(call)


async def test_console_script_prints_json_findings_and_a_progress_line_per_probe(
    tmp_path: Path,
) -> None:
    async with ScriptedUpstream(default=profiles.script(profiles.LLAMA_CPP_PYTHON)) as up:
        done = await wirebridge(
            "--base-url", up.base_url, "--model", "tiny", "--json", home=tmp_path
        )
    assert done.returncode == 0, done.stderr.decode()
    report = json.loads(done.stdout)
    assert report["provider"] == "local"
    assert report["model"] == "tiny"
    assert report["reachable"] is True
    found = report["findings"]
    assert found["include_usage"]["value"] == {"accepted": True, "honoured": False}
    assert found["tool_id_repeated"] == {
        "status": "info",
        "summary": "repeated in every chunk of a call (taken once: D3)",
        "value": True,
    }
    assert report["recommended"]["table"]["include_usage"] is False
    assert report["recommended"]["toml"].startswith("[model_providers.local]\n")
    assert [p["name"] for p in report["probes"]] == [
        "stream",
        "developer",
        "tool_required",
        "tool_parallel",
        "tool_named",
        "replay_reasoning",  # accepted at once: no further replay probes
    ]
    lines = done.stderr.decode().splitlines()
    chat = [r for r in up.requests if r.path == "/v1/chat/completions"]
    assert len(lines) == len(chat) == 6  # then 404s from /apply-template, /tokenize: no line
    assert lines[0].startswith("[1] stream: streaming, [DONE], finish_reason")
    assert "HTTP 200, 4 chunks (" in lines[0]
    assert lines[1].startswith("[2] developer: developer role ... HTTP 500: ")


async def test_write_merges_into_the_config_keeping_comments_and_other_settings(
    tmp_path: Path,
) -> None:
    config = tmp_path / "custom.toml"
    config.write_text(
        "# my wirebridge config\n"
        'model_provider = "box"  # the default\n'
        'model = "tiny"\n'
        "\n"
        "[model_providers.box]\n"
        'base_url = "http://127.0.0.1:9/v1"\n'
        "# headers for the proxy\n"
        'http_headers = { X-Team = "blue" }\n'
        'reasoning_field = "reasoning"  # mine, kept\n'
        "\n"
        "[models.fast]\n"
        'provider = "box"\n'
    )
    async with ScriptedUpstream(default=profiles.script(profiles.LLAMA_CPP_PYTHON)) as up:
        done = await wirebridge(
            "--provider",
            "box",
            "--base-url",
            up.base_url,
            "--config",
            str(config),
            "--write",
            home=tmp_path,
        )
    assert done.returncode == 0, done.stderr.decode()
    assert f"wrote [model_providers.box] to {config}" in done.stderr.decode()
    assert up.requests[0].headers["x-team"] == "blue"  # the provider's own headers were used
    assert config.read_text() == (
        "# my wirebridge config\n"
        'model_provider = "box"  # the default\n'
        'model = "tiny"\n'
        "\n"
        "[model_providers.box]\n"
        f'base_url = "{up.base_url}"\n'
        "# headers for the proxy\n"
        'http_headers = { X-Team = "blue" }\n'
        'reasoning_field = "reasoning"  # mine, kept\n'
        'developer_role = "system"  # role "developer" rejected: HTTP 500\n'
        "include_usage = false  # stream_options accepted but no usage chunk came\n"
        'think_tags = "off"  # no inline <think> tags in the content\n'
        "\n"
        "[models.fast]\n"
        'provider = "box"\n'
    )
    provider = load_config(config).provider("box")
    assert (provider.include_usage, provider.developer_role) == (False, "system")
    assert provider.http_headers == {"X-Team": "blue"}


async def test_table_output_and_write_to_the_default_config(tmp_path: Path) -> None:
    async with ScriptedUpstream(default=profiles.script(profiles.DEEPSEEK)) as up:
        result = await invoke(
            "--base-url",
            up.base_url,
            "-m",
            "deepseek-reasoner",
            "--write",
            env={"WIREBRIDGE_HOME": str(tmp_path), "COLUMNS": "200"},
        )
    assert result.exit_code == 0, result.output
    out = result.stdout
    assert "wirebridge doctor: local" in out
    assert "in delta.reasoning_content" in out
    assert 'reasoning_field = "reasoning_content"' in out
    written = load_config(tmp_path / "config.toml").provider("local")
    assert written.base_url == up.base_url
    assert written.reasoning_field == "reasoning_content"
    assert written.developer_role == "developer"


async def test_unreachable_upstream_exits_1_naming_it(tmp_path: Path) -> None:
    url = f"http://127.0.0.1:{free_port()}/v1"
    done = await wirebridge("--base-url", url, "--model", "m", "--json", home=tmp_path)
    assert done.returncode == 1
    assert json.loads(done.stdout)["reachable"] is False
    last = done.stderr.decode().splitlines()[-1]
    assert last.startswith(f"error: upstream unreachable: could not connect to {url}")


async def test_strange_server_exits_0_with_the_finding(tmp_path: Path) -> None:
    async with ScriptedUpstream(
        default=Reply(b"<html>login</html>", content_type="text/html")
    ) as up:
        done = await wirebridge("--base-url", up.base_url, "--model", "m", "--json", home=tmp_path)
    assert done.returncode == 0
    streaming = json.loads(done.stdout)["findings"]["streaming"]
    assert streaming["summary"] == (
        "does not work: HTTP 200 text/html, not an event stream: <html>login</html>"
    )


async def test_write_refuses_when_nothing_could_be_probed(tmp_path: Path) -> None:
    config = tmp_path / "config.toml"
    config.write_text('model = "m"  # untouched\n')
    async with ScriptedUpstream(default=Reply(b"nope", status=500)) as up:
        done = await wirebridge("--base-url", up.base_url, "-m", "m", "--write", home=tmp_path)
    assert done.returncode == 1
    assert "not written to" in done.stderr.decode()
    assert config.read_text() == 'model = "m"  # untouched\n'


async def test_invalid_config_is_not_touched(tmp_path: Path) -> None:
    config = tmp_path / "config.toml"
    config.write_text("model = \n")
    async with ScriptedUpstream(default=profiles.script(profiles.STANDARD)) as up:
        done = await wirebridge("--base-url", up.base_url, "-m", "m", "--write", home=tmp_path)
    assert done.returncode == 1
    assert "invalid TOML" in done.stderr.decode()
    assert up.requests == []  # the config is read before any request
    assert config.read_text() == "model = \n"


async def test_api_key_is_sent_as_bearer_and_never_printed(tmp_path: Path) -> None:
    async with ScriptedUpstream(default=profiles.script(profiles.NO_DEVELOPER)) as up:
        done = await wirebridge(
            "--base-url",
            up.base_url,
            "--env-key",
            "WB_DOCTOR_KEY",
            "-m",
            "m",
            "--json",
            home=tmp_path,
            env={"WB_DOCTOR_KEY": SECRET},
        )
    assert done.returncode == 0
    assert {r.headers["authorization"] for r in up.requests} == {f"Bearer {SECRET}"}
    assert SECRET not in done.stdout.decode() + done.stderr.decode()
    assert json.loads(done.stdout)["recommended"]["table"]["env_key"] == "WB_DOCTOR_KEY"


async def test_missing_key_variable_fails_before_any_request(tmp_path: Path) -> None:
    async with ScriptedUpstream(default=profiles.script(profiles.STANDARD)) as up:
        done = await wirebridge(
            "--base-url",
            up.base_url,
            "--env-key",
            "WB_DOCTOR_NO_SUCH_KEY",
            "-m",
            "m",
            home=tmp_path,
            env={"WB_DOCTOR_NO_SUCH_KEY": ""},
        )
    assert done.returncode == 1
    assert "WB_DOCTOR_NO_SUCH_KEY is missing or empty" in done.stderr.decode()
    assert up.requests == []


async def test_unknown_provider_and_missing_model_are_usage_failures(tmp_path: Path) -> None:
    unknown = await wirebridge("--provider", "nope", "-m", "m", home=tmp_path)
    assert unknown.returncode == 1
    assert "unknown provider 'nope'; known providers:" in unknown.stderr.decode()
    no_model = await wirebridge("--base-url", "http://127.0.0.1:9/v1", home=tmp_path)
    assert no_model.returncode == 2
    assert "--model is required" in no_model.stderr.decode()
