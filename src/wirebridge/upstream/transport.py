"""The HTTP shell: POST a Chat Completions request, with retries, and hand back the open stream.

What to retry and how long to wait is decided in `retry.py` (pure), and whether the wait fits
the turn in `budget.py` (pure: a server streaming its answer bounds the retries by its commit
window, so a failure known before the first upstream byte keeps its HTTP status; a turn has an
overall deadline); this module only does the I/O and turns a give-up into the error that names
its cause. A connected upstream that sends no status line within the idle timeout is not
retried: that is a timeout (504), not an unreachable upstream, and retrying would multiply it.
It owns the request's wire form:
URL and query parameters, headers (bearer key read from the environment per request,
`Accept: text/event-stream`, a `User-Agent` naming wirebridge), and the per-request timeouts.

Secrets never reach a log line or an error: headers are redacted by name, and every secret
value (the API key, env-sourced header values) is also scrubbed from the text of debug lines.
"""

from __future__ import annotations

import logging
import random
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

import anyio
import httpx
import msgspec

from .._version import __version__
from ..errors import (
    ConfigError,
    IdleTimeoutError,
    RetryLimitError,
    UnexpectedStatusError,
    UpstreamUnreachableError,
    excerpt,
)
from ..ops.hooks import upstream_attempt
from ..provider import Provider
from ..redact import redact_headers, redact_url, scrub
from .budget import NO_BUDGET, Budget
from .retry import MAX_RETRY_AFTER_S, Decision, decide, retry_after

log = logging.getLogger("wirebridge.upstream")
USER_AGENT = f"wirebridge/{__version__} python-httpx/{httpx.__version__}"
ERROR_BODY_READ_LIMIT = 64 * 1024  # read at most this much of an error body
REQUEST_ID_HEADERS = ("x-request-id", "request-id", "x-amzn-requestid", "cf-ray")
_encode = msgspec.json.Encoder().encode

Sleep = Callable[[float], Awaitable[Any]]


def request_headers(provider: Provider) -> dict[str, str]:
    """The headers of every request to `provider`; raises `ConfigError` for a missing key."""
    return _prepare_headers(provider)[0]


def _prepare_headers(provider: Provider) -> tuple[dict[str, str], list[str]]:
    """Headers, and the secret values among them (for scrubbing logs)."""
    headers = {
        "Content-Type": "application/json",
        "Accept": "text/event-stream",
        "User-Agent": USER_AGENT,
    }
    configured = provider.headers()
    headers.update(configured)  # a provider may override Accept or User-Agent on purpose
    secrets = [configured[h] for h in (provider.env_http_headers or {}) if h in configured]
    key = provider.api_key()  # ConfigError naming a missing variable (rules T)
    if key:
        headers["Authorization"] = f"Bearer {key}"
        secrets.append(key)
    return headers, secrets


def http_timeout(provider: Provider) -> httpx.Timeout:
    """The idle timeout is httpx's read timeout: it counts between received bytes (rules T).

    `stream_idle_timeout_ms = 0` turns the idle timeout off.
    """
    idle = provider.stream_idle_timeout_ms / 1000.0 or None

    def cap(seconds: float) -> float:
        return seconds if idle is None else min(idle, seconds)

    return httpx.Timeout(connect=cap(30.0), read=idle, write=cap(60.0), pool=cap(60.0))


def request_id(headers: httpx.Headers) -> str | None:
    """The upstream's id for the request, for error messages and bug reports."""
    for name in REQUEST_ID_HEADERS:
        value: str | None = headers.get(name)
        if value:
            return value
    return None


async def _read_error_body(response: httpx.Response) -> str:
    """At most `ERROR_BODY_READ_LIMIT` bytes of a non-2xx body; never raises."""
    parts: list[bytes] = []
    size = 0
    try:
        async for chunk in response.aiter_bytes():
            parts.append(chunk)
            size += len(chunk)
            if size >= ERROR_BODY_READ_LIMIT:
                break
    except httpx.HTTPError:
        pass
    finally:
        with anyio.CancelScope(shield=True):
            await response.aclose()
    return b"".join(parts)[:ERROR_BODY_READ_LIMIT].decode("utf-8", "replace")


