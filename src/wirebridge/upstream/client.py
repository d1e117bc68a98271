"""`Client`: one turn in, events out. Wires the pure core to the HTTP shell.

    request mapping -> open_stream (retries) -> SSEParser -> ChatStreamDecoder -> events

This module owns the stream's life (rules T): the idle timeout (httpx's read timeout, so it
counts between received bytes and keep-alive comments count as life), the whole-stream retry
(a failure before the first event retries up to `stream_max_retries`; after an event was yielded
it surfaces, so nothing reaches the caller twice), the grace completion (after a finish_reason,
a stream that never sends `[DONE]` completes after `finish_grace_s`, not after the idle timeout:
codex PR #8708), and closing (closing or cancelling the iterator closes the upstream connection
at once). It must never yield from inside a cancel scope: deadlines wrap single reads only.

Deadlines of a turn, besides the idle timeout: `turn_timeout_ms` bounds the whole turn (every
attempt and retry wait; see budget.py, which also keeps retry waits from straddling a server's
commit), and `stream_no_content_timeout_ms` bounds the time without a `data:` event. Keep-alive
comments (llama.cpp's during a long prefill) reset the idle timeout but not the no-content one,
so a prefill may last up to the no-content timeout as long as the server keeps pinging, and up
to the idle timeout if it sends nothing at all. Timeouts are never retried (errors.py). An
answer that is one `application/json` chat.completion instead of a stream is decoded whole
(chat/completion.py).
"""

from __future__ import annotations

import contextlib
import logging
import math
import random
import time
from collections.abc import AsyncGenerator, AsyncIterator, Callable
from types import TracebackType
from typing import Literal

import anyio
import httpx

from ..chat.completion import decode_completion
from ..chat.decode import ChatStreamDecoder
from ..chat.request import ChatRequest, prepare_chat_request
from ..chat.sse import SSEParser
from ..errors import (
    IdleTimeoutError,
    NoContentTimeoutError,
    StreamError,
    StreamLimitError,
    TurnTimeoutError,
)
from ..events import Event
from ..ops.progress import upstream_decoding
from ..prompt import Prompt
from ..provider import Provider
from ..redact import redact_url
from .budget import Budget
from .retry import backoff_delay
from .transport import Sleep, http_timeout, open_stream

log = logging.getLogger("wirebridge.upstream")
DEFAULT_FINISH_GRACE_S = 2.0
# After `[DONE]` the body's end is normally already in the socket buffer; reading it returns the
# connection to the pool (a closed one costs the next turn a TCP connect, ~1/4 of the bridge's
# per-request CPU in bench/). Bounded: never more than this long or this many bytes.
DRAIN_S = 0.05
DRAIN_MAX_BYTES = 64 * 1024


