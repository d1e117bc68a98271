"""The bridge over real HTTP on loopback: a real server in front of the scripted upstream."""

from __future__ import annotations

import json
import logging
from collections.abc import AsyncIterator
from functools import partial
from typing import Any

import anyio
import httpx
import pytest

from wirebridge.provider import Config, Provider, Route
from wirebridge.responses import BridgeSettings
from wirebridge.responses.testing import (
    check_stream_invariants,
    parse_sse,
    passthrough_config,
    running_bridge,
    validate_events,
    validate_response,
)
from wirebridge.testing import (
    Reply,
    ScriptedUpstream,
    SeenRequest,
    chat_chunk,
    sse_body,
    text_body,
)

from .conftest import free_port

pytestmark = pytest.mark.anyio

USAGE = {
    "prompt_tokens": 11,
    "completion_tokens": 5,
    "total_tokens": 16,
    "prompt_tokens_details": {"cached_tokens": 4},
    "completion_tokens_details": {"reasoning_tokens": 2},
}


def fast_provider(base_url: str, **options: Any) -> Provider:
    """No retries, short idle timeout: failure tests answer at once."""
    options = {"name": "up", "request_max_retries": 0, "stream_max_retries": 0, **options}
    return Provider(base_url=base_url, **options)


def settings_for(upstream: ScriptedUpstream, **options: Any) -> BridgeSettings:
    return BridgeSettings(Config({"up": fast_provider(upstream.base_url)}, "up"), **options)


async def stream_events(http: httpx.AsyncClient, url: str, **body: Any) -> list[dict[str, Any]]:
    payload = {"model": "m", "input": "hi", "stream": True, **body}
    async with http.stream("POST", f"{url}/responses", json=payload) as response:
        assert response.status_code == 200, await response.aread()
        assert response.headers["content-type"].startswith("text/event-stream")
        data = await response.aread()
    events = parse_sse(data)
    validate_events(events)
    return events


@pytest.fixture
async def http() -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(timeout=10) as client:
        yield client


# -- the happy paths ----------------------------------------------------------------------------


async def test_streaming_text_is_a_valid_responses_stream(
    upstream: ScriptedUpstream, http: httpx.AsyncClient
) -> None:
    upstream.push(Reply(text_body(["Hel", "lo"], reasoning=["hmm"], usage=USAGE)))
    async with running_bridge(settings_for(upstream)) as bridge:
        events = await stream_events(http, bridge.base_url)
    final = check_stream_invariants(events)
    assert final["status"] == "completed"
    assert [o["type"] for o in final["output"]] == ["reasoning", "message"]
    assert final["output"][1]["content"][0]["text"] == "Hello"
    assert final["usage"]["input_tokens_details"]["cached_tokens"] == 4
    assert final["usage"]["output_tokens_details"]["reasoning_tokens"] == 2
    deltas = [e["delta"] for e in events if e["type"] == "response.output_text.delta"]
    assert deltas == ["Hel", "lo"]


async def test_upstream_split_into_tiny_writes_gives_the_same_answer(
    upstream: ScriptedUpstream, http: httpx.AsyncClient
) -> None:
    body = text_body(["one ", "two ", "three"], reasoning=["a", "b"], usage=USAGE)
    upstream.push(Reply(body), Reply(body, split=(1, 5), seed=3))
    async with running_bridge(settings_for(upstream)) as bridge:
        whole = check_stream_invariants(await stream_events(http, bridge.base_url))
        split = check_stream_invariants(await stream_events(http, bridge.base_url))

    def strip(response: dict[str, Any]) -> Any:
        return [{k: v for k, v in o.items() if k != "id"} for o in response["output"]]

    assert strip(whole) == strip(split)


async def test_non_streaming_returns_the_response_object(
    upstream: ScriptedUpstream, http: httpx.AsyncClient
) -> None:
    upstream.push(Reply(text_body(["Hi ", "there"], usage=USAGE)))
    async with running_bridge(settings_for(upstream)) as bridge:
        response = await http.post(
            f"{bridge.base_url}/responses", json={"model": "m", "input": "x"}
        )
    assert response.status_code == 200
    body = response.json()
    validate_response(body)
    assert body["id"].startswith("resp_") and body["status"] == "completed"
    assert body["output"][0]["content"][0]["text"] == "Hi there"
    assert body["usage"]["total_tokens"] == 16
    assert response.headers["x-request-id"].startswith("req_")


