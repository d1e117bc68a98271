"""The conversation-state seam: where a stored history comes in and a finished response goes out.

The handler calls exactly two functions here. `resolve_history` builds the items sent upstream
from the request's `input` (and, with a store, the stored chain of `previous_response_id` in
front of it); `record_response` is handed every finished response (completed, incomplete or
failed) so the store keeps it. Without a store (`--no-store`), `previous_response_id` is a 400
naming that param (the bridge then keeps no state), and finished responses are dropped.

The store itself (`wirebridge.store`: SQLite embedded, PostgreSQL shared) owns the records, ids,
expiry and chain assembly; this module only translates between a request and a record.
"""

from __future__ import annotations

from ..errors import InputError
from ..items import Item, dump_item, parse_items
from ..store import PreviousResponseNotFoundError, Store, StoredResponse
from ..wire import Response, to_json
from .errors import ApiError
from .request import ResponsesRequest


async def resolve_history(request: ResponsesRequest, store: Store | None) -> list[Item]:
    """The items to send upstream for this request."""
    previous = request.previous_response_id
    if previous is None:
        return request.items
    if store is None:
        raise ApiError.invalid(
            "previous_response_id needs the response store, and this bridge runs without one "
            "(--no-store); send the whole history in `input` instead",
            param="previous_response_id",
            code="previous_response_not_found",
        )
    try:
        chain = await store.load_chain(previous)
    except PreviousResponseNotFoundError as exc:
        raise ApiError.invalid(str(exc), param=exc.param, code=exc.code) from None
    try:
        stored = parse_items(chain)
    except InputError as exc:  # our own records: a failure here is the store's, not the client's
        raise ApiError(
            500, f"stored history of {previous!r} is unreadable: {exc}", "server_error"
        ) from None
    return [*stored, *request.items]


async def record_response(
    store: Store | None, request: ResponsesRequest, response: Response
) -> None:
    """Hand a finished response to the store (if any, and if the client asked to store it)."""
    if store is None or not request.store:
        return
    data = to_json(response)
    await store.save(
        StoredResponse(
            id=response.id,
            created_at=response.created_at,
            model=response.model,
            status=response.status,  # type: ignore[arg-type]  # the store checks it is final
            previous_response_id=request.previous_response_id,
            input_items=tuple(dump_item(item) for item in request.items),
            output_items=tuple(data["output"]),
            usage=data["usage"],
            response=data,
        )
    )
