"""`GET /v1/models` and `GET /v1/models/{id}` through the openai SDK, and Codex's catalog shape
(`?client_version=`), against the real app in front of scripted model servers on loopback."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import httpx
import openai
import pytest
from openai import AsyncOpenAI

from wirebridge.provider import Config, Provider, Route
from wirebridge.responses.runner import RunningBridge
from wirebridge.responses.settings import BridgeSettings
from wirebridge.responses.testing import running_bridge
from wirebridge.testing import Reply, ScriptedUpstream, text_body
from wirebridge.testing.servers import ServedModel, model_server

pytestmark = pytest.mark.anyio

SERVED = [ServedModel("qwen3:8b", 16_384, reasoning=True), ServedModel("gemma3:4b", 8_192)]
CHAT = Reply(text_body(["ok"]))


def routed_config(local_url: str, other_url: str) -> Config:
    """The default provider at `local_url`, a route `coder` to a second provider."""
    local = Provider(name="local", base_url=local_url, request_max_retries=0)
    other = Provider(name="other", base_url=other_url, request_max_retries=0)
    return Config(
        {"local": local, "other": other},
        "local",
        "qwen3:8b",
        {"coder": Route("other", "qwen2.5-coder:7b")},
    )


@asynccontextmanager
async def bridge_over(config: Config, **settings: object) -> AsyncIterator[RunningBridge]:
    async with running_bridge(BridgeSettings(config, **settings)) as server:  # type: ignore[arg-type]
        yield server


def sdk(server: RunningBridge, key: str = "unused") -> AsyncOpenAI:
    return AsyncOpenAI(base_url=server.base_url, api_key=key, max_retries=0)


def model_paths(up: ScriptedUpstream) -> list[str]:
    return [r.path for r in up.requests if r.path == "/v1/models"]


async def test_list_has_the_routes_and_the_upstreams_models_and_retrieve_answers() -> None:
    other_models = [ServedModel("qwen2.5-coder:7b", 32_768)]
    async with (
        ScriptedUpstream(default=model_server("ollama", SERVED, CHAT)) as local,
        ScriptedUpstream(default=model_server("vllm", other_models, CHAT)) as other,
        bridge_over(routed_config(local.base_url, other.base_url)) as server,
        sdk(server) as client,
    ):
        listed = [m async for m in client.models.list()]
        again = await client.models.list()
        coder = await client.models.retrieve("coder")
        gemma = await client.models.retrieve("gemma3:4b")
        with pytest.raises(openai.NotFoundError) as missing:
            await client.models.retrieve("no-such-model")
        answer = await client.responses.create(model="gemma3:4b", input="hi")
    assert [(m.id, m.owned_by) for m in listed] == [
        ("qwen3:8b", "local"),
        ("coder", "other"),
        ("gemma3:4b", "local"),
    ]
    assert [m.id for m in again.data] == [m.id for m in listed]
    assert (coder.id, coder.owned_by, coder.object) == ("coder", "other", "model")
    assert gemma.id == "gemma3:4b"
    error = missing.value.body
    assert isinstance(error, dict) and error["code"] == "model_not_found"
    assert "no-such-model" in error["message"]
    assert answer.output_text == "ok"  # a listed upstream name is routable as listed
    # Cached: one upstream list per provider for all those calls.
    assert len(model_paths(local)) == 1 and len(model_paths(other)) == 1


async def test_an_upstream_that_fails_degrades_the_list_to_the_configured_names() -> None:
    broken = Reply(b'{"error": "down"}', status=500, content_type="application/json")
    async with (
        ScriptedUpstream(default=broken) as local,
        ScriptedUpstream(default=broken) as other,
        bridge_over(routed_config(local.base_url, other.base_url)) as server,
        sdk(server) as client,
    ):
        listed = await client.models.list()
        qwen = await client.models.retrieve("qwen3:8b")
    assert [m.id for m in listed.data] == ["qwen3:8b", "coder"]
    assert qwen.owned_by == "local"


async def test_model_ids_with_slashes_are_retrieved() -> None:
    served = [ServedModel("Qwen/Qwen3-8B", 40_960)]
    async with (
        ScriptedUpstream(default=model_server("vllm", served, CHAT)) as up,
        bridge_over(Config({"v": Provider(name="v", base_url=up.base_url)}, "v")) as server,
        sdk(server) as client,
    ):
        model = await client.models.retrieve("Qwen/Qwen3-8B")
    assert model.id == "Qwen/Qwen3-8B"


async def test_client_version_answers_codexs_catalog_with_the_servers_windows(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("WIREBRIDGE_CODEX", "/nonexistent/codex")  # no Codex: our instructions
    async with (
        ScriptedUpstream(default=model_server("llama.cpp", SERVED[:1], CHAT)) as up,
        bridge_over(
            Config({"l": Provider(name="l", base_url=up.base_url)}, "l"),
            api_keys=frozenset({"bridge-key"}),
        ) as server,
        httpx.AsyncClient(base_url=server.base_url, timeout=10) as http,
    ):
        auth = {"Authorization": "Bearer bridge-key"}
        plain = await http.get("/models", headers=auth)
        refused = await http.get("/models", params={"client_version": "0.171.0"})
        catalog = await http.get("/models", params={"client_version": "0.171.0"}, headers=auth)
        etag = catalog.headers["etag"]
        unchanged = await http.get(
            "/models",
            params={"client_version": "0.171.0"},
            headers={**auth, "If-None-Match": etag},
        )
    assert plain.json()["object"] == "list" and plain.json()["data"][0]["id"] == "qwen3:8b"
    assert refused.status_code == 401
    [entry] = catalog.json()["models"]
    assert entry["slug"] == "qwen3:8b" and entry["context_window"] == 16_384
    assert entry["apply_patch_tool_type"] == "freeform"
    assert entry["base_instructions"].startswith("You are a coding agent")
    assert unchanged.status_code == 304


async def test_the_servers_probes_go_through_the_providers_pooled_connections(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from wirebridge.upstream.pool import UpstreamPools

    pooled: list[httpx.AsyncClient] = []
    probed: list[tuple[httpx.AsyncClient, str]] = []
    take, request = UpstreamPools.http, httpx.AsyncClient.request

    def spy_pool(self: UpstreamPools, provider: Provider) -> httpx.AsyncClient:
        pooled.append(take(self, provider))
        return pooled[-1]

    async def spy_request(
        self: httpx.AsyncClient, method: str, url: httpx.URL | str, **kwargs: object
    ) -> httpx.Response:
        if str(url).startswith(up.base_url.removesuffix("/v1")):
            probed.append((self, str(url)))
        return await request(self, method, url, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(UpstreamPools, "http", spy_pool)
    monkeypatch.setattr(httpx.AsyncClient, "request", spy_request)
    async with (
        ScriptedUpstream(default=model_server("ollama", SERVED, CHAT)) as up,
        bridge_over(Config({"l": Provider(name="l", base_url=up.base_url)}, "l")) as server,
        httpx.AsyncClient(base_url=server.base_url, timeout=10) as http,
    ):
        catalog = await http.get("/models", params={"client_version": "0.171.0"})
    assert [m["context_window"] for m in catalog.json()["models"]] == [16_384, 8_192]
    # The list, then Ollama's /api/show per model: every request on a client of the provider's
    # pool (its connections, limits, proxy), none on a client the probe opened for itself.
    assert [url.rsplit("/", 2)[-2:] for _, url in probed][-2:] == [["api", "show"]] * 2
    assert probed and all(client in pooled for client, _ in probed)