@dataclass(frozen=True, slots=True)
class Outgoing:
    """One turn's request in its wire form, built once and re-sent as is on every retry."""

    provider: Provider
    request: httpx.Request
    shown_url: str  # the URL safe to log (no userinfo, secret parameters masked)
    secrets: tuple[str, ...]  # values scrubbed from every log line and error text


def build_request(http: httpx.AsyncClient, provider: Provider, payload: dict[str, Any]) -> Outgoing:
    """The POST to `{base_url}/chat/completions` (rules T); `ConfigError` for a missing key."""
    headers, secrets = _prepare_headers(provider)
    body = _encode(payload)
    shown_url = redact_url(provider.chat_url, provider.query_params)
    if log.isEnabledFor(logging.DEBUG):
        secret_names = set(provider.env_http_headers or {})
        line = f"POST {shown_url} headers={redact_headers(headers, secret_names)} payload="
        log.debug("%s", scrub(line + body.decode("utf-8", "replace"), secrets))
    try:
        request = http.build_request(
            "POST",
            provider.chat_url,
            content=body,
            headers=headers,
            params=provider.query_params,
            timeout=http_timeout(provider),
        )
    except (httpx.UnsupportedProtocol, httpx.InvalidURL) as exc:
        raise _bad_url(provider, shown_url, exc) from exc
    return Outgoing(provider, request, shown_url, tuple(secrets))


@dataclass(frozen=True, slots=True)
class Refusal:
    """A non-2xx answer, read (boundedly) and closed: what the retry policy decides on."""

    status: int
    headers: httpx.Headers
    text: str  # the body excerpt, secrets scrubbed
    request_id: str | None


async def send_once(http: httpx.AsyncClient, out: Outgoing) -> httpx.Response | Refusal:
    """One attempt: an open 2xx response, or the refusal. Connection failures raise httpx's
    `TransportError` (or `OSError`); a URL httpx cannot use raises `ConfigError`."""
    try:
        with upstream_attempt(out) as seen:  # wirebridge.ops: metrics, span, traceparent, capture
            response = seen.opened(await http.send(out.request, stream=True))
    except (httpx.UnsupportedProtocol, httpx.InvalidURL) as exc:
        raise _bad_url(out.provider, out.shown_url, exc) from exc
    status = response.status_code
    if log.isEnabledFor(logging.DEBUG):
        shown = scrub(str(redact_headers(dict(response.headers))), out.secrets)
        log.debug("HTTP %d from %s headers=%s", status, out.shown_url, shown)
    if 200 <= status < 300:
        return response
    # Some servers echo the key they rejected: scrub it before it reaches an error.
    text = scrub(await _read_error_body(response), out.secrets)
    if log.isEnabledFor(logging.DEBUG):
        log.debug("error body: %s", excerpt(text))
    return Refusal(status, response.headers, text, request_id(response.headers))


