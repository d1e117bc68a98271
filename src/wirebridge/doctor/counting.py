"""Which `input_tokens` count a provider gets: exact, an estimate, or none. Pure: no I/O.

The runner counts the `stream` probe's own payload each way the provider could (its `tokenize`
option, the other server's tokenizer endpoints when that fails or is unset, its
`estimate_tokenizer`) and hands the answers here, with the `prompt_tokens` the `stream` probe's
usage reported. An exact count must equal that number: the endpoint answering is not enough.
A server that tokenizes though `tokenize` is unset settles the option, so `--write` turns exact
counts on; one whose table names an estimate is only told, as the two options are exclusive.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from ..provider import TOKENIZERS
from .finding import Finding, Setting

SERVERS = {"llamacpp": "llama.cpp (/apply-template + /tokenize)", "vllm": "vLLM (/tokenize)"}


@dataclass(frozen=True, slots=True)
class Counted:
    """One way of counting the probe payload: the tokens, or why there are none."""

    tokens: int | None = None
    error: str | None = None


@dataclass
class Counting:
    """What the runner learnt about counting, for `input_tokens_finding`."""

    tokenize: str | None  # the provider's option
    estimate_tokenizer: str | None  # the provider's option, as named in answers
    exact: dict[str, Counted] = field(default_factory=dict)  # tokenizer kind -> its answer
    estimate: Counted | None = None
    estimate_template: bool | None = None  # whether the estimate ran the model's chat template
    prompt_tokens: int | None = None  # the `stream` probe's usage, to check a count against

    def detected(self) -> str | None:
        """The first tokenizer kind whose count is right (or unverifiable: no usage came)."""
        for kind in TOKENIZERS:
            answer = self.exact.get(kind)
            if answer is not None and answer.tokens is not None and self.agrees(answer.tokens):
                return kind
        return None

    def agrees(self, tokens: int) -> bool:
        return self.prompt_tokens is None or tokens == self.prompt_tokens


def prompt_tokens(usage: dict[str, Any] | None) -> int | None:
    value = (usage or {}).get("prompt_tokens")
    return value if isinstance(value, int) and not isinstance(value, bool) else None


def _versus(c: Counting, tokens: int) -> str:
    if c.prompt_tokens is None:
        return f"{tokens} tokens for the stream probe (no usage came to check it against)"
    if tokens == c.prompt_tokens:
        return f"{tokens} tokens for the stream probe, its prompt_tokens exactly"
    return f"{tokens} tokens for the stream probe, whose prompt_tokens were {c.prompt_tokens}"


def _settle(kind: str, c: Counting) -> dict[str, Setting]:
    checked = "checked against prompt_tokens" if c.prompt_tokens is not None else "unchecked"
    return {"tokenize": Setting(kind, f"the upstream counts like {kind} ({checked})")}


def input_tokens_finding(c: Counting) -> Finding:
    """Exact (ok), an estimate or none (info), a better way missed (warn), broken (fail)."""
    found = c.detected()
    value: dict[str, Any] = {
        "count": "none",
        "tokenizer": None,
        "tokens": None,
        "prompt_tokens": c.prompt_tokens,
        "detected": found,
    }
    if c.tokenize is not None:
        value.update(count="exact", tokenizer=c.tokenize)
        answer = c.exact.get(c.tokenize, Counted(error="not tried"))
        value["tokens"] = answer.tokens
        if answer.tokens is None:
            summary = f"tokenize = {c.tokenize!r}, but {answer.error}: input_tokens will fail"
            if found is not None:
                summary += f"; the upstream counts like {found} (tokenize = {found!r})"
                return Finding("input_tokens", "fail", summary, value, _settle(found, c))
            return Finding("input_tokens", "fail", summary, value)
        if not c.agrees(answer.tokens):
            summary = f"exact count is off: {_versus(c, answer.tokens)}"
            if found is not None:
                summary += f"; {found}'s tokenizer agrees (tokenize = {found!r})"
                return Finding("input_tokens", "warn", summary, value, _settle(found, c))
            return Finding("input_tokens", "warn", summary, value)
        summary = f"exact, by {SERVERS[c.tokenize]}: {_versus(c, answer.tokens)}"
        return Finding("input_tokens", "ok", summary, value, _settle(c.tokenize, c))
    hint = (
        f"; the upstream counts like {found} exactly (tokenize = {found!r} instead)"
        if found is not None
        else ""
    )
    if c.estimate_tokenizer is not None:
        value.update(count="estimate", tokenizer=c.estimate_tokenizer)
        answer = c.estimate or Counted(error="not tried")
        value["tokens"] = answer.tokens
        if answer.tokens is None:
            summary = f"estimate_tokenizer {c.estimate_tokenizer!r} is unusable: {answer.error}"
            return Finding("input_tokens", "fail", summary + hint, value)
        how = "its chat template" if c.estimate_template else "no chat template: markup missed"
        value["chat_template"] = c.estimate_template
        summary = f"estimate with {c.estimate_tokenizer!r} ({how}): {_versus(c, answer.tokens)}"
        return Finding("input_tokens", "warn" if found else "info", summary + hint, value)
    if found is not None:
        tokens = c.exact[found].tokens
        value["tokens"] = tokens
        summary = (
            f"none (400 exact_count_unavailable), but the upstream counts like {found}: "
            f"{_versus(c, tokens or 0)} (tokenize = {found!r})"
        )
        return Finding("input_tokens", "warn", summary, value, _settle(found, c))
    summary = (
        "none: input_tokens answers 400 exact_count_unavailable (no llama.cpp or vLLM "
        "tokenizer here); estimate_tokenizer opts into an estimate"
    )
    return Finding("input_tokens", "info", summary, value)
