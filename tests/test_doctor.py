"""`diagnose()` against the scripted upstream: each quirk profile diagnosed exactly, and strange
servers (refused, HTML, garbage, 500s, stalls, not HTTP at all) turned into findings, never a crash.

The comparison covers every finding's status and value (latency values vary, so only their shape
is checked) and the whole recommended TOML text.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections.abc import AsyncIterator
from typing import Any

import pytest

from wirebridge import Provider
from wirebridge.doctor import Diagnosis, diagnose, render_toml
from wirebridge.doctor.probes import MAX_PROBES
from wirebridge.testing import Reply, ScriptedUpstream
from wirebridge.testing.bodies import chat_chunk, sse_body, text_body
from wirebridge.testing.upstream import SeenRequest

from . import doctor_profiles as profiles
from .conftest import free_port

pytestmark = pytest.mark.anyio

NOT_TOOL = {"calls": 0}
STANDARD: dict[str, tuple[str, Any]] = {
    "streaming": ("ok", True),
    "done": ("ok", True),
    "finish_reasons": ("ok", ["stop", "tool_calls"]),
    "include_usage": ("ok", {"accepted": True, "honoured": True}),
    "developer_role": ("ok", True),
    "reasoning": ("info", {"fields": [], "think_tags": "off"}),
    "tool_required": ("ok", {"calls": 1, "name": "get_weather", "arguments_json": True}),
    "tool_parallel": ("ok", {"calls": 2}),
    "tool_index": ("ok", "present"),
    "tool_id_repeated": ("ok", False),
    "tool_name_repeated": ("ok", False),
    "legacy_function_call": ("ok", False),
    "tool_named": ("ok", True),
    "replay": ("ok", {"field": "reasoning", "rejected": {}}),
}


def toml(
    base_url: str,
    *,
    developer_role: str = '"developer"  # role "developer" accepted',
    reasoning_field: str = '"reasoning"  # a tool turn replayed with reasoning is accepted',
    include_usage: str = "true  # usage chunk sent when asked",
    think_tags: str = '"off"  # no inline <think> tags in the content',
) -> str:
    return (
        "[model_providers.quirky]\n"
        f'base_url = "{base_url}"\n'
        f"developer_role = {developer_role}\n"
        f"reasoning_field = {reasoning_field}\n"
        f"include_usage = {include_usage}\n"
        f"think_tags = {think_tags}\n"
    )


def findings(diagnosis: Diagnosis) -> dict[str, tuple[str, Any]]:
    """The findings of the chat probes (latency varies; input_tokens has its own tests)."""
    skip = ("latency", "input_tokens")
    return {f.key: (f.status, f.value) for f in diagnosis.findings if f.key not in skip}


def chat_requests(upstream: ScriptedUpstream) -> list[SeenRequest]:
    """The probes' requests, without the look for a tokenizer that follows them."""
    return [r for r in upstream.requests if r.path.endswith("/chat/completions")]


async def run(upstream: ScriptedUpstream, **options: Any) -> Diagnosis:
    provider = Provider(name="quirky", base_url=upstream.base_url)
    return await diagnose(provider, "test-model", timeout_s=options.pop("timeout_s", 5), **options)


@contextlib.asynccontextmanager
async def serving(quirks: profiles.Quirks) -> AsyncIterator[ScriptedUpstream]:
    async with ScriptedUpstream(default=profiles.script(quirks)) as up:
        yield up


# -- quirk profiles ----------------------------------------------------------------------------


async def test_standard_server_is_diagnosed_clean_in_six_requests() -> None:
    async with serving(profiles.STANDARD) as up:
        diagnosis = await run(up)
    assert findings(diagnosis) == STANDARD
    assert render_toml(diagnosis.recommendation) == toml(up.base_url)
    assert [r.probe for r in diagnosis.results] == [
        "stream",
        "developer",
        "tool_required",
        "tool_parallel",
        "tool_named",
        "replay_reasoning",
    ]
    # six chat requests, then a look for llama.cpp's and vLLM's tokenizers (404 here)
    paths = [r.path for r in up.requests]
    assert paths == [*["/v1/chat/completions"] * 6, "/apply-template", "/tokenize"]
    assert diagnosis.finding("input_tokens").status == "info"


