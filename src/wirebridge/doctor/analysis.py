"""Probe results -> findings and the recommended provider table. Pure: no I/O, no clock.

The checks (`checks.py`) each read the `ProbeResult`s (see `probes.py` for which exist) and
say one thing about the upstream. Four settle provider options (`include_usage`,
`developer_role`, `reasoning_field`, `think_tags`): each finding carries the options it settles,
and `recommend` builds the table from those alone, so no finding depends on being asked in some
order. An option no probe could settle keeps the provider's current value and says so.
`tokenize` is in the table only when the token-count check settled it (`counting.py`).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from ..provider import Provider
from .checks import Checks
from .counting import Counting, input_tokens_finding
from .finding import (
    FINDING_TITLES,
    OPTION_KEYS,
    Diagnosis,
    Finding,
    Recommendation,
    Setting,
    Status,
)
from .observe import ProbeResult

__all__ = [
    "FINDING_TITLES",
    "OPTION_KEYS",
    "Diagnosis",
    "Finding",
    "Recommendation",
    "Setting",
    "Status",
    "analyse",
    "recommend",
]


def analyse(
    results: Mapping[str, ProbeResult],
    provider: Provider,
    model: str,
    counting: Counting | None = None,
) -> Diagnosis:
    """The findings and the recommended table for one doctor run (and how it counts tokens)."""
    a = Checks(dict(results))
    findings = [
        a.streaming(),
        a.done(),
        a.finish_reasons(),
        a.include_usage(),
        a.developer_role(),
        a.reasoning(),
        a.tool_required(),
        a.tool_parallel(),
        *a.tool_shape(),
        a.tool_named(),
        a.replay(),
        a.latency(),
    ]
    if counting is not None:
        findings.append(input_tokens_finding(counting))
    return Diagnosis(
        provider.name,
        provider.base_url,
        model,
        findings,
        recommend(provider, findings),
        list(results.values()),
    )


def recommend(provider: Provider, findings: Iterable[Finding]) -> Recommendation:
    """The table from the options the findings settle; the provider's value for the rest.

    Built only from what the findings carry, so their order does not matter; two findings that
    settle one option differently are a bug, not a tie to break.
    """
    settled: dict[str, Setting] = {}
    for finding in findings:
        for option, setting in finding.settles.items():
            if settled.setdefault(option, setting) != setting:
                raise ValueError(f"{option} settled twice: {settled[option]} and {setting}")
    table: dict[str, Any] = {"base_url": provider.base_url}
    if provider.env_key:
        table["env_key"] = provider.env_key
    reasons: dict[str, str] = {}
    undetermined = []
    for option in OPTION_KEYS:
        if option in settled:
            table[option] = settled[option].value
            reasons[option] = settled[option].reason
        else:
            table[option] = getattr(provider, option)
            reasons[option] = "not determined; current value kept"
            undetermined.append(option)
    for option, setting in settled.items():
        if option not in OPTION_KEYS:  # settled only where it was found: `tokenize`
            table[option] = setting.value
            reasons[option] = setting.reason
    return Recommendation(provider.name, table, reasons, undetermined)
