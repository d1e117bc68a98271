"""Compaction, the shell: summaries through the upstream, the guard, `POST /v1/responses/compact`.

`Compactor` is made once per app. For `/v1/responses` the endpoint asks it for the turn's
`Plan` (compaction items expanded; a trailing `compaction_trigger` turned into the summary
request), lets it check the upstream payload against the overflow guard, and runs the
upstream's events through `events()`, which for a trigger swallows the summary's deltas and
yields one `compaction` item instead: the relay, encoder, store and failure handling stay the
ones every response uses. `/v1/responses/compact` runs the same summary and answers the
`response.compaction` object. What things mean lives in `compaction.py`; the seal in `sealed.py`.
"""

from __future__ import annotations

import logging
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route
from starlette.types import Receive, Scope

from ..chat.request import prepare_chat_request
from ..errors import ProviderError
from ..events import Completed, Event, OutputItemDone, TokenUsage
from ..items import Item, Message, OtherItem
from ..jsontypes import JSON
from ..prompt import Prompt
from ..wire import CompactedResponse, CompactionItem, Usage, encode
from .codex_items import fold, merge_tools
from .compaction import (
    COMPACTION,
    CompactionGuard,
    ends_with_trigger,
    expand,
    fingerprint,
    history_key,
    is_codex_compaction,
    summary_prompt,
    user_messages,
)
from .encoder import IdFactory, random_id
from .errors import ApiError, map_exception
from .history import resolve_history
from .request import ResponsesRequest, parse_request
from .runtime import Runtime
from .sealed import Sealer, load_secret
from .settings import BridgeSettings
from .tenants import scope_tenant

log = logging.getLogger("wirebridge.server")

ReadBody = Callable[[Scope, Receive], Awaitable[bytes]]


@dataclass(slots=True)
class Plan:
    """What one `/v1/responses` turn sends upstream, and whether it is a compaction."""

    prompt: Prompt
    summarising: bool = False  # a compaction_trigger: answer one compaction item
    guarded: bool = False  # a compaction of any kind: the overflow guard watches it
    key: str | None = None  # the upstream payload's fingerprint, when guarded
    history: tuple[str, bool] | None = None  # `history_key` of what a trigger compacts


def _headers(scope: Scope) -> dict[str, str]:
    return {k.decode("latin-1").lower(): v.decode("latin-1") for k, v in scope["headers"]}


