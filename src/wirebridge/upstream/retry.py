"""When to retry an upstream request and how long to wait (rules T). Pure: no clock, no sleep.

The caller passes the current time and a uniform random draw, so every decision is data in,
data out: `decide()` takes what one attempt ended with (a status and its headers, or a
connection failure) and returns a `Decision`, which says to retry after a delay or to give up,
and why. The transport turns a give-up into the matching error; it decides nothing itself.
"""

from __future__ import annotations

import email.utils
import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Literal

RETRYABLE_STATUSES = frozenset({408, 409, 429})
MAX_RETRY_AFTER_S = 120.0  # a server asking for more is answered by giving up (rules T)
MAX_BACKOFF_S = 120.0  # our own backoff never waits longer than we let a server ask for
BASE_DELAY_S = 0.2

GiveUp = Literal[
    "not_retryable",
    "server_said_no",
    "retry_after_too_long",
    "retries_exhausted",
    "past_commit",  # the wait would straddle the server's commit (budget.py)
    "past_deadline",  # the wait would end past the turn's deadline (budget.py)
]


@dataclass(frozen=True, slots=True)
class Decision:
    """Retry after `delay` seconds, or give up for `reason`."""

    retry: bool
    delay: float = 0.0
    reason: GiveUp | None = None


def _should_retry_hint(headers: Mapping[str, str]) -> bool | None:
    hint = headers.get("x-should-retry", "").strip().lower()
    return True if hint == "true" else False if hint == "false" else None


def backoff_delay(attempt: int, jitter: float) -> float:
    """`200 ms * 2^(attempt-1) * U[0.9, 1.1)`; `jitter` is a uniform draw from [0, 1).

    Capped at `MAX_BACKOFF_S`: retry counts go up to 100, and 2^99 steps is no wait at all.
    """
    exponent = min(max(attempt - 1, 0), 32)
    return float(min(BASE_DELAY_S * 2.0**exponent * (0.9 + 0.2 * jitter), MAX_BACKOFF_S))


def _seconds(value: str, scale: float) -> float | None:
    try:
        number = float(value) * scale
    except ValueError:
        return None
    if math.isnan(number):
        return None
    return max(0.0, number)


def retry_after(headers: Mapping[str, str], now: float) -> float | None:
    """The server's requested wait in seconds: `retry-after-ms`, else `Retry-After`.

    `Retry-After` is delta-seconds or an HTTP date (RFC 9110 §10.2.3); `now` is a Unix time.
    Unreadable values count as absent, so the backoff applies.
    """
    ms = headers.get("retry-after-ms")
    if ms is not None:
        asked = _seconds(ms.strip(), 0.001)
        if asked is not None:
            return asked
    value = headers.get("retry-after")
    if value is None:
        return None
    value = value.strip()
    asked = _seconds(value, 1.0)
    if asked is not None:
        return asked
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError, IndexError):
        return None
    if when.tzinfo is None:  # RFC 9110 dates are GMT; a naive parse means "no zone given"
        return None
    return max(0.0, when.timestamp() - now)


def decide(
    status: int | None,
    headers: Mapping[str, str],
    *,
    attempt: int,
    max_retries: int,
    now: float,
    jitter: float,
) -> Decision:
    """What to do after attempt number `attempt` (1-based) failed.

    `status` is the HTTP status, or None for a connection failure before the body started
    (always retryable: nothing was received). `max_retries` counts retries, not attempts.
    """
    if status is not None:
        hint = _should_retry_hint(headers)
        if hint is False:
            return Decision(False, reason="server_said_no")
        if hint is None and not (status in RETRYABLE_STATUSES or status >= 500):
            return Decision(False, reason="not_retryable")
    asked = retry_after(headers, now)
    if asked is not None and asked > MAX_RETRY_AFTER_S:
        return Decision(False, asked, reason="retry_after_too_long")
    delay = asked if asked is not None else backoff_delay(attempt, jitter)
    if attempt > max_retries:
        return Decision(False, delay, reason="retries_exhausted")
    return Decision(True, delay)
