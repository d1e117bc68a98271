"""A fast Chat Completions upstream in its own process: `python bench/upstream.py`.

A few dozen lines of HTTP/1.1 on asyncio streams, listening on 127.0.0.1 only. Every POST is
answered with the body that the request's `model` names (`workload.body`), in one write with a
Content-Length. Unlike `wirebridge.testing.ScriptedUpstream` (which closes every connection, as
its fault-injection tests want), it keeps connections alive, as vLLM, llama-server or Ollama do,
so the bridge's pooled upstream connections are measured as they are used in practice; a
request with `Connection: close` is answered and closed.

Being a separate process, its CPU time is not charged to the consumer being measured, and on this
2-core machine it can run beside it. It prints `PORT <n>` once listening and exits when its
stdin closes, so it never outlives the benchmark.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import workload

MAX_HEAD = 64 * 1024
MAX_BODY = 32 * 1024 * 1024


def answer(request_body: bytes) -> tuple[int, bytes, bytes]:
    """(status, content type, body) for one request."""
    try:
        spec = str(json.loads(request_body).get("model", ""))
        data, _ = workload.body(spec)
    except (ValueError, AttributeError) as exc:
        return 400, b"text/plain", str(exc).encode()
    return 200, b"text/event-stream", data


async def serve(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    try:
        while True:
            try:
                head = await reader.readuntil(b"\r\n\r\n")
            except asyncio.IncompleteReadError:
                return  # the client closed an idle connection
            length, close = 0, False
            for line in head.split(b"\r\n")[1:]:
                name, _, value = line.partition(b":")
                name = name.strip().lower()
                if name == b"content-length":
                    length = int(value)
                elif name == b"connection":
                    close = value.strip().lower() == b"close"
            if length > MAX_BODY:
                return
            body = await reader.readexactly(length) if length else b""
            status, content_type, data = answer(body)
            reason = b"OK" if status == 200 else b"Bad Request"
            writer.write(
                b"HTTP/1.1 %d %s\r\nContent-Type: %s\r\nContent-Length: %d\r\n%s\r\n"
                % (
                    status,
                    reason,
                    content_type,
                    len(data),
                    b"Connection: close\r\n" if close else b"",
                )
            )
            writer.write(data)
            await writer.drain()
            if close:
                return
    except (ConnectionError, asyncio.IncompleteReadError, asyncio.LimitOverrunError, ValueError):
        pass
    finally:
        with contextlib.suppress(Exception):
            writer.close()
            await writer.wait_closed()


async def main() -> None:
    server = await asyncio.start_server(serve, "127.0.0.1", 0, limit=MAX_HEAD, backlog=4096)
    print(f"PORT {server.sockets[0].getsockname()[1]}", flush=True)
    loop = asyncio.get_running_loop()
    await loop.run_in_executor(None, sys.stdin.read)  # until the parent closes our stdin
    server.close()


if __name__ == "__main__":
    asyncio.run(main())
