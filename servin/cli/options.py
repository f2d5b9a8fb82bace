"""Options several commands share, spelled as docker spells them."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, TypeVar

import click

F = TypeVar("F", bound=Callable[..., Any])


def format_option(f: F) -> F:
    """``--format``: json, ``table ...`` or a Go template."""
    return click.option(
        "--format", "fmt", metavar="FORMAT", help="json, 'table {{.A}}\\t{{.B}}', or a Go template"
    )(f)


def filter_option(f: F) -> F:
    """``-f/--filter key=value`` (repeatable)."""
    return click.option(
        "-f",
        "--filter",
        "filters",
        multiple=True,
        metavar="KEY=VALUE",
        help="Filter output (repeatable)",
    )(f)


def parse_filters(values: tuple[str, ...]) -> list[Any]:
    """``key=value`` strings into servin.v1 Filter messages."""
    from servin.api.servin.v1 import common_pb2

    grouped: dict[str, list[str]] = {}
    for item in values:
        key, sep, value = item.partition("=")
        if not sep or not key:
            raise click.BadParameter(
                f"bad format of filter (expected name=value): {item!r}", param_hint="'--filter'"
            )
        grouped.setdefault(key, []).append(value)
    return [common_pb2.Filter(key=k, values=v) for k, v in grouped.items()]


def add_commands(
    group: click.Group, commands: tuple[tuple[click.Command, tuple[str, ...]], ...]
) -> None:
    """Register each command under each of its names (docker's aliases: ``ls`` and ``list``)."""
    for command, names in commands:
        for name in names:
            group.add_command(command, name)
