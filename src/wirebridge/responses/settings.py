"""The server's settings: what `wirebridge serve` was told, fixed for the server's life.

Immutable on purpose: what startup opens (the store, the upstream pools) lives in the `Runtime`,
never written back here, so one settings object can start any number of apps.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from ..provider import Config
from ..store import DEFAULT_TTL_SECONDS, Store
from .relay import DEFAULT_COMMIT_AFTER_S, DEFAULT_HEARTBEAT_S, RelayTiming

DEFAULT_MAX_BODY_BYTES = 32 * 1024 * 1024
DEFAULT_MAX_CONCURRENT_STREAMS = 256
DEFAULT_EXPIRY_INTERVAL_S = 600.0

ReasoningSummaryMode = Literal["auto", "always", "never"]


@dataclass(frozen=True, slots=True)
class BridgeSettings:
    config: Config
    api_keys: frozenset[str] = frozenset()
    max_body_bytes: int = DEFAULT_MAX_BODY_BYTES
    max_concurrent_streams: int = DEFAULT_MAX_CONCURRENT_STREAMS
    # Mirror reasoning text as a summary part: when the request asks for a summary (auto),
    # always, or never. Codex's TUI shows summaries, not raw reasoning.
    reasoning_summary: ReasoningSummaryMode = "auto"
    # The response store: one handed in open (its owner closes it), or one opened at startup
    # from `store_url` when `store_at_startup` (`None` is the default SQLite file under
    # $WIREBRIDGE_HOME) and closed at shutdown; either way swept for expired responses.
    store: Store | None = None
    store_at_startup: bool = False
    store_url: str | None = None
    store_ttl_s: float | None = DEFAULT_TTL_SECONDS
    expiry_interval_s: float = DEFAULT_EXPIRY_INTERVAL_S
    finish_grace_s: float = 2.0
    # A stream is committed at its first event, or after this long without one (then upstream
    # failures become `response.failed`), and sends a keep-alive comment when silent this long.
    commit_after_s: float = DEFAULT_COMMIT_AFTER_S
    heartbeat_s: float = DEFAULT_HEARTBEAT_S

    @property
    def relay_timing(self) -> RelayTiming:
        return RelayTiming(self.commit_after_s, self.heartbeat_s)
