"""`truncation: "auto"` in front of real llama.cpp servers with a small window.

llama-server refuses a prompt over its `--ctx-size` with `exceed_context_size_error` (and
`n_prompt_tokens`, `n_ctx`). Through the bridge, with `truncation: "auto"` the conversation goes
on within the window; with `disabled` it is the 400.

Not llama-cpp-python: to a streamed request (the bridge always streams) it answers HTTP 200,
then raises "Requested tokens (N) exceed context window of M" inside its generator and cuts the
connection with no error in the stream, so nothing says the prompt was too long (a 502
`upstream_stream_error`, truncation or not).
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import openai
import pytest

from wirebridge.responses.testing import passthrough_config, running_bridge

from .llamacpp import Artifacts, ServerProcess, server
from .scripted_model import TEXT_SENTENCE

pytestmark = [pytest.mark.interop, pytest.mark.anyio]

SMALL_WINDOW = 512


@pytest.fixture(scope="module")
def small_server(
    llamacpp_artifacts: Artifacts, scripted_models: dict[str, Any]
) -> Iterator[ServerProcess]:
    """llama-server with the text model and a 512-token window."""
    proc = server("llama-server", llamacpp_artifacts, scripted_models["text"], "text")
    full = proc.make_argv

    def argv(port: int) -> list[str]:
        args = list(full(port))
        args[args.index("--ctx-size") + 1] = str(SMALL_WINDOW)
        return args

    proc.make_argv = argv
    with proc:
        yield proc


def conversation(exchanges: int = 12) -> list[dict[str, Any]]:
    items: list[dict[str, Any]] = []
    for n in range(exchanges):
        items.append({"role": "user", "content": f"Question {n}: " + "tell me more " * 20})
        items.append({"role": "assistant", "content": f"Answer {n}: " + "here is more " * 20})
    items.append({"role": "user", "content": "Hi"})
    return items


async def _create(base_url: str, **request: Any) -> tuple[Any, dict[str, str]]:
    async with running_bridge(passthrough_config(base_url)) as bridge:
        client = openai.AsyncOpenAI(base_url=bridge.base_url, api_key="k", max_retries=0)
        async with client:
            raw = await client.responses.with_raw_response.create(
                model="text", input=conversation(), temperature=0, max_output_tokens=64, **request
            )
            return raw.parse(), dict(raw.headers)


async def test_auto_goes_on_within_a_real_window(small_server: ServerProcess) -> None:
    response, headers = await _create(small_server.base_url, truncation="auto")
    assert response.status == "completed" and response.truncation == "auto"
    assert response.output_text == TEXT_SENTENCE
    assert response.usage is not None and response.usage.input_tokens <= SMALL_WINDOW - 64
    assert 0 < int(headers["x-wirebridge-truncated-items"]) < len(conversation())


async def test_disabled_is_the_context_length_error(small_server: ServerProcess) -> None:
    with pytest.raises(openai.BadRequestError) as caught:
        await _create(small_server.base_url)
    assert caught.value.code == "context_length_exceeded"
