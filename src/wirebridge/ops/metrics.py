"""The bridge's Prometheus metrics, with the official `prometheus_client`.

One `Metrics` per running server, in a registry of its own (so several apps in one process,
as in tests, never share counters). Under `PROMETHEUS_MULTIPROC_DIR` prometheus_client writes
every value to files in that directory and a scrape sums all the processes that write there
(gauges: the live processes only); see docs/operations.md for when to use that and when to
scrape each bridge.

Label values a client chooses (the model name) are capped: after `MAX_LABEL_VALUES` distinct
ones the rest count as "other", so a client cannot grow the scrape without bound.
"""

from __future__ import annotations

import os
import threading

from prometheus_client import (
    CONTENT_TYPE_LATEST,
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    generate_latest,
)
from prometheus_client import multiprocess as prom_multiprocess

MULTIPROC_ENV = "PROMETHEUS_MULTIPROC_DIR"
MAX_LABEL_VALUES = 100
OTHER = "other"
# Time to first byte spans a cached prompt (ms) to a long prefill (minutes); duration also
# covers long generations.
TTFB_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120)
DURATION_BUCKETS = (0.01, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300, 600, 1800)
STORE_BUCKETS = (0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 5)
TOKEN_KINDS = ("input", "output", "reasoning", "cached")


def multiprocess_dir() -> str | None:
    return os.environ.get(MULTIPROC_ENV) or None


class LabelCap:
    """At most `limit` distinct values; later newcomers become `other`."""

    def __init__(self, limit: int = MAX_LABEL_VALUES):
        self.limit = limit
        self._seen: set[str] = set()
        self._lock = threading.Lock()

    def __call__(self, value: str) -> str:
        if value in self._seen:
            return value
        with self._lock:
            if len(self._seen) >= self.limit:
                return OTHER
            self._seen.add(value)
        return value


class Metrics:
    def __init__(self) -> None:
        self.registry = CollectorRegistry(auto_describe=True)
        self.model = LabelCap()
        reg = self.registry
        self.requests = Counter(
            "wirebridge_requests",
            "HTTP requests answered, by route, status, provider, model and outcome.",
            ["route", "status", "provider", "model", "outcome"],
            registry=reg,
        )
        self.ttfb = Histogram(
            "wirebridge_time_to_first_byte_seconds",
            "Time from a request's arrival to the first byte of its answer.",
            ["route", "provider", "model"],
            buckets=TTFB_BUCKETS,
            registry=reg,
        )
        self.duration = Histogram(
            "wirebridge_request_duration_seconds",
            "Time from a request's arrival to the last byte of its answer.",
            ["route", "provider", "model"],
            buckets=DURATION_BUCKETS,
            registry=reg,
        )
        self.tokens = Counter(
            "wirebridge_tokens",
            "Tokens reported by upstreams: input, output, reasoning (of output), cached (of "
            "input).",
            ["provider", "model", "kind"],
            registry=reg,
        )
        self.truncated_turns = Counter(
            "wirebridge_truncated_turns",
            'Turns with truncation "auto" that dropped input items to fit the model\'s window.',
            ["provider", "model"],
            registry=reg,
        )
        self.truncated_items = Counter(
            "wirebridge_truncated_items",
            'Input items dropped by truncation "auto".',
            ["provider", "model"],
            registry=reg,
        )
        self.streams_in_flight = Gauge(
            "wirebridge_streams_in_flight",
            "Responses being produced now.",
            multiprocess_mode="livesum",
            registry=reg,
        )
        self.websocket_connections = Gauge(
            "wirebridge_websocket_connections",
            "WebSocket connections open now.",
            multiprocess_mode="livesum",
            registry=reg,
        )
        self.upstream_attempts = Counter(
            "wirebridge_upstream_attempts",
            "Requests sent to upstreams, retries included.",
            ["provider"],
            registry=reg,
        )
        self.upstream_retries = Counter(
            "wirebridge_upstream_retries",
            "Upstream requests sent again, by what the previous attempt ran into.",
            ["provider", "kind"],
            registry=reg,
        )
        self.upstream_failures = Counter(
            "wirebridge_upstream_failures",
            "Upstream attempts that failed, by kind (http_STATUS, connect, timeout, transport).",
            ["provider", "kind"],
            registry=reg,
        )
        self.upstream_headers = Histogram(
            "wirebridge_upstream_response_seconds",
            "Time from sending an upstream request to its status line.",
            ["provider"],
            buckets=TTFB_BUCKETS,
            registry=reg,
        )
        self.store_seconds = Histogram(
            "wirebridge_store_operation_seconds",
            "Time taken by response-store operations.",
            ["operation"],
            buckets=STORE_BUCKETS,
            registry=reg,
        )
        self.store_errors = Counter(
            "wirebridge_store_errors",
            "Response-store operations that raised (unknown ids excluded).",
            ["operation"],
            registry=reg,
        )

    def observe_request(
        self,
        *,
        route: str,
        status: int,
        provider: str,
        model: str,
        outcome: str,
        ttfb_s: float | None,
        duration_s: float,
    ) -> None:
        model = self.model(model)
        self.requests.labels(route, str(status), provider, model, outcome).inc()
        if ttfb_s is not None:
            self.ttfb.labels(route, provider, model).observe(ttfb_s)
        self.duration.labels(route, provider, model).observe(duration_s)

    def observe_truncation(self, provider: str, model: str, items: int, *, new_turn: bool) -> None:
        """A cut of `truncation: "auto"` dropped `items` input items (`new_turn`: the turn's
        first cut; one cut ahead of sending may be followed by one on overflow)."""
        model = self.model(model)
        if new_turn:
            self.truncated_turns.labels(provider, model).inc()
        self.truncated_items.labels(provider, model).inc(items)

    def observe_tokens(self, provider: str, model: str, counts: dict[str, int]) -> None:
        model = self.model(model)
        for kind in TOKEN_KINDS:
            n = counts.get(kind, 0)
            if n > 0:
                self.tokens.labels(provider, model, kind).inc(n)

    def render(self) -> tuple[bytes, str]:
        """The text exposition of this server, or of every process in the multiprocess dir."""
        if multiprocess_dir() is None:
            return generate_latest(self.registry), CONTENT_TYPE_LATEST
        registry = CollectorRegistry()
        prom_multiprocess.MultiProcessCollector(registry)  # type: ignore[no-untyped-call]
        return generate_latest(registry), CONTENT_TYPE_LATEST

    @staticmethod
    def close() -> None:
        """This process's live gauges stop counting in the multiprocess sum."""
        if multiprocess_dir() is not None:
            prom_multiprocess.mark_process_dead(os.getpid())  # type: ignore[no-untyped-call]
