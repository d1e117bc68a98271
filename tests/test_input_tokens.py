"""`POST /v1/responses/input_tokens` through a real bridge, counted by a tokenizing upstream."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import openai
import pytest

from wirebridge.errors import ConfigError
from wirebridge.provider import Provider
from wirebridge.responses import BridgeSettings
from wirebridge.responses.testing import passthrough_config, running_bridge
from wirebridge.store import open_store
from wirebridge.testing import ScriptedUpstream
from wirebridge.testing.tokenizers import TokenizerKind, tokenizing_server

pytestmark = pytest.mark.anyio

TOOL = {
    "type": "function",
    "name": "weather",
    "description": "The weather in a city",
    "parameters": {"type": "object", "properties": {"city": {"type": "string"}}},
}


@pytest.fixture(params=["llamacpp", "vllm"])
async def tokenizing(
    request: pytest.FixtureRequest,
) -> AsyncIterator[tuple[TokenizerKind, ScriptedUpstream]]:
    kind: TokenizerKind = request.param
    async with ScriptedUpstream(default=tokenizing_server(kind)) as up:
        yield kind, up


async def test_count_equals_the_prompt_tokens_of_the_run(
    tokenizing: tuple[TokenizerKind, ScriptedUpstream],
) -> None:
    kind, upstream = tokenizing
    config = passthrough_config(upstream.base_url, tokenize=kind)
    request = {
        "model": "m",
        "instructions": "Answer briefly.",
        "input": "What is the weather in Paris and in Rome today?",
        "tools": [TOOL],
    }
    async with running_bridge(config) as bridge:
        client = openai.AsyncOpenAI(base_url=bridge.base_url, api_key="k", max_retries=0)
        async with client:
            counted = await client.responses.input_tokens.count(**request)  # type: ignore[arg-type]
            shorter = await client.responses.input_tokens.count(model="m", input="Hi")
            run = await client.responses.create(**request)  # type: ignore[call-overload]
    assert counted.object == "response.input_tokens"
    assert run.usage is not None and counted.input_tokens == run.usage.input_tokens
    assert 0 < shorter.input_tokens < counted.input_tokens
    paths = [r.path for r in upstream.requests]
    expected = ["/apply-template", "/tokenize"] if kind == "llamacpp" else ["/tokenize"]
    assert paths == [*expected, *expected, "/v1/chat/completions"]


async def test_no_tokenizer_is_a_plain_no(upstream: ScriptedUpstream) -> None:
    async with running_bridge(passthrough_config(upstream.base_url)) as bridge:
        client = openai.AsyncOpenAI(base_url=bridge.base_url, api_key="k", max_retries=0)
        async with client:
            with pytest.raises(openai.BadRequestError) as caught:
                await client.responses.input_tokens.count(model="m", input="Hi")
    assert caught.value.code == "exact_count_unavailable"
    assert isinstance(caught.value.body, dict) and caught.value.body["param"] == "model"
    assert upstream.requests == []


async def test_a_failing_tokenizer_is_an_upstream_error() -> None:
    async with ScriptedUpstream(default=tokenizing_server("vllm")) as up:
        config = passthrough_config(up.base_url, tokenize="llamacpp")  # the wrong server
        async with running_bridge(config) as bridge:
            client = openai.AsyncOpenAI(base_url=bridge.base_url, api_key="k", max_retries=0)
            async with client:
                with pytest.raises(openai.APIStatusError) as caught:
                    await client.responses.input_tokens.count(model="m", input="Hi")
    assert caught.value.status_code == 502
    assert "/apply-template" in caught.value.message


def test_an_unknown_tokenizer_is_a_config_error() -> None:
    with pytest.raises(ConfigError, match="tokenize must be one of llamacpp, vllm"):
        Provider(name="p", base_url="http://127.0.0.1:1/v1", tokenize="tiktoken")


async def test_the_count_covers_the_stored_history(tmp_path: Path) -> None:
    store = await open_store(f"sqlite://{tmp_path / 'responses.db'}")
    async with ScriptedUpstream(default=tokenizing_server("llamacpp", "Hello Ada.")) as up:
        config = passthrough_config(up.base_url, tokenize="llamacpp")
        async with running_bridge(BridgeSettings(config, store=store)) as bridge:
            client = openai.AsyncOpenAI(base_url=bridge.base_url, api_key="k", max_retries=0)
            async with client:
                first = await client.responses.create(model="m", input="I am Ada.")
                alone = await client.responses.input_tokens.count(model="m", input="Who am I?")
                follow = {"model": "m", "input": "Who am I?", "previous_response_id": first.id}
                counted = await client.responses.input_tokens.count(**follow)  # type: ignore[arg-type]
                run = await client.responses.create(**follow)  # type: ignore[call-overload]
                with pytest.raises(openai.BadRequestError) as unknown:
                    await client.responses.input_tokens.count(
                        model="m", input="x", previous_response_id="resp_unknown"
                    )
    await store.close()
    assert run.usage is not None and counted.input_tokens == run.usage.input_tokens
    assert counted.input_tokens > alone.input_tokens
    assert unknown.value.body is not None and "previous_response_id" in str(unknown.value.body)