async def test_length_finish_is_response_incomplete(
    upstream: ScriptedUpstream, http: httpx.AsyncClient
) -> None:
    upstream.push(Reply(text_body(["cut"], finish_reason="length")))
    async with running_bridge(settings_for(upstream)) as bridge:
        events = await stream_events(http, bridge.base_url, max_output_tokens=3)
    final = check_stream_invariants(events)
    assert events[-1]["type"] == "response.incomplete"
    assert final["incomplete_details"] == {"reason": "max_output_tokens"}
    assert upstream.requests[0].json["max_tokens"] == 3


async def test_reasoning_summary_events_follow_the_request(
    upstream: ScriptedUpstream, http: httpx.AsyncClient
) -> None:
    body = text_body(["ok"], reasoning=["think"])
    upstream.push(Reply(body), Reply(body))
    async with running_bridge(settings_for(upstream)) as bridge:
        asked = await stream_events(http, bridge.base_url, reasoning={"summary": "auto"})
        plain = await stream_events(http, bridge.base_url)
    assert "response.reasoning_summary_text.delta" in [e["type"] for e in asked]
    assert not [e for e in plain if "summary" in e["type"]]


# -- routing ------------------------------------------------------------------------------------


async def test_routes_map_model_names_and_clients_cannot_pick_the_upstream(
    http: httpx.AsyncClient,
) -> None:
    async with (
        ScriptedUpstream(default=Reply(text_body(["a"]))) as first,
        ScriptedUpstream(default=Reply(text_body(["b"]))) as second,
    ):
        config = Config(
            {
                "one": fast_provider(first.base_url, name="one"),
                "two": fast_provider(second.base_url, name="two"),
            },
            "one",
            routes={"fast": Route("two", "qwen3:0.6b"), "same": Route("two")},
        )
        async with running_bridge(config) as bridge:
            for model in ("fast", "same", "anything-else"):
                await stream_events(
                    http, bridge.base_url, model=model, base_url="http://198.51.100.1/v1"
                )
            models = (await http.get(f"{bridge.base_url}/models")).json()
    turns = [r for r in first.requests if r.method == "POST"]
    assert [r.json["model"] for r in second.requests if r.method == "POST"] == [
        "qwen3:0.6b",
        "same",
    ]
    assert [r.json["model"] for r in turns] == ["anything-else"]
    # The default upstream's own list (here not a model list at all) adds nothing; the routes stay.
    assert {m["id"]: m["owned_by"] for m in models["data"]} == {"fast": "two", "same": "two"}
    assert models["object"] == "list"


async def test_healthz_answers(upstream: ScriptedUpstream, http: httpx.AsyncClient) -> None:
    async with running_bridge(settings_for(upstream)) as bridge:
        response = await http.get(f"{bridge.url}/healthz")
    assert response.status_code == 200 and response.json()["status"] == "ok"


# -- request errors -----------------------------------------------------------------------------


async def test_bad_field_type_is_400_with_param_over_http(
    upstream: ScriptedUpstream, http: httpx.AsyncClient
) -> None:
    async with running_bridge(settings_for(upstream)) as bridge:
        response = await http.post(
            f"{bridge.base_url}/responses", json={"model": "m", "input": "x", "temperature": "hot"}
        )
    assert response.status_code == 400
    assert response.json()["error"]["param"] == "temperature"
    assert not upstream.requests


async def test_unknown_path_is_404_in_the_openai_shape(
    upstream: ScriptedUpstream, http: httpx.AsyncClient
) -> None:
    async with running_bridge(settings_for(upstream)) as bridge:
        response = await http.get(f"{bridge.base_url}/nothing")
    assert response.status_code == 404
    assert response.json()["error"]["code"] == "not_found"


async def test_unknown_fields_are_ignored_and_logged_at_debug(
    upstream: ScriptedUpstream, http: httpx.AsyncClient, caplog: pytest.LogCaptureFixture
) -> None:
    upstream.push(Reply(text_body(["ok"])))
    with caplog.at_level(logging.DEBUG, logger="wirebridge.server"):
        async with running_bridge(settings_for(upstream)) as bridge:
            await stream_events(http, bridge.base_url, brand_new_option={"x": 1})
    assert "ignoring unknown request fields: brand_new_option" in caplog.text


