"""The doctor's I/O shell: send each probe of the `Plan` over httpx and record what came back.

Deliberately not the bridge's transport: no retries (a 429 or 500 is itself a finding) and no
decoding (the observer must see the raw fields). Each probe is bounded: a deadline for the whole
request, a cap on the bytes read, and a short grace after a `finish_reason` for servers that
keep the connection open without `[DONE]`. No exception from the network or the body escapes:
every failure becomes part of a `ProbeResult`. Headers and key come from
`transport.request_headers`, so the key is read the way the bridge reads it and never printed.
After the battery, `probe_counting` counts the `stream` probe's payload the ways the bridge's
`input_tokens` would (`counting.py` says which one the provider gets).
"""

from __future__ import annotations

import time
from collections.abc import Callable

import anyio
import anyio.to_thread
import httpx

from ..jsontypes import JSON
from ..provider import TOKENIZERS, Provider
from ..responses.estimate import estimate_tokens, tokenizer_name
from ..responses.tokens import count_tokens
from ..upstream.transport import request_headers
from .analysis import Diagnosis, analyse
from .counting import Counted, Counting, prompt_tokens
from .observe import ProbeResult, StreamObserver
from .probes import DEFAULT_MAX_TOKENS, Plan, Probe

DEFAULT_TIMEOUT_S = 30.0
FINISH_GRACE_S = 2.0  # after a finish_reason, how long to wait for usage and [DONE]
MAX_BODY_BYTES = 2 << 20  # a short answer is a few KB; more is a runaway stream
MAX_ERROR_BODY_BYTES = 64 << 10

Progress = Callable[[int, Probe, ProbeResult | None], None]
"""Called with (step, probe, None) before a probe is sent and with its result after."""


async def send_probe(
    http: httpx.AsyncClient,
    provider: Provider,
    probe: Probe,
    headers: dict[str, str],
    *,
    timeout_s: float = DEFAULT_TIMEOUT_S,
    finish_grace_s: float = FINISH_GRACE_S,
    clock: Callable[[], float] = time.perf_counter,
) -> ProbeResult:
    """One request; the result records everything, including how it failed."""
    result = ProbeResult(probe.name)
    observer = StreamObserver()
    result.started_at = start = clock()
    in_grace = False
    with anyio.move_on_after(timeout_s) as scope:
        try:
            request = http.build_request(
                "POST",
                provider.chat_url,
                json=probe.payload,
                headers=headers,
                params=provider.query_params,
            )
            response = await http.send(request, stream=True)
            try:
                result.status = response.status_code
                result.content_type = response.headers.get("content-type", "")
                limit = MAX_BODY_BYTES if result.http_ok else MAX_ERROR_BODY_BYTES
                async for data in response.aiter_bytes():
                    now = clock()
                    if result.ttfb_s is None:
                        result.ttfb_s = now - start
                    observer.feed(data, now)
                    obs = observer.observation
                    if obs.done:
                        break
                    if obs.body_bytes >= limit:
                        result.truncated = result.http_ok
                        break
                    if obs.finish_reasons and not in_grace:
                        in_grace = True
                        scope.deadline = min(scope.deadline, anyio.current_time() + finish_grace_s)
            finally:
                await response.aclose()
        except (httpx.ConnectError, httpx.ConnectTimeout) as exc:
            result.unreachable = True
            result.error = f"could not connect to {provider.chat_url}: {_words(exc)}"
        except httpx.TimeoutException as exc:
            result.timed_out = True
            result.error = f"timed out: {_words(exc)}"
        except (httpx.HTTPError, OSError) as exc:
            result.error = f"connection failed: {_words(exc)}"
    if scope.cancelled_caught and not in_grace:
        result.timed_out = True
        result.error = f"timed out after {timeout_s:g} s"
    result.observation = observer.close()
    result.elapsed_s = clock() - start
    return result


def _words(exc: BaseException) -> str:
    return str(exc) or type(exc).__name__


