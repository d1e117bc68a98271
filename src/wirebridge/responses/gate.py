"""The front door, as plain ASGI middleware: request ids, bearer-key auth and the access log.

It wraps the whole app (so a 401 or 404 is logged like any answer) and never buffers a body, so
streams pass straight through. Keys are compared in constant time and never logged; the access
log line carries what an operator needs (status, model, stream, duration, time to first byte,
bytes sent, request and response ids), and the handler adds the model and ids via
`scope["state"]`.
"""

from __future__ import annotations

import hmac
import logging
import time
import uuid
from collections.abc import Iterable
from typing import Any

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from .errors import ApiError
from .logs import escape
from .tenants import STATE_KEY as TENANT_STATE_KEY
from .tenants import TenantGroups, tenant_ids

access_log = logging.getLogger("wirebridge.access")
OPEN_PATHS = frozenset({"/healthz"})  # liveness probes carry no key


def parse_api_keys(value: str | None) -> frozenset[str]:
    """`WIREBRIDGE_API_KEYS`: comma-separated keys; blanks ignored."""
    return frozenset(k.strip() for k in (value or "").split(",") if k.strip())


async def send_error(
    send: Send, error: ApiError, extra: Iterable[tuple[bytes, bytes]] = ()
) -> None:
    body = error.encode()
    headers = [
        (b"content-type", b"application/json"),
        (b"content-length", str(len(body)).encode()),
        *((k.lower().encode(), v.encode()) for k, v in error.headers.items()),
        *extra,
    ]
    await send({"type": "http.response.start", "status": error.status, "headers": headers})
    await send({"type": "http.response.body", "body": body})


class Gate:
    def __init__(
        self,
        app: ASGIApp,
        api_keys: frozenset[str] = frozenset(),
        tenant_groups: TenantGroups | None = None,
    ):
        self.app = app
        self.keys = [k.encode() for k in sorted(api_keys)]
        # Parallel to `keys`: the tenant id each key's responses are stored under.
        tenants = tenant_ids(api_keys, tenant_groups or {})
        self.tenants = [tenants[k] for k in sorted(api_keys)]

    def _authorized(self, scope: Scope) -> bool:
        """Whether the request carries a valid key; if so, its tenant id goes into the scope's
        state (`tenants.scope_tenant`) for the handlers."""
        if not self.keys:
            return True
        for name, value in scope["headers"]:
            if name == b"authorization":
                scheme, _, token = value.partition(b" ")
                if scheme.lower() != b"bearer":
                    return False
                token = token.strip()
                # Compare with every key (no early exit) so timing says nothing about which.
                hits = [hmac.compare_digest(token, key) for key in self.keys]
                if not any(hits):
                    return False
                tenant = self.tenants[hits.index(True)]
                scope.setdefault("state", {})[TENANT_STATE_KEY] = tenant
                return True
        return False

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "websocket":
            if scope["path"] in OPEN_PATHS or self._authorized(scope):
                await self.app(scope, receive, send)
            else:
                await refuse_websocket(scope, send, _unauthorized())
            return
        if scope["type"] != "http":  # lifespan
            await self.app(scope, receive, send)
            return
        start = time.perf_counter()
        state: dict[str, Any] = scope.setdefault("state", {})
        request_id = f"req_{uuid.uuid4().hex}"
        state["request_id"] = request_id
        seen: dict[str, Any] = {"status": 0, "bytes": 0, "ttfb": None}
        rid_header = (b"x-request-id", request_id.encode())

        async def logged_send(message: Message) -> None:
            if message["type"] == "http.response.start":
                seen["status"] = message["status"]
                message = {**message, "headers": [*message.get("headers", ()), rid_header]}
            elif message["type"] == "http.response.body":
                body = message.get("body", b"")
                if body and seen["ttfb"] is None:
                    seen["ttfb"] = time.perf_counter() - start
                seen["bytes"] += len(body)
            await send(message)

        try:
            if scope["path"] not in OPEN_PATHS and not self._authorized(scope):
                await send_error(logged_send, _unauthorized())
                return
            await self.app(scope, receive, logged_send)
        finally:
            _log_access(scope, state, seen, time.perf_counter() - start)


def _unauthorized() -> ApiError:
    return ApiError(
        401,
        "Incorrect or missing API key: send one of the keys in WIREBRIDGE_API_KEYS "
        "as 'Authorization: Bearer <key>'.",
        "invalid_request_error",
        code="invalid_api_key",
    )


async def refuse_websocket(scope: Scope, send: Send, error: ApiError) -> None:
    """Refuse a WebSocket handshake: the HTTP error itself where the server lets the app send
    one (the `websocket.http.response` extension), else a close before accepting (1008, which
    servers turn into HTTP 403)."""
    if "websocket.http.response" in scope.get("extensions", {}):
        body = error.encode()
        headers = [(b"content-type", b"application/json"), (b"content-length", b"%d" % len(body))]
        await send(
            {"type": "websocket.http.response.start", "status": error.status, "headers": headers}
        )
        await send({"type": "websocket.http.response.body", "body": body})
        return
    await send({"type": "websocket.close", "code": 1008, "reason": error.code or ""})


def _log_access(scope: Scope, state: dict[str, Any], seen: dict[str, Any], elapsed: float) -> None:
    if not access_log.isEnabledFor(logging.INFO):
        return
    client = scope.get("client")
    fields: dict[str, Any] = {
        "client": f"{client[0]}:{client[1]}" if client else None,
        "method": scope["method"],
        "path": scope["path"],
        "status": seen["status"],
        "duration_ms": round(elapsed * 1000, 2),
        "ttfb_ms": round(seen["ttfb"] * 1000, 2) if seen["ttfb"] is not None else None,
        "bytes": seen["bytes"],
        "request_id": state.get("request_id"),
    }
    # `tenant` is a key id or a group name (tenants.py), never a key.
    keys = ("model", "upstream", "stream", "response_id", "outcome", "disconnected", "tenant")
    for key in (*keys, "truncated_items"):  # truncated_items: truncation "auto" (truncating.py)
        if key in state:
            fields[key] = state[key]
    # Path and model are the client's: escaped so no field can forge a line (text or JSON).
    fields = {k: escape(v) if isinstance(v, str) else v for k, v in fields.items()}
    extra = " ".join(
        f"{k}={v}"
        for k, v in fields.items()
        if k not in ("client", "method", "path", "status") and v is not None
    )
    access_log.info(
        '%s "%s %s" %s %s',
        fields["client"] or "-",
        fields["method"],
        fields["path"],
        fields["status"],
        extra,
        extra={"access": fields},
    )
