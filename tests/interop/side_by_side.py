"""Side by side: llama-server's own `/v1/responses` against `wirebridge serve` in front of the same
llama-server's `/v1/chat/completions`, with the same `openai` SDK requests.

`compare()` runs each scenario on both, records what a client sees (the event sequence, the fields
each event carries, the output, the usage) and the latency (median of N requests each, the two
interleaved in one run), and `render()` writes it up as markdown. Run as a script to rewrite
tests/interop/REPORT.md:

    python -m tests.interop.side_by_side [--requests 20] [--out tests/interop/REPORT.md]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from openai import OpenAI

from . import llamacpp
from .llamacpp import ServerPool
from .scripted_model import WEATHER_TOOL

REPORT = Path(__file__).with_name("REPORT.md")
TRACKED_FIELDS = ("sequence_number", "output_index", "content_index", "item_id")


@dataclass(frozen=True)
class Scenario:
    name: str
    script: str  # the scripted model
    request: dict[str, Any]


SCENARIOS = (
    Scenario("text, stream", "text", {"input": "Hi", "temperature": 0, "stream": True}),
    Scenario("text, non-stream", "text", {"input": "Hi", "temperature": 0}),
    Scenario(
        "tool call, stream",
        "tool",
        {"input": "Weather in Oslo?", "tools": [WEATHER_TOOL], "stream": True},
    ),
    Scenario(
        "tool call, non-stream", "tool", {"input": "Weather in Oslo?", "tools": [WEATHER_TOOL]}
    ),
)


@dataclass
class Observation:
    """What one request showed a client."""

    events: list[str] = field(default_factory=list)  # event types, in order (stream only)
    fields: dict[str, set[str]] = field(default_factory=dict)  # event type -> tracked fields
    created_keys: list[str] = field(default_factory=list)  # keys of response.created's response
    output: list[dict[str, Any]] = field(default_factory=list)  # final output items, ids dropped
    usage: dict[str, Any] | None = None
    first_delta_s: float | None = None
    total_s: float = 0.0


def _item(item: Any) -> dict[str, Any]:
    data: dict[str, Any] = item.model_dump(exclude_none=True)
    for key in ("id", "call_id", "status"):
        data.pop(key, None)
    if data.get("type") == "function_call":
        data["arguments"] = json.loads(data["arguments"])
    if data.get("type") == "message":
        data["content"] = [{"type": p["type"], "text": p["text"]} for p in data["content"]]
    return data


def observe(client: OpenAI, model: str, request: dict[str, Any]) -> Observation:
    obs = Observation()
    started = time.perf_counter()
    if not request.get("stream"):
        response = client.responses.create(model=model, **request)
        obs.total_s = time.perf_counter() - started
        obs.output = [_item(i) for i in response.output]
        obs.usage = response.usage.model_dump(exclude_none=True) if response.usage else None
        return obs
    with client.responses.create(model=model, **request) as stream:
        for event in stream:
            if obs.first_delta_s is None and event.type.endswith(".delta"):
                obs.first_delta_s = time.perf_counter() - started
            obs.events.append(event.type)
            present = {f for f in TRACKED_FIELDS if f in event.model_fields_set}
            obs.fields.setdefault(event.type, present).intersection_update(present)
            if event.type == "response.created":
                obs.created_keys = sorted(event.response.model_fields_set)
            if event.type == "response.completed":
                final = event.response
                obs.output = [_item(i) for i in final.output]
                obs.usage = final.usage.model_dump(exclude_none=True) if final.usage else None
    obs.total_s = time.perf_counter() - started
    return obs


@dataclass
class Result:
    scenario: Scenario
    native: Observation  # llama-server /v1/responses (first request)
    bridge: Observation  # wirebridge serve -> llama-server /v1/chat/completions
    native_total: list[float]
    bridge_total: list[float]
    native_first: list[float]
    bridge_first: list[float]


def compare(servers: ServerPool, requests: int = 20) -> list[Result]:
    results = []
    for scenario in SCENARIOS:
        native = OpenAI(
            base_url=servers.get("llama-server", scenario.script).base_url,
            api_key="unused",
            max_retries=0,
        )
        bridge = OpenAI(
            base_url=servers.bridge("llama-server", scenario.script).base_url,
            api_key="unused",
            max_retries=0,
        )
        model = scenario.script
        for client in (native, bridge):  # warm up: connections, prompt cache
            observe(client, model, scenario.request)
        runs: dict[str, list[Observation]] = {"native": [], "bridge": []}
        for _ in range(requests):  # interleaved, so drift hits both alike
            runs["native"].append(observe(native, model, scenario.request))
            runs["bridge"].append(observe(bridge, model, scenario.request))
        results.append(
            Result(
                scenario=scenario,
                native=runs["native"][0],
                bridge=runs["bridge"][0],
                native_total=[o.total_s for o in runs["native"]],
                bridge_total=[o.total_s for o in runs["bridge"]],
                native_first=[o.first_delta_s for o in runs["native"] if o.first_delta_s],
                bridge_first=[o.first_delta_s for o in runs["bridge"] if o.first_delta_s],
            )
        )
    return results


def _runs(events: list[str]) -> Iterator[tuple[str, int]]:
    i = 0
    while i < len(events):
        j = i
        while j < len(events) and events[j] == events[i]:
            j += 1
        yield events[i], j - i
        i = j


def _sequence(events: list[str]) -> str:
    parts = [
        f"`{name.removeprefix('response.')}`" + (f" x{n}" if n > 1 else "")
        for name, n in _runs(events)
    ]
    return " → ".join(parts)


def _ms(values: list[float]) -> str:
    return f"{statistics.median(values) * 1000:.1f}" if values else "-"


def _added(bridge: list[float], native: list[float]) -> str:
    if not bridge or not native:
        return "-"
    return f"{(statistics.median(bridge) - statistics.median(native)) * 1000:+.1f}"


def _fields(obs: Observation) -> str:
    """Which of the tracked fields the events carry: on all, on some (which), on none."""
    parts = []
    for f in TRACKED_FIELDS:
        having = [t.removeprefix("response.") for t, p in obs.fields.items() if f in p]
        if len(having) == len(obs.fields):
            parts.append(f"`{f}` on every event")
        elif not having:
            parts.append(f"no `{f}`")
        else:
            parts.append(f"`{f}` on {', '.join(having)}")
    return "; ".join(parts)


def _flat(data: dict[str, Any], prefix: str = "") -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key, value in data.items():
        if isinstance(value, dict):
            out.update(_flat(value, f"{prefix}{key}."))
        else:
            out[prefix + key] = value
    return out


def _usage_diff(native: dict[str, Any], bridge: dict[str, Any]) -> str:
    common = sorted(native.keys() & bridge.keys())
    differ = [f"`{k}` {native[k]} vs {bridge[k]}" for k in common if native[k] != bridge[k]]
    parts = ["the same counts" if not differ else "different counts: " + ", ".join(differ)]
    only_bridge = [f"`{k}`={bridge[k]}" for k in sorted(bridge.keys() - native.keys())]
    only_native = [f"`{k}`={native[k]}" for k in sorted(native.keys() - bridge.keys())]
    if only_bridge:
        parts.append("wirebridge adds " + ", ".join(only_bridge))
    if only_native:
        parts.append("only llama-server sends " + ", ".join(only_native))
    return "; ".join(parts)


def differences(result: Result) -> list[str]:
    """Plain-language differences between the two for one scenario."""
    native, bridge = result.native, result.bridge
    out = []
    if native.output != bridge.output:
        out.append(f"output differs: native {native.output}, bridge {bridge.output}")
    only_native = sorted(set(native.events) - set(bridge.events))
    only_bridge = sorted(set(bridge.events) - set(native.events))
    if only_native:
        out.append("events only from llama-server: " + ", ".join(f"`{e}`" for e in only_native))
    if only_bridge:
        out.append("events only from wirebridge: " + ", ".join(f"`{e}`" for e in only_bridge))
    common = [e for e in native.events if e in set(bridge.events)]
    common_bridge = [e for e in bridge.events if e in set(native.events)]
    if [n for n, _ in _runs(common)] != [n for n, _ in _runs(common_bridge)]:
        out.append("the events both send come in a different order")
    for name in sorted(set(native.events) & set(bridge.events)):
        n_native, n_bridge = native.events.count(name), bridge.events.count(name)
        if n_native != n_bridge:
            out.append(f"`{name}`: {n_native} from llama-server, {n_bridge} from wirebridge")
    if (native.usage is None) != (bridge.usage is None):
        out.append(f"usage: llama-server {native.usage}, wirebridge {bridge.usage}")
    elif native.usage and bridge.usage and native.usage != bridge.usage:
        out.append("usage: " + _usage_diff(_flat(native.usage), _flat(bridge.usage)))
    if native.created_keys != bridge.created_keys and native.events:
        extra = sorted(set(bridge.created_keys) - set(native.created_keys))
        out.append(
            "`response.created` carries a bare response from llama-server "
            f"({', '.join(native.created_keys)}); wirebridge adds {', '.join(extra)}"
        )
    return out


def render(results: list[Result], requests: int) -> str:
    lines = [
        "# llama-server `/v1/responses` vs wirebridge in front of its Chat endpoint",
        "",
        "Generated by `python -m tests.interop.side_by_side` (do not edit by hand). The same "
        "`openai` SDK requests go to llama-server's own Responses endpoint and to "
        "`wirebridge serve --upstream <llama-server>/v1`, on one llama-server process running a "
        "scripted model (tests/interop/scripted_model.py) on 127.0.0.1. "
        f"Latency: median of {requests} requests each, interleaved, after one warm-up each; "
        f"{platform.machine()}, {os.cpu_count()} cores, {llamacpp.THREADS} threads for the "
        f"server, load average {os.getloadavg()[0]:.1f} at the end of the run (other work on "
        "the machine shows up in the spread); llama.cpp as vendored in llama-cpp-python "
        f"{llamacpp.LLAMACPP_PYTHON_VERSION}. The model is tiny, so the differences are the "
        "bridge's own cost (an extra local hop, and a call's arguments sent when the call is "
        "complete), not inference.",
        "",
        "## Latency (ms)",
        "",
        "| scenario | llama-server total | wirebridge total | added | "
        "llama-server first delta | wirebridge first delta | added |",
        "|---|---|---|---|---|---|---|",
    ]
    for r in results:
        lines.append(
            f"| {r.scenario.name} | {_ms(r.native_total)} | {_ms(r.bridge_total)} | "
            f"{_added(r.bridge_total, r.native_total)} | {_ms(r.native_first)} | "
            f"{_ms(r.bridge_first)} | {_added(r.bridge_first, r.native_first)} |"
        )
    lines += ["", "## Differences a client sees", ""]
    for r in results:
        lines += [f"### {r.scenario.name}", ""]
        if r.native.events:
            lines += [
                f"- llama-server: {_sequence(r.native.events)}",
                f"- wirebridge: {_sequence(r.bridge.events)}",
                f"- fields, llama-server: {_fields(r.native)}",
                f"- fields, wirebridge: {_fields(r.bridge)}",
            ]
        diffs = differences(r)
        lines += [f"- {d}" for d in diffs] if diffs else ["- no difference"]
        lines.append("")
    return "\n".join(lines).rstrip() + "\n"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--requests", type=int, default=20)
    parser.add_argument("--out", type=Path, default=REPORT)
    args = parser.parse_args()
    with llamacpp.pool() as servers:
        report = render(compare(servers, args.requests), args.requests)
    args.out.write_text(report)
    print(report)


if __name__ == "__main__":
    main()