async def run_probes(
    provider: Provider,
    model: str,
    *,
    max_tokens: int = DEFAULT_MAX_TOKENS,
    timeout_s: float = DEFAULT_TIMEOUT_S,
    progress: Progress | None = None,
    http_client: httpx.AsyncClient | None = None,
) -> dict[str, ProbeResult]:
    """Run the battery; the results in the order the probes were sent."""
    headers = request_headers(provider)  # a missing key variable is a ConfigError, before I/O
    plan = Plan(model, max_tokens=max_tokens)
    http = http_client or httpx.AsyncClient(
        timeout=httpx.Timeout(timeout_s, connect=min(timeout_s, 10.0))
    )
    try:
        step = 0
        while (probe := plan.next_probe()) is not None:
            step += 1
            if progress is not None:
                progress(step, probe, None)
            result = await send_probe(http, provider, probe, headers, timeout_s=timeout_s)
            plan.record(result)
            if progress is not None:
                progress(step, probe, result)
    finally:
        if http_client is None:
            await http.aclose()
    return plan.results


async def _exact(http: httpx.AsyncClient, provider: Provider, kind: str, payload: JSON) -> Counted:
    as_kind = provider.with_options(tokenize=kind, estimate_tokenizer=None)
    try:
        return Counted(await count_tokens(http, as_kind, payload))
    except (httpx.HTTPError, OSError) as exc:
        return Counted(error=f"its tokenizer could not be reached: {_words(exc)}")
    except (ValueError, KeyError, TypeError):
        return Counted(error=f"its tokenizer endpoints do not answer as {kind}'s")
    except Exception as exc:  # the ApiError of a non-200 answer names the URL and status
        return Counted(error=_words(exc))


async def probe_counting(
    http: httpx.AsyncClient, provider: Provider, payload: JSON, usage: dict[str, object] | None
) -> Counting:
    """Count `payload` the provider's way, and look for an exact way where it has none."""
    named = provider.estimate_tokenizer
    counting = Counting(
        provider.tokenize,
        tokenizer_name(named) if named is not None else None,
        prompt_tokens=prompt_tokens(usage),
    )
    kinds = [provider.tokenize] if provider.tokenize else []
    for kind in [*kinds, *(k for k in TOKENIZERS if k not in kinds)]:
        counting.exact[kind] = await _exact(http, provider, kind, payload)
        if counting.detected() is not None:
            break  # found: no other server's endpoints need asking
    if named is not None:
        try:
            tokens, template = await anyio.to_thread.run_sync(estimate_tokens, named, payload)
            counting.estimate = Counted(tokens)
            counting.estimate_template = template
        except Exception as exc:  # EstimateUnavailable, or a tokenizer that fails to encode
            counting.estimate = Counted(error=_words(exc))
    return counting


async def diagnose(
    provider: Provider,
    model: str,
    *,
    max_tokens: int = DEFAULT_MAX_TOKENS,
    timeout_s: float = DEFAULT_TIMEOUT_S,
    progress: Progress | None = None,
    http_client: httpx.AsyncClient | None = None,
) -> Diagnosis:
    """The library entry point: probe the upstream, then analyse what it answered."""
    results = await run_probes(
        provider,
        model,
        max_tokens=max_tokens,
        timeout_s=timeout_s,
        progress=progress,
        http_client=http_client,
    )
    stream = results.get("stream")
    first = Plan(model, max_tokens=max_tokens).next_probe()  # the `stream` probe's payload
    if stream is None or stream.unreachable or first is None:
        return analyse(results, provider, model)
    http = http_client or httpx.AsyncClient(
        timeout=httpx.Timeout(timeout_s, connect=min(timeout_s, 10.0))
    )
    try:
        counting = await probe_counting(http, provider, first.payload, stream.observation.usage)
    finally:
        if http_client is None:
            await http.aclose()
    return analyse(results, provider, model, counting)
