"""`wirebridge codex`: set Codex CLI up against the bridge, with a catalog of the real windows.

Where the models and their windows come from, first that answers:
1. `--upstream URL`: that Chat Completions server, probed directly;
2. a running bridge at `--bridge-url` (its `GET /v1/models?client_version=` catalog);
3. the bridge's config (`--config`): each configured provider's upstream, probed.
Doctor's findings (`--doctor-json`, the output of `wirebridge doctor --json`) settle reasoning;
`--context-window` covers models whose server does not say. The prompt (`base_instructions`)
comes from the user's own Codex binary, read now, never from this package. Writes the catalog
beside Codex's config and merges our keys into `$CODEX_HOME/config.toml` (comments kept), or
with `--dry-run` prints both. Exit codes: 0 written, 1 failure (`error: <cause>`), 2 usage.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import anyio
import click
import httpx
from rich.console import Console
from rich.markup import escape
from rich.table import Table

from .._version import __version__
from ..catalog.bundled import CodexNotFound, bundled_catalog, instructions_of, nearest_entry
from ..catalog.codexconfig import CATALOG_FILE, CodexSetup, merge_codex_config
from ..catalog.directory import ModelDirectory
from ..catalog.entries import codex_catalog, settle_facts
from ..catalog.probe import probe_upstream
from ..catalog.servers import ModelFacts, parse_codex_catalog, parse_doctor_json
from ..errors import ConfigError
from ..files import write_text_atomic
from ..provider import Provider, load_config
from .output import fail

DEFAULT_BRIDGE_URL = "http://127.0.0.1:8787/v1"


def default_codex_home() -> Path:
    return Path(os.environ.get("CODEX_HOME") or "~/.codex").expanduser()


async def _from_bridge(bridge_url: str, env_key: str | None) -> list[ModelFacts]:
    """The running bridge's served catalog ([] when no bridge answers it)."""
    key = os.environ.get(env_key, "").strip() if env_key else ""
    headers = {"Authorization": f"Bearer {key}"} if key else {}
    url = bridge_url.rstrip("/") + "/models"
    try:
        async with httpx.AsyncClient(timeout=30.0) as http:
            response = await http.get(
                url, params={"client_version": f"wirebridge-{__version__}"}, headers=headers
            )
    except httpx.HTTPError:
        return []
    if response.status_code == 401:  # a bridge is there, but wants a key we did not send
        hint = f"the key in ${env_key} was refused" if key else "pass --env-key VAR"
        raise ConfigError(f"the bridge at {bridge_url} requires one of its API keys: {hint}")
    try:
        return parse_codex_catalog(response.json()) if response.status_code == 200 else []
    except ValueError:
        return []


async def gather(
    upstream: str | None, bridge_url: str, env_key: str | None, config_path: Path | None
) -> tuple[list[ModelFacts], str, list[str]]:
    """The models, where they were found, and the requests made (for a failure message)."""
    if upstream is not None:
        result = await probe_upstream(Provider(name="upstream", base_url=upstream))
        return result.models, upstream, result.steps
    served = await _from_bridge(bridge_url, env_key)
    if served:
        return served, f"the bridge at {bridge_url}", []
    config = load_config(config_path)
    directory = ModelDirectory(config)
    listed = await directory.listing(windows=True)
    steps = [step for answer in directory.answers() for step in answer.steps]
    where = str(config.path) if config.path else "the built-in defaults (no config file)"
    return [m.facts for m in listed], where, steps


def _doctor_facts(paths: tuple[Path, ...]) -> list[ModelFacts]:
    out: list[ModelFacts] = []
    for path in paths:
        try:
            facts = parse_doctor_json(json.loads(path.read_text(encoding="utf-8")))
        except (OSError, ValueError) as exc:
            fail(f"cannot read doctor result {path}: {exc}")
        if facts is None:
            fail(f"{path} is not the output of `wirebridge doctor --json` for a reachable server")
        out.append(facts)
    return out


