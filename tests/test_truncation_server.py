"""`truncation: "auto"` through a real bridge, in front of upstreams that enforce a window.

The scripted upstream counts the prompt with its toy tokenizer (a token a word) and refuses one
that does not fit its window with the error its server kind really gives (testing/windows.py).
What the upstream received shows what was dropped: the retry's messages are the first
attempt's with the oldest ones gone, calls and their outputs together, the instructions and the
last user message kept.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Sequence
from typing import Any

import anyio
import httpx
import openai
import pytest
from opentelemetry.trace import SpanKind
from websockets.asyncio.client import connect

from tests.ops_helpers import recording, scrape_until, value
from wirebridge.chat.request import prepare_chat_request
from wirebridge.ops import OpsSettings
from wirebridge.prompt import Prompt
from wirebridge.provider import Config, Provider
from wirebridge.responses import BridgeSettings
from wirebridge.responses.testing import RunningBridge, passthrough_config, running_bridge
from wirebridge.testing import Reply, ScriptedUpstream, SeenRequest
from wirebridge.testing.servers import ServedModel, model_server
from wirebridge.testing.tokenizers import tokenizing_server
from wirebridge.testing.windows import WindowKind, prompt_tokens, windowed_server

pytestmark = pytest.mark.anyio

WINDOW = 400
TOOL = {
    "type": "function",
    "name": "weather",
    "description": "The weather in a city",
    "parameters": {"type": "object", "properties": {"city": {"type": "string"}}},
}


def words(tag: str, n: int = 60) -> str:
    return " ".join(f"{tag}-{i}" for i in range(n))


def conversation() -> list[dict[str, Any]]:
    """Three earlier exchanges (two of them with a tool call), then a short last question."""
    items: list[dict[str, Any]] = []
    for n, city in enumerate(["", "Paris", "Rome"]):
        items.append({"role": "user", "content": words(f"q{n}")})
        if city:
            call_id = f"call_{city}"
            items.append(
                {
                    "type": "function_call",
                    "call_id": call_id,
                    "name": "weather",
                    "arguments": f'{{"city": "{city}"}}',
                }
            )
            items.append(
                {"type": "function_call_output", "call_id": call_id, "output": words(city)}
            )
        items.append({"role": "assistant", "content": words(f"a{n}")})
    items.append({"role": "user", "content": "And tomorrow?"})
    return items


def chats(upstream: ScriptedUpstream) -> list[SeenRequest]:
    return [r for r in upstream.requests if r.path.endswith("/chat/completions")]


def assert_paired(messages: Sequence[dict[str, Any]]) -> None:
    """Every tool message answers a call of the assistant message before its run of answers,
    and every call is answered."""
    open_calls: set[str] = set()
    for m in messages:
        if m["role"] == "tool":
            assert m["tool_call_id"] in open_calls, m
            open_calls.discard(m["tool_call_id"])
            continue
        assert not open_calls, f"unanswered calls {open_calls} before {m}"
        open_calls = {c["id"] for c in m.get("tool_calls") or ()}
    assert not open_calls


def dropped_prefix(first: list[dict[str, Any]], retry: list[dict[str, Any]]) -> list[Any]:
    """The retry is the first attempt less some oldest messages (after the instructions):
    those messages, by their content (or call ids)."""
    assert retry[0] == first[0] and first[0]["role"] == "system"
    n = len(first) - len(retry)
    assert n > 0 and retry[1:] == first[1 + n :]
    return [m.get("content") or [c["id"] for c in m["tool_calls"]] for m in first[1 : 1 + n]]


async def _create(config: Config, **request: Any) -> tuple[Any, dict[str, str]]:
    async with running_bridge(config) as bridge:
        client = openai.AsyncOpenAI(base_url=bridge.base_url, api_key="k", max_retries=0)
        async with client:
            raw = await client.responses.with_raw_response.create(**request)
            return raw.parse(), dict(raw.headers)


REQUEST: dict[str, Any] = {
    "model": "m",
    "instructions": "Answer briefly.",
    "tools": [TOOL],
    "truncation": "auto",
}


@pytest.mark.parametrize("kind", ["llama.cpp", "vllm", "openai"])
async def test_auto_drops_the_oldest_items_and_the_conversation_goes_on(kind: WindowKind) -> None:
    async with ScriptedUpstream(default=windowed_server(kind, WINDOW)) as up:
        response, headers = await _create(
            passthrough_config(up.base_url), **REQUEST, input=conversation()
        )
    first, retry = (r.json["messages"] for r in chats(up))
    assert len(chats(up)) == 2 and prompt_tokens(chats(up)[0].json) > WINDOW
    assert response.status == "completed" and response.truncation == "auto"
    assert response.output_text == "ok"
    dropped = dropped_prefix(first, retry)
    # The first exchange and the Paris step (its call with its output) went; the Rome step and
    # the last question stayed, and the retry fits with room for the answer.
    assert dropped == [words("q0"), words("a0"), words("q1"), ["call_Paris"], words("Paris")]
    assert retry[-1] == {"role": "user", "content": "And tomorrow?"}
    assert_paired(retry)
    assert prompt_tokens(chats(up)[1].json) <= WINDOW - WINDOW // 10
    assert headers["x-wirebridge-truncated-items"] == "5"


async def test_the_log_says_what_was_dropped(caplog: pytest.LogCaptureFixture) -> None:
    async with ScriptedUpstream(default=windowed_server("vllm", WINDOW)) as up:
        with (
            caplog.at_level(logging.INFO, logger="wirebridge.access"),
            caplog.at_level(logging.INFO, logger="wirebridge.server"),
        ):
            await _create(passthrough_config(up.base_url), **REQUEST, input=conversation())
    assert "dropped the 5 oldest of 11 items and retried" in caplog.text
    access = [getattr(r, "access", None) for r in caplog.records if r.name == "wirebridge.access"]
    assert [a["truncated_items"] for a in access if a and a["path"] == "/v1/responses"] == [5]


async def test_disabled_keeps_the_context_length_error() -> None:
    async with ScriptedUpstream(default=windowed_server("llama.cpp", WINDOW)) as up:
        for truncation in ("disabled", None):
            request = {**REQUEST, "input": conversation(), "truncation": truncation}
            if truncation is None:
                del request["truncation"]
            with pytest.raises(openai.BadRequestError) as caught:
                await _create(passthrough_config(up.base_url), **request)
            assert caught.value.code == "context_length_exceeded"
    assert len(chats(up)) == 2  # one attempt each, no retry


async def test_auto_that_still_does_not_fit_is_the_same_error_after_one_retry() -> None:
    items = [*conversation()[:-1], {"role": "user", "content": words("huge", WINDOW)}]
    async with ScriptedUpstream(default=windowed_server("vllm", WINDOW)) as up:
        with pytest.raises(openai.BadRequestError) as caught:
            await _create(passthrough_config(up.base_url), **REQUEST, input=items)
    assert caught.value.code == "context_length_exceeded"
    first, retry = (r.json["messages"] for r in chats(up))
    # Everything droppable went (down to the last user message), and that was the one retry.
    assert dropped_prefix(first, retry) and retry[1:] == [first[-1]]


async def test_a_stream_is_retried_before_anything_reaches_the_client() -> None:
    async with (
        ScriptedUpstream(default=windowed_server("openai", WINDOW)) as up,
        running_bridge(passthrough_config(up.base_url)) as bridge,
    ):
        client = openai.AsyncOpenAI(base_url=bridge.base_url, api_key="k", max_retries=0)
        async with (
            client,
            client.responses.with_streaming_response.create(
                **REQUEST, input=conversation(), stream=True
            ) as raw,
        ):
            header = raw.headers.get("x-wirebridge-truncated-items")
            events = [e async for e in await raw.parse()]
    assert events[0].type == "response.created"
    assert events[-1].type == "response.completed"
    assert events[-1].response.truncation == "auto"
    assert header == "5" and len(chats(up)) == 2


def _no_numbers_with(probe: ServedModel | None, window_kind: WindowKind) -> Any:
    """An upstream whose overflow error says no numbers; with `probe`, a vLLM model list that
    states the window (as `GET /v1/models` and `wirebridge codex` read it)."""
    chat = windowed_server(window_kind, WINDOW, numbers=False)
    return model_server("vllm", [probe], chat) if probe is not None else chat


async def test_without_numbers_in_the_error_the_probed_window_is_used() -> None:
    script = _no_numbers_with(ServedModel("m", WINDOW), "openai")
    async with ScriptedUpstream(default=script) as up:
        response, headers = await _create(
            passthrough_config(up.base_url), **REQUEST, input=conversation()
        )
    assert response.status == "completed"
    assert "/v1/models" in [r.path for r in up.requests]
    first, retry = (r.json["messages"] for r in chats(up))
    assert_paired(retry)
    assert len(dropped_prefix(first, retry)) == int(headers["x-wirebridge-truncated-items"])


async def test_with_nothing_known_about_half_is_dropped() -> None:
    async with ScriptedUpstream(default=_no_numbers_with(None, "vllm")) as up:
        response, _ = await _create(
            passthrough_config(up.base_url), **REQUEST, input=conversation()
        )
    assert response.status == "completed"
    first, retry = (r.json for r in chats(up))
    assert_paired(retry["messages"])
    assert prompt_tokens(retry) <= prompt_tokens(first) * 0.6


async def test_a_tokenizing_upstream_settles_the_cut_by_exact_counts() -> None:
    chat = windowed_server("llama.cpp", WINDOW, numbers=False)
    count = tokenizing_server("llamacpp")
    listing = model_server("vllm", [ServedModel("m", WINDOW)], chat)

    def script(request: SeenRequest) -> Reply:
        if request.path in ("/apply-template", "/tokenize"):
            return count(request)
        return listing(request)

    async with ScriptedUpstream(default=script) as up:
        config = passthrough_config(up.base_url, tokenize="llamacpp")
        response, _ = await _create(config, **REQUEST, input=conversation())
    assert response.status == "completed"
    paths = [r.path for r in up.requests]
    assert "/tokenize" in paths and paths[-1] == "/v1/chat/completions"
    retry = chats(up)[1].json
    assert prompt_tokens(retry) <= WINDOW - WINDOW // 10
    assert_paired(retry["messages"])


async def test_a_learnt_window_cuts_the_next_turn_before_it_is_sent() -> None:
    longer = [
        *conversation()[:-1],
        {"role": "user", "content": words("q3")},
        {"role": "assistant", "content": words("a3")},
        {"role": "user", "content": "And the day after?"},
    ]
    async with (
        ScriptedUpstream(default=windowed_server("llama.cpp", WINDOW)) as up,
        running_bridge(passthrough_config(up.base_url)) as bridge,
    ):
        client = openai.AsyncOpenAI(base_url=bridge.base_url, api_key="k", max_retries=0)
        async with client:
            first = await client.responses.with_raw_response.create(**REQUEST, input=conversation())
            second = await client.responses.with_raw_response.create(**REQUEST, input=longer)
            other = await client.responses.with_raw_response.create(
                **{**REQUEST, "model": "other"}, input=conversation()
            )
    assert [r.parse().status for r in (first, second, other)] == ["completed"] * 3
    sent = [r.json for r in chats(up)]
    # The first turn was refused, then cut; the second was cut before it was sent (one
    # request), deeper as it is longer; another model's window is not assumed.
    assert [s["model"] for s in sent] == ["m", "m", "m", "other", "other"]
    assert prompt_tokens(sent[0]) > WINDOW and prompt_tokens(sent[3]) > WINDOW
    assert prompt_tokens(sent[2]) <= WINDOW - WINDOW // 10
    assert_paired(sent[2]["messages"])
    assert sent[2]["messages"][-1] == {"role": "user", "content": "And the day after?"}
    cut_first = int(first.headers["x-wirebridge-truncated-items"])
    assert int(second.headers["x-wirebridge-truncated-items"]) > cut_first
    provider = Provider(name="upstream", base_url=up.base_url)
    whole = prepare_chat_request(Prompt("Answer briefly.", longer, [TOOL]), "m", provider)
    dropped = dropped_prefix(whole.payload["messages"], sent[2]["messages"])
    assert len(dropped) == int(second.headers["x-wirebridge-truncated-items"])


async def test_a_websocket_turn_is_truncated_the_same_way() -> None:
    async with (
        ScriptedUpstream(default=windowed_server("llama.cpp", WINDOW)) as up,
        running_bridge(passthrough_config(up.base_url)) as bridge,
        connect(bridge.base_url.replace("http://", "ws://") + "/responses") as ws,
    ):
        await ws.send(json.dumps({"type": "response.create", **REQUEST, "input": conversation()}))
        events: list[dict[str, Any]] = []
        with anyio.fail_after(10):
            while not events or events[-1]["type"] not in ("response.completed", "error"):
                events.append(json.loads(await ws.recv()))
    assert events[-1]["type"] == "response.completed"
    assert events[-1]["response"]["truncation"] == "auto"
    first, retry = (r.json["messages"] for r in chats(up))
    assert len(dropped_prefix(first, retry)) == 5
    assert_paired(retry)


async def _socket_turn(bridge: RunningBridge, **request: Any) -> list[dict[str, Any]]:
    """One `response.create` on a WebSocket of its own: the events, to the last."""
    events: list[dict[str, Any]] = []
    async with connect(bridge.base_url.replace("http://", "ws://") + "/responses") as ws:
        await ws.send(json.dumps({"type": "response.create", **request}))
        with anyio.fail_after(10):
            while not events or events[-1]["type"] not in ("response.completed", "error"):
                events.append(json.loads(await ws.recv()))
    return events


def _counting(chat: Any) -> Any:
    """`chat` for the Chat route, a llama.cpp tokenizer (`/apply-template`, `/tokenize`) beside."""
    count = tokenizing_server("llamacpp")

    def script(request: SeenRequest) -> Reply:
        if request.path in ("/apply-template", "/tokenize"):
            return count(request)
        return chat(request)

    return script


async def test_the_counts_go_through_the_providers_pooled_connections(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from wirebridge.upstream.pool import UpstreamPools

    asked: list[str] = []
    pooled = UpstreamPools.http

    def spy(self: UpstreamPools, provider: Provider) -> httpx.AsyncClient:
        asked.append(provider.name)
        return pooled(self, provider)

    monkeypatch.setattr(UpstreamPools, "http", spy)
    # llama.cpp's error states the window and the prompt: the cut is then checked by counts.
    async with ScriptedUpstream(default=_counting(windowed_server("llama.cpp", WINDOW))) as up:
        config = passthrough_config(up.base_url, tokenize="llamacpp")
        response, headers = await _create(config, **REQUEST, input=conversation())
    assert response.status == "completed" and headers["x-wirebridge-truncated-items"] == "5"
    counts = [r for r in up.requests if r.path == "/tokenize"]
    # Each count took one of the provider's pooled clients (its connections, limits, proxy):
    # none opened a client of its own.
    assert counts and asked == ["upstream"] * len(counts)


def _listed_and_counting() -> Any:
    """llama.cpp's window and tokenizer, behind a vLLM model list stating the window."""
    chat = windowed_server("llama.cpp", WINDOW)
    return _counting(model_server("vllm", [ServedModel("m", WINDOW)], chat))


