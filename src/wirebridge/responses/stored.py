"""The stored-response endpoints: `GET` and `DELETE /v1/responses/{id}`, and
`GET /v1/responses/{id}/input_items` (cursor pages: `after`, `limit`, `order`, as OpenAI's).

Thin: each calls one `wirebridge.store.Store` method and answers its record in the API's shape;
the store owns the rules (expiry, paging, what "not found" means). Each acts for the caller's
tenant (set by the gate), so another tenant's response is a 404 exactly like an unknown id. A
bridge started with `--no-store` answers 404 saying so.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import TypedDict

import msgspec
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from ..store import Store
from .errors import ApiError, map_exception
from .tenants import scope_tenant

StoreGetter = Callable[[], Store | None]
_encode = msgspec.json.Encoder().encode


def json_response(body: object, status: int = 200) -> Response:
    return Response(_encode(body), status, media_type="application/json")


def error_response(error: ApiError) -> Response:
    return Response(error.encode(), error.status, error.headers, media_type="application/json")


class PageQuery(TypedDict):
    after: str | None
    limit: int
    order: str
    tenant: str | None


def page_query(request: Request) -> PageQuery:
    """A list endpoint's cursor-page query (`after`, `limit` (default 20), `order` (default
    desc), as OpenAI's), for the caller's tenant; a `limit` that is not an integer is a 400."""
    query = request.query_params
    value = query.get("limit", "20")
    try:
        limit = int(value)
    except ValueError:
        raise ApiError.invalid(
            f"Invalid value for 'limit': expected an integer, got {value!r}",
            param="limit",
            code="invalid_value",
        ) from None
    return PageQuery(
        after=query.get("after"),
        limit=limit,
        order=query.get("order", "desc"),
        tenant=scope_tenant(request.scope),
    )


def store_endpoint(
    store: StoreGetter,
    kept: str,
    handler: Callable[[Store, Request], Awaitable[Response]],
    to_error: Callable[[Exception], ApiError] = map_exception,
) -> Callable[[Request], Awaitable[Response]]:
    """`handler` as an endpoint of the store's APIs (stored responses, conversations): without a
    store (`--no-store`) it answers 404 saying the bridge keeps no `kept`, and whatever it
    raises is answered as `to_error` maps it."""

    async def endpoint(request: Request) -> Response:
        current = store()
        if current is None:
            message = f"this bridge keeps no {kept} (it runs with --no-store)"
            return error_response(ApiError(404, message, code="not_found"))
        try:
            return await handler(current, request)
        except Exception as exc:
            return error_response(to_error(exc))

    return endpoint


def stored_routes(store: StoreGetter, prefixes: tuple[str, ...] = ("/v1", "")) -> list[Route]:
    def with_store(
        handler: Callable[[Store, Request], Awaitable[Response]],
    ) -> Callable[[Request], Awaitable[Response]]:
        return store_endpoint(store, "responses", handler)

    async def retrieve(store: Store, request: Request) -> Response:
        record = await store.get(
            request.path_params["response_id"], tenant=scope_tenant(request.scope)
        )
        return json_response(record.response)

    async def delete(store: Store, request: Request) -> Response:
        response_id = request.path_params["response_id"]
        await store.delete(response_id, tenant=scope_tenant(request.scope))
        return json_response({"id": response_id, "object": "response", "deleted": True})

    async def input_items(store: Store, request: Request) -> Response:
        page = await store.list_input_items(
            request.path_params["response_id"], **page_query(request)
        )
        return json_response(page.to_json())

    routes: list[Route] = []
    for prefix in prefixes:
        base = f"{prefix}/responses/{{response_id}}"
        routes += [
            Route(base, with_store(retrieve), methods=["GET"]),
            Route(base, with_store(delete), methods=["DELETE"]),
            Route(f"{base}/input_items", with_store(input_items), methods=["GET"]),
        ]
    return routes
