"""How a diagnosis is shown: the findings table (rich), the recommended TOML, the JSON form.

Rendering only; the findings themselves come from `analysis.py`, which imports nothing from here
(the arrow runs one way). The TOML is built with tomlkit
so that each recommended key carries its reason as a trailing comment, the same text `--write`
puts in the user's config.
"""

from __future__ import annotations

from typing import Any

import tomlkit
from rich.console import Console
from rich.markup import escape
from rich.table import Table
from tomlkit.items import Item

from .analysis import Diagnosis, Recommendation, Status
from .probes import TITLES

STATUS_STYLE: dict[Status, str] = {
    "ok": "green",
    "info": "cyan",
    "warn": "yellow",
    "fail": "bold red",
    "skip": "dim",
}


def toml_item(value: Any, comment: str | None = None) -> Item:
    """A TOML value with its reason as a trailing `  # comment`."""
    item: Item = tomlkit.item(value)
    if comment:
        item.comment(comment)
        item.trivia.comment_ws = "  "
    return item


def provider_table(rec: Recommendation) -> tomlkit.items.Table:
    table = tomlkit.table()
    for key, value in rec.table.items():
        table.add(key, toml_item(value, rec.reasons.get(key)))
    return table


def render_toml(rec: Recommendation) -> str:
    """`[model_providers.NAME]` and its keys, ready to paste into config.toml."""
    doc = tomlkit.document()
    providers = tomlkit.table(is_super_table=True)
    providers.add(rec.name, provider_table(rec))
    doc.add("model_providers", providers)
    return tomlkit.dumps(doc)


def diagnosis_json(diagnosis: Diagnosis) -> dict[str, Any]:
    """The `--json` document: findings, the recommendation with its TOML text, each probe."""
    return {
        "provider": diagnosis.provider,
        "base_url": diagnosis.base_url,
        "model": diagnosis.model,
        "reachable": diagnosis.reachable,
        "findings": {f.key: f.to_json() for f in diagnosis.findings},
        "recommended": {
            **diagnosis.recommendation.to_json(),
            "toml": render_toml(diagnosis.recommendation),
        },
        "probes": [
            {
                "name": r.probe,
                "title": TITLES.get(r.probe, r.probe),
                "http_status": r.status,
                "answer": r.answer(),
                "elapsed_ms": round(r.elapsed_s * 1000),
            }
            for r in diagnosis.results
        ],
    }


def print_report(diagnosis: Diagnosis, console: Console) -> None:
    """The findings table, then the recommended TOML."""
    table = Table(
        title=f"wirebridge doctor: {diagnosis.provider} ({diagnosis.base_url}), "
        f"model {diagnosis.model}",
        title_justify="left",
        show_lines=False,
    )
    table.add_column("check", no_wrap=True)
    table.add_column("", no_wrap=True)
    table.add_column("finding")
    for finding in diagnosis.findings:
        style = STATUS_STYLE[finding.status]
        table.add_row(
            finding.title, f"[{style}]{finding.status}[/{style}]", escape(finding.summary)
        )
    console.print(table)
    if not diagnosis.streaming:
        console.print("No recommendation: streaming does not work, so nothing could be probed.")
        return
    console.print("\nRecommended provider table:\n")
    console.print(escape(render_toml(diagnosis.recommendation).rstrip("\n")), soft_wrap=True)
