"""`GET /v1/models` and `GET /v1/models/{id}`: the names a client may ask for, and Codex's catalog.

What is listed, and how upstream failures degrade, is `wirebridge.catalog.directory`'s job; an
unknown id is a 404 in the OpenAI shape (`model_not_found`).

With a `client_version` query parameter (Codex's `model_catalog_url` fetch), the same models
are answered as Codex's catalog, `{"models": [...]}`, with each model's context window as its
server reports it (see `wirebridge.catalog`). Each entry's `base_instructions` are read from a
Codex binary on this machine (`$WIREBRIDGE_CODEX`, else `codex` on PATH), else our own short
instructions; Codex's prompt is never stored by the bridge.
"""

from __future__ import annotations

import hashlib
import logging
import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

import anyio
import msgspec
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from ..catalog.bundled import (
    FALLBACK_INSTRUCTIONS,
    CodexNotFound,
    bundled_catalog,
    instructions_of,
    nearest_entry,
)
from ..catalog.directory import ModelDirectory
from ..catalog.entries import codex_catalog
from ..provider import Config
from .errors import ApiError

log = logging.getLogger("wirebridge.server")

CODEX_ENV = "WIREBRIDGE_CODEX"
_encode = msgspec.json.Encoder().encode


class CodexInstructions:
    """Each catalog entry's `base_instructions`: from the local Codex's bundled catalog (read
    once, off the event loop), else ours."""

    def __init__(self, explicit: Path | None = None):
        self.explicit = explicit
        self._entries: list[dict[str, Any]] | None = None

    async def load(self) -> Callable[[str], str]:
        if self._entries is None:
            try:
                where, self._entries = await anyio.to_thread.run_sync(
                    bundled_catalog, self.explicit
                )
                log.info("Codex catalog: instructions from the Codex binary at %s", where)
            except CodexNotFound as exc:
                self._entries = []
                log.info("Codex catalog: wirebridge's own instructions (%s)", exc)
        entries = self._entries

        def instructions(slug: str) -> str:
            if not entries:
                return FALLBACK_INSTRUCTIONS
            return instructions_of(nearest_entry(entries, slug)) or FALLBACK_INSTRUCTIONS

        return instructions


def _json(body: object, status: int = 200, headers: dict[str, str] | None = None) -> Response:
    return Response(_encode(body), status, headers, media_type="application/json")


def model_routes(
    config: Config,
    prefixes: tuple[str, ...] = ("/v1", ""),
    *,
    directory: ModelDirectory | None = None,
) -> list[Route]:
    """The routes; one directory (and cache) per app: the server hands in its own, which
    `truncation: "auto"` shares and which probes through the provider's pooled client."""
    directory = directory or ModelDirectory(config)
    explicit = os.environ.get(CODEX_ENV)
    codex = CodexInstructions(Path(explicit) if explicit else None)

    async def list_models(request: Request) -> Response:
        if "client_version" not in request.query_params:
            listed = await directory.listing()
            return _json({"object": "list", "data": [m.openai() for m in listed]})
        listed = await directory.listing(windows=True)
        instructions = await codex.load()
        body = _encode(codex_catalog([m.facts for m in listed], instructions))
        etag = '"' + hashlib.sha256(body).hexdigest()[:32] + '"'
        if request.headers.get("if-none-match") == etag:
            return Response(status_code=304, headers={"ETag": etag})
        return Response(body, headers={"ETag": etag}, media_type="application/json")

    async def retrieve_model(request: Request) -> Response:
        model_id = request.path_params["model_id"]
        for model in await directory.listing():
            if model.id == model_id:
                return _json(model.openai())
        error = ApiError(
            404,
            f"The model {model_id!r} does not exist on this bridge (GET /v1/models lists them)",
            param="model",
            code="model_not_found",
        )
        return _json(error.body(), 404)

    routes: list[Route] = []
    for prefix in prefixes:
        routes.append(Route(f"{prefix}/models", list_models, methods=["GET"]))
        routes.append(Route(f"{prefix}/models/{{model_id:path}}", retrieve_model, methods=["GET"]))
    return routes
