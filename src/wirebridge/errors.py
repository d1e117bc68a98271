"""Every error wirebridge raises, in one place, so callers can catch by cause.

Messages state the cause in words a user can act on; HTTP errors carry the status, a bounded
excerpt of the body and the upstream's request id. Nothing here ever holds an API key.
"""

from __future__ import annotations

BODY_EXCERPT_LIMIT = 2000


def excerpt(body: str | bytes, limit: int = BODY_EXCERPT_LIMIT) -> str:
    """A bounded, printable excerpt of an upstream body for error messages."""
    text = body.decode("utf-8", "replace") if isinstance(body, bytes) else body
    text = text.strip()
    return text if len(text) <= limit else text[:limit] + f"... [{len(text) - limit} more chars]"


class WirebridgeError(Exception):
    """Base class of every error wirebridge raises on purpose."""


class ConfigError(WirebridgeError):
    """Bad configuration: an unknown provider, a missing API-key variable, a bad TOML value."""


class InputError(WirebridgeError, ValueError):
    """A malformed input item or tool; names the item's index and the offending field."""

    def __init__(self, message: str, *, index: int | None = None, field: str | None = None):
        self.index = index
        self.field = field
        where = []
        if index is not None:
            where.append(f"input[{index}]")
        if field:
            where.append(field)
        prefix = ".".join(where)
        super().__init__(f"{prefix}: {message}" if prefix else message)

    @property
    def param(self) -> str:
        """The OpenAI-style `param` path of the error (e.g. `input[3].call_id`)."""
        if self.index is None:
            return self.field or ""
        return f"input[{self.index}]" + (f".{self.field}" if self.field else "")


class UnexpectedStatusError(WirebridgeError):
    """The upstream answered with a status that is not retried (e.g. 400, 401, 404)."""

    def __init__(self, status: int, body: str, request_id: str | None = None):
        self.status = status
        self.body = excerpt(body)
        self.request_id = request_id
        rid = f" (request id {request_id})" if request_id else ""
        super().__init__(f"upstream answered HTTP {status}{rid}: {self.body or '<empty body>'}")


class RetryLimitError(WirebridgeError):
    """Retries ran out (or the server asked for a wait longer than we allow)."""

    def __init__(
        self,
        status: int | None,
        message: str | None = None,
        *,
        body: str = "",
        request_id: str | None = None,
        retry_after: float | None = None,
    ):
        self.status = status
        self.body = excerpt(body)
        self.request_id = request_id
        self.retry_after = retry_after
        if message is None:
            what = f"HTTP {status}" if status is not None else "connection failures"
            message = f"gave up after retries: last answer was {what}"
            if self.body:
                message += f": {self.body}"
        super().__init__(message)


class UpstreamUnreachableError(RetryLimitError):
    """No connection to the upstream could be made (refused, DNS, TLS) within the retries."""

    def __init__(self, url: str, cause: str):
        self.url = url
        super().__init__(None, f"could not reach the upstream at {url}: {cause}")


class StreamError(WirebridgeError):
    """The stream broke: bad bytes, a dropped connection, or an end before completion.

    `retryable` marks breaks that a fresh attempt may cure (a dropped connection, an idle
    timeout, a truncated body), as opposed to a body that is wrong in itself (bad UTF-8).
    """

    def __init__(self, message: str, *, retryable: bool = False):
        self.retryable = retryable
        super().__init__(message)


class UpstreamTimeoutError(StreamError):
    """The upstream took too long: a deadline of the turn passed (answered 504).

    Never retried: the time is already spent, and a retry would spend it again (another prompt
    prefill, another full wait), which is how a silent upstream used to cost minutes per turn.
    """

    def __init__(self, message: str):
        super().__init__(message, retryable=False)


class IdleTimeoutError(UpstreamTimeoutError):
    """No byte arrived from the upstream within the idle timeout (`stream_idle_timeout_ms`);
    also no status line within it."""


class NoContentTimeoutError(UpstreamTimeoutError):
    """Bytes came, but no `data:` event within `stream_no_content_timeout_ms` (comments alone)."""


class TurnTimeoutError(UpstreamTimeoutError):
    """The turn's overall deadline (`turn_timeout_ms`) passed, retries and waits included."""


class StreamLimitError(StreamError):
    """An SSE line or event (or a whole JSON answer) over `stream_max_event_bytes`.

    Not retried: the same request would send the same oversized answer again.
    """


class ProviderError(WirebridgeError):
    """The upstream put an error object inside the stream."""

    def __init__(self, message: str, code: str | int | None = None):
        self.message = message
        self.code = code
        suffix = f" (code {code})" if code is not None else ""
        super().__init__(f"upstream error: {message}{suffix}")
