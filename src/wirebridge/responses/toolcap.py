"""`max_tool_calls`: at most that many tool calls in one response; the model's further calls are
ignored.

The API's words: "the maximum number of total calls to built-in tools that can be processed in a
response ... Any further attempts to call a tool by the model will be ignored." Behind the bridge
every call is one the model made in this response and the client would run, so the cap counts
them all (function, custom and local-shell calls): the first `max_tool_calls` calls, in the order
the model began them, are streamed and kept; later ones leave no trace in the stream or the
Response (no `output_item.added`, no argument deltas, no item). The response still completes
normally: ignoring a call is not a failure. With `max_tool_calls: 1` the upstream is also asked
for `parallel_tool_calls: false` where the client left it unset (`request.py`), so a model that
honours it does not spend tokens on calls that would be dropped.

`ToolCallCap` is the pure decision (one event in, keep or drop out); `cap_tool_calls` applies it
to a stream.
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator

from ..events import Event, OutputItemDone, ToolCallDelta
from .siblings import call_id_of

log = logging.getLogger("wirebridge.server")


class ToolCallCap:
    """Admits the first `limit` tool calls of a response; drops every event of the others."""

    def __init__(self, limit: int):
        self.limit = limit
        self.admitted: set[str] = set()
        self.ignored: list[str] = []  # call ids dropped, in order

    def keep(self, event: Event) -> bool:
        if isinstance(event, ToolCallDelta):
            call_id: str | None = event.call_id
        elif isinstance(event, OutputItemDone):
            call_id = call_id_of(event.item)
        else:
            return True
        if call_id is None:
            return True
        if call_id in self.admitted:
            return True
        if call_id not in self.ignored and len(self.admitted) < self.limit:
            self.admitted.add(call_id)
            return True
        if call_id not in self.ignored:
            self.ignored.append(call_id)
        return False


def cap_tool_calls(events: AsyncIterator[Event], limit: int | None) -> AsyncIterator[Event]:
    """`events` with the calls past `limit` removed (`events` itself when there is no limit)."""
    return events if limit is None else _capped(events, limit)


async def _capped(events: AsyncIterator[Event], limit: int) -> AsyncIterator[Event]:
    cap = ToolCallCap(limit)
    try:
        async for event in events:
            if cap.keep(event):
                yield event
    finally:
        if cap.ignored:
            log.info(
                "max_tool_calls %d: ignored %d further tool call(s) of the model (%s)",
                limit,
                len(cap.ignored),
                ", ".join(cap.ignored),
            )
        aclose = getattr(events, "aclose", None)
        if aclose is not None:
            await aclose()
