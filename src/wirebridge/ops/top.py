"""What `wirebridge top` shows, made from what a running bridge answers: sans-I/O.

Inputs are the bodies of the bridge's own ops endpoints, as bytes or text: the console's
`/console/api/overview` (live exchanges, recent ones, per-provider health samples), a sealed
exchange from `/console/api/exchanges/{id}` (for a failure's reason), and optionally the
`/metrics` scrape (totals since the bridge started). Output is a `Snapshot` of plain rows.
This module never does HTTP and never draws: the command (`commands/top.py`) owns both, so
every number on the screen is checked here without a server or a terminal.

Rates come from the overview's health samples (one per finished request that reached a
provider), over a trailing window, so a single `--once` poll has them; counters from
`/metrics` would need two polls.
"""

from __future__ import annotations

import json
import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass

import msgspec
from prometheus_client.parser import text_string_to_metric_families

DEFAULT_WINDOW_S = 60.0  # the trailing window of per-provider rates
FAILED_OUTCOMES = frozenset({"failed", "error"})  # a cancel is the client leaving, not a failure
OK_OUTCOMES = ("completed", "incomplete")  # as the recorder's health samples count them


class TopError(ValueError):
    """The bridge answered something that is not the console's data."""


class ExchangeSummary(msgspec.Struct, frozen=True):
    """One exchange as `Exchange.summary()` writes it (fields top does not show are ignored)."""

    id: str
    started_at: float = 0.0
    status: int = 0
    outcome: str = ""
    model: str = ""
    provider: str = ""
    upstream_model: str = ""
    duration_ms: float = 0.0
    bytes_sent: int = 0
    attempts: int = 0
    events: int = 0
    output_tokens: int | None = None
    output_tokens_source: str | None = None  # "usage" (the upstream's) or "deltas" (counted)
    tokens_per_s: float | None = None


# [at (wall clock), provider, ok, ttfb_ms, duration_ms]: `HealthSample` as the overview lists it
HealthSample = tuple[float, str, bool, float | None, float]


class Overview(msgspec.Struct, frozen=True):
    """The body of `/console/api/overview`."""

    now: float
    live: list[ExchangeSummary]
    recent: list[ExchangeSummary]
    health: list[HealthSample]
    capture: bool = False


@dataclass(frozen=True, slots=True)
class LiveRow:
    id: str
    model: str
    upstream: str  # provider:model, as the bridge resolved it ("" before it has)
    age_s: float
    bytes_sent: int
    attempts: int
    events: int  # Responses events sent so far
    # Output tokens so far: the upstream's usage when it has reported any (most report it with
    # the last chunk), else the output deltas sent, counted (`counted`: about one token each).
    output_tokens: int | None  # None: no output yet
    counted: bool
    tokens_per_s: float | None  # since the first upstream event


@dataclass(frozen=True, slots=True)
class ProviderRow:
    provider: str
    requests: int  # finished in the window
    per_min: float
    errors: int  # of those, not completed or incomplete
    ttfb_p50_ms: float | None
    ttfb_p95_ms: float | None
    live: int  # streams running on it now
    total: int | None  # requests since the bridge started (/metrics; None without it)
    upstream_failures: int | None  # upstream attempts that failed, retries included (/metrics)


@dataclass(frozen=True, slots=True)
class FailureRow:
    id: str
    at: float  # wall clock
    model: str
    upstream: str
    status: int
    outcome: str
    duration_ms: float
    reason: str  # "" until the exchange has been read


@dataclass(frozen=True, slots=True)
class Totals:
    """From `/metrics`, by provider; `in_flight` counts every stream the process runs."""

    requests: Mapping[str, int]
    upstream_failures: Mapping[str, int]
    in_flight: int


@dataclass(frozen=True, slots=True)
class Snapshot:
    at: float  # the bridge's clock
    capture: bool
    window_s: float
    live: list[LiveRow]
    providers: list[ProviderRow]
    failures: list[FailureRow]
    in_flight: int | None  # from /metrics (None without it)


def parse_overview(body: bytes) -> Overview:
    try:
        return msgspec.json.decode(body, type=Overview)
    except (msgspec.DecodeError, msgspec.ValidationError) as exc:
        raise TopError(f"not the console's overview ({exc})") from None


def parse_metrics(text: str) -> Totals:
    """The counters top shows; samples without a provider (ops routes, /healthz) are skipped."""
    requests: dict[str, int] = {}
    failures: dict[str, int] = {}
    in_flight = 0
    try:
        families = list(text_string_to_metric_families(text))
    except ValueError as exc:
        raise TopError(f"not a Prometheus scrape ({exc})") from None
    for family in families:
        for sample in family.samples:
            provider = sample.labels.get("provider", "")
            if sample.name == "wirebridge_streams_in_flight":
                in_flight += int(sample.value)
            elif not provider:
                continue
            elif sample.name == "wirebridge_requests_total":
                requests[provider] = requests.get(provider, 0) + int(sample.value)
            elif sample.name == "wirebridge_upstream_failures_total":
                failures[provider] = failures.get(provider, 0) + int(sample.value)
    return Totals(requests, failures, in_flight)


