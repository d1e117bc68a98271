"""Real Codex 0.171 compacts through the bridge, and goes on with the summary.

- Built-in `openai` provider with `openai_base_url` at the bridge: remote compaction v2. A small
  `context_window` in the catalog and an upstream reporting a large prompt make Codex compact in
  the middle of a tool turn with a `compaction_trigger`; the bridge summarises through the
  upstream and answers one `compaction` item; the rest of the turn, and a resumed further turn,
  carry that item, which reaches the upstream as the summary.
- Custom provider: Codex's own (local) compaction is a plain request; its summary comes back in
  the follow-up turn.
- A compaction that cannot fit the upstream's window at all ends in a clear error and Codex
  stops, instead of compacting in a loop.
"""

from __future__ import annotations

import re
import secrets
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import pytest

from tests.codex_support import (
    CodexHome,
    catalog,
    custom_provider_config,
    openai_provider_config,
)
from tests.test_codex_cli import ProxyTrap, trap  # noqa: F401  (the fixture)
from wirebridge.responses.compaction import SUMMARY_INSTRUCTIONS, SUMMARY_PREFIX
from wirebridge.responses.settings import BridgeSettings
from wirebridge.responses.testing import passthrough_config, running_bridge
from wirebridge.testing import Reply, ScriptedUpstream, SeenRequest, text_body, tool_call_body

pytestmark = [pytest.mark.anyio, pytest.mark.interop]

WINDOW = 16_000
HUGE = {"prompt_tokens": 60_000, "completion_tokens": 10, "total_tokens": 60_010}
SMALL = {"prompt_tokens": 100, "completion_tokens": 5, "total_tokens": 105}


def texts(request: SeenRequest) -> list[str]:
    out = []
    for m in request.json["messages"]:
        content = m.get("content")
        out.append(content if isinstance(content, str) else str(content))
    return out


def is_bridge_summary(request: SeenRequest) -> bool:
    first = request.json["messages"][0]
    return bool(first.get("role") == "system" and first.get("content") == SUMMARY_INSTRUCTIONS)


class Model:
    """Tool turn with a large reported prompt, then an answer; summaries on request."""

    def __init__(self, summary: str, is_summary: Any):
        self.summary = summary
        self.is_summary = is_summary
        self.token = f"tok-{secrets.token_hex(4)}"
        self.summaries = 0

    def __call__(self, request: SeenRequest) -> Reply:
        if self.is_summary(request):
            self.summaries += 1
            return Reply(text_body([self.summary], usage=SMALL))
        messages = request.json["messages"]
        if messages[-1]["role"] == "tool" or any(self.summary in t for t in texts(request)):
            return Reply(text_body([f"Finished {self.token}."], usage=SMALL))
        call = ("call_c1", "exec_command", {"cmd": f"echo {self.token}"})
        return Reply(tool_call_body([call], usage=HUGE))


def carries_summary(request: SeenRequest, summary: str) -> bool:
    return any(summary in t for t in texts(request))


@asynccontextmanager
async def compacting_bridge(
    upstream: ScriptedUpstream, codex: CodexHome, **env: str
) -> AsyncIterator[dict[str, str]]:
    """A bridge in front of `upstream` that compacts remotely (it has a compaction secret), and
    `codex` on the built-in `openai` provider pointed at it with a WINDOW-token catalog; yields
    the environment to run Codex in (with an API key, and `env`)."""
    settings = BridgeSettings(
        passthrough_config(upstream.base_url), compaction_secret="codex-test-secret-0123456789"
    )
    async with running_bridge(settings) as bridge:
        codex.write(
            openai_provider_config(bridge.base_url, codex.catalog_path),
            catalog(context_window=WINDOW),
        )
        yield codex.env(OPENAI_API_KEY="sk-test-not-a-real-key", **env)


