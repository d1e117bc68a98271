"""Compaction, the pure part: what a compaction request asks the upstream, and what comes back.

Two clients compact through the bridge. Codex on its built-in `openai` provider ends a normal
`POST /v1/responses` input with `{"type": "compaction_trigger"}` and expects exactly one
`compaction` output item; the openai SDK and openai-agents call `POST /v1/responses/compact`
and expect a `response.compaction` object. Both are served the same way: the history goes to
the upstream with our own summary instructions, and the summary comes back sealed in the item's
`encrypted_content` (`sealed.py`). A later request carrying that item gets it replaced by the
summary, as a user message where the item stood. A token we cannot open is a 400 naming the
item: dropping it would silently lose the whole compacted history.

`CompactionGuard` stops compaction loops, which a window too small for the client's own
instructions and tools causes (Codex: 1,500 requests in 90 s). Two kinds are refused at once
with an error that says what to do: a compaction identical to one that overflowed the upstream's
window, and the third compaction in a row of what a previous compaction left, each one at most a
step (a call and its output) after it: the summary does not make the conversation fit the
window, so the next one will not either.
"""

from __future__ import annotations

import hashlib
from collections import OrderedDict
from collections.abc import Mapping, Sequence
from typing import Any

import msgspec

from ..items import InputText, Item, Message, OtherItem, dump_item
from ..jsontypes import JSON
from ..prompt import Prompt
from .errors import ApiError
from .sealed import Sealer, TokenError

TRIGGER = "compaction_trigger"
COMPACTION = "compaction"

SUMMARY_INSTRUCTIONS = (
    "You condense long working sessions so they can continue in a fresh context. Read the "
    "whole conversation that follows, including tool calls and their results, and write a "
    "faithful, self-contained brief of it. Do not continue the work, call tools or address the "
    "user: only write the brief."
)
SUMMARY_REQUEST = (
    "Write the brief of the session so far now. Cover, in plain prose or short lists:\n"
    "- what the user asked for, with their exact constraints and preferences;\n"
    "- what was done: files read or changed, commands run and what they showed;\n"
    "- decisions taken and why, and anything that failed or was ruled out;\n"
    "- the current state of the work and the concrete next steps.\n"
    "Keep names, paths, identifiers and numbers exact. Leave out pleasantries."
)
SUMMARY_PREFIX = (
    "[The earlier part of this conversation was compacted to save context. This is a brief of "
    "it, written at that point; carry on from it.]\n\n"
)


def is_kind(item: Item, kind: str) -> bool:
    return isinstance(item, OtherItem) and item.type == kind


def ends_with_trigger(items: Sequence[Item]) -> bool:
    return bool(items) and is_kind(items[-1], TRIGGER)


def _param(index: int, own: int, total: int) -> str:
    """`input[j]` for an item of this request; items before it came from the stored chain."""
    j = index - (total - own)
    return f"input[{j}]" if j >= 0 else "previous_response_id"


def expand(items: Sequence[Item], own: int, sealer: Sealer, *, trigger_ok: bool) -> list[Item]:
    """Each compaction item -> the user message with its summary; a bad one is a 400.

    `own` is how many of `items` (the tail) are this request's input, for naming the param.
    A `compaction_trigger` is accepted only last (and only where `trigger_ok`); it is dropped
    here, the caller having seen it."""
    out: list[Item] = []
    for i, item in enumerate(items):
        if is_kind(item, TRIGGER):
            if not trigger_ok or i != len(items) - 1:
                where = _param(i, own, len(items))
                raise ApiError.invalid(
                    f"{where}: a compaction_trigger item must be the last input item",
                    param=where,
                )
            continue
        if not is_kind(item, COMPACTION):
            out.append(item)
            continue
        assert isinstance(item, OtherItem)
        where = _param(i, own, len(items))
        token = item.raw.get("encrypted_content")
        if not isinstance(token, str) or not token:
            raise ApiError.invalid(
                f"{where}: a compaction item needs its encrypted_content",
                param=f"{where}.encrypted_content",
            )
        try:
            summary = sealer.open(token)
        except TokenError as exc:
            raise ApiError.invalid(
                f"{where}: this compaction item's encrypted_content cannot be used: {exc}",
                param=where,
                code="invalid_encrypted_content",
            ) from None
        out.append(Message("user", (InputText(SUMMARY_PREFIX + summary),)))
    return out


