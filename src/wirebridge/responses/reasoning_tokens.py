"""The server's reasoning tokens: reasoning a stateless client can hand back, and only as it was.

A client that stores nothing (the AI SDK and Codex with `store: false`, asking for
`include: ["reasoning.encrypted_content"]`) replays reasoning only through `encrypted_content`;
the AI SDK even drops a reasoning item without it. So, when asked, every reasoning item the
bridge emits carries a sealed token (`chat/vendors.py`, `wb2.`) holding its text and any
provider state; without the ask, only items with provider state carry one. On the next turn the
token's text becomes the item's content, which the request mapping replays in the provider's
`reasoning_field` (rule P2).

The token is signed with a key derived from the server secret (`WIREBRIDGE_SECRET`, shared
with the compaction tokens): an altered token is a 400 naming the item (`input[i]`), since
replaying it would put words in the model's mouth. A token sealed with another secret (a bridge
restarted without `WIREBRIDGE_SECRET` signs with a new random one) cannot be trusted either,
but the item may carry its text itself, as Codex sends it: the item then goes on as a plain
reasoning item, the token ignored (no worse than a client sending no token), so a restart does
not break every running Codex session; without its own text it is a 400 saying why. Tokens
that are not ours (OpenAI's, the library's unsigned `wb1.`) pass as they are.
"""

from __future__ import annotations

import hashlib
import hmac
import logging
from collections.abc import Callable
from dataclasses import dataclass, replace

from ..chat.vendors import (
    ForeignTokenError,
    TokenError,
    decode_state,
    open_reasoning,
    seal_reasoning,
)
from ..items import Item, Reasoning, ReasoningPart
from .errors import ApiError
from .request import ResponsesRequest

log = logging.getLogger("wirebridge.server")

INCLUDE = "reasoning.encrypted_content"
_DOMAIN = b"wirebridge reasoning token v2"  # the key is not the compaction key itself

Seal = Callable[[str, str | None], str | None]


@dataclass(frozen=True, slots=True)
class ReasoningTokens:
    key: bytes

    @classmethod
    def from_secret(cls, secret: bytes) -> ReasoningTokens:
        return cls(hmac.new(secret, _DOMAIN, hashlib.sha256).digest())

    def sealer(self, request: ResponsesRequest) -> Seal:
        """For the encoder: (an item's reasoning text, the decoder's token) -> the token to send."""
        wanted = INCLUDE in (request.body.include or ())

        def seal(text: str, token: str | None) -> str | None:
            state = decode_state(token)
            if not wanted and not state:
                return token  # nothing asked, nothing to carry: as the decoder made it
            return seal_reasoning(text, state, self.key)

        return seal

    def open_input(self, items: list[Item]) -> list[Item]:
        """The request's own input with each sealed reasoning item's text restored from its
        token (checked); a bad token is a 400 naming the item."""
        opened: list[Item] | None = None
        for index, item in enumerate(items):
            if not isinstance(item, Reasoning):
                continue
            try:
                found = open_reasoning(item.encrypted_content, self.key)
            except TokenError as exc:
                if not (isinstance(exc, ForeignTokenError) and item.text.strip()):
                    raise ApiError.invalid(
                        f"input[{index}].encrypted_content: this reasoning token is refused: {exc}",
                        param=f"input[{index}]",
                        code="invalid_encrypted_content",
                    ) from None
                log.warning("input[%d]: reasoning token of another secret ignored: %s", index, exc)
                replaced: Item = replace(item, encrypted_content=None)
            else:
                if found is None:
                    continue
                text = found[0]
                replaced = replace(item, content=(ReasoningPart(text),) if text else ())
            if opened is None:
                opened = list(items)
            opened[index] = replaced
        return items if opened is None else opened
