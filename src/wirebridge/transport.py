"""The HTTP shell: POST a Chat Completions request, with retries, and hand back the open stream.

All decisions (what to retry, how long to wait) live in `retry.py`; this module only does the
I/O. Keys are read from the environment per request and never logged (`redact_headers`).
"""

from __future__ import annotations

import logging
import random
import time
from collections.abc import Awaitable, Callable
from typing import Any

import anyio
import httpx
import msgspec

from . import __version__
from .errors import RetryLimitError, UnexpectedStatusError, UpstreamUnreachableError
from .provider import Provider
from .retry import MAX_RETRY_AFTER_S, retry_delay, should_retry

log = logging.getLogger("wirebridge.transport")
USER_AGENT = f"wirebridge/{__version__}"
SECRET_HEADERS = frozenset({"authorization", "api-key", "x-api-key", "openai-api-key"})
_encode = msgspec.json.Encoder().encode

Sleep = Callable[[float], Awaitable[Any]]


def redact_headers(
    headers: dict[str, str], secret_names: set[str] | frozenset[str] = frozenset()
) -> dict[str, str]:
    """Headers safe to log: credentials and env-sourced values replaced by `***`."""
    out = {}
    for name, value in headers.items():
        secret = name.lower() in SECRET_HEADERS or name in secret_names
        out[name] = "***" if secret else value
    return out


def request_headers(provider: Provider) -> dict[str, str]:
    headers = {
        "Content-Type": "application/json",
        "Accept": "text/event-stream",
        "User-Agent": USER_AGENT,
    }
    headers.update(provider.headers())
    key = provider.api_key()  # raises ConfigError naming a missing variable
    if key:
        headers["Authorization"] = f"Bearer {key}"
    return headers


def http_timeout(provider: Provider) -> httpx.Timeout:
    """The idle timeout is httpx's read timeout: it counts between received bytes."""
    idle = provider.stream_idle_timeout_ms / 1000.0
    return httpx.Timeout(connect=min(idle, 30.0), read=idle, write=min(idle, 60.0), pool=idle)


async def open_stream(
    http: httpx.AsyncClient,
    provider: Provider,
    payload: dict[str, Any],
    *,
    sleep: Sleep = anyio.sleep,
    clock: Callable[[], float] = time.time,
    rand: Callable[[], float] = random.random,
) -> httpx.Response:
    """POST the payload; retry 408/409/429/5xx and connection errors; return a 2xx response.

    The response is open and streaming; the caller must close it.
    """
    url = provider.chat_url
    headers = request_headers(provider)
    body = _encode(payload)
    if log.isEnabledFor(logging.DEBUG):
        secrets = set((provider.env_http_headers or {}).keys())
        log.debug(
            "POST %s headers=%s payload=%s", url, redact_headers(headers, secrets), body.decode()
        )
    attempts = provider.request_max_retries + 1
    for attempt in range(1, attempts + 1):
        try:
            request = http.build_request(
                "POST", url, content=body, headers=headers, params=provider.query_params
            )
            response = await http.send(request, stream=True)
        except (httpx.TransportError, OSError) as exc:
            cause = str(exc) or type(exc).__name__
            if attempt == attempts:
                raise UpstreamUnreachableError(url, cause) from exc
            delay = retry_delay({}, attempt, clock(), rand())
            log.warning(
                "upstream %s unreachable (%s); retry %d in %.2fs", url, cause, attempt, delay
            )
            await sleep(delay)
            continue
        if 200 <= response.status_code < 300:
            return response
        status = response.status_code
        try:
            raw = await response.aread()
        except httpx.HTTPError:
            raw = b""
        finally:
            await response.aclose()
        text = raw.decode("utf-8", "replace")
        request_id = response.headers.get("x-request-id")
        if not should_retry(status, response.headers):
            raise UnexpectedStatusError(status, text, request_id)
        delay = retry_delay(response.headers, attempt, clock(), rand())
        if delay > MAX_RETRY_AFTER_S:
            raise RetryLimitError(
                status,
                f"upstream answered HTTP {status} and asked to retry after {delay:.0f} s, "
                f"more than the {MAX_RETRY_AFTER_S:.0f} s we wait",
                body=text,
                request_id=request_id,
                retry_after=delay,
            )
        if attempt == attempts:
            raise RetryLimitError(status, body=text, request_id=request_id, retry_after=delay)
        log.warning("upstream answered HTTP %d; retry %d in %.2fs", status, attempt, delay)
        await sleep(delay)
    raise AssertionError("unreachable")  # pragma: no cover
