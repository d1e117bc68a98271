"""Which names a bridge answers to, and what each one's server says about it (cached).

A client may ask for a configured route, the default model, or any name the default provider's
upstream serves (unrouted names pass through to it), so that is what is listed: the default
model and the routes first, then the default provider's upstream list. Upstream answers are
cached briefly per provider; one that cannot be read degrades the list to the configured names,
never to an error. Used by the server's `GET /v1/models` and `truncation: "auto"` (one directory
per app, probing through the provider's pooled client, `http`) and by `wirebridge codex` (a
client per probe).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, replace
from typing import Any

import anyio
import httpx

from ..errors import ConfigError
from ..provider import Config, Provider
from .probe import UpstreamModels, probe_upstream
from .servers import ModelFacts

log = logging.getLogger("wirebridge.catalog")

CACHE_TTL_S = 60.0  # how long an upstream's list is reused
FAILURE_TTL_S = 5.0  # how long a failed read is, so a down upstream is not asked per request
PROBE_TIMEOUT_S = 5.0  # per upstream request: a listing must not hang on a dead upstream
Probe = Callable[..., Awaitable[UpstreamModels]]


@dataclass(frozen=True, slots=True)
class Listed:
    """One name the bridge answers to: who serves it, and what its server says about it."""

    id: str
    owned_by: str
    facts: ModelFacts

    def openai(self) -> dict[str, Any]:
        return {"id": self.id, "object": "model", "created": 0, "owned_by": self.owned_by}


def window_in(answer: UpstreamModels, model: str) -> int | None:
    """`model`'s context window in an upstream's answer, if it states one."""
    for facts in answer.models:
        if facts.id == model:
            return facts.context_window
    return None


class ModelDirectory:
    """The listing, from the config and the upstreams' lists (cached per provider).

    `http` gives a provider's pooled httpx client, asked at each probe (the server's pools exist
    only while it runs); without it each probe opens and closes a client of its own."""

    def __init__(
        self,
        config: Config,
        *,
        ttl_s: float = CACHE_TTL_S,
        clock: Callable[[], float] = time.monotonic,
        probe: Probe = probe_upstream,
        http: Callable[[Provider], httpx.AsyncClient] | None = None,
    ):
        self.config = config
        self.http = http
        self.ttl_s = ttl_s
        self.clock = clock
        self.probe = probe
        self._cache: dict[tuple[str, bool], tuple[float, UpstreamModels]] = {}
        self._locks: dict[tuple[str, bool], anyio.Lock] = {}

    async def upstream(self, name: str, windows: bool) -> UpstreamModels:
        """One provider's upstream answer, from the cache while fresh (one probe at a time)."""
        key = (name, windows)
        lock = self._locks.setdefault(key, anyio.Lock())
        async with lock:
            cached = self._cache.get(key)
            if cached is not None and cached[0] > self.clock():
                return cached[1]
            try:
                provider = self.config.provider(name)
                http = self.http(provider) if self.http is not None else None
                result = await self.probe(
                    provider, http=http, windows=windows, timeout_s=PROBE_TIMEOUT_S
                )
            except ConfigError as exc:  # e.g. its key variable is unset: list what we know
                result = UpstreamModels(name, error=str(exc))
            if result.error is not None:
                log.warning("GET /v1/models: provider %s not listed: %s", name, result.error)
            ttl = self.ttl_s if result.error is None else min(self.ttl_s, FAILURE_TTL_S)
            self._cache[key] = (self.clock() + ttl, result)
            return result

    def known_window(self, name: str, model: str) -> int | None:
        """`model`'s window as a fresh cached answer of provider `name` states it; None when
        none does. Never a request: for callers that must not probe (a turn's hot path)."""
        for windows in (True, False):  # a bare list states windows too (vLLM max_model_len)
            cached = self._cache.get((name, windows))
            if cached is not None and cached[0] > self.clock():
                window = window_in(cached[1], model)
                if window is not None:
                    return window
        return None

    async def listing(self, *, windows: bool = False) -> list[Listed]:
        """Configured names first (the default model, then routes), then the default
        provider's upstream models; with `windows`, each with its context window."""
        config = self.config
        names = {config.default_provider, *(r.provider for r in config.routes.values())}
        known: dict[str, dict[str, ModelFacts]] = {}
        for name in sorted(names):
            result = await self.upstream(name, windows)
            known[name] = {m.id: m for m in result.models}
        out: dict[str, Listed] = {}

        def add(name: str) -> None:
            provider, upstream_model = config.route(name)
            facts = known.get(provider.name, {}).get(upstream_model, ModelFacts(upstream_model))
            out.setdefault(name, Listed(name, provider.name, replace(facts, id=name)))

        if config.default_model:
            add(config.default_model)
        for name in config.routes:
            add(name)
        for facts in known.get(config.default_provider, {}).values():
            add(facts.id)
        return list(out.values())

    def answers(self) -> list[UpstreamModels]:
        """The upstream answers read so far (what was asked, and what failed)."""
        return [result for _, result in self._cache.values()]
