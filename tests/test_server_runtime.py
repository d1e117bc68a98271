"""What a running server holds: the runtime opens and closes its own resources, never the ones it
was handed, and the settings it was started with stay as they were."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest
from openai import AsyncOpenAI

from wirebridge.responses import BridgeSettings
from wirebridge.responses.testing import passthrough_config, running_bridge
from wirebridge.store import open_store
from wirebridge.testing import Reply, ScriptedUpstream, text_body

pytestmark = pytest.mark.anyio


async def test_a_store_handed_in_is_still_open_after_the_server_stops(
    tmp_path: Path, upstream: ScriptedUpstream
) -> None:
    upstream.push(Reply(text_body(["kept"])))
    store = await open_store(f"sqlite://{tmp_path / 'responses.db'}")
    try:
        settings = BridgeSettings(passthrough_config(upstream.base_url), store=store)
        async with (
            running_bridge(settings) as bridge,
            AsyncOpenAI(base_url=bridge.base_url, api_key="unused", max_retries=0) as client,
        ):
            made = await client.responses.create(model="m", input="hi")
        record = await store.get(made.id)  # the bridge's shutdown left the store usable
        assert record.status == "completed"
    finally:
        await store.close()


async def test_one_settings_object_starts_servers_one_after_another(
    tmp_path: Path, upstream: ScriptedUpstream
) -> None:
    upstream.push(Reply(text_body(["one"])), Reply(text_body(["two"])))
    settings = BridgeSettings(
        passthrough_config(upstream.base_url),
        store_at_startup=True,
        store_url=f"sqlite://{tmp_path / 'opened.db'}",
    )
    before = dataclasses.replace(settings)
    answers = []
    for _ in range(2):  # the first server closed the store it opened; the second opens its own
        async with (
            running_bridge(settings) as bridge,
            AsyncOpenAI(base_url=bridge.base_url, api_key="unused", max_retries=0) as client,
        ):
            made = await client.responses.create(model="m", input="hi")
            answers.append((await client.responses.retrieve(made.id)).output_text)
    assert answers == ["one", "two"]
    assert settings == before and settings.store is None


def test_settings_cannot_be_changed_once_made() -> None:
    settings = BridgeSettings(passthrough_config("http://127.0.0.1:9/v1"))
    with pytest.raises(dataclasses.FrozenInstanceError):
        settings.store_url = "sqlite://elsewhere.db"  # type: ignore[misc]
