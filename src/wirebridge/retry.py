"""When to retry an upstream request and how long to wait (rules T). Pure: no clock, no sleep.

The caller passes the current time and a random number, so every decision is testable as data.
"""

from __future__ import annotations

import email.utils
from collections.abc import Mapping

RETRYABLE_STATUSES = frozenset({408, 409, 429})
MAX_RETRY_AFTER_S = 120.0
BASE_DELAY_S = 0.2


def should_retry(status: int, headers: Mapping[str, str]) -> bool:
    """408/409/429/5xx retry; the server's `x-should-retry` overrides (as the OpenAI SDKs do)."""
    hint = headers.get("x-should-retry", "").strip().lower()
    if hint == "true":
        return True
    if hint == "false":
        return False
    return status in RETRYABLE_STATUSES or status >= 500


def backoff_delay(attempt: int, jitter: float) -> float:
    """`200 ms * 2^(attempt-1) * U[0.9, 1.1)`; `jitter` is a uniform draw from [0, 1)."""
    return float(BASE_DELAY_S * 2.0 ** (attempt - 1) * (0.9 + 0.2 * jitter))


def retry_after(headers: Mapping[str, str], now: float) -> float | None:
    """The server's requested wait in seconds: `retry-after-ms`, else `Retry-After`."""
    ms = headers.get("retry-after-ms")
    if ms is not None:
        try:
            return max(0.0, float(ms) / 1000.0)
        except ValueError:
            pass
    value = headers.get("retry-after")
    if value is None:
        return None
    value = value.strip()
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    return max(0.0, when.timestamp() - now)


def retry_delay(headers: Mapping[str, str], attempt: int, now: float, jitter: float) -> float:
    """The wait before retry number `attempt` (1-based)."""
    asked = retry_after(headers, now)
    return asked if asked is not None else backoff_delay(attempt, jitter)
