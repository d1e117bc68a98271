"""`wirebridge doctor`: probe an upstream's quirks, print findings and the provider TOML.

The command is a shell over `wirebridge.doctor`: it resolves the provider (config, built-in, or
`--base-url`), runs the battery with a progress line per probe on stderr, prints the table (or
JSON) on stdout and, with `--write`, merges the recommended table into the config file. Exit
codes: 0 diagnosed (whatever the findings), 1 the upstream was unreachable, the configuration is
unusable, or `--write` could not write (`error: <cause>` on stderr, as every command); 2 usage.
"""

from __future__ import annotations

import json
from pathlib import Path

import anyio
import click
from rich.console import Console

from ..doctor import diagnose, diagnosis_json, print_report, write_provider
from ..doctor.observe import ProbeResult
from ..doctor.probes import DEFAULT_MAX_TOKENS, Probe
from ..doctor.runner import DEFAULT_TIMEOUT_S
from ..errors import ConfigError
from ..ops.findings import save_findings
from ..provider import Config, Provider, default_config_path, load_config, parse_config
from .output import fail

DEFAULT_NAME = "local"  # the table name for a bare --base-url


def load(config_path: Path | None, *, write: bool) -> Config:
    """The config; with --write a named file that does not exist yet is an empty config."""
    if config_path is not None and write and not config_path.exists():
        return parse_config({}, None)
    return load_config(config_path)


def resolve_provider(
    config: Config, name: str | None, base_url: str | None, env_key: str | None
) -> Provider:
    """--provider picks a configured or built-in provider; --base-url overrides or defines one."""
    if name is None and base_url is None:
        name = config.default_provider
    if name is not None and (name in config.providers or base_url is None):
        provider = config.provider(name)  # ConfigError listing the known names
        changes = {k: v for k, v in (("base_url", base_url), ("env_key", env_key)) if v}
        return provider.with_options(**changes) if changes else provider
    assert base_url is not None
    return Provider(name=name or DEFAULT_NAME, base_url=base_url, env_key=env_key)


def _progress(step: int, probe: Probe, result: ProbeResult | None) -> None:
    if result is None:
        click.echo(f"[{step}] {probe.name}: {probe.title} ... ", nl=False, err=True)
    else:
        click.echo(f"{result.answer()} ({result.elapsed_s:.2f} s)", err=True)


@click.command(name="doctor")
@click.option(
    "--provider", "provider_name", metavar="NAME", help="Configured or built-in provider."
)
@click.option("--base-url", metavar="URL", help="Probe this Chat Completions base URL.")
@click.option("--env-key", metavar="VAR", help="Environment variable holding the API key.")
@click.option("--model", "-m", metavar="MODEL", help="Model to probe (default: config's model).")
@click.option(
    "--config",
    "config_path",
    type=click.Path(dir_okay=False, path_type=Path),
    help="Config file (default: $WIREBRIDGE_HOME/config.toml).",
)
@click.option("--write", is_flag=True, help="Merge the recommended table into the config file.")
@click.option("--json", "as_json", is_flag=True, help="Print the findings as JSON.")
@click.option(
    "--timeout",
    type=click.FloatRange(min=0.1),
    default=DEFAULT_TIMEOUT_S,
    show_default=True,
    help="Seconds allowed for each probe.",
)
@click.option(
    "--max-tokens",
    type=click.IntRange(min=1),
    default=DEFAULT_MAX_TOKENS,
    show_default=True,
    help="max_tokens of each probe (raise it for models that reason at length).",
)
def command(
    provider_name: str | None,
    base_url: str | None,
    env_key: str | None,
    model: str | None,
    config_path: Path | None,
    write: bool,
    as_json: bool,
    timeout: float,
    max_tokens: int,
) -> None:
    """Probe an upstream's quirks with a few small requests and recommend its provider table."""
    try:
        config = load(config_path, write=write)
        provider = resolve_provider(config, provider_name, base_url, env_key)
        provider.api_key()  # a missing key variable fails here, before any request
    except ConfigError as exc:
        fail(str(exc))
    model = model or config.default_model
    if not model:
        raise click.UsageError("--model is required (no `model` in the config)")
    diagnosis = anyio.run(
        lambda: diagnose(
            provider, model, max_tokens=max_tokens, timeout_s=timeout, progress=_progress
        )
    )
    save_findings(diagnosis_json(diagnosis))  # the console shows the last findings
    if as_json:
        click.echo(json.dumps(diagnosis_json(diagnosis), indent=2, ensure_ascii=False))
    else:
        print_report(diagnosis, Console(soft_wrap=False, highlight=False))
    if not diagnosis.reachable:
        fail(diagnosis.finding("streaming").summary)
    if write:
        path = config_path or default_config_path()
        if not diagnosis.streaming:
            fail(f"not written to {path}: streaming does not work, nothing was determined")
        try:
            write_provider(path, diagnosis.recommendation)
        except ConfigError as exc:
            fail(str(exc))
        click.echo(f"wrote [model_providers.{provider.name}] to {path}", err=True)
