"""`wirebridge exec [PROMPT]`: one turn against a provider, streamed as it arrives.

This module owns the command's I/O policy: where the prompt comes from (argument or stdin),
which provider and model serve it (flags, then `config.toml`: its routes, `model`,
`model_provider`), and how events are shown. stdout carries the answer only: plain text when
piped, with a spinner until the first token on a terminal; `--show-reasoning` adds the reasoning,
dimmed on a terminal and on stderr when piped; `--json` prints one `dump()`ed event per line.
Exit codes: 0 ok, 1 failure (one line on stderr naming the cause, no traceback), 2 usage,
130 interrupted.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import sys
from pathlib import Path
from typing import IO, Any

import anyio
import click

from ..errors import ConfigError, UnexpectedStatusError, WirebridgeError
from ..events import (
    Completed,
    Event,
    Incomplete,
    OutputItemDone,
    OutputTextDelta,
    ReasoningContentDelta,
    dump,
)
from ..items import CustomToolCall, FunctionCall
from ..prompt import Prompt
from ..provider import Config, Provider, load_config
from ..redact import redact_url
from ..upstream.client import Client
from .output import EXIT_INTERRUPTED, THINK_TAGS, fail, one_line


class Output:
    """Renders events: JSON lines, or the answer as text with optional reasoning.

    Text goes to stdout as it arrives (flushed per delta, so pipes see it live); the spinner
    and the dimmed reasoning are drawn only when stdout is a terminal.
    """

    def __init__(
        self,
        *,
        as_json: bool,
        show_reasoning: bool,
        stdout: IO[str] | None = None,
        stderr: IO[str] | None = None,
    ):
        self.as_json = as_json
        self.show_reasoning = show_reasoning
        self.stdout = stdout or sys.stdout
        self.stderr = stderr or sys.stderr
        self.tty = self.stdout.isatty()
        self._console: Any = None  # a rich Console, on a terminal only (imported lazily)
        self._status: Any = None
        self._line_open = False  # the last text written to stdout did not end with a newline
        self._in_reasoning = False
        self._answer_started = False

    # -- spinner ---------------------------------------------------------------------------------

    def start_spinner(self, text: str = "waiting for the model") -> None:
        if not self.tty or self.as_json:
            return
        from rich.console import Console

        self._console = Console(file=self.stdout, highlight=False)
        self._status = self._console.status(text, spinner="dots")
        self._status.start()

    def update_spinner(self, text: str) -> None:
        if self._status is not None:
            self._status.update(text)

    def stop_spinner(self) -> None:
        if self._status is not None:
            self._status.stop()
            self._status = None

    # -- events ----------------------------------------------------------------------------------

    def event(self, event: Event) -> None:
        if self.as_json:
            self.stop_spinner()
            self._write(self.stdout, json.dumps(dump(event), ensure_ascii=False) + "\n")
            return
        if isinstance(event, OutputTextDelta):
            self.stop_spinner()
            if self._in_reasoning:
                self._end_reasoning()
            self._answer_started = True
            self._write(self.stdout, event.delta)
            self._line_open = not event.delta.endswith("\n")
        elif isinstance(event, ReasoningContentDelta):
            if self.show_reasoning and not self._answer_started:
                self.stop_spinner()
                self._reasoning(event.delta)
        elif isinstance(event, OutputItemDone):
            item = event.item
            if isinstance(item, FunctionCall | CustomToolCall):
                self.stop_spinner()
                self.note(f"the model called {_call_summary(item)} (exec runs no tools)")
        elif isinstance(event, Incomplete):
            self.note(f"the answer was cut short ({event.reason})")
        elif isinstance(event, Completed):
            self.finish()

    def _reasoning(self, text: str) -> None:
        self._in_reasoning = True
        if self.tty:
            self._write(self.stdout, f"\x1b[2m{text}\x1b[0m")
        else:
            self._write(self.stderr, text)

    def _end_reasoning(self) -> None:
        self._in_reasoning = False
        self._write(self.stdout if self.tty else self.stderr, "\n\n" if self.tty else "\n")

    def note(self, message: str) -> None:
        self.end_line()
        self._write(self.stderr, f"note: {one_line(message)}\n")

    def end_line(self) -> None:
        """Close an open line of answer text, so what follows starts on its own line."""
        self.stop_spinner()
        if self._in_reasoning:
            self._end_reasoning()
        if self._line_open:
            self._write(self.stdout, "\n")
            self._line_open = False

    def finish(self) -> None:
        if not self.as_json:
            self.end_line()

    @staticmethod
    def _write(stream: IO[str], text: str) -> None:
        stream.write(text)
        stream.flush()


def _call_summary(item: FunctionCall | CustomToolCall) -> str:
    if isinstance(item, FunctionCall):
        name = f"{item.namespace}.{item.name}" if item.namespace else item.name
        return f"{name}({item.arguments})"
    return f"{item.name}({item.input!r})"


class _SpinnerLog(logging.Handler):
    """Shows the transport's retry warnings in the spinner, and nowhere else (no stray lines)."""

    def __init__(self, output: Output):
        super().__init__(logging.WARNING)
        self.output = output

    def emit(self, record: logging.LogRecord) -> None:
        with contextlib.suppress(Exception):
            self.output.update_spinner(f"waiting for the model ({one_line(record.getMessage())})")


