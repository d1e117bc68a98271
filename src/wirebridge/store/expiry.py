"""Retention in the background: a sweep that deletes expired responses every `interval_s`.

Every read already skips rows past their `expires_at` (see `queries`), so the sweep only
reclaims space and its timing never changes what clients see. It runs once at start (to clear
what expired while no bridge was running), then periodically; a failed sweep is logged and
retried at the next interval rather than taking the server down. Several processes sharing one
PostgreSQL may all sweep: deletes are idempotent and skip rows another sweep holds.
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import anyio

from .base import Store

DEFAULT_INTERVAL_S = 600.0

log = logging.getLogger("wirebridge.store")


class Expirer:
    """Calls `store.expire()` every `interval_s` seconds; counts its sweeps for observers."""

    def __init__(self, store: Store, interval_s: float = DEFAULT_INTERVAL_S):
        if interval_s <= 0:
            raise ValueError(f"the expiry interval must be positive, not {interval_s}")
        self.store = store
        self.interval_s = interval_s
        self.sweeps = 0  # finished sweeps, failed ones included
        self.deleted = 0  # responses deleted over all sweeps
        self.failures = 0
        self._swept = anyio.Event()

    async def sweep(self) -> int:
        """One sweep now; returns the number of responses deleted (0 when it failed)."""
        deleted = 0
        try:
            deleted = await self.store.expire()
        except Exception as exc:  # keep sweeping: a transient database error must not stop it
            self.failures += 1
            log.warning("expiring stored responses failed (next in %ss): %s", self.interval_s, exc)
        else:
            self.deleted += deleted
            if deleted:
                log.info("expired %d stored responses", deleted)
        self.sweeps += 1
        swept, self._swept = self._swept, anyio.Event()
        swept.set()
        return deleted

    async def run(self) -> None:
        """Sweep forever (until cancelled)."""
        while True:
            await self.sweep()
            await anyio.sleep(self.interval_s)

    async def wait_for_sweeps(self, count: int) -> None:
        """Return once at least `count` sweeps have finished."""
        while self.sweeps < count:
            await self._swept.wait()


@asynccontextmanager
async def background_expiry(
    store: Store, interval_s: float = DEFAULT_INTERVAL_S
) -> AsyncIterator[Expirer]:
    """Run an `Expirer` for the duration of the block (e.g. a server's lifespan)."""
    expirer = Expirer(store, interval_s)
    async with anyio.create_task_group() as tg:
        tg.start_soon(expirer.run)
        try:
            yield expirer
        finally:
            tg.cancel_scope.cancel()
