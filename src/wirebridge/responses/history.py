"""The conversation-state seam: where a stored history comes in and a finished response goes out.

The handler calls exactly two functions here. `resolve_history` builds the items sent upstream
from the request's `input` (its `item_reference`s resolved, and, with a store, the stored chain
of `previous_response_id`, or the items of its `conversation`, in front of it);
`record_response` is handed every finished response (completed, incomplete or failed) so the
store keeps it, and a conversation gets the turn's items (conversation_turn.py). Both act for
the caller's tenant (the gate's key id or group; None without keys): a response is stored under
it, and another tenant's responses are unknown ids. Without a store (`--no-store`),
`previous_response_id` is a 400 naming that param (the bridge then keeps no state), and finished
responses are dropped.

The store itself (`wirebridge.store`: SQLite embedded, PostgreSQL shared) owns the records, ids,
expiry and chain assembly; this module only translates between a request and a record.
"""

from __future__ import annotations

from ..items import Item, dump_item
from ..store import PreviousResponseNotFoundError, Store, StoredResponse
from ..wire import Response, to_json
from .conversation_turn import (
    append_turn,
    conversation_history,
    conversation_of,
    parse_stored_items,
    turn_inputs,
)
from .errors import ApiError
from .references import resolve_references
from .request import ResponsesRequest
from .siblings import calls_without_reasoning, restore_reasoning


async def resolve_history(
    request: ResponsesRequest, store: Store | None, tenant: str | None = None
) -> list[Item]:
    """The items to send upstream for this request.

    `request.items` becomes the input with its `item_reference`s resolved (and a call's
    reasoning restored from its sibling step, see `siblings`): that is what was sent, and so
    what is stored and listed as this response's input."""
    request.items = await resolve_references(request.items, store, tenant)
    conversation = conversation_of(request.body.conversation)
    if conversation is not None:  # exclusive with previous_response_id (validate.py)
        return [*await conversation_history(conversation, store, tenant), *request.items]
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
        chain = await store.load_chain(previous, tenant=tenant)
    except PreviousResponseNotFoundError as exc:
        raise ApiError.invalid(str(exc), param=exc.param, code=exc.code) from None
    what = f"history of {previous!r}"
    stored = parse_stored_items(chain, what)
    wanted = calls_without_reasoning(request.items, stored)
    if wanted:
        siblings = await store.child_outputs(previous, tenant=tenant)
        request.items = restore_reasoning(
            request.items, [parse_stored_items(output, what) for output in siblings], wanted
        )
    return [*stored, *request.items]


async def record_response(
    store: Store | None,
    request: ResponsesRequest,
    response: Response,
    *,
    tenant: str | None = None,
    timeout_s: float | None = None,
) -> None:
    """Hand a finished response to the store (if any, and if the client asked to store it).

    Raises `StoreError` when it is not stored within `timeout_s` (the caller then answers
    `store: false`)."""
    conversation = conversation_of(request.body.conversation)
    if store is None or not (request.store or conversation):
        return
    data = to_json(response)
    inputs = tuple(dump_item(item) for item in request.items)
    if conversation is not None:  # appended first: a failure then answers `store: false`
        inputs = turn_inputs(inputs)  # the same item ids in both places
        if response.status != "failed":  # a failed turn adds nothing; the client retries it
            await append_turn(store, conversation, inputs, data["output"], tenant=tenant)
        if not request.store:
            return
    await store.save(
        StoredResponse(
            id=response.id,
            created_at=response.created_at,
            model=response.model,
            status=response.status,  # type: ignore[arg-type]  # the store checks it is final
            previous_response_id=request.previous_response_id,
            input_items=inputs,
            output_items=tuple(data["output"]),
            usage=data["usage"],
            response=data,
            tenant=tenant,
        ),
        timeout_s=timeout_s,
    )
