"""The server with the real store (SQLite): `previous_response_id` prepends the stored chain,
`store: false` keeps nothing, an unknown id is a 400 naming it; the SDK's `retrieve`, `delete`
and `input_items.list` work."""

from __future__ import annotations

from pathlib import Path

import openai
import pytest
from openai import AsyncOpenAI

from wirebridge.responses import BridgeSettings
from wirebridge.responses.testing import passthrough_config, running_bridge
from wirebridge.store import open_store
from wirebridge.testing import Reply, ScriptedUpstream, text_body

pytestmark = pytest.mark.anyio


async def test_previous_response_id_sends_the_stored_history_upstream(
    tmp_path: Path, upstream: ScriptedUpstream
) -> None:
    upstream.push(
        Reply(text_body(["Nice to meet you, Ada."])),
        Reply(text_body(["Your name is Ada."])),
        Reply(text_body(["Not kept."])),
    )
    store = await open_store(f"sqlite://{tmp_path / 'responses.db'}")
    settings = BridgeSettings(passthrough_config(upstream.base_url), store=store)
    async with (
        running_bridge(settings) as bridge,
        AsyncOpenAI(base_url=bridge.base_url, api_key="unused", max_retries=0) as client,
    ):
        first = await client.responses.create(
            model="m", instructions="Be kind.", input="My name is Ada."
        )
        second = await client.responses.create(
            model="m", input="What is my name?", previous_response_id=first.id, stream=True
        )
        async for _ in second:
            pass
        unstored = await client.responses.create(model="m", input="x", store=False)
        with pytest.raises(openai.BadRequestError) as missing:
            await client.responses.create(model="m", input="y", previous_response_id=unstored.id)
        with pytest.raises(openai.BadRequestError) as unknown:
            await client.responses.create(model="m", input="y", previous_response_id="resp_nope")
    assert upstream.requests[1].json["messages"] == [
        {"role": "user", "content": "My name is Ada."},
        {"role": "assistant", "content": "Nice to meet you, Ada."},
        {"role": "user", "content": "What is my name?"},
    ]
    assert missing.value.param == unknown.value.param == "previous_response_id"
    assert len(upstream.requests) == 3


async def test_sdk_retrieves_lists_and_deletes_stored_responses(
    tmp_path: Path, upstream: ScriptedUpstream
) -> None:
    upstream.push(Reply(text_body(["stored answer"])))
    store = await open_store(f"sqlite://{tmp_path / 'responses.db'}")
    settings = BridgeSettings(passthrough_config(upstream.base_url), store=store)
    history = [{"role": "user", "content": f"message {i}"} for i in range(5)]
    async with (
        running_bridge(settings) as bridge,
        AsyncOpenAI(base_url=bridge.base_url, api_key="unused", max_retries=0) as client,
    ):
        made = await client.responses.create(model="m", input=history)  # type: ignore[arg-type]
        fetched = await client.responses.retrieve(made.id)
        page = await client.responses.input_items.list(made.id, limit=2, order="asc")
        every = [item async for item in client.responses.input_items.list(made.id, limit=2)]
        await client.responses.delete(made.id)
        with pytest.raises(openai.NotFoundError):
            await client.responses.retrieve(made.id)
        with pytest.raises(openai.BadRequestError) as bad_limit:
            await client.responses.input_items.list("resp_x", limit=500)
    assert fetched.output_text == "stored answer" and fetched.id == made.id
    texts = [item.content[0].text for item in page.data]  # type: ignore[union-attr]
    assert texts == ["message 0", "message 1"] and page.has_more
    assert [i.content[0].text for i in every] == [f"message {i}" for i in range(4, -1, -1)]  # type: ignore[union-attr]
    assert bad_limit.value.param == "limit"


async def test_a_storeless_bridge_says_so(upstream: ScriptedUpstream) -> None:
    async with (
        running_bridge(passthrough_config(upstream.base_url)) as bridge,
        AsyncOpenAI(base_url=bridge.base_url, api_key="unused", max_retries=0) as client,
    ):
        with pytest.raises(openai.NotFoundError) as missing:
            await client.responses.retrieve("resp_1")
    assert "--no-store" in str(missing.value)