def _upstream(x: ExchangeSummary) -> str:
    return f"{x.provider}:{x.upstream_model}" if x.provider else ""


def percentile(values: Sequence[float], q: float) -> float | None:
    """Nearest-rank percentile (q in 0..1): a value that was observed, None for none."""
    if not values:
        return None
    ordered = sorted(values)
    return ordered[max(1, math.ceil(len(ordered) * q)) - 1]


def live_rows(overview: Overview) -> list[LiveRow]:
    """Streams in flight, oldest first (the one most likely stuck on top)."""
    rows = [
        LiveRow(
            id=x.id,
            model=x.model,
            upstream=_upstream(x),
            age_s=x.duration_ms / 1000,
            bytes_sent=x.bytes_sent,
            attempts=x.attempts,
            events=x.events,
            output_tokens=x.output_tokens,
            counted=x.output_tokens_source == "deltas",
            tokens_per_s=x.tokens_per_s,
        )
        for x in overview.live
    ]
    return sorted(rows, key=lambda r: r.age_s, reverse=True)


def provider_rows(
    overview: Overview, totals: Totals | None, window_s: float = DEFAULT_WINDOW_S
) -> list[ProviderRow]:
    """Per provider: the window's rate, errors and TTFB; the live count; totals when scraped."""
    since = overview.now - window_s
    recent: dict[str, list[HealthSample]] = {}
    for sample in overview.health:
        if sample[0] >= since:
            recent.setdefault(sample[1], []).append(sample)
    live: dict[str, int] = {}
    for x in overview.live:
        if x.provider:
            live[x.provider] = live.get(x.provider, 0) + 1
    names = set(recent) | set(live)
    if totals is not None:
        names |= set(totals.requests) | set(totals.upstream_failures)
    rows = []
    for name in sorted(names):
        samples = recent.get(name, [])
        ttfbs = [s[3] for s in samples if s[2] and s[3] is not None]
        rows.append(
            ProviderRow(
                provider=name,
                requests=len(samples),
                per_min=len(samples) * 60 / window_s,
                errors=sum(1 for s in samples if not s[2]),
                ttfb_p50_ms=percentile(ttfbs, 0.5),
                ttfb_p95_ms=percentile(ttfbs, 0.95),
                live=live.get(name, 0),
                total=None if totals is None else totals.requests.get(name, 0),
                upstream_failures=(
                    None if totals is None else totals.upstream_failures.get(name, 0)
                ),
            )
        )
    return rows


def failure_rows(
    overview: Overview, reasons: Mapping[str, str] | None = None, limit: int = 10
) -> list[FailureRow]:
    """The newest failed requests (the overview lists recent ones newest first)."""
    reasons = reasons or {}
    return [
        FailureRow(
            id=x.id,
            at=x.started_at,
            model=x.model,
            upstream=_upstream(x),
            status=x.status,
            outcome=x.outcome,
            duration_ms=x.duration_ms,
            reason=reasons.get(x.id, ""),
        )
        for x in overview.recent
        if x.outcome in FAILED_OUTCOMES
    ][:limit]


def snapshot(
    overview: Overview,
    totals: Totals | None = None,
    reasons: Mapping[str, str] | None = None,
    window_s: float = DEFAULT_WINDOW_S,
) -> Snapshot:
    return Snapshot(
        at=overview.now,
        capture=overview.capture,
        window_s=window_s,
        live=live_rows(overview),
        providers=provider_rows(overview, totals, window_s),
        failures=failure_rows(overview, reasons),
        in_flight=None if totals is None else totals.in_flight,
    )


def _message(error: object) -> str:
    if isinstance(error, Mapping):
        message = error.get("message")
        code = error.get("code")
        if isinstance(message, str) and message:
            return f"{code}: {message}" if isinstance(code, str) and code else message
    return ""


def _sse_data(text: str) -> Iterable[object]:
    for line in text.splitlines():
        if line.startswith("data: "):
            try:
                yield json.loads(line[len("data: ") :])
            except ValueError:
                continue


def failure_reason(sealed: bytes) -> str:
    """Why a failed exchange failed, from what the bridge sent back (its error object).

    A refused request answers `{"error": {...}}`; a stream that failed sends `error` or
    `response.failed` (with `response.error`). "" when none is found, e.g. the part was cut
    at the capture limit."""
    try:
        exchange = json.loads(sealed)
        text = exchange["sent"]["text"]
    except (ValueError, KeyError, TypeError):
        return ""
    if not isinstance(text, str):
        return ""
    try:
        whole = json.loads(text)
    except ValueError:
        whole = None
    if isinstance(whole, Mapping):
        return _message(whole.get("error"))
    for event in _sse_data(text):
        if not isinstance(event, Mapping):
            continue
        if event.get("type") == "error":
            return _message(event) or _message(event.get("error"))
        response = event.get("response")
        if event.get("type") == "response.failed" and isinstance(response, Mapping):
            return _message(response.get("error"))
    return ""
