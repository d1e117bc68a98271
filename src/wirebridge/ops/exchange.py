"""What the console shows of one request: its exchange with the client and the upstream.

An `Exchange` collects, boundedly, the Responses request as received, each upstream attempt
(the Chat payload sent, its status and timing), the upstream's raw body when capture is on, and
what was sent back. When the request ends it is sealed: secrets are scrubbed out of every part
(and the secrets forgotten), then it joins the `Recorder`'s ring of recent exchanges. Pure data
and bookkeeping; the middleware and the transport hook feed it.

How far a live answer has got (events sent, output tokens, their rate) is not copied here per
event: the exchange holds the answer's own counters (the encoder's, the upstream decoder's
usage; handed over once by the hooks in `progress.py`) and reads them only when a summary is
asked for. Sealing keeps the last numbers and lets the counters go.
"""

from __future__ import annotations

import itertools
import time
from collections import deque
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Protocol

from ..redact import redact_headers, scrub

if TYPE_CHECKING:
    from ..events import TokenUsage

HEALTH_SAMPLES = 2000  # per-provider points for the console's charts


class Capture:
    """Bytes kept up to a limit; what did not fit is counted, not kept."""

    __slots__ = ("data", "dropped", "limit")

    def __init__(self, limit: int):
        self.limit = limit
        self.data = bytearray()
        self.dropped = 0

    def add(self, chunk: bytes) -> None:
        room = self.limit - len(self.data)
        if room >= len(chunk):
            self.data += chunk
        else:
            if room > 0:
                self.data += chunk[:room]
            self.dropped += len(chunk) - max(room, 0)

    def text(self, secrets: Iterable[str]) -> str:
        return scrub(self.data.decode("utf-8", "replace"), secrets)

    def json(self, secrets: Iterable[str]) -> dict[str, Any]:
        return {"text": self.text(secrets), "bytes": len(self.data), "dropped": self.dropped}


class Progress(Protocol):
    """An answer's own counters (`ResponsesEncoder`'s): events handed to the client so far, and
    output deltas (text, reasoning, call arguments) encoded."""

    @property
    def events_sent(self) -> int: ...

    @property
    def deltas(self) -> int: ...


class UpstreamUsage(Protocol):
    """An upstream attempt's stream decoder (`ChatStreamDecoder`): the usage the upstream last
    reported, None until it reports any (most send it once, with the last chunk; some, such as
    vLLM asked for continuous usage stats, on every chunk)."""

    @property
    def usage(self) -> TokenUsage | None: ...


@dataclass
class Attempt:
    """One request to the upstream."""

    url: str
    started: float  # perf_counter
    status: int | None = None
    headers_s: float | None = None  # time to the status line
    error: str | None = None  # failure kind (http_STATUS, connect, timeout, ...)

    def json(self, t0: float) -> dict[str, Any]:
        return {
            "url": self.url,
            "start_ms": round((self.started - t0) * 1000, 2),
            "status": self.status,
            "headers_ms": None if self.headers_s is None else round(self.headers_s * 1000, 2),
            "error": self.error,
        }


