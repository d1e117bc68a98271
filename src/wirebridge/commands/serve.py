"""`wirebridge serve`: the Responses API in front of Chat Completions upstreams.

With no options it listens on 127.0.0.1:8787 and forwards to Ollama at http://localhost:11434/v1
(or to what `~/.wirebridge/config.toml` says). `--upstream URL` is the one-line start: every
requested model name passes through unchanged to that Chat Completions base URL. Responses are
kept (for `previous_response_id` and `GET /v1/responses/ID`) in `$WIREBRIDGE_HOME/responses.db`
unless `--store URL` names another place (PostgreSQL to share state between bridges) or
`--no-store` makes the bridge stateless.

Safety: with `WIREBRIDGE_API_KEYS` set, every request needs one of those keys as a bearer token.
Without keys the server refuses to listen on anything but loopback, unless told
`--insecure-no-auth` (an open bridge spends the upstream's keys for anyone who reaches it).
"""

from __future__ import annotations

import logging
import os
import sys
from typing import Any

import click

from .._version import __version__
from ..errors import ConfigError
from ..ops.options import ops_options, ops_settings
from ..provider import Config, Provider, load_config
from ..responses.app import create_app
from ..responses.background import (
    DEFAULT_DETACH_GRACE_S,
    DEFAULT_LEASE_S,
    DEFAULT_POLL_S,
    DEFAULT_RETENTION_S,
    BackgroundSettings,
)
from ..responses.gate import parse_api_keys
from ..responses.logs import configure_logging
from ..responses.runner import (
    DEFAULT_GRACE_S,
    DEFAULT_HOST,
    DEFAULT_KEEP_ALIVE_S,
    DEFAULT_MAX_CONNECTIONS,
    DEFAULT_PORT,
    ServerLimits,
    is_loopback,
    run,
)
from ..responses.settings import (
    DEFAULT_BODY_TIMEOUT_S,
    DEFAULT_MAX_BODY_BYTES,
    DEFAULT_MAX_CONCURRENT_STREAMS,
    DEFAULT_OFFLOAD_BYTES,
    DEFAULT_STORE_WRITE_TIMEOUT_S,
    BridgeSettings,
)
from ..responses.socketwire import (
    DEFAULT_IDLE_S,
    DEFAULT_MAX_AGE_S,
    DEFAULT_MAX_SOCKETS,
    SocketSettings,
)
from ..responses.tenants import load_tenant_groups, tenant_warnings
from ..store import DEFAULT_TTL_SECONDS, parse_store_url

log = logging.getLogger("wirebridge.server")
UPSTREAM_PROVIDER = "upstream"


def build_config(
    config_file: str | None, upstream: str | None, upstream_env_key: str | None = None
) -> Config:
    """The config file (or built-ins), with `--upstream` as the default provider if given."""
    config = load_config(config_file)
    if upstream is None:
        if upstream_env_key:
            raise ConfigError("--upstream-env-key needs --upstream")
        return config
    if upstream.rstrip("/").endswith("/chat/completions"):
        raise ConfigError(
            f"--upstream takes the base URL, not the endpoint: drop '/chat/completions' "
            f"from {upstream!r} (e.g. http://localhost:11434/v1)"
        )
    provider = Provider(name=UPSTREAM_PROVIDER, base_url=upstream, env_key=upstream_env_key)
    providers = {**config.providers, UPSTREAM_PROVIDER: provider}
    # Route names from the file keep their providers; every other model name passes through.
    return Config(providers, UPSTREAM_PROVIDER, config.default_model, config.routes, config.path)


