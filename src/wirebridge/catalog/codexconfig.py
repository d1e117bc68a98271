"""Point Codex at the bridge: merge our keys into `$CODEX_HOME/config.toml`, keeping the rest.

`merge_codex_config` is text in, text out (tomlkit keeps the user's comments, order and other
keys, as `wirebridge doctor --write` does); the command writes it with `files.write_text_atomic`,
so a failed write never leaves half a config. Two setups:
- custom provider (default): `[model_providers.wirebridge]` with `wire_api = "responses"`, and
  `model_provider = "wirebridge"`;
- Codex's built-in `openai` provider: `openai_base_url` at the bridge, `model_provider = "openai"`.
"""

from __future__ import annotations

import tomllib
from dataclasses import dataclass

import tomlkit
from tomlkit.items import InlineTable, Table

from ..errors import ConfigError
from ..tomledit import model_providers, parse_for_edit

PROVIDER = "wirebridge"
CATALOG_FILE = "wirebridge-models.json"


@dataclass(frozen=True, slots=True)
class CodexSetup:
    """What to write: where the bridge is, the model, and where Codex finds the catalog."""

    bridge_url: str  # .../v1
    model: str
    catalog_json: str | None = None  # model_catalog_json: a file written beside the config
    catalog_url: str | None = None  # model_catalog_url: the bridge serves the catalog
    env_key: str | None = None  # the variable holding the bridge's key (WIREBRIDGE_API_KEYS)
    builtin_openai: bool = False  # the `openai` provider with openai_base_url


def merge_codex_config(text: str, setup: CodexSetup, *, where: str = "config") -> str:
    """`text` with the setup's keys set; everything else (and the comments) as it was."""
    doc = parse_for_edit(text, where)
    _set(doc, "model", setup.model)
    if setup.catalog_json is not None:
        _set(doc, "model_catalog_json", setup.catalog_json)
    elif str(doc.get("model_catalog_json", "")).endswith(CATALOG_FILE):
        del doc["model_catalog_json"]  # ours, from an earlier file setup: the URL replaces it
    if setup.builtin_openai:
        _set(doc, "model_provider", "openai")
        _set(doc, "openai_base_url", setup.bridge_url)
    else:
        _set(doc, "model_provider", PROVIDER)
        _merge_table(doc, setup, where)
    merged = tomlkit.dumps(doc).rstrip() + "\n"
    try:
        tomllib.loads(merged)
    except tomllib.TOMLDecodeError as exc:  # pragma: no cover - tomlkit wrote it
        raise ConfigError(f"{where}: merged config is not valid TOML: {exc}") from exc
    return merged


def _set(container: tomlkit.TOMLDocument | Table | InlineTable, key: str, value: str) -> None:
    if container.get(key) != value:  # already right: keep the user's line and its comment
        container[key] = value


def _merge_table(doc: tomlkit.TOMLDocument, setup: CodexSetup, where: str) -> None:
    providers = model_providers(doc, where)
    table = providers.get(PROVIDER)
    if table is None:
        table = tomlkit.table()
        providers.add(PROVIDER, table)
    elif not isinstance(table, Table | InlineTable):
        raise ConfigError(f"{where}: model_providers.{PROVIDER} must be a table")
    _set(table, "name", PROVIDER)
    _set(table, "base_url", setup.bridge_url)
    _set(table, "wire_api", "responses")
    for key, value in (("env_key", setup.env_key), ("model_catalog_url", setup.catalog_url)):
        if value is not None:
            _set(table, key, value)
        elif key == "model_catalog_url" and key in table:
            del table[key]  # a catalog file now: Codex must not prefer a stale URL
