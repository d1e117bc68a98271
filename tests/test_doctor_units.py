"""The doctor's pure parts with plain data: the observer, the plan, the analysis, the merge."""

from __future__ import annotations

import json
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from wirebridge import Provider
from wirebridge.doctor import (
    Finding,
    Plan,
    ProbeResult,
    Recommendation,
    Setting,
    StreamObserver,
    analyse,
    diagnosis_json,
    recommend,
)
from wirebridge.doctor.analysis import OPTION_KEYS
from wirebridge.doctor.configfile import merge_provider
from wirebridge.doctor.observe import StreamObservation
from wirebridge.doctor.probes import MAX_PROBES, replay_order
from wirebridge.errors import ConfigError
from wirebridge.testing.bodies import chat_chunk, sse_body, tool_call_body

from . import doctor_profiles as profiles

LLAMA_CPP_PYTHON_TOOL_CHUNKS = [
    {
        "id": "chatcmpl-1",
        "choices": [
            {
                "index": 0,
                "finish_reason": None,
                "delta": {
                    "role": None,
                    "content": None,
                    "function_call": {"name": "get_weather", "arguments": piece},
                    "tool_calls": [
                        {
                            "index": 0,
                            "id": "call__0_get_weather",
                            "type": "function",
                            "function": {"name": "get_weather", "arguments": piece},
                        }
                    ],
                },
            }
        ],
    }
    for piece in ('{"', 'city": "Par', 'is"}')
] + [{"id": "chatcmpl-1", "choices": [{"index": 0, "finish_reason": "tool_calls", "delta": {}}]}]


def observe(body: bytes, pieces: list[int] | None = None) -> StreamObservation:
    observer = StreamObserver()
    at, start = 0.0, 0
    for size in pieces or [len(body)]:
        at += 1.0
        observer.feed(body[start : start + size], at)
        start += size
    observer.feed(body[start:], at + 1)
    return observer.close()


# -- observer ----------------------------------------------------------------------------------


def test_observer_records_usage_chunk_done_and_finish() -> None:
    body = sse_body(
        [
            chat_chunk({"role": "assistant", "content": ""}),
            chat_chunk({"content": "Hi"}),
            chat_chunk({}, finish_reason="stop"),
            chat_chunk(usage={"prompt_tokens": 1}, choices=False),
        ]
    )
    obs = observe(body)
    assert (obs.chunks, obs.done, obs.finish_reasons) == (4, True, ["stop"])
    assert obs.usage == {"prompt_tokens": 1} and not obs.usage_on_choice_chunk
    assert obs.content == "Hi" and obs.token_chunks == 1


def test_observer_spots_repeated_id_name_and_legacy_function_call() -> None:
    obs = observe(sse_body(LLAMA_CPP_PYTHON_TOOL_CHUNKS))
    [call] = obs.tool_calls
    assert (call.id, call.name, call.arguments) == (
        "call__0_get_weather",
        "get_weather",
        '{"city": "Paris"}',
    )
    assert (call.chunks, call.id_chunks, call.name_chunks) == (3, 3, 3)
    assert obs.legacy_function_call
    assert obs.entries_with_index == 3 and obs.entries_without_index == 0


def test_observer_tells_calls_without_index_apart_by_id() -> None:
    entries = [
        {"id": "a", "function": {"name": "f", "arguments": "{"}},
        {"function": {"arguments": "}"}},
        {"id": "b", "function": {"name": "g", "arguments": "{}"}},
    ]
    obs = observe(sse_body([chat_chunk({"tool_calls": [e]}) for e in entries]))
    assert [(c.id, c.name, c.arguments, c.index) for c in obs.tool_calls] == [
        ("a", "f", "{}", None),
        ("b", "g", "{}", None),
    ]
    assert obs.entries_without_index == 3


