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
import re
from dataclasses import dataclass, field
from typing import Any

import msgspec

from ..errors import (
    ConfigError,
    IdleTimeoutError,
    InputError,
    ProviderError,
    RetryLimitError,
    StreamError,
    UnexpectedStatusError,
    UpstreamUnreachableError,
    WirebridgeError,
)
from ..store.errors import (
    InvalidParameterError,
    PreviousResponseNotFoundError,
    ResponseNotFoundError,
    StoreError,
)

JSON = dict[str, Any]
_encode = msgspec.json.Encoder().encode
_decode = msgspec.json.Decoder().decode

# Words upstreams use for an over-long prompt (OpenAI, vLLM, llama.cpp, Ollama, DeepSeek, ...).
_CONTEXT = re.compile(
    r"context[_ ]length|context window|maximum context|context size|exceeds? the (available )?"
    r"context|prompt is too long|too many tokens|maximum number of tokens|n_ctx",
    re.IGNORECASE,
)


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


def _is_context_overflow(message: str, code: str | None) -> bool:
    return code == "context_length_exceeded" or bool(_CONTEXT.search(message))


def map_exception(exc: BaseException, upstream_url: str = "") -> ApiError:
    """Any failure of a turn -> the error answer (and the `response.failed` code)."""
    if isinstance(exc, ApiError):
        return exc
    if isinstance(exc, InputError):
        return ApiError.invalid(str(exc), param=exc.param or None)
    if isinstance(exc, UpstreamUnreachableError):
        return ApiError(502, str(exc), "upstream_error", code="upstream_unreachable")
    if isinstance(exc, RetryLimitError):
        if exc.status == 429:
            wait = exc.retry_after
            headers = {"Retry-After": str(max(1, math.ceil(wait)))} if wait is not None else {}
            message = f"the upstream is rate limiting ({exc})"
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
        status = exc.status if exc.status is not None and exc.status >= 500 else 502
        return ApiError(status, str(exc), "upstream_error", code="upstream_error")
    if isinstance(exc, UnexpectedStatusError):
        detail, code = _upstream_detail(exc.body)
        message = f"upstream answered HTTP {exc.status}: {detail or '<empty body>'}"
        if _is_context_overflow(detail, code):
            return ApiError(
                400,
                message,
                "invalid_request_error",
                code="context_length_exceeded",
                failed_code="context_length_exceeded",
            )
        if exc.status in (401, 403):
            # The bridge's own key for the upstream is wrong: that is not the client's 401, and a
            # 401 would make clients (Codex) think their key for the bridge was refused.
            return ApiError(
                502,
                f"{message} (check the provider's API key)",
                "upstream_error",
                code="upstream_auth",
            )
        if 400 <= exc.status < 500:
            return ApiError(exc.status, message, "invalid_request_error", code=code)
        return ApiError(502, message, "upstream_error", code="upstream_error")
    if isinstance(exc, IdleTimeoutError):
        return ApiError(504, str(exc), "upstream_error", code="upstream_timeout")
    if isinstance(exc, StreamError):
        return ApiError(502, str(exc), "upstream_error", code="upstream_stream_error")
    if isinstance(exc, ProviderError):
        code = str(exc.code) if exc.code is not None else None
        if _is_context_overflow(exc.message, code):
            return ApiError(
                400,
                str(exc),
                "invalid_request_error",
                code="context_length_exceeded",
                failed_code="context_length_exceeded",
            )
        if code in ("rate_limit_exceeded", "429") or "rate limit" in exc.message.lower():
            return ApiError(
                429,
                str(exc),
                "rate_limit_error",
                code="rate_limit_exceeded",
                failed_code="rate_limit_exceeded",
            )
        return ApiError(502, str(exc), "upstream_error", code=code or "upstream_error")
    if isinstance(exc, PreviousResponseNotFoundError):
        return ApiError.invalid(str(exc), param=exc.param, code=exc.code)
    if isinstance(exc, ResponseNotFoundError):
        return ApiError(404, str(exc), "invalid_request_error", code=exc.code)
    if isinstance(exc, InvalidParameterError):
        return ApiError.invalid(str(exc), param=exc.param, code=exc.code)
    if isinstance(exc, StoreError):  # its message never holds a password
        return ApiError(500, f"response store: {exc}", "server_error", code="store_error")
    if isinstance(exc, ConfigError):
        return ApiError(500, f"bridge configuration: {exc}", "server_error", code="config_error")
    if isinstance(exc, WirebridgeError):
        return ApiError(502, str(exc), "upstream_error", code="upstream_error")
    where = f" while talking to {upstream_url}" if upstream_url else ""
    return ApiError(
        500, f"internal error{where}: {type(exc).__name__}: {exc}", "server_error", code="internal"
    )
