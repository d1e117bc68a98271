"""Every bad request of the docs' table, sent through a real bridge: the status, `code` and
`param` the docs promise, the OpenAI error shape, and nothing sent upstream."""

from __future__ import annotations

from pathlib import Path

import httpx
import pytest

from wirebridge.responses import BridgeSettings
from wirebridge.responses.testing import passthrough_config, running_bridge
from wirebridge.testing import Reply, ScriptedUpstream, text_body

from .bad_requests import CASES, KEY, MAX_BODY_BYTES, markdown

pytestmark = pytest.mark.anyio

SERVER_DOCS = Path(__file__).parent.parent / "docs" / "server.md"


async def test_each_bad_request_gets_the_documented_answer(upstream: ScriptedUpstream) -> None:
    upstream.push(Reply(text_body(["the one good request"])))
    settings = BridgeSettings(
        passthrough_config(upstream.base_url),
        api_keys=frozenset({KEY}),
        max_body_bytes=MAX_BODY_BYTES,
        offload_bytes=None,
    )
    wrong: list[str] = []
    async with running_bridge(settings) as bridge, httpx.AsyncClient(timeout=10) as http:
        for case in CASES:
            answer = await http.request(
                case.method,
                bridge.url + case.path,
                content=case.content(),
                headers={"Content-Type": "application/json", **case.headers},
            )
            try:
                error = answer.json().get("error") or {}
            except ValueError:
                error = {}
            got = (answer.status_code, error.get("code"), error.get("param"))
            if got != (case.status, case.code, case.param):
                wrong.append(f"{case.what}: got {got}: {error.get('message')}")
            elif set(error) != {"message", "type", "param", "code"} or not error["message"]:
                wrong.append(f"{case.what}: not the OpenAI error shape: {answer.text[:200]}")
        good = await http.post(
            f"{bridge.base_url}/responses",
            json={"model": "m", "input": "hi"},
            headers={"Authorization": f"Bearer {KEY}"},
        )
    assert not wrong, "\n".join(wrong)
    assert len(CASES) >= 30
    # Nothing bad reached the upstream; the server still answers a good request.
    assert good.status_code == 200 and len(upstream.requests) == 1


def test_the_docs_hold_the_same_table() -> None:
    docs = SERVER_DOCS.read_text()
    assert markdown() in docs, "docs/server.md differs: run `python -m tests.bad_requests`"
