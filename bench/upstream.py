"""A fast Chat Completions upstream in its own process: `python bench/upstream.py`.

It runs `wirebridge.testing.ScriptedUpstream` (real HTTP/1.1 on 127.0.0.1) and answers every
request with the body that the request's `model` names (`workload.body`), written in one go.
Being a separate process, its CPU time is not charged to the consumer being measured, and on this
2-core machine it has a core of its own. It prints `PORT <n>` once listening and exits when its
stdin closes, so it never outlives the benchmark.
"""

from __future__ import annotations

import asyncio
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import workload

from wirebridge.testing import Reply, ScriptedUpstream, SeenRequest


def answer(request: SeenRequest) -> Reply:
    try:
        spec = str(request.json.get("model", ""))
        data, _ = workload.body(spec)
    except ValueError as exc:
        return Reply(str(exc).encode(), status=400, content_type="text/plain")
    return Reply(data)


async def main() -> None:
    async with ScriptedUpstream(default=answer) as upstream:
        print(f"PORT {upstream.port}", flush=True)
        loop = asyncio.get_running_loop()
        await loop.run_in_executor(None, sys.stdin.read)  # until the parent closes our stdin


if __name__ == "__main__":
    asyncio.run(main())
