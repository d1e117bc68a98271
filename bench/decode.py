"""Decode throughput: four consumers of one Chat Completions stream, measured side by side.

Every consumer POSTs to the same upstream subprocess and reads the same body over loopback:

- `wirebridge`: `Client(provider).stream(prompt, model=...)`, counting events;
- `openai-agents`: `ChatCmplStreamHandler.handle_stream` over the `openai` SDK's stream, the path
  `OpenAIChatCompletionsModel.stream_response` takes (its own code for the same job);
- `openai SDK`: `async for chunk in stream` over `chat.completions.create(stream=True)`;
- `floor`: httpx raw bytes, split into lines, one `json.loads` per `data:` line: the least any
  Python consumer must do.

Each run is checked, not only timed: the wirebridge run must rebuild the exact text, reasoning
and tool-call arguments; the others must see every chunk. Timing is wall clock from the request
to the end of the stream plus `time.process_time` (this process's CPU; the upstream's is not in
it). Repetitions are interleaved (A B C D, A B C D, ...) so drift hits every consumer alike.
"""

from __future__ import annotations

import gc
import json
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

import httpx
import msgspec
import workload

from wirebridge import Client, Prompt, Provider
from wirebridge.chat.decode import ChatStreamDecoder
from wirebridge.chat.sse import SSEParser
from wirebridge.events import Completed, OutputItemDone
from wirebridge.items import FunctionCall, Message, Reasoning

MESSAGES: Any = [{"role": "user", "content": "benchmark"}]


@dataclass
class Run:
    wall_s: float
    cpu_s: float
    chunks: int  # chunks in the body (the common unit)
    events: int  # what the consumer yielded (events, chunks or parsed lines)


class Clients:
    """The consumers' clients, built once per section and outside every timing: building an
    httpx client costs tens of milliseconds (its TLS context), more than a 1,000-chunk stream.
    Each keeps its connection to the upstream alive between runs, as a long-lived client does."""

    def __init__(self, base_url: str):
        from openai import AsyncOpenAI

        self.base_url = base_url
        self.http = httpx.AsyncClient(timeout=60)
        provider = Provider(base_url=base_url, request_max_retries=0, stream_max_retries=0)
        self.wirebridge = Client(provider, http_client=self.http)
        self.openai = AsyncOpenAI(base_url=base_url, api_key="bench", max_retries=0)

    async def __aenter__(self) -> Clients:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.wirebridge.aclose()
        await self.http.aclose()
        await self.openai.close()


Consumer = Callable[[Clients, str, workload.Expect], Awaitable[int]]


async def consume_wirebridge(clients: Clients, spec: str, expect: workload.Expect) -> int:
    events = 0
    items: list[Any] = []
    completed = False
    async for event in clients.wirebridge.stream(Prompt(input="benchmark"), model=spec):
        events += 1
        if type(event) is OutputItemDone:
            items.append(event.item)
        elif type(event) is Completed:
            completed = event.token_usage is not None
    check_items(items, expect, completed)
    return events


def check_items(items: list[Any], expect: workload.Expect, completed: bool) -> None:
    """The decoded items must equal what the body carried, or the timing means nothing."""
    text = "".join(getattr(i.content[0], "text", "") for i in items if isinstance(i, Message))
    reasoning = "".join(i.content[0].text for i in items if isinstance(i, Reasoning) and i.content)
    arguments = tuple(i.arguments for i in items if isinstance(i, FunctionCall))
    problems = []
    if text != expect.text:
        problems.append(f"text of {len(text)} chars, expected {len(expect.text)}")
    if reasoning != expect.reasoning:
        problems.append(f"reasoning of {len(reasoning)} chars, expected {len(expect.reasoning)}")
    if arguments != expect.arguments:
        problems.append(
            f"arguments {[len(a) for a in arguments]} chars, expected "
            f"{[len(a) for a in expect.arguments]}"
        )
    if not completed:
        problems.append("no completed event with usage")
    if problems:
        raise AssertionError(f"wirebridge decoded the body wrongly: {'; '.join(problems)}")


async def consume_agents(clients: Clients, spec: str, expect: workload.Expect) -> int:
    from agents.models.chatcmpl_stream_handler import ChatCmplStreamHandler
    from agents.models.fake_id import FAKE_RESPONSES_ID
    from openai.types.responses import Response

    events = 0
    final: Any = None
    stream = await clients.openai.chat.completions.create(
        model=spec, messages=MESSAGES, stream=True, stream_options={"include_usage": True}
    )
    response = Response(  # as OpenAIChatCompletionsModel._fetch_response builds it
        id=FAKE_RESPONSES_ID,
        created_at=time.time(),
        model=spec,
        object="response",
        output=[],
        tool_choice="auto",
        tools=[],
        parallel_tool_calls=False,
    )
    async for event in ChatCmplStreamHandler.handle_stream(response, stream, model=spec):
        events += 1
        if event.type == "response.completed":
            final = event.response
    calls = tuple(o.arguments for o in final.output if o.type == "function_call")
    if calls != expect.arguments:
        raise AssertionError("openai-agents rebuilt different tool-call arguments")
    return events


async def consume_openai(clients: Clients, spec: str, expect: workload.Expect) -> int:
    chunks = 0
    stream = await clients.openai.chat.completions.create(
        model=spec, messages=MESSAGES, stream=True, stream_options={"include_usage": True}
    )
    async for _chunk in stream:
        chunks += 1
    if chunks != expect.chunks:
        raise AssertionError(f"openai SDK saw {chunks} chunks, expected {expect.chunks}")
    return chunks


