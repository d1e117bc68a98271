"""Editing a user's TOML config in place with tomlkit (their comments, order and other keys
kept): the steps `wirebridge codex` (catalog/codexconfig.py) and `wirebridge doctor --write`
(doctor/configfile.py) share, so both refuse the same broken files with the same words.
"""

from __future__ import annotations

import tomlkit
from tomlkit.exceptions import TOMLKitError
from tomlkit.items import InlineTable, Table

from .errors import ConfigError


def parse_for_edit(text: str, where: str) -> tomlkit.TOMLDocument:
    """`text` as an editable document; invalid TOML is refused and the file left untouched."""
    try:
        return tomlkit.parse(text)
    except TOMLKitError as exc:
        raise ConfigError(f"{where}: invalid TOML, not touched: {exc}") from exc


def model_providers(doc: tomlkit.TOMLDocument, where: str) -> Table | InlineTable:
    """The document's `model_providers` table, added (as `[model_providers.X]` headers, no bare
    `[model_providers]`) when missing."""
    providers = doc.get("model_providers")
    if providers is None:
        providers = tomlkit.table(is_super_table=True)
        doc.add("model_providers", providers)
    elif not isinstance(providers, Table | InlineTable):
        raise ConfigError(f"{where}: model_providers must be a table")
    return providers
