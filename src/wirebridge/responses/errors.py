"""Errors on the server's face: the OpenAI error object, and our exceptions mapped onto it.

Two moments, two shapes. Before the response started (no byte sent yet) a failure is an HTTP
status with `{"error": {"message", "type", "param", "code"}}`, the shape every OpenAI client
parses. After streaming began it is a `response.failed` event whose `error.code` is one of the
codes clients act on (Codex: `context_length_exceeded` stops retrying, `rate_limit_exceeded`
waits). `map_exception` decides both from one table so they never disagree.

Messages say what failed and where (the upstream URL, its status and a body excerpt); they never
carry credentials (our exceptions never hold them).
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import msgspec

from ..chat.vendors import is_context_overflow
from ..errors import (
    ConfigError,
    InputError,
    ProviderError,
    RetryLimitError,
    StreamError,
    UnexpectedStatusError,
    UpstreamTimeoutError,
    UpstreamUnreachableError,
    WirebridgeError,
)
from ..jsontypes import JSON
from ..store.errors import (
    InvalidParameterError,
    PreviousResponseNotFoundError,
    ResponseNotFoundError,
    StoreError,
)
from .clip import MESSAGE_MAX_CHARS, clip

_encode = msgspec.json.Encoder().encode
_decode = msgspec.json.Decoder().decode


@dataclass(slots=True)
class ApiError(Exception):
    """An error answer: HTTP status, the OpenAI error object, extra headers, the failed code."""

    status: int
    message: str
    type: str = "invalid_request_error"
    param: str | None = None
    code: str | None = None
    headers: dict[str, str] = field(default_factory=dict)
    failed_code: str = "server_error"  # `response.failed` code when streaming already began

    def __post_init__(self) -> None:
        self.message = clip(self.message, MESSAGE_MAX_CHARS)  # a 60 KB id is not echoed whole
        Exception.__init__(self, self.message)

    @classmethod
    def invalid(
        cls, message: str, *, param: str | None = None, code: str | None = None
    ) -> ApiError:
        return cls(400, message, "invalid_request_error", param, code, failed_code="invalid_prompt")

    def body(self) -> JSON:
        return {
            "error": {
                "message": self.message,
                "type": self.type,
                "param": self.param,
                "code": self.code,
            }
        }

    def encode(self) -> bytes:
        return _encode(self.body())


def _upstream_detail(body: str) -> tuple[str, str | None]:
    """The message and code inside an upstream's JSON error body, else the text itself."""
    try:
        data = _decode(body)
    except msgspec.DecodeError:
        return body, None
    error = data.get("error") if isinstance(data, dict) else None
    if isinstance(error, dict):
        message = error.get("message")
        code = error.get("code") or error.get("type")
        return (
            message if isinstance(message, str) else body,
            code if isinstance(code, str) else None,
        )
    if isinstance(error, str):
        return error, None
    if isinstance(data, dict) and isinstance(data.get("message"), str):
        return data["message"], None
    return body, None


# On every answer to an upstream failure: the bridge already spent its own retries, and a
# client retrying on top would multiply them (5 bridge attempts x 3 SDK attempts); the OpenAI
# SDKs honour this header. Retry-After still tells a client that retries on its own when.
NO_CLIENT_RETRY = {"x-should-retry": "false"}


def _rate_limited(message: str, wait: float | None = None) -> ApiError:
    headers = {"Retry-After": str(max(1, math.ceil(wait)))} if wait is not None else {}
    headers.update(NO_CLIENT_RETRY)
    if wait is not None:  # Codex reads the wait from this phrase in response.failed
        message += f"; please try again in {wait:.1f}s"
    return ApiError(
        429,
        message,
        "rate_limit_error",
        code="rate_limit_exceeded",
        headers=headers,
        failed_code="rate_limit_exceeded",
    )


def _context_overflow(message: str) -> ApiError:
    return ApiError(
        400,
        message,
        "invalid_request_error",
        code="context_length_exceeded",
        failed_code="context_length_exceeded",
    )


