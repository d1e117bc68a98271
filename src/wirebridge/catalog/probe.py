"""Ask an upstream which models it serves and how big their windows are (the I/O shell).

`GET {base_url}/models` lists the models (vLLM's list carries `max_model_len`); for windows the
list leaves out, the server's own endpoints are tried in turn, at the server root (`base_url`
without `/v1`): llama.cpp `GET /props`, LM Studio `GET /api/v0/models`, then Ollama
`POST /api/show` per model. The first that answers settles the kind; every step is noted so a
user can see what was asked. What the answers mean is read by `servers.py`.

Inside the server the requests go through the provider's pooled client (`http`, handed in: its
connections, limits and proxy); the CLI, which has no pools, opens a client for the one probe.
Either way each request is bounded by `timeout_s`, not by the client's own (a pool's read timeout
is a stream's, far longer than a listing should wait).
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from typing import Any

import httpx

from ..provider import Provider
from ..redact import redact_url, scrub
from .servers import (
    ModelFacts,
    parse_llamacpp_props,
    parse_lmstudio_models,
    parse_model_list,
    parse_ollama_show,
)

DEFAULT_TIMEOUT_S = 10.0


@dataclass
class UpstreamModels:
    """What one provider's upstream said: its models, and one line per request made."""

    provider: str
    models: list[ModelFacts] = field(default_factory=list)
    steps: list[str] = field(default_factory=list)
    error: str | None = None  # the model list itself could not be read


def server_root(base_url: str) -> str:
    """The server's root URL: `base_url` without a trailing `/v1`."""
    root = base_url.rstrip("/")
    return root[: -len("/v1")] if root.endswith("/v1") else root


class _Asker:
    def __init__(
        self, http: httpx.AsyncClient, provider: Provider, steps: list[str], timeout_s: float
    ):
        self.http = http
        self.timeout_s = timeout_s
        self.provider = provider
        self.steps = steps
        self.unreachable = False  # the last request could not reach the server at all
        key = provider.api_key()  # a missing key variable is a ConfigError, before any request
        self.headers = {**provider.headers(), **({"Authorization": f"Bearer {key}"} if key else {})}
        # Values never shown in a step: the key, header values, query values.
        self.secrets = [key or "", *self.headers.values(), *(provider.query_params or {}).values()]

    def note(self, method: str, url: str, outcome: str) -> None:
        self.steps.append(scrub(f"{method} {redact_url(url)}: {outcome}", self.secrets))

    async def json(self, method: str, url: str, body: Any = None) -> Any:
        """The answer's JSON, or None (noted) for an error status, a failure or non-JSON."""
        try:
            response = await self.http.request(
                method,
                url,
                json=body,
                headers=self.headers,
                params=self.provider.query_params or None,
                timeout=self.timeout_s,
            )
        except httpx.HTTPError as exc:
            self.unreachable = isinstance(exc, httpx.TransportError)
            self.note(method, url, f"{type(exc).__name__} {exc}".rstrip())
            return None
        if response.status_code != 200:
            self.note(method, url, f"HTTP {response.status_code}")
            return None
        try:
            data = response.json()
        except ValueError:
            self.note(method, url, "not JSON")
            return None
        self.note(method, url, "HTTP 200")
        return data


def _fill(models: list[ModelFacts], known: dict[str, ModelFacts]) -> list[ModelFacts]:
    return [m.merged(known[m.id]) if m.id in known else m for m in models]


async def _llamacpp(ask: _Asker, root: str, models: list[ModelFacts]) -> list[ModelFacts] | None:
    props = await ask.json("GET", f"{root}/props")
    if props is None:
        return None
    window, images = parse_llamacpp_props(props)
    if window is not None:  # one model per server: its window is every listed model's
        source = "llama.cpp n_ctx"
        return [m.merged(ModelFacts(m.id, window, images=images, source=source)) for m in models]
    if isinstance(props, dict) and props.get("role") == "router":
        known: dict[str, ModelFacts] = {}
        for model in models:  # router mode: each model has its own props
            one = await _props_of(ask, root, model.id)
            if one is not None:
                w, img = parse_llamacpp_props(one)
                known[model.id] = ModelFacts(model.id, w, images=img, source="llama.cpp n_ctx")
        return _fill(models, known)
    return None


async def _props_of(ask: _Asker, root: str, model: str) -> Any:
    url = str(httpx.URL(f"{root}/props", params={"model": model}))
    return await ask.json("GET", url)


async def _lmstudio(ask: _Asker, root: str, models: list[ModelFacts]) -> list[ModelFacts] | None:
    listed = parse_lmstudio_models(await ask.json("GET", f"{root}/api/v0/models"))
    if not listed:
        return None
    known = {m.id: m for m in listed}
    return _fill(models, known) if models else listed


async def _ollama(ask: _Asker, root: str, models: list[ModelFacts]) -> list[ModelFacts] | None:
    known: dict[str, ModelFacts] = {}
    for model in models:
        facts = parse_ollama_show(
            model.id, await ask.json("POST", f"{root}/api/show", {"model": model.id})
        )
        if facts is None:
            return None if not known else _fill(models, known)
        known[model.id] = facts
    return _fill(models, known) if known else None


async def probe_upstream(
    provider: Provider,
    *,
    http: httpx.AsyncClient | None = None,
    timeout_s: float = DEFAULT_TIMEOUT_S,
    windows: bool = True,
) -> UpstreamModels:
    """The models `provider`'s upstream lists, with every window its server reveals (with
    `windows=False`, the list alone: one request); through `http` when given (left open)."""
    result = UpstreamModels(provider.name)
    async with _client(http, timeout_s) as client:
        ask = _Asker(client, provider, result.steps, timeout_s)
        base = provider.base_url.rstrip("/")
        listing = await ask.json("GET", f"{base}/models")
        if listing is None:
            result.error = result.steps[-1]
        models = parse_model_list(listing)
        root = server_root(base)
        missing = not models or any(m.context_window is None for m in models)
        if windows and missing and not ask.unreachable:
            for kind in (_llamacpp, _lmstudio, _ollama):
                answered = await kind(ask, root, models)
                if answered is not None:
                    models = answered
                    break
        result.models = models
    return result


@asynccontextmanager
async def _client(
    http: httpx.AsyncClient | None, timeout_s: float
) -> AsyncIterator[httpx.AsyncClient]:
    """The caller's client, left open; or a fresh one for this probe, closed after it."""
    if http is not None:
        yield http
        return
    async with httpx.AsyncClient(timeout=timeout_s) as own:
        yield own
