"""openai-agents, unchanged: an Agent with a function tool runs its tool loop through the bridge,
and a streamed run it cancels ends its stored response (it uses no background mode)."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Iterator

import anyio
import pytest
from agents import (
    Agent,
    ModelSettings,
    OpenAIResponsesModel,
    Runner,
    function_tool,
    set_tracing_disabled,
)
from openai import AsyncOpenAI

from wirebridge.responses.testing import passthrough_config, running_bridge
from wirebridge.testing import Reply, ScriptedUpstream, SeenRequest, text_body, tool_call_body

from .test_background import (
    HELD_AFTER,
    PIECES,
    db,
    held_reply,
    sdk,
    settings,
    until_done,
    upstream,
)

pytestmark = pytest.mark.anyio
__all__ = ["db", "upstream"]  # fixtures used by name


@pytest.fixture(autouse=True)
def no_tracing() -> Iterator[None]:
    set_tracing_disabled(True)  # tracing would POST to api.openai.com
    yield
    set_tracing_disabled(False)


def forecast_script(request: SeenRequest) -> Reply:
    """Ask for the tool until its output is in the history, then answer quoting it."""
    tool_messages = [m for m in request.json["messages"] if m["role"] == "tool"]
    if not tool_messages:
        return Reply(tool_call_body([("call_f1", "get_forecast", {"city": "Lyon"})]))
    return Reply(text_body(["Forecast: ", tool_messages[-1]["content"]]))


@pytest.mark.parametrize("streamed", [False, True], ids=["run", "run_streamed"])
async def test_agent_with_a_function_tool_completes_the_tool_loop(streamed: bool) -> None:
    calls: list[str] = []

    @function_tool
    def get_forecast(city: str) -> str:
        """Tomorrow's forecast for a city."""
        calls.append(city)
        return f"sunny in {city}, 24C"

    async with (
        ScriptedUpstream(default=forecast_script) as upstream,
        running_bridge(passthrough_config(upstream.base_url)) as bridge,
        AsyncOpenAI(base_url=bridge.base_url, api_key="unused", max_retries=0) as client,
    ):
        agent = Agent(
            name="forecaster",
            instructions="Use the tool, then report what it said.",
            tools=[get_forecast],
            model=OpenAIResponsesModel(model="local-model", openai_client=client),
            model_settings=ModelSettings(temperature=0.0),
        )
        if streamed:
            run = Runner.run_streamed(agent, "What's tomorrow like in Lyon?")
            async for _ in run.stream_events():
                pass
            output = run.final_output
        else:
            result = await Runner.run(agent, "What's tomorrow like in Lyon?")
            output = result.final_output

    assert calls == ["Lyon"]
    assert output == "Forecast: sunny in Lyon, 24C"
    assert len(upstream.requests) == 2
    first, second = (r.json for r in upstream.requests)
    assert first["model"] == "local-model"
    assert [t["function"]["name"] for t in first["tools"]] == ["get_forecast"]
    assert first["messages"][0] == {
        "role": "system",
        "content": "Use the tool, then report what it said.",
    }
    call_message, tool_message = second["messages"][-2:]
    assert call_message["tool_calls"][0]["id"] == "call_f1"
    assert json.loads(call_message["tool_calls"][0]["function"]["arguments"]) == {"city": "Lyon"}
    assert tool_message == {
        "role": "tool",
        "tool_call_id": "call_f1",
        "content": "sunny in Lyon, 24C",
    }


async def test_a_cancelled_streamed_run_ends_its_stored_response_after_the_grace(
    upstream: ScriptedUpstream, db: str
) -> None:
    """openai-agents uses no background mode: its streamed runs are stored foreground streams.
    One it cancels mid-answer closes the stream; the bridge then closes the upstream request
    once the detach grace has passed, and the stored response ends `cancelled` with its text."""
    never = asyncio.Event()
    upstream.push(held_reply(never))
    async with (
        running_bridge(settings(upstream, db, detach_grace_s=0.2)) as server,
        sdk(server) as client,
    ):
        agent = Agent(
            name="counter",
            instructions="Count.",
            model=OpenAIResponsesModel(model="m", openai_client=client),
        )
        run = Runner.run_streamed(agent, "count")
        response_id, seen = "", 0
        with anyio.fail_after(20):
            async for event in run.stream_events():
                if event.type != "raw_response_event":
                    continue
                if event.data.type == "response.created":
                    response_id = event.data.response.id
                elif event.data.type == "response.output_text.delta":
                    seen += 1
                    if seen == HELD_AFTER - 1:  # every delta sent before the hold
                        run.cancel()
            await upstream.closed.wait()  # the bridge closed the upstream request
        final = await until_done(client, response_id)
    assert final.background is False
    assert final.status == "cancelled"
    assert final.output_text == "".join(PIECES[: HELD_AFTER - 1])
    assert len(upstream.requests) == 1
