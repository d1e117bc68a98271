"""Input items and fields newer Codex versions send that have no Chat Completions form as such.

Decided per kind (docs/server.md, "What Codex sends"):
- `additional_tools` (tools made available part-way through a conversation) and
  `tool_search_output` (the tools a tool search loaded): their tools join the request's tools,
  so the model can call them; the items themselves are not sent. The `tool_search_call` that
  asked for them is a hosted call: dropped with a warning (validate.py).
- `agent_message` (a message from another agent, multi-agent mode): sent as a user message
  naming its author; one with no text is dropped with a warning.
- `prompt_cache_key` (the thread id): forwarded to upstreams whose provider sets
  `prompt_cache_key = true` (a prefix-cache hint), and logged either way.
Pure, apart from the log lines.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from typing import Any

from ..items import InputText, Item, Message, OtherItem
from ..jsontypes import JSON
from ..provider import Provider

log = logging.getLogger("wirebridge.server")

TOOL_CARRIERS = ("additional_tools", "tool_search_output")
AGENT_MESSAGE = "agent_message"


def fold(items: Sequence[Item]) -> tuple[list[Item], list[JSON]]:
    """The items to send, and the tools that items brought in (in order, first name wins)."""
    kept: list[Item] = []
    tools: list[JSON] = []
    for item in items:
        if not isinstance(item, OtherItem):
            kept.append(item)
        elif item.type in TOOL_CARRIERS:
            tools += [dict(t) for t in item.raw.get("tools") or () if isinstance(t, Mapping)]
        elif item.type == AGENT_MESSAGE:
            message = _agent_message(item.raw)
            if message is None:
                log.warning("dropped an agent_message with no text")
            else:
                kept.append(message)
        else:
            kept.append(item)
    return kept, tools


def merge_tools(declared: Sequence[JSON], extra: Sequence[JSON]) -> list[JSON]:
    """The request's tools plus those the items brought, without a name declared twice."""
    names = {_name(t) for t in declared}
    out = list(declared)
    for tool in extra:
        name = _name(tool)
        if name is None or name not in names:
            out.append(tool)
            names.add(name)
    return out


def forward_cache_key(key: str | None, provider: Provider, payload: JSON) -> None:
    """Put the client's `prompt_cache_key` on the upstream payload where the provider takes it."""
    if not key:
        return
    if provider.prompt_cache_key:
        payload["prompt_cache_key"] = key
    log.debug(
        "prompt_cache_key %s %s",
        key,
        "forwarded" if provider.prompt_cache_key else "not forwarded (provider option off)",
    )


def _name(tool: Mapping[str, Any]) -> str | None:
    name = tool.get("name")
    return name if isinstance(name, str) else None


def _agent_message(raw: Mapping[str, Any]) -> Message | None:
    content = raw.get("content")
    parts = content if isinstance(content, list) else [content]
    texts = [
        p if isinstance(p, str) else p.get("text") for p in parts if isinstance(p, str | Mapping)
    ]
    text = "".join(t for t in texts if isinstance(t, str))
    if not text:
        return None
    author = raw.get("author")
    who = f"agent {author}" if isinstance(author, str) and author else "another agent"
    return Message("user", (InputText(f"[Message from {who}]\n{text}"),))
