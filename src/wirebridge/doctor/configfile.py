"""`--write`: merge the recommended provider table into the user's config, keeping the rest.

`merge_provider` is text in, text out (tomlkit keeps comments, order and formatting): only the
keys doctor recommends are set, and a key whose value is already right is left untouched with
its own comment. In a table that exists, options no probe settled are not written; a new table
gets them all, since it replaces a built-in provider of the same name and must carry its values.
The result is checked with the same loader `serve` uses before anything is written, and the
file is replaced atomically, so a failed write never leaves half a config.
"""

from __future__ import annotations

import tomllib
from pathlib import Path

import tomlkit
from tomlkit.items import InlineTable, Table

from ..errors import ConfigError
from ..files import write_text_atomic
from ..provider import parse_config
from ..tomledit import model_providers, parse_for_edit
from .analysis import Recommendation
from .report import provider_table, toml_item


def merge_provider(text: str, rec: Recommendation, *, where: str = "config") -> str:
    """`text` with `[model_providers.NAME]` holding the recommended keys."""
    doc = parse_for_edit(text, where)
    providers = model_providers(doc, where)
    current = providers.get(rec.name)
    if current is None:
        table = provider_table(rec)
        if isinstance(providers, Table):
            table.add(tomlkit.nl())  # a blank line before whatever table follows
        providers.add(rec.name, table)
    elif not isinstance(current, Table | InlineTable):
        raise ConfigError(f"{where}: model_providers.{rec.name} must be a table")
    else:
        for key, value in rec.table.items():
            if key in rec.undetermined:
                continue  # no probe settled it: the user's table (or the default) stands
            if key in current and current[key] == value:
                continue  # already right: keep the user's line and comment
            current[key] = toml_item(value, rec.reasons.get(key))
    merged = tomlkit.dumps(doc).rstrip() + "\n"  # the table's closing blank line, at the end
    try:
        parse_config(tomllib.loads(merged))  # never write what `serve` would refuse
    except tomllib.TOMLDecodeError as exc:  # pragma: no cover - tomlkit wrote it
        raise ConfigError(f"{where}: merged config is not valid TOML: {exc}") from exc
    return merged


def write_provider(path: Path, rec: Recommendation) -> str:
    """Merge into the file at `path` (created if missing); returns the new text."""
    try:
        text = path.read_text(encoding="utf-8") if path.exists() else ""
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(f"cannot read {path}: {exc}") from exc
    merged = merge_provider(text, rec, where=str(path))
    write_text_atomic(path, merged)
    return merged
