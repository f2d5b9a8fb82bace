"""How commands print lists and objects: tables, JSON lines, or Go templates.

Tables are plain aligned text as docker prints them (on a terminal, a bold header).
``--format json`` prints one JSON object per line (lists) as docker does; ``--format 'table
{{.A}}\\t{{.B}}'`` makes a table of chosen columns; any other format is a template applied to
each item.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Sequence
from typing import Any

import click

from servin.cli.tables import LabelText, column_header, print_rows_table, print_table

__all__ = ["LabelText", "document", "print_object", "print_objects", "print_rows", "unescape"]


def is_terminal() -> bool:
    """Whether stdout is a terminal."""
    return sys.stdout.isatty()


def print_rows(
    columns: Sequence[tuple[str, str]],
    rows: Sequence[dict[str, Any]],
    fmt: str | None,
    quiet_key: str | None = None,
    quiet: bool = False,
) -> None:
    """Print list items: ``columns`` are (header, field) pairs of the default table."""
    if quiet and quiet_key:
        for row in rows:
            click.echo(row[quiet_key])
        return
    if fmt == "json":
        for row in rows:
            click.echo(json.dumps(row, separators=(",", ":"), default=str))
        return
    if fmt:
        from servin.cli.gotemplate import Template  # only templates pay for the parser
    if fmt and not fmt.startswith("table"):
        template = Template(unescape(fmt))
        for row in rows:
            click.echo(template.render(row))
        return
    if fmt and fmt.startswith("table"):
        spec = unescape(fmt[len("table") :].strip())
        if spec:
            cells = spec.split("\t")
            headers = [column_header(cell, columns) for cell in cells]
            templates = [Template(cell) for cell in cells]
            table = [[t.render(row) for t in templates] for row in rows]
            print_table(headers, table)
            return
    print_rows_table(columns, rows)


def print_object(obj: Any, fmt: str | None) -> None:
    """Print one object (``inspect`` prints a JSON array of them without ``-f``)."""
    from servin.cli.gotemplate import Template  # only templates pay for the parser

    if fmt == "json":  # one line, as docker's info/version --format json
        click.echo(json.dumps(obj, separators=(",", ":"), default=str))
    elif fmt:
        click.echo(Template(unescape(fmt)).render(obj))
    else:
        click.echo(json.dumps(obj, indent=4, default=str))


def document(message: Any) -> dict[str, Any]:
    """The docker-shaped inspect document a daemon sends with an inspect answer."""
    if not getattr(message, "document", ""):
        from servin.errors import Unavailable

        raise Unavailable("the daemon sends no inspect document: upgrade the daemon")
    found: dict[str, Any] = json.loads(message.document)
    return found


def print_objects(objs: Sequence[Any], fmt: str | None) -> None:
    """``inspect`` output: a JSON array, or the template once per object."""
    from servin.cli.gotemplate import Template  # only templates pay for the parser

    if fmt and fmt != "json":
        template = Template(unescape(fmt))
        for obj in objs:
            click.echo(template.render(obj))
    else:
        click.echo(json.dumps(list(objs), indent=4, default=str))




def unescape(fmt: str) -> str:
    return fmt.replace("\\t", "\t").replace("\\n", "\n")
