"""Helpers for the ops tests: read a Prometheus scrape, wait for the bridge to settle, record
spans."""

from __future__ import annotations

from collections.abc import Callable

import anyio
import httpx
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from prometheus_client.parser import text_string_to_metric_families


def samples(text: str) -> list[tuple[str, dict[str, str], float]]:
    return [
        (s.name, dict(s.labels), s.value)
        for family in text_string_to_metric_families(text)
        for s in family.samples
    ]


def value(text: str, name: str, **labels: str) -> float:
    """The sum of `name`'s samples whose labels include `labels` (0 when there are none)."""
    return sum(
        v
        for n, ls, v in samples(text)
        if n == name and all(ls.get(k) == want for k, want in labels.items())
    )


async def scrape_until(
    http: httpx.AsyncClient,
    url: str,
    ready: Callable[[str], bool],
    headers: dict[str, str] | None = None,
) -> str:
    """Scrape until `ready(text)`: the bridge finishes a request's bookkeeping just after the
    client sees its end (a cancelled one, after the upstream sees the cancel)."""
    with anyio.fail_after(10):
        while True:
            response = await http.get(url, headers=headers)
            assert response.status_code == 200, response.text
            if ready(response.text):
                return response.text


def recording() -> tuple[InMemorySpanExporter, TracerProvider]:
    """A tracer provider whose spans are kept in memory, and where to read them."""
    exporter = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    return exporter, provider
