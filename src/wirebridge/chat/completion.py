"""A whole `chat.completion` answer -> the events of the same answer streamed. Sans-I/O.

Many servers (and proxies in front of them) ignore `stream: true` and answer 200 with one
`application/json` object. That is a complete answer, not a broken stream: it is rewritten as
the one chunk a streaming server would have sent (the message as the delta, its finish_reason,
its usage) and fed, then `[DONE]`, through the same `ChatStreamDecoder`, so every rule of the
decoder (reasoning fields, think tags, tool-call mapping, errors) applies unchanged.
"""

from __future__ import annotations

from typing import Any

import msgspec

from ..errors import StreamError, excerpt
from ..events import Event
from .decode import ChatStreamDecoder

_decode = msgspec.json.Decoder().decode
_encode = msgspec.json.Encoder().encode


def completion_chunk(data: Any) -> dict[str, Any]:
    """The chunk equivalent to a parsed `chat.completion` (an error object passes as is)."""
    if not isinstance(data, dict):
        raise StreamError(f"the upstream answered a JSON {type(data).__name__}, not an object")
    if data.get("error"):
        return {"error": data["error"]}  # the decoder raises ProviderError with its message
    choices = data.get("choices")
    choice = choices[0] if isinstance(choices, list) and choices else None
    message = choice.get("message") if isinstance(choice, dict) else None
    if not isinstance(choice, dict) or not isinstance(message, dict):
        raise StreamError(
            "the upstream answered JSON that is not a chat.completion (no choices[0].message): "
            + excerpt(_encode(data), 300)
        )
    delta = dict(message)
    calls = delta.get("tool_calls")
    if isinstance(calls, list):  # whole calls carry no index; give each its position
        delta["tool_calls"] = [
            {"index": i, **call} if isinstance(call, dict) else call for i, call in enumerate(calls)
        ]
    chunk: dict[str, Any] = {
        "id": data.get("id"),
        "object": "chat.completion.chunk",
        "choices": [
            {"index": 0, "delta": delta, "finish_reason": choice.get("finish_reason") or "stop"}
        ],
    }
    if isinstance(data.get("usage"), dict):
        chunk["usage"] = data["usage"]
    return chunk


def decode_completion(body: bytes, decoder: ChatStreamDecoder) -> list[Event]:
    """Every event of the answer in `body`, ending with `completed` (or raising as a stream
    would: `ProviderError` for an error object, `StreamError` for what is not an answer)."""
    try:
        data = _decode(body)
    except msgspec.DecodeError:
        raise StreamError(
            f"the upstream answered application/json that is not JSON: {excerpt(body, 300)}"
        ) from None
    events = decoder.feed(_encode(completion_chunk(data)).decode())
    return events + decoder.feed("[DONE]")
