"""`aggregate(stream, mode)`: the two views of a stream that callers want.

`aggregated` drops the deltas and yields each output item once, then the terminal events (for
callers that want whole items); `streaming` yields deltas and each item once. The decoder already
emits each item exactly once (the seed emitted the reasoning item twice), so both views are a
filter, not a second accumulation.
"""

from __future__ import annotations

from collections.abc import AsyncIterable, AsyncIterator
from typing import Literal

from .events import STREAMED_TYPES, Event

Mode = Literal["aggregated", "streaming"]


async def aggregate(
    stream: AsyncIterable[Event], mode: Mode = "aggregated"
) -> AsyncIterator[Event]:
    if mode not in ("aggregated", "streaming"):
        raise ValueError(f"mode must be 'aggregated' or 'streaming', not {mode!r}")
    drop_deltas = mode == "aggregated"
    async for event in stream:
        if drop_deltas and isinstance(event, STREAMED_TYPES):
            continue
        yield event
