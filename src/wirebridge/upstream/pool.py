"""The server's upstream connections: per provider, several small httpx pools taken in turn.

httpcore's pool scans every connection it holds on each request and each release (a syscall per
idle one: encode/httpx#3215), so its cost grows with the square of the streams in flight: 200
concurrent streams through one pool took up to 4.9 s where 16 pools took 0.35 s, and 1,000 idle
connections in one pool made 1,000 streams cost 23.6 s of server CPU instead of 3.7 s (bench/).
Requests take the pools in turn; each pool may open as many connections as the stream limit
allows and keeps at most `SHARD_KEEPALIVE` of them idle.
"""

from __future__ import annotations

import itertools
from collections.abc import Iterable

import httpx

from ..provider import Provider
from .client import Client
from .transport import http_timeout

POOL_SHARDS = 16  # upstream connection pools per provider
CONNECTIONS_PER_SHARD = 8
SHARD_KEEPALIVE = 32  # idle upstream connections kept per pool


class ProviderPool:
    """One provider's upstream connections, split over several small httpx pools."""

    def __init__(self, provider: Provider, *, max_streams: int, finish_grace_s: float):
        self.provider = provider
        limit = max(max_streams, 1)
        count = max(1, min(POOL_SHARDS, limit // CONNECTIONS_PER_SHARD))
        keepalive = max(1, min(SHARD_KEEPALIVE, -(-limit // count)))
        self._clients: list[tuple[Client, httpx.AsyncClient]] = []
        tls = httpx.create_ssl_context()  # built once: each costs ~30 ms (the CA bundle)
        for _ in range(count):
            http = httpx.AsyncClient(
                verify=tls,
                timeout=http_timeout(provider),
                limits=httpx.Limits(max_connections=limit, max_keepalive_connections=keepalive),
            )
            client = Client(
                provider,
                http_client=http,
                finish_grace_s=finish_grace_s,
                stream_tool_calls=True,  # relay function_call_arguments.delta as they come
                strict=True,  # garbage then [DONE] is a failure, not an empty answer
            )
            self._clients.append((client, http))
        self._turn = itertools.cycle(range(count))

    def client(self) -> Client:
        return self._clients[next(self._turn)][0]

    def http(self) -> httpx.AsyncClient:
        """One of the pools, for a short side request (the upstream's tokenizer)."""
        return self._clients[next(self._turn)][1]

    async def aclose(self) -> None:
        for _, http in self._clients:
            await http.aclose()


class UpstreamPools:
    """Every provider's pool, made on first use; a reloaded provider's old one closes at exit."""

    def __init__(self, *, max_streams: int, finish_grace_s: float):
        self.max_streams = max_streams
        self.finish_grace_s = finish_grace_s
        self._pools: dict[str, ProviderPool] = {}
        self._retired: list[ProviderPool] = []

    def client(self, provider: Provider) -> Client:
        return self._pool(provider).client()

    def http(self, provider: Provider) -> httpx.AsyncClient:
        """An httpx client of `provider`'s pool: its connections are already open and kept."""
        return self._pool(provider).http()

    def _pool(self, provider: Provider) -> ProviderPool:
        pool = self._pools.get(provider.name)
        if pool is None or pool.provider is not provider:
            if pool is not None:
                self._retired.append(pool)
            pool = self._pools[provider.name] = ProviderPool(
                provider, max_streams=self.max_streams, finish_grace_s=self.finish_grace_s
            )
        return pool

    def warm(self, providers: Iterable[Provider]) -> None:
        """Build the pools now, not on a first request (a TLS context costs tens of ms)."""
        for provider in providers:
            self.client(provider)

    async def aclose(self) -> None:
        for pool in [*self._pools.values(), *self._retired]:
            await pool.aclose()
        self._pools.clear()
        self._retired.clear()
