"""A turn on a conversation of 10, 100 and 1,000 items: what the store and the mapping cost.

    .venv/bin/python bench/conversation_bench.py [--quick] [--postgres URL] [--out FILE]

What a turn with `conversation=` adds to one without: reading the conversation's items (one
statement), parsing them into items and mapping the history to a Chat Completions payload
(`prepare_chat_request`), and afterwards appending the turn's input and output (one transaction,
which must not depend on the conversation's length). Measured in the bridge's own code paths
(`ConversationLog`, `parse_items`, `prepare_chat_request`), with no HTTP in the way: CPU time of
the process (SQLite runs in a worker thread of it; PostgreSQL's own CPU is not counted, so its
wall time is reported too). Items are a realistic mix: a user message, a function call, its
output and an assistant answer, over and over. The median of many turns per size is reported,
and the cost per item, which stays flat when growth is linear.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from wirebridge.chat.request import prepare_chat_request
from wirebridge.items import parse_items
from wirebridge.prompt import Prompt
from wirebridge.provider import Provider
from wirebridge.responses.conversation_items import as_conversation_items
from wirebridge.store import open_store
from wirebridge.store.conversations import conversation_log

SIZES = (10, 100, 1000)
PROVIDER = Provider(name="bench", base_url="http://127.0.0.1:9/v1")
TOOLS = [{"type": "function", "name": "lookup", "parameters": {"type": "object"}}]


def turn_items(n: int) -> list[dict[str, Any]]:
    """The four items of one tool turn (n numbers them)."""
    return [
        {"type": "message", "role": "user", "content": f"question {n}: what does the tool say?"},
        {"type": "function_call", "call_id": f"call_{n}", "name": "lookup", "arguments": "{}"},
        {"type": "function_call_output", "call_id": f"call_{n}", "output": "x" * 200},
        {"type": "message", "role": "assistant", "content": f"answer {n}: " + "words " * 40},
    ]


def conversation(size: int) -> list[dict[str, Any]]:
    items: list[dict[str, Any]] = []
    n = 0
    while len(items) < size:
        items += turn_items(n)
        n += 1
    return as_conversation_items(items[:size])


async def measure(url: str, size: int, repeats: int) -> dict[str, Any]:
    async with await open_store(url) as store:
        log = conversation_log(store)
        made = await log.create(f"conv_bench_{size}", metadata={}, items=[])
        items = conversation(size)
        for start in range(0, size, 500):  # as clients would: in several appends
            await log.append(made.id, items[start : start + 500])

        read_cpu, map_cpu, read_wall, append_cpu, append_wall = [], [], [], [], []
        for _ in range(repeats):
            c0, w0 = time.process_time(), time.perf_counter()
            stored = await log.items(made.id)
            c1, w1 = time.process_time(), time.perf_counter()
            prompt = Prompt("Be brief.", [*parse_items(stored), *parse_items("next?")], TOOLS)
            payload = prepare_chat_request(prompt, "m", PROVIDER).payload
            c2 = time.process_time()
            assert len(payload["messages"]) > 1
            read_cpu.append(c1 - c0)
            read_wall.append(w1 - w0)
            map_cpu.append(c2 - c1)
        for k in range(repeats):  # the turn's own items, appended: independent of the size
            turn = as_conversation_items(turn_items(10_000 + k))
            c0, w0 = time.process_time(), time.perf_counter()
            await log.append(made.id, turn)
            append_cpu.append(time.process_time() - c0)
            append_wall.append(time.perf_counter() - w0)

    def us(values: list[float]) -> float:
        return round(statistics.median(values) * 1e6, 1)

    read_map = [r + m for r, m in zip(read_cpu, map_cpu, strict=True)]
    return {
        "items": size,
        "turns": repeats,
        "read_cpu_us": us(read_cpu),
        "read_wall_us": us(read_wall),
        "map_cpu_us": us(map_cpu),
        "read_and_map_cpu_us": us(read_map),
        "read_and_map_cpu_us_per_item": round(us(read_map) / size, 2),
        "append_cpu_us": us(append_cpu),
        "append_wall_us": us(append_wall),
    }


async def run(urls: dict[str, str], quick: bool) -> dict[str, Any]:
    results: dict[str, Any] = {}
    for backend, url in urls.items():
        rows = []
        for size in SIZES:
            repeats = max(10, (2000 if not quick else 300) // size)
            rows.append(await measure(url, size, repeats))
        small, large = rows[0], rows[-1]
        growth = large["read_and_map_cpu_us"] / small["read_and_map_cpu_us"]
        results[backend] = {
            "rows": rows,
            # 100x the items: at most ~100x the cost is linear; fixed costs make it less
            "growth_10_to_1000": round(growth, 1),
            "per_item_1000_vs_100": round(
                rows[2]["read_and_map_cpu_us_per_item"] / rows[1]["read_and_map_cpu_us_per_item"],
                2,
            ),
        }
    return results


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--postgres", help="also measure on this (scratch) PostgreSQL database")
    parser.add_argument("--out", type=Path)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as folder:
        urls = {"sqlite": f"sqlite://{Path(folder) / 'bench.db'}"}
        if args.postgres:
            urls["postgresql"] = args.postgres
        results = asyncio.run(run(urls, args.quick))
    for backend, result in results.items():
        print(f"{backend}:")
        print(
            f"  {'items':>6} {'read µs':>9} {'map µs':>9} {'read+map µs':>12}"
            f" {'per item':>9} {'append µs':>10}"
        )
        for row in result["rows"]:
            print(
                f"  {row['items']:>6} {row['read_cpu_us']:>9} {row['map_cpu_us']:>9}"
                f" {row['read_and_map_cpu_us']:>12} {row['read_and_map_cpu_us_per_item']:>9}"
                f" {row['append_cpu_us']:>10}"
            )
        print(
            f"  10 -> 1,000 items: x{result['growth_10_to_1000']} the cost (x100 is linear);"
            f" per item at 1,000 vs 100: x{result['per_item_1000_vs_100']}"
        )
    if args.out:
        args.out.write_text(json.dumps(results, indent=2) + "\n")
    linear = all(r["per_item_1000_vs_100"] <= 1.5 for r in results.values())
    sys.exit(0 if linear else 1)


if __name__ == "__main__":
    main()
