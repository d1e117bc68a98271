"""The reasoning a client left out of a replayed tool call, found in the step that made the call.

The AI SDK with `previousResponseId` chains every step of a turn to the same response (the last
one of the previous turn) and sends the turn's calls back inline, without the reasoning items
that preceded them (it skips reasoning that has an id, trusting the server to hold it). The step
that emitted a call is then not on the chain but beside it: another child of
`previous_response_id`. Providers that need a call's reasoning replayed with it (DeepSeek's
`reasoning_content`) reject the turn without it, so the reasoning that directly preceded each
such call in its sibling's output is put back in front of the call.

Pure functions; `history.resolve_history` does the one store read they need.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence

from ..items import CustomToolCall, FunctionCall, Item, LocalShellCall, Reasoning


def call_id_of(item: Item) -> str | None:
    """The id an output answers, for the items that are calls."""
    if isinstance(item, FunctionCall | CustomToolCall):
        return item.call_id
    if isinstance(item, LocalShellCall):
        return item.pairing_id or None
    return None


def calls_without_reasoning(items: Sequence[Item], history: Iterable[Item]) -> set[str]:
    """The call ids of calls in `items` that the stored `history` does not hold and that the
    client sent with no reasoning directly in front of them."""
    known = {cid for item in history if (cid := call_id_of(item)) is not None}
    missing: set[str] = set()
    for index, item in enumerate(items):
        cid = call_id_of(item)
        if cid is None or cid in known:
            continue
        if index > 0 and isinstance(items[index - 1], Reasoning):
            continue
        missing.add(cid)
    return missing


def restore_reasoning(
    items: Sequence[Item], siblings: Iterable[Sequence[Item]], wanted: set[str]
) -> list[Item]:
    """`items` with, in front of each wanted call, the reasoning items that directly preceded
    the same call in a sibling's output (`siblings` newest first: the newest holder wins).

    Only a run of reasoning items ending at the call counts: in `[reasoning, call_a, call_b]`
    the reasoning belongs to `call_a`, as the Chat form puts it on the one assistant message."""
    found: dict[str, tuple[Reasoning, ...]] = {}
    for output in siblings:
        run: list[Reasoning] = []
        for item in output:
            if isinstance(item, Reasoning):
                run.append(item)
                continue
            cid = call_id_of(item)
            if cid is not None and cid in wanted and cid not in found and run:
                found[cid] = tuple(run)
            run = []
    if not found:
        return list(items)
    restored: list[Item] = []
    for item in items:
        cid = call_id_of(item)
        if cid is not None and cid in found:
            restored.extend(found.pop(cid))  # once, even if the client repeated the call
        restored.append(item)
    return restored