def _upstream(status: int, message: str, code: str = "upstream_error") -> ApiError:
    """After the commit, `response.failed` carries the same code as the status answer would."""
    return ApiError(
        status,
        message,
        "upstream_error",
        code=code,
        headers=dict(NO_CLIENT_RETRY),
        failed_code=code,
    )


def _ours(message: str, code: str) -> ApiError:
    """A failure of the bridge itself (store, configuration): messages never hold a secret."""
    return ApiError(500, message, "server_error", code=code)


def _retries_ran_out(exc: RetryLimitError) -> ApiError:
    if exc.status == 429:
        return _rate_limited(f"the upstream is rate limiting ({exc})", exc.retry_after)
    status = exc.status if exc.status is not None and exc.status >= 500 else 502
    return _upstream(status, str(exc))


def _refused(exc: UnexpectedStatusError) -> ApiError:
    detail, code = _upstream_detail(exc.body)
    message = f"upstream answered HTTP {exc.status}: {detail or '<empty body>'}"
    if is_context_overflow(detail, code):
        return _context_overflow(message)
    if exc.status in (401, 403):
        # The bridge's own key for the upstream is wrong: that is not the client's 401, and a
        # 401 would make clients (Codex) think their key for the bridge was refused.
        return _upstream(502, f"{message} (check the provider's API key)", "upstream_auth")
    if 400 <= exc.status < 500:
        return ApiError(exc.status, message, "invalid_request_error", code=code)
    return _upstream(502, message)


def _in_stream(exc: ProviderError) -> ApiError:
    code = str(exc.code) if exc.code is not None else None
    if is_context_overflow(exc.message, code):
        return _context_overflow(str(exc))
    if code in ("rate_limit_exceeded", "429") or "rate limit" in exc.message.lower():
        return _rate_limited(str(exc))
    return _upstream(502, str(exc), code or "upstream_error")


def _invalid_store_param(exc: PreviousResponseNotFoundError | InvalidParameterError) -> ApiError:
    return ApiError.invalid(str(exc), param=exc.param, code=exc.code)


# Exception class -> its answer. The first row whose class matches wins, so a subclass stands
# before its base (UpstreamTimeoutError before StreamError, UpstreamUnreachableError before
# RetryLimitError, the store's errors before StoreError, everything before WirebridgeError).
_TABLE: tuple[tuple[type[BaseException], Callable[[Any], ApiError]], ...] = (
    (ApiError, lambda exc: exc),
    (InputError, lambda exc: ApiError.invalid(str(exc), param=exc.param or None)),
    (UpstreamUnreachableError, lambda exc: _upstream(502, str(exc), "upstream_unreachable")),
    (RetryLimitError, _retries_ran_out),
    (UnexpectedStatusError, _refused),
    (UpstreamTimeoutError, lambda exc: _upstream(504, str(exc), "upstream_timeout")),
    (StreamError, lambda exc: _upstream(502, str(exc), "upstream_stream_error")),
    (ProviderError, _in_stream),
    (PreviousResponseNotFoundError, _invalid_store_param),
    (ResponseNotFoundError, lambda exc: ApiError(404, str(exc), code=exc.code)),
    (InvalidParameterError, _invalid_store_param),
    # Store messages never hold a password (see redact_dsn).
    (
        StoreError,
        lambda exc: ApiError(500, f"response store: {exc}", "server_error", code="store_error"),
    ),
    (
        ConfigError,
        lambda exc: ApiError(
            500, f"bridge configuration: {exc}", "server_error", code="config_error"
        ),
    ),
    (WirebridgeError, lambda exc: _upstream(502, str(exc))),
)


def map_exception(exc: BaseException, upstream_url: str = "") -> ApiError:
    """Any failure of a turn -> the error answer (and the `response.failed` code)."""
    for kind, answer in _TABLE:
        if isinstance(exc, kind):
            return answer(exc)
    where = f" while talking to {upstream_url}" if upstream_url else ""
    return _ours(f"internal error{where}: {type(exc).__name__}: {exc}", "internal")
