"""The pure retry policy (rules T): which answers retry, and how long to wait, as plain data."""

from __future__ import annotations

import email.utils

import pytest
from hypothesis import given
from hypothesis import strategies as st

from wirebridge.upstream.retry import (
    MAX_BACKOFF_S,
    MAX_RETRY_AFTER_S,
    Decision,
    backoff_delay,
    decide,
    retry_after,
)

NOW = 1_800_000_000.0


def should_retry(status: int, headers: dict[str, str]) -> bool:
    """Whether a first failed attempt with this answer is retried (budget left)."""
    return decide(status, headers, attempt=1, max_retries=3, now=NOW, jitter=0.5).retry


@pytest.mark.parametrize("status", [408, 409, 429, 500, 502, 503, 504, 599])
def test_retryable_statuses(status: int) -> None:
    assert should_retry(status, {})


@pytest.mark.parametrize("status", [400, 401, 403, 404, 413, 422])
def test_client_errors_do_not_retry(status: int) -> None:
    assert not should_retry(status, {})


def test_x_should_retry_overrides_the_status() -> None:
    assert should_retry(400, {"x-should-retry": "true"})
    assert not should_retry(503, {"x-should-retry": "false"})
    assert should_retry(503, {"x-should-retry": "maybe"})  # unreadable hint: status decides


def test_backoff_follows_design_formula_at_middle_jitter() -> None:
    assert [backoff_delay(n, 0.5) for n in (1, 2, 3, 4)] == [0.2, 0.4, 0.8, 1.6]


@given(st.integers(min_value=1, max_value=100), st.floats(min_value=0, max_value=0.999999))
def test_backoff_stays_within_jitter_band_and_cap(attempt: int, jitter: float) -> None:
    delay = backoff_delay(attempt, jitter)
    nominal = 0.2 * 2.0 ** (attempt - 1)
    assert delay <= MAX_BACKOFF_S
    if nominal * 1.1 < MAX_BACKOFF_S:
        assert nominal * 0.9 - 1e-9 <= delay < nominal * 1.1 + 1e-9


def test_retry_after_ms_wins_over_retry_after() -> None:
    assert retry_after({"retry-after-ms": "250", "retry-after": "7"}, NOW) == 0.25


def test_retry_after_seconds_and_http_date() -> None:
    assert retry_after({"retry-after": "3"}, NOW) == 3.0
    date = email.utils.formatdate(NOW + 30, usegmt=True)
    assert retry_after({"retry-after": date}, NOW) == pytest.approx(30.0)
    past = email.utils.formatdate(NOW - 30, usegmt=True)
    assert retry_after({"retry-after": past}, NOW) == 0.0


@pytest.mark.parametrize("value", ["soon", "", "nan", "Mon, 99 Foo 2026"])
def test_unreadable_retry_after_counts_as_absent(value: str) -> None:
    assert retry_after({"retry-after": value}, NOW) is None
    assert retry_after({"retry-after-ms": value}, NOW) is None


@given(st.text(max_size=40), st.text(max_size=40))
def test_retry_after_never_raises_and_is_never_negative(ms: str, value: str) -> None:
    asked = retry_after({"retry-after-ms": ms, "retry-after": value}, NOW)
    assert asked is None or asked >= 0


def test_decide_retries_until_the_limit_then_gives_up() -> None:
    first = decide(503, {}, attempt=1, max_retries=2, now=NOW, jitter=0.5)
    assert first == Decision(True, 0.2)
    last = decide(503, {}, attempt=3, max_retries=2, now=NOW, jitter=0.5)
    assert not last.retry and last.reason == "retries_exhausted"


def test_decide_gives_up_on_a_retry_after_over_the_cap() -> None:
    decision = decide(429, {"retry-after": "121"}, attempt=1, max_retries=4, now=NOW, jitter=0)
    assert decision == Decision(False, 121.0, "retry_after_too_long")
    at_cap_header = {"retry-after": str(MAX_RETRY_AFTER_S)}
    at_cap = decide(429, at_cap_header, attempt=1, max_retries=4, now=NOW, jitter=0)
    assert at_cap.retry and at_cap.delay == MAX_RETRY_AFTER_S


def test_decide_connection_failures_retry_with_backoff() -> None:
    assert decide(None, {}, attempt=2, max_retries=4, now=NOW, jitter=0.5) == Decision(True, 0.4)


def test_decide_names_why_a_status_is_not_retried() -> None:
    assert decide(400, {}, attempt=1, max_retries=4, now=NOW, jitter=0).reason == "not_retryable"
    hint = {"x-should-retry": "false"}
    assert decide(503, hint, attempt=1, max_retries=4, now=NOW, jitter=0).reason == (
        "server_said_no"
    )
