"""What a running server holds open: the store, the upstream pools, the count of live answers.

Made in the app's lifespan by `Runtime.open(settings)` and closed when it ends. It closes only
what it opened: a store handed in through the settings belongs to whoever opened it.
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from contextlib import AsyncExitStack, asynccontextmanager

from ..chat.request import ChatRequest
from ..ops.hub import Ops
from ..provider import Provider
from ..redact import redact_dsn
from ..store import Store, background_expiry, open_store, parse_store_url
from ..upstream.client import Client
from ..upstream.pool import UpstreamPools
from .background import BackgroundRuns
from .settings import BridgeSettings

log = logging.getLogger("wirebridge.server")


class Runtime:
    def __init__(self, settings: BridgeSettings, store: Store | None, pools: UpstreamPools):
        self.settings = settings
        self.ops = Ops(settings.ops, settings.api_keys)  # metrics, traces, the console
        self.store = self.ops.observe_store(store)  # timed for the metrics and traces
        self.pools = pools
        self.active = 0  # answers being produced now (the concurrency limit counts these)
        self.background: BackgroundRuns | None = None  # runs owned by this server (a store)
        self._dropped_logged: set[str] = set()

    @classmethod
    @asynccontextmanager
    async def open(cls, settings: BridgeSettings) -> AsyncIterator[Runtime]:
        async with AsyncExitStack() as stack:
            store = settings.store
            if store is None and settings.store_at_startup:
                location = parse_store_url(settings.store_url)
                store = await open_store(settings.store_url, ttl_seconds=settings.store_ttl_s)
                stack.push_async_callback(store.close)
                log.info("response store: %s %s", location.backend, redact_dsn(location.target))
            if store is not None and settings.store_ttl_s is not None:
                await stack.enter_async_context(
                    background_expiry(store, interval_s=settings.expiry_interval_s)
                )
            pools = UpstreamPools(
                max_streams=settings.max_concurrent_streams,
                finish_grace_s=settings.finish_grace_s,
            )
            stack.push_async_callback(pools.aclose)
            config = settings.config
            names = {config.default_provider, *(r.provider for r in config.routes.values())}
            pools.warm(config.provider(name) for name in sorted(names))
            runtime = cls(settings, store, pools)
            if store is not None:  # after the pools, so runs drain before the pools close
                runtime.background = await stack.enter_async_context(
                    BackgroundRuns.open(
                        store, settings.background, write_timeout_s=settings.store_write_timeout_s
                    )
                )
            stack.callback(runtime.ops.close)
            yield runtime

    def client(self, provider: Provider) -> Client:
        return self.pools.client(provider)

    def log_dropped_tools(self, chat: ChatRequest) -> None:
        for kind in chat.tool_map.dropped:
            if kind not in self._dropped_logged:  # once per tool type (rule P7)
                self._dropped_logged.add(kind)
                log.info("tools of type %r have no Chat Completions equivalent; not sent", kind)