def test_observer_names_each_reasoning_field_in_order_of_sight() -> None:
    body = sse_body(
        [
            chat_chunk({"reasoning": {"text": "a"}}),
            chat_chunk({"reasoning_details": [{"text": "b"}]}),
            chat_chunk({"reasoning_content": "c"}),
            chat_chunk({"reasoning_content": ""}),
        ]
    )
    assert observe(body).reasoning_fields == ["reasoning", "reasoning_details", "reasoning_content"]


def test_observer_counts_error_objects_and_data_after_done() -> None:
    body = b'data: {"error": {"message": "overloaded"}}\n\ndata: [DONE]\n\ndata: {}\n\n'
    obs = observe(body)
    assert obs.errors == ["overloaded"]
    assert obs.done and obs.data_after_done


def test_observer_keeps_the_head_of_a_body_that_is_not_a_stream() -> None:
    obs = observe(b"<html>" + b"x" * 10_000)
    assert obs.chunks == 0 and obs.head.startswith(b"<html>") and len(obs.head) == 4096


def test_observer_reports_bad_utf8_instead_of_raising() -> None:
    obs = observe(b"data: {}\n\ndata: \xff\n\n", [10])
    assert obs.chunks == 1
    assert obs.decode_error is not None and "utf-8" in obs.decode_error


@given(st.lists(st.integers(min_value=1, max_value=17), max_size=60))
def test_observation_does_not_depend_on_how_the_body_is_split(pieces: list[int]) -> None:
    body = tool_call_body(
        [("c1", "get_weather", {"city": "Paris"}), ("c2", "get_time", {"city": "Tokyo"})],
        usage={"prompt_tokens": 2},
    ) + sse_body([chat_chunk({"reasoning_content": "é😀"})], done=False)
    whole, split = observe(body), observe(body, pieces)
    for obs in (whole, split):
        obs.first_byte_at = obs.first_token_at = obs.last_token_at = None
    assert split == whole


# -- plan --------------------------------------------------------------------------------------


def result(name: str, status: int | None = 200, **obs: Any) -> ProbeResult:
    defaults: dict[str, Any] = {"chunks": 3, "finish_reasons": ["stop"], "done": True}
    return ProbeResult(name, status=status, observation=StreamObservation(**{**defaults, **obs}))


def run_plan(answer: Any) -> list[str]:
    plan = Plan("m")
    sent = []
    while (probe := plan.next_probe()) is not None:
        sent.append(probe.name)
        plan.record(answer(probe))
        assert len(sent) <= MAX_PROBES
    return sent


def test_plan_falls_back_to_plain_streaming_only_after_a_rejection() -> None:
    sent = run_plan(lambda p: result(p.name, 400 if p.name.startswith("stream") else 200))
    assert sent == ["stream", "stream_plain"]
    assert run_plan(lambda p: result(p.name, chunks=0)) == ["stream"]


def test_plan_stops_at_once_when_nothing_listens() -> None:
    answer = ProbeResult("stream", unreachable=True, error="refused")
    assert run_plan(lambda p: answer) == ["stream"]


def test_plan_tries_every_replay_field_then_stops() -> None:
    sent = run_plan(lambda p: result(p.name, 400 if p.name.startswith("replay") else 200))
    assert sent[-3:] == ["replay_reasoning", "replay_reasoning_content", "replay_none"]
    assert len(sent) == 8


def test_plan_stops_replaying_after_an_inconclusive_answer() -> None:
    def answer(p: Any) -> ProbeResult:
        if p.name.startswith("replay"):
            return ProbeResult(p.name, timed_out=True, error="timed out after 1 s")
        return result(p.name)

    assert run_plan(answer)[-1] == "replay_reasoning"


def test_replay_order_starts_with_the_field_the_model_streams() -> None:
    seen = {"stream": result("stream", reasoning_fields=["reasoning_content"])}
    assert replay_order(seen)[0] == "reasoning_content"
    assert replay_order({"stream": result("stream")})[0] == "reasoning"


