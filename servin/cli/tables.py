"""Table rows and table printing shared by both CLI fronts (click's and the quick one).

Light on purpose (no click, no protobuf at module level): the quick front
(``servin.cli.quick``) imports it. Rows are built from objects typed by Protocols that both
the generated ``*_pb2`` messages and ``servin.client.quick.lite`` messages satisfy.
"""

from __future__ import annotations

import sys
import time

TYPE_CHECKING = False  # typing and collections stay out of the quick CLI's start-up
if TYPE_CHECKING:
    from collections.abc import Iterable, Mapping, Sequence
    from typing import Any, Protocol


class LabelText(str):
    """Labels as docker's list rows show them (``a=1,b=2``), still indexable by key in
    templates (``{{index .Labels "k"}}``, ``{{.Label "k"}}``)."""

    labels: dict[str, str]

    def __new__(cls, labels: dict[str, str]) -> LabelText:
        text = super().__new__(cls, ",".join(f"{k}={v}" for k, v in sorted(labels.items())))
        text.labels = dict(labels)
        return text

    def Label(self, key: str) -> str:
        """The value of one label ('' when absent), as ``{{.Label "key"}}``."""
        return self.labels.get(key, "")


def align(table: Sequence[Sequence[str]]) -> list[str]:
    """Rows of cells as lines: columns padded to their widest cell, three spaces apart (the
    first row is the header)."""
    widths = [max(len(row[i]) for row in table) for i in range(len(table[0]))]
    return ["   ".join(c.ljust(widths[i]) for i, c in enumerate(row)).rstrip() for row in table]


def column_header(cell: str, columns: Iterable[tuple[str, str]]) -> str:
    """A ``table`` format cell's column title: the header of a known field of ``columns``
    ((header, field) pairs), else the field's name (or the cell) in capitals, as docker."""
    stripped = cell.strip()
    for title, field in columns:
        if stripped == f"{{{{.{field}}}}}":
            return title
    if stripped.startswith("{{.") and stripped.endswith("}}"):
        return stripped[3:-2].upper()
    return stripped.upper()


def print_table(headers: Sequence[str], rows: Sequence[Sequence[str]]) -> None:
    """A table as docker prints it: plain aligned text, in a pipe and on a terminal alike; on
    a terminal that takes colour (``NO_COLOR`` unset, ``TERM`` not dumb) the header is bold."""
    out = align([headers, *rows])
    if _colour_allowed():
        out[0] = f"\x1b[1m{out[0]}\x1b[0m"
    sys.stdout.write("\n".join(out) + "\n")
    sys.stdout.flush()


def _colour_allowed() -> bool:
    """Whether stdout is a terminal that may get ANSI styling (https://no-color.org)."""
    import os

    return (sys.stdout.isatty() and not os.environ.get("NO_COLOR")
            and os.environ.get("TERM") != "dumb")


def print_rows_table(columns: Sequence[tuple[str, str]], rows: Sequence[Mapping[str, Any]]) -> None:
    """The default table of list rows: ``columns`` are (header, row field) pairs."""
    print_table(
        [h for h, _ in columns], [[str(row.get(f, "")) for _, f in columns] for row in rows]
    )


# --- ps -------------------------------------------------------------------------------------


if TYPE_CHECKING:  # the Protocols type the rows; creating them at run time costs

    class TimestampLike(Protocol):
        """google.protobuf.Timestamp's fields."""

        seconds: int
        nanos: int


    class PortLike(Protocol):
        """servin.v1.PortMapping's fields."""

        container_port: int
        protocol: str
        host_ip: str
        host_port: int


    class MountLike(Protocol):
        """The servin.v1.Mount fields a ps row shows."""

        name: str
        source: str


    class SummaryLike(Protocol):
        """The servin.v1.ContainerSummary fields a ps row shows."""

        id: str
        name: str
        image: str
        command: str
        state: str
        status: str
        size_rw: int
        size_root_fs: int

        @property
        def created(self) -> TimestampLike: ...
        @property
        def ports(self) -> Iterable[PortLike]: ...
        @property
        def labels(self) -> Mapping[str, str]: ...
        @property
        def mounts(self) -> Iterable[MountLike]: ...
        @property
        def networks(self) -> Iterable[str]: ...


def ps_columns(size: bool) -> list[tuple[str, str]]:
    """``ps``'s default table: (header, row field) pairs."""
    return [
        ("CONTAINER ID", "ID"),
        ("IMAGE", "Image"),
        ("COMMAND", "Command"),
        ("CREATED", "RunningFor"),
        ("STATUS", "Status"),
        ("PORTS", "Ports"),
        ("NAMES", "Names"),
        *([("SIZE", "Size")] if size else []),
    ]


def _ps_id(c: SummaryLike, no_trunc: bool) -> str:
    return c.id if no_trunc else c.id[:12]


def _ps_command(c: SummaryLike, no_trunc: bool) -> str:
    command = c.command if no_trunc or len(c.command) <= 20 else c.command[:19] + "…"
    return f'"{command}"'


def _ps_ports(c: SummaryLike) -> str:
    return ", ".join(
        f"{p.host_ip or '0.0.0.0'}:{p.host_port}->{p.container_port}/{p.protocol}"
        for p in c.ports
    )


def _ps_size(c: SummaryLike) -> str:
    from servin.humanize import human_size

    return f"{human_size(c.size_rw)} (virtual {human_size(c.size_root_fs)})"


def ps_cells(c: SummaryLike, no_trunc: bool, size: bool, now: float) -> list[str]:
    """The cells of ``ps``'s default table (``ps_columns``) for one container: the same
    values as ``ps_row``'s fields, without computing the fields the table does not show."""
    from servin.humanize import ago

    cells = [
        _ps_id(c, no_trunc),
        c.image,
        _ps_command(c, no_trunc),
        ago(c.created.seconds + c.created.nanos / 1e9, now),
        c.status,
        _ps_ports(c) if c.ports else "",
        c.name,
    ]
    if size:
        cells.append(_ps_size(c))
    return cells


def ps_row(c: SummaryLike, no_trunc: bool, now: float | None = None) -> dict[str, Any]:
    """One container as ``ps`` templates and ``--format json`` see it (docker's names)."""
    from servin.humanize import ago

    created = c.created.seconds + c.created.nanos / 1e9
    return {
        "ID": _ps_id(c, no_trunc),
        "Image": c.image,
        "Command": _ps_command(c, no_trunc),
        "CreatedAt": time.strftime("%Y-%m-%d %H:%M:%S %z %Z", time.localtime(created)),
        "RunningFor": ago(created, now),
        "Ports": _ps_ports(c),
        "State": c.state,
        "Status": c.status,
        "Size": _ps_size(c),
        "Names": c.name,
        "Labels": LabelText(dict(c.labels)),
        "Mounts": ",".join(m.name or m.source for m in c.mounts),
        "Networks": ",".join(c.networks),
    }
