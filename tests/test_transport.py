"""The HTTP transport and Client (rules T) against the scripted upstream, one fault per test.

Retry waits are recorded by an injected `sleep` rather than slept through; stream timeouts are
set to a few hundred milliseconds; every wait on the upstream is bounded by `fail_after`.
"""

from __future__ import annotations

import contextlib
import email.utils
import json
import logging
import socket
import sys
import uuid
from collections.abc import AsyncGenerator, Iterator
from typing import Any

import anyio
import pytest

from wirebridge import Client, Prompt, Provider, __version__, dump
from wirebridge.errors import (
    ConfigError,
    IdleTimeoutError,
    RetryLimitError,
    StreamError,
    UnexpectedStatusError,
    UpstreamUnreachableError,
)
from wirebridge.events import Completed, OutputTextDelta
from wirebridge.testing import Reply, ScriptedUpstream, chat_chunk, sse_body, text_body

PROMPT = Prompt("be brief", "hello there")
OK_BODY = text_body(["Hel", "lo"], usage={"prompt_tokens": 3, "completion_tokens": 2})
NOW = 1_800_000_000.0
pytestmark = pytest.mark.anyio


class Sleeps:
    """An injected `sleep` that records each wait and returns at once."""

    def __init__(self) -> None:
        self.delays: list[float] = []

    async def __call__(self, seconds: float) -> None:
        self.delays.append(seconds)


def provider(up: ScriptedUpstream, **options: Any) -> Provider:
    return Provider(name="scripted", base_url=up.base_url, **options)


def client(up: ScriptedUpstream, sleeps: Sleeps | None = None, **options: Any) -> Client:
    grace = options.pop("finish_grace_s", 0.05)
    return Client(
        provider(up, **options),
        model="m",
        sleep=sleeps or Sleeps(),
        clock=lambda: NOW,
        rand=lambda: 0.5,
        finish_grace_s=grace,
    )


async def collect(c: Client, prompt: Prompt = PROMPT) -> list[dict[str, Any]]:
    with anyio.fail_after(5):
        return [dump(e) async for e in c.stream(prompt)]


async def collect_until_error(c: Client) -> tuple[list[dict[str, Any]], BaseException]:
    events: list[dict[str, Any]] = []
    with anyio.fail_after(5):
        try:
            async for event in c.stream(PROMPT):
                events.append(dump(event))
        except Exception as exc:
            return events, exc
    raise AssertionError(f"the stream should have raised; got {events}")


def text_of(events: list[dict[str, Any]]) -> list[str]:
    return [e["delta"] for e in events if e["type"] == "output_text_delta"]


def first_content_offset(body: bytes) -> int:
    """Byte offset just after the first event carrying content (the role chunk precedes it)."""
    first = body.index(b"\n\n") + 2
    return body.index(b"\n\n", first) + 2


# -- retries -----------------------------------------------------------------------------------


async def test_429_then_success_waits_the_retry_after_seconds(upstream: ScriptedUpstream) -> None:
    upstream.push(Reply(b"slow down", 429, {"Retry-After": "3"}), Reply(OK_BODY))
    sleeps = Sleeps()
    async with client(upstream, sleeps) as c:
        events = await collect(c)
    assert text_of(events) == ["Hel", "lo"]
    assert sleeps.delays == [3.0]
    assert len(upstream.requests) == 2


async def test_retry_after_ms_wins_over_retry_after(upstream: ScriptedUpstream) -> None:
    headers = {"retry-after-ms": "250", "Retry-After": "7"}
    upstream.push(Reply(b"", 429, headers), Reply(OK_BODY))
    sleeps = Sleeps()
    async with client(upstream, sleeps) as c:
        await collect(c)
    assert sleeps.delays == [0.25]


async def test_retry_after_http_date_counts_from_the_clock(upstream: ScriptedUpstream) -> None:
    date = email.utils.formatdate(NOW + 30, usegmt=True)
    upstream.push(Reply(b"", 503, {"Retry-After": date}), Reply(OK_BODY))
    sleeps = Sleeps()
    async with client(upstream, sleeps) as c:
        await collect(c)
    assert sleeps.delays == [pytest.approx(30.0)]


