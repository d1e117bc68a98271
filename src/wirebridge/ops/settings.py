"""What operations the server does for its operators: fixed for the server's life.

Capture is off by default: an exchange then keeps the request, the Chat payload and the events
sent back, but not the upstream's raw body (that is what a replay file is made of, and it can
be large). Everything kept is bounded and redacted.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

DEFAULT_RECENT = 100  # exchanges the console can open
DEFAULT_CAPTURE_BYTES = 256 * 1024  # per part of an exchange (request, payload, body, answer)


@dataclass(frozen=True, slots=True)
class OpsSettings:
    metrics: bool = True
    # /metrics without a key: `wirebridge serve` sets this when bound to loopback, or when told
    # `--metrics-no-auth`; the default keeps it behind the bridge's keys.
    metrics_open: bool = False
    console: bool = True
    recent: int = DEFAULT_RECENT
    capture: bool = False  # keep the upstream's raw chunks (the replay file)
    capture_bytes: int = DEFAULT_CAPTURE_BYTES
    # An OpenTelemetry `TracerProvider` (the `otel` extra); None: no traces.
    tracer_provider: Any = None
    # Where `wirebridge doctor` left its last findings (JSON), for the console; None: none.
    doctor_report: str | None = None
