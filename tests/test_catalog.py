"""The Codex catalog's parts: server probes (over loopback, against each server kind's
imitation), entries, the bundled-catalog scan, and the Codex config merge.

The bundled-catalog tests use a fabricated binary holding our own placeholder text: Codex's
prompt never enters this repository.
"""

from __future__ import annotations

import json
import tomllib
from pathlib import Path

import pytest

from wirebridge.catalog.bundled import (
    CodexNotFound,
    bundled_catalog,
    find_codex_binaries,
    nearest_entry,
    scan_catalogs,
)
from wirebridge.catalog.codexconfig import CodexSetup, merge_codex_config
from wirebridge.catalog.entries import catalog_entry, settle_facts, truncation_policy
from wirebridge.catalog.probe import probe_upstream, server_root
from wirebridge.catalog.servers import ModelFacts, parse_doctor_json, parse_ollama_show
from wirebridge.errors import ConfigError
from wirebridge.provider import Provider
from wirebridge.testing import Reply, ScriptedUpstream, SeenRequest, text_body
from wirebridge.testing.servers import SERVER_KINDS, ServedModel, ServerKind, model_server

# The fields Codex 0.171 refuses a catalog entry without (observed; see the module docstring of
# wirebridge.catalog.entries).
CODEX_REQUIRED = {
    "slug",
    "display_name",
    "base_instructions",
    "apply_patch_tool_type",
    "shell_type",
    "visibility",
    "supported_in_api",
    "priority",
    "support_verbosity",
    "supported_reasoning_levels",
    "truncation_policy",
    "experimental_supported_tools",
}
MODELS = [
    ServedModel("qwen3:8b", 16_384, reasoning=True),
    ServedModel("llava:7b", 8_192, images=True),
]
EXPECTED: dict[ServerKind, dict[str, int | None]] = {
    "llama.cpp": {"qwen3:8b": 16_384, "llava:7b": 16_384},  # one server, one n_ctx
    "vllm": {"qwen3:8b": 16_384, "llava:7b": 8_192},
    "ollama": {"qwen3:8b": 16_384, "llava:7b": 8_192},
    "lmstudio": {"qwen3:8b": 16_384, "llava:7b": 8_192},
    "openai": {"qwen3:8b": None, "llava:7b": None},
}


@pytest.mark.anyio
@pytest.mark.parametrize("kind", SERVER_KINDS)
async def test_probe_reads_each_server_kinds_window(kind: ServerKind) -> None:
    async with ScriptedUpstream(default=model_server(kind, MODELS, Reply(b""))) as up:
        found = await probe_upstream(Provider(name="up", base_url=up.base_url))
    assert found.error is None
    assert {m.id: m.context_window for m in found.models} == EXPECTED[kind]
    assert found.steps[0].endswith(": HTTP 200")
    if kind == "ollama":
        by_id = {m.id: m for m in found.models}
        assert (by_id["qwen3:8b"].reasoning, by_id["llava:7b"].images) == (True, True)
    if kind == "lmstudio":  # its embedding model is not offered to Codex
        assert "text-embedding-scripted" not in {m.id for m in found.models}


@pytest.mark.anyio
async def test_probe_stops_at_an_unreachable_upstream_and_names_it() -> None:
    async with ScriptedUpstream() as up:
        url = up.base_url
    found = await probe_upstream(Provider(name="gone", base_url=url), timeout_s=2)
    assert found.models == [] and found.error is not None
    assert len(found.steps) == 1 and found.steps[0].startswith(f"GET {url}/models: ")


