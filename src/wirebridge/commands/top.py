"""`wirebridge top`: a running bridge in the terminal, for operators who live there.

It polls the bridge's own ops endpoints, the JSON the web console reads
(`/console/api/overview`, a failed exchange for its reason) and `/metrics` when the bridge
serves it, and draws streams in flight (with how far each has got: events sent, output
tokens, tokens/s), per-provider rate, errors and TTFB, and recent failures with rich. `--once`
prints one snapshot and exits (for scripts). The rows come from `wirebridge.ops.top`, which
does no I/O; this module owns HTTP and drawing only.

The key is `--api-key` or `$WIREBRIDGE_API_KEY`, sent as a bearer token and never shown.
Exit codes: 0 ok (Ctrl-C is how `top` ends), 1 the bridge cannot be read (unreachable,
refused the key, console off: `error: <cause>` on one line), 2 usage.
"""

from __future__ import annotations

import time
from datetime import datetime

import click
import httpx
from rich.console import Console, Group, RenderableType
from rich.live import Live
from rich.markup import escape
from rich.table import Table
from rich.text import Text

from ..ops.top import (
    DEFAULT_WINDOW_S,
    Overview,
    Snapshot,
    TopError,
    Totals,
    failure_reason,
    failure_rows,
    parse_metrics,
    parse_overview,
    snapshot,
)
from .output import fail

DEFAULT_URL = "http://127.0.0.1:8787"  # `wirebridge serve`'s default address
KEY_VAR = "WIREBRIDGE_API_KEY"
OVERVIEW = "/console/api/overview"
REQUEST_TIMEOUT_S = 5.0
REASONS_KEPT = 200  # failure reasons remembered between polls (a sealed exchange never changes)
COUNTED = "~"  # marks output tokens counted from deltas, not reported by the upstream


class BridgeError(Exception):
    """The bridge cannot be read; the message is the one line shown."""


class RefusedError(BridgeError):
    """A 401: polling again will not help, so even a running `top` stops."""


class Bridge:
    """The ops endpoints of one bridge, over one HTTP client."""

    def __init__(self, url: str, api_key: str | None, timeout_s: float = REQUEST_TIMEOUT_S):
        self.url = bridge_root(url)
        self.has_key = bool(api_key)
        headers = {"Authorization": f"Bearer {api_key}"} if api_key else {}
        self.http = httpx.Client(base_url=self.url, headers=headers, timeout=timeout_s)
        self.metrics_served = True  # until the bridge says it is off
        self.reasons: dict[str, str] = {}

    def close(self) -> None:
        self.http.close()

    def _get(self, path: str) -> httpx.Response:
        try:
            response = self.http.get(path)
        except httpx.TimeoutException:
            raise BridgeError(f"the bridge at {self.url} did not answer in time") from None
        except httpx.TransportError as exc:
            raise BridgeError(
                f"cannot reach the bridge at {self.url} ({exc or type(exc).__name__}); "
                "is `wirebridge serve` running there?"
            ) from None
        if response.status_code == 401:
            hint = "refused the key" if self.has_key else f"needs a key (--api-key or ${KEY_VAR})"
            raise RefusedError(f"the bridge at {self.url} {hint}")
        return response

    def overview(self) -> Overview:
        response = self._get(OVERVIEW)
        if response.status_code == 404:
            raise BridgeError(
                f"{self.url} serves no console data (started with --no-console?); top reads it"
            )
        if response.status_code != 200:
            raise BridgeError(f"{self.url}{OVERVIEW} answered HTTP {response.status_code}")
        try:
            return parse_overview(response.content)
        except TopError as exc:
            raise BridgeError(f"{self.url} is not a wirebridge bridge? {exc}") from None

    def totals(self) -> Totals | None:
        """The /metrics counters; None when the bridge serves none (--no-metrics)."""
        if not self.metrics_served:
            return None
        response = self._get("/metrics")
        if response.status_code == 404:
            self.metrics_served = False
            return None
        if response.status_code != 200:
            return None
        try:
            return parse_metrics(response.text)
        except TopError:
            return None

    def reasons_for(self, overview: Overview) -> dict[str, str]:
        """Each shown failure's reason, read once from its sealed exchange."""
        for row in failure_rows(overview):
            if row.id not in self.reasons:
                response = self._get(f"/console/api/exchanges/{row.id}")
                found = response.status_code == 200
                self.reasons[row.id] = failure_reason(response.content) if found else ""
        while len(self.reasons) > REASONS_KEPT:
            del self.reasons[next(iter(self.reasons))]
        return self.reasons

    def snapshot(self) -> Snapshot:
        overview = self.overview()
        return snapshot(overview, self.totals(), self.reasons_for(overview), DEFAULT_WINDOW_S)


def bridge_root(url: str) -> str:
    """The bridge's root: what people paste is often its client base URL (`.../v1`)."""
    url = url.strip().rstrip("/")
    if url.endswith("/v1"):
        url = url[: -len("/v1")]
    if not url.startswith(("http://", "https://")):
        raise click.BadParameter(f"{url!r} is not an http(s) URL", param_hint="--url")
    return url