async def test_real_short_retry_after_is_slept(upstream: ScriptedUpstream) -> None:
    """The default `sleep` really waits: a 429 asking 50 ms delays the answer that long."""
    upstream.push(Reply(b"", 429, {"retry-after-ms": "50"}), Reply(OK_BODY))
    async with Client(provider(upstream), model="m") as c:
        start = anyio.current_time()
        events = await collect(c)
        elapsed = anyio.current_time() - start
    assert text_of(events) == ["Hel", "lo"]
    assert 0.05 <= elapsed < 2


async def test_retry_after_over_120_s_gives_up_and_says_so(upstream: ScriptedUpstream) -> None:
    upstream.push(Reply(b"quota", 429, {"Retry-After": "300", "x-request-id": "req-9"}))
    sleeps = Sleeps()
    async with client(upstream, sleeps) as c:
        with pytest.raises(RetryLimitError) as info:
            await collect(c)
    message = str(info.value)
    assert "300 s" in message and "120 s" in message and "429" in message
    assert "req-9" in message and "quota" in message
    assert info.value.retry_after == 300.0
    assert sleeps.delays == [] and len(upstream.requests) == 1


@pytest.mark.parametrize("status", [408, 409, 500, 502, 503])
async def test_5xx_and_408_409_retry_until_the_limit(
    upstream: ScriptedUpstream, status: int
) -> None:
    upstream.default = Reply(b'{"error":"overloaded"}', status, {"x-request-id": "req-5"})
    sleeps = Sleeps()
    async with client(upstream, sleeps, request_max_retries=3) as c:
        with pytest.raises(RetryLimitError) as info:
            await collect(c)
    assert info.value.status == status and info.value.request_id == "req-5"
    message = str(info.value)
    assert f"HTTP {status}" in message and "overloaded" in message and "req-5" in message
    assert "4 attempts" in message
    assert len(upstream.requests) == 4
    assert sleeps.delays == [0.2, 0.4, 0.8]  # 200 ms * 2^(n-1) at the middle of the jitter


async def test_400_raises_at_once_with_status_body_and_request_id(
    upstream: ScriptedUpstream,
) -> None:
    body = b'{"error":{"message":"model \\"m\\" not found"}}'
    upstream.push(Reply(body, 400, {"x-request-id": "req-400"}, content_type="application/json"))
    sleeps = Sleeps()
    async with client(upstream, sleeps) as c:
        with pytest.raises(UnexpectedStatusError) as info:
            await collect(c)
    exc = info.value
    assert (exc.status, exc.request_id) == (400, "req-400")
    assert 'model \\"m\\" not found' in exc.body
    assert "HTTP 400" in str(exc) and "req-400" in str(exc) and "not found" in str(exc)
    assert sleeps.delays == [] and len(upstream.requests) == 1


async def test_huge_error_body_is_cut_to_a_bounded_excerpt(upstream: ScriptedUpstream) -> None:
    upstream.push(Reply(b"x" * 1_000_000, 400))
    async with client(upstream) as c:
        with pytest.raises(UnexpectedStatusError) as info:
            await collect(c)
    assert len(str(info.value)) < 2_500
    assert "more chars" in str(info.value)


async def test_x_should_retry_false_stops_a_5xx(upstream: ScriptedUpstream) -> None:
    upstream.push(Reply(b"down for good", 503, {"x-should-retry": "false"}))
    async with client(upstream) as c:
        with pytest.raises(UnexpectedStatusError, match="down for good"):
            await collect(c)
    assert len(upstream.requests) == 1


async def test_x_should_retry_true_retries_a_4xx(upstream: ScriptedUpstream) -> None:
    upstream.push(Reply(b"try again", 400, {"x-should-retry": "true"}), Reply(OK_BODY))
    async with client(upstream) as c:
        assert text_of(await collect(c)) == ["Hel", "lo"]
    assert len(upstream.requests) == 2


