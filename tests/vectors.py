"""Loading and comparison rules for the vectors (DESIGN.md, "Conformance vectors").

Two sets, run by the same tests: tests/conformance/ (the shared vectors, copied byte for byte) and
tests/vectors/ (the project's own, same format). Ours may also use one extension of the payload
format: an optional `tool_choice` (passed into the Prompt), checked against `expect.tool_choice`
when that key is present (null there means "not sent").
"""

from __future__ import annotations

import contextlib
import json
from pathlib import Path
from typing import Any

from wirebridge.chat.tools import CUSTOM_INPUT_HINT

IGNORED_ITEM_KEYS = ("id", "status")
TESTS = Path(__file__).parent
VECTOR_SETS = {"conformance": TESTS / "conformance", "ours": TESTS / "vectors"}


def load_all_vectors(kind: str) -> list[dict[str, Any]]:
    """Every `kind` ("payload" or "stream") vector: the shared ones, then ours."""
    out = []
    for root in VECTOR_SETS.values():
        out += [json.loads(p.read_text()) for p in sorted((root / kind).glob("*.json"))]
    return out


def normalize(value: Any, *, in_item: bool = False) -> Any:
    """Null-valued keys count as absent; `arguments` compare as parsed JSON."""
    if isinstance(value, dict):
        out = {}
        for key, v in value.items():
            if v is None or (in_item and key in IGNORED_ITEM_KEYS):
                continue
            if key == "arguments" and isinstance(v, str):
                with contextlib.suppress(ValueError):
                    v = json.loads(v)
            out[key] = normalize(v, in_item=in_item or key == "item")
        return out
    if isinstance(value, list):
        return [normalize(v, in_item=in_item) for v in value]
    return value


def normalize_tools(tools: list[dict[str, Any]], expected: list[dict[str, Any]]) -> list[Any]:
    """An emulated custom tool compares by name, parameters and description prefix."""
    out = []
    for got, want in zip(tools, expected, strict=False):
        got = json.loads(json.dumps(got))
        gf, wf = got.get("function", {}), want.get("function", {})
        desc, want_desc = gf.get("description"), wf.get("description")
        emulated = isinstance(desc, str) and CUSTOM_INPUT_HINT in desc
        if emulated and isinstance(want_desc, str) and desc.startswith(want_desc):
            gf["description"] = want_desc
        out.append(normalize(got))
    out.extend(normalize(t) for t in tools[len(expected) :])
    return out


def merge_deltas(events: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Consecutive deltas of one type joined (their split is free under `merge_deltas`)."""
    out: list[dict[str, Any]] = []
    for event in events:
        if out and "delta" in event and out[-1]["type"] == event["type"] and "delta" in out[-1]:
            out[-1] = {**out[-1], "delta": out[-1]["delta"] + event["delta"]}
        else:
            out.append(dict(event))
    return out


def vector_body(vector: dict[str, Any]) -> bytes:
    if "body_hex" in vector:
        return bytes.fromhex(vector["body_hex"])
    return str(vector["body"]).encode("utf-8")