async def test_previous_response_id_without_a_store_is_400_naming_it(
    upstream: ScriptedUpstream, http: httpx.AsyncClient
) -> None:
    async with running_bridge(settings_for(upstream)) as bridge:
        response = await http.post(
            f"{bridge.base_url}/responses",
            json={"model": "m", "input": "x", "previous_response_id": "resp_123"},
        )
    assert response.status_code == 400
    assert response.json()["error"]["param"] == "previous_response_id"
    assert not upstream.requests


# -- limits -------------------------------------------------------------------------------------


async def test_body_over_the_limit_is_413(
    upstream: ScriptedUpstream, http: httpx.AsyncClient
) -> None:
    big = {"model": "m", "input": "x" * 5000}

    async def chunked() -> AsyncIterator[bytes]:
        data = json.dumps(big).encode()
        for i in range(0, len(data), 512):
            yield data[i : i + 512]

    async with running_bridge(settings_for(upstream, max_body_bytes=4096)) as bridge:
        declared = await http.post(f"{bridge.base_url}/responses", json=big)
        streamed = await http.post(f"{bridge.base_url}/responses", content=chunked())
        small = await http.post(f"{bridge.base_url}/responses", json={"model": 5})
    assert declared.status_code == 413 and streamed.status_code == 413
    assert declared.json()["error"]["code"] == "request_too_large"
    assert small.status_code == 400  # under the limit: read and validated
    assert not upstream.requests


async def test_streams_beyond_the_limit_get_503(
    upstream: ScriptedUpstream, http: httpx.AsyncClient
) -> None:
    first_chunk = sse_body([chat_chunk({"content": "hold"})], done=False)
    upstream.push(Reply(first_chunk + b"data: [DONE]\n\n", stall_after=len(first_chunk)))
    async with running_bridge(settings_for(upstream, max_concurrent_streams=1)) as bridge:
        payload = {"model": "m", "input": "x", "stream": True}
        async with http.stream("POST", f"{bridge.base_url}/responses", json=payload) as held:
            assert held.status_code == 200
            refused = await http.post(f"{bridge.base_url}/responses", json=payload)
            assert refused.status_code == 503
            assert refused.headers["retry-after"] == "1"
            assert refused.json()["error"]["code"] == "overloaded"
        health = await http.get(f"{bridge.url}/healthz")
    assert health.status_code == 200


# -- auth ---------------------------------------------------------------------------------------


async def test_api_keys_require_a_bearer_key(
    upstream: ScriptedUpstream, http: httpx.AsyncClient, caplog: pytest.LogCaptureFixture
) -> None:
    upstream.push(Reply(text_body(["ok"])))
    keys = frozenset({"sk-bridge-one", "sk-bridge-two"})
    payload = {"model": "m", "input": "x"}
    with caplog.at_level(logging.DEBUG):
        async with running_bridge(settings_for(upstream, api_keys=keys)) as bridge:
            url = f"{bridge.base_url}/responses"
            missing = await http.post(url, json=payload)
            wrong = await http.post(url, json=payload, headers={"Authorization": "Bearer nope"})
            basic = await http.post(url, json=payload, headers={"Authorization": "Basic eA=="})
            models = await http.get(f"{bridge.base_url}/models")
            ok = await http.post(
                url, json=payload, headers={"Authorization": "Bearer sk-bridge-two"}
            )
            health = await http.get(f"{bridge.url}/healthz")
    for refused in (missing, wrong, basic, models):
        assert refused.status_code == 401
        assert refused.json()["error"]["code"] == "invalid_api_key"
    assert ok.status_code == 200 and health.status_code == 200
    assert len(upstream.requests) == 1
    assert "sk-bridge" not in caplog.text


# -- upstream failures --------------------------------------------------------------------------


async def test_upstream_429_keeps_retry_after(
    upstream: ScriptedUpstream, http: httpx.AsyncClient
) -> None:
    upstream.push(
        Reply(
            b'{"error":{"message":"slow down"}}',
            status=429,
            headers={"Retry-After": "3"},
            content_type="application/json",
        )
    )
    async with running_bridge(settings_for(upstream)) as bridge:
        response = await http.post(
            f"{bridge.base_url}/responses", json={"model": "m", "input": "x", "stream": True}
        )
    assert response.status_code == 429
    assert response.headers["retry-after"] == "3"
    assert response.json()["error"]["code"] == "rate_limit_exceeded"


