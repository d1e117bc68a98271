"""The `wirebridge` command: a click group whose subcommands load on first use.

Each subcommand lives in its own module under `wirebridge.commands` and is imported only when
invoked, so `wirebridge exec` does not pay for the server stack. Exit codes: 0 ok, 1 failure (one
line naming the cause), 2 usage.
"""

from __future__ import annotations

import importlib

import click

from ._version import __version__

COMMANDS: dict[str, tuple[str, str]] = {
    "exec": ("wirebridge.commands.exec", "One turn against a provider, streamed to the terminal."),
    "replay": ("wirebridge.commands.replay", "Decode a captured Chat Completions SSE body."),
    "providers": ("wirebridge.commands.providers", "List built-in and configured providers."),
    "serve": ("wirebridge.commands.serve", "Serve /v1/responses in front of Chat upstreams."),
    "doctor": ("wirebridge.commands.doctor", "Probe an upstream's quirks; write its config."),
    "codex": ("wirebridge.commands.codex", "Set Codex CLI up against the bridge."),
    "top": ("wirebridge.commands.top", "Watch a running bridge: streams, providers, failures."),
}


class LazyGroup(click.Group):
    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted(COMMANDS)

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        spec = COMMANDS.get(cmd_name)
        if spec is None:
            return None
        module = importlib.import_module(spec[0])
        command: click.Command = module.command
        return command

    def format_commands(self, ctx: click.Context, formatter: click.HelpFormatter) -> None:
        rows = [(name, help_text) for name, (_, help_text) in sorted(COMMANDS.items())]
        with formatter.section("Commands"):
            formatter.write_dl(rows)


@click.group(cls=LazyGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="wirebridge")
def main() -> None:
    """wirebridge: the Responses API in front of Chat Completions model servers."""
