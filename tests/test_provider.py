"""Provider options and Codex-compatible configuration loading."""

from __future__ import annotations

from pathlib import Path

import pytest

from wirebridge import Provider
from wirebridge.errors import ConfigError
from wirebridge.provider import BUILTIN_PROVIDERS, load_config, parse_config

CODEX_SECTION = """
model = "qwen3-coder"
model_provider = "ollama-remote"

# pasted from an old ~/.codex/config.toml
[model_providers.ollama-remote]
name = "Ollama on the GPU box"
base_url = "http://127.0.0.1:11434/v1"
wire_api = "chat"
env_key = "OLLAMA_KEY"
env_key_instructions = "Ask the admin for a key."
query_params = { api-version = "2025-04-01" }
http_headers = { X-Team = "infra" }
env_http_headers = { X-Secret = "TEAM_SECRET" }
request_max_retries = 500
stream_max_retries = 2
stream_idle_timeout_ms = 1000

[model_providers.deepseek-direct]
base_url = "https://api.deepseek.com/v1"
env_key = "DEEPSEEK_API_KEY"
reasoning_field = "reasoning_content"

[models."gpt-5"]
provider = "deepseek-direct"
model = "deepseek-chat"
"""


def test_a_pasted_codex_provider_section_loads(tmp_path: Path) -> None:
    path = tmp_path / "config.toml"
    path.write_text(CODEX_SECTION)
    config = load_config(path)
    remote = config.provider("ollama-remote")
    assert remote.name == "Ollama on the GPU box"
    assert remote.query_params == {"api-version": "2025-04-01"}
    assert remote.request_max_retries == 100  # capped, as Codex caps it
    assert remote.stream_max_retries == 2
    assert remote.stream_idle_timeout_ms == 1000
    assert config.default_provider == "ollama-remote"
    assert config.default_model == "qwen3-coder"
    assert "ollama" in config.providers  # built-ins stay available


def test_routes_map_requested_models_and_default_passes_names_through(tmp_path: Path) -> None:
    path = tmp_path / "config.toml"
    path.write_text(CODEX_SECTION)
    config = load_config(path)
    provider, model = config.route("gpt-5")
    assert (provider.base_url, model) == ("https://api.deepseek.com/v1", "deepseek-chat")
    provider, model = config.route("llama3")
    assert (provider.name, model) == ("Ollama on the GPU box", "llama3")


def test_defaults_match_codex() -> None:
    p = Provider()
    assert (p.request_max_retries, p.stream_max_retries, p.stream_idle_timeout_ms) == (
        4,
        5,
        300_000,
    )
    assert (p.developer_role, p.reasoning_field, p.include_usage, p.think_tags) == (
        "system",
        "reasoning",
        True,
        "off",
    )


def test_missing_key_variable_is_a_config_error_naming_it(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("NOPE_KEY", raising=False)
    provider = Provider(env_key="NOPE_KEY", env_key_instructions="Get one at example.")
    with pytest.raises(ConfigError, match="NOPE_KEY") as info:
        provider.api_key()
    assert "Get one at example." in str(info.value)
    monkeypatch.setenv("NOPE_KEY", "  ")
    with pytest.raises(ConfigError, match="missing or empty"):
        provider.api_key()


def test_env_http_headers_are_read_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TEAM_SECRET", "s3")
    provider = Provider(
        http_headers={"A": "1"},
        env_http_headers={"X-Secret": "TEAM_SECRET", "X-Unset": "UNSET_VAR_X"},
    )
    assert provider.headers() == {"A": "1", "X-Secret": "s3"}


@pytest.mark.parametrize(
    ("table", "message"),
    [
        ('base_url = "http://x/v1"\nbase_ulr = "typo"', "unknown key"),
        ('env_key = "K"', "base_url is required"),
        ('base_url = "ftp://x"', "http"),
        ('base_url = "http://x/v1"\ndeveloper_role = "admin"', "developer_role"),
        ('base_url = "http://x/v1"\nthink_tags = "maybe"', "think_tags"),
        ('base_url = "http://x/v1"\nrequest_max_retries = -1', "non-negative"),
        ('base_url = "http://x/v1"\nhttp_headers = { A = 1 }', "table of strings"),
    ],
)
def test_bad_provider_tables_are_config_errors(tmp_path: Path, table: str, message: str) -> None:
    path = tmp_path / "config.toml"
    path.write_text(f"[model_providers.p]\n{table}\n")
    with pytest.raises(ConfigError, match=message):
        load_config(path)


def test_invalid_toml_names_the_file(tmp_path: Path) -> None:
    path = tmp_path / "config.toml"
    path.write_text("[model_providers.p\n")
    with pytest.raises(ConfigError, match="invalid TOML") as info:
        load_config(path)
    assert str(path) in str(info.value)


def test_unknown_provider_lists_the_known_ones() -> None:
    with pytest.raises(ConfigError, match=r"known providers: .*ollama"):
        parse_config({}).provider("nope")


def test_missing_default_config_means_builtins(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setenv("WIREBRIDGE_HOME", str(tmp_path))
    config = load_config()
    assert set(BUILTIN_PROVIDERS) <= set(config.providers)
    with pytest.raises(ConfigError, match="does not exist"):
        load_config(tmp_path / "missing.toml")
