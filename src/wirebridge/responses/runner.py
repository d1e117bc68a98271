"""Running the app under uvicorn: in the foreground (the command line) or in the background
(tests, benchmarks, embedding), on a socket we bind ourselves so port 0 works and the URL is known
before the first request.

Graceful shutdown is uvicorn's: on SIGTERM/SIGINT it stops accepting, lets running streams finish
within `grace_s`, then cancels what is left.
"""

from __future__ import annotations

import asyncio
import contextlib
import ipaddress
import logging
import socket
from collections.abc import AsyncIterator
from dataclasses import dataclass

import uvicorn
from starlette.types import ASGIApp

from .settings import DEFAULT_MAX_BODY_BYTES

DEFAULT_HOST = "127.0.0.1"
DEFAULT_PORT = 8787
DEFAULT_GRACE_S = 30.0
BACKLOG = 2048
DEFAULT_MAX_CONNECTIONS = 2048
DEFAULT_KEEP_ALIVE_S = 30
DEFAULT_MAX_HEADER_BYTES = 64 * 1024

log = logging.getLogger("wirebridge.server")


def is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def bind_socket(host: str, port: int) -> socket.socket:
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    # proto must say TCP: asyncio sets TCP_NODELAY on accepted sockets only then, and without
    # it Nagle holds each small SSE write for the client's delayed ACK (~40 ms per response).
    sock = socket.socket(family, socket.SOCK_STREAM, socket.IPPROTO_TCP)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind((host.strip("[]"), port))
    except OSError:
        sock.close()
        raise
    # Listening now (uvicorn would only after the app's startup) means a client that connects
    # early waits in the backlog instead of being refused, and port 0 has its number already.
    sock.listen(BACKLOG)
    return sock


def url_of(host: str, port: int) -> str:
    return f"http://[{host}]:{port}" if ":" in host else f"http://{host}:{port}"


@dataclass(frozen=True, slots=True)
class ServerLimits:
    """Per-connection limits the HTTP server enforces before the app sees a request.

    `max_connections` open connections at most (beyond it uvicorn answers 503 at once);
    `keep_alive_s` closes an idle kept-alive connection; `max_header_bytes` bounds a request's
    head (applies with the h11 parser; httptools has its own fixed bounds)."""

    max_connections: int | None = DEFAULT_MAX_CONNECTIONS
    keep_alive_s: int = DEFAULT_KEEP_ALIVE_S
    max_header_bytes: int = DEFAULT_MAX_HEADER_BYTES
    # WebSockets (responses/websocket.py): a message over `ws_max_bytes` (the body limit) is
    # refused from its frame header with close 1009, never buffered; pings every interval, and
    # a client that does not answer one within the timeout is closed.
    ws_max_bytes: int = DEFAULT_MAX_BODY_BYTES
    ws_ping_interval_s: float | None = 20.0
    ws_ping_timeout_s: float | None = 20.0


def _config(
    app: ASGIApp, grace_s: float | None, limits: ServerLimits = ServerLimits()
) -> uvicorn.Config:
    return uvicorn.Config(
        app,
        log_config=None,  # our handlers (text or json) receive uvicorn's records too
        access_log=False,  # the Gate writes the access log, with model and timing
        lifespan="on",
        server_header=False,
        # uvicorn types this as int but only ever awaits it as a float timeout.
        timeout_graceful_shutdown=grace_s,  # type: ignore[arg-type]
        timeout_keep_alive=limits.keep_alive_s,
        limit_concurrency=limits.max_connections,
        h11_max_incomplete_event_size=limits.max_header_bytes,
        ws_max_size=limits.ws_max_bytes,
        ws_ping_interval=limits.ws_ping_interval_s,
        ws_ping_timeout=limits.ws_ping_timeout_s,
        ws_per_message_deflate=True,  # Codex offers permessage-deflate
    )


def run(
    app: ASGIApp,
    host: str,
    port: int,
    *,
    grace_s: float | None = DEFAULT_GRACE_S,
    limits: ServerLimits = ServerLimits(),
) -> None:
    """Serve until SIGTERM/SIGINT (the command line)."""
    sock = bind_socket(host, port)
    log.info("listening on %s/v1", url_of(host, sock.getsockname()[1]))
    uvicorn.Server(_config(app, grace_s, limits)).run(sockets=[sock])


@dataclass(frozen=True, slots=True)
class RunningBridge:
    host: str
    port: int
    server: uvicorn.Server

    @property
    def url(self) -> str:
        return url_of(self.host, self.port)

    @property
    def base_url(self) -> str:
        """What an OpenAI client's `base_url` should be."""
        return self.url + "/v1"


@contextlib.asynccontextmanager
async def running(
    app: ASGIApp,
    host: str = DEFAULT_HOST,
    port: int = 0,
    *,
    grace_s: float | None = 5.0,
    limits: ServerLimits = ServerLimits(),
) -> AsyncIterator[RunningBridge]:
    """Serve in a background task of the running loop; stop (gracefully) on exit."""
    sock = bind_socket(host, port)
    server = uvicorn.Server(_config(app, grace_s, limits))
    # `_serve` is `serve` without taking over the process's signal handlers (a test runner
    # or an embedding program owns those).
    task = asyncio.ensure_future(server._serve(sockets=[sock]))
    try:
        while not server.started:
            if task.done():
                task.result()  # startup failed: raise its error
                raise RuntimeError("the bridge server stopped during startup")
            await asyncio.sleep(0.005)
        yield RunningBridge(host, sock.getsockname()[1], server)
    finally:
        server.should_exit = True
        with contextlib.suppress(asyncio.CancelledError):
            await task
        sock.close()