def test_plan_payloads_send_only_what_was_shown_to_work() -> None:
    plan = Plan("m", max_tokens=16)
    first = plan.next_probe()
    assert first is not None and first.payload["stream_options"] == {"include_usage": True}
    assert first.payload["max_tokens"] == 16
    plan.record(result("stream"))  # streamed, but no usage chunk
    developer = plan.next_probe()
    assert developer is not None and "stream_options" not in developer.payload
    assert developer.payload["messages"][0]["role"] == "developer"


# -- analysis ----------------------------------------------------------------------------------


def test_inconclusive_probes_keep_the_current_values() -> None:
    current = Provider(name="p", base_url="http://127.0.0.1:1/v1", developer_role="developer")
    results = {
        "stream": result("stream", usage={"prompt_tokens": 1}),
        "developer": ProbeResult("developer", timed_out=True, error="timed out after 1 s"),
    }
    diagnosis = analyse(results, current, "m")
    developer = diagnosis.finding("developer_role")
    assert (developer.status, developer.value) == ("fail", None)
    assert developer.summary == "probe failed: timed out after 1 s"
    assert diagnosis.recommendation.table["developer_role"] == "developer"
    assert diagnosis.recommendation.reasons["developer_role"] == (
        "not determined; current value kept"
    )
    assert diagnosis.finding("tool_required").status == "skip"


def test_the_recommendation_comes_from_the_findings_in_any_order() -> None:
    """Each finding carries the options it settles: no finding relies on being asked first."""
    provider = Provider(name="p", base_url="http://127.0.0.1:1/v1")
    results = {
        "stream": result("stream", usage={"prompt_tokens": 1}, content="<think>hm</think>hi"),
        "developer": result("developer", status=400),
        "replay_reasoning": result("replay_reasoning", status=400),
        "replay_reasoning_content": result("replay_reasoning_content"),
    }
    diagnosis = analyse(results, provider, "m")
    rec = diagnosis.recommendation
    assert rec.undetermined == []
    assert {k: rec.table[k] for k in OPTION_KEYS} == {
        "developer_role": "system",
        "reasoning_field": "reasoning_content",
        "include_usage": True,
        "think_tags": "on",
    }
    for findings in (diagnosis.findings[::-1], sorted(diagnosis.findings, key=lambda f: f.key)):
        assert recommend(provider, findings) == rec
    assert analyse(results, provider, "m") == diagnosis  # asking twice changes nothing
    replay_only = recommend(provider, [diagnosis.finding("replay")])
    assert replay_only.table["reasoning_field"] == "reasoning_content"
    assert replay_only.undetermined == ["developer_role", "include_usage", "think_tags"]
    assert recommend(provider, []).undetermined == list(OPTION_KEYS)


def test_two_findings_settling_one_option_differently_is_an_error() -> None:
    on = Finding("reasoning", "ok", "", settles={"think_tags": Setting("on", "a")})
    off = Finding("reasoning", "ok", "", settles={"think_tags": Setting("off", "b")})
    assert recommend(Provider(), [on, on]).table["think_tags"] == "on"
    with pytest.raises(ValueError, match="think_tags settled twice"):
        recommend(Provider(), [on, off])


def test_unparseable_arguments_are_a_warning_that_quotes_them() -> None:
    chunks = [chat_chunk({"tool_calls": [{"index": 0, "id": "c", "function": {"name": "f"}}]})]
    chunks += [chat_chunk({"tool_calls": [{"index": 0, "function": {"arguments": "city=Paris"}}]})]
    chunks += [chat_chunk({}, finish_reason="tool_calls")]
    obs = observe(sse_body(chunks))
    results = {
        "stream": result("stream"),
        "tool_required": ProbeResult("tool_required", status=200, observation=obs),
    }
    finding = analyse(results, Provider(), "m").finding("tool_required")
    assert finding.status == "warn"
    assert finding.summary == "called f but its arguments are not JSON: 'city=Paris'"


