"""`truncation: "auto"`, the shell: the window, the counts, and the one retry.

A turn with `truncation: "auto"` is sent as it is. When the upstream refuses it as longer than
the model's window (an upfront 400, before any output: nothing has reached the client yet), the
oldest items are dropped (`truncation.py` chooses which) and the turn is sent once more. If that
overflows too, the client gets the same `context_length_exceeded` error as with `disabled`.

How much to drop needs two numbers, the window and the prompt's size:

- the window: from the error when the server states it (llama.cpp `n_ctx`; vLLM and OpenAI
  "maximum context length is N tokens"), else as the upstream's own endpoints report it (the
  same probe as `GET /v1/models` and `wirebridge codex`, `catalog/probe.py`), else unknown;
- the prompt's size in tokens: from the error (llama.cpp `n_prompt_tokens`; vLLM "N in the
  messages" / "requested N tokens"; OpenAI "resulted in N tokens"), else counted by the
  upstream when the provider has `tokenize` (`tokens.py`), else unknown.

Each item's share is estimated from its JSON size (`CHARS_PER_TOKEN`, conservative) and scaled
so the estimates add up to the known size. The budget is the window less room for the answer
(`max_output_tokens`, else a tenth of the window), less a margin for what the estimates miss
(`ESTIMATE_MARGIN`: a chat template's own tokens belong to no item). With no window known, the
oldest items are dropped until about half the estimate is left. With `tokenize`, the cut is
checked by an exact count and deepened (a few rounds at most) until it fits.

A window learnt from an error is remembered per upstream model (`LEARNT_CAPACITY` of them), with
how many real tokens an estimated one was: the next turn of that model that would not fit is cut
before it is sent, saving the refused request. With `tokenize`, a window that a probe already
cached in the `ModelDirectory` states (issue 17: "known from the upstream, as the Codex issue
probes it"; `GET /v1/models` shares the directory) does the same by an exact count. The prompt
is counted only when its estimate exceeds the budget less `ESTIMATE_MARGIN` (the estimate
overcounts: a turn under that fits, and costs no count; nothing is probed ahead of a turn), and
cut only when the count exceeds the budget, the cut checked by exact counts as after an
overflow. Without `tokenize` a probed window cuts nothing ahead: an unscaled estimate alone
could drop items the model would hold. The one retry on overflow still stands behind either (it
then cuts what was sent), so a turn reaches the upstream twice at most.

What was dropped is logged (with the response's id), counted in the metrics, traced (a span
per cut, around the probe and counts it makes), and told to an HTTP client in the
`x-wirebridge-truncated-items` response header (the count of dropped items). A WebSocket turn
and a background run have no response headers: their count reaches the logs, metrics and traces
only (the Response's own fields belong to the API and its `metadata` to the client).
The counts go through the provider's pooled connections (`http`, the runtime's pools), and the
metrics are the runtime's (`metrics`): both are handed in, so this module opens nothing itself.
"""

from __future__ import annotations

import copy
import logging
import math
import re
from collections import OrderedDict
from collections.abc import AsyncIterator, Callable, Sequence
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING, Any, Protocol

import httpx
import msgspec

from ..catalog.directory import ModelDirectory, window_in
from ..chat.request import ChatRequest, prepare_chat_request
from ..errors import ProviderError, UnexpectedStatusError
from ..events import Event
from ..items import Item, dump_item
from ..ops.hooks import truncation_span
from ..prompt import Prompt
from ..provider import Config, Provider
from .codex_items import forward_cache_key
from .errors import map_exception
from .request import ResponsesRequest
from .tokens import count_tokens
from .truncation import Cut, truncate

if TYPE_CHECKING:
    from ..ops.metrics import Metrics
    from .app import Turn

log = logging.getLogger("wirebridge.server")

TRUNCATED_HEADER = "x-wirebridge-truncated-items"
CHARS_PER_TOKEN = 3  # JSON and code run ~3 characters a token; prose ~4: this overestimates
ITEM_OVERHEAD = 4  # a message's role and separators in a chat template
FALLBACK_KEEP = 0.5  # with no window known: keep about this share of the estimate
ANSWER_SHARE = 10  # with no max_output_tokens: leave a tenth of the window for the answer
ESTIMATE_MARGIN = 0.05  # estimates miss what no item holds (a template's own system prompt)
EXACT_ROUNDS = 3  # with `tokenize`: at most this many exact counts to settle the cut
LEARNT_CAPACITY = 256  # upstream models whose learnt window is remembered

