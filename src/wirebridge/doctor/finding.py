"""What doctor says: findings, the settings they settle, the recommendation, the diagnosis."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Literal

from .observe import ProbeResult

Status = Literal["ok", "info", "warn", "fail", "skip"]
OPTION_KEYS = ("developer_role", "reasoning_field", "include_usage", "think_tags")

FINDING_TITLES = {
    "streaming": "streaming",
    "done": "[DONE] sent",
    "finish_reasons": "finish_reason values",
    "include_usage": "stream_options.include_usage",
    "developer_role": "developer role",
    "reasoning": "reasoning",
    "tool_required": 'tool_choice "required"',
    "tool_parallel": "parallel tool calls",
    "tool_index": "tool-call index",
    "tool_id_repeated": "tool-call id per chunk",
    "tool_name_repeated": "tool name per chunk",
    "legacy_function_call": "legacy function_call",
    "tool_named": "named tool_choice",
    "replay": "reasoning replay (tool turn)",
    "latency": "latency (short answer)",
    "input_tokens": "input_tokens count",
}


@dataclass(frozen=True, slots=True)
class Setting:
    """One provider option's recommended value, and why."""

    value: Any
    reason: str


@dataclass(frozen=True, slots=True)
class Finding:
    key: str
    status: Status
    summary: str
    value: Any = None
    settles: Mapping[str, Setting] = field(default_factory=dict)  # option -> what it should be

    @property
    def title(self) -> str:
        return FINDING_TITLES[self.key]

    def to_json(self) -> dict[str, Any]:
        return {"status": self.status, "summary": self.summary, "value": self.value}


@dataclass
class Recommendation:
    """The `[model_providers.NAME]` keys doctor recommends, each with the reason why."""

    name: str
    table: dict[str, Any]
    reasons: dict[str, str] = field(default_factory=dict)
    undetermined: list[str] = field(default_factory=list)  # options no probe settled

    def to_json(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "table": self.table,
            "reasons": self.reasons,
            "undetermined": self.undetermined,
        }


@dataclass
class Diagnosis:
    provider: str
    base_url: str
    model: str
    findings: list[Finding]
    recommendation: Recommendation
    results: list[ProbeResult]

    @property
    def reachable(self) -> bool:
        """False only when not one request got an answer (connection refused, DNS, ...)."""
        return not self.results or not all(r.unreachable for r in self.results)

    @property
    def streaming(self) -> bool:
        return self.finding("streaming").status == "ok"

    def finding(self, key: str) -> Finding:
        for f in self.findings:
            if f.key == key:
                return f
        raise KeyError(key)
