"""`POST /v1/responses/input_tokens` with an opted-in estimate: a named local tokenizer.json."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import openai
import pytest

from wirebridge.errors import ConfigError
from wirebridge.provider import Provider
from wirebridge.responses.estimate import render_plain, tokenizer_name
from wirebridge.responses.testing import passthrough_config, running_bridge
from wirebridge.testing import ScriptedUpstream
from wirebridge.testing.bodies import text_body
from wirebridge.testing.tokenizers import tokenizing_server
from wirebridge.testing.upstream import Reply

from .test_input_tokens import TOOL

tokenizers = pytest.importorskip("tokenizers", reason="the `estimate` extra is not installed")

pytestmark = pytest.mark.anyio

HISTORY: list[dict[str, Any]] = [
    {"role": "user", "content": "What is the weather in Paris?"},
    {"type": "function_call", "call_id": "c1", "name": "weather", "arguments": '{"city":"Paris"}'},
    {"type": "function_call_output", "call_id": "c1", "output": "18 C and sunny"},
    {"role": "assistant", "content": "It is 18 C and sunny."},
    {"role": "user", "content": "And in Rome?"},
]


# The toy template of `wirebridge.testing.tokenizers.apply_template`, as a model folder's
# chat_template (whitespace apart, which its tokenizer ignores).
TOY_TEMPLATE = (
    "{% if tools %}<tools> {{ tools | tojson }}\n{% endif %}"
    "{% for m in messages %}<|{{ m.role }}|> {{ m.content }} {{ (m.tool_calls or '') | tojson }}\n"
    "{% endfor %}{% if add_generation_prompt %}<|assistant|>{% endif %}"
)


def word_tokenizer(folder: Path, *, split: str = "Whitespace") -> Path:
    """A real tokenizer.json whose tokens are easy to count: one per word (or punctuation run)."""
    from tokenizers import Tokenizer, pre_tokenizers
    from tokenizers.models import WordLevel

    tokenizer = Tokenizer(WordLevel({"[UNK]": 0}, unk_token="[UNK]"))
    tokenizer.pre_tokenizer = getattr(pre_tokenizers, split)()
    folder.mkdir(parents=True)
    tokenizer.save(str(folder / "tokenizer.json"))
    return folder / "tokenizer.json"


async def test_estimate_is_said_and_counts_what_the_run_sends(
    upstream: ScriptedUpstream, tmp_path: Path
) -> None:
    file = word_tokenizer(tmp_path / "words-v1")
    config = passthrough_config(upstream.base_url, estimate_tokenizer=str(tmp_path / "words-v1"))
    request = {"model": "m", "instructions": "Answer briefly.", "input": HISTORY, "tools": [TOOL]}
    async with running_bridge(config) as bridge:
        client = openai.AsyncOpenAI(base_url=bridge.base_url, api_key="k", max_retries=0)
        async with client:
            raw = await client.responses.input_tokens.with_raw_response.count(**request)  # type: ignore[arg-type]
            counted = raw.parse()
            bare = await client.responses.input_tokens.count(model="m", input=HISTORY)  # type: ignore[arg-type]
            assert upstream.requests == []  # an estimate asks the upstream nothing
            upstream.push(Reply(text_body(["It is sunny."])))
            await client.responses.create(**request)  # type: ignore[call-overload]
    assert raw.headers["x-wirebridge-count"] == 'estimate; tokenizer="words-v1"; chat-template=?0'
    assert counted.object == "response.input_tokens"
    sent = upstream.requests[-1].json  # the Chat request the run really sent
    from tokenizers import Tokenizer

    tokenizer = Tokenizer.from_file(str(file))
    assert counted.input_tokens == len(tokenizer.encode(render_plain(sent)).ids)
    # the instructions and the tool are in it: "system", "Answer", "briefly", "." and the JSON
    assert counted.input_tokens > bare.input_tokens + 4
    assert "18 C and sunny" in render_plain(sent) and '"city":"Paris"' in render_plain(sent)


async def test_exact_count_is_said_too() -> None:
    async with (
        ScriptedUpstream(default=tokenizing_server("vllm")) as up,
        running_bridge(passthrough_config(up.base_url, tokenize="vllm")) as bridge,
    ):
        client = openai.AsyncOpenAI(base_url=bridge.base_url, api_key="k", max_retries=0)
        async with client:
            raw = await client.responses.input_tokens.with_raw_response.count(model="m", input="Hi")
    assert raw.headers["x-wirebridge-count"] == 'exact; tokenizer="vllm"'
    assert raw.parse().input_tokens > 0


async def test_an_unloadable_tokenizer_is_a_server_error(
    upstream: ScriptedUpstream, tmp_path: Path
) -> None:
    (tmp_path / "bad.json").write_text(json.dumps({"not": "a tokenizer"}))
    for configured in (tmp_path / "missing", tmp_path / "bad.json"):
        config = passthrough_config(upstream.base_url, estimate_tokenizer=str(configured))
        async with running_bridge(config) as bridge:
            client = openai.AsyncOpenAI(base_url=bridge.base_url, api_key="k", max_retries=0)
            async with client:
                with pytest.raises(openai.InternalServerError) as caught:
                    await client.responses.input_tokens.count(model="m", input="Hi")
        assert caught.value.code == "estimate_unavailable"
        assert str(tmp_path) not in caught.value.message  # the server's paths stay in its log


def client_of(bridge: Any) -> openai.AsyncOpenAI:
    return openai.AsyncOpenAI(base_url=bridge.base_url, api_key="k", max_retries=0)


def test_exact_and_estimate_are_exclusive() -> None:
    with pytest.raises(ConfigError, match="tokenize and estimate_tokenizer are exclusive"):
        Provider(base_url="http://127.0.0.1:1/v1", tokenize="vllm", estimate_tokenizer="t.json")
    with pytest.raises(ConfigError, match="estimate_tokenizer must be the path"):
        Provider(base_url="http://127.0.0.1:1/v1", estimate_tokenizer=" ")


def test_the_tokenizer_is_named_by_its_model_folder() -> None:
    assert tokenizer_name("/models/Qwen2.5-7B-Instruct/tokenizer.json") == "Qwen2.5-7B-Instruct"
    assert tokenizer_name("/models/Qwen2.5-7B-Instruct/") == "Qwen2.5-7B-Instruct"
    assert tokenizer_name("/tokenizers/llama3.json") == "llama3"


async def test_with_the_models_chat_template_the_estimate_is_the_exact_count(
    tmp_path: Path,
) -> None:
    """The toy upstream's own template and tokenizer, as a model folder: the counts agree."""
    word_tokenizer(tmp_path / "toy", split="WhitespaceSplit")  # str.split(), as the toy's
    config = {"chat_template": TOY_TEMPLATE, "eos_token": "<|end|>"}
    (tmp_path / "toy" / "tokenizer_config.json").write_text(json.dumps(config))
    request: dict[str, Any] = {
        "model": "m",
        "instructions": "Answer briefly.",
        "input": [
            {"role": "user", "content": "Hello there"},
            {"role": "assistant", "content": "Hi! Ask away."},
            {"role": "user", "content": "What is the weather in Paris and in Rome today?"},
        ],
        "tools": [TOOL],
    }
    async with ScriptedUpstream(default=tokenizing_server("vllm")) as up:
        exact_config = passthrough_config(up.base_url, tokenize="vllm")
        estimate_config = passthrough_config(up.base_url, estimate_tokenizer=str(tmp_path / "toy"))
        async with running_bridge(exact_config) as bridge, client_of(bridge) as client:
            exact = await client.responses.input_tokens.count(**request)
        async with running_bridge(estimate_config) as bridge, client_of(bridge) as client:
            raw = await client.responses.input_tokens.with_raw_response.count(**request)
            plain = await client.responses.input_tokens.count(model="m", input="Hi")
    assert raw.headers["x-wirebridge-count"] == 'estimate; tokenizer="toy"; chat-template=?1'
    assert raw.parse().input_tokens == exact.input_tokens > plain.input_tokens > 0


async def test_a_template_that_refuses_the_request_is_a_400(
    upstream: ScriptedUpstream, tmp_path: Path
) -> None:
    word_tokenizer(tmp_path / "strict")
    template = "{% if messages[0].role != 'user' %}{{ raise_exception('user first') }}{% endif %}"
    (tmp_path / "strict" / "tokenizer_config.json").write_text(
        json.dumps({"chat_template": template})
    )
    config = passthrough_config(upstream.base_url, estimate_tokenizer=str(tmp_path / "strict"))
    async with running_bridge(config) as bridge, client_of(bridge) as client:
        ok = await client.responses.input_tokens.count(model="m", input="Hi")
        with pytest.raises(openai.BadRequestError) as caught:
            await client.responses.input_tokens.count(model="m", instructions="x", input="Hi")
    assert ok.input_tokens == 0  # the template printed nothing: no tokens
    assert caught.value.code == "estimate_unavailable"
    assert "user first" in caught.value.message
