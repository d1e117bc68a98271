"""`truncation: "auto"`, the pure part: which of a history's items to drop so the rest fits.

What this module owns: the choice of a cut. A history is cut at one place, `k`: the items before
it are dropped (oldest first), the ones from it on are kept as they are (a contiguous suffix),
except the instructions-like messages (`system` and `developer` roles) before it, which are kept
where they stand. A cut is allowed only where it splits nothing (the rules the issue states):

- a tool call and its output stay together: no cut falls between them (the Chat payload would
  otherwise hold an answer with no call, or a call with no answer; servers 400 on both);
- a reasoning item stays with what follows it (the call or message it led to, which some
  providers require it to be replayed with);
- the last user message is never dropped: the cut is at most there.

The smallest allowed cut whose kept items fit the token `budget` wins; when none fits, the
largest allowed cut (the most that may be dropped), marked as not fitting. The caller supplies
each item's cost in tokens and the budget; this module does no counting and no I/O
(`truncating.py` is the shell: the window, the counts, the retry).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from ..items import CustomToolCallOutput, FunctionCallOutput, Item, Message, Reasoning
from .siblings import call_id_of


@dataclass(frozen=True, slots=True)
class Cut:
    """The outcome: what is kept (in order), which indexes were dropped, whether it fits."""

    kept: list[Item]
    dropped: list[int]
    fits: bool
    cost: int  # the kept items' cost


def pinned(item: Item) -> bool:
    """Instructions given as input items: kept wherever they stand."""
    return isinstance(item, Message) and item.role in ("system", "developer")


def _output_id(item: Item) -> str | None:
    if isinstance(item, FunctionCallOutput | CustomToolCallOutput):
        return item.call_id
    return None


def allowed_cuts(items: Sequence[Item]) -> list[int]:
    """Every place the history may be cut, ascending; 0 (drop nothing) is always one."""
    if not items:
        return [0]
    users = [i for i, item in enumerate(items) if isinstance(item, Message) and item.role == "user"]
    last = users[-1] if users else len(items) - 1  # no user message: keep the last item at least
    # The span of each call id (its call and its outputs): no cut inside (first, last].
    spans: dict[str, tuple[int, int]] = {}
    for i, item in enumerate(items):
        cid = call_id_of(item) or _output_id(item)
        if cid is None:
            continue
        lo, _ = spans.get(cid, (i, i))
        spans[cid] = (lo, i)
    blocked = [0] * (len(items) + 2)  # a difference array over the cut places
    for lo, hi in spans.values():
        if hi > lo:
            blocked[lo + 1] += 1
            blocked[hi + 1] -= 1
    out: list[int] = []
    open_spans = 0
    for k in range(last + 1):
        open_spans += blocked[k]
        if k > 0 and (open_spans > 0 or isinstance(items[k - 1], Reasoning)):
            continue
        out.append(k)
    return out


def truncate(items: Sequence[Item], costs: Sequence[int], budget: int) -> Cut:
    """Drop the fewest oldest items so the kept ones cost at most `budget` (see the module)."""
    if len(costs) != len(items):
        raise ValueError("one cost per item")
    # suffix[k]: the cost of items[k:]; pins[k]: the cost of the pinned items before k.
    suffix = [0] * (len(items) + 1)
    for i in range(len(items) - 1, -1, -1):
        suffix[i] = suffix[i + 1] + costs[i]
    pins = [0] * (len(items) + 1)
    for i, item in enumerate(items):
        pins[i + 1] = pins[i] + (costs[i] if pinned(item) else 0)
    cuts = allowed_cuts(items)
    chosen = next((k for k in cuts if pins[k] + suffix[k] <= budget), None)
    fits = chosen is not None
    k = chosen if chosen is not None else cuts[-1]
    kept = [item for item in items[:k] if pinned(item)] + list(items[k:])
    dropped = [i for i in range(k) if not pinned(items[i])]
    return Cut(kept, dropped, fits, pins[k] + suffix[k])
