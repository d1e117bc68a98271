"""Model facts -> Codex model catalog entries (`model_catalog_json`, `{"models": [...]}`). Pure.

The fields are the ones Codex 0.171 requires of an entry (it rejects a catalog missing any),
set for a model behind the bridge: `apply_patch_tool_type = "freeform"` (the only value Codex
accepts, and what makes it send its `apply_patch` tool), the window the server really has, reasoning
levels only when the model is known to reason (Codex then sends `reasoning.effort`, which the
bridge forwards), image input only when the server says the model reads images, and a
tool-output truncation limit scaled to the window so one tool result cannot fill a small one.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import replace
from typing import Any

from .servers import ModelFacts

REASONING_LEVELS: list[dict[str, str]] = [
    {"effort": "low", "description": "Quick answers, little reasoning"},
    {"effort": "medium", "description": "The model's usual reasoning"},
    {"effort": "high", "description": "More reasoning for hard problems"},
]
DEFAULT_TRUNCATION_TOKENS = 10_000
MIN_TRUNCATION_TOKENS = 2_000
TRUNCATION_SHARE = 10  # a tool output may take at most a tenth of the window


def truncation_policy(context_window: int | None) -> dict[str, Any]:
    """How much of a tool's output Codex keeps: a tenth of the window, 2k to 10k tokens."""
    limit = DEFAULT_TRUNCATION_TOKENS
    if context_window:
        limit = max(MIN_TRUNCATION_TOKENS, min(limit, context_window // TRUNCATION_SHARE))
    return {"mode": "tokens", "limit": limit}


def catalog_entry(
    facts: ModelFacts, base_instructions: str, *, priority: int = 1
) -> dict[str, Any]:
    """One catalog entry for `facts.id`; unknown reasoning and images read as "no"."""
    entry: dict[str, Any] = {
        "slug": facts.id,
        "display_name": facts.id,
        "description": f"{facts.id} through wirebridge",
        "base_instructions": base_instructions,
        "apply_patch_tool_type": "freeform",
        "shell_type": "default",
        "visibility": "list",
        "supported_in_api": True,
        "priority": priority,
        "support_verbosity": False,
        "supported_reasoning_levels": list(REASONING_LEVELS) if facts.reasoning else [],
        "supports_reasoning_summaries": bool(facts.reasoning),
        "input_modalities": ["text", "image"] if facts.images else ["text"],
        "truncation_policy": truncation_policy(facts.context_window),
        "experimental_supported_tools": [],
    }
    if facts.reasoning:
        entry["default_reasoning_level"] = "medium"
    if facts.context_window:
        entry["context_window"] = facts.context_window
    return entry


def codex_catalog(
    models: Iterable[ModelFacts], instructions: Callable[[str], str]
) -> dict[str, Any]:
    """`{"models": [...]}`, one entry per model in order; `instructions(slug)` gives each its
    `base_instructions`."""
    return {
        "models": [
            catalog_entry(facts, instructions(facts.id), priority=i)
            for i, facts in enumerate(models, start=1)
        ]
    }


def settle_facts(
    models: Iterable[ModelFacts],
    doctor: Iterable[ModelFacts] = (),
    context_window: int | None = None,
) -> tuple[list[ModelFacts], list[str]]:
    """The facts to write: doctor's findings over the server's, `context_window` for models
    whose server did not say; and the ids still without a window."""
    found = {d.id: d for d in doctor}
    settled: list[ModelFacts] = []
    for facts in models:
        if facts.id in found:
            doc = found[facts.id]
            facts = replace(
                facts,
                reasoning=doc.reasoning if doc.reasoning is not None else facts.reasoning,
                images=doc.images if doc.images is not None else facts.images,
            )
        if facts.context_window is None and context_window is not None:
            facts = replace(facts, context_window=context_window, source="--context-window")
        settled.append(facts)
    return settled, [f.id for f in settled if f.context_window is None]