async def _after_a_listing(config: BridgeSettings | Config, *inputs: Any) -> list[Any]:
    """`GET /v1/models` (as Codex asks at start), then one turn per input: the raw answers."""
    async with running_bridge(config) as bridge:
        client = openai.AsyncOpenAI(base_url=bridge.base_url, api_key="k", max_retries=0)
        async with client:
            assert [m.id async for m in client.models.list()] == ["m"]
            return [
                await client.responses.with_raw_response.create(**REQUEST, input=one)
                for one in inputs
            ]


async def test_a_counted_turn_over_a_probed_window_is_cut_before_it_is_sent(
    caplog: pytest.LogCaptureFixture,
) -> None:
    exporter, tracer = recording()
    async with ScriptedUpstream(default=_listed_and_counting()) as up:
        config = passthrough_config(up.base_url, tokenize="llamacpp")
        settings = BridgeSettings(config, ops=OpsSettings(tracer_provider=tracer))
        with caplog.at_level(logging.INFO, logger="wirebridge.server"):
            [raw] = await _after_a_listing(settings, conversation())
    assert raw.parse().status == "completed"
    # The window came from the listing's cache (no probe of its own); the estimate was over
    # the budget, so the prompt was counted, then cut (its cut checked by a count too), and
    # the upstream saw one request, already cut.
    paths = [r.path for r in up.requests]
    assert paths.count("/v1/models") == 1 and paths[-1] == "/v1/chat/completions"
    assert paths.index("/tokenize") > paths.index("/v1/models")
    [sent] = [r.json for r in chats(up)]
    assert prompt_tokens(sent) <= WINDOW - WINDOW // 10
    assert_paired(sent["messages"])
    assert sent["messages"][-1] == {"role": "user", "content": "And tomorrow?"}
    provider = Provider(name="upstream", base_url=up.base_url)
    whole = prepare_chat_request(Prompt("Answer briefly.", conversation(), [TOOL]), "m", provider)
    assert prompt_tokens(whole.payload) > WINDOW
    dropped = dropped_prefix(whole.payload["messages"], sent["messages"])
    assert len(dropped) == int(raw.headers["x-wirebridge-truncated-items"])
    assert f"dropped the {len(dropped)} oldest of 11 items before sending it" in caplog.text
    [cut] = [s for s in exporter.get_finished_spans() if s.name == "truncate m"]
    assert dict(cut.attributes or {}) == {
        "gen_ai.provider.name": "upstream",
        "gen_ai.request.model": "m",
        "wirebridge.truncation.trigger": "probed_window",
        "wirebridge.truncation.dropped_items": len(dropped),
        "wirebridge.truncation.context_window": WINDOW,
    }