class Client:
    """A pooled connection to one provider. The model goes with each turn (`stream(prompt,
    model=...)`, or a prepared `ChatRequest`); `model` here is only the default for `stream`.

    `sleep`, `clock` and `rand` are injectable so tests can record retry waits instead of
    sleeping through them. Use `async with Client(...)` (or `aclose()`) to close the pool.
    `stream_tool_calls=True` adds `ToolCallDelta` events as call arguments arrive (the server
    relays them live); by default a call is reported once, whole. `strict=True` (the server)
    fails an answer made only of unparseable data events (see `ChatStreamDecoder`).
    """

    def __init__(
        self,
        provider: Provider,
        model: str | None = None,
        *,
        http_client: httpx.AsyncClient | None = None,
        finish_grace_s: float = DEFAULT_FINISH_GRACE_S,
        sleep: Sleep = anyio.sleep,
        clock: Callable[[], float] = time.time,
        rand: Callable[[], float] = random.random,
        stream_tool_calls: bool = False,
        strict: bool = False,
    ):
        if not (finish_grace_s >= 0 and math.isfinite(finish_grace_s)):
            raise ValueError(f"finish_grace_s must be a finite number >= 0, not {finish_grace_s}")
        self.provider = provider
        self.model = model
        self.finish_grace_s = finish_grace_s
        self.stream_tool_calls = stream_tool_calls
        self.strict = strict
        self._owns_http = http_client is None
        self._http = http_client or httpx.AsyncClient(timeout=http_timeout(provider))
        self._sleep, self._clock, self._rand = sleep, clock, rand

    async def __aenter__(self) -> Client:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.aclose()

    async def aclose(self) -> None:
        if self._owns_http:
            await self._http.aclose()

    def prepare(self, prompt: Prompt, model: str | None = None) -> ChatRequest:
        """The turn's Chat request, for `model` (else the client's default model)."""
        chosen = model or self.model
        if not chosen:
            raise ValueError("no model: pass stream(prompt, model=...) or Client(..., model=...)")
        return prepare_chat_request(prompt, chosen, self.provider)

    async def stream(
        self,
        prompt: Prompt | ChatRequest,
        *,
        model: str | None = None,
        commit_at: float | None = None,
    ) -> AsyncGenerator[Event, None]:
        """Events of one turn; raises the errors of `wirebridge.errors`.

        Break out early with `contextlib.aclosing(client.stream(p))` (or `await it.aclose()`)
        to close the upstream connection at once rather than when the iterator is collected.
        `commit_at` (an `anyio.current_time()`) is when a server commits its answer: no retry
        wait straddles it, so a failure known before it keeps its own status (budget.py).
        """
        request = prompt if isinstance(prompt, ChatRequest) else self.prepare(prompt, model)
        budget = Budget.start(anyio.current_time(), self.provider.turn_timeout_ms, commit_at)
        retries = 0
        while True:
            yielded = False
            try:
                # aclosing: closing this iterator must close the attempt (and its connection)
                # now, not when the garbage collector finalizes it (rules T).
                async with contextlib.aclosing(self._attempt(request, budget)) as events:
                    async for event in events:
                        yielded = True
                        yield event
                return
            except StreamError as exc:
                if yielded or not exc.retryable or retries >= self.provider.stream_max_retries:
                    raise
                retries += 1
                delay = backoff_delay(retries, self._rand())
                if budget.refuses_wait(anyio.current_time(), delay) is not None:
                    raise  # the failure known now is the answer (budget.py)
                log.warning(
                    "stream broke before its first event (%s); retry %d/%d in %.2f s",
                    exc,
                    retries,
                    self.provider.stream_max_retries,
                    delay,
                )
            await self._sleep(delay)

    async def _attempt(self, request: ChatRequest, budget: Budget) -> AsyncGenerator[Event, None]:
        turn_deadline = math.inf if budget.deadline is None else budget.deadline
        with anyio.CancelScope(deadline=turn_deadline) as opening:
            response = await open_stream(
                self._http,
                self.provider,
                request.payload,
                sleep=self._sleep,
                clock=self._clock,
                rand=self._rand,
                budget=budget,
            )
        if opening.cancelled_caught:
            raise self._turn_timeout()
        chunks = response.aiter_bytes()
        try:
            limit = self.provider.stream_max_event_bytes
            parser = SSEParser(limit)
            decoder = ChatStreamDecoder(
                request.tool_map,
                self.provider.think_tags,
                stream_tool_calls=self.stream_tool_calls,
                strict=self.strict,
            )
            upstream_decoding(decoder)  # a live exchange's output count, when usage comes early
            if _is_json(response):  # a server that ignored `stream: true`
                body = await self._read_whole(chunks, turn_deadline, limit)
                for event in decode_completion(body, decoder):
                    yield event
                return
            no_content_s = self.provider.stream_no_content_timeout_ms / 1000.0 or math.inf
            content_deadline = anyio.current_time() + no_content_s
            grace_deadline = math.inf
            while not decoder.completed:
                if not decoder.finished:
                    deadline = min(turn_deadline, content_deadline)
                elif grace_deadline == math.inf:
                    # Only usage and [DONE] may follow a finish_reason: wait briefly for them
                    # (the answer is whole: the turn and no-content deadlines no longer apply).
                    deadline = grace_deadline = anyio.current_time() + self.finish_grace_s
                chunk = await self._next_chunk(chunks, deadline)
                if chunk is False:  # a deadline passed
                    if not decoder.finished:
                        if anyio.current_time() >= turn_deadline:
                            raise self._turn_timeout()
                        raise self._no_content()
                    chunk = None  # the grace completion
                elif chunk is None:  # a clean EOF: check the tail (D1)
                    parser.close()
                if chunk is None:
                    for event in decoder.end_of_stream():  # D5: EOF after finish completes
                        yield event
                    return
                datas = parser.feed(chunk)
                if datas:
                    content_deadline = anyio.current_time() + no_content_s
                for data in datas:
                    for event in decoder.feed(data):
                        yield event
            await self._drain(chunks)
        finally:
            with anyio.CancelScope(shield=True):
                await _close(chunks, response)

    async def _read_whole(self, chunks: AsyncIterator[bytes], deadline: float, limit: int) -> bytes:
        """A whole JSON answer, at most `limit` bytes (0: no limit), by the turn's deadline."""
        parts: list[bytes] = []
        size = 0
        while True:
            chunk = await self._next_chunk(chunks, deadline)
            if chunk is False:
                raise self._turn_timeout()
            if chunk is None:
                return b"".join(parts)
            parts.append(chunk)
            size += len(chunk)
            if limit and size > limit:
                raise StreamLimitError(
                    f"the upstream's JSON answer is longer than {limit} bytes "
                    "(stream_max_event_bytes); not retried"
                )

    def _turn_timeout(self) -> TurnTimeoutError:
        return TurnTimeoutError(
            f"the turn took longer than {self.provider.turn_timeout_ms} ms (turn_timeout_ms) "
            f"at the upstream {self._shown_url()}"
        )

    def _no_content(self) -> NoContentTimeoutError:
        return NoContentTimeoutError(
            f"the upstream at {self._shown_url()} sent no data for "
            f"{self.provider.stream_no_content_timeout_ms} ms, only SSE comments "
            "(stream_no_content_timeout_ms)"
        )

    def _shown_url(self) -> str:
        return redact_url(self.provider.chat_url, self.provider.query_params)

    async def _drain(self, chunks: AsyncIterator[bytes]) -> None:
        """Read what follows `[DONE]` to the body's end, briefly, so the connection is reused."""
        deadline = anyio.current_time() + DRAIN_S
        received = 0
        with contextlib.suppress(StreamError):  # the answer is complete: a late fault is moot
            while received <= DRAIN_MAX_BYTES:
                chunk = await self._next_chunk(chunks, deadline)
                if not chunk:
                    return
                received += len(chunk)

    async def _next_chunk(
        self, chunks: AsyncIterator[bytes], deadline: float
    ) -> bytes | Literal[False] | None:
        """The next piece of body; None at EOF, False when `deadline` passes. Errors mapped."""
        try:
            with anyio.CancelScope(deadline=deadline):
                return await chunks.__anext__()
            return False
        except StopAsyncIteration:
            return None
        except httpx.ReadTimeout as exc:
            raise IdleTimeoutError(
                f"the upstream at {self._shown_url()} sent nothing for "
                f"{self.provider.stream_idle_timeout_ms} ms (stream_idle_timeout_ms)"
            ) from exc
        except (httpx.TransportError, httpx.DecodingError) as exc:
            detail = str(exc) or type(exc).__name__
            raise StreamError(
                f"connection to the upstream broke mid-stream: {detail}", retryable=True
            ) from exc


def _is_json(response: httpx.Response) -> bool:
    """A whole JSON answer rather than an event stream (by its Content-Type)."""
    kind: str = response.headers.get("content-type", "").split(";", 1)[0].strip().lower()
    return kind == "application/json" or kind.endswith("+json")


async def _close(chunks: AsyncIterator[bytes], response: httpx.Response) -> None:
    """Close the body iterator and the response; an unfinished body closes the connection."""
    aclose = getattr(chunks, "aclose", None)
    if aclose is not None:
        # a body iterator that already failed has nothing left to close
        with contextlib.suppress(httpx.HTTPError, RuntimeError):
            await aclose()
    await response.aclose()