@click.command(name="serve")
@click.option("--host", default=DEFAULT_HOST, show_default=True, help="Address to listen on.")
@click.option("--port", default=DEFAULT_PORT, show_default=True, type=int, help="Port.")
@click.option(
    "--upstream",
    metavar="URL",
    help="A Chat Completions base URL (ending in /v1); model names pass through unchanged.",
)
@click.option(
    "--upstream-env-key",
    metavar="VAR",
    help="Environment variable holding the --upstream server's API key.",
)
@click.option(
    "--config",
    "config_file",
    metavar="FILE",
    type=click.Path(dir_okay=False),
    help="Codex-style TOML config (default: $WIREBRIDGE_HOME/config.toml if it exists).",
)
@click.option(
    "--store",
    metavar="URL",
    help="Where responses are kept (previous_response_id, GET /v1/responses/ID): "
    "sqlite:///FILE or postgresql://USER@HOST/DB. Default: $WIREBRIDGE_HOME/responses.db.",
)
@click.option("--no-store", is_flag=True, help="Keep no responses (a stateless bridge).")
@click.option(
    "--store-ttl",
    type=click.FloatRange(min=0),
    default=DEFAULT_TTL_SECONDS / 86400,
    show_default=True,
    help="Days a stored response is kept; 0 keeps them forever.",
)
@click.option(
    "--store-timeout",
    type=click.FloatRange(min=0, min_open=True),
    default=DEFAULT_STORE_WRITE_TIMEOUT_S,
    show_default=True,
    help="Seconds storing a response may take; past it the answer says store: false.",
)
@click.option(
    "--log-format",
    type=click.Choice(["text", "json"]),
    default="text",
    show_default=True,
    help="json: one object per line, for log shippers.",
)
@click.option("--log-level", type=click.Choice(["debug", "info", "warning"]), default="info")
@click.option(
    "--insecure-no-auth",
    is_flag=True,
    help="Allow listening beyond loopback without WIREBRIDGE_API_KEYS (anyone may use it).",
)
@click.option(
    "--max-body-bytes",
    type=click.IntRange(min=1),
    default=DEFAULT_MAX_BODY_BYTES,
    show_default=True,
    help="Larger request bodies are refused with 413.",
)
@click.option(
    "--max-concurrent-streams",
    type=click.IntRange(min=1),
    default=DEFAULT_MAX_CONCURRENT_STREAMS,
    show_default=True,
    help="Responses beyond this many at once are refused with 503.",
)
@click.option(
    "--body-timeout",
    type=click.FloatRange(min=0, min_open=True),
    default=DEFAULT_BODY_TIMEOUT_S,
    show_default=True,
    help="Seconds a request body may take to arrive; slower ones are refused with 408.",
)
@click.option(
    "--offload-bytes",
    type=click.IntRange(min=0),
    default=DEFAULT_OFFLOAD_BYTES,
    show_default=True,
    help="Request bodies this large or larger are parsed in a worker thread; 0: never.",
)
@click.option(
    "--max-connections",
    type=click.IntRange(min=1),
    default=DEFAULT_MAX_CONNECTIONS,
    show_default=True,
    help="Open connections at most; beyond it the server answers 503 at once.",
)
@click.option(
    "--keep-alive-timeout",
    type=click.IntRange(min=1),
    default=DEFAULT_KEEP_ALIVE_S,
    show_default=True,
    help="Seconds an idle kept-alive connection stays open.",
)
@click.option(
    "--ws-max-age",
    type=click.FloatRange(min=1),
    default=DEFAULT_MAX_AGE_S,
    show_default=True,
    help="Seconds a WebSocket on /v1/responses may live; then its next turn is answered "
    "websocket_connection_limit_reached (Codex reconnects).",
)
@click.option(
    "--ws-idle-timeout",
    type=click.FloatRange(min=0),
    default=DEFAULT_IDLE_S,
    show_default=True,
    help="Seconds a WebSocket may sit without a turn before it is closed (0: never).",
)
@click.option(
    "--max-websockets",
    type=click.IntRange(min=1),
    default=DEFAULT_MAX_SOCKETS,
    show_default=True,
    help="Open WebSockets at most; beyond it the upgrade is answered 503.",
)
@click.option(
    "--shutdown-grace",
    type=click.FloatRange(min=0),
    default=DEFAULT_GRACE_S,
    show_default=True,
    help="Seconds running streams may take to finish after SIGTERM.",
)
@click.option(
    "--reasoning-summary",
    type=click.Choice(["auto", "always", "never"]),
    default="auto",
    show_default=True,
    help="Also stream reasoning as a summary part (auto: when the request asks for a summary).",
)
@click.option(
    "--background-lease",
    type=click.FloatRange(min=1),
    default=DEFAULT_LEASE_S,
    show_default=True,
    help="Seconds after which a background run whose bridge stopped (kill -9) is marked failed.",
)
@click.option(
    "--background-retention",
    type=click.FloatRange(min=0),
    default=DEFAULT_RETENTION_S,
    show_default=True,
    help="Seconds a finished background run's event log stays resumable.",
)
@click.option(
    "--background-poll",
    type=click.FloatRange(min=0.01),
    default=DEFAULT_POLL_S,
    show_default=True,
    help="Seconds between reads of runs on other bridges (PostgreSQL notices come sooner).",
)
@click.option(
    "--resumable-streams/--no-resumable-streams",
    default=True,
    show_default=True,
    help="Log stored foreground streams so a client that lost its connection can resume them.",
)
@click.option(
    "--detach-grace",
    type=click.FloatRange(min=0),
    default=DEFAULT_DETACH_GRACE_S,
    show_default=True,
    help="Seconds a resumable stream whose client left goes on with nobody following it.",
)
@ops_options  # --metrics, --capture, --otel, ... (wirebridge.ops)
def command(
    host: str,
    port: int,
    upstream: str | None,
    upstream_env_key: str | None,
    config_file: str | None,
    store: str | None,
    no_store: bool,
    store_ttl: float,
    store_timeout: float,
    log_format: str,
    log_level: str,
    insecure_no_auth: bool,
    max_body_bytes: int,
    max_concurrent_streams: int,
    body_timeout: float,
    offload_bytes: int,
    max_connections: int,
    keep_alive_timeout: int,
    ws_max_age: float,
    ws_idle_timeout: float,
    max_websockets: int,
    shutdown_grace: float,
    reasoning_summary: str,
    background_lease: float,
    background_retention: float,
    background_poll: float,
    resumable_streams: bool,
    detach_grace: float,
    ops_options: dict[str, Any],
) -> None:
    """Serve /v1/responses in front of Chat Completions upstreams."""
    configure_logging(
        "json" if log_format == "json" else "text", getattr(logging, log_level.upper())
    )
    keys = parse_api_keys(os.environ.get("WIREBRIDGE_API_KEYS"))
    if not keys and not is_loopback(host):
        if not insecure_no_auth:
            raise click.UsageError(
                f"refusing to listen on {host} without authentication: set WIREBRIDGE_API_KEYS "
                "(comma-separated keys clients send as bearer tokens), listen on 127.0.0.1, or "
                "pass --insecure-no-auth if the network is trusted"
            )
        log.warning("listening on %s with no authentication (--insecure-no-auth)", host)
    if store and no_store:
        raise click.UsageError("--store and --no-store exclude each other")
    try:
        config = build_config(config_file, upstream, upstream_env_key)
        default = config.provider(config.default_provider)
        if not no_store:
            parse_store_url(store)  # a bad URL fails here, before the server starts
        tenant_groups = load_tenant_groups(config.path)
    except ConfigError as exc:
        raise click.ClickException(str(exc)) from None
    for warning in tenant_warnings(keys, tenant_groups):
        log.warning("%s", warning)
    settings = BridgeSettings(
        config,
        api_keys=keys,
        max_body_bytes=max_body_bytes,
        max_concurrent_streams=max_concurrent_streams,
        body_timeout_s=body_timeout,
        offload_bytes=offload_bytes or None,
        reasoning_summary=reasoning_summary,  # type: ignore[arg-type]
        store_at_startup=not no_store,
        store_url=store,
        store_ttl_s=store_ttl * 86400 if store_ttl > 0 else None,
        store_write_timeout_s=store_timeout,
        tenant_groups=tenant_groups,
        websocket=SocketSettings(
            max_age_s=ws_max_age,
            idle_s=ws_idle_timeout or None,
            max_sockets=max_websockets,
        ),
        ops=ops_settings(is_loopback(host), **ops_options),
        background=BackgroundSettings(
            lease_s=background_lease,
            retention_s=background_retention,
            drain_s=shutdown_grace,
            poll_s=background_poll,
            resumable_streams=resumable_streams,
            detach_grace_s=detach_grace,
        ),
    )
    log.info(
        "wirebridge %s: default provider %s (%s)%s%s",
        __version__,
        default.name,
        default.base_url,
        f", {len(config.routes)} routed model(s)" if config.routes else "",
        ", no response store" if no_store else "",
    )
    try:
        limits = ServerLimits(max_connections, keep_alive_timeout, ws_max_bytes=max_body_bytes)
        run(create_app(settings), host, port, grace_s=shutdown_grace, limits=limits)
    except OSError as exc:
        click.echo(f"wirebridge serve: cannot listen on {host}:{port}: {exc}", err=True)
        sys.exit(1)