async def test_a_turn_well_under_a_probed_window_is_not_counted() -> None:
    async with ScriptedUpstream(default=_listed_and_counting()) as up:
        config = passthrough_config(up.base_url, tokenize="llamacpp")
        [raw] = await _after_a_listing(config, [{"role": "user", "content": words("q", 20)}])
    assert raw.parse().status == "completed"
    assert "x-wirebridge-truncated-items" not in raw.headers
    # The estimate is well under the budget: no count, the turn sent as it is.
    assert [r.path for r in up.requests] == ["/v1/models", "/v1/chat/completions"]


async def test_without_tokenize_a_probed_window_cuts_only_on_overflow() -> None:
    async with ScriptedUpstream(default=_listed_and_counting()) as up:
        [raw] = await _after_a_listing(passthrough_config(up.base_url), conversation())
    assert raw.parse().status == "completed"
    # An estimate alone would drop items the model may hold: the turn is sent whole, refused,
    # then cut with the numbers of the error.
    first, retry = (r.json for r in chats(up))
    assert prompt_tokens(first) > WINDOW and "/tokenize" not in [r.path for r in up.requests]
    assert len(dropped_prefix(first["messages"], retry["messages"])) == 5


async def test_truncated_turns_and_dropped_items_are_counted_in_the_metrics() -> None:
    async with (
        ScriptedUpstream(default=windowed_server("llama.cpp", WINDOW)) as up,
        running_bridge(passthrough_config(up.base_url)) as bridge,
        httpx.AsyncClient(timeout=10) as http,
    ):
        answer = await http.post(
            f"{bridge.base_url}/responses", json={**REQUEST, "input": conversation()}
        )
        assert answer.headers["x-wirebridge-truncated-items"] == "5"
        # A WebSocket turn has no headers, but counts the same (another model: no learnt window).
        events = await _socket_turn(bridge, **{**REQUEST, "model": "other"}, input=conversation())
        assert events[-1]["type"] == "response.completed"
        untruncated = await http.post(
            f"{bridge.base_url}/responses", json={**REQUEST, "input": "hi"}
        )
        assert untruncated.status_code == 200
        text = await scrape_until(
            http,
            f"{bridge.url}/metrics",
            lambda t: value(t, "wirebridge_truncated_turns_total") == 2,
        )
    for model in ("m", "other"):
        labels = {"provider": "upstream", "model": model}
        assert value(text, "wirebridge_truncated_turns_total", **labels) == 1
        assert value(text, "wirebridge_truncated_items_total", **labels) == 5
    assert len(chats(up)) == 5  # two refused and retried, and the one that fitted


