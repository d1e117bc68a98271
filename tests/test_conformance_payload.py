"""Every payload vector (tests/conformance and tests/vectors): through `build_chat_payload`, and as
the JSON that reaches a server."""

from __future__ import annotations

from typing import Any

import pytest

from wirebridge import Client, Prompt, Provider, build_chat_payload
from wirebridge.testing import Reply, ScriptedUpstream, text_body

from .vectors import load_all_vectors, normalize, normalize_tools

VECTORS = load_all_vectors("payload")


def _prompt(vector: dict[str, Any]) -> Prompt:
    return Prompt(
        vector["instructions"],
        vector["input"],
        vector.get("tools", []),
        tool_choice=vector.get("tool_choice"),
    )


def _provider(vector: dict[str, Any], base_url: str = "http://127.0.0.1:9/v1") -> Provider:
    return Provider(name="vector", base_url=base_url, **(vector.get("provider") or {}))


def _check(payload: dict[str, Any], vector: dict[str, Any]) -> None:
    expect = vector["expect"]
    assert normalize(payload["messages"]) == normalize(expect["messages"])
    if "tools" in expect:
        assert normalize_tools(payload.get("tools", []), expect["tools"]) == normalize(
            expect["tools"]
        )
    if "tool_choice" in expect:
        assert payload.get("tool_choice") == expect["tool_choice"]


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


def test_both_vector_sets_are_loaded_and_names_are_unique() -> None:
    names = [v["name"] for v in VECTORS]
    assert len(names) == len(set(names)), "a vector name is used twice"
    assert "tool_round_trip" in names  # tests/conformance
    assert "tool_choice_named_custom_picks_emulated_function" in names  # tests/vectors