def closed_port() -> int:
    """A loopback port with nothing listening on it (bound, then released)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
    return port


async def test_connection_refused_retries_then_names_the_url() -> None:
    url = f"http://127.0.0.1:{closed_port()}/v1"
    sleeps = Sleeps()
    p = Provider(name="nobody", base_url=url, request_max_retries=2)
    async with Client(p, model="m", sleep=sleeps, rand=lambda: 0.5) as c:
        with pytest.raises(UpstreamUnreachableError) as info:
            await collect(c)
    assert f"{url}/chat/completions" in str(info.value)
    assert "3 attempts" in str(info.value)
    assert isinstance(info.value, RetryLimitError)
    assert sleeps.delays == [0.2, 0.4]


# -- configuration on the wire -----------------------------------------------------------------


async def test_missing_api_key_variable_is_a_config_error_naming_it(
    upstream: ScriptedUpstream, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("WB_TEST_MISSING_KEY", raising=False)
    options = {"env_key": "WB_TEST_MISSING_KEY", "env_key_instructions": "Ask the admin."}
    async with client(upstream, **options) as c:
        with pytest.raises(ConfigError) as info:
            await collect(c)
    assert "WB_TEST_MISSING_KEY" in str(info.value) and "Ask the admin." in str(info.value)
    assert upstream.requests == []  # nothing was sent without the key


async def test_empty_api_key_variable_is_a_config_error(
    upstream: ScriptedUpstream, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("WB_TEST_EMPTY_KEY", "  ")
    async with client(upstream, env_key="WB_TEST_EMPTY_KEY") as c:
        with pytest.raises(ConfigError, match="WB_TEST_EMPTY_KEY"):
            await collect(c)


async def test_query_params_and_headers_reach_the_upstream(
    upstream: ScriptedUpstream, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("WB_TEST_KEY", "sk-wire-test")
    monkeypatch.setenv("WB_TEST_ORG", "org-42")
    monkeypatch.delenv("WB_TEST_UNSET", raising=False)
    upstream.push(Reply(OK_BODY))
    options = {
        "env_key": "WB_TEST_KEY",
        "query_params": {"api-version": "2025-01-01"},
        "http_headers": {"X-Title": "wirebridge tests"},
        "env_http_headers": {"X-Org": "WB_TEST_ORG", "X-Absent": "WB_TEST_UNSET"},
    }
    async with client(upstream, **options) as c:
        await collect(c)
    seen = upstream.requests[0]
    assert (seen.method, seen.path) == ("POST", "/v1/chat/completions?api-version=2025-01-01")
    assert seen.headers["authorization"] == "Bearer sk-wire-test"
    assert seen.headers["x-title"] == "wirebridge tests"
    assert seen.headers["x-org"] == "org-42"
    assert "x-absent" not in seen.headers  # an unset variable sends no header
    assert seen.headers["accept"] == "text/event-stream"
    assert seen.headers["content-type"] == "application/json"
    assert seen.headers["user-agent"].startswith(f"wirebridge/{__version__}")
    assert seen.json["model"] == "m" and seen.json["stream"] is True


async def test_no_authorization_header_without_a_key(upstream: ScriptedUpstream) -> None:
    upstream.push(Reply(OK_BODY))
    async with client(upstream) as c:
        await collect(c)
    assert "authorization" not in upstream.requests[0].headers


async def test_debug_log_shows_the_payload_but_never_the_key(
    upstream: ScriptedUpstream, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    key, org = f"sk-{uuid.uuid4().hex}", f"org-{uuid.uuid4().hex}"
    monkeypatch.setenv("WB_TEST_KEY", key)
    monkeypatch.setenv("WB_TEST_ORG", org)
    # The first answer echoes the key (as some servers do); the retry then succeeds.
    upstream.push(Reply(f"invalid key {key}".encode(), 503), Reply(OK_BODY))
    caplog.set_level(logging.DEBUG, logger="wirebridge")
    options = {"env_key": "WB_TEST_KEY", "env_http_headers": {"X-Org": "WB_TEST_ORG"}}
    async with client(upstream, **options) as c:
        await collect(c)
    assert "hello there" in caplog.text  # the payload is logged...
    assert "Authorization" in caplog.text and "***" in caplog.text  # ...with the key redacted
    assert key not in caplog.text and org not in caplog.text


async def test_error_message_never_echoes_the_key(
    upstream: ScriptedUpstream, monkeypatch: pytest.MonkeyPatch
) -> None:
    key = f"sk-{uuid.uuid4().hex}"
    monkeypatch.setenv("WB_TEST_KEY", key)
    upstream.push(Reply(f'{{"error":"invalid api key {key}"}}'.encode(), 401))
    async with client(upstream, env_key="WB_TEST_KEY") as c:
        with pytest.raises(UnexpectedStatusError) as info:
            await collect(c)
    assert key not in str(info.value) and "invalid api key ***" in str(info.value)


# -- the stream's life -------------------------------------------------------------------------


async def test_stall_mid_stream_raises_idle_timeout(upstream: ScriptedUpstream) -> None:
    upstream.push(Reply(OK_BODY, stall_after=first_content_offset(OK_BODY)))
    async with client(upstream, stream_idle_timeout_ms=200) as c:
        events, error = await collect_until_error(c)
    assert text_of(events) == ["Hel"]
    assert isinstance(error, IdleTimeoutError)
    assert "200 ms" in str(error) and "stream_idle_timeout_ms" in str(error)
    assert len(upstream.requests) == 1  # an event was yielded: no whole-stream retry


async def test_stall_before_the_first_event_is_not_retried(
    upstream: ScriptedUpstream,
) -> None:
    """Idle time is never multiplied by retries: the wait is spent, a retry would spend it again
    (and prefill the prompt again)."""
    upstream.push(Reply(OK_BODY, stall_after=0), Reply(OK_BODY))
    sleeps = Sleeps()
    async with client(upstream, sleeps, stream_idle_timeout_ms=150) as c:
        events, error = await collect_until_error(c)
    assert events == [] and isinstance(error, IdleTimeoutError)
    assert len(upstream.requests) == 1 and sleeps.delays == []


async def test_stall_after_finish_reason_completes_after_the_grace(
    upstream: ScriptedUpstream,
) -> None:
    """No [DONE]: complete after `finish_grace_s`, not after the (long) idle timeout."""
    body = text_body(["Hi"], usage={"prompt_tokens": 1, "completion_tokens": 1}, done=False)
    finish = body.index(b'"finish_reason": "stop"')
    cut = body.index(b"\n\n", finish) + 2
    # the usage chunk arrives after the finish_reason, within the grace: it is kept
    upstream.push(Reply(body, pieces=[body[:cut], body[cut:]], stall_after=len(body)))
    async with client(upstream, stream_idle_timeout_ms=30_000, finish_grace_s=0.2) as c:
        start = anyio.current_time()
        events = await collect(c)
        elapsed = anyio.current_time() - start
    assert [e["type"] for e in events] == ["output_text_delta", "output_item_done", "completed"]
    assert events[-1]["token_usage"]["total_tokens"] == 2
    assert 0.2 <= elapsed < 2


async def test_keepalive_comments_hold_a_slow_stream_open(upstream: ScriptedUpstream) -> None:
    """Comments every 40 ms keep a 150 ms idle timeout from firing over a 400 ms silence."""
    cut = first_content_offset(OK_BODY)
    pieces = [OK_BODY[:cut], *[b": keep-alive\n\n"] * 10, OK_BODY[cut:]]
    upstream.push(Reply(OK_BODY, pieces=pieces, drip_s=0.04))
    async with client(upstream, stream_idle_timeout_ms=150) as c:
        start = anyio.current_time()
        events = await collect(c)
        elapsed = anyio.current_time() - start
    assert text_of(events) == ["Hel", "lo"]
    assert events[-1]["type"] == "completed"
    assert elapsed > 0.15 * 2  # the stream really outlived the idle timeout
    assert len(upstream.requests) == 1


async def test_silence_without_keepalives_times_out(upstream: ScriptedUpstream) -> None:
    """The control for the keep-alive test: the same pause with no comments fails."""
    cut = first_content_offset(OK_BODY)
    upstream.push(Reply(OK_BODY, pieces=[OK_BODY[:cut], OK_BODY[cut:]], drip_s=0.4))
    async with client(upstream, stream_idle_timeout_ms=150) as c:
        _, error = await collect_until_error(c)
    assert isinstance(error, IdleTimeoutError)


async def test_disconnect_before_the_first_event_retries_the_stream(
    upstream: ScriptedUpstream,
) -> None:
    cut = first_content_offset(OK_BODY) - 5  # inside the first content event
    upstream.push(Reply(OK_BODY, disconnect_after=cut), Reply(OK_BODY))
    async with client(upstream) as c:
        events = await collect(c)
    assert text_of(events) == ["Hel", "lo"]  # once each, from the second attempt
    assert [e["type"] for e in events].count("completed") == 1
    assert len(upstream.requests) == 2


async def test_disconnect_after_the_first_event_surfaces(upstream: ScriptedUpstream) -> None:
    cut = first_content_offset(OK_BODY) + 5
    upstream.push(Reply(OK_BODY, disconnect_after=cut), Reply(OK_BODY))
    async with client(upstream) as c:
        events, error = await collect_until_error(c)
    assert text_of(events) == ["Hel"]  # nothing replayed twice
    # close-delimited body: the cut reads as an early EOF, a StreamError either way
    assert isinstance(error, StreamError) and not isinstance(error, IdleTimeoutError)
    assert len(upstream.requests) == 1


async def test_stream_retries_run_out(upstream: ScriptedUpstream) -> None:
    upstream.default = Reply(OK_BODY, disconnect_after=10)
    sleeps = Sleeps()
    async with client(upstream, sleeps, stream_max_retries=2) as c:
        _, error = await collect_until_error(c)
    assert isinstance(error, StreamError)
    assert len(upstream.requests) == 3 and sleeps.delays == [0.2, 0.4]


async def test_a_body_broken_in_itself_is_not_retried(upstream: ScriptedUpstream) -> None:
    upstream.default = Reply(b"data: \xff\xfe\n\n")
    async with client(upstream) as c:
        _, error = await collect_until_error(c)
    assert isinstance(error, StreamError) and "utf-8" in str(error)
    assert len(upstream.requests) == 1


async def test_eof_without_finish_is_retried_then_surfaces(upstream: ScriptedUpstream) -> None:
    truncated = sse_body([chat_chunk({"role": "assistant"})], done=False)
    upstream.default = Reply(truncated)
    async with client(upstream, stream_max_retries=1) as c:
        _, error = await collect_until_error(c)
    assert isinstance(error, StreamError) and "before completion" in str(error)
    assert len(upstream.requests) == 2


@contextlib.contextmanager
def no_gc_finalization() -> Iterator[list[AsyncGenerator[Any, Any]]]:
    """Async generators dropped unclosed are kept, not closed by the loop's finalizer hook.

    "Closes at once" must not lean on garbage collection, which is late (or never, when a
    traceback holds the frame); the leaked generators are closed afterwards.
    """
    hooks = sys.get_asyncgen_hooks()
    leaked: list[AsyncGenerator[Any, Any]] = []
    sys.set_asyncgen_hooks(firstiter=hooks.firstiter, finalizer=leaked.append)
    try:
        yield leaked
    finally:
        sys.set_asyncgen_hooks(*hooks)


async def test_cancel_mid_stream_closes_the_upstream_connection(
    upstream: ScriptedUpstream,
) -> None:
    upstream.push(Reply(OK_BODY, stall_after=first_content_offset(OK_BODY)))
    seen: list[str] = []
    async with client(upstream, stream_idle_timeout_ms=30_000) as c:
        stream = c.stream(PROMPT)
        with no_gc_finalization() as leaked:
            with anyio.fail_after(5), anyio.CancelScope() as scope:
                async for event in stream:
                    assert not upstream.closed.is_set()  # the connection is open mid-stream
                    if isinstance(event, OutputTextDelta):
                        seen.append(event.delta)
                        scope.cancel()  # lands while the stream awaits the stalled upstream
            assert scope.cancel_called and seen == ["Hel"]
            with anyio.fail_after(1):  # at once: long before the 30 s idle timeout
                await upstream.closed.wait()
        await stream.aclose()
        for generator in leaked:
            await generator.aclose()
        assert upstream.open_connections == 0


async def test_closing_the_iterator_closes_the_upstream_connection(
    upstream: ScriptedUpstream,
) -> None:
    upstream.push(Reply(OK_BODY, stall_after=first_content_offset(OK_BODY)))
    async with client(upstream, stream_idle_timeout_ms=30_000) as c:
        stream = c.stream(PROMPT)
        with no_gc_finalization() as leaked:
            with anyio.fail_after(5):
                async with contextlib.aclosing(stream):
                    async for event in stream:
                        if isinstance(event, OutputTextDelta):
                            break
            with anyio.fail_after(1):
                await upstream.closed.wait()
        for generator in leaked:
            await generator.aclose()
        assert upstream.open_connections == 0


async def test_completed_stream_reports_usage_and_id(upstream: ScriptedUpstream) -> None:
    upstream.push(Reply(OK_BODY, split=(1, 5)))
    async with client(upstream) as c:
        events = [e async for e in c.stream(PROMPT)]
    done = events[-1]
    assert isinstance(done, Completed) and done.response_id == "chatcmpl-test"
    assert done.token_usage is not None and done.token_usage.total_tokens == 5
    assert json.loads(upstream.requests[0].body)["messages"][0]["content"] == "be brief"


async def test_client_accepts_its_own_http_client_and_keeps_it_open(
    upstream: ScriptedUpstream,
) -> None:
    import httpx

    upstream.push(Reply(OK_BODY))
    async with httpx.AsyncClient() as http:
        async with Client(provider(upstream), model="m", http_client=http) as c:
            assert text_of(await collect(c)) == ["Hel", "lo"]
        assert not http.is_closed


async def test_scripted_upstream_is_reusable_across_loops() -> None:
    """A fresh upstream per test: its `closed` event binds to the running loop lazily."""
    async with ScriptedUpstream([Reply(OK_BODY)]) as up, client(up) as c:
        assert text_of(await collect(c)) == ["Hel", "lo"]


async def test_no_status_line_within_the_idle_timeout_is_an_idle_timeout_not_retried(
    upstream: ScriptedUpstream,
) -> None:
    """Connected, request sent, no status line: the upstream is silent, not unreachable."""
    upstream.push(Reply(OK_BODY, head_delay_s=1.0), Reply(OK_BODY))
    sleeps = Sleeps()
    async with client(upstream, sleeps, stream_idle_timeout_ms=150, request_max_retries=1) as c:
        with pytest.raises(IdleTimeoutError) as info:
            await collect(c)
    assert "no status line within 150 ms" in str(info.value)
    assert len(upstream.requests) == 1 and sleeps.delays == []


async def test_keepalives_after_finish_do_not_extend_the_grace(
    upstream: ScriptedUpstream,
) -> None:
    """A server that pings forever after finish_reason still completes after the grace."""
    body = text_body(["Hi"], done=False)
    pings = [b": ping\n\n"] * 100
    upstream.push(Reply(body, pieces=[body, *pings], drip_s=0.02))
    async with client(upstream, stream_idle_timeout_ms=1_000, finish_grace_s=0.1) as c:
        start = anyio.current_time()
        events = await collect(c)
        elapsed = anyio.current_time() - start
    assert events[-1]["type"] == "completed"
    assert elapsed < 1.0  # not the 2 s of pings, nor the idle timeout


async def test_a_huge_line_in_small_writes_arrives_whole(upstream: ScriptedUpstream) -> None:
    big = "ü" * 1_000_000  # 2 MB of UTF-8 in one SSE line, cut mid-character by the writes
    body = sse_body([chat_chunk({"content": big}), chat_chunk({}, finish_reason="stop")])
    upstream.push(Reply(body, split=(30_000, 70_000), seed=7))
    async with client(upstream) as c:
        events = await collect(c)
    assert text_of(events) == [big]


def test_redact_url_drops_userinfo_and_secret_query_values() -> None:
    from wirebridge.redact import redact_url

    shown = redact_url("https://user:pw@example.test:8443/v1/chat/completions?x=1", {"key": "k1"})
    assert shown == "https://example.test:8443/v1/chat/completions?x=1&key=***"
    assert redact_url("http://127.0.0.1:8080/v1/chat/completions") == (
        "http://127.0.0.1:8080/v1/chat/completions"
    )