def _ms(value: float | None) -> str:
    if value is None:
        return "–"
    return f"{value / 1000:.2f} s" if value >= 1000 else f"{value:.0f} ms"


def _age(seconds: float) -> str:
    if seconds < 60:
        return f"{seconds:.1f} s"
    minutes, secs = divmod(int(seconds), 60)
    return f"{minutes}m{secs:02d}s"


def _count(value: int | None) -> str:
    return "–" if value is None else str(value)


def _tokens(value: int | None, counted: bool) -> str:
    """Output tokens so far; marked when counted from deltas rather than reported."""
    if value is None:
        return "–"
    return f"{COUNTED}{value:,}" if counted else f"{value:,}"


def render(shot: Snapshot, url: str, note: str = "") -> RenderableType:
    """The screen: a header line, then the three tables."""
    clock = datetime.fromtimestamp(shot.at).strftime("%H:%M:%S")
    header = Text.assemble(
        ("wirebridge top ", "bold"),
        f"{url}  {clock}  streams {len(shot.live)}",
        f"  capture {'on' if shot.capture else 'off'}",
    )
    if note:
        header.append(f"  {note}", style="bold red")

    live = Table(title="Streams in flight", title_justify="left")
    live.add_column("id")
    live.add_column("model")
    live.add_column("upstream")
    for name in ("age", "sent", "attempts", "events", "tokens", "tok/s"):
        live.add_column(name, justify="right")
    for row in shot.live:
        live.add_row(
            row.id,
            escape(row.model or "–"),
            escape(row.upstream or "–"),
            _age(row.age_s),
            f"{row.bytes_sent:,} B",
            str(row.attempts),
            f"{row.events:,}",
            _tokens(row.output_tokens, row.counted),
            "–" if row.tokens_per_s is None else f"{row.tokens_per_s:.1f}",
        )
    if not shot.live:
        live.add_row("[dim]no stream running[/]")
    elif any(row.counted for row in shot.live):
        live.caption = f"{COUNTED} output deltas counted: the upstream has reported no usage yet"
        live.caption_justify = "left"

    window = f"{shot.window_s:.0f} s"
    providers = Table(title=f"Providers (last {window})", title_justify="left")
    providers.add_column("provider")
    for name in ("req", "req/min", "errors", "ttfb p50", "ttfb p95", "live", "total", "up fail"):
        providers.add_column(name, justify="right")
    for p in shot.providers:
        providers.add_row(
            escape(p.provider),
            str(p.requests),
            f"{p.per_min:.1f}",
            f"[red]{p.errors}[/]" if p.errors else "0",
            _ms(p.ttfb_p50_ms),
            _ms(p.ttfb_p95_ms),
            str(p.live),
            _count(p.total),
            _count(p.upstream_failures),
        )
    if not shot.providers:
        providers.add_row("[dim]no request yet[/]")

    failures = Table(title="Recent failures", title_justify="left")
    for name in ("id", "at", "model", "upstream", "status", "outcome", "took", "reason"):
        failures.add_column(name, overflow="fold" if name == "reason" else "ellipsis")
    for f in shot.failures:
        failures.add_row(
            f.id,
            datetime.fromtimestamp(f.at).strftime("%H:%M:%S"),
            escape(f.model or "–"),
            escape(f.upstream or "–"),
            str(f.status),
            f.outcome,
            _ms(f.duration_ms),
            escape(f.reason or "–"),
        )
    if not shot.failures:
        failures.add_row("[dim]none[/]")
    return Group(header, live, providers, failures)


def watch(bridge: Bridge, console: Console, interval: float) -> None:
    """Redraw every `interval` until Ctrl-C; a bridge gone away is shown, and polled again."""
    shot = bridge.snapshot()  # the first read must work: a bad URL or key fails at once
    with Live(render(shot, bridge.url), console=console, auto_refresh=False) as live:
        while True:
            time.sleep(interval)
            note = ""
            try:
                shot = bridge.snapshot()
            except RefusedError:
                raise
            except BridgeError as exc:
                note = f"(stale: {exc})"
            live.update(render(shot, bridge.url, note), refresh=True)


@click.command(name="top")
@click.option(
    "--url",
    default=DEFAULT_URL,
    show_default=True,
    metavar="URL",
    help="The bridge (its root or its /v1 base URL).",
)
@click.option(
    "--api-key",
    envvar=KEY_VAR,
    metavar="KEY",
    help=f"One of the bridge's keys (default: ${KEY_VAR}); never shown.",
)
@click.option(
    "--interval",
    type=click.FloatRange(min=0.2),
    default=2.0,
    show_default=True,
    help="Seconds between polls.",
)
@click.option("--once", is_flag=True, help="Print one snapshot and exit.")
def command(url: str, api_key: str | None, interval: float, once: bool) -> None:
    """Show a running bridge: streams in flight, providers' rate, errors and TTFB, failures."""
    bridge = Bridge(url, api_key)
    console = Console(highlight=False)
    try:
        if once:
            console.print(render(bridge.snapshot(), bridge.url))
        else:
            watch(bridge, console, interval)
    except BridgeError as exc:
        fail(str(exc))
    except KeyboardInterrupt:
        pass  # how top ends
    finally:
        bridge.close()