async def test_unreachable_upstream_is_502_naming_its_url(http: httpx.AsyncClient) -> None:
    dead = f"http://127.0.0.1:{free_port()}/v1"
    async with running_bridge(Config({"up": fast_provider(dead)}, "up")) as bridge:
        response = await http.post(
            f"{bridge.base_url}/responses", json={"model": "m", "input": "x", "stream": True}
        )
    assert response.status_code == 502
    error = response.json()["error"]
    assert f"{dead}/chat/completions" in error["message"]
    assert error["code"] == "upstream_unreachable"


async def test_upstream_context_overflow_is_400_context_length_exceeded(
    upstream: ScriptedUpstream, http: httpx.AsyncClient
) -> None:
    upstream.push(
        Reply(
            b'{"error":{"message":"This model\'s maximum context length is 4096 tokens"}}',
            status=400,
            content_type="application/json",
        )
    )
    async with running_bridge(settings_for(upstream)) as bridge:
        response = await http.post(
            f"{bridge.base_url}/responses", json={"model": "m", "input": "x", "stream": True}
        )
    assert response.status_code == 400
    assert response.json()["error"]["code"] == "context_length_exceeded"


async def test_failure_after_streaming_began_is_response_failed(
    upstream: ScriptedUpstream, http: httpx.AsyncClient
) -> None:
    started = sse_body([chat_chunk({"content": "partial "})], done=False)
    upstream.push(Reply(started + b"data: {", disconnect_after=len(started)))
    async with running_bridge(settings_for(upstream)) as bridge:
        events = await stream_events(http, bridge.base_url)
    final = check_stream_invariants(events)
    assert events[-1]["type"] == "response.failed"
    assert final["error"]["code"] == "upstream_stream_error"  # the same code a 502 would carry
    assert "partial " in [e.get("delta") for e in events]


async def test_provider_error_mid_stream_maps_its_code(
    upstream: ScriptedUpstream, http: httpx.AsyncClient
) -> None:
    error = {"error": {"message": "Rate limit reached for tokens", "code": "rate_limit_exceeded"}}
    upstream.push(Reply(sse_body([chat_chunk({"content": "a"}), error], done=False)))
    async with running_bridge(settings_for(upstream)) as bridge:
        events = await stream_events(http, bridge.base_url)
    assert events[-1]["type"] == "response.failed"
    assert events[-1]["response"]["error"]["code"] == "rate_limit_exceeded"


# -- cancellation -------------------------------------------------------------------------------


async def test_client_disconnect_mid_stream_cancels_the_upstream_request(
    upstream: ScriptedUpstream,
) -> None:
    first = sse_body([chat_chunk({"content": "hello"})], done=False)
    upstream.push(Reply(first + b"data: [DONE]\n\n", stall_after=len(first)))
    payload = {"model": "m", "input": "x", "stream": True}
    async with (
        running_bridge(settings_for(upstream)) as bridge,
        httpx.AsyncClient(timeout=10) as http,
    ):
        async with http.stream("POST", f"{bridge.base_url}/responses", json=payload) as response:
            assert response.status_code == 200
            async for chunk in response.aiter_bytes():
                if b"response.output_text.delta" in chunk:
                    break
            assert upstream.open_connections == 1  # the upstream is stalled, not finished
        with anyio.fail_after(1.0):  # cancelled within a second
            await upstream.closed.wait()
    assert upstream.open_connections == 0


async def test_client_disconnect_before_the_first_token_cancels_the_upstream_request() -> None:
    arrived = anyio.Event()

    def stall_before_any_token(request: SeenRequest) -> Reply:
        arrived.set()
        return Reply(text_body(["never"]), stall_after=0)

    payload = {"model": "m", "input": "x", "stream": True}
    async with (
        ScriptedUpstream(default=stall_before_any_token) as upstream,
        running_bridge(settings_for(upstream)) as bridge,
        httpx.AsyncClient(timeout=10) as http,
    ):
        async with anyio.create_task_group() as tg:
            # No header comes back yet (the answer is committed at the first event), so the
            # client gives up while waiting for them, as a user pressing Ctrl-C would.
            tg.start_soon(partial(http.post, f"{bridge.base_url}/responses", json=payload))
            with anyio.fail_after(5):
                await arrived.wait()
            assert upstream.open_connections == 1
            tg.cancel_scope.cancel()
        with anyio.fail_after(1.0):
            await upstream.closed.wait()
        assert upstream.open_connections == 0