def summary_prompt(history: Sequence[Item], *, reasoning_effort: str | None = None) -> Prompt:
    """The upstream request that writes the summary: our instructions, the history, our ask.

    No tools: the summary is text, and a model offered tools tends to go on working."""
    return Prompt(
        SUMMARY_INSTRUCTIONS,
        [*history, Message("user", (InputText(SUMMARY_REQUEST),))],
        reasoning_effort=reasoning_effort,
    )


def user_messages(items: Sequence[Item]) -> list[JSON]:
    """The user messages of a history, as `/responses/compact` lists them before its item."""
    out: list[JSON] = []
    for item in items:
        if isinstance(item, Message) and item.role == "user":
            data = dump_item(item)
            data.setdefault("status", "completed")
            out.append(data)
    return out


def is_codex_compaction(headers: Mapping[str, str]) -> bool:
    """Codex's own (local) compaction: its turn-metadata header says `request_kind`."""
    raw = headers.get("x-codex-turn-metadata")
    if not raw:
        return False
    try:
        data = msgspec.json.decode(raw.encode())
    except msgspec.DecodeError:
        return False
    return isinstance(data, dict) and data.get("request_kind") == "compaction"


def fingerprint(payload: JSON) -> str:
    """The identity of an upstream request, for spotting the same one sent again."""
    return hashlib.sha256(msgspec.json.encode(payload)).hexdigest()


QUICK_STEPS = 2  # items after a compaction that still count as "right after it"
QUICK_REPEATS = 2  # quick compactions of one history allowed; the next is refused


def history_key(model: str, items: Sequence[Item]) -> tuple[str, bool] | None:
    """The identity of a history up to its last compaction item (compaction items counted by
    place, not content: a model rarely writes the same summary twice), and whether at most a
    step follows it; None without a compaction item."""
    last = max((i for i, item in enumerate(items) if is_kind(item, COMPACTION)), default=-1)
    if last < 0:
        return None
    # Ids left out: clients renumber items between context windows (Codex does).
    shape = [{"type": COMPACTION} if is_kind(i, COMPACTION) else _plain(i) for i in items]
    return fingerprint({"model": model, "items": shape[: last + 1]}), len(
        items
    ) - last - 1 <= QUICK_STEPS


def _plain(item: Item) -> JSON:
    return {k: v for k, v in dump_item(item).items() if k not in ("id", "status")}


_ADVICE = (
    "Start a new session, or use a model with a larger context window (and tell the client "
    "its real size, e.g. context_window in Codex's model catalog)."
)


class CompactionGuard:
    """Remembers compactions that overflowed, and histories already compacted (bounded, LRU)."""

    def __init__(self, capacity: int = 512):
        self.capacity = capacity
        self._overflowed: OrderedDict[str, None] = OrderedDict()
        self._quick: OrderedDict[str, int] = OrderedDict()  # history -> quick compactions

    def overflowed(self, payload_key: str) -> None:
        self._remember(self._overflowed, payload_key, None)

    def compacted(self, history: tuple[str, bool] | None) -> None:
        if history is not None:
            key, quick = history
            self._remember(self._quick, key, self._quick.get(key, 0) + 1 if quick else 0)

    def check(self, payload_key: str | None, history: tuple[str, bool] | None = None) -> None:
        """Refuse a compaction that cannot help (see the module's docstring)."""
        if payload_key is not None and payload_key in self._overflowed:
            raise self._refusal(
                "this compaction request is identical to one that already overflowed the "
                "upstream model's context window, so it cannot succeed: the conversation is "
                "too long for the model even to be summarised."
            )
        if history is not None and history[1] and self._quick.get(history[0], 0) >= QUICK_REPEATS:
            raise self._refusal(
                "this conversation was compacted again and again, each time right after the "
                "previous compaction: it does not fit the model's context window even when "
                "compacted, so the window is too small for the client's own instructions and "
                "tools."
            )

    def _remember(self, seen: OrderedDict[str, Any], key: str, value: Any) -> None:
        seen[key] = value
        seen.move_to_end(key)
        while len(seen) > self.capacity:
            seen.popitem(last=False)

    @staticmethod
    def _refusal(why: str) -> ApiError:
        return ApiError(
            400,
            f"{why} {_ADVICE}",
            "invalid_request_error",
            code="compaction_loop",
            failed_code="invalid_prompt",
        )
