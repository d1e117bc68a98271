"""How far an exchange's answer has got, as its summary reports it (ops/exchange.py), without a
server: the answer's counters are read when asked, and sealing keeps their last values; and the
encoder's counters it reads (events handed out, output deltas counted once each).

Through a real bridge (a held stream in `wirebridge top` and the console's JSON) it is pinned in
test_cli_top.py.
"""

from __future__ import annotations

from dataclasses import dataclass

from wirebridge.events import (
    Completed,
    OutputItemDone,
    OutputTextDelta,
    ReasoningContentDelta,
    TokenUsage,
)
from wirebridge.items import FunctionCall
from wirebridge.ops.exchange import Recorder
from wirebridge.responses.encoder import ResponsesEncoder
from wirebridge.responses.request import parse_request
from wirebridge.responses.testing import parse_sse


@dataclass
class Counters:
    events_sent: int = 0
    deltas: int = 0


@dataclass
class Decoder:
    usage: TokenUsage | None = None


def test_a_live_summary_reads_the_counters_and_prefers_the_upstreams_usage() -> None:
    recorder = Recorder(recent=10, capture_bytes=1024, capture_upstream=False)
    exchange = recorder.start("POST", "/v1/responses", {}, {})
    before = exchange.summary()
    assert (before["events"], before["output_tokens"], before["output_tokens_source"]) == (
        0,
        None,
        None,
    )
    counters, decoder = Counters(), Decoder()
    exchange.progress, exchange.decoder = counters, decoder
    exchange.output_began = exchange.t0
    counters.events_sent, counters.deltas = 9, 5
    shown = exchange.summary(now=exchange.t0 + 2.0)
    assert (shown["events"], shown["output_tokens"], shown["output_tokens_source"]) == (
        9,
        5,
        "deltas",
    )
    assert shown["tokens_per_s"] == 2.5  # since the first upstream event
    decoder.usage = TokenUsage(input_tokens=7, output_tokens=12)
    shown = exchange.summary(now=exchange.t0 + 2.0)
    assert (shown["output_tokens"], shown["output_tokens_source"]) == (12, "usage")


def test_sealing_keeps_the_last_numbers_and_lets_the_counters_go() -> None:
    recorder = Recorder(recent=10, capture_bytes=1024, capture_upstream=False)
    exchange = recorder.start("POST", "/v1/responses", {}, {})
    exchange.progress, exchange.output_began = Counters(events_sent=14, deltas=6), exchange.t0
    exchange.duration_s, exchange.ttfb_s = 3.5, 0.5
    recorder.finish(exchange)
    assert exchange.progress is None and exchange.decoder is None
    ended = exchange.summary()
    assert (ended["events"], ended["output_tokens"], ended["output_tokens_source"]) == (
        14,
        6,
        "deltas",
    )
    assert ended["tokens_per_s"] == 2.0  # over the duration after the first byte
    assert exchange.sealed is not None and exchange.sealed["summary"]["events"] == 14


def test_the_encoders_counters_are_the_events_sent_and_each_output_delta_once() -> None:
    request = parse_request(b'{"model":"m","input":"hi","stream":true}', default_model="m")
    encoder = ResponsesEncoder(
        request.response("resp_1", 0), new_id=lambda prefix: f"{prefix}_1", reasoning_summary=True
    )
    encoder.start()
    for event in (
        ReasoningContentDelta("a"),
        ReasoningContentDelta("b"),  # each also mirrored as a summary delta: counted once
        OutputTextDelta("x"),
        OutputTextDelta("y"),
        OutputItemDone(FunctionCall("ping", '{"n":1}', "call_1")),  # whole: one delta
    ):
        encoder.feed(event)
    assert encoder.events_sent == 0  # encoded, not yet taken
    wire = parse_sse(encoder.take())
    assert encoder.events_sent == len(wire)
    deltas = [e for e in wire if e["type"].endswith(".delta")]
    assert encoder.deltas == len(deltas) - 2 == 5
    encoder.feed(Completed())
    encoder.unstore()  # the terminal event re-encoded: still not a delta
    assert encoder.deltas == 5
    assert encoder.events_sent == len(wire)  # the terminal event is not taken yet
    wire += parse_sse(encoder.take())
    assert encoder.events_sent == len(wire) == wire[-1]["sequence_number"] + 1
