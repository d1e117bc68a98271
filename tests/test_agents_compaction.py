"""openai-agents' OpenAIResponsesCompactionSession compacts through the bridge and goes on.

After each turn the session calls `responses.compact()` (`POST /v1/responses/compact`); the
bridge summarises through the scripted upstream with our own wording and answers the
`response.compaction` object; the session replaces its history with it, and the next turn's
upstream request carries the summary where the compaction item stands.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from agents import Agent, OpenAIResponsesModel, Runner, SQLiteSession, set_tracing_disabled
from agents.memory import OpenAIResponsesCompactionSession
from openai import AsyncOpenAI

from wirebridge.responses.compaction import SUMMARY_INSTRUCTIONS, SUMMARY_PREFIX
from wirebridge.responses.settings import BridgeSettings
from wirebridge.responses.testing import passthrough_config, running_bridge
from wirebridge.testing import Reply, ScriptedUpstream, SeenRequest, text_body

pytestmark = pytest.mark.anyio

SUMMARY = "The user introduced themselves as Ada, a compiler engineer."


@pytest.fixture(autouse=True)
def no_tracing() -> Iterator[None]:
    set_tracing_disabled(True)  # tracing would POST to api.openai.com
    yield
    set_tracing_disabled(False)


def is_summary(request: SeenRequest) -> bool:
    return bool(request.json["messages"][0].get("content") == SUMMARY_INSTRUCTIONS)


def script(request: SeenRequest) -> Reply:
    if is_summary(request):
        return Reply(text_body([SUMMARY]))
    last = str(request.json["messages"][-1]["content"])
    if "my name" in last:
        return Reply(text_body(["Your name is Ada."]))
    return Reply(text_body(["Nice to meet you."]))


@pytest.mark.parametrize("mode", ["input", "previous_response_id"])
async def test_compaction_session_compacts_through_the_bridge_and_goes_on(
    tmp_path: Any, mode: str
) -> None:
    async with ScriptedUpstream(default=script) as upstream:
        settings = BridgeSettings(
            passthrough_config(upstream.base_url),
            store_at_startup=True,
            store_url=f"sqlite:///{tmp_path}/responses.db",
            compaction_secret="agents-test-secret-0123456789",
        )
        async with (
            running_bridge(settings) as bridge,
            AsyncOpenAI(base_url=bridge.base_url, api_key="unused", max_retries=0) as client,
        ):
            session = OpenAIResponsesCompactionSession(
                "chat-1",
                SQLiteSession("chat-1"),
                client=client,
                model="gpt-4.1",
                compaction_mode=mode,  # type: ignore[arg-type]
                should_trigger_compaction=lambda context: True,
            )
            agent = Agent(
                name="assistant",
                instructions="Answer briefly.",
                model=OpenAIResponsesModel(model="gpt-4.1", openai_client=client),
            )
            first = await Runner.run(agent, "Hello, I am Ada.", session=session)
            assert first.final_output == "Nice to meet you."
            items = await session.get_items()
            kinds = [i.get("type", "message") for i in items]
            assert "compaction" in kinds, items
            second = await Runner.run(agent, "What is my name?", session=session)
    assert second.final_output == "Your name is Ada."
    assert sum(map(is_summary, upstream.requests)) >= 1
    last = [r for r in upstream.requests if not is_summary(r)][-1]  # compacts after it too
    contents = [m.get("content") for m in last.json["messages"]]
    assert SUMMARY_PREFIX + SUMMARY in contents, contents
    assert "What is my name?" in contents
