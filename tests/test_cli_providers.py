"""`wirebridge providers`: built-ins and configured providers, from WIREBRIDGE_HOME or --config."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from .test_cli import err, out, run_cli, run_in_terminal, write_config

pytestmark = pytest.mark.anyio
BUILTINS = {
    "ollama": "http://localhost:11434/v1",
    "lmstudio": "http://localhost:1234/v1",
    "vllm": "http://localhost:8000/v1",
    "llamacpp": "http://localhost:8080/v1",
    "openai": "https://api.openai.com/v1",
    "openrouter": "https://openrouter.ai/api/v1",
    "deepseek": "https://api.deepseek.com/v1",
}
CONFIG = """
model_provider = "local"
model = "qwen3"

[model_providers.local]
base_url = "http://127.0.0.1:9999/v1"
env_key = "WB_PROV_KEY"
http_headers = { "X-Title" = "wb", "api-key" = "static-secret-value" }
query_params = { "api-version" = "2025-01-01", "key" = "query-secret-value" }
think_tags = "on"

[model_providers.ollama]
base_url = "http://gpu-box:11434/v1"

[models.fast]
provider = "local"
model = "qwen3-0.6b"
"""


async def providers_json(home: Path, *args: str, **env: str) -> dict[str, Any]:
    result = await run_cli("providers", "--json", *args, home=home, **env)
    assert result.returncode == 0, err(result)
    document: dict[str, Any] = json.loads(out(result))
    return document


async def test_builtins_without_a_config(tmp_path: Path) -> None:
    document = await providers_json(tmp_path)
    assert document["config"] is None and document["default_provider"] == "ollama"
    listed = {p["name"]: p["base_url"] for p in document["providers"]}
    assert listed == BUILTINS
    openai = next(p for p in document["providers"] if p["name"] == "openai")
    assert openai["env_key"] == "OPENAI_API_KEY" and openai["source"] == "built-in"


async def test_configured_providers_override_and_extend(tmp_path: Path) -> None:
    path = write_config(tmp_path, CONFIG)
    document = await providers_json(tmp_path, WB_PROV_KEY="set-but-never-printed")
    assert document["config"] == str(path)
    assert (document["default_provider"], document["default_model"]) == ("local", "qwen3")
    assert document["models"] == {"fast": {"provider": "local", "model": "qwen3-0.6b"}}
    by_name = {p["name"]: p for p in document["providers"]}
    assert set(by_name) == {*BUILTINS, "local"}
    assert by_name["ollama"]["base_url"] == "http://gpu-box:11434/v1"
    assert by_name["ollama"]["source"] == str(path)
    local = by_name["local"]
    assert local["default"] is True and local["think_tags"] == "on"
    assert local["env_key"] == "WB_PROV_KEY" and local["env_key_set"] is True


async def test_no_secret_is_ever_printed(tmp_path: Path) -> None:
    write_config(tmp_path, CONFIG)
    secrets = ("set-but-never-printed", "static-secret-value", "query-secret-value")
    for args in (["--json"], []):
        result = await run_cli("providers", *args, home=tmp_path, WB_PROV_KEY=secrets[0])
        assert result.returncode == 0, err(result)
        for secret in secrets:
            assert secret not in out(result)
    local = next(p for p in (await providers_json(tmp_path))["providers"] if p["name"] == "local")
    assert local["http_headers"] == {"X-Title": "wb", "api-key": "***"}
    assert local["query_params"] == {"api-version": "2025-01-01", "key": "***"}


async def test_piped_table_is_plain_columns(tmp_path: Path) -> None:
    write_config(tmp_path, CONFIG)
    result = await run_cli("providers", home=tmp_path)
    assert result.returncode == 0, err(result)
    lines = out(result).splitlines()
    assert lines[0].split() == ["NAME", "BASE", "URL", "API", "KEY", "SOURCE"]
    local = next(line for line in lines if line.startswith("local"))
    assert local.split()[:4] == ["local", "*", "http://127.0.0.1:9999/v1", "WB_PROV_KEY"]
    assert "(not set)" in local
    assert "\x1b[" not in out(result)  # no terminal codes in a pipe


async def test_terminal_gets_a_table(tmp_path: Path) -> None:
    code, screen = await run_in_terminal("providers", home=tmp_path)
    assert code == 0, screen
    assert "wirebridge providers" in screen and "https://api.openai.com/v1" in screen
    assert "━" in screen or "─" in screen  # drawn as a table


async def test_config_flag_and_bad_config(tmp_path: Path) -> None:
    other = write_config(tmp_path / "other", CONFIG)
    document = await providers_json(tmp_path / "home", "--config", str(other))
    assert document["config"] == str(other)
    write_config(tmp_path / "home", "[model_providers.x]\nbase_url = 3\n")
    result = await run_cli("providers", home=tmp_path / "home")
    assert result.returncode == 1 and "Traceback" not in err(result)
    assert err(result).startswith("error: provider 'x': base_url must be an http(s) URL")
