"""Compaction tokens: a summary sealed with an HMAC so only bridges holding the secret accept it.

A `compaction` item's `encrypted_content` must round-trip through the client unchanged and come
back to any bridge that shares the store. The token is `wbc1.<payload>.<tag>`: the payload is
base64url JSON carrying the summary, the tag an HMAC-SHA256 over the version and the payload. It
is authenticated, not encrypted: the client already holds the conversation it summarises. Pure:
the secret is handed in; `load_secret` reads the environment in the shell that starts the app.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import os
import secrets
from collections.abc import Mapping
from dataclasses import dataclass

import msgspec

from ..errors import ConfigError

PREFIX = "wbc1."
SECRET_ENV = "WIREBRIDGE_SECRET"
MIN_SECRET_BYTES = 16


class TokenError(ValueError):
    """A token that is malformed, was altered, or was sealed with another secret."""


@dataclass(frozen=True, slots=True)
class Sealer:
    secret: bytes
    source: str  # where the secret came from, for the startup log line (never the secret)

    def seal(self, summary: str) -> str:
        payload = _b64(msgspec.json.encode({"summary": summary}))
        return f"{PREFIX}{payload}.{_b64(self._tag(payload))}"

    def open(self, token: str) -> str:
        """The summary inside a token of ours; `TokenError` saying why not otherwise."""
        if not token.startswith(PREFIX):
            raise TokenError("it was not made by this bridge (unknown token format)")
        payload, dot, tag = token[len(PREFIX) :].partition(".")
        if not dot or not payload:
            raise TokenError("it is malformed")
        try:
            given = _unb64(tag)
        except (binascii.Error, ValueError):
            raise TokenError("it is malformed") from None
        if not hmac.compare_digest(given, self._tag(payload)):
            raise TokenError(
                "its signature does not match: it was altered, or sealed by a bridge with "
                f"another secret ({SECRET_ENV})"
            )
        try:
            data = msgspec.json.decode(_unb64(payload))
        except (binascii.Error, ValueError, msgspec.DecodeError):
            raise TokenError("it is malformed") from None
        summary = data.get("summary") if isinstance(data, dict) else None
        if not isinstance(summary, str):
            raise TokenError("it is malformed")
        return summary

    def _tag(self, payload: str) -> bytes:
        return hmac.new(self.secret, (PREFIX + payload).encode("ascii"), hashlib.sha256).digest()


def load_secret(explicit: str | None = None, environ: Mapping[str, str] | None = None) -> Sealer:
    """The configured secret, else `$WIREBRIDGE_SECRET`, else a random one for this process."""
    env = os.environ if environ is None else environ
    for value, source in ((explicit, "configuration"), (env.get(SECRET_ENV), SECRET_ENV)):
        if value:
            if len(value.encode()) < MIN_SECRET_BYTES:
                raise ConfigError(
                    f"the compaction secret from {source} is shorter than {MIN_SECRET_BYTES} bytes"
                )
            return Sealer(value.encode(), source)
    return Sealer(secrets.token_bytes(32), "random")


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))