async def test_codex_openai_provider_remote_compaction_v2(tmp_path: Path, trap: ProxyTrap) -> None:  # noqa: F811
    summary = f"Summary {secrets.token_hex(4)}: the user asked to echo a token."
    model = Model(summary, is_bridge_summary)
    codex = CodexHome(tmp_path, trap)
    async with (
        ScriptedUpstream(default=model) as upstream,
        compacting_bridge(upstream, codex) as env,
    ):
        first = await codex.exec("-s", "read-only", "Echo a token for me.", env=env)
        assert first.returncode == 0, f"codex exited {first.returncode}:\n{first.stderr[-4000:]}"
        assert model.summaries >= 1, "Codex never compacted through the bridge"
        after = next(i for i, r in enumerate(upstream.requests) if is_bridge_summary(r))
        summarised = upstream.requests[after].json["messages"]
        outputs = [m["content"] for m in summarised if m["role"] == "tool"]
        assert any(model.token in o for o in outputs), "the tool turn was not summarised"
        later = upstream.requests[after + 1 :]
        assert later and all(carries_summary(r, SUMMARY_PREFIX + summary) for r in later)
        seen = len(upstream.requests)
        second = await codex.exec("resume", "--last", "next step please", env=env)
        assert second.returncode == 0, (
            f"resume exited {second.returncode}:\n{second.stderr[-4000:]}"
        )
        resumed = [r for r in upstream.requests[seen:] if not is_bridge_summary(r)]
        assert resumed and carries_summary(resumed[0], SUMMARY_PREFIX + summary)
    assert trap.attempts == [], f"Codex tried to reach other hosts: {trap.attempts}"


def is_codex_summary(request: SeenRequest) -> bool:
    """Codex's own compaction request: a plain turn with no tools (`tools: []`)."""
    return "tools" not in request.json


async def test_codex_custom_provider_auto_compacts_and_carries_the_summary(
    tmp_path: Path,
    trap: ProxyTrap,  # noqa: F811
) -> None:
    summary = f"Summary {secrets.token_hex(4)}: a token was echoed."
    model = Model(summary, is_codex_summary)
    codex = CodexHome(tmp_path, trap)
    async with (
        ScriptedUpstream(default=model) as upstream,
        running_bridge(passthrough_config(upstream.base_url)) as bridge,
    ):
        codex.write(
            custom_provider_config(bridge.base_url, codex.catalog_path),
            catalog(context_window=WINDOW),
        )
        run = await codex.exec("--ephemeral", "-s", "read-only", "Echo a token for me.")
    assert run.returncode == 0, f"codex exited {run.returncode}:\n{run.stderr[-4000:]}"
    assert model.summaries >= 1, "Codex never compacted"
    after = next(i for i, r in enumerate(upstream.requests) if is_codex_summary(r))
    later = upstream.requests[after + 1 :]
    assert later and carries_summary(later[0], summary)
    assert f"Finished {model.token}." in run.stdout
    assert trap.attempts == [], f"Codex tried to reach other hosts: {trap.attempts}"


async def test_codex_compaction_loop_stops_with_a_clear_error(
    tmp_path: Path,
    trap: ProxyTrap,  # noqa: F811
) -> None:
    """The window is too small for Codex's own prompt: every step reports more tokens than the
    limit, so each compaction is followed, one step later, by another. The bridge refuses the
    third one in a row, and Codex shows the error and stops."""
    summary = "Summary: nothing fits."

    def model(request: SeenRequest) -> Reply:
        if is_bridge_summary(request):
            return Reply(text_body([summary], usage=SMALL))
        call = ("call_loop", "exec_command", {"cmd": "echo again"})
        return Reply(tool_call_body([call], usage=HUGE))

    codex = CodexHome(tmp_path, trap)
    async with (
        ScriptedUpstream(default=model) as upstream,
        compacting_bridge(upstream, codex) as env,
    ):
        run = await codex.exec("--ephemeral", "-s", "read-only", "Loop, please.", env=env)
    summaries = [r for r in upstream.requests if is_bridge_summary(r)]
    assert run.returncode != 0, run.stdout[-2000:]
    assert len(summaries) == 3, f"{len(summaries)} compactions reached the upstream"
    assert len(upstream.requests) <= 8, f"{len(upstream.requests)} upstream requests"
    assert re.search(r"compacted again and again", run.stderr + run.stdout), run.stderr[-3000:]
