"""What a client sees for each upstream fault: the table of docs/server.md ("Upstream faults"),
row by row, through the real server in front of the scripted upstream's fault modes.

Each row names the fault, how the upstream (and the provider's options) are set up, and the
answer: an HTTP error in the OpenAI shape (status, code, headers), or a 200 whose stream (or
Response object) ends `completed` / `failed` with a code; and how many requests the upstream
received, which is how retries (and their absence) are checked.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import anyio
import httpx
import pytest

from wirebridge.provider import Config, Provider
from wirebridge.responses import BridgeSettings
from wirebridge.responses.testing import (
    check_stream_invariants,
    parse_sse,
    running_bridge,
    validate_events,
    validate_response,
)
from wirebridge.testing import Reply, ScriptedUpstream, chat_chunk, sse_body, text_body

from .conftest import free_port

pytestmark = pytest.mark.anyio

OK = text_body(["Hel", "lo"])
NO_RETRY = {"x-should-retry": "false"}
WEATHER = {
    "type": "function",
    "name": "get_weather",
    "parameters": {"type": "object", "properties": {"city": {"type": "string"}}},
}


def json_reply(status: int, body: Any, **kwargs: Any) -> Reply:
    return Reply(
        json.dumps(body).encode(), status=status, content_type="application/json", **kwargs
    )


def error_reply(status: int, message: str, **kwargs: Any) -> Reply:
    return json_reply(status, {"error": {"message": message}}, **kwargs)


def completion(message: dict[str, Any], finish_reason: str = "stop") -> Reply:
    """A whole `chat.completion`, as a server that ignores `stream: true` answers."""
    body = {
        "id": "chatcmpl-whole",
        "object": "chat.completion",
        "model": "m",
        "choices": [{"index": 0, "message": message, "finish_reason": finish_reason}],
        "usage": {"prompt_tokens": 5, "completion_tokens": 2, "total_tokens": 7},
    }
    return json_reply(200, body)


ROLE = sse_body([chat_chunk({"role": "assistant", "content": ""})], done=False)
FIRST = sse_body([chat_chunk({"role": "assistant", "content": "partial"})], done=False)
PINGS = [b": keep-alive\n\n"] * 10


@dataclass(frozen=True)
class Fault:
    """One row of the table: a fault and what the client sees."""

    name: str
    replies: list[Reply]  # the script; its last reply repeats for every further request
    status: int  # the HTTP status the client gets
    code: str | None = None  # error.code (error answer or response.failed); None on success
    outcome: str = "error"  # "error" (an HTTP error), "completed", "failed"
    headers: dict[str, str] = field(default_factory=dict)  # expected among the answer's headers
    requests: int | None = 1  # requests the upstream received (None: unreachable)
    message: str = ""  # a phrase of the error message
    stream: bool = True
    commit_after_s: float = 0.5
    options: dict[str, Any] = field(default_factory=dict)  # provider options
    body: dict[str, Any] = field(default_factory=dict)  # more request fields
    check: Callable[[dict[str, Any]], None] | None = None  # more checks on the final Response


def _text_is(text: str) -> Callable[[dict[str, Any]], None]:
    def check(response: dict[str, Any]) -> None:
        assert response["output"][-1]["content"][0]["text"] == text

    return check


def _calls_weather(response: dict[str, Any]) -> None:
    call = response["output"][-1]
    assert (call["type"], call["name"], json.loads(call["arguments"])) == (
        "function_call",
        "get_weather",
        {"city": "Paris"},
    )


FAULTS = [
    # -- refusals before the answer: the status is known before the first upstream byte -------
    Fault(
        "429 asking for longer than the commit window",
        [error_reply(429, "slow down", headers={"Retry-After": "3"})],
        429,
        "rate_limit_exceeded",
        headers={"retry-after": "3", **NO_RETRY},
        message="try again in 3.0s",
        commit_after_s=2.0,
    ),
    Fault(
        "429 with a short retry-after-ms, then the answer",
        [error_reply(429, "slow down", headers={"retry-after-ms": "50"}), Reply(OK)],
        200,
        outcome="completed",
        requests=2,
    ),
    Fault(
        "429 on every attempt, not streamed",
        [error_reply(429, "slow down", headers={"retry-after-ms": "100"})],
        429,
        "rate_limit_exceeded",
        headers={"retry-after": "1", **NO_RETRY},
        requests=2,
        stream=False,
        options={"request_max_retries": 1},
    ),
    Fault(
        "429 asking for more than 120 s",
        [error_reply(429, "come back later", headers={"Retry-After": "300"})],
        429,
        "rate_limit_exceeded",
        headers={"retry-after": "300", **NO_RETRY},
        message="longer than the 120 s",
    ),
    Fault(
        "500 on every attempt: retries stop at the commit window",
        [error_reply(500, "internal oops")],
        500,
        "upstream_error",
        headers=NO_RETRY,
        requests=2,  # waits of ~0.2 s, then ~0.4 s, which would pass the 0.5 s commit
        message="internal oops",
    ),
    Fault(
        "500 on every attempt, not streamed: all retries",
        [error_reply(500, "internal oops")],
        500,
        "upstream_error",
        headers=NO_RETRY,
        requests=3,
        stream=False,
        options={"request_max_retries": 2},
    ),
    Fault(
        "503, then the answer",
        [error_reply(503, "warming up"), Reply(OK)],
        200,
        outcome="completed",
        requests=2,
    ),
    Fault(
        "503 with x-should-retry: false",
        [error_reply(503, "do not retry me", headers={"x-should-retry": "false"})],
        502,
        "upstream_error",
        headers=NO_RETRY,
    ),
    Fault(
        "connection refused",
        [],
        502,
        "upstream_unreachable",
        headers=NO_RETRY,
        requests=None,
        message="could not reach the upstream",
    ),
    Fault(
        "connection refused, not streamed",
        [],
        502,
        "upstream_unreachable",
        headers=NO_RETRY,
        requests=None,
        stream=False,
        options={"request_max_retries": 1},
    ),
    Fault(
        "connection closed before the status line",
        [Reply(raw=b"")],
        502,
        "upstream_unreachable",
        headers=NO_RETRY,
        requests=2,
    ),
    Fault(
        "an answer that is not HTTP",
        [Reply(raw=b"SSH-2.0-OpenSSH_9.6\r\n\r\n")],
        502,
        "upstream_unreachable",
        headers=NO_RETRY,
        requests=2,
    ),
    Fault(
        "no status line within the idle timeout",
        [Reply(OK, head_delay_s=5.0)],
        504,
        "upstream_timeout",
        headers=NO_RETRY,
        message="no status line within 300 ms",
        commit_after_s=2.0,
        options={"stream_idle_timeout_ms": 300},
    ),
    Fault(
        "400 from the upstream",
        [error_reply(400, "unknown field 'foo'")],
        400,
        message="unknown field 'foo'",
    ),
    Fault(
        "400: the prompt is over the context",
        [error_reply(400, "This model's maximum context length is 4096 tokens")],
        400,
        "context_length_exceeded",
    ),
    Fault(
        "401: the upstream refuses the bridge's key",
        [error_reply(401, "invalid api key")],
        502,
        "upstream_auth",
        headers=NO_RETRY,
        message="check the provider's API key",
    ),
    Fault(
        "404: no such model upstream",
        [error_reply(404, "model 'm' not found")],
        404,
        message="model 'm' not found",
    ),
    # -- the stream: before its first event -----------------------------------------------------
    Fault(
        "200, then silence before the first event",
        [Reply(OK, stall_after=0)],
        504,
        "upstream_timeout",
        headers=NO_RETRY,
        message="sent nothing for 300 ms",
        commit_after_s=2.0,
        options={"stream_idle_timeout_ms": 300},
    ),
    Fault(
        "SSE comments only, forever",
        [Reply(b"", repeat=b": keep-alive\n\n", drip_s=0.05)],
        504,
        "upstream_timeout",
        headers=NO_RETRY,
        message="stream_no_content_timeout_ms",
        commit_after_s=2.0,
        options={"stream_idle_timeout_ms": 300, "stream_no_content_timeout_ms": 400},
    ),
    Fault(
        "keep-alive comments through a long prefill, then the answer",
        [Reply(OK, pieces=[*PINGS, OK], drip_s=0.06)],
        200,
        outcome="completed",
        options={"stream_idle_timeout_ms": 300, "stream_no_content_timeout_ms": 2000},
    ),
    Fault(
        "connection cut before the first event, then the answer",
        [Reply(OK, disconnect_after=len(ROLE)), Reply(OK)],
        200,
        outcome="completed",
        requests=2,
    ),
    Fault(
        "the body ends without a finish on every attempt",
        [Reply(ROLE)],
        502,
        "upstream_stream_error",
        headers=NO_RETRY,
        requests=2,
        message="stream closed before completion",
    ),
    Fault(
        "200 with an HTML page",
        [Reply(b"<html><body>Bad gateway</body></html>", content_type="text/html")],
        502,
        "upstream_stream_error",
        headers=NO_RETRY,
        requests=2,
    ),
    Fault(
        "bytes that are not UTF-8",
        [Reply(b"data: \xff\xfe\n\n" + OK)],
        502,
        "upstream_stream_error",
        headers=NO_RETRY,
        message="not valid utf-8",
    ),
    Fault(
        "a line over stream_max_event_bytes",
        [Reply(sse_body([chat_chunk({"content": "x" * 200_000})]), split=(4096, 16384))],
        502,
        "upstream_stream_error",
        headers=NO_RETRY,
        message="stream_max_event_bytes",
        options={"stream_max_event_bytes": 65536},
    ),
    Fault(
        "a line that never ends",
        [Reply(b"data: " + b"x" * 300_000, split=(4096, 16384), stall_after=300_006)],
        502,
        "upstream_stream_error",
        headers=NO_RETRY,
        message="stream_max_event_bytes",
        options={"stream_max_event_bytes": 65536},
    ),
    Fault(
        "only unparseable data events, then [DONE]",
        [Reply(b"data: {oops\n\ndata: <html>\n\ndata: [DONE]\n\n")],
        502,
        "upstream_stream_error",
        headers=NO_RETRY,
        message="none of them JSON",
    ),
    Fault(
        "an error object in the stream: rate limit",
        [Reply(sse_body([{"error": {"message": "Rate limit reached", "code": "429"}}]))],
        429,
        "rate_limit_exceeded",
        headers=NO_RETRY,
    ),
    Fault(
        "a whole chat.completion instead of a stream",
        [completion({"role": "assistant", "content": "Hello whole"})],
        200,
        outcome="completed",
        check=_text_is("Hello whole"),
    ),
    Fault(
        "a whole chat.completion with a tool call",
        [
            completion(
                {
                    "role": "assistant",
                    "content": None,
                    "tool_calls": [
                        {
                            "id": "call_1",
                            "type": "function",
                            "function": {"name": "get_weather", "arguments": '{"city":"Paris"}'},
                        }
                    ],
                },
                "tool_calls",
            )
        ],
        200,
        outcome="completed",
        body={"tools": [WEATHER]},
        check=_calls_weather,
    ),
    Fault(
        "a whole chat.completion, not streamed",
        [completion({"role": "assistant", "content": "Hello whole"})],
        200,
        outcome="completed",
        stream=False,
        check=_text_is("Hello whole"),
    ),
    Fault(
        "200 with a JSON error object",
        [json_reply(200, {"error": {"message": "model is overloaded"}})],
        502,
        "upstream_error",
        headers=NO_RETRY,
        message="model is overloaded",
    ),
    # -- after the commit: HTTP 200, then response.failed with the same code -------------------
    Fault(
        "500 after the commit",
        [error_reply(500, "internal oops", head_delay_s=0.3)],
        200,
        "upstream_error",
        outcome="failed",
        message="internal oops",
        commit_after_s=0.1,
        options={"request_max_retries": 0},
    ),
    Fault(
        "429 after the commit",
        [error_reply(429, "slow down", headers={"Retry-After": "3"}, head_delay_s=0.3)],
        200,
        "rate_limit_exceeded",
        outcome="failed",
        message="try again in 3.0s",
        commit_after_s=0.1,
        options={"request_max_retries": 0},
    ),
    Fault(
        "silence after the first event",
        [Reply(FIRST + OK, stall_after=len(FIRST))],
        200,
        "upstream_timeout",
        outcome="failed",
        options={"stream_idle_timeout_ms": 300},
    ),
    Fault(
        "connection cut after the first event",
        [Reply(FIRST + OK, disconnect_after=len(FIRST))],
        200,
        "upstream_stream_error",
        outcome="failed",
    ),
    Fault(
        "an error object after text",
        [Reply(sse_body([chat_chunk({"content": "a"}), {"error": {"message": "GPU fell off"}}]))],
        200,
        "upstream_error",
        outcome="failed",
        message="GPU fell off",
    ),
    Fault(
        "tokens trickle past turn_timeout_ms",
        [Reply(FIRST, repeat=sse_body([chat_chunk({"content": "."})], done=False), drip_s=0.05)],
        200,
        "upstream_timeout",
        outcome="failed",
        message="turn_timeout_ms",
        options={"turn_timeout_ms": 600},
    ),
]


@pytest.mark.parametrize("fault", FAULTS, ids=[f.name for f in FAULTS])
async def test_upstream_fault_answer(fault: Fault) -> None:
    async with ScriptedUpstream(fault.replies[:-1], default=_last(fault)) as upstream:
        url = upstream.base_url if fault.replies else f"http://127.0.0.1:{free_port()}/v1"
        provider = Provider(name="up", base_url=url, **fault.options)
        settings = BridgeSettings(
            Config({"up": provider}, "up"), commit_after_s=fault.commit_after_s
        )
        payload = {"model": "m", "input": "hi", "stream": fault.stream, **fault.body}
        with anyio.fail_after(15):
            async with (
                running_bridge(settings) as bridge,
                httpx.AsyncClient(timeout=10) as http,
            ):
                answer = await http.post(f"{bridge.base_url}/responses", json=payload)
        if fault.requests is not None:
            assert len(upstream.requests) == fault.requests, "upstream requests"
    assert answer.status_code == fault.status, answer.text[:500]
    for name, value in fault.headers.items():
        assert answer.headers.get(name) == value, f"header {name}"
    if fault.outcome == "error":
        assert answer.headers["content-type"].startswith("application/json")
        error = answer.json()["error"]
        assert set(error) == {"message", "type", "param", "code"}
        if fault.code is not None:
            assert error["code"] == fault.code
        assert fault.message in error["message"]
        return
    if fault.stream:
        events = parse_sse(answer.content)
        validate_events(events)
        response = check_stream_invariants(events)
        assert events[-1]["type"] == f"response.{fault.outcome}"
    else:
        response = answer.json()
        validate_response(response)
    assert response["status"] == fault.outcome
    if fault.outcome == "failed":
        assert response["error"]["code"] == fault.code
        assert fault.message in response["error"]["message"]
    if fault.check is not None:
        fault.check(response)


def _last(fault: Fault) -> Reply | None:
    return fault.replies[-1] if fault.replies else None


def test_the_table_has_twenty_rows_or_more_and_unique_names() -> None:
    assert len(FAULTS) >= 20
    assert len({f.name for f in FAULTS}) == len(FAULTS)


DOCS = Path(__file__).resolve().parents[1] / "docs" / "server.md"


def doc_row(fault: Fault) -> str:
    """The row of docs/server.md's "Upstream faults" table that says what `fault` gives."""
    if fault.outcome == "error":
        answer = f"{fault.status} `{fault.code}`" if fault.code else str(fault.status)
    elif fault.outcome == "failed":
        answer = f"200, then `response.failed` `{fault.code}`"
    else:
        answer = f"200, `response.{fault.outcome}`"
    headers = ", ".join(f"`{k}: {v}`" for k, v in sorted(fault.headers.items())) or "-"
    requests = "-" if fault.requests is None else str(fault.requests)
    options = ", ".join(f"`{k} = {v}`" for k, v in fault.options.items())
    setup = f"streamed, commit after {fault.commit_after_s} s" if fault.stream else "not streamed"
    setup += f"; {options}" if options else ""
    return f"| {fault.name} | {setup} | {answer} | {headers} | {requests} |"


def test_the_docs_hold_the_same_table() -> None:
    """docs/server.md must list each row as the suite runs it (regenerate: `python -m
    tests.test_upstream_faults`)."""
    text = DOCS.read_text(encoding="utf-8")
    missing = [doc_row(f) for f in FAULTS if doc_row(f) not in text]
    assert not missing, "docs/server.md differs from the fault table:\n" + "\n".join(missing)


if __name__ == "__main__":
    for fault in FAULTS:
        print(doc_row(fault))
