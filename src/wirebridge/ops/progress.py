"""The hooks that show a live exchange how far its answer has got (`wirebridge top`, the console).

Each is called once per answer or per upstream attempt, never per event: it hands the request's
exchange (found in `hooks.current`, as the transport's hook finds it) the object that already
counts, and the exchange reads it when a summary is asked for (exchange.py). Outside an observed
request (the library, `exec`, a WebSocket turn, `--no-console`) they do nothing.
"""

from __future__ import annotations

import time

from .exchange import Exchange, Progress, UpstreamUsage
from .hooks import current


def _live_exchange() -> Exchange | None:
    ctx = current.get()
    exchange = ctx.exchange if ctx is not None else None
    # A run that outlives its request (background, resumable) must not be held by a sealed one.
    return exchange if exchange is not None and exchange.live else None


def output_began(progress: Progress) -> None:
    """The answer's first upstream event (relay.py): its encoder's counters are the exchange's
    progress from now, and its output rate is counted from now."""
    exchange = _live_exchange()
    if exchange is not None and exchange.progress is None:
        exchange.progress, exchange.output_began = progress, time.perf_counter()


def upstream_decoding(decoder: UpstreamUsage) -> None:
    """An upstream attempt's stream decoder (upstream/client.py): the usage it reports is the
    exchange's output count (the last attempt's: a stream is retried only before its output)."""
    exchange = _live_exchange()
    if exchange is not None:
        exchange.decoder = decoder
