"""The key-protected ops routes: `/metrics`, and the console's data API under `/console/api/`.

They read what the running server holds (`request.app.state.runtime.ops`), never the store.
"""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from .exchange import Exchange
from .hub import Ops

API = "/console/api"


def _ops(request: Request) -> Ops:
    ops: Ops = request.app.state.runtime.ops
    return ops


def _not_found(what: str) -> Response:
    body = {"error": {"message": what, "type": "invalid_request_error", "code": "not_found"}}
    return JSONResponse(body, 404)


async def metrics(request: Request) -> Response:
    ops = _ops(request)
    if ops.metrics is None:
        return _not_found("metrics are off (--no-metrics)")
    body, content_type = ops.metrics.render()
    return Response(body, media_type=content_type)


def doctor_findings(path: str | None) -> Any:
    """The last `wirebridge doctor` findings (its JSON), or None."""
    if path is None:
        return None
    try:
        return json.loads(Path(path).read_text())
    except (OSError, ValueError):
        return None


async def overview(request: Request) -> Response:
    ops = _ops(request)
    recorder = ops.recorder
    if recorder is None:
        return _not_found("the console is off (--no-console)")
    now = time.perf_counter()
    return JSONResponse(
        {
            "now": time.time(),
            "capture": ops.settings.capture,
            "live": [x.summary(now) for x in recorder.live.values()],
            "recent": [x.summary() for x in reversed(recorder.recent)],
            "health": [[s.at, s.provider, s.ok, s.ttfb_ms, s.duration_ms] for s in recorder.health],
            "doctor": doctor_findings(ops.settings.doctor_report),
        }
    )


def _exchange(request: Request) -> Exchange | None:
    recorder = _ops(request).recorder
    return None if recorder is None else recorder.find(request.path_params["exchange_id"])


async def exchange(request: Request) -> Response:
    found = _exchange(request)
    if found is None:
        return _not_found("no such exchange (the console keeps the most recent ones)")
    if found.sealed is None:
        return JSONResponse({"summary": found.summary(), "live": True})
    return JSONResponse({**found.sealed, "live": False})


async def replay_file(request: Request) -> Response:
    """The upstream's body as captured: what `wirebridge replay FILE` decodes."""
    found = _exchange(request)
    if found is None or found.sealed is None or not found.capture_upstream:
        return _not_found("no captured upstream body (start the bridge with --capture)")
    name = f"{found.response_id or found.id}.sse"
    return Response(
        found.replay,
        media_type="text/event-stream",
        headers={"content-disposition": f'attachment; filename="{name}"'},
    )


def ops_routes() -> list[Route]:
    return [
        Route("/metrics", metrics, methods=["GET"]),
        Route(f"{API}/overview", overview, methods=["GET"]),
        Route(f"{API}/exchanges/{{exchange_id}}", exchange, methods=["GET"]),
        Route(f"{API}/exchanges/{{exchange_id}}/replay", replay_file, methods=["GET"]),
    ]
