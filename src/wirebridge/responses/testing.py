"""Helpers for testing the server (ours, the benchmarks', the store's): run a bridge in front of a
scripted upstream, read its SSE frames, and check events against the openai SDK's own types.

The SDK is imported only inside the validators, so importing this module needs no test extras.
"""

from __future__ import annotations

import contextlib
import functools
from collections.abc import AsyncIterator, Iterable
from typing import Any

import msgspec

from ..jsontypes import JSON
from ..provider import Config, Provider
from .app import create_app
from .runner import RunningBridge, ServerLimits, running
from .settings import BridgeSettings


def passthrough_config(base_url: str, name: str = "upstream", **options: Any) -> Config:
    """One provider at `base_url` serving every model name unchanged (`serve --upstream`)."""
    return Config({name: Provider(name=name, base_url=base_url, **options)}, name)


@contextlib.asynccontextmanager
async def running_bridge(
    settings: BridgeSettings | Config, **kwargs: Any
) -> AsyncIterator[RunningBridge]:
    """`async with running_bridge(config) as bridge:` then `bridge.base_url` (…/v1)."""
    if isinstance(settings, Config):
        settings = BridgeSettings(settings)
    # WebSocket messages share the body limit, as under `wirebridge serve`.
    kwargs.setdefault("limits", ServerLimits(ws_max_bytes=settings.max_body_bytes))
    async with running(create_app(settings), **kwargs) as server:
        yield server


def parse_sse(data: bytes) -> list[JSON]:
    """A whole Responses SSE body -> its events' JSON; checks each `event:` names the `type`.

    Comment blocks (keep-alives) are skipped, as every SSE parser does."""
    events: list[JSON] = []
    for block in data.decode("utf-8").split("\n\n"):
        if not block.strip():
            continue
        name = None
        payload = []
        for line in block.split("\n"):
            if line.startswith("event: "):
                name = line[len("event: ") :]
            elif line.startswith("data: "):
                payload.append(line[len("data: ") :])
        if not payload:
            continue  # a comment-only block (`: keep-alive`)
        event = msgspec.json.decode("\n".join(payload).encode())
        if name is not None and name != event.get("type"):
            raise AssertionError(f"SSE `event: {name}` carries data of type {event.get('type')!r}")
        events.append(event)
    return events


@functools.cache
def _event_adapter() -> Any:
    from openai.types.responses import ResponseStreamEvent
    from pydantic import TypeAdapter

    return TypeAdapter(ResponseStreamEvent)


def validate_events(events: Iterable[JSON]) -> list[Any]:
    """Each event validated as the SDK's `ResponseStreamEvent` (raises pydantic's error).

    A failed response's `error.code` may be one of the bridge's own (`upstream_timeout`, ...)
    or an upstream's: the SDK types it as a list of OpenAI's codes, but parses streamed events
    without checking it (as Codex reads it: a string). Such a code must be a non-empty string
    and is checked as `server_error`; everything else is validated as it is.
    """
    adapter = _event_adapter()
    return [adapter.validate_python(_sdk_code(e)) for e in events]


@functools.cache
def _sdk_error_codes() -> frozenset[str]:
    from typing import get_args

    from openai.types.responses.response_error import ResponseError

    return frozenset(get_args(ResponseError.model_fields["code"].annotation))


def _sdk_code(event: JSON) -> JSON:
    """`event` with a failed response's non-OpenAI error code read as `server_error`."""
    response = event.get("response") if isinstance(event, dict) else None
    if not isinstance(response, dict):
        return event
    error = response.get("error")
    if not isinstance(error, dict) or error.get("code") in _sdk_error_codes():
        return event
    code = error.get("code")
    assert isinstance(code, str) and code, f"error.code must be a non-empty string: {code!r}"
    return {**event, "response": {**response, "error": {**error, "code": "server_error"}}}


def validate_response(response: JSON) -> Any:
    """A Response object validated as the SDK's `Response`."""
    from openai.types.responses import Response

    return Response.model_validate(response)


TERMINAL = frozenset({"response.completed", "response.incomplete", "response.failed"})
ID_PREFIX = {
    "message": "msg_",
    "reasoning": "rs_",
    "function_call": "fc_",
    "custom_tool_call": "ctc_",
}
_DELTA_DONE = {
    "response.output_text.delta": ("response.output_text.done", "text"),
    "response.reasoning_text.delta": ("response.reasoning_text.done", "text"),
    "response.reasoning_summary_text.delta": ("response.reasoning_summary_text.done", "text"),
    "response.function_call_arguments.delta": (
        "response.function_call_arguments.done",
        "arguments",
    ),
    "response.custom_tool_call_input.delta": ("response.custom_tool_call_input.done", "input"),
}
_DONE_KEYS = {done: key for done, key in _DELTA_DONE.values()}


def check_stream_invariants(events: list[JSON]) -> JSON:
    """The Responses wire rules a client relies on; returns the final Response object.

    Sequence numbers count from 0; `created`, `in_progress` open; exactly one terminal event
    closes; every event about an item comes between its `output_item.added` and
    `output_item.done`, with the item's `output_index`; output indices follow the order of
    `added`; ids carry their type's prefix; each `.done` text equals its deltas joined; the final
    response lists the items in `added` order.
    """
    assert events, "no events"
    assert [e["sequence_number"] for e in events] == list(range(len(events))), "sequence numbers"
    kinds = [e["type"] for e in events]
    assert kinds[:2] == ["response.created", "response.in_progress"], kinds[:2]
    assert kinds[-1] in TERMINAL, f"last event is {kinds[-1]}"
    assert sum(k in TERMINAL for k in kinds) == 1, "more than one terminal event"
    response_id = events[0]["response"]["id"]
    assert response_id.startswith("resp_"), response_id
    open_items: dict[str, int] = {}
    added: list[str] = []
    deltas: dict[tuple[str, str, Any], list[str]] = {}
    for e in events:
        kind = e["type"]
        if "response" in e:
            assert e["response"]["id"] == response_id, "the response id changed"
        if kind == "response.output_item.added":
            item = e["item"]
            assert e["output_index"] == len(added), f"output_index {e['output_index']}"
            prefix = ID_PREFIX.get(item["type"])
            assert prefix is None or item["id"].startswith(prefix), item["id"]
            assert item["id"] not in open_items and item["id"] not in added, "id reused"
            open_items[item["id"]] = e["output_index"]
            added.append(item["id"])
        elif kind == "response.output_item.done":
            item_id = e["item"]["id"]
            assert open_items.get(item_id) == e["output_index"], f"done for {item_id} not open"
            del open_items[item_id]
        elif "item_id" in e:
            assert e["item_id"] in open_items, f"{kind} for item {e['item_id']} that is not open"
            assert e["output_index"] == open_items[e["item_id"]], f"{kind}: output_index"
            part = e.get("content_index", e.get("summary_index", 0))
            if kind in _DELTA_DONE:
                deltas.setdefault((e["item_id"], kind, part), []).append(e["delta"])
            elif kind in _DONE_KEYS:
                delta_kind = next(d for d, (done, _) in _DELTA_DONE.items() if done == kind)
                streamed = "".join(deltas.get((e["item_id"], delta_kind, part), []))
                assert streamed == e[_DONE_KEYS[kind]], f"{kind} differs from its deltas"
    final: JSON = events[-1]["response"]
    assert [o.get("id") for o in final["output"]] == added, "final output is not the added items"
    if kinds[-1] != "response.failed":
        assert not open_items, f"items never done: {sorted(open_items)}"
    return final
