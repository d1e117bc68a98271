"""`POST /v1/responses/input_tokens` in front of a real llama-server (issue 17's done-when).

The count comes from llama-server's own `/apply-template` and `/tokenize`, so it must equal the
`prompt_tokens` llama-server reports when the same request then runs. The estimate (a provider's
`estimate_tokenizer`) is measured against it with the model's own tokenizer written as a
`tokenizer.json`: alone, it misses the chat template's markup; with the model's template in the
folder's `tokenizer_config.json`, as a model repository ships it, it equals the exact count.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import httpx
import openai
import pytest
from openai.types.responses import ResponseInputParam

from wirebridge.responses.testing import passthrough_config, running_bridge

from .hf_tokenizer import write_tokenizer_json
from .llamacpp import Artifacts, ServerPool, ServerProcess
from .scripted_model import TOOL_NAME, WEATHER_TOOL

pytestmark = [pytest.mark.interop, pytest.mark.anyio]

CONVERSATION: ResponseInputParam = [
    {"role": "user", "content": "What is the weather in Paris?"},
    {
        "type": "function_call",
        "call_id": "call_1",
        "name": TOOL_NAME,
        "arguments": json.dumps({"city": "Paris"}),
    },
    {"type": "function_call_output", "call_id": "call_1", "output": "18 °C, clear sky"},
    {"role": "assistant", "content": "It is 18 °C in Paris under a clear sky."},
    {"role": "user", "content": "And in Oslo? Answer in one sentence."},
]
REQUEST: dict[str, Any] = {
    "model": "tool",
    "instructions": "You are a terse weather assistant.",
    "tools": [WEATHER_TOOL],
    "input": CONVERSATION,
}


@pytest.fixture(scope="module")
def llama_server(llamacpp_servers: ServerPool) -> ServerProcess:
    return llamacpp_servers.get("llama-server", "tool")


def sdk(base_url: str) -> openai.AsyncOpenAI:
    return openai.AsyncOpenAI(base_url=base_url, api_key="k", max_retries=0, timeout=60)


async def test_count_equals_the_prompt_tokens_llama_server_reports(
    llama_server: ServerProcess,
) -> None:
    config = passthrough_config(llama_server.base_url, tokenize="llamacpp")
    async with running_bridge(config) as bridge, sdk(bridge.base_url) as client:
        raw = await client.responses.input_tokens.with_raw_response.count(**REQUEST)
        counted = raw.parse()  # the SDK's own type validation
        run = await client.responses.create(**REQUEST, temperature=0, max_output_tokens=64)
    assert raw.headers["x-wirebridge-count"] == 'exact; tokenizer="llamacpp"'
    assert counted.object == "response.input_tokens"
    assert run.usage is not None
    assert [item.type for item in run.output] == ["function_call"]  # the request really ran
    assert counted.input_tokens == run.usage.input_tokens
    assert counted.input_tokens > 100  # instructions, the tool and five items, not a stub


async def test_estimate_without_the_template_misses_its_markup(
    llama_server: ServerProcess, scripted_models: dict[str, Path], tmp_path: Path
) -> None:
    pytest.importorskip("tokenizers", reason="the `estimate` extra is not installed")
    from tokenizers import Tokenizer

    folder = tmp_path / "qwen2-scripted"
    file = write_tokenizer_json(scripted_models["tool"], folder)
    exact_config = passthrough_config(llama_server.base_url, tokenize="llamacpp")
    estimate_config = passthrough_config(llama_server.base_url, estimate_tokenizer=str(folder))
    plain = {k: v for k, v in REQUEST.items() if k != "tools"}
    async with running_bridge(exact_config) as bridge, sdk(bridge.base_url) as client:
        exact = (await client.responses.input_tokens.count(**REQUEST)).input_tokens
        exact_plain = (await client.responses.input_tokens.count(**plain)).input_tokens
    async with running_bridge(estimate_config) as bridge, sdk(bridge.base_url) as client:
        raw = await client.responses.input_tokens.with_raw_response.count(**REQUEST)
        estimate_plain = (await client.responses.input_tokens.count(**plain)).input_tokens
    estimate = raw.parse().input_tokens
    assert raw.headers["x-wirebridge-count"] == (
        'estimate; tokenizer="qwen2-scripted"; chat-template=?0'
    )
    # The written tokenizer is llama-server's: the templated prompt has the same tokens.
    async with httpx.AsyncClient(base_url=llama_server.root_url, timeout=30) as http:
        chat = {"messages": [{"role": "user", "content": "Ünïcode 123 🌉 <tool_call> it's"}]}
        prompt = (await http.post("/apply-template", json=chat)).json()["prompt"]
        body = {"content": prompt, "add_special": True, "parse_special": True}
        theirs = (await http.post("/tokenize", json=body)).json()["tokens"]
    assert Tokenizer.from_file(str(file)).encode(prompt).ids == theirs
    print(
        f"input_tokens: exact {exact} / {exact_plain} without the tool, "
        f"estimate {estimate} / {estimate_plain}"
    )
    # The estimate counts a subset of the prompt's tokens: never more than the exact count. The
    # gap is the template's markup, most of it Qwen2.5's tool preamble.
    assert estimate_plain < exact_plain and estimate < exact
    assert estimate - estimate_plain > 0 and exact - exact_plain > estimate - estimate_plain


async def test_estimate_with_the_models_template_equals_the_exact_count(
    llama_server: ServerProcess,
    scripted_models: dict[str, Path],
    llamacpp_artifacts: Artifacts,
    tmp_path: Path,
) -> None:
    """Qwen2.5's template (the one llama-server runs) in the folder: jinja2 renders it as
    llama-server's own engine does, so the estimate is the exact count, tools and calls too."""
    pytest.importorskip("tokenizers", reason="the `estimate` extra is not installed")
    folder = tmp_path / "qwen2.5-scripted"
    write_tokenizer_json(scripted_models["tool"], folder, llamacpp_artifacts.template)
    exact_config = passthrough_config(llama_server.base_url, tokenize="llamacpp")
    estimate_config = passthrough_config(llama_server.base_url, estimate_tokenizer=str(folder))
    plain = {k: v for k, v in REQUEST.items() if k != "tools"}
    async with running_bridge(exact_config) as bridge, sdk(bridge.base_url) as client:
        exact = [
            (await client.responses.input_tokens.count(**r)).input_tokens for r in (REQUEST, plain)
        ]
    async with running_bridge(estimate_config) as bridge, sdk(bridge.base_url) as client:
        raw = await client.responses.input_tokens.with_raw_response.count(**REQUEST)
        estimate = [raw.parse().input_tokens]
        estimate.append((await client.responses.input_tokens.count(**plain)).input_tokens)
    assert raw.headers["x-wirebridge-count"] == (
        'estimate; tokenizer="qwen2.5-scripted"; chat-template=?1'
    )
    print(f"input_tokens: exact {exact}, estimate with the template {estimate}")
    assert estimate == exact
