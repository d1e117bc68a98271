"""Bounded echoes: a value a client sent, cut to a length fit for an error message or a log line.

A client controls ids, model names and paths; echoing a 60 KB id back whole (or logging it) costs
bandwidth and log storage for nothing. The head identifies the value; the count says it was cut.
"""

from __future__ import annotations

ECHO_MAX_CHARS = 200
MESSAGE_MAX_CHARS = 2000


def clip(value: str, limit: int = ECHO_MAX_CHARS) -> str:
    """`value`, or its first `limit` characters and how many were cut."""
    if len(value) <= limit:
        return value
    return f"{value[:limit]}...({len(value) - limit} more characters)"
