"""Log output for the server: human text (default) or one JSON object per line (`--log-format
json`) for log shippers. Access-log records carry their fields in `record.access`; in JSON they
become top-level keys. Nothing here sees request headers, so keys cannot leak through it.
"""

from __future__ import annotations

import logging
import sys
import time
from typing import Any, Literal

import msgspec

LogFormat = Literal["text", "json"]
_encode = msgspec.json.Encoder().encode
LOG_FIELD_MAX_CHARS = 2000

# Control characters (C0, DEL, C1) and the Unicode line separators, as visible escapes: a
# client-chosen path or model name must never start a line of its own (a forged log record).
_ESCAPES = {c: f"\\x{c:02x}" for c in (*range(0x20), *range(0x7F, 0xA0))}
_ESCAPES.update({0x0A: "\\n", 0x0D: "\\r", 0x09: "\\t", 0x2028: "\\u2028", 0x2029: "\\u2029"})


def escape(value: str, limit: int | None = LOG_FIELD_MAX_CHARS) -> str:
    """`value` fit for one log line: control characters escaped, cut to `limit` characters."""
    if limit is not None and len(value) > limit:
        value = f"{value[:limit]}...({len(value) - limit} more characters)"
    return value.translate(_ESCAPES)


class TextFormatter(logging.Formatter):
    """`time LEVEL logger: message`, the message escaped (a traceback keeps its lines)."""

    def formatMessage(self, record: logging.LogRecord) -> str:
        record.message = escape(record.message, None)
        return super().formatMessage(record)


class JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        out: dict[str, Any] = {
            "time": time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(record.created))
            + f".{int(record.msecs):03d}Z",
            "level": record.levelname.lower(),
            "logger": record.name,
            "message": escape(record.getMessage(), None),
        }
        access = getattr(record, "access", None)
        if isinstance(access, dict):
            out.update(access)
        if record.exc_info:
            out["exception"] = self.formatException(record.exc_info)
        return _encode(out).decode()


def configure_logging(fmt: LogFormat = "text", level: int = logging.INFO) -> None:
    handler = logging.StreamHandler(sys.stderr)
    if fmt == "json":
        handler.setFormatter(JsonFormatter())
    else:
        handler.setFormatter(
            TextFormatter("%(asctime)s %(levelname)s %(name)s: %(message)s", "%H:%M:%S")
        )
    root = logging.getLogger()
    for old in list(root.handlers):
        root.removeHandler(old)
    root.addHandler(handler)
    root.setLevel(level)
    # httpx logs every request at INFO: too loud next to our access log.
    logging.getLogger("httpx").setLevel(max(level, logging.WARNING))