def setup_logging(debug: bool, output: Output | None = None) -> None:
    logger = logging.getLogger("wirebridge")
    logger.propagate = False
    if debug:
        handler: logging.Handler = logging.StreamHandler(sys.stderr)
        handler.setFormatter(logging.Formatter("%(asctime)s %(name)s %(levelname)s %(message)s"))
        logger.setLevel(logging.DEBUG)
    elif output is not None:
        handler = _SpinnerLog(output)
        logger.setLevel(logging.WARNING)
    else:
        handler = logging.NullHandler()
    logger.addHandler(handler)


def resolve(
    config: Config,
    provider_name: str | None,
    base_url: str | None,
    model: str | None,
    think_tags: str | None,
) -> tuple[Provider, str]:
    """Flags over config: the provider and the upstream model name for this turn."""
    model = model or config.default_model
    if not model:
        raise click.UsageError("no model: pass --model NAME or set `model` in config.toml")
    if provider_name is not None:
        if provider_name not in config.providers:
            known = ", ".join(sorted(config.providers))
            raise click.BadParameter(
                f"unknown provider {provider_name!r}; known: {known}", param_hint="--provider"
            )
        provider = config.providers[provider_name]
    else:
        provider, model = config.route(model)
    changes: dict[str, Any] = {}
    if base_url is not None:
        changes["base_url"] = base_url
    if think_tags is not None:
        changes["think_tags"] = think_tags
    if changes:
        try:
            provider = provider.with_options(**changes)
        except ConfigError as exc:
            raise click.BadParameter(str(exc), param_hint="--base-url") from None
    return provider, model


def read_prompt(prompt: str | None) -> str:
    if prompt is None or prompt == "-":
        if sys.stdin is None or sys.stdin.isatty():
            raise click.UsageError("no prompt: pass PROMPT or pipe it on stdin")
        prompt = sys.stdin.read()
    if not prompt.strip():
        raise click.UsageError("the prompt is empty")
    return prompt


async def run_turn(client: Client, prompt: Prompt, output: Output) -> None:
    output.start_spinner()
    try:
        async with client, contextlib.aclosing(client.stream(prompt)) as events:
            async for event in events:
                output.event(event)
    finally:
        output.stop_spinner()


@click.command(name="exec")
@click.argument("prompt", required=False)
@click.option(
    "--provider", "provider_name", metavar="NAME", help="Built-in or configured provider."
)
@click.option("--base-url", metavar="URL", help="Override the provider's base_url.")
@click.option("--model", "-m", metavar="MODEL", help="Model name (default: config `model`).")
@click.option(
    "--config",
    "config_path",
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    help="Config file (default: $WIREBRIDGE_HOME/config.toml).",
)
@click.option("--instructions", "-i", metavar="TEXT", help="System instructions for the turn.")
@click.option("--max-output-tokens", type=click.IntRange(min=1), help="Cap the answer's length.")
@click.option("--think-tags", type=THINK_TAGS, help="Read inline <think> reasoning (rule D7).")
@click.option("--show-reasoning", is_flag=True, help="Show the reasoning, dimmed.")
@click.option("--json", "as_json", is_flag=True, help="Print one dumped event per line.")
@click.option("--debug", is_flag=True, help="Log HTTP traffic to stderr (keys redacted).")
def command(
    prompt: str | None,
    provider_name: str | None,
    base_url: str | None,
    model: str | None,
    config_path: Path | None,
    instructions: str | None,
    max_output_tokens: int | None,
    think_tags: str | None,
    show_reasoning: bool,
    as_json: bool,
    debug: bool,
) -> None:
    """One turn against a provider, streamed as it arrives.

    PROMPT is the user message; without it (or with -), the prompt is read from stdin.
    """
    try:
        config = load_config(config_path)
    except ConfigError as exc:
        fail(str(exc))
    provider, upstream_model = resolve(config, provider_name, base_url, model, think_tags)
    text = read_prompt(prompt)
    output = Output(as_json=as_json, show_reasoning=show_reasoning)
    setup_logging(debug, output)
    turn = Prompt(instructions, text, max_output_tokens=max_output_tokens)
    client = Client(provider, upstream_model)
    try:
        anyio.run(run_turn, client, turn, output)
    except UnexpectedStatusError as exc:
        output.end_line()
        fail(f"{exc} [POST {redact_url(provider.chat_url, provider.query_params)}]")
    except WirebridgeError as exc:
        output.end_line()
        fail(str(exc))
    except KeyboardInterrupt:
        output.end_line()
        fail("interrupted", EXIT_INTERRUPTED)
    except BrokenPipeError:
        _quiet_stdout()  # the reader went away (`| head`): stop quietly
    except Exception as exc:
        if debug:
            raise
        output.end_line()
        fail(f"internal error: {type(exc).__name__}: {exc} (run with --debug for a traceback)")


def _quiet_stdout() -> None:
    """After EPIPE, point stdout at /dev/null so the interpreter's final flush cannot fail."""
    with contextlib.suppress(OSError):
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
