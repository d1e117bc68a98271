"""Pure helpers for a background run's event log: frames in, frames out, the crash verdict.

The encoder's output is a run of SSE frames, each `event: ...\\ndata: {"type":...,
"sequence_number":N,...}\\n\\n` (JSON never holds a raw newline, so a blank line only ends a
frame). The log keeps each frame whole with its number, so a replay is byte-for-byte what a
live client got. No I/O here.
"""

from __future__ import annotations

import json
import re
from typing import Any

_SEQ = re.compile(rb'"sequence_number":(\d+)')

ABANDONED_MESSAGE = (
    "the bridge running this background response stopped (it crashed, was killed or shut "
    "down) before the response finished; the output so far is kept"
)
SHUTDOWN_MESSAGE = "the bridge shut down before this background response finished"


def split_frames(data: bytes) -> list[tuple[int, str]]:
    """Encoded frames -> (sequence number, frame text) pairs, in order."""
    out: list[tuple[int, str]] = []
    for chunk in data.split(b"\n\n"):
        if not chunk or chunk.startswith(b":"):  # nothing, or a keep-alive comment
            continue
        found = _SEQ.search(chunk)
        if found is None:
            raise ValueError(f"an encoded frame without a sequence number: {chunk[:80]!r}")
        out.append((int(found.group(1)), (chunk + b"\n\n").decode()))
    return out


def abandoned(response_json: str, seq: int) -> tuple[str, tuple[int, str]]:
    """A run whose bridge died: its Response as `failed` (open items `incomplete`), and the
    `response.failed` frame (number `seq`) that ends its event log."""
    response: dict[str, Any] = json.loads(response_json)
    response["status"] = "failed"
    response["error"] = {"code": "server_error", "message": ABANDONED_MESSAGE}
    for item in response.get("output") or []:
        if isinstance(item, dict) and item.get("status") == "in_progress":
            item["status"] = "incomplete"
    text = json.dumps(response, separators=(",", ":"))
    event = {"type": "response.failed", "sequence_number": seq, "response": response}
    frame = f"event: response.failed\ndata: {json.dumps(event, separators=(',', ':'))}\n\n"
    return text, (seq, frame)