class Compactor:
    def __init__(self, sealer: Sealer, *, new_id: IdFactory = random_id):
        self.sealer = sealer
        self.guard = CompactionGuard()
        self.new_id = new_id

    @classmethod
    def from_settings(cls, settings: BridgeSettings, *, new_id: IdFactory = random_id) -> Compactor:
        sealer = load_secret(settings.compaction_secret)
        if sealer.source == "random":
            log.warning(
                "compaction tokens are signed with a random secret of this process: they stop "
                "working when it restarts and other bridges refuse them; set WIREBRIDGE_SECRET "
                "(the same on every bridge sharing a store) to keep them"
            )
        else:
            log.info("compaction tokens are signed with the secret from %s", sealer.source)
        return cls(sealer, new_id=new_id)

    # -- /v1/responses ----------------------------------------------------------------------

    def plan(self, request: ResponsesRequest, items: list[Item], scope: Scope) -> Plan:
        """The turn's prompt: compaction items expanded (a bad token is a 400 naming it)."""
        trigger = ends_with_trigger(request.items)
        expanded = expand(items, len(request.items), self.sealer, trigger_ok=trigger)
        if trigger:
            effort = request.body.reasoning.effort if request.body.reasoning else None
            prompt = summary_prompt(expanded, reasoning_effort=effort)
            return Plan(prompt, True, True, history=history_key(request.model, items[:-1]))
        kept, extra = fold(expanded)  # newer Codex's items (codex_items.py)
        prompt = request.prompt(kept)
        if extra:
            prompt.tools = merge_tools(prompt.tools, extra)
        return Plan(prompt, guarded=is_codex_compaction(_headers(scope)))

    def check(self, plan: Plan, payload: JSON) -> None:
        """Refuse a compaction identical to one that already overflowed the upstream."""
        if plan.guarded:
            plan.key = fingerprint(payload)
            self.guard.check(plan.key, plan.history)

    def events(self, plan: Plan, events: AsyncIterator[Event]) -> AsyncIterator[Event]:
        if not plan.guarded:
            return events
        return self._watched(plan, events)

    async def _watched(self, plan: Plan, events: AsyncIterator[Event]) -> AsyncIterator[Event]:
        text: list[str] = []
        try:
            async for event in events:
                if not plan.summarising:
                    yield event
                elif isinstance(event, OutputItemDone) and isinstance(event.item, Message):
                    text.append(event.item.text)
                elif isinstance(event, Completed):
                    token = self.sealer.seal(_summary(text))
                    self.guard.compacted(plan.history)
                    raw = {"type": COMPACTION, "encrypted_content": token}
                    yield OutputItemDone(OtherItem(raw, COMPACTION))
                    yield event
        except Exception as exc:
            self._overflowed(plan.key, exc)
            raise
        finally:
            aclose = getattr(events, "aclose", None)  # closes the upstream connection
            if aclose is not None:
                await aclose()

    def _overflowed(self, key: str | None, exc: Exception) -> None:
        if key is not None and map_exception(exc).code == "context_length_exceeded":
            self.guard.overflowed(key)
            log.warning("a compaction request overflowed the upstream's context window")

    # -- /v1/responses/compact --------------------------------------------------------------

    def routes(
        self, settings: BridgeSettings, runtime: Callable[[], Runtime], read: ReadBody
    ) -> list[Route]:
        async def compact(request: Request) -> Response:
            try:
                raw = await read(request.scope, request.receive)
                body = await self.compact(settings, runtime(), request.scope, raw)
            except Exception as exc:
                error = map_exception(exc)
                return Response(
                    error.encode(), error.status, error.headers, media_type="application/json"
                )
            return Response(encode(body), 200, media_type="application/json")

        return [
            Route("/v1/responses/compact", compact, methods=["POST"]),
            Route("/responses/compact", compact, methods=["POST"]),
        ]

    async def compact(
        self, settings: BridgeSettings, runtime: Runtime, scope: Scope, raw: bytes
    ) -> CompactedResponse:
        """The `response.compaction` object: the user messages, then one compaction item."""
        request = parse_request(raw, default_model=settings.config.default_model)
        items = await resolve_history(request, runtime.store, scope_tenant(scope))
        if ends_with_trigger(request.items):
            raise ApiError.invalid(
                "/responses/compact takes the history to compact, without a compaction_trigger",
                param=f"input[{len(request.items) - 1}]",
            )
        expanded = expand(items, len(request.items), self.sealer, trigger_ok=False)
        provider, upstream_model = settings.config.route(request.model)
        effort = request.body.reasoning.effort if request.body.reasoning else None
        prompt = summary_prompt(expanded, reasoning_effort=effort)
        chat = prepare_chat_request(prompt, upstream_model, provider)
        key = fingerprint(chat.payload)
        history = history_key(request.model, items)
        self.guard.check(key, history)
        text: list[str] = []
        usage: TokenUsage | None = None
        events = runtime.client(provider).stream(chat)
        try:
            async for event in events:
                if isinstance(event, OutputItemDone) and isinstance(event.item, Message):
                    text.append(event.item.text)
                elif isinstance(event, Completed):
                    usage = event.token_usage
        except Exception as exc:
            self._overflowed(key, exc)
            raise map_exception(exc, provider.chat_url) from exc
        finally:
            await events.aclose()
        item = CompactionItem(self.new_id("cmp"), self.sealer.seal(_summary(text)))
        self.guard.compacted(history)
        return CompactedResponse(
            id=self.new_id("resp"),
            created_at=int(time.time()),
            output=[*user_messages(items), item],
            usage=Usage.of(usage or TokenUsage()),
        )


def _summary(text: list[str]) -> str:
    summary = "".join(text).strip()
    if not summary:
        raise ProviderError("the upstream model answered the compaction request with no text")
    return summary
