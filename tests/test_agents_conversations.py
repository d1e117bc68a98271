"""openai-agents' `OpenAIConversationsSession`, unchanged, keeps an agent's memory in the bridge.

Three turns with a function tool through one `wirebridge serve`; then a new session object with
the same conversation id, in a second `wirebridge serve` process on the same store (a SQLite
file both open, or one PostgreSQL database), continues it, and the upstream gets the whole
history: every user message, tool call, tool output and answer of the first three turns. And
`responses.create(conversation=...)` through two processes at once: both turns appended whole.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from typing import Any

import pytest
from agents import (
    Agent,
    ModelSettings,
    OpenAIConversationsSession,
    OpenAIResponsesModel,
    Runner,
    function_tool,
    set_tracing_disabled,
)

from wirebridge.testing import Reply, ScriptedUpstream, SeenRequest, text_body, tool_call_body

from .test_store_servers import bridges, postgres_url, shared_store_url  # noqa: F401  (fixtures)

pytestmark = pytest.mark.anyio

CITIES = ("Lyon", "Oslo")


@pytest.fixture(autouse=True)
def no_tracing() -> Iterator[None]:
    set_tracing_disabled(True)  # tracing would POST to api.openai.com
    yield
    set_tracing_disabled(False)


def script(request: SeenRequest) -> Reply:
    """A city in the last user message: call the tool for it; a tool output last: quote it;
    anything else: say how many messages the model was sent."""
    messages = request.json["messages"]
    last = messages[-1]
    if last["role"] == "tool":
        return Reply(text_body([f"Forecast: {last['content']}"]))
    for city in CITIES:
        if city in last["content"]:
            return Reply(tool_call_body([(f"call_{city}", "get_forecast", {"city": city})]))
    return Reply(text_body([f"I have seen {len(messages)} messages."]))


def make_agent(client: Any, calls: list[str]) -> Agent[Any]:
    @function_tool
    def get_forecast(city: str) -> str:
        """Tomorrow's forecast for a city."""
        calls.append(city)
        return f"sunny in {city}"

    return Agent(
        name="forecaster",
        instructions="Use the tool for forecasts.",
        tools=[get_forecast],
        model=OpenAIResponsesModel(model="local-model", openai_client=client),
        model_settings=ModelSettings(temperature=0.0),
    )


def transcript(messages: list[dict[str, Any]]) -> list[str]:
    """The Chat messages as `role: text` lines (tool calls as `call NAME(ARGS)`)."""
    lines = []
    for m in messages:
        for call in m.get("tool_calls") or []:
            lines.append(f"call {call['function']['name']}({call['function']['arguments']})")
        if m.get("content"):
            lines.append(f"{m['role']}: {m['content']}")
    return lines


async def test_a_conversations_session_continues_in_a_second_bridge_process(
    shared_store_url: str,  # noqa: F811
) -> None:
    calls: list[str] = []
    async with (
        ScriptedUpstream(default=script) as upstream,
        bridges(2, upstream.base_url, shared_store_url) as (first_client, second_client),
    ):
        session = OpenAIConversationsSession(openai_client=first_client)
        agent = make_agent(first_client, calls)
        answers = []
        for question in ("Weather in Lyon?", "And in Oslo?", "Thanks!"):
            result = await Runner.run(agent, question, session=session)
            answers.append(result.final_output)
        conversation_id = session.session_id
        assert conversation_id.startswith("conv_")
        assert calls == ["Lyon", "Oslo"]
        assert answers[:2] == ["Forecast: sunny in Lyon", "Forecast: sunny in Oslo"]

        later = OpenAIConversationsSession(
            conversation_id=conversation_id, openai_client=second_client
        )
        result = await Runner.run(make_agent(second_client, calls), "Bye!", session=later)
        items = await later.get_items()

    history = transcript(upstream.requests[-1].json["messages"])
    assert history == [
        "system: Use the tool for forecasts.",
        "user: Weather in Lyon?",
        'call get_forecast({"city": "Lyon"})',
        "tool: sunny in Lyon",
        "assistant: Forecast: sunny in Lyon",
        "user: And in Oslo?",
        'call get_forecast({"city": "Oslo"})',
        "tool: sunny in Oslo",
        "assistant: Forecast: sunny in Oslo",
        "user: Thanks!",
        f"assistant: {answers[2]}",
        "user: Bye!",
    ]
    assert result.final_output == "I have seen 12 messages."
    assert len(items) == 12  # the four turns, each item once


async def test_turns_through_two_bridges_on_one_conversation_append_whole(
    shared_store_url: str,  # noqa: F811
) -> None:
    """`conversation=` across processes: a turn held open on the first bridge, a turn made and
    finished on the second meanwhile; both appended whole, in commit order, and a third turn
    (on the first bridge) is sent all of them."""
    release = asyncio.Event()
    arrived = asyncio.Event()

    def held(request: SeenRequest) -> Reply:
        last = request.json["messages"][-1]["content"]
        if last == "slow":
            arrived.set()
            return Reply(text_body(["slow answer"]), hold=release)
        return Reply(text_body([f"answer to {last}"]))

    async with (
        ScriptedUpstream(default=held) as upstream,
        bridges(2, upstream.base_url, shared_store_url) as (a, b),
    ):
        made = await a.conversations.create(items=[{"role": "user", "content": "hello"}])
        slow = asyncio.create_task(
            a.responses.create(model="m", input="slow", conversation=made.id)
        )
        await arrived.wait()
        fast = await b.responses.create(model="m", input="fast", conversation=made.id)
        release.set()
        await slow
        last = await a.responses.create(model="m", input="last", conversation=made.id)
        listed = [i async for i in b.conversations.items.list(made.id, order="asc")]

    assert fast.conversation is not None and fast.conversation.id == made.id
    texts = [i.content[0].text for i in listed]  # type: ignore[union-attr]
    assert texts == [
        "hello",
        "fast",
        "answer to fast",
        "slow",
        "slow answer",
        "last",
        "answer to last",
    ]
    sent = [m["content"] for m in upstream.requests[-1].json["messages"]]
    assert sent == texts[:-1]
    assert last.output[0].id == listed[-1].id
