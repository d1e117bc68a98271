"""`wirebridge doctor` says which input_tokens count a provider gets: exact, estimate or none.

Against the scripted upstream made to tokenize like llama.cpp or vLLM (its toy template and
tokenizer, with `prompt_tokens` in the usage of its answers to match), and a plain server.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from wirebridge.doctor import Diagnosis, diagnose, merge_provider
from wirebridge.provider import Provider
from wirebridge.testing import ScriptedUpstream
from wirebridge.testing.tokenizers import TokenizerKind, tokenizing_server
from wirebridge.testing.upstream import Reply, Script, SeenRequest

from . import doctor_profiles as profiles

pytestmark = pytest.mark.anyio


async def run(script: Script, **options: Any) -> tuple[Diagnosis, list[str]]:
    async with ScriptedUpstream(default=script) as up:
        provider = Provider(name="p", base_url=up.base_url, **options)
        diagnosis = await diagnose(provider, "m", timeout_s=5)
    tokenizer = [r.path for r in up.requests if not r.path.endswith("/chat/completions")]
    return diagnosis, tokenizer


def value(diagnosis: Diagnosis) -> dict[str, Any]:
    found: dict[str, Any] = diagnosis.finding("input_tokens").value
    return found


@pytest.mark.parametrize("kind", ["llamacpp", "vllm"])
async def test_exact_count_checked_against_the_runs_prompt_tokens(kind: TokenizerKind) -> None:
    diagnosis, asked = await run(tokenizing_server(kind), tokenize=kind)
    finding = diagnosis.finding("input_tokens")
    assert finding.status == "ok", finding.summary
    assert "its prompt_tokens exactly" in finding.summary
    assert value(diagnosis)["count"] == "exact" and value(diagnosis)["tokenizer"] == kind
    assert value(diagnosis)["tokens"] == value(diagnosis)["prompt_tokens"] > 0
    assert asked == (["/apply-template", "/tokenize"] if kind == "llamacpp" else ["/tokenize"])
    assert diagnosis.recommendation.table["tokenize"] == kind


@pytest.mark.parametrize("kind", ["llamacpp", "vllm"])
async def test_a_tokenizing_server_without_the_option_is_told_and_settled(
    kind: TokenizerKind,
) -> None:
    diagnosis, _ = await run(tokenizing_server(kind))
    finding = diagnosis.finding("input_tokens")
    assert finding.status == "warn"
    assert "none (400 exact_count_unavailable)" in finding.summary
    assert value(diagnosis)["detected"] == kind
    assert diagnosis.recommendation.table["tokenize"] == kind
    written = merge_provider("", diagnosis.recommendation)
    assert f'tokenize = "{kind}"  # the upstream counts like {kind}' in written


async def test_the_wrong_tokenizer_fails_and_the_right_one_is_found() -> None:
    diagnosis, asked = await run(tokenizing_server("llamacpp"), tokenize="vllm")
    finding = diagnosis.finding("input_tokens")
    assert finding.status == "fail"
    assert finding.summary.startswith("tokenize = 'vllm', but its tokenizer endpoints do not")
    assert "counts like llamacpp" in finding.summary
    assert asked == ["/tokenize", "/apply-template", "/tokenize"]
    assert diagnosis.recommendation.table["tokenize"] == "llamacpp"


async def test_a_count_that_differs_from_the_run_is_a_warning() -> None:
    server = tokenizing_server("vllm")

    def off_by_one(request: SeenRequest) -> Reply:
        reply = server(request)
        if request.path == "/tokenize":  # one token fewer than the run is charged
            body = json.loads(reply.body)
            body["count"] -= 1
            return Reply(json.dumps(body).encode(), content_type="application/json")
        return reply

    diagnosis, _ = await run(off_by_one, tokenize="vllm")
    finding = diagnosis.finding("input_tokens")
    assert finding.status == "warn"
    assert finding.summary.startswith("exact count is off")
    assert value(diagnosis)["tokens"] == value(diagnosis)["prompt_tokens"] - 1
    assert "tokenize" not in diagnosis.recommendation.table


async def test_plain_server_gets_none_and_no_option() -> None:
    diagnosis, asked = await run(profiles.script(profiles.STANDARD))
    finding = diagnosis.finding("input_tokens")
    assert (finding.status, value(diagnosis)["count"]) == ("info", "none")
    assert "estimate_tokenizer opts into an estimate" in finding.summary
    assert asked == ["/apply-template", "/tokenize"]
    assert "tokenize" not in diagnosis.recommendation.table


async def test_estimate_is_reported_with_its_tokenizer(tmp_path: Path) -> None:
    pytest.importorskip("tokenizers", reason="the `estimate` extra is not installed")
    from tokenizers import Tokenizer
    from tokenizers.models import WordLevel
    from tokenizers.pre_tokenizers import Whitespace

    tokenizer = Tokenizer(WordLevel({"[UNK]": 0}, unk_token="[UNK]"))
    tokenizer.pre_tokenizer = Whitespace()  # type: ignore[assignment]
    (tmp_path / "words").mkdir()
    tokenizer.save(str(tmp_path / "words" / "tokenizer.json"))
    folder = str(tmp_path / "words")

    diagnosis, _ = await run(profiles.script(profiles.STANDARD), estimate_tokenizer=folder)
    finding = diagnosis.finding("input_tokens")
    assert finding.status == "info" and finding.summary.startswith(
        "estimate with 'words' (no chat template: markup missed): "
    )
    assert value(diagnosis)["count"] == "estimate" and value(diagnosis)["tokens"] > 0

    missing = str(tmp_path / "nowhere")
    diagnosis, _ = await run(profiles.script(profiles.STANDARD), estimate_tokenizer=missing)
    assert diagnosis.finding("input_tokens").status == "fail"
    assert "cannot load the tokenizer" in diagnosis.finding("input_tokens").summary

    # an estimate where the upstream could count exactly: told, not settled (exclusive options)
    diagnosis, _ = await run(tokenizing_server("llamacpp"), estimate_tokenizer=folder)
    assert diagnosis.finding("input_tokens").status == "warn"
    assert "tokenize = 'llamacpp' instead" in diagnosis.finding("input_tokens").summary
    assert "tokenize" not in diagnosis.recommendation.table