_decode = msgspec.json.Decoder().decode
_WINDOW = re.compile(r"maximum context length is (\d+)", re.IGNORECASE)
_PROMPT = (
    # vLLM and llama-cpp-python split a total into the prompt and the answer's room.
    re.compile(r"(\d+) in the messages, \d+ in the completion", re.IGNORECASE),
    # A total: OpenAI's messages and functions together, or vLLM's input alone.
    re.compile(r"(?:your request has|resulted in|requested) (\d+)(?: input)? tokens", re.I),
)


@dataclass(frozen=True, slots=True)
class Overflow:
    """What an upstream's context-length error says: the window and the prompt's tokens."""

    window: int | None = None
    prompt_tokens: int | None = None


def _positive(value: Any) -> int | None:
    return value if isinstance(value, int) and not isinstance(value, bool) and value > 0 else None


def read_overflow(exc: BaseException) -> Overflow:
    """The numbers in a context-length error, whichever server wrote it (None: not said)."""
    text = ""
    if isinstance(exc, UnexpectedStatusError):
        text = exc.body
        try:
            data = _decode(exc.body)
        except msgspec.DecodeError:
            data = None
        error = data.get("error") if isinstance(data, dict) else None
        if isinstance(error, dict):  # llama.cpp: exceed_context_size_error
            window, prompt = _positive(error.get("n_ctx")), _positive(error.get("n_prompt_tokens"))
            if window or prompt:
                return Overflow(window, prompt)
    elif isinstance(exc, ProviderError):
        text = exc.message
    found = _WINDOW.search(text)
    window = int(found.group(1)) if found else None
    prompt = None
    for pattern in _PROMPT:
        found = pattern.search(text)
        if found:
            prompt = int(found.group(1))
            break
    return Overflow(window, prompt)


def is_overflow(exc: BaseException) -> bool:
    return map_exception(exc).code == "context_length_exceeded"


def estimate(item: Item) -> int:
    """An item's tokens, estimated from its JSON size (over rather than under)."""
    return math.ceil(len(msgspec.json.encode(dump_item(item))) / CHARS_PER_TOKEN) + ITEM_OVERHEAD


def estimate_fixed(prompt: Prompt) -> int:
    """The part no truncation touches: the instructions and the tools."""
    size = len(prompt.instructions or "") + len(msgspec.json.encode(prompt.tools))
    return math.ceil(size / CHARS_PER_TOKEN) + ITEM_OVERHEAD


