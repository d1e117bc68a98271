"""What operations hold open while the server runs: the metrics, the tracer, the recorder.

Made with the server's `Runtime` and closed with it.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from .exchange import Recorder
from .metrics import Metrics
from .settings import OpsSettings
from .store import timed_store
from .tracing import Tracing


class Ops:
    def __init__(self, settings: OpsSettings, secrets: Iterable[str] = ()):
        """`secrets`: the bridge's own keys, scrubbed out of every exchange like upstream keys."""
        self.settings = settings
        self.metrics = Metrics() if settings.metrics else None
        self.tracing = (
            Tracing(settings.tracer_provider) if settings.tracer_provider is not None else None
        )
        self.recorder = (
            Recorder(settings.recent, settings.capture_bytes, settings.capture, secrets)
            if settings.console
            else None
        )

    @property
    def active(self) -> bool:
        return self.metrics is not None or self.tracing is not None or self.recorder is not None

    def observe_store(self, store: Any) -> Any:
        return timed_store(store, self.metrics, self.tracing)

    def close(self) -> None:
        if self.metrics is not None:
            self.metrics.close()
