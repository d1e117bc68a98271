"""The server's settings: what `wirebridge serve` was told, fixed for the server's life.

Immutable on purpose: what startup opens (the store, the upstream pools) lives in the `Runtime`,
never written back here, so one settings object can start any number of apps.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Literal

from ..ops.settings import OpsSettings
from ..provider import Config
from ..store import DEFAULT_TTL_SECONDS, Store
from .background import BackgroundSettings
from .relay import DEFAULT_COMMIT_AFTER_S, DEFAULT_HEARTBEAT_S, RelayTiming
from .socketwire import SocketSettings

DEFAULT_MAX_BODY_BYTES = 32 * 1024 * 1024
DEFAULT_MAX_CONCURRENT_STREAMS = 256
DEFAULT_EXPIRY_INTERVAL_S = 600.0
DEFAULT_BODY_TIMEOUT_S = 60.0
DEFAULT_OFFLOAD_BYTES = 1024 * 1024
DEFAULT_STORE_WRITE_TIMEOUT_S = 5.0

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
    # A request body must arrive within this long (408); bodies this large or larger are
    # parsed and mapped off the event loop (None: never).
    body_timeout_s: float | None = DEFAULT_BODY_TIMEOUT_S
    offload_bytes: int | None = DEFAULT_OFFLOAD_BYTES
    # Named groups of API keys that own responses together (`[tenants.NAME]`, tenants.py);
    # a key in no group is a tenant of its own.
    tenant_groups: Mapping[str, frozenset[str]] = field(default_factory=dict)
    # A response not stored within this long is answered with `store: false` (docs/store.md).
    store_write_timeout_s: float = DEFAULT_STORE_WRITE_TIMEOUT_S
    # Metrics, traces and the console (wirebridge.ops).
    ops: OpsSettings = field(default_factory=OpsSettings)
    # Background runs: leases, polling, event-log retention, shutdown drain (background.py).
    background: BackgroundSettings = field(default_factory=BackgroundSettings)
    # Signs compaction tokens (responses/sealed.py); None: $WIREBRIDGE_SECRET, else random.
    # Bridges sharing a store must share it.
    compaction_secret: str | None = field(default=None, repr=False)
    # The WebSocket transport's limits (socketwire.py): age, idle time, socket cap.
    websocket: SocketSettings = field(default_factory=SocketSettings)

    @property
    def relay_timing(self) -> RelayTiming:
        return RelayTiming(self.commit_after_s, self.heartbeat_s)