def test_json_form_is_serialisable_and_carries_the_toml() -> None:
    diagnosis = analyse({"stream": result("stream")}, Provider(name="x"), "m")
    data = json.loads(json.dumps(diagnosis_json(diagnosis)))
    assert data["recommended"]["toml"].startswith("[model_providers.x]\n")
    assert set(data["findings"]) >= {"streaming", "include_usage", "replay", "latency"}


# -- config merge ------------------------------------------------------------------------------

REC = Recommendation(
    "box",
    {
        "base_url": "http://127.0.0.1:8080/v1",
        "developer_role": "system",
        "reasoning_field": "reasoning",
        "include_usage": False,
        "think_tags": "on",
    },
    {"include_usage": "ignored", "think_tags": "content starts with <think>"},
)


def test_merge_into_an_empty_file_writes_the_table() -> None:
    assert merge_provider("", REC) == (
        "[model_providers.box]\n"
        'base_url = "http://127.0.0.1:8080/v1"\n'
        'developer_role = "system"\n'
        'reasoning_field = "reasoning"\n'
        "include_usage = false  # ignored\n"
        'think_tags = "on"  # content starts with <think>\n'
    )


def test_merge_adds_a_new_provider_among_others_and_leaves_them_alone() -> None:
    text = (
        'model = "x"  # mine\n'
        "\n"
        "[model_providers.other]\n"
        'base_url = "http://127.0.0.1:1/v1"  # the other box\n'
        "\n"
        "[models.a]\n"
        'provider = "other"\n'
    )
    merged = merge_provider(text, REC)
    assert merged == (
        'model = "x"  # mine\n'
        "\n"
        "[model_providers.other]\n"
        'base_url = "http://127.0.0.1:1/v1"  # the other box\n'
        "\n"
        "[model_providers.box]\n"
        'base_url = "http://127.0.0.1:8080/v1"\n'
        'developer_role = "system"\n'
        'reasoning_field = "reasoning"\n'
        "include_usage = false  # ignored\n"
        'think_tags = "on"  # content starts with <think>\n'
        "\n"
        "[models.a]\n"
        'provider = "other"\n'
    )


def test_merge_keeps_a_line_whose_value_is_already_right() -> None:
    text = '[model_providers.box]\nbase_url = "http://127.0.0.1:8080/v1"\nthink_tags = "on" # yes\n'
    merged = merge_provider(text, REC)
    assert 'think_tags = "on" # yes\n' in merged
    assert merged.count("think_tags") == 1


def test_merge_refuses_invalid_toml_and_bad_shapes() -> None:
    with pytest.raises(ConfigError, match="invalid TOML, not touched"):
        merge_provider("model = \n", REC)
    with pytest.raises(ConfigError, match="model_providers must be a table"):
        merge_provider('model_providers = "x"\n', REC)


def test_profiles_module_answers_deepseek_replay_without_reasoning_content_with_400() -> None:
    """The DeepSeek profile itself: the 400 the doctor must detect is really there."""
    from wirebridge.testing.upstream import SeenRequest

    body = {
        "messages": [
            {"role": "user", "content": "q"},
            {"role": "assistant", "content": None, "tool_calls": [{"id": "c"}]},
        ]
    }
    reply = profiles.respond(
        profiles.DEEPSEEK, SeenRequest("POST", "/", {}, json.dumps(body).encode())
    )
    assert reply.status == 400 and b"Missing `reasoning_content` field" in reply.body


def test_merge_leaves_undetermined_options_of_an_existing_table_alone() -> None:
    rec = Recommendation(
        "box",
        {"base_url": "http://127.0.0.1:8080/v1", "reasoning_field": "reasoning"},
        {"reasoning_field": "not determined; current value kept"},
        ["reasoning_field"],
    )
    text = '[model_providers.box]\nbase_url = "http://127.0.0.1:8080/v1"\n'
    assert merge_provider(text, rec) == text
    assert merge_provider("", rec) == (
        "[model_providers.box]\n"
        'base_url = "http://127.0.0.1:8080/v1"\n'
        'reasoning_field = "reasoning"  # not determined; current value kept\n'
    )
