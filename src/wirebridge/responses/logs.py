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


class JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        out: dict[str, Any] = {
            "time": time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(record.created))
            + f".{int(record.msecs):03d}Z",
            "level": record.levelname.lower(),
            "logger": record.name,
            "message": record.getMessage(),
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
            logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s", "%H:%M:%S")
        )
    root = logging.getLogger()
    for old in list(root.handlers):
        root.removeHandler(old)
    root.addHandler(handler)
    root.setLevel(level)
    # httpx logs every request at INFO: too loud next to our access log.
    logging.getLogger("httpx").setLevel(max(level, logging.WARNING))
