"""The request edge's clock, CPU and slots: what one request may cost before it is answered.

- A body must arrive within `body_timeout_s` (408), so a client that declares 100 bytes and
  sends 27 cannot hold a connection, a task and a buffer for ever.
- A stream slot (`max_concurrent_streams`) is taken only once the request is parsed: slow or
  broken bodies never count against the limit that protects the upstreams.
- A body above `offload_bytes` is parsed and mapped in a worker thread, so one 20 MB request
  does not stall every other stream (and `/healthz`) for the seconds its decoding takes.
"""

from __future__ import annotations

import functools
from collections.abc import Awaitable, Callable
from typing import TypeVar

import anyio
import anyio.to_thread

from .errors import ApiError
from .runtime import Runtime

T = TypeVar("T")


async def read_within(seconds: float | None, reading: Awaitable[bytes]) -> bytes:
    """The body `reading` returns, or a 408 when it has not arrived within `seconds`."""
    if seconds is None:
        return await reading
    with anyio.move_on_after(seconds):
        return await reading
    raise ApiError(
        408,
        f"the request body did not arrive within {seconds:g} seconds (--body-timeout)",
        code="request_timeout",
    )


async def off_loop(size: int, threshold: int | None, fn: Callable[..., T], *args: object) -> T:
    """`fn(*args)`, in a worker thread when the body is `threshold` bytes or more."""
    if threshold is None or size < threshold:
        return fn(*args)
    return await anyio.to_thread.run_sync(functools.partial(fn, *args))


class StreamSlot:
    """One of the `limit` concurrent answers, counted in `runtime.active` while held."""

    def __init__(self, runtime: Runtime, limit: int):
        self.runtime = runtime
        self.limit = limit
        self.held = False

    def take(self) -> ApiError | None:
        """Hold a slot, or the 503 to answer when all are taken."""
        if self.runtime.active >= self.limit:
            return ApiError(
                503,
                f"the bridge is serving its maximum of {self.limit} concurrent responses; "
                "retry shortly",
                "server_error",
                code="overloaded",
                headers={"Retry-After": "1"},
            )
        self.runtime.active += 1
        self.held = True
        return None

    def release(self) -> None:
        if self.held:
            self.held = False
            self.runtime.active -= 1
