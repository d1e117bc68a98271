"""`wirebridge serve`'s operations options, as one decorator: the command receives them as one
`ops: OpsSettings` argument (it needs `host`: /metrics is open without a key on loopback)."""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Any

import click

from .findings import findings_path
from .settings import DEFAULT_CAPTURE_BYTES, DEFAULT_RECENT, OpsSettings


def ops_settings(
    host_is_loopback: bool,
    *,
    metrics: bool = True,
    metrics_no_auth: bool = False,
    console: bool = True,
    console_recent: int = DEFAULT_RECENT,
    capture: bool = False,
    capture_bytes: int = DEFAULT_CAPTURE_BYTES,
    otel: bool = False,
) -> OpsSettings:
    tracer_provider = None
    if otel:
        from .tracing import otlp_provider

        try:
            tracer_provider = otlp_provider()
        except RuntimeError as exc:
            raise click.UsageError(str(exc)) from None
    return OpsSettings(
        metrics=metrics,
        metrics_open=host_is_loopback or metrics_no_auth,
        console=console,
        recent=console_recent,
        capture=capture,
        capture_bytes=capture_bytes,
        tracer_provider=tracer_provider,
        doctor_report=str(findings_path()),
    )


def ops_options(command: Callable[..., Any]) -> Callable[..., Any]:
    """Adds the options; the command gets `ops_options: dict` to pass to `ops_settings`."""
    names = ["metrics", "metrics_no_auth", "console", "console_recent", "capture"]
    names += ["capture_bytes", "otel"]

    @click.option("--metrics/--no-metrics", default=True, show_default=True, help="Serve /metrics.")
    @click.option(
        "--metrics-no-auth",
        is_flag=True,
        help="Serve /metrics without a key (it needs none anyway on a loopback address).",
    )
    @click.option(
        "--console/--no-console",
        default=True,
        show_default=True,
        help="Serve the web console at /console (its data needs a key when keys are set).",
    )
    @click.option(
        "--console-recent",
        type=click.IntRange(min=1),
        default=DEFAULT_RECENT,
        show_default=True,
        help="Exchanges the console keeps.",
    )
    @click.option(
        "--capture",
        is_flag=True,
        help="Keep the upstream's raw body of recent exchanges (bounded, secrets redacted): "
        "the console's replay files.",
    )
    @click.option(
        "--capture-bytes",
        type=click.IntRange(min=0),
        default=DEFAULT_CAPTURE_BYTES,
        show_default=True,
        help="Bytes kept of each part of an exchange.",
    )
    @click.option(
        "--otel",
        is_flag=True,
        help="Export OpenTelemetry traces over OTLP (OTEL_EXPORTER_OTLP_ENDPOINT; needs the "
        "otel extra).",
    )
    @functools.wraps(command)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        kwargs["ops_options"] = {name: kwargs.pop(name) for name in names}
        return command(*args, **kwargs)

    return wrapper