async def test_deepseek_like_reasoning_content_is_replayed_in_reasoning_content() -> None:
    async with serving(profiles.DEEPSEEK) as up:
        diagnosis = await run(up)
    assert findings(diagnosis) == {
        **STANDARD,
        "reasoning": ("ok", {"fields": ["reasoning_content"], "think_tags": "off"}),
        "replay": ("ok", {"field": "reasoning_content", "rejected": {}}),
    }
    assert render_toml(diagnosis.recommendation) == toml(
        up.base_url,
        reasoning_field='"reasoning_content"  # a tool turn replayed with reasoning_content is '
        "accepted",
    )
    replayed = chat_requests(up)[-1].json["messages"][2]
    assert replayed["reasoning_content"] and replayed["tool_calls"]


async def test_deepseek_like_server_rejecting_reasoning_field_falls_back_to_reasoning_content() -> (
    None
):
    """The model streams `reasoning`, yet the server demands `reasoning_content` on replay."""
    quirks = profiles.Quirks(reasoning="reasoning", replay_requires="reasoning_content")
    async with serving(quirks) as up:
        diagnosis = await run(up)
    result = findings(diagnosis)
    status, value = result["replay"]
    assert status == "warn"
    assert value["field"] == "reasoning_content"
    assert list(value["rejected"]) == ["reasoning"]
    assert "HTTP 400" in value["rejected"]["reasoning"]
    assert "Missing `reasoning_content` field" in value["rejected"]["reasoning"]
    assert "Missing `reasoning_content` field" in diagnosis.finding("replay").summary
    assert diagnosis.recommendation.table["reasoning_field"] == "reasoning_content"


LLAMA_CPP_PYTHON_REPLAY_400 = (
    'HTTP 500: {"error": {"message": "messages.2.content: Input should be a valid string", '
    '"type": "invalid_request_error", "param": null}}'
)


async def test_llama_cpp_python_like_usage_ignored_ids_repeated_legacy_function_call() -> None:
    """The profile of the real llama-cpp-python 0.3.36 (the interop test pins the same)."""
    async with serving(profiles.LLAMA_CPP_PYTHON) as up:
        diagnosis = await run(up)
    assert findings(diagnosis) == {
        **STANDARD,
        "include_usage": ("warn", {"accepted": True, "honoured": False}),
        "developer_role": ("warn", False),
        "tool_required": ("fail", {"calls": 0}),
        "tool_parallel": ("warn", {"calls": 0}),
        "tool_id_repeated": ("info", True),
        "tool_name_repeated": ("info", True),
        "legacy_function_call": ("info", True),
        # Tool-call turns are replayed without a `content` key, which its schema accepts.
        "replay": ("ok", {"field": "reasoning", "rejected": {}}),
    }
    assert diagnosis.finding("tool_required").summary.startswith(
        'no call: answered text instead (\'<tool_call> {"name": "get_weather"'
    )
    assert render_toml(diagnosis.recommendation) == toml(
        up.base_url,
        developer_role='"system"  # role "developer" rejected: HTTP 500',
        include_usage="false  # stream_options accepted but no usage chunk came",
    )
    assert "Unexpected message role: developer" in diagnosis.finding("developer_role").summary
    # Once usage proved useless, later probes stop asking for it (one variable per probe).
    assert "stream_options" in chat_requests(up)[0].json
    assert all("stream_options" not in r.json for r in chat_requests(up)[1:])
    assert len(chat_requests(up)) == 6  # the first replay is accepted


async def test_qwen_like_inline_think_tags_mean_think_tags_on() -> None:
    async with serving(profiles.QWEN) as up:
        diagnosis = await run(up)
    assert findings(diagnosis) == {
        **STANDARD,
        "finish_reasons": ("info", ["stop"]),
        "reasoning": ("ok", {"fields": [], "think_tags": "on"}),
    }
    assert 'tool calls ended with "stop"' in diagnosis.finding("finish_reasons").summary
    assert render_toml(diagnosis.recommendation) == toml(
        up.base_url, think_tags='"on"  # content starts with <think>'
    )


async def test_closing_think_tag_only_means_think_tags_preopened() -> None:
    async with serving(profiles.PREOPENED) as up:
        diagnosis = await run(up)
    assert findings(diagnosis) == {
        **STANDARD,
        "reasoning": ("ok", {"fields": [], "think_tags": "preopened"}),
    }
    assert render_toml(diagnosis.recommendation) == toml(
        up.base_url, think_tags='"preopened"  # content closes </think> without opening it'
    )


