"""HTTP for background runs: starting one, `GET /v1/responses/{id}` (polling, or
`?stream=true&starting_after=N` to resume the event stream), `POST /v1/responses/{id}/cancel`.

The GET route sits in front of the stored-response route: a background run answers from its
run row (live status and output so far), anything else from the store as before. Both act for
the caller's tenant, so another tenant's run is a 404 like an unknown id.

A foreground streamed response with `store` is answered here too (`answer_resumable`): its run
belongs to the server, and this request only reads its frames from a channel while connected.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Callable
from typing import Any

import anyio
import msgspec
from starlette.requests import Request
from starlette.responses import Response, StreamingResponse
from starlette.routing import Route
from starlette.types import Receive, Scope, Send

from ..events import Event
from ..store import ResponseNotFoundError, Store
from ..wire import encode
from .background import BackgroundRuns, ClientItem
from .errors import ApiError, map_exception
from .relay import Relay, Sink
from .tenants import scope_tenant

SSE_HEADERS = {"cache-control": "no-cache", "x-accel-buffering": "no"}
CLIENT_BUFFER = 64  # frame batches queued for a connected client before the run waits for it
Getter = Callable[[], "tuple[Store | None, BackgroundRuns | None]"]


def _error(error: ApiError) -> Response:
    return Response(error.encode(), error.status, error.headers, media_type="application/json")


def _json(body: bytes) -> Response:
    return Response(body, 200, media_type="application/json")


def _sse(frames: AsyncIterator[bytes]) -> Response:
    return StreamingResponse(frames, media_type="text/event-stream", headers=SSE_HEADERS)


def no_background() -> ApiError:
    return ApiError.invalid(
        "background mode needs the response store, and this bridge runs without one (--no-store)",
        param="background",
    )


async def answer_background(
    runs: BackgroundRuns | None,
    relay: Relay,
    events: AsyncIterator[Event],
    *,
    stream: bool,
    scope: Scope,
    receive: Receive,
    send: Send,
) -> None:
    """Start a background run and answer: the queued Response, or its live event stream."""
    tenant = scope_tenant(scope)
    try:
        if runs is None:
            raise no_background()
        await runs.start(relay, events, tenant=tenant)
    except Exception as exc:
        await _error(map_exception(exc))(scope, receive, send)
        return
    if stream:
        answer = _sse(runs.follow(relay.response.id, tenant, -1))
    else:
        answer = _json(encode(msgspec.structs.replace(relay.response, status="queued")))
    await answer(scope, receive, send)


async def answer_resumable(
    runs: BackgroundRuns,
    relay: Relay,
    events: AsyncIterator[Event],
    client: Sink,
    *,
    scope: Scope,
    receive: Receive,
    state: dict[str, Any],
) -> None:
    """A foreground stream the server owns: relayed to this client (`client`, the request's
    own HTTP sink) while it stays; when it leaves, the run goes on (for the detach grace) and
    can be resumed with `starting_after`."""
    channel, frames = anyio.create_memory_object_stream[ClientItem](CLIENT_BUFFER)
    try:
        await runs.start(relay, events, tenant=scope_tenant(scope), client=channel)
    except Exception as exc:
        await client.refuse(map_exception(exc))
        return
    run = runs.local.get(relay.response.id)
    complete = False
    try:
        async with frames, anyio.create_task_group() as tg:

            async def watch_disconnect() -> None:
                while (await receive())["type"] != "http.disconnect":
                    pass
                if not complete:
                    state["disconnected"] = True
                tg.cancel_scope.cancel()  # only this reader: the run goes on

            tg.start_soon(watch_disconnect)
            started = False
            async for item in frames:
                if isinstance(item, ApiError):  # refused before the answer began
                    complete = True
                    await client.refuse(item)
                    break
                if not started:
                    started = True
                    await client.commit()
                await client.write(item)
            else:
                complete = True
                if not started:  # ended before its answer began (a shutdown)
                    await client.refuse(ApiError(503, "the bridge is shutting down"))
                else:
                    await client.finish(b"")
            tg.cancel_scope.cancel()
    finally:
        if run is not None:
            runs.detach(run)


def _background(row_response: str) -> bool:
    try:
        return json.loads(row_response).get("background") is True
    except ValueError:
        return False


def _starting_after(request: Request) -> int:
    value = request.query_params.get("starting_after")
    if value is None:
        return -1
    try:
        number = int(value)
    except ValueError:
        number = -2
    if number < -1:
        raise ApiError.invalid(
            f"Invalid value for 'starting_after': expected a sequence number, got {value[:40]!r}",
            param="starting_after",
            code="invalid_value",
        )
    return number


def run_routes(parts: Getter, prefixes: tuple[str, ...] = ("/v1", "")) -> list[Route]:
    async def retrieve(request: Request) -> Response:
        store, runs = parts()
        if store is None:
            return _error(ApiError(404, "this bridge keeps no responses (--no-store)", "not_found"))
        response_id = request.path_params["response_id"]
        tenant = scope_tenant(request.scope)
        stream = request.query_params.get("stream", "false").lower() == "true"
        try:
            after = _starting_after(request)
            row = None if runs is None else await runs.get(response_id, tenant)
            if row is not None and runs is not None and runs.unstored(response_id):
                row = None
            if row is None:
                record = await store.get(response_id, tenant=tenant)
                if stream:
                    raise ApiError.invalid(
                        f"response {response_id[:80]!r} was neither created with "
                        "background=true nor streamed with store=true: its events were not kept",
                        param="stream",
                    )
                return _json(encode(record.response))
        except Exception as exc:
            return _error(map_exception(exc))
        assert runs is not None
        if stream:
            if (
                not row.active
                and row.last_seq > after
                and not await runs.log.events_after(response_id, after, 1)
            ):
                return _error(
                    ApiError.invalid(
                        f"the events of response {response_id[:80]!r} are no longer kept "
                        "(--background-retention); retrieve it without stream",
                        param="stream",
                    )
                )
            return _sse(runs.follow(response_id, tenant, after))
        live = runs.live_response(response_id) if row.active else None
        return _json(live if live is not None else row.response.encode())

    async def cancel(request: Request) -> Response:
        store, runs = parts()
        response_id = request.path_params["response_id"]
        tenant = scope_tenant(request.scope)
        try:
            if store is None or runs is None:
                raise ResponseNotFoundError(response_id)
            only_background = ApiError.invalid(
                "Only responses created with background=true can be cancelled",
                param="response_id",
            )
            row = await runs.get(response_id, tenant)
            if row is not None and not _background(row.response):  # a resumable stream
                raise only_background
            row, was_running = await runs.cancel(response_id, tenant)
            if row is None:
                await store.get(response_id, tenant=tenant)  # unknown: 404
                raise only_background
            if not was_running and row.status != "cancelled":
                raise ApiError.invalid(
                    f"Cannot cancel a response with status {row.status!r}: it has finished",
                    param="response_id",
                )
        except Exception as exc:
            return _error(map_exception(exc))
        return _json(row.response.encode())

    routes: list[Route] = []
    for prefix in prefixes:
        base = f"{prefix}/responses/{{response_id}}"
        routes += [
            Route(base, retrieve, methods=["GET"]),
            Route(f"{base}/cancel", cancel, methods=["POST"]),
        ]
    return routes
