"""What particular vendors add to Chat Completions, read and written in this one place.

- OpenRouter streams `reasoning_details` (signatures included) and wants them replayed on the
  assistant message of the next turn.
- Gemini puts a `thought_signature` on each tool call (`extra_content.google`) and rejects a
  replayed call without it.
- Upstreams word a context overflow each their own way; `is_context_overflow` knows the phrases.

The state to replay travels in a reasoning item's `encrypted_content`: Responses clients echo it
untouched (Codex asks for it with `include: ["reasoning.encrypted_content"]`), so the bridge packs
it there as an opaque token that only it reads. The token is versioned; a token that is not ours
is left alone. The decoder and the request mapping call the functions below and nothing else of
these vendors' formats.

Two versions: `wb1.` (the library's: the state only, unsigned) and `wb2.` (the server's: the
reasoning text too, so a client that keeps nothing else, like the AI SDK with `store: false`,
still gets it replayed; and an HMAC tag, so an altered token is refused, `seal_reasoning`).
`decode_state` reads the state of both; only `open_reasoning` checks the tag.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import msgspec

from ..items import Item, Reasoning

PREFIX = "wb1."
SEALED_PREFIX = "wb2."


@dataclass(slots=True)
class ProviderState:
    reasoning_details: list[dict[str, Any]] = field(default_factory=list)
    thought_signatures: dict[str, str] = field(default_factory=dict)  # call id -> signature

    def __bool__(self) -> bool:
        return bool(self.reasoning_details or self.thought_signatures)


def encode_state(state: ProviderState) -> str:
    raw = msgspec.json.encode(
        {
            "reasoning_details": state.reasoning_details,
            "thought_signatures": state.thought_signatures,
        }
    )
    return PREFIX + base64.urlsafe_b64encode(raw).decode("ascii")


def decode_state(token: str | None) -> ProviderState | None:
    """The state in a token of ours; None for anything else (e.g. OpenAI's own ciphertext).

    A sealed token's tag is not checked here: the server checks what clients send
    (`open_reasoning`) before the request mapping reads it."""
    if token and token.startswith(SEALED_PREFIX):
        data = _sealed_payload(token)
        return _state_of(data) if data is not None else None
    if not token or not token.startswith(PREFIX):
        return None
    try:
        data = msgspec.json.decode(base64.urlsafe_b64decode(token[len(PREFIX) :]))
    except (ValueError, msgspec.DecodeError):
        return None
    return _state_of(data) if isinstance(data, dict) else None


def _state_of(data: dict[str, Any]) -> ProviderState:
    details = data.get("reasoning_details")
    signatures = data.get("thought_signatures")
    return ProviderState(
        [d for d in details if isinstance(d, dict)] if isinstance(details, list) else [],
        {k: v for k, v in signatures.items() if isinstance(v, str)}
        if isinstance(signatures, dict)
        else {},
    )


class TokenError(ValueError):
    """A sealed token that is malformed, was altered, or was sealed with another key."""


class ForeignTokenError(TokenError):
    """A well-formed sealed token made with another key (a restarted bridge, another secret)."""


def seal_reasoning(text: str, state: ProviderState | None, key: bytes) -> str:
    """`wb2.<key id>.<payload>.<tag>`: the reasoning text and state (base64url JSON), and an
    HMAC-SHA256 over the rest. The key id tells "altered" from "sealed with another key"."""
    state = state or ProviderState()
    raw = msgspec.json.encode(
        {
            "text": text,
            "reasoning_details": state.reasoning_details,
            "thought_signatures": state.thought_signatures,
        }
    )
    signed = f"{_key_id(key)}.{_b64(raw)}"
    return f"{SEALED_PREFIX}{signed}.{_b64(_tag(key, signed))}"


def open_reasoning(token: str | None, key: bytes) -> tuple[str, ProviderState] | None:
    """The text and state of a sealed token; None if it is not one; `ForeignTokenError` if
    another key sealed it, `TokenError` if it was altered (its text would be replayed)."""
    if not token or not token.startswith(SEALED_PREFIX):
        return None
    signed, dot, tag = token[len(SEALED_PREFIX) :].rpartition(".")
    kid = signed.partition(".")[0]
    if not dot or signed.count(".") != 1:
        raise TokenError("it is malformed")
    if kid != _key_id(key):
        raise ForeignTokenError(
            "it was made by a bridge with another secret (WIREBRIDGE_SECRET; without one, each "
            "process signs with a random secret)"
        )
    try:
        given = _unb64(tag)
    except (binascii.Error, ValueError):
        raise TokenError("it is malformed") from None
    if not hmac.compare_digest(given, _tag(key, signed)):
        raise TokenError("its signature does not match: it was altered")
    data = _sealed_payload(token)
    if data is None or not isinstance(data.get("text"), str):
        raise TokenError("it is malformed")
    return data["text"], _state_of(data)


def _sealed_payload(token: str) -> dict[str, Any] | None:
    parts = token[len(SEALED_PREFIX) :].split(".")
    if len(parts) != 3:
        return None
    try:
        data = msgspec.json.decode(_unb64(parts[1]))
    except (binascii.Error, ValueError, msgspec.DecodeError):
        return None
    return data if isinstance(data, dict) else None


def _key_id(key: bytes) -> str:
    return _b64(hashlib.sha256(b"wirebridge key id " + key).digest()[:6])


def _tag(key: bytes, signed: str) -> bytes:
    return hmac.new(key, (SEALED_PREFIX + signed).encode(), hashlib.sha256).digest()


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


class DetailsAccumulator:
    """Merges streamed `reasoning_details` pieces: same index and type -> one entry."""

    __slots__ = ("_entries",)

    def __init__(self) -> None:
        self._entries: dict[tuple[Any, Any], dict[str, Any]] = {}

    def add(self, details: list[Any]) -> None:
        for piece in details:
            if not isinstance(piece, dict):
                continue
            key = (piece.get("index", 0), piece.get("type"))
            entry = self._entries.get(key)
            if entry is None:
                self._entries[key] = dict(piece)
                continue
            for name, value in piece.items():
                if name in ("text", "summary", "data") and isinstance(value, str):
                    entry[name] = str(entry.get(name) or "") + value
                elif value is not None:
                    entry[name] = value

    def result(self) -> list[dict[str, Any]]:
        return list(self._entries.values())


# ---------------------------------------------------------------------------------------------
# OpenRouter: reasoning_details


def reasoning_details(delta: dict[str, Any]) -> list[Any] | None:
    """The `reasoning_details` pieces of a stream delta, if any."""
    details = delta.get("reasoning_details")
    return details if details and type(details) is list else None


def replay_reasoning_details(message: dict[str, Any], details: list[dict[str, Any]]) -> None:
    """Put replayed `reasoning_details` on an outgoing assistant message."""
    message["reasoning_details"] = message.get("reasoning_details", []) + details


# ---------------------------------------------------------------------------------------------
# Gemini: thought signatures


def thought_signature(entry: dict[str, Any]) -> str | None:
    """The signature on one streamed tool-call entry, if any."""
    extra = entry.get("extra_content")
    if not extra or type(extra) is not dict:
        return None
    google = extra.get("google")
    signature = google.get("thought_signature") if type(google) is dict else None
    return signature if signature and isinstance(signature, str) else None


def sign_tool_call(call: dict[str, Any], signature: str) -> None:
    """Attach a signature to an outgoing tool call (Gemini rejects a replayed call without)."""
    call["extra_content"] = {"google": {"thought_signature": signature}}


def thought_signatures(items: Sequence[Item]) -> dict[str, str]:
    """The per-call signatures from every reasoning item of ours in the history."""
    out: dict[str, str] = {}
    for item in items:
        if isinstance(item, Reasoning):
            state = decode_state(item.encrypted_content)
            if state:
                out.update(state.thought_signatures)
    return out


# ---------------------------------------------------------------------------------------------
# Everyone: the words for a prompt too long for the model

# OpenAI, vLLM, llama.cpp, Ollama, DeepSeek, ...
_CONTEXT_OVERFLOW = re.compile(
    r"context[_ ]length|context window|maximum context|context size|exceeds? the (available )?"
    r"context|prompt is too long|too many tokens|maximum number of tokens|n_ctx",
    re.IGNORECASE,
)


def is_context_overflow(message: str, code: str | None) -> bool:
    return code == "context_length_exceeded" or bool(_CONTEXT_OVERFLOW.search(message))
