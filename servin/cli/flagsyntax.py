"""docker's flag syntax on top of Click, for every command: ``-s=TERM``, ``-e=FOO=bar``,
``-it=false``, ``--rm=false``, and docker's answer to an unknown command.

docker's flag parser (pflag) takes the text after ``=`` as the value of a short option too, and
``=true``/``=false`` after any boolean flag, short or long. Click reads ``-s=TERM`` as the
value ``=TERM`` and refuses a value for a flag. ``normalize`` rewrites such tokens into Click's
spelling before Click parses them, knowing the command's own options, and only where Click
would read options (up to ``--``, and up to the first argument of a command that does not take
options after its arguments, such as ``run IMAGE CMD...``): a container's command line is
never touched.

``DockerGroup`` applies it to its own options and to those of every subcommand it runs; every
group of the CLI is one (a test walks the tree).
"""

from __future__ import annotations

from typing import Any

import click

_TRUE = {"1", "t", "true"}
_FALSE = {"0", "f", "false"}


class UnknownCommand(click.ClickException):
    """``servin pss``: docker exits 1 (not the 125 of a bad flag)."""

    exit_code = 1

    def show(self, file: Any = None) -> None:
        click.echo(f"Error: {self.message}", err=True)


def _flag_tokens(option: click.Option, name: str, value: str) -> list[str]:
    """``name=value`` for a boolean flag, as Click tokens."""
    lowered = value.lower()
    if lowered not in _TRUE | _FALSE:
        raise click.BadParameter(f"invalid boolean value {value!r} for {name}: use true or false",
                                 param_hint=f"'{name}'")
    wanted = lowered in _TRUE
    if name in option.secondary_opts:  # --no-pause=true means --no-pause
        wanted = not wanted
    if wanted:
        return [name if name in option.opts else option.opts[0]]
    if option.secondary_opts:
        return [option.secondary_opts[0]]
    if option.default is not True:
        return []  # false is the default: nothing to say
    raise click.BadParameter(f"{name} cannot be set to false here", param_hint=f"'{name}'")


def _is_flag(option: click.Option) -> bool:
    return bool(option.is_flag and not option.count)


def normalize(command: click.Command, args: list[str]) -> list[str]:
    """``args`` with docker's ``-X=VALUE`` and ``--flag=BOOL`` spelled as Click expects."""
    shorts: dict[str, click.Option] = {}
    longs: dict[str, click.Option] = {}
    for param in command.params:
        if isinstance(param, click.Option):
            for name in (*param.opts, *param.secondary_opts):
                (longs if name.startswith("--") else shorts)[name] = param
    interspersed = command.context_settings.get(
        "allow_interspersed_args", command.allow_interspersed_args)
    out: list[str] = []
    i = 0
    while i < len(args):
        token = args[i]
        i += 1
        if token == "--":
            out.append(token)
            out.extend(args[i:])
            break
        if not token.startswith("-") or token == "-":
            out.append(token)
            if not interspersed:
                out.extend(args[i:])
                break
            continue
        if token.startswith("--"):
            name, eq, value = token.partition("=")
            option = longs.get(name)
            if option is not None and eq and _is_flag(option):
                out.extend(_flag_tokens(option, name, value))
                continue
            out.append(token)
            if option is not None and not eq and not _is_flag(option) and i < len(args):
                out.append(args[i])  # its value, whatever it looks like
                i += 1
            continue
        # A cluster of short options: -i, -it, -s=TERM, -sTERM, -it=false, -e=A=B.
        j = 1
        while j < len(token):
            name = "-" + token[j]
            option = shorts.get(name)
            rest = token[j + 1:]
            if option is None:
                out.append("-" + token[j:])  # unknown (or help): Click reports it
                break
            if _is_flag(option):
                if rest.startswith("="):
                    out.extend(_flag_tokens(option, name, rest[1:]))
                    break
                out.append(name)
                j += 1
                continue
            if rest.startswith("="):
                out.extend([name, rest[1:]])
            elif rest:
                out.extend([name, rest])
            else:
                out.append(name)
                if i < len(args):
                    out.append(args[i])  # its value, whatever it looks like
                    i += 1
            break
    return out


class DockerGroup(click.Group):
    """A Click group with docker's flag syntax and docker's unknown-command exit code."""

    def parse_args(self, ctx: click.Context, args: list[str]) -> list[str]:
        return super().parse_args(ctx, normalize(self, args))

    def resolve_command(
        self, ctx: click.Context, args: list[str]
    ) -> tuple[str | None, click.Command | None, list[str]]:
        name = args[0] if args else ""
        command = self.get_command(ctx, name) if name else None
        if command is None and name and not name.startswith("-") \
                and not ctx.resilient_parsing:  # (shell completion asks quietly)
            raise UnknownCommand(f"unknown command: {ctx.command_path} {name}\n"
                                 f"Run '{ctx.command_path} --help' for more information")
        found, command, rest = super().resolve_command(ctx, args)
        if command is not None and not isinstance(command, DockerGroup):
            rest = normalize(command, rest)
        return found, command, rest
