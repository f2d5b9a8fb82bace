"""A Click group that imports a subcommand's module only when that subcommand runs.

``servin --help`` and ``servin ps`` must start in well under a quarter second; importing grpc,
rich and every command module up front would cost more than that.
"""

from __future__ import annotations

import importlib
import os

import click

from servin.cli.flagsyntax import DockerGroup

_COMPLETE_VAR = "_SERVIN_COMPLETE"  # set by the shell completion scripts


class LazyGroup(DockerGroup):
    """Subcommands given as ``name -> "module:attribute"``, plus aliases to other paths."""

    def __init__(
        self,
        *args: object,
        lazy: dict[str, str] | None = None,
        hidden_aliases: set[str] | None = None,
        **kwargs: object,
    ) -> None:
        super().__init__(*args, **kwargs)  # type: ignore[arg-type]  # click.Group's own params
        self.lazy = dict(lazy or {})
        self.hidden_aliases = set(hidden_aliases or ())

    def list_commands(self, ctx: click.Context) -> list[str]:
        names = set(super().list_commands(ctx)) | set(self.lazy)
        return sorted(n for n in names if n not in self.hidden_aliases)

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        if cmd_name in self.lazy:
            module_name, _, attr = self.lazy[cmd_name].partition(":")
            command = getattr(importlib.import_module(module_name), attr)
            if not isinstance(command, click.Command):
                raise TypeError(f"{self.lazy[cmd_name]} is not a click command")
            if _COMPLETE_VAR in os.environ:  # a shell is asking: give arguments live names
                from servin.cli.commands.completion import attach_completers

                attach_completers(command, self.name or "" if ctx.parent is not None else "")
            return command
        return super().get_command(ctx, cmd_name)

    def format_commands(self, ctx: click.Context, formatter: click.HelpFormatter) -> None:
        # Listing help must not import every module: use each entry's short help text.
        rows = []
        for name in self.list_commands(ctx):
            if name in self.lazy:
                text = COMMAND_HELP.get(self.lazy[name])
                if text is None:  # not registered with describe(): ask the command itself
                    command = self.get_command(ctx, name)
                    text = command.get_short_help_str(60) if command else ""
                rows.append((name, text))
            else:
                cmd = super().get_command(ctx, name)
                if cmd is not None and not cmd.hidden:
                    rows.append((name, cmd.get_short_help_str(60)))
        if rows:
            with formatter.section("Commands"):
                formatter.write_dl(rows)


# One-line help of lazily imported commands, so `--help` needs no imports.
COMMAND_HELP: dict[str, str] = {}


def describe(path: str, text: str) -> str:
    """Register the one-line help of a lazy command path and return the path."""
    COMMAND_HELP[path] = text
    return path