async def test_developer_role_rejected_with_400_means_system() -> None:
    async with serving(profiles.NO_DEVELOPER) as up:
        diagnosis = await run(up)
    assert findings(diagnosis) == {**STANDARD, "developer_role": ("warn", False)}
    assert render_toml(diagnosis.recommendation) == toml(
        up.base_url, developer_role='"system"  # role "developer" rejected: HTTP 400'
    )
    developer = chat_requests(up)[1].json["messages"]
    assert developer[0]["role"] == "developer"  # the probe really sent the role
    assert all(m["role"] != "developer" for r in chat_requests(up)[2:] for m in r.json["messages"])


async def test_server_without_done_is_noted_and_still_diagnosed() -> None:
    async with serving(profiles.NO_DONE) as up:
        diagnosis = await run(up)
    assert findings(diagnosis) == {**STANDARD, "done": ("info", False)}
    assert render_toml(diagnosis.recommendation) == toml(up.base_url)


async def test_strict_server_rejecting_unknown_message_fields_means_reasoning_field_none() -> None:
    async with serving(profiles.STRICT) as up:
        diagnosis = await run(up)
    replay = findings(diagnosis)["replay"]
    assert findings(diagnosis) == {
        **STANDARD,
        "reasoning": ("ok", {"fields": ["reasoning"], "think_tags": "off"}),
        "tool_index": ("info", "absent"),
        "replay": replay,
    }
    assert replay[0] == "warn"
    assert replay[1]["field"] == "none"
    assert list(replay[1]["rejected"]) == ["reasoning", "reasoning_content"]
    assert render_toml(diagnosis.recommendation) == toml(
        up.base_url, reasoning_field='"none"  # only a replay without reasoning is accepted'
    )
    assert len(chat_requests(up)) == 8


async def test_rejected_stream_options_is_retried_without_and_means_include_usage_false() -> None:
    async with serving(profiles.REJECTS_STREAM_OPTIONS) as up:
        diagnosis = await run(up)
    assert findings(diagnosis) == {
        **STANDARD,
        "include_usage": ("warn", {"accepted": False, "honoured": False}),
        "reasoning": ("ok", {"fields": ["reasoning_details"], "think_tags": "off"}),
        "tool_named": ("warn", False),
    }
    assert "stream_options: Extra inputs" in diagnosis.finding("include_usage").summary
    assert "only without stream_options" in diagnosis.finding("streaming").summary
    assert render_toml(diagnosis.recommendation) == toml(
        up.base_url, include_usage="false  # stream_options rejected: HTTP 400"
    )
    assert [r.probe for r in diagnosis.results][:2] == ["stream", "stream_plain"]


async def test_every_profile_stays_within_the_request_budget() -> None:
    for name in ("STANDARD", "DEEPSEEK", "LLAMA_CPP_PYTHON", "QWEN", "STRICT"):
        async with serving(getattr(profiles, name)) as up:
            await run(up)
        assert 1 <= len(chat_requests(up)) <= MAX_PROBES, name
        for request in chat_requests(up):
            body = request.json
            assert body["stream"] is True
            assert body["max_tokens"] <= 128


async def test_latency_is_measured_from_a_dripped_answer() -> None:
    body = text_body(["Hel", "lo", " there", "!"], usage={"prompt_tokens": 3})
    async with ScriptedUpstream(
        [Reply(body, split=(40, 60), drip_s=0.01)], default=profiles.script(profiles.STANDARD)
    ) as up:
        diagnosis = await run(up)
    latency = diagnosis.finding("latency")
    assert latency.status == "info"
    value = latency.value
    assert 0 < value["ttfb_ms"] <= value["first_token_ms"]
    assert value["chunks_per_s"] is not None and value["chunks_per_s"] > 0
    assert "chunks/s" in latency.summary


async def test_library_entry_point_reports_progress_per_probe() -> None:
    seen: list[tuple[int, str, bool]] = []
    async with serving(profiles.STANDARD) as up:
        await run(
            up, progress=lambda step, probe, result: seen.append((step, probe.name, bool(result)))
        )
    assert seen[:2] == [(1, "stream", False), (1, "stream", True)]
    assert len(seen) == 2 * len(chat_requests(up))


# -- strange servers ---------------------------------------------------------------------------


