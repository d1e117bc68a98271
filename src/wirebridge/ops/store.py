"""The response store, timed: every operation's latency and errors go to the metrics, and to a
child span of the request when traces are on.

A proxy rather than a subclass, so it follows the store's interface as it grows: every public
coroutine in `TIMED` is wrapped, everything else passes straight through.
"""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable
from typing import Any, cast

from ..store import ResponseNotFoundError, Store
from .metrics import Metrics
from .tracing import Tracing

TIMED = frozenset(
    {"save", "get", "find_item", "delete", "load_chain", "list_input_items", "expire"}
)


class TimedStore:
    def __init__(self, inner: Store, metrics: Metrics | None, tracing: Tracing | None):
        self._inner = inner
        self._metrics = metrics
        self._tracing = tracing

    @property
    def inner(self) -> Store:
        return self._inner

    def __getattr__(self, name: str) -> Any:
        attr = getattr(self._inner, name)
        if name not in TIMED:
            return attr
        return self._timed(name, attr)

    def _timed(
        self, operation: str, call: Callable[..., Awaitable[Any]]
    ) -> Callable[..., Awaitable[Any]]:
        metrics, tracing = self._metrics, self._tracing
        backend = getattr(self._inner, "backend", "store")

        async def timed(*args: Any, **kwargs: Any) -> Any:
            start = time.perf_counter()
            try:
                if tracing is None:
                    return await call(*args, **kwargs)
                with tracing.store_span(operation, backend):
                    return await call(*args, **kwargs)
            except ResponseNotFoundError:
                raise  # an unknown id is an answer, not a failure of the store
            except Exception:
                if metrics is not None:
                    metrics.store_errors.labels(operation).inc()
                raise
            finally:
                if metrics is not None:
                    metrics.store_seconds.labels(operation).observe(time.perf_counter() - start)

        return timed


def timed_store(store: Store | None, metrics: Metrics | None, tracing: Tracing | None) -> Any:
    """`store`, timed (typed as the store itself: the proxy has its whole interface)."""
    if store is None or (metrics is None and tracing is None):
        return store
    return cast(Store, TimedStore(store, metrics, tracing))
