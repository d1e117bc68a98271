"""The Conversations API: `/v1/conversations` and `/v1/conversations/{id}/items`.

    POST   /v1/conversations                        create (items, metadata)
    GET    /v1/conversations/{id}                   retrieve
    POST   /v1/conversations/{id}                   update metadata
    DELETE /v1/conversations/{id}                   delete (with its items)
    GET    /v1/conversations/{id}/items             list (after, limit, order, include)
    POST   /v1/conversations/{id}/items             append (answers the list of added items)
    GET    /v1/conversations/{id}/items/{item_id}   retrieve one
    DELETE /v1/conversations/{id}/items/{item_id}   delete one (answers the conversation)

Thin, as `stored.py`: bodies are typed by msgspec structs (a wrong type is a 400 naming the
param), items are shaped by `conversation_items`, and one `ConversationLog` call does the rest.
Each acts for the caller's tenant, so another tenant's conversation is a 404 like an unknown id.
"""

from __future__ import annotations

import re
import secrets
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

import msgspec
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route
from starlette.types import Receive, Scope

from ..jsontypes import JSON
from ..store import Store
from ..store.conversations import (
    ConversationItemNotFoundError,
    ConversationLog,
    ConversationNotFoundError,
    conversation_log,
)
from .conversation_items import as_conversation_items, dump_items, parse_new_items
from .errors import ApiError, map_exception
from .references import resolve_references
from .stored import StoreGetter, json_response, page_query, store_endpoint
from .tenants import scope_tenant
from .validate import check_metadata

BodyReader = Callable[[Scope, Receive], Awaitable[bytes]]  # app.read_body: the body limit
T = TypeVar("T")
_PATH = re.compile(r"^(?P<msg>.*?)(?: - at `\$(?P<path>[^`]*)`)?$", re.DOTALL)


class CreateBody(msgspec.Struct):
    items: list[Any] | None = None
    metadata: dict[str, str] | None = None


class UpdateBody(msgspec.Struct):
    metadata: dict[str, str]


class ItemsBody(msgspec.Struct):
    items: list[Any]


def decode(raw: bytes, kind: type[T]) -> T:
    """A JSON body as `kind`; a 400 naming the param (as the Responses body's) otherwise."""
    try:
        return msgspec.json.decode(raw or b"{}", type=kind)
    except msgspec.ValidationError as exc:
        match = _PATH.match(str(exc))
        message = match.group("msg") if match else str(exc)
        path = ((match.group("path") if match else None) or "").replace("[...]", "")
        param = path.removeprefix(".") or None
        where = f"Invalid type for '{param}': " if param else ""
        raise ApiError.invalid(f"{where}{message[:1].lower()}{message[1:]}", param=param) from None
    except msgspec.DecodeError as exc:
        raise ApiError.invalid(
            f"the request body is not valid JSON: {exc}", code="invalid_json"
        ) from None


def new_conversation_id() -> str:
    return f"conv_{secrets.token_hex(24)}"


def _to_error(exc: Exception) -> ApiError:
    if isinstance(exc, ConversationNotFoundError | ConversationItemNotFoundError):
        return ApiError(404, str(exc), code="not_found")
    return map_exception(exc)


def conversation_routes(
    store: StoreGetter,
    read: BodyReader,
    prefixes: tuple[str, ...] = ("/v1", ""),
    new_id: Callable[[], str] = new_conversation_id,
) -> list[Route]:
    def with_log(
        handler: Callable[[ConversationLog, Store, Request], Awaitable[Response]],
    ) -> Callable[[Request], Awaitable[Response]]:
        async def with_current(current: Store, request: Request) -> Response:
            return await handler(conversation_log(current), current, request)

        return store_endpoint(store, "conversations", with_current, _to_error)

    async def shaped(store: Store, request: Request, raw: list[Any]) -> list[JSON]:
        items = parse_new_items(raw)
        items = await resolve_references(items, store, scope_tenant(request.scope))
        return as_conversation_items(dump_items(items))

    async def create(log: ConversationLog, store: Store, request: Request) -> Response:
        body = decode(await read(request.scope, request.receive), CreateBody)
        metadata = body.metadata or {}
        check_metadata(metadata)
        items = await shaped(store, request, body.items or [])
        made = await log.create(
            new_id(), metadata=metadata, items=items, tenant=scope_tenant(request.scope)
        )
        return json_response(made.to_json())

    async def retrieve(log: ConversationLog, store: Store, request: Request) -> Response:
        found = await log.get(
            request.path_params["conversation_id"], tenant=scope_tenant(request.scope)
        )
        return json_response(found.to_json())

    async def update(log: ConversationLog, store: Store, request: Request) -> Response:
        body = decode(await read(request.scope, request.receive), UpdateBody)
        check_metadata(body.metadata)
        updated = await log.update(
            request.path_params["conversation_id"],
            metadata=body.metadata,
            tenant=scope_tenant(request.scope),
        )
        return json_response(updated.to_json())

    async def delete(log: ConversationLog, store: Store, request: Request) -> Response:
        conversation_id = request.path_params["conversation_id"]
        await log.delete(conversation_id, tenant=scope_tenant(request.scope))
        return json_response(
            {"id": conversation_id, "object": "conversation.deleted", "deleted": True}
        )

    async def list_items(log: ConversationLog, store: Store, request: Request) -> Response:
        # `include` asks for extra fields the bridge does not keep (logprobs, encrypted
        # reasoning, hosted tools' results): items are answered as they were stored.
        page = await log.list_items(request.path_params["conversation_id"], **page_query(request))
        return json_response(page.to_json())

    async def add_items(log: ConversationLog, store: Store, request: Request) -> Response:
        body = decode(await read(request.scope, request.receive), ItemsBody)
        items = await shaped(store, request, body.items)
        await log.append(
            request.path_params["conversation_id"], items, tenant=scope_tenant(request.scope)
        )
        return json_response(
            {
                "object": "list",
                "data": items,
                "first_id": items[0]["id"] if items else None,
                "last_id": items[-1]["id"] if items else None,
                "has_more": False,
            }
        )

    async def get_item(log: ConversationLog, store: Store, request: Request) -> Response:
        item = await log.get_item(
            request.path_params["conversation_id"],
            request.path_params["item_id"],
            tenant=scope_tenant(request.scope),
        )
        return json_response(item)

    async def delete_item(log: ConversationLog, store: Store, request: Request) -> Response:
        after = await log.delete_item(
            request.path_params["conversation_id"],
            request.path_params["item_id"],
            tenant=scope_tenant(request.scope),
        )
        return json_response(after.to_json())

    routes: list[Route] = []
    for prefix in prefixes:
        base = f"{prefix}/conversations"
        one = f"{base}/{{conversation_id}}"
        routes += [
            Route(base, with_log(create), methods=["POST"]),
            Route(one, with_log(retrieve), methods=["GET"]),
            Route(one, with_log(update), methods=["POST"]),
            Route(one, with_log(delete), methods=["DELETE"]),
            Route(f"{one}/items", with_log(list_items), methods=["GET"]),
            Route(f"{one}/items", with_log(add_items), methods=["POST"]),
            Route(f"{one}/items/{{item_id}}", with_log(get_item), methods=["GET"]),
            Route(f"{one}/items/{{item_id}}", with_log(delete_item), methods=["DELETE"]),
        ]
    return routes