def budget_for(window: int, max_output_tokens: int | None) -> int:
    """The prompt tokens a window holds with room left for the answer."""
    return window - (max_output_tokens or max(1, window // ANSWER_SHARE))


def plan_cut(
    items: Sequence[Item],
    fixed: int,
    costs: Sequence[int],
    *,
    window: int | None,
    prompt_tokens: int | None,
    max_output_tokens: int | None,
) -> Cut:
    """The cut for what is known (see the module); `costs` and `fixed` are estimates."""
    estimated = fixed + sum(costs)
    scale = prompt_tokens / estimated if prompt_tokens and estimated else 1.0
    if window is not None:
        room = budget_for(window, max_output_tokens) * (1 - ESTIMATE_MARGIN) / scale - fixed
    else:
        room = estimated * FALLBACK_KEEP - fixed
    return truncate(items, costs, math.floor(room))


@dataclass(frozen=True, slots=True)
class Learnt:
    """What an overflow taught about an upstream model: its window, and real tokens per
    estimated token."""

    window: int
    scale: float


class Stream(Protocol):
    def stream(
        self, prompt: ChatRequest, *, commit_at: float | None = None
    ) -> AsyncIterator[Event]: ...


@dataclass(slots=True)
class TurnParts:
    """What a retry needs of the turn: the request, the prompt sent, where it went."""

    request: ResponsesRequest
    prompt: Prompt
    provider: Provider
    upstream_model: str
    chat: ChatRequest
    summarising: bool = False  # a compaction request: never truncated

    @classmethod
    def of(cls, turn: Turn) -> TurnParts:
        model = turn.chat.payload.get("model") if isinstance(turn.chat.payload, dict) else None
        return cls(
            turn.request,
            turn.plan.prompt,
            turn.provider,
            model if isinstance(model, str) else "",
            turn.chat,
            turn.plan.summarising,
        )


def _no_metrics() -> Metrics | None:
    return None


class Truncator:
    """Made once per app; `events()` wraps one turn's upstream stream.

    `http` gives a provider's pooled httpx client (for the counts: the upstream connection
    and its limits, not one of our own), `metrics` the server's metrics, if any; both are
    asked at each use, as they exist only while the server runs."""

    def __init__(
        self,
        config: Config,
        *,
        http: Callable[[Provider], httpx.AsyncClient],
        metrics: Callable[[], Metrics | None] = _no_metrics,
        directory: ModelDirectory | None = None,
    ):
        self.config = config
        self.http = http
        self.metrics = metrics
        self.directory = directory or ModelDirectory(config)
        self.learnt: OrderedDict[tuple[str, str], Learnt] = OrderedDict()

    def events(
        self,
        whole: Turn,
        client: Stream,
        state: dict[str, Any],
        *,
        commit_at: float | None = None,
    ) -> AsyncIterator[Event]:
        """The turn's upstream events; with `truncation: "auto"`, retried once cut on overflow."""
        turn = TurnParts.of(whole)
        if turn.request.body.truncation != "auto" or turn.summarising:
            return client.stream(turn.chat, commit_at=commit_at)
        return self._auto(turn, client, state, commit_at)

    async def _ahead(self, turn: TurnParts, state: dict[str, Any]) -> TurnParts:
        """The turn cut before it is sent, when a known window says it would not fit: one
        learnt from an overflow (by the estimate, scaled), or, with `tokenize`, one a cached
        probe states (by an exact count, made only when the estimate is over the budget)."""
        learnt = self.learnt.get((turn.provider.name, turn.upstream_model))
        if learnt is not None:
            window, scale, trigger = learnt.window, learnt.scale, "learnt_window"
        else:
            probed = self.directory.known_window(turn.provider.name, turn.upstream_model)
            if probed is None or turn.provider.tokenize is None:
                return turn  # an unscaled estimate alone must not drop what the model holds
            window, scale, trigger = probed, 1.0, "probed_window"
        items = turn.prompt.input
        fixed, costs = estimate_fixed(turn.prompt), [estimate(i) for i in items]
        max_output = turn.request.body.max_output_tokens
        tokens = (fixed + sum(costs)) * scale
        # The estimate overcounts (CHARS_PER_TOKEN), the margin covers what no item holds: an
        # estimate under the margined budget fits (the overflow retry stands behind it).
        if tokens <= budget_for(window, max_output) * (1 - ESTIMATE_MARGIN):
            return turn
        exact = learnt is None
        if exact:  # only now, a turn near or over the window: count what would be sent
            counted = await self._count(turn.provider, turn.chat)
            if counted is None or counted <= budget_for(window, max_output):
                return turn
            tokens = counted
        with truncation_span(turn.provider.name, turn.upstream_model, trigger) as note:
            cut, chat = await self._settle(
                turn, fixed, costs, window, math.ceil(tokens), exact=exact
            )
            note("wirebridge.truncation.dropped_items", len(cut.dropped))
            note("wirebridge.truncation.context_window", window)
        if not cut.dropped:
            return turn
        self._dropped(turn, state, len(cut.dropped))
        log.info(
            "truncation auto: response %s would overflow %s's context window (%d tokens, "
            "%s; prompt %d tokens, %s); dropped the %d oldest of %d items before sending it",
            state.get("response_id", "-"),
            turn.upstream_model,
            window,
            "learnt" if learnt is not None else "probed",
            math.ceil(tokens),
            "counted" if exact else "estimated",
            len(cut.dropped),
            len(items),
        )
        return replace(turn, prompt=_kept(turn.prompt, cut), chat=chat)

    def _dropped(self, turn: TurnParts, state: dict[str, Any], items: int) -> None:
        """Note a cut: the turn's count (the header, the access log) and the metrics."""
        new_turn = "truncated_items" not in state  # a turn cut ahead may be cut once more
        state["truncated_items"] = state.get("truncated_items", 0) + items
        metrics = self.metrics()
        if metrics is not None:
            provider, model = turn.provider.name, turn.upstream_model
            metrics.observe_truncation(provider, model, items, new_turn=new_turn)

    def _learn(self, turn: TurnParts, window: int, prompt_tokens: int, estimated: int) -> None:
        key = (turn.provider.name, turn.upstream_model)
        self.learnt[key] = Learnt(window, prompt_tokens / estimated)
        self.learnt.move_to_end(key)
        while len(self.learnt) > LEARNT_CAPACITY:
            self.learnt.popitem(last=False)

    async def _auto(
        self,
        turn: TurnParts,
        client: Stream,
        state: dict[str, Any],
        commit_at: float | None,
    ) -> AsyncIterator[Event]:
        turn = await self._ahead(turn, state)
        stream = client.stream(turn.chat, commit_at=commit_at)
        try:
            try:
                first = await anext(stream)
            except StopAsyncIteration:
                return
            except Exception as exc:
                if not is_overflow(exc):
                    raise
                retry = await self._truncated(turn, exc, state)
                await _close(stream)
                stream = client.stream(retry, commit_at=commit_at)
                try:
                    first = await anext(stream)
                except StopAsyncIteration:
                    return
            yield first
            async for event in stream:
                yield event
        finally:
            await _close(stream)

    async def _truncated(
        self, turn: TurnParts, exc: BaseException, state: dict[str, Any]
    ) -> ChatRequest:
        """The turn's Chat request with the oldest items dropped; `exc` again if none can be."""
        with truncation_span(turn.provider.name, turn.upstream_model, "overflow") as note:
            chat, dropped = await self._cut(turn, exc, state, note)
        self._dropped(turn, state, dropped)
        return chat

    async def _cut(
        self,
        turn: TurnParts,
        exc: BaseException,
        state: dict[str, Any],
        note: Callable[[str, Any], None],
    ) -> tuple[ChatRequest, int]:
        said = read_overflow(exc)
        window = said.window or await self._probed_window(turn)
        prompt_tokens = said.prompt_tokens
        exact = turn.provider.tokenize is not None and window is not None
        if prompt_tokens is None and exact:
            prompt_tokens = await self._count(turn.provider, turn.chat)
        items = turn.prompt.input
        fixed, costs = estimate_fixed(turn.prompt), [estimate(i) for i in items]
        if window is not None and prompt_tokens is not None and fixed + sum(costs) > 0:
            self._learn(turn, window, prompt_tokens, fixed + sum(costs))
        cut, chat = await self._settle(turn, fixed, costs, window, prompt_tokens, exact=exact)
        note("wirebridge.truncation.dropped_items", len(cut.dropped))
        if window is not None:
            note("wirebridge.truncation.context_window", window)
        if not cut.dropped:
            raise exc
        log.info(
            "truncation auto: response %s overflowed %s's context window (%s tokens, prompt "
            "%s); dropped the %d oldest of %d items and retried",
            state.get("response_id", "-"),
            turn.upstream_model,
            window if window is not None else "unknown",
            prompt_tokens if prompt_tokens is not None else "unknown",
            len(cut.dropped),
            len(items),
        )
        return chat, len(cut.dropped)

    async def _settle(
        self,
        turn: TurnParts,
        fixed: int,
        costs: Sequence[int],
        window: int | None,
        prompt_tokens: int | None,
        *,
        exact: bool,
    ) -> tuple[Cut, ChatRequest]:
        """The cut planned for what is known and its Chat request; with `exact` (`tokenize`
        and a window), checked by exact counts and deepened until it fits (a few rounds)."""
        items = turn.prompt.input
        max_output = turn.request.body.max_output_tokens
        cut = plan_cut(
            items,
            fixed,
            costs,
            window=window,
            prompt_tokens=prompt_tokens,
            max_output_tokens=max_output,
        )
        chat = self._chat(turn, cut)
        for _ in range(EXACT_ROUNDS if exact else 0):
            assert window is not None
            counted = await self._count(turn.provider, chat)
            if counted is None or counted <= budget_for(window, max_output) or not cut.fits:
                break
            # Rescale from this exact count of what the cut keeps, and cut again.
            deeper = plan_cut(
                items,
                fixed,
                costs,
                window=window,
                prompt_tokens=math.ceil(counted * (fixed + sum(costs)) / (fixed + cut.cost)),
                max_output_tokens=max_output,
            )
            if len(deeper.dropped) <= len(cut.dropped):
                break
            cut, chat = deeper, self._chat(turn, deeper)
        return cut, chat

    def _chat(self, turn: TurnParts, cut: Cut) -> ChatRequest:
        prompt = _kept(turn.prompt, cut)
        chat = prepare_chat_request(prompt, turn.upstream_model, turn.provider)
        forward_cache_key(turn.request.body.prompt_cache_key, turn.provider, chat.payload)
        return chat

    async def _probed_window(self, turn: TurnParts) -> int | None:
        try:
            answer = await self.directory.upstream(turn.provider.name, windows=True)
        except Exception as exc:  # a probe is a hint: never the turn's failure
            log.info("truncation auto: no window from the upstream: %s", exc)
            return None
        return window_in(answer, turn.upstream_model)

    async def _count(self, provider: Provider, chat: ChatRequest) -> int | None:
        try:  # the provider's pool: its connections and limits (the timeout: tokens.py)
            return await count_tokens(self.http(provider), provider, chat.payload)
        except Exception as exc:
            log.info("truncation auto: the upstream could not count the prompt: %s", exc)
            return None


def _kept(prompt: Prompt, cut: Cut) -> Prompt:
    """`prompt` with only the items `cut` keeps."""
    kept = copy.copy(prompt)
    kept.input = cut.kept
    return kept


async def _close(stream: AsyncIterator[Event]) -> None:
    aclose = getattr(stream, "aclose", None)
    if aclose is not None:
        await aclose()