async def test_connection_refused_is_unreachable_after_one_attempt() -> None:
    provider = Provider(name="quirky", base_url=f"http://127.0.0.1:{free_port()}/v1")
    diagnosis = await diagnose(provider, "m", timeout_s=2)
    assert not diagnosis.reachable
    assert len(diagnosis.results) == 1
    streaming = diagnosis.finding("streaming")
    assert streaming.status == "fail"
    assert streaming.summary.startswith("upstream unreachable: could not connect to http://127")
    assert {f.status for f in diagnosis.findings[1:]} == {"skip"}


async def lone_reply(reply: Reply, **options: Any) -> Diagnosis:
    async with ScriptedUpstream(default=reply) as up:
        return await run(up, **options)


async def test_html_page_is_reported_not_crashed_on() -> None:
    page = b"<!DOCTYPE html><html><body><h1>Welcome to nginx!</h1></body></html>"
    diagnosis = await lone_reply(Reply(page, content_type="text/html"))
    assert diagnosis.reachable
    streaming = diagnosis.finding("streaming")
    assert streaming.status == "fail"
    assert "HTTP 200 text/html, not an event stream: <!DOCTYPE html>" in streaming.summary
    assert len(diagnosis.results) == 1  # a 200 was no rejection: nothing more to learn
    assert diagnosis.recommendation.reasons["include_usage"] == "not determined; current value kept"


async def test_garbage_bytes_are_reported_not_crashed_on() -> None:
    diagnosis = await lone_reply(Reply(b"data: \xff\xfe\x00garbage\n\n"))
    assert diagnosis.finding("streaming").status == "fail"
    assert "not valid utf-8" in diagnosis.finding("streaming").summary


async def test_unparseable_chunks_and_no_end_are_reported() -> None:
    diagnosis = await lone_reply(Reply(b"data: {not json\n\ndata: [1, 2]\n\n"))
    summary = diagnosis.finding("streaming").summary
    assert summary == (
        "does not work: HTTP 200 text/event-stream: 2 events, none a JSON chunk: "
        "data: {not json data: [1, 2]"
    )


async def test_500_on_every_request_is_quoted_and_retried_once_without_stream_options() -> None:
    reply = Reply(b'{"error": {"message": "CUDA out of memory"}}', status=500)
    async with ScriptedUpstream(default=reply) as up:
        diagnosis = await run(up)
    assert [r.probe for r in diagnosis.results] == ["stream", "stream_plain"]
    assert diagnosis.finding("streaming").summary == (
        'does not work: HTTP 500: {"error": {"message": "CUDA out of memory"}}'
    )
    assert "stream_options" not in chat_requests(up)[1].json


async def test_404_hints_at_the_base_url() -> None:
    diagnosis = await lone_reply(
        Reply(b"404 page not found", status=404, content_type="text/plain")
    )
    assert diagnosis.finding("streaming").summary == (
        "does not work: HTTP 404: 404 page not found "
        "(is base_url right? it usually ends in /v1; is the model name known?)"
    )


async def test_non_streamed_json_answer_is_named() -> None:
    completion = {
        "id": "x",
        "object": "chat.completion",
        "choices": [{"index": 0, "message": {"role": "assistant", "content": "hi"}}],
    }
    diagnosis = await lone_reply(
        Reply(json.dumps(completion).encode(), content_type="application/json")
    )
    assert diagnosis.finding("streaming").summary == (
        "does not work: HTTP 200 application/json: one chat.completion, not a stream"
    )


async def test_stalled_stream_times_out_with_what_came_before() -> None:
    body = sse_body([chat_chunk({"content": "Hel"}), chat_chunk({"content": "lo"})])
    first = body.index(b"\n\n") + 2
    diagnosis = await lone_reply(Reply(body, stall_after=first), timeout_s=0.3)
    assert diagnosis.finding("streaming").summary == (
        "does not work: HTTP 200, 1 chunks, then silence (timed out after 0.3 s)"
    )


async def test_finish_without_done_on_an_open_connection_ends_after_a_grace() -> None:
    """A finish_reason, then silence with the connection held: the stream counts as finished."""
    body = sse_body([chat_chunk({"content": "Hi"}), chat_chunk({}, finish_reason="stop")])
    async with ScriptedUpstream(
        [Reply(body, stall_after=len(body) - len(b"data: [DONE]\n\n"))],
        default=profiles.script(profiles.STANDARD),
    ) as up:
        diagnosis = await run(up, timeout_s=30)
    first = diagnosis.results[0]
    assert first.streamed and not first.timed_out
    assert first.elapsed_s < 5  # the 2 s grace, not the 30 s timeout
    assert diagnosis.finding("include_usage").value == {"accepted": True, "honoured": False}