# -- logs ---------------------------------------------------------------------------------------


async def test_access_log_names_model_status_and_timing(
    upstream: ScriptedUpstream, http: httpx.AsyncClient, caplog: pytest.LogCaptureFixture
) -> None:
    upstream.push(Reply(text_body(["ok"])))
    with caplog.at_level(logging.INFO, logger="wirebridge.access"):
        async with running_bridge(BridgeSettings(passthrough_config(upstream.base_url))) as bridge:
            await stream_events(http, bridge.base_url, model="qwen3")
    records = [r for r in caplog.records if r.name == "wirebridge.access"]
    assert len(records) == 1
    fields = records[0].access  # type: ignore[attr-defined]
    assert fields["status"] == 200 and fields["model"] == "qwen3" and fields["stream"] is True
    assert fields["outcome"] == "completed" and fields["path"] == "/v1/responses"
    assert fields["ttfb_ms"] is not None and fields["bytes"] > 0
    assert fields["response_id"].startswith("resp_")


# -- slow upstreams -----------------------------------------------------------------------------


async def test_slow_first_token_commits_the_stream_and_keeps_it_alive(
    upstream: ScriptedUpstream, http: httpx.AsyncClient
) -> None:
    pieces = [
        sse_body([chat_chunk({"role": "assistant", "content": ""})], done=False),
        sse_body([chat_chunk({"content": "late"})], done=False),
        sse_body([chat_chunk({}, finish_reason="stop")]),
    ]
    upstream.push(Reply(b"".join(pieces), pieces=pieces, drip_s=0.4))
    settings = settings_for(upstream, commit_after_s=0.05, heartbeat_s=0.1)
    payload = {"model": "m", "input": "x", "stream": True}
    async with (
        running_bridge(settings) as bridge,
        http.stream("POST", f"{bridge.base_url}/responses", json=payload) as response,
    ):
        assert response.status_code == 200
        raw = await response.aread()
    before_delta = raw.split(b"response.output_text.delta")[0]
    assert b"response.created" in before_delta and b"response.in_progress" in before_delta
    assert b": keep-alive\n\n" in before_delta
    events = parse_sse(raw)
    validate_events(events)
    final = check_stream_invariants(events)
    assert final["output"][0]["content"][0]["text"] == "late"


async def test_failure_after_a_committed_silence_is_response_failed(
    upstream: ScriptedUpstream, http: httpx.AsyncClient
) -> None:
    role = sse_body([chat_chunk({"role": "assistant", "content": ""})], done=False)
    upstream.push(Reply(role, pieces=[role], drip_s=0.3, disconnect_after=len(role)))
    async with running_bridge(settings_for(upstream, commit_after_s=0.05)) as bridge:
        events = await stream_events(http, bridge.base_url)
    check_stream_invariants(events)
    assert [e["type"] for e in events] == [
        "response.created",
        "response.in_progress",
        "response.failed",
    ]
    assert "stream closed before completion" in events[-1]["response"]["error"]["message"]


# -- strict types: numbers and booleans sent as strings are refused -----------------------------


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("temperature", "0.5"),
        ("stream", "true"),
        ("max_output_tokens", "12"),
        ("top_p", "0.9"),
        ("parallel_tool_calls", "false"),
    ],
)
async def test_numbers_and_booleans_as_strings_are_400_naming_the_field(
    upstream: ScriptedUpstream, http: httpx.AsyncClient, field: str, value: str
) -> None:
    """The OpenAI API refuses "0.5" for a number and "true" for a boolean; a lax decoder that
    coerced them would send the upstream something the client never asked for."""
    upstream.push(Reply(text_body(["should not be asked"])))
    async with running_bridge(settings_for(upstream)) as bridge:
        response = await http.post(
            f"{bridge.base_url}/responses", json={"model": "m", "input": "x", field: value}
        )
    assert response.status_code == 400, response.text
    assert response.headers["content-type"].startswith("application/json")
    error = response.json()["error"]
    assert error["param"] == field
    assert error["type"] == "invalid_request_error"
    assert not upstream.requests
