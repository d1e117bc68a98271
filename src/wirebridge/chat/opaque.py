"""Provider state that a client must echo back, carried in a reasoning item's `encrypted_content`.

Some upstreams need their own reasoning state replayed on the next turn: OpenRouter its
`reasoning_details` (signatures included), Gemini a `thought_signature` per tool call. Responses
clients already echo a reasoning item's `encrypted_content` untouched (Codex asks for it with
`include: ["reasoning.encrypted_content"]`), so the bridge packs that state there as an opaque
token that only it reads. The token is versioned; a token that is not ours is left alone.
"""

from __future__ import annotations

import base64
from dataclasses import dataclass, field
from typing import Any

import msgspec

PREFIX = "wb1."


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
    """The state in a token of ours; None for anything else (e.g. OpenAI's own ciphertext)."""
    if not token or not token.startswith(PREFIX):
        return None
    try:
        data = msgspec.json.decode(base64.urlsafe_b64decode(token[len(PREFIX) :]))
    except (ValueError, msgspec.DecodeError):
        return None
    if not isinstance(data, dict):
        return None
    details = data.get("reasoning_details")
    signatures = data.get("thought_signatures")
    return ProviderState(
        [d for d in details if isinstance(d, dict)] if isinstance(details, list) else [],
        {k: v for k, v in signatures.items() if isinstance(v, str)}
        if isinstance(signatures, dict)
        else {},
    )


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