async def test_a_websocket_connection_logs_what_its_turns_dropped(
    caplog: pytest.LogCaptureFixture,
) -> None:
    with (
        caplog.at_level(logging.INFO, logger="wirebridge.access"),
        caplog.at_level(logging.INFO, logger="wirebridge.server"),
    ):
        async with (
            ScriptedUpstream(default=windowed_server("llama.cpp", WINDOW)) as up,
            running_bridge(passthrough_config(up.base_url)) as bridge,
        ):
            events = await _socket_turn(bridge, **REQUEST, input=conversation())

            def lines() -> list[dict[str, Any]]:
                found = [getattr(r, "access", None) for r in caplog.records]
                return [a for a in found if a and a["method"] == "WEBSOCKET"]

            with anyio.fail_after(10):  # the line is written once the server sees the close
                while True:
                    if lines():
                        break
                    await anyio.sleep(0.01)
    assert events[-1]["type"] == "response.completed"
    assert [line["truncated_items"] for line in lines()] == [5]
    response_id = events[-1]["response"]["id"]
    assert f"response {response_id} overflowed" in caplog.text
    assert "dropped the 5 oldest of 11 items and retried" in caplog.text


async def test_a_background_runs_cut_is_traced_and_logged(
    tmp_path: Any, caplog: pytest.LogCaptureFixture
) -> None:
    exporter, tracer = recording()
    with caplog.at_level(logging.INFO, logger="wirebridge.server"):
        async with ScriptedUpstream(default=windowed_server("vllm", WINDOW)) as up:
            settings = BridgeSettings(
                passthrough_config(up.base_url),
                store_at_startup=True,
                store_url=f"sqlite:///{tmp_path}/r.db",
                ops=OpsSettings(tracer_provider=tracer),
            )
            async with running_bridge(settings) as bridge:
                client = openai.AsyncOpenAI(base_url=bridge.base_url, api_key="k", max_retries=0)
                async with client:
                    started = await client.responses.create(
                        **REQUEST, input=conversation(), background=True
                    )
                    with anyio.fail_after(10):
                        while True:
                            polled = await client.responses.retrieve(started.id)
                            if polled.status not in ("queued", "in_progress"):
                                break
                            await anyio.sleep(0.02)
    assert polled.status == "completed"
    spans = exporter.get_finished_spans()
    cut = next(s for s in spans if s.name == "truncate m")
    post = next(s for s in spans if s.kind == SpanKind.SERVER and s.name == "POST /v1/responses")
    # The run outlives its POST (the Response came back queued, with no count in a header):
    # its cut is a child span of the POST's all the same.
    assert cut.parent is not None and cut.parent.span_id == post.context.span_id
    assert cut.kind == SpanKind.INTERNAL
    assert dict(cut.attributes or {}) == {
        "gen_ai.provider.name": "upstream",
        "gen_ai.request.model": "m",
        "wirebridge.truncation.trigger": "overflow",
        "wirebridge.truncation.dropped_items": 5,
        "wirebridge.truncation.context_window": WINDOW,
    }
    assert f"response {started.id} overflowed" in caplog.text