@dataclass(frozen=True)
class Prompt:
    """Where each model's `base_instructions` come from: a file, or Codex's bundled entries."""

    origin: str
    own: str | None = None
    entries: list[dict[str, Any]] = field(default_factory=list)
    pick: str | None = None
    served: bool = False  # the bridge serves the catalog (model_catalog_url), prompt included

    def entry_for(self, slug: str) -> str:
        """Which bundled entry (or file) gives `slug` its prompt."""
        if self.served:
            return "the bridge's"
        return "--instructions" if self.own is not None else self._entry(slug)["slug"]

    def _entry(self, slug: str) -> dict[str, Any]:
        return nearest_entry(self.entries, self.pick or slug)

    def text(self, slug: str) -> str:
        if self.own is not None:
            return self.own
        text = instructions_of(self._entry(slug))
        assert text is not None  # nearest_entry only picks entries with instructions
        return text


def load_prompt(own: Path | None, codex: Path | None, pick: str | None) -> Prompt:
    if own is not None:
        try:
            return Prompt(f"instructions: {own}", own=own.read_text(encoding="utf-8"))
        except (OSError, UnicodeDecodeError) as exc:
            fail(f"cannot read --instructions {own}: {exc}")
    try:
        binary, entries = bundled_catalog(codex)
    except CodexNotFound as exc:
        fail(f"{exc} (its system prompt is read from it; or pass --instructions FILE)")
    if pick is not None and pick not in {e["slug"] for e in entries}:
        slugs = ", ".join(e["slug"] for e in entries)
        fail(f"--instructions-from {pick!r} is not in Codex's catalog; it has {slugs}")
    return Prompt(f"instructions: from the Codex binary at {binary}", None, entries, pick)


def _report(models: list[ModelFacts], where: str, prompt: Prompt, console: Console) -> None:
    table = Table(title=f"models from {escape(where)}", title_justify="left")
    for column in ("model", "context window", "from", "reasoning", "images", "prompt of"):
        table.add_column(column)
    for m in models:
        table.add_row(
            escape(m.id),
            f"{m.context_window:,}" if m.context_window else "?",
            escape(m.source),
            "yes" if m.reasoning else "no",
            "yes" if m.images else "no",
            escape(prompt.entry_for(m.id)),
        )
    console.print(table)