async def open_stream(
    http: httpx.AsyncClient,
    provider: Provider,
    payload: dict[str, Any],
    *,
    sleep: Sleep = anyio.sleep,
    clock: Callable[[], float] = time.time,
    rand: Callable[[], float] = random.random,
    budget: Budget = NO_BUDGET,
) -> httpx.Response:
    """POST the payload; retry per `retry.decide` within `budget`; return an open 2xx response.

    The caller must close the response. Raises `ConfigError` (missing key, bad URL),
    `UnexpectedStatusError` (a status not retried), `RetryLimitError` (retries ran out, the
    server asked to wait too long, or the wait does not fit the budget: see budget.py),
    `UpstreamUnreachableError` (no connection within retries), `IdleTimeoutError` (connected,
    but no status line within the idle timeout: not retried, so idle time is never multiplied).
    """
    out = build_request(http, provider, payload)
    max_retries = provider.request_max_retries
    attempt = 0
    while True:
        attempt += 1
        answer: httpx.Response | Refusal | Exception
        try:
            answer = await send_once(http, out)
        except httpx.ReadTimeout as exc:
            raise IdleTimeoutError(
                f"the upstream at {out.shown_url} sent no status line within "
                f"{provider.stream_idle_timeout_ms} ms (stream_idle_timeout_ms); not retried"
            ) from exc
        except (httpx.TransportError, OSError) as exc:
            answer = exc
        if isinstance(answer, httpx.Response):
            return answer
        status = answer.status if isinstance(answer, Refusal) else None
        headers = answer.headers if isinstance(answer, Refusal) else httpx.Headers()
        decision = decide(
            status, headers, attempt=attempt, max_retries=max_retries, now=clock(), jitter=rand()
        )
        if decision.retry:
            refused = budget.refuses_wait(anyio.current_time(), decision.delay)
            if refused is not None:
                decision = Decision(False, decision.delay, reason=refused)
        if not decision.retry:
            raise _give_up(out, answer, decision, attempt, clock()) from (
                answer if isinstance(answer, BaseException) else None
            )
        log.warning(
            "upstream %s: %s; retry %d/%d in %.2f s",
            out.shown_url,
            _what(answer, provider),
            attempt,
            max_retries,
            decision.delay,
        )
        await sleep(decision.delay)


def _what(answer: Refusal | BaseException, provider: Provider) -> str:
    """One attempt's failure, in words for a log line or an error message."""
    if isinstance(answer, Refusal):
        rid = answer.request_id
        return f"answered HTTP {answer.status}" + (f" (request id {rid})" if rid else "")
    detail = str(answer)
    name = type(answer).__name__
    return f"{name}: {detail}" if detail else name


def _give_up(
    out: Outgoing, answer: Refusal | BaseException, decision: Decision, attempt: int, now: float
) -> Exception:
    """The error that ends the retries, naming its cause."""
    if not isinstance(answer, Refusal):
        cause = f"{_what(answer, out.provider)} ({_attempts(attempt)})"
        if decision.reason in ("past_commit", "past_deadline"):
            cause += f"; {_no_time(decision)}"
        return UpstreamUnreachableError(out.shown_url, cause)
    status, text, rid = answer.status, answer.text, answer.request_id
    if decision.reason in ("not_retryable", "server_said_no"):
        return UnexpectedStatusError(status, text, rid)
    where = f"HTTP {status}" + (f" (request id {rid})" if rid else "")
    shown_body = excerpt(text) or "<empty body>"
    if decision.reason == "retry_after_too_long":
        message = (
            f"upstream answered {where} and asked to retry after {decision.delay:.0f} s, "
            f"longer than the {MAX_RETRY_AFTER_S:.0f} s wirebridge waits; giving up: "
            f"{shown_body}"
        )
    elif decision.reason in ("past_commit", "past_deadline"):
        message = (
            f"upstream answered {where} after {_attempts(attempt)}; {_no_time(decision)}: "
            f"{shown_body}"
        )
    else:
        max_retries = out.provider.request_max_retries
        message = (
            f"gave up after {_attempts(attempt)} (request_max_retries = {max_retries}): "
            f"upstream answered {where}: {shown_body}"
        )
    # The server's own wait, whenever it named one: the bridge passes it on (Retry-After).
    asked = retry_after(answer.headers, now)
    return RetryLimitError(status, message, body=text, request_id=rid, retry_after=asked)


def _no_time(decision: Decision) -> str:
    """Why a retry was not made although retries were left (budget.py)."""
    if decision.reason == "past_deadline":
        return f"not retried: the next wait ({decision.delay:.1f} s) would pass turn_timeout_ms"
    return f"not retried: the next wait ({decision.delay:.1f} s) would pass the answer's commit"


def _bad_url(provider: Provider, shown_url: str, exc: Exception) -> ConfigError:
    return ConfigError(f"provider {provider.name!r}: bad base_url {shown_url}: {exc}")


def _attempts(n: int) -> str:
    return f"{n} attempt{'s' if n != 1 else ''}"
