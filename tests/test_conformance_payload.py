"""Every payload vector: through `build_chat_payload`, and as the JSON that reaches a server."""

from __future__ import annotations

from typing import Any

import pytest

from wirebridge import Client, Prompt, Provider, build_chat_payload
from wirebridge.testing import Reply, ScriptedUpstream, text_body

from .conftest import load_vectors
from .vectors import normalize, normalize_tools

VECTORS = load_vectors("payload")


def _prompt(vector: dict[str, Any]) -> Prompt:
    return Prompt(vector["instructions"], vector["input"], vector.get("tools", []))


def _provider(vector: dict[str, Any], base_url: str = "http://127.0.0.1:9/v1") -> Provider:
    return Provider(name="vector", base_url=base_url, **(vector.get("provider") or {}))


def _check(payload: dict[str, Any], vector: dict[str, Any]) -> None:
    expect = vector["expect"]
    assert normalize(payload["messages"]) == normalize(expect["messages"])
    if "tools" in expect:
        assert normalize_tools(payload.get("tools", []), expect["tools"]) == normalize(
            expect["tools"]
        )


@pytest.mark.parametrize("vector", VECTORS, ids=[v["name"] for v in VECTORS])
def test_payload_vector_maps_as_specified(vector: dict[str, Any]) -> None:
    payload = build_chat_payload(_prompt(vector), model="m", provider=_provider(vector))
    _check(payload, vector)
    assert payload["model"] == "m"
    assert payload["stream"] is True


@pytest.mark.anyio
@pytest.mark.parametrize("vector", VECTORS, ids=[v["name"] for v in VECTORS])
async def test_payload_vector_arrives_at_the_server(vector: dict[str, Any]) -> None:
    async with ScriptedUpstream([Reply(text_body(["ok"]))]) as up:
        async with Client(_provider(vector, up.base_url), model="m") as client:
            events = [e async for e in client.stream(_prompt(vector))]
        assert events[-1].type == "completed"
        (request,) = up.requests
        assert request.method == "POST"
        assert request.path == "/v1/chat/completions"
        _check(request.json, vector)