@click.command(name="codex")
@click.option(
    "--bridge-url",
    default=DEFAULT_BRIDGE_URL,
    show_default=True,
    metavar="URL",
    help="Where Codex reaches the bridge (its /v1 URL).",
)
@click.option("--upstream", metavar="URL", help="Probe this Chat Completions base URL directly.")
@click.option(
    "--config",
    "config_path",
    type=click.Path(dir_okay=False, path_type=Path),
    help="The bridge's config (default: $WIREBRIDGE_HOME/config.toml).",
)
@click.option("--model", "-m", metavar="NAME", help="Codex's model (default: config's, or first).")
@click.option(
    "--context-window",
    type=click.IntRange(min=1),
    metavar="N",
    help="Tokens, for models whose server does not report a window.",
)
@click.option(
    "--doctor-json",
    "doctor_json",
    multiple=True,
    metavar="FILE",
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    help="`wirebridge doctor --json` output: its reasoning finding (repeatable).",
)
@click.option(
    "--codex",
    "codex_path",
    type=click.Path(path_type=Path),
    metavar="PATH",
    help="The Codex binary to read the prompt from (default: codex on PATH).",
)
@click.option(
    "--instructions-from",
    metavar="SLUG",
    help="Take the prompt of this entry of Codex's catalog (default: the nearest).",
)
@click.option(
    "--instructions",
    "own_instructions",
    metavar="FILE",
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    help="Use this file as base_instructions instead of Codex's prompt.",
)
@click.option(
    "--codex-home",
    type=click.Path(file_okay=False, path_type=Path),
    metavar="DIR",
    help="Codex's folder (default: $CODEX_HOME, else ~/.codex).",
)
@click.option(
    "--env-key",
    metavar="VAR",
    help="Variable holding the bridge's key (when it runs with WIREBRIDGE_API_KEYS).",
)
@click.option(
    "--catalog-url",
    is_flag=True,
    help="Let Codex fetch the catalog from the bridge (needs --env-key); no file.",
)
@click.option(
    "--openai-provider",
    is_flag=True,
    help="Use Codex's built-in openai provider with openai_base_url at the bridge.",
)
@click.option("--dry-run", is_flag=True, help="Print what would be written; write nothing.")
def command(
    bridge_url: str,
    upstream: str | None,
    config_path: Path | None,
    model: str | None,
    context_window: int | None,
    doctor_json: tuple[Path, ...],
    codex_path: Path | None,
    instructions_from: str | None,
    own_instructions: Path | None,
    codex_home: Path | None,
    env_key: str | None,
    catalog_url: bool,
    openai_provider: bool,
    dry_run: bool,
) -> None:
    """Set Codex CLI up to use the bridge, with a model catalog of the real context windows."""
    if catalog_url and not env_key:
        raise click.UsageError("--catalog-url needs --env-key: Codex fetches it only with a key")
    if catalog_url and openai_provider:
        raise click.UsageError(
            "--catalog-url is a custom-provider setting; not with --openai-provider"
        )
    try:
        found, where, steps = anyio.run(gather, upstream, bridge_url, env_key, config_path)
    except ConfigError as exc:
        fail(str(exc))
    if not found:
        asked = "; ".join(steps) or "nothing answered"
        fail(f"no models found from {where} ({asked})")
    models, missing = settle_facts(found, _doctor_facts(doctor_json), context_window)
    if missing:
        asked = "; ".join(steps) or f"the catalog of {where}"
        unknown = f"no context window reported for {', '.join(missing)} ({asked})"
        if not catalog_url:
            fail(f"{unknown}; pass --context-window N (tokens)")
        click.echo(f"warning: {unknown}; Codex will assume its default window", err=True)
    if catalog_url:  # the bridge serves the entries, prompt included: nothing to read here
        prompt = Prompt("instructions: served by the bridge", served=True)
    else:
        prompt = load_prompt(own_instructions, codex_path, instructions_from)
    chosen = model or _default_model(config_path, upstream) or models[0].id
    if chosen not in {m.id for m in models}:
        fail(f"model {chosen!r} is not served; found {', '.join(m.id for m in models)}")
    console = Console(soft_wrap=False, highlight=False)
    _report(models, where, prompt, console)
    click.echo(prompt.origin, err=True)

    home = codex_home or default_codex_home()
    config_file = home / "config.toml"
    catalog_file = home / CATALOG_FILE
    setup = CodexSetup(
        bridge_url=bridge_url,
        model=chosen,
        catalog_json=None if catalog_url else str(catalog_file),
        catalog_url=bridge_url.rstrip("/") + "/models" if catalog_url else None,
        env_key=env_key,
        builtin_openai=openai_provider,
    )
    try:
        text = config_file.read_text(encoding="utf-8") if config_file.exists() else ""
        merged = merge_codex_config(text, setup, where=str(config_file))
    except (OSError, UnicodeDecodeError) as exc:
        fail(f"cannot read {config_file}: {exc}")
    except ConfigError as exc:
        fail(str(exc))
    catalog = {} if catalog_url else codex_catalog(models, prompt.text)
    if dry_run:
        _print_dry_run(console, config_file, merged, None if catalog_url else catalog_file, catalog)
        return
    try:
        if not catalog_url:
            write_text_atomic(catalog_file, json.dumps(catalog, indent=1, ensure_ascii=False))
            click.echo(f"wrote {len(models)} model(s) to {catalog_file}", err=True)
        write_text_atomic(config_file, merged)
    except ConfigError as exc:
        fail(str(exc))
    click.echo(f"updated {config_file} (model {chosen})", err=True)
    if openai_provider:
        click.echo(
            "next: log Codex in with a key the bridge accepts (any, if it runs without "
            "WIREBRIDGE_API_KEYS): codex login --with-api-key",
            err=True,
        )
    elif env_key:
        click.echo(f"next: export {env_key}=<one of the bridge's WIREBRIDGE_API_KEYS>", err=True)


def _default_model(config_path: Path | None, upstream: str | None) -> str | None:
    if upstream is not None:
        return None
    try:
        return load_config(config_path).default_model
    except ConfigError:
        return None


def _print_dry_run(
    console: Console,
    config_file: Path,
    merged: str,
    catalog_file: Path | None,
    catalog: dict[str, Any],
) -> None:
    """The config as it would be, and the catalog with each prompt shown as its length only."""
    click.echo(f"# would write {config_file}:")
    click.echo(merged)
    if catalog_file is None:
        return
    shown = {
        "models": [
            {**e, "base_instructions": f"<{len(e['base_instructions'])} characters from Codex>"}
            for e in catalog["models"]
        ]
    }
    click.echo(f"# would write {catalog_file}:")
    click.echo(json.dumps(shown, indent=1, ensure_ascii=False))
