"""Commands over several names, docker's way: every name is tried, the failures are told after
(each on stderr, the last one raised for the exit status)."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import click

from servin.cli.output import document, print_objects
from servin.errors import ServinError


def raise_failures(failed: Sequence[ServinError]) -> None:
    """Print every failure but the last as ``Error: ...`` on stderr, then raise the last."""
    if failed:
        for error in failed[:-1]:
            click.echo(f"Error: {error.message}", err=True)
        raise failed[-1]


def for_each(names: Sequence[str], call: Callable[[str], str]) -> None:
    """Run ``call(name)`` for every name and print what it returns; report every failure."""
    failed: list[ServinError] = []
    for name in names:
        try:
            click.echo(call(name))
        except ServinError as exc:
            failed.append(exc)
    raise_failures(failed)


def inspect_each(names: Sequence[str], inspect: Callable[[str], Any], fmt: str | None) -> None:
    """Print the documents of ``inspect(name)`` for every name that has one; as docker's
    inspect, the last error is raised after what was found is printed."""
    results: list[dict[str, Any]] = []
    error: ServinError | None = None
    for name in names:
        try:
            results.append(document(inspect(name)))
        except ServinError as exc:
            error = exc
    if results or error is None:
        print_objects(results, fmt)
    if error is not None:
        raise error
