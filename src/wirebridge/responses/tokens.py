"""`POST /v1/responses/input_tokens`: the exact token count of a would-be request, or a plain no.

A count is only worth having if it equals what the model server will charge, so it comes from
the upstream's own chat template and tokenizer: llama.cpp (`/apply-template` then `/tokenize`)
or vLLM (`/tokenize` with the messages). Which one is the provider's `tokenize` option. A
provider whose table names an `estimate_tokenizer` gets an estimate instead (`estimate.py`); any
other gets a 400 `exact_count_unavailable` rather than a guess. Either answer says which it is in
`x-wirebridge-count` (`exact; tokenizer="llamacpp"`, `estimate; tokenizer="NAME"`). The request
is prepared exactly as a turn is (history, compaction, mapping), so either count covers what
would really be sent.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import anyio.to_thread
import httpx
from starlette.requests import Request
from starlette.responses import Response
from starlette.types import Receive, Scope

from ..jsontypes import JSON
from ..provider import Provider
from ..wire import encode
from .errors import ApiError, map_exception
from .estimate import EstimateUnavailable, TemplateFailed, estimate_tokens, tokenizer_name

if TYPE_CHECKING:
    from .app import ResponsesEndpoint

log = logging.getLogger("wirebridge.server")

TIMEOUT_S = 30.0
COUNT_HEADER = "x-wirebridge-count"


@dataclass(frozen=True, slots=True)
class Count:
    """A count and how it was made: exact (the upstream's tokenizer) or an estimate."""

    tokens: int
    exact: bool
    tokenizer: str  # 'llamacpp', 'vllm', or the estimate tokenizer's name
    template: bool = True  # an estimate's: whether the model's chat template ran

    def header(self) -> str:
        """`x-wirebridge-count`, as RFC 8941 parameters: a string and a boolean."""
        name = self.tokenizer.replace("\\", "\\\\").replace('"', '\\"')
        if self.exact:
            return f'exact; tokenizer="{name}"'
        return f'estimate; tokenizer="{name}"; chat-template=?{int(self.template)}'


def _root(provider: Provider) -> str:
    """The server root: llama.cpp and vLLM serve their tokenizers beside `/v1`, not under it."""
    base = provider.base_url.rstrip("/")
    return base[: -len("/v1")] if base.endswith("/v1") else base


def _headers(provider: Provider) -> dict[str, str]:
    headers = provider.headers()
    key = provider.api_key()
    if key:
        headers["Authorization"] = f"Bearer {key}"
    return headers


def _unavailable(provider: Provider) -> ApiError:
    return ApiError.invalid(
        f"no exact token count is possible for provider {provider.name!r}: set its `tokenize` "
        "option to 'llamacpp' or 'vllm' if the model server can tokenize with its chat template, "
        "or `estimate_tokenizer` to a tokenizer.json for an estimate",
        param="model",
        code="exact_count_unavailable",
    )


async def _post(http: httpx.AsyncClient, url: str, body: JSON, headers: dict[str, str]) -> Any:
    answer = await http.post(url, json=body, headers=headers, timeout=TIMEOUT_S)
    if answer.status_code != 200:
        raise ApiError(
            502,
            f"the upstream's tokenizer ({url}) answered HTTP {answer.status_code}",
            "server_error",
            code="upstream_error",
        )
    return answer.json()


async def count_tokens(http: httpx.AsyncClient, provider: Provider, payload: JSON) -> int:
    """The prompt tokens of a Chat Completions `payload`, counted by the upstream itself."""
    if not isinstance(payload, dict):
        raise TypeError("a Chat Completions payload is a JSON object")
    root, headers = _root(provider), _headers(provider)
    template: JSON = {k: payload[k] for k in ("messages", "tools") if k in payload}
    if provider.tokenize == "llamacpp":
        applied = await _post(http, root + "/apply-template", template, headers)
        content = {"content": applied["prompt"], "add_special": True, "parse_special": True}
        tokens = await _post(http, root + "/tokenize", content, headers)
        return len(tokens["tokens"])
    if provider.tokenize == "vllm":
        body: JSON = {"model": payload.get("model"), **template, "add_generation_prompt": True}
        counted = await _post(http, root + "/tokenize", body, headers)
        return int(counted["count"])
    raise _unavailable(provider)


async def count(http: httpx.AsyncClient, provider: Provider, payload: JSON) -> Count:
    """Exact if the provider can, an estimate if its table opts in, else the plain no."""
    if provider.tokenize is not None:
        return Count(await count_tokens(http, provider, payload), True, provider.tokenize)
    configured = provider.estimate_tokenizer
    if configured is None:
        raise _unavailable(provider)
    try:  # blocking: the folder is read on first use, and a long prompt takes a while
        tokens, template = await anyio.to_thread.run_sync(estimate_tokens, configured, payload)
    except EstimateUnavailable as exc:  # the operator's to fix: the log and doctor say how
        log.error("input_tokens: provider %r: %s", provider.name, exc)
        message = f"provider {provider.name!r}: its estimate_tokenizer cannot be used"
        raise ApiError(500, message, "server_error", code="estimate_unavailable") from exc
    except TemplateFailed as exc:  # this request's: as the server's own template would answer
        raise ApiError.invalid(str(exc), code="estimate_unavailable") from exc
    return Count(tokens, False, tokenizer_name(configured), template)


class InputTokensEndpoint:
    """The route: a turn prepared but not run, then counted."""

    def __init__(
        self, responses: ResponsesEndpoint, read: Callable[[Scope, Receive], Awaitable[bytes]]
    ):
        self.responses = responses
        self.read = read  # the body, within the server's limit

    async def handle(self, request: Request) -> Response:
        try:
            runtime = self.responses.runtime()
            raw = await self.read(request.scope, request.receive)
            state: dict[str, Any] = request.scope.setdefault("state", {})
            turn = await self.responses.prepare_turn(runtime, request.scope, state, raw)
            provider = turn.provider
            if provider.tokenize is None and provider.estimate_tokenizer is None:
                raise _unavailable(provider)
            counted = await count(runtime.pools.http(provider), provider, turn.chat.payload)
        except Exception as exc:  # every failure answers as the OpenAI error
            error = exc if isinstance(exc, ApiError) else map_exception(exc)
            return Response(error.encode(), error.status, media_type="application/json")
        body = encode({"object": "response.input_tokens", "input_tokens": counted.tokens})
        headers = {COUNT_HEADER: counted.header()}
        return Response(body, media_type="application/json", headers=headers)
