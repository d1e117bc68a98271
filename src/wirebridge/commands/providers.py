"""`wirebridge providers`: list built-in and configured providers, and whether keys are set.

Reads the config with `load_config` ($WIREBRIDGE_HOME/config.toml, or `--config`). A table on a
terminal, plain aligned columns when piped, one JSON document with `--json`. Never prints a
secret: keys are shown as the variable's name and whether it is set; header values whose names
mark credentials and secret-looking query values are redacted.
"""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path
from typing import Any

import click

from ..errors import ConfigError
from ..provider import BUILTIN_PROVIDERS, Config, Provider, load_config
from ..redact import redact_headers, redact_params
from .output import fail

COLUMNS = ("NAME", "BASE URL", "API KEY", "SOURCE")


def _key_status(provider: Provider) -> tuple[str, bool | None]:
    """How the provider authenticates, for display, and whether that key is present."""
    if provider.env_key:
        present = bool(os.environ.get(provider.env_key, "").strip())
        return f"{provider.env_key} ({'set' if present else 'not set'})", present
    if provider.experimental_bearer_token:
        return "token in config", True
    return "-", None


def _source(config: Config, name: str) -> str:
    if config.providers[name] is BUILTIN_PROVIDERS.get(name):
        return "built-in"
    return str(config.path) if config.path else "config"


def describe(config: Config, name: str) -> dict[str, Any]:
    """One provider as JSON: its options, with secrets left out."""
    provider = config.providers[name]
    key, present = _key_status(provider)
    params = redact_params(provider.query_params or {})
    return {
        "name": name,
        "base_url": provider.base_url,
        "default": name == config.default_provider,
        "source": _source(config, name),
        "env_key": provider.env_key,
        "env_key_set": present if provider.env_key else None,
        "env_key_instructions": provider.env_key_instructions,
        "bearer_token_in_config": provider.experimental_bearer_token is not None,
        "query_params": params or None,
        "http_headers": redact_headers(dict(provider.http_headers or {})) or None,
        "env_http_headers": provider.env_http_headers,
        "request_max_retries": provider.request_max_retries,
        "stream_max_retries": provider.stream_max_retries,
        "stream_idle_timeout_ms": provider.stream_idle_timeout_ms,
        "developer_role": provider.developer_role,
        "reasoning_field": provider.reasoning_field,
        "include_usage": provider.include_usage,
        "think_tags": provider.think_tags,
        "auth": key,
    }


def ordered_names(config: Config) -> list[str]:
    """Built-ins in their documented order, then the config's own providers by name."""
    builtins = [n for n in BUILTIN_PROVIDERS if n in config.providers]
    return builtins + sorted(n for n in config.providers if n not in BUILTIN_PROVIDERS)


def _rows(config: Config) -> list[tuple[str, str, str, str]]:
    rows = []
    for name in ordered_names(config):
        provider = config.providers[name]
        marker = " *" if name == config.default_provider else ""
        rows.append(
            (name + marker, provider.base_url, _key_status(provider)[0], _source(config, name))
        )
    return rows


def _plain_table(rows: list[tuple[str, str, str, str]]) -> str:
    widths = [max(len(r[i]) for r in [COLUMNS, *rows]) for i in range(len(COLUMNS))]
    lines = [
        "  ".join(c.ljust(w) for c, w in zip(row, widths, strict=True)).rstrip()
        for row in [COLUMNS, *rows]
    ]
    return "\n".join(lines) + "\n"


def _rich_table(config: Config, rows: list[tuple[str, str, str, str]]) -> None:
    from rich.console import Console
    from rich.table import Table

    table = Table(title="wirebridge providers", caption="* default provider", title_justify="left")
    for column in COLUMNS:
        table.add_column(column, overflow="fold")
    for row in rows:
        style = "bold" if row[0].endswith(" *") else None
        table.add_row(*row, style=style)
    console = Console()
    console.print(table)
    where = str(config.path) if config.path else "no config file (built-ins only)"
    console.print(f"[dim]config: {where}[/dim]")


@click.command(name="providers")
@click.option(
    "--config",
    "config_path",
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    help="Config file (default: $WIREBRIDGE_HOME/config.toml).",
)
@click.option("--json", "as_json", is_flag=True, help="Print one JSON document.")
def command(config_path: Path | None, as_json: bool) -> None:
    """List built-in and configured providers (the default is marked *)."""
    try:
        config = load_config(config_path)
    except ConfigError as exc:
        fail(str(exc))
    if as_json:
        document = {
            "config": str(config.path) if config.path else None,
            "default_provider": config.default_provider,
            "default_model": config.default_model,
            "models": {
                name: {"provider": route.provider, "model": route.model}
                for name, route in sorted(config.routes.items())
            },
            "providers": [describe(config, name) for name in ordered_names(config)],
        }
        click.echo(json.dumps(document, indent=2))
    elif sys.stdout.isatty():
        _rich_table(config, _rows(config))
    else:
        click.echo(_plain_table(_rows(config)), nl=False)
