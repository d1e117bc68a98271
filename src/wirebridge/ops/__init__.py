"""Operations: Prometheus metrics, OpenTelemetry traces and the web console's exchanges.

Kept apart from the request path on purpose: the server calls a handful of hooks (one
middleware around the app, one per upstream attempt, a timed store) and everything else lives
here, so the relay, the transport and the store stay about relaying, sending and storing.
"""

from .settings import OpsSettings

__all__ = ["OpsSettings"]
