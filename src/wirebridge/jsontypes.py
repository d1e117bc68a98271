"""Type aliases for JSON data, shared so modules agree on what a JSON object is."""

from __future__ import annotations

from typing import Any, TypeAlias

JSON: TypeAlias = dict[str, Any]
"""A JSON object, as `json.loads` returns it: items, events, Response objects."""