async def consume_floor(clients: Clients, spec: str, expect: workload.Expect) -> int:
    """The floor: bytes -> lines -> one json.loads per data line, nothing else."""
    parsed = 0
    body = {"model": spec, "messages": MESSAGES, "stream": True}
    url = f"{clients.base_url}/chat/completions"
    async with clients.http.stream("POST", url, json=body) as response:
        tail = b""
        async for raw in response.aiter_raw():
            lines = (tail + raw).split(b"\n")
            tail = lines.pop()
            for line in lines:
                if line.startswith(b"data: ") and line != b"data: [DONE]":
                    json.loads(line[6:])
                    parsed += 1
    if parsed != expect.chunks:
        raise AssertionError(f"floor parsed {parsed} chunks, expected {expect.chunks}")
    return parsed


async def consume_floor_msgspec(clients: Clients, spec: str, expect: workload.Expect) -> int:
    """The floor with wirebridge's JSON parser (msgspec) instead of json.loads: context only."""
    parsed = 0
    body = {"model": spec, "messages": MESSAGES, "stream": True}
    decode = msgspec.json.Decoder().decode
    url = f"{clients.base_url}/chat/completions"
    async with clients.http.stream("POST", url, json=body) as response:
        tail = b""
        async for raw in response.aiter_raw():
            lines = (tail + raw).split(b"\n")
            tail = lines.pop()
            for line in lines:
                if line.startswith(b"data: ") and line != b"data: [DONE]":
                    decode(line[6:])
                    parsed += 1
    if parsed != expect.chunks:
        raise AssertionError(f"floor parsed {parsed} chunks, expected {expect.chunks}")
    return parsed


async def consume_core(clients: Clients, spec: str, expect: workload.Expect) -> int:
    """wirebridge's sans-I/O core alone (SSEParser + ChatStreamDecoder) on the body in memory,
    fed in 64 KiB pieces: what the decoding costs without sockets. Context only."""
    data, _ = workload.body(spec)
    parser, decoder = SSEParser(), ChatStreamDecoder()
    events = 0
    items: list[Any] = []
    completed = False
    for start in range(0, len(data), 65536):
        for chunk in parser.feed(data[start : start + 65536]):
            for event in decoder.feed(chunk):
                events += 1
                if type(event) is OutputItemDone:
                    items.append(event.item)
                elif type(event) is Completed:
                    completed = event.token_usage is not None
    parser.close()
    check_items(items, expect, completed)
    return events


CONSUMERS: dict[str, Consumer] = {
    "wirebridge": consume_wirebridge,
    "openai-agents": consume_agents,
    "openai SDK": consume_openai,
    "floor": consume_floor,
    "floor (msgspec)": consume_floor_msgspec,
    "wirebridge core, no I/O": consume_core,
}
# The peers we compare against; the rest is context.
PEERS = ("openai-agents", "openai SDK", "floor")


async def measure(consumer: Consumer, clients: Clients, spec: str) -> Run:
    _, expect = workload.body(spec)
    gc.collect()
    wall0, cpu0 = time.perf_counter(), time.process_time()
    events = await consumer(clients, spec, expect)
    wall, cpu = time.perf_counter() - wall0, time.process_time() - cpu0
    return Run(wall, cpu, expect.chunks, events)


async def run(base_url: str, chunks: int, repeats: int, names: list[str]) -> dict[str, Any]:
    spec = f"mix-{chunks}"
    body, _ = workload.body(spec)
    runs: dict[str, list[Run]] = {name: [] for name in names}
    async with Clients(base_url) as clients:
        await measure(CONSUMERS["floor"], clients, spec)  # warm up: the upstream builds the body
        for name in names:  # and each client connects, imports, fills its caches
            await measure(CONSUMERS[name], clients, "mix-1000")
        for _ in range(repeats):
            for name in names:
                runs[name].append(await measure(CONSUMERS[name], clients, spec))
    rows: dict[str, dict[str, Any]] = {}
    for name, rs in runs.items():
        best = min(rs, key=lambda r: r.wall_s)
        rows[name] = {
            "chunks_per_s": best.chunks / best.wall_s,
            "chunks_per_cpu_s": best.chunks / best.cpu_s,
            "events_per_s": best.events / best.wall_s,
            "wall_s": best.wall_s,
            "cpu_s": best.cpu_s,
            "events": best.events,
            "walls_s": [r.wall_s for r in rs],
        }
    floor = rows.get("floor")
    wb = rows.get("wirebridge")
    ratios: dict[str, float] = {}
    if wb is not None:
        for name, row in rows.items():
            if name != "wirebridge":
                ratios[f"wirebridge/{name}"] = wb["chunks_per_s"] / row["chunks_per_s"]
                ratios[f"wirebridge/{name} (CPU)"] = row["cpu_s"] / wb["cpu_s"]
    return {
        "body": {"spec": spec, "chunks": chunks, "bytes": len(body)},
        "repeats": repeats,
        "best_of": "wall time",
        "consumers": rows,
        "ratios": ratios,
        "target": {"wirebridge/floor": 0.5},
        "met": None if floor is None or wb is None else ratios["wirebridge/floor"] >= 0.5,
    }
