"""The Responses API over a WebSocket, the pure part: messages in, frames out, the chain cache.

Sans-I/O, so every rule here is tested with plain data; `websocket.py` is the shell around it.

- A client message is a Responses body with `"type": "response.create"` (the body parser
  ignores the `type` and `generate` keys, so the message bytes go to it unchanged).
  `generate: false` is a prewarm: answered `response.created` .. `response.completed`, with no
  upstream call (Codex sends one carrying only its instructions, then chains from it).
- The server answers one text frame per event: the JSON of the SSE `data:` line. The encoder
  writes SSE (its hot path stays one buffer); `messages_of` cuts that buffer into frames. The
  encoder's JSON never holds a raw newline, so a frame is everything after `data: ` up to the
  blank line.
- Errors are `{"type":"error","status":N,"error":{...}}` frames: Codex treats them as the HTTP
  error of that status, and retries `websocket_connection_limit_reached`.
- `ChainCache` keeps the last few responses' full histories (input + output items), so a chain
  continues with `previous_response_id` even with `store: false`: what Codex does over a socket.
"""

from __future__ import annotations

from collections import OrderedDict
from dataclasses import dataclass

import msgspec

from ..items import Item
from .errors import ApiError

CREATE = "response.create"

# Close codes (RFC 6455 7.4.1).
CLOSE_NORMAL = 1000
CLOSE_UNSUPPORTED = 1003  # a binary frame: the protocol is JSON text
CLOSE_BAD_DATA = 1007  # a message that is not JSON
CLOSE_POLICY = 1008  # too many messages queued
CLOSE_TOO_BIG = 1009  # the server (uvicorn, ws_max_size) closes with this before buffering
CLOSE_TRY_AGAIN = 1013  # the bridge's socket cap (before accepting: an HTTP 503 instead)

DEFAULT_MAX_AGE_S = 3600.0  # OpenAI's limit; Codex then reconnects
DEFAULT_IDLE_S = 900.0
DEFAULT_MAX_SOCKETS = 1024
DEFAULT_CHAIN_ENTRIES = 4  # a retried turn chains from the response before the last one
DEFAULT_MAX_QUEUED = 4  # response.create messages waiting behind the running one


@dataclass(frozen=True, slots=True)
class SocketSettings:
    """Limits of the WebSocket transport (`wirebridge serve --ws-*`)."""

    max_age_s: float = DEFAULT_MAX_AGE_S
    idle_s: float | None = DEFAULT_IDLE_S
    max_sockets: int = DEFAULT_MAX_SOCKETS
    chain_entries: int = DEFAULT_CHAIN_ENTRIES
    max_queued: int = DEFAULT_MAX_QUEUED


class _Envelope(msgspec.Struct):
    type: str | None = None
    generate: bool | None = None
    background: bool | None = None


_decode_envelope = msgspec.json.Decoder(_Envelope).decode


@dataclass(frozen=True, slots=True)
class ClientMessage:
    kind: str | None
    generate: bool
    body: bytes  # the message itself: a Responses body for the request parser


class BadMessage(Exception):
    """A message that is not JSON: answered with an error frame, then close 1007."""


def read_message(text: str) -> ClientMessage:
    """A text frame -> its kind and body; `BadMessage` when it is not a JSON object; an
    `ApiError` (400) when a known field has the wrong type."""
    body = text.encode()
    try:
        envelope = _decode_envelope(body)
    except msgspec.ValidationError as exc:
        raise ApiError.invalid(f"invalid message: {exc}") from None
    except msgspec.DecodeError as exc:
        raise BadMessage(f"the message is not a JSON object: {exc}") from None
    if envelope.background:
        raise ApiError.invalid(
            "background responses are not supported over a WebSocket; "
            "use POST /v1/responses with background: true",
            param="background",
        )
    return ClientMessage(envelope.type, envelope.generate is not False, body)


def unknown_kind(kind: str | None) -> ApiError:
    return ApiError.invalid(
        f"unsupported message type {kind!r}: the only client message is {CREATE!r}",
        param="type",
        code="unknown_message_type",
    )


def messages_of(sse: bytes) -> list[bytes]:
    """The encoder's SSE frames (`event: X\\ndata: {json}\\n\\n`...) -> one JSON per frame."""
    out = []
    for block in sse.split(b"\n\n"):
        at = block.find(b"data: ")
        if at >= 0:
            out.append(block[at + 6 :])
    return out


def error_frame(error: ApiError) -> bytes:
    """`{"type":"error","status":N,"error":{...}}`: the HTTP error object, with its status."""
    body = error.encode()  # b'{"error":{...}}'
    return b'{"type":"error","status":%d,' % error.status + body[1:]


def connection_limit_reached(max_age_s: float) -> ApiError:
    return ApiError(
        400,
        f"this WebSocket reached the bridge's maximum connection age of {max_age_s:g} seconds; "
        "open a new connection and continue",
        code="websocket_connection_limit_reached",
    )


class ChainCache:
    """The last `entries` responses of one connection: id -> the full history after it.

    Histories share their items (a new entry is the previous list plus this turn's input and
    output), so keeping several costs one list of references each, not copies of the items."""

    def __init__(self, entries: int = DEFAULT_CHAIN_ENTRIES):
        self.entries = max(0, entries)  # 0: keep nothing (every chain needs the store)
        self._chains: OrderedDict[str, list[Item]] = OrderedDict()

    def get(self, response_id: str) -> list[Item] | None:
        chain = self._chains.get(response_id)
        if chain is not None:
            self._chains.move_to_end(response_id)
        return chain

    def put(self, response_id: str, history: list[Item]) -> None:
        if not self.entries:
            return
        self._chains[response_id] = history
        self._chains.move_to_end(response_id)
        while len(self._chains) > self.entries:
            self._chains.popitem(last=False)

    def __len__(self) -> int:
        return len(self._chains)
