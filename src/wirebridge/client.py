"""`Client`: one turn in, events out. Wires the pure core to the HTTP shell.

    request mapping -> open_stream (retries) -> SSEParser -> ChatStreamDecoder -> events

A failure before the first event retries the whole stream (`stream_max_retries`); after an event
was yielded it surfaces, so nothing reaches the caller twice. After a finish_reason, a stream that
never sends `[DONE]` completes after a short grace period rather than the idle timeout (codex PR
#8708). Closing the iterator closes the upstream connection at once.
"""

from __future__ import annotations

import random
import time
from collections.abc import AsyncIterator, Callable
from types import TracebackType

import anyio
import httpx

from .chat.decode import ChatStreamDecoder
from .chat.request import ChatRequest, prepare_chat_request
from .chat.sse import SSEParser
from .errors import IdleTimeoutError, StreamError
from .events import Event
from .prompt import Prompt
from .provider import Provider
from .retry import backoff_delay
from .transport import Sleep, http_timeout, open_stream

DEFAULT_FINISH_GRACE_S = 2.0


class Client:
    """A pooled connection to one provider, for one model."""

    def __init__(
        self,
        provider: Provider,
        model: str,
        *,
        http_client: httpx.AsyncClient | None = None,
        finish_grace_s: float = DEFAULT_FINISH_GRACE_S,
        sleep: Sleep = anyio.sleep,
        clock: Callable[[], float] = time.time,
        rand: Callable[[], float] = random.random,
    ):
        self.provider = provider
        self.model = model
        self.finish_grace_s = finish_grace_s
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
        return prepare_chat_request(prompt, model or self.model, self.provider)

    async def stream(
        self, prompt: Prompt | ChatRequest, *, model: str | None = None
    ) -> AsyncIterator[Event]:
        """Events of one turn; raises the errors of `wirebridge.errors`."""
        request = prompt if isinstance(prompt, ChatRequest) else self.prepare(prompt, model)
        attempt = 0
        while True:
            yielded = False
            try:
                async for event in self._attempt(request):
                    yielded = True
                    yield event
                return
            except StreamError as exc:
                if yielded or not exc.retryable or attempt >= self.provider.stream_max_retries:
                    raise
                attempt += 1
                await self._sleep(backoff_delay(attempt, self._rand()))

    async def _attempt(self, request: ChatRequest) -> AsyncIterator[Event]:
        response = await open_stream(
            self._http,
            self.provider,
            request.payload,
            sleep=self._sleep,
            clock=self._clock,
            rand=self._rand,
        )
        parser = SSEParser()
        decoder = ChatStreamDecoder(request.tool_map, self.provider.think_tags)
        try:
            chunks = response.aiter_bytes()
            async for chunk in _read(chunks, self.provider.stream_idle_timeout_ms):
                for data in parser.feed(chunk):
                    for event in decoder.feed(data):
                        yield event
                if decoder.completed:
                    return
                if decoder.finished:
                    break  # only usage and [DONE] may follow: wait for them briefly
            else:
                parser.close()
                for event in decoder.end_of_stream():
                    yield event
                return
            with anyio.move_on_after(self.finish_grace_s):
                async for chunk in _read(chunks, self.provider.stream_idle_timeout_ms):
                    for data in parser.feed(chunk):
                        for event in decoder.feed(data):
                            yield event
                    if decoder.completed:
                        return
            for event in decoder.end_of_stream():
                yield event
        finally:
            await response.aclose()


async def _read(chunks: AsyncIterator[bytes], idle_timeout_ms: int) -> AsyncIterator[bytes]:
    """The body's bytes, with transport failures turned into retryable `StreamError`s."""
    try:
        async for chunk in chunks:
            yield chunk
    except httpx.ReadTimeout as exc:
        raise IdleTimeoutError(
            f"no data from the upstream for {idle_timeout_ms} ms (stream_idle_timeout_ms)"
        ) from exc
    except (httpx.TransportError, httpx.StreamError) as exc:
        raise StreamError(
            f"connection to the upstream broke mid-stream: {exc}", retryable=True
        ) from exc