@dataclass
class Exchange:
    id: str
    method: str
    path: str
    started_at: float  # wall clock, for people
    t0: float  # perf_counter, for durations
    limit: int
    capture_upstream: bool
    request_headers: dict[str, str] = field(default_factory=dict)
    request: Capture = field(init=False)
    payload: Capture = field(init=False)  # the Chat payload (the first attempt's; all are one)
    upstream: Capture = field(init=False)  # the upstream's raw body (capture on)
    sent: Capture = field(init=False)  # what went back to the client
    payload_headers: dict[str, str] = field(default_factory=dict)
    attempts: list[Attempt] = field(default_factory=list)
    secrets: set[str] = field(default_factory=set)
    status: int = 0
    ttfb_s: float | None = None
    duration_s: float | None = None
    outcome: str = "running"
    model: str = ""
    provider: str = ""
    upstream_model: str = ""
    request_id: str | None = None
    response_id: str | None = None
    usage: dict[str, int] = field(default_factory=dict)
    sealed: dict[str, Any] | None = None
    replay: bytes = b""  # the upstream body, scrubbed: what `wirebridge replay` reads
    state: dict[str, Any] = field(default_factory=dict)  # the request's, while it runs
    # While it runs: the answer's counters (from its first upstream event) and the current
    # upstream attempt's decoder, read when asked for a summary (see the module's docstring).
    progress: Progress | None = None
    decoder: UpstreamUsage | None = None
    output_began: float | None = None  # perf_counter at the answer's first upstream event
    events: int = 0  # the counters' last values, once sealed
    deltas: int | None = None  # None: no answer began

    def __post_init__(self) -> None:
        self.request = Capture(self.limit)
        self.payload = Capture(self.limit)
        self.upstream = Capture(self.limit if self.capture_upstream else 0)
        self.sent = Capture(self.limit)

    @property
    def live(self) -> bool:
        return self.sealed is None

    def output_tokens(self) -> tuple[int | None, str | None]:
        """Output tokens so far and where the count comes from: `usage`, the upstream's report
        (the final Response's once ended), else `deltas`, the output deltas sent counted (about
        one token each). (None, None) before the answer began."""
        reported = self.usage.get("output")
        decoder = self.decoder
        if reported is None and decoder is not None and decoder.usage is not None:
            reported = decoder.usage.output_tokens
        if reported is not None:
            return reported, "usage"
        progress = self.progress
        deltas = progress.deltas if progress is not None else self.deltas
        return (None, None) if deltas is None else (deltas, "deltas")

    def summary(self, now: float | None = None) -> dict[str, Any]:
        now = now if now is not None else time.perf_counter()
        elapsed = self.duration_s
        if elapsed is None:
            elapsed = now - self.t0
        output, source = self.output_tokens()
        # The seconds the output took: from the first byte sent to the end once it ended, from
        # the first upstream event to now while it runs.
        generating = None
        if self.duration_s is not None and self.ttfb_s is not None:
            generating = self.duration_s - self.ttfb_s
        elif self.output_began is not None:
            generating = now - self.output_began
        tokens_per_s = None
        if output and generating is not None and generating > 0:
            tokens_per_s = round(output / generating, 1)
        progress = self.progress
        events = progress.events_sent if progress is not None else self.events
        model, upstream = self.model, self.upstream_model
        provider = self.provider
        if self.live:  # not filled in yet: what the handler knows so far
            model = self.state.get("model") or ""
            provider, _, upstream = str(self.state.get("upstream", "")).partition(":")
        return {
            "id": self.id,
            "method": self.method,
            "path": self.path,
            "started_at": self.started_at,
            "status": self.status,
            "outcome": self.outcome,
            "model": model,
            "provider": provider,
            "upstream_model": upstream,
            "request_id": self.request_id,
            "response_id": self.response_id,
            "ttfb_ms": None if self.ttfb_s is None else round(self.ttfb_s * 1000, 2),
            "duration_ms": round(elapsed * 1000, 2),
            "bytes_sent": len(self.sent.data) + self.sent.dropped,
            "attempts": len(self.attempts),
            "usage": self.usage,
            "events": events,
            "output_tokens": output,
            "output_tokens_source": source,
            "tokens_per_s": tokens_per_s,
            "captured": self.capture_upstream,
        }

    def seal(self) -> None:
        """Scrub every part once, keep the text, forget the secrets and the raw bytes."""
        secrets = sorted(self.secrets, key=len, reverse=True)
        self.sealed = {
            "summary": self.summary(),
            "request": {
                "headers": {k: scrub(v, secrets) for k, v in self.request_headers.items()},
                **self.request.json(secrets),
            },
            "upstream_request": {
                "headers": {k: scrub(v, secrets) for k, v in self.payload_headers.items()},
                **self.payload.json(secrets),
            },
            "attempts": [a.json(self.t0) for a in self.attempts],
            "upstream_body": self.upstream.json(secrets) if self.capture_upstream else None,
            "sent": self.sent.json(secrets),
        }
        if self.capture_upstream:
            self.replay = self.sealed["upstream_body"]["text"].encode()
        if self.progress is not None:
            self.events, self.deltas = self.progress.events_sent, self.progress.deltas
        self.progress = self.decoder = None  # a run that goes on (resumable) is not held here
        self.secrets.clear()
        self.state = {}
        self.request, self.payload, self.upstream, self.sent = (Capture(0),) * 4

    def note_headers(self, headers: dict[str, str], secret_names: Iterable[str] = ()) -> None:
        self.payload_headers = redact_headers(headers, secret_names)


@dataclass(frozen=True, slots=True)
class HealthSample:
    at: float  # wall clock
    provider: str
    ok: bool
    ttfb_ms: float | None
    duration_ms: float


class Recorder:
    """The live exchanges and the last `recent` finished ones, with per-provider samples."""

    def __init__(
        self, recent: int, capture_bytes: int, capture_upstream: bool, secrets: Iterable[str] = ()
    ):
        self.capture_bytes = capture_bytes
        self.secrets = frozenset(secrets)  # the bridge's keys: scrubbed from every exchange
        self.capture_upstream = capture_upstream
        self.live: dict[str, Exchange] = {}
        self.recent: deque[Exchange] = deque(maxlen=max(recent, 1))
        self.health: deque[HealthSample] = deque(maxlen=HEALTH_SAMPLES)
        self._ids = itertools.count(1)

    def start(
        self, method: str, path: str, headers: dict[str, str], state: dict[str, Any]
    ) -> Exchange:
        exchange = Exchange(
            id=f"x{next(self._ids)}",
            method=method,
            path=path,
            started_at=time.time(),
            t0=time.perf_counter(),
            limit=self.capture_bytes,
            capture_upstream=self.capture_upstream,
            request_headers=redact_headers(headers),
            state=state,
            secrets=set(self.secrets),
        )
        self.live[exchange.id] = exchange
        return exchange

    def finish(self, exchange: Exchange) -> None:
        self.live.pop(exchange.id, None)
        exchange.seal()
        self.recent.append(exchange)
        if exchange.provider:
            self.health.append(
                HealthSample(
                    exchange.started_at,
                    exchange.provider,
                    exchange.outcome in ("completed", "incomplete"),
                    None if exchange.ttfb_s is None else exchange.ttfb_s * 1000,
                    (exchange.duration_s or 0.0) * 1000,
                )
            )

    def find(self, exchange_id: str) -> Exchange | None:
        live = self.live.get(exchange_id)
        if live is not None:
            return live
        return next((x for x in self.recent if x.id == exchange_id), None)
