"""Upstream rules that real providers enforce, as wrappers around a scripted upstream's `Script`.

DeepSeek (and Kimi) answer HTTP 400 when an assistant turn with tool calls of the current user
turn (after the last user message) comes back without the reasoning the model produced for it
in `reasoning_content`; earlier turns' reasoning is not needed (the bridge drops it, rule P2).
A bridge that loses reasoning on the way through a client (a dropped `item_reference`, a
reasoning item without its text) then breaks the client's tool loop; `requires_reasoning_content`
makes the scripted upstream refuse such a history the same way, so a test fails where the real
provider would.
"""

from __future__ import annotations

import json

from .upstream import Reply, Script, SeenRequest


def missing_reasoning_content(request: SeenRequest) -> int | None:
    """The index of the current turn's first tool-call message without `reasoning_content`."""
    messages = request.json.get("messages") or []
    users = [i for i, m in enumerate(messages) if m.get("role") == "user"]
    start = users[-1] + 1 if users else 0
    for index, message in enumerate(messages[start:], start):
        if message.get("role") != "assistant" or not message.get("tool_calls"):
            continue
        if not message.get("reasoning_content"):
            return index
    return None


def requires_reasoning_content(script: Script) -> Script:
    """`script`, but a request replaying a tool-call turn without its reasoning is a 400."""

    def strict(request: SeenRequest) -> Reply:
        index = missing_reasoning_content(request)
        if index is None:
            return script(request)
        error = {
            "error": {
                "message": f"Missing `reasoning_content` field in the assistant message at "
                f"message index {index}. For more information, please refer to "
                "https://api-docs.deepseek.com/guides/thinking_mode#tool-calls",
                "type": "invalid_request_error",
                "param": None,
                "code": "invalid_request_error",
            }
        }
        return Reply(json.dumps(error).encode(), status=400, content_type="application/json")

    return strict