async def test_in_stream_error_object_is_a_rejection() -> None:
    error = sse_body([{"error": {"message": "role developer is not supported"}}], done=False)

    def answer(request: SeenRequest) -> Reply:
        if request.json["messages"][0]["role"] == "developer":
            return Reply(error)
        return profiles.respond(profiles.STANDARD, request)

    async with ScriptedUpstream(default=answer) as up:
        diagnosis = await run(up)
    developer = diagnosis.finding("developer_role")
    assert (developer.status, developer.value) == ("warn", False)
    assert "error in the stream: role developer is not supported" in developer.summary
    assert diagnosis.recommendation.table["developer_role"] == "system"


async def test_tools_unsupported_skips_replay_and_keeps_reasoning_field() -> None:
    def answer(request: SeenRequest) -> Reply:
        if "tools" in request.json:
            return profiles.error_reply("tools are not supported by this model", status=500)
        return profiles.respond(profiles.STANDARD, request)

    async with ScriptedUpstream(default=answer) as up:
        diagnosis = await run(up)
    result = findings(diagnosis)
    assert result["tool_required"][0] == "fail"
    assert "HTTP 500" in diagnosis.finding("tool_required").summary
    assert result["tool_index"] == ("skip", None)
    assert diagnosis.finding("replay").summary == "not probed: every tool request was rejected"
    assert diagnosis.recommendation.reasons["reasoning_field"] == (
        "not determined; current value kept"
    )
    assert len(chat_requests(up)) == 5


async def test_forced_call_answered_with_text_is_a_failure_quoting_the_text() -> None:
    def answer(request: SeenRequest) -> Reply:
        if "tools" in request.json:
            return Reply(text_body(["I cannot ", "check the weather."]))
        return profiles.respond(profiles.STANDARD, request)

    async with ScriptedUpstream(default=answer) as up:
        diagnosis = await run(up)
    assert diagnosis.finding("tool_required").summary == (
        "no call: answered text instead ('I cannot check the weather.')"
    )
    assert diagnosis.finding("tool_named").status == "warn"


async def test_not_http_at_all_is_a_connection_failure_finding() -> None:
    async def talk_nonsense(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await reader.read(100)
        writer.write(b"SSH-2.0-OpenSSH_9.6\r\n")
        await writer.drain()
        writer.close()

    server = await asyncio.start_server(talk_nonsense, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    try:
        provider = Provider(name="quirky", base_url=f"http://127.0.0.1:{port}/v1")
        diagnosis = await diagnose(provider, "m", timeout_s=2)
    finally:
        server.close()
        await server.wait_closed()
    assert diagnosis.reachable
    streaming = diagnosis.finding("streaming")
    assert streaming.status == "fail"
    assert streaming.summary.startswith("does not work: connection failed: ")


async def test_runaway_stream_is_cut_at_the_byte_cap() -> None:
    chunk = sse_body([chat_chunk({"content": "x" * 1000})], done=False)
    diagnosis = await lone_reply(Reply(chunk * 3000))  # ~3.2 MB, never finishing
    first = diagnosis.results[0]
    assert first.truncated
    assert first.observation.body_bytes < 3 << 20
    assert diagnosis.finding("streaming").summary.endswith("with no end in sight (stopped reading)")


async def test_upstream_dying_mid_run_skips_the_rest_and_keeps_what_was_learnt() -> None:
    async with serving(profiles.NO_DEVELOPER) as up:

        def progress(step: int, probe: Any, result: Any) -> None:
            if probe.name == "developer" and result is not None:
                assert up._server is not None
                up._server.close()  # stop listening now: the next connection is refused

        provider = Provider(name="quirky", base_url=up.base_url)
        diagnosis = await diagnose(provider, "m", timeout_s=5, progress=progress)
    assert diagnosis.reachable
    assert [r.probe for r in diagnosis.results] == ["stream", "developer", "tool_required"]
    assert diagnosis.results[-1].unreachable
    assert findings(diagnosis)["developer_role"] == ("warn", False)
    assert diagnosis.recommendation.table["developer_role"] == "system"
    assert diagnosis.finding("tool_required").summary.startswith(
        "probe failed: could not connect to"
    )
    assert diagnosis.finding("replay").summary == "not probed: the upstream stopped answering"
