"""Every stream vector through the whole bridge: the streamed Response's items match the
vector's aggregated view, and they go out one after another.

The aggregated view (the library's) holds one reasoning item, then the message, then the calls.
On the wire the reasoning item closes where the answer or a call starts, so the bridge's output
may split it (reasoning that resumes is a new item) and may add one last reasoning item for
provider state known only at the end; joined per kind, text, reasoning and calls must equal the
view's, and no item may open while another is open.
"""

from __future__ import annotations

from typing import Any

import httpx
import pytest

from wirebridge.provider import Config, Provider
from wirebridge.responses.testing import (
    check_stream_invariants,
    parse_sse,
    running_bridge,
    validate_events,
)
from wirebridge.testing import Reply, ScriptedUpstream

from .vectors import load_all_vectors, normalize, vector_body

# Vectors that end in an error, or with no item at all (the bridge refuses an empty answer with a
# 502 before streaming), have no output to compare.
VECTORS = [
    v
    for v in load_all_vectors("stream")
    if v.get("error") is None and any(e["type"] == "output_item_done" for e in v["aggregated"])
]

pytestmark = pytest.mark.anyio


def joined(items: list[dict[str, Any]]) -> dict[str, Any]:
    """Text, reasoning text and provider state joined per kind; calls in order."""
    out: dict[str, Any] = {"text": "", "reasoning": "", "state": [], "calls": []}
    for item in items:
        kind = item["type"]
        if kind == "message":
            out["text"] += "".join(p["text"] for p in item["content"])
        elif kind == "reasoning":
            out["reasoning"] += "".join(p["text"] for p in item.get("content") or [])
            if item.get("encrypted_content"):
                out["state"].append(item["encrypted_content"])
        else:
            out["calls"].append(normalize(item, in_item=True))
    return out


@pytest.mark.parametrize("vector", VECTORS, ids=[v["name"] for v in VECTORS])
async def test_vector_through_the_bridge(vector: dict[str, Any]) -> None:
    want = [e["item"] for e in vector["aggregated"] if e["type"] == "output_item_done"]
    async with ScriptedUpstream(default=Reply(vector_body(vector))) as upstream:
        provider = Provider(name="v", base_url=upstream.base_url, **(vector.get("provider") or {}))
        async with (
            running_bridge(Config({"v": provider}, "v")) as bridge,
            httpx.AsyncClient(timeout=30) as http,
        ):
            body = {"model": "m", "input": "hi", "stream": True, "tools": vector.get("tools", [])}
            answer = await http.post(bridge.base_url + "/responses", json=body)
    events = parse_sse(answer.content)
    validate_events(events)
    final = check_stream_invariants(events)
    open_now: list[str] = []
    for e in events:
        if e["type"] == "response.output_item.added":
            assert not open_now, f"{e['item']['type']} added while {open_now} open"
            open_now.append(e["item"]["id"])
        elif e["type"] == "response.output_item.done":
            open_now.remove(e["item"]["id"])
    got = joined(final["output"])
    expected = joined(want)
    assert got["text"] == expected["text"]
    assert got["reasoning"] == expected["reasoning"]
    assert got["state"] == expected["state"]
    assert [c["call_id"] for c in got["calls"]] == [c["call_id"] for c in expected["calls"]]
    for g, w in zip(got["calls"], expected["calls"], strict=True):
        assert g["type"] == w["type"] and g.get("name") == w.get("name")