@pytest.mark.anyio
async def test_probe_sends_the_providers_key_and_a_missing_key_is_a_config_error(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    async with ScriptedUpstream(default=model_server("vllm", MODELS, Reply(b""))) as up:
        provider = Provider(name="up", base_url=up.base_url, env_key="WB_TEST_UPSTREAM_KEY")
        monkeypatch.delenv("WB_TEST_UPSTREAM_KEY", raising=False)
        with pytest.raises(ConfigError, match="WB_TEST_UPSTREAM_KEY"):
            await probe_upstream(provider)
        monkeypatch.setenv("WB_TEST_UPSTREAM_KEY", "sk-upstream")
        await probe_upstream(provider)
    assert up.requests[0].headers["authorization"] == "Bearer sk-upstream"


@pytest.mark.anyio
async def test_probe_steps_never_show_credentials() -> None:
    async with ScriptedUpstream(default=model_server("openai", MODELS, Reply(b""))) as up:
        base_url = up.base_url.replace("http://", "http://user:pass-secret-1@")
        provider = Provider(
            name="up", base_url=base_url, query_params={"api-key": "query-secret-2"}
        )
        found = await probe_upstream(provider)
    assert up.requests[0].path.endswith("?api-key=query-secret-2")  # it was sent
    shown = "\n".join(found.steps)
    assert len(found.steps) == 4 and "pass-secret-1" not in shown
    assert "query-secret-2" not in shown


def test_ollama_num_ctx_wins_over_the_trained_length() -> None:
    body = {
        "parameters": "stop x\nnum_ctx 12288",
        "model_info": {"llama.context_length": 131072},
        "capabilities": ["completion"],
    }
    facts = parse_ollama_show("m", body)
    assert facts is not None and facts.context_window == 12288
    del body["parameters"]
    facts = parse_ollama_show("m", body)
    assert facts is not None and facts.context_window == 131072
    assert facts.reasoning is False and facts.images is False


def test_server_root_strips_v1() -> None:
    assert server_root("http://h:8080/v1/") == "http://h:8080"
    assert server_root("http://h:8080/api") == "http://h:8080/api"


def test_entry_has_what_codex_requires_and_scales_truncation() -> None:
    entry = catalog_entry(ModelFacts("m", 32_768, reasoning=True, images=False), "text")
    assert set(entry) >= CODEX_REQUIRED
    assert entry["apply_patch_tool_type"] == "freeform" and entry["context_window"] == 32_768
    assert [lv["effort"] for lv in entry["supported_reasoning_levels"]] == [
        "low",
        "medium",
        "high",
    ]
    assert entry["input_modalities"] == ["text"]
    assert entry["truncation_policy"] == {"mode": "tokens", "limit": 3_276}
    assert truncation_policy(8_000)["limit"] == 2_000
    assert truncation_policy(1_000_000)["limit"] == 10_000
    plain = catalog_entry(ModelFacts("m"), "text")
    assert plain["supported_reasoning_levels"] == [] and "context_window" not in plain


def test_doctor_findings_override_and_the_fallback_window_fills_gaps() -> None:
    doctor = parse_doctor_json(
        {
            "model": "b",
            "reachable": True,
            "findings": {"reasoning": {"status": "ok", "value": {"fields": ["reasoning"]}}},
        }
    )
    assert doctor is not None and doctor.reasoning is True
    facts, missing = settle_facts(
        [ModelFacts("a"), ModelFacts("b", 4096, reasoning=False)], [doctor], None
    )
    assert missing == ["a"] and facts[1].reasoning is True
    facts, missing = settle_facts([ModelFacts("a")], [], 9000)
    assert missing == [] and facts[0].context_window == 9000
    assert facts[0].source == "--context-window"
    assert parse_doctor_json({"model": "b", "reachable": False}) is None


# --- the catalog bundled in Codex's binary (a fabricated one, with our own placeholder text)

PLACEHOLDER = "PLACEHOLDER PROMPT {}"


def fake_binary_bytes() -> bytes:
    catalog = {
        "models": [
            {"slug": "alpha-5", "priority": 3, "visibility": "list", "base_instructions": "A"},
            {
                "slug": "beta-6-sol",
                "priority": 1,
                "visibility": "list",
                "model_messages": {"instructions_template": PLACEHOLDER.format("beta")},
            },
            {"slug": "hidden", "priority": 0, "visibility": "hide", "base_instructions": "H"},
        ]
    }
    junk = b"\x00\xc8\xff" * 1000 + b'{"models": [1, 2]}' + b"\x00" * 50
    return junk + json.dumps(catalog, indent=2).encode() + b"\xc8\x00trailing junk"


def test_scan_finds_the_embedded_catalog_past_junk_and_picks_the_nearest_entry() -> None:
    entries = scan_catalogs(fake_binary_bytes())
    assert [e["slug"] for e in entries] == ["alpha-5", "beta-6-sol", "hidden"]
    assert nearest_entry(entries, "alpha-5")["slug"] == "alpha-5"
    assert nearest_entry(entries, "alpha-5-mini")["slug"] == "alpha-5"
    # nothing alike: Codex's own default, the first listed entry by priority
    assert nearest_entry(entries, "qwen3:8b")["slug"] == "beta-6-sol"
    assert scan_catalogs(b"no catalog here") == []


def test_the_codex_binary_is_found_through_the_npm_launcher(tmp_path: Path) -> None:
    package = tmp_path / "lib" / "node_modules" / "@openai" / "codex"
    (package / "bin").mkdir(parents=True)
    launcher = package / "bin" / "codex.js"
    launcher.write_text("#!/usr/bin/env node\n")
    native = package.parent / "codex-linux-x64" / "vendor" / "x86_64-unknown-linux-musl" / "bin"
    native.mkdir(parents=True)
    with (native / "codex").open("wb") as f:  # bigger than a launcher, as a real binary is
        f.write(fake_binary_bytes())
        f.truncate(2 * 1024 * 1024)
    bindir = tmp_path / "bin"
    bindir.mkdir()
    (bindir / "codex").symlink_to(launcher)
    launcher.chmod(0o755)
    assert find_codex_binaries(path=str(bindir)) == [(native / "codex").resolve()]
    binary, entries = bundled_catalog(bindir / "codex")
    assert binary == (native / "codex").resolve() and len(entries) == 3
    with pytest.raises(CodexNotFound, match="no Codex binary found"):
        bundled_catalog(tmp_path / "nowhere")
    assert find_codex_binaries(path=str(tmp_path / "empty")) == []


# --- Codex's config.toml

USER_CONFIG = """\
# my Codex settings
model = "gpt-5.5"  # the model I use at work
approval_policy = "on-request"

[model_providers.wirebridge]
base_url = "http://old:1/v1"  # old address
stream_idle_timeout_ms = 600000  # mine

[features]
plugins = false
"""


def test_merge_sets_our_keys_and_keeps_the_users_comments_and_keys() -> None:
    setup = CodexSetup("http://127.0.0.1:8787/v1", "qwen3:8b", catalog_json="/c/models.json")
    merged = merge_codex_config(USER_CONFIG, setup)
    data = tomllib.loads(merged)
    assert data["model"] == "qwen3:8b" and data["model_provider"] == "wirebridge"
    assert data["model_catalog_json"] == "/c/models.json"
    table = data["model_providers"]["wirebridge"]
    assert table["base_url"] == "http://127.0.0.1:8787/v1" and table["wire_api"] == "responses"
    assert table["stream_idle_timeout_ms"] == 600000
    for kept in ("# my Codex settings", "# the model I use at work", "# mine", "plugins = false"):
        assert kept in merged
    assert merge_codex_config(merged, setup) == merged  # idempotent


def test_merge_for_a_served_catalog_and_for_the_builtin_openai_provider() -> None:
    served = CodexSetup(
        "http://b/v1", "m", catalog_url="http://b/v1/models", env_key="WIREBRIDGE_API_KEY"
    )
    first = merge_codex_config("", CodexSetup("http://b/v1", "m", catalog_json="/x/" + "w.json"))
    data = tomllib.loads(merge_codex_config(first, served))
    table = data["model_providers"]["wirebridge"]
    assert table["model_catalog_url"] == "http://b/v1/models"
    assert table["env_key"] == "WIREBRIDGE_API_KEY"
    openai = tomllib.loads(
        merge_codex_config("", CodexSetup("http://b/v1", "m", "/c.json", builtin_openai=True))
    )
    assert openai["model_provider"] == "openai" and openai["openai_base_url"] == "http://b/v1"
    assert "model_providers" not in openai
    with pytest.raises(ConfigError, match="invalid TOML"):
        merge_codex_config("model = ", served)


def test_the_imitations_answer_chat_with_the_given_reply_and_404_elsewhere() -> None:
    # The imitations answer Chat Completions with the reply they are given.
    script = model_server("openai", MODELS, Reply(text_body(["hi"])))
    reply = script(SeenRequest("POST", "/v1/chat/completions", {}, b"{}"))
    assert b"hi" in reply.body
    assert script(SeenRequest("GET", "/props", {}, b"")).status == 404
