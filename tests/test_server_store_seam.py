"""The server's conversation-state seam with the real store (SQLite): `previous_response_id`
prepends the stored chain, `store: false` keeps nothing, an unknown id is a 400 naming it."""

from __future__ import annotations

from pathlib import Path

import openai
import pytest
from openai import AsyncOpenAI

from wirebridge.responses import BridgeSettings
from wirebridge.responses.testing import passthrough_config, running_bridge
from wirebridge.testing import Reply, ScriptedUpstream, text_body

store_package = pytest.importorskip("wirebridge.store")

pytestmark = pytest.mark.anyio


async def test_previous_response_id_sends_the_stored_history_upstream(
    tmp_path: Path, upstream: ScriptedUpstream
) -> None:
    upstream.push(
        Reply(text_body(["Nice to meet you, Ada."])),
        Reply(text_body(["Your name is Ada."])),
        Reply(text_body(["Not kept."])),
    )
    store = await store_package.open_store(f"sqlite:///{tmp_path / 'responses.db'}")
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
