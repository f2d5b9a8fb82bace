"""``stats`` rows and tables, shared by the click command, ``pod stats`` and the quick front.

Light on purpose (no click, no protobuf at import); typed against ``ContainerStatsLike``,
which the generated ``ContainerStats`` and the quick front's lite one both satisfy.
"""

from __future__ import annotations

from servin.cli.tables import align, column_header

TYPE_CHECKING = False  # typing and collections stay out of the quick CLI's start-up
if TYPE_CHECKING:
    from collections.abc import Sequence
    from typing import Protocol


if TYPE_CHECKING:  # a Protocol for mypy; creating it at run time costs typing

    class ContainerStatsLike(Protocol):
        """The fields of a ``ContainerStats`` message the rows show."""

        @property
        def id(self) -> str: ...
        @property
        def name(self) -> str: ...
        @property
        def cpu_percent(self) -> float: ...
        @property
        def memory_usage(self) -> int: ...
        @property
        def memory_limit(self) -> int: ...
        @property
        def memory_percent(self) -> float: ...
        @property
        def net_rx(self) -> int: ...
        @property
        def net_tx(self) -> int: ...
        @property
        def block_read(self) -> int: ...
        @property
        def block_write(self) -> int: ...
        @property
        def pids(self) -> int: ...


# The default table: (header, template field).
COLUMNS: list[tuple[str, str]] = [
    ("CONTAINER ID", "ID"),
    ("NAME", "Name"),
    ("CPU %", "CPUPerc"),
    ("MEM USAGE / LIMIT", "MemUsage"),
    ("MEM %", "MemPerc"),
    ("NET I/O", "NetIO"),
    ("BLOCK I/O", "BlockIO"),
    ("PIDS", "PIDs"),
]
# Headers of fields a ``table`` format may name that the default table does not show.
EXTRA_HEADERS = {"Container": "CONTAINER"}

def stats_row(s: ContainerStatsLike, container: str, no_trunc: bool) -> dict[str, str]:
    """The template fields of one ContainerStats message, formatted as docker formats them."""
    from servin.humanize import binary_size, human_size

    return {
        "Container": container,
        "ID": s.id if no_trunc else s.id[:12],
        "Name": s.name,
        "CPUPerc": f"{s.cpu_percent:.2f}%",
        "MemUsage": f"{binary_size(s.memory_usage)} / {binary_size(s.memory_limit)}",
        "MemPerc": f"{s.memory_percent:.2f}%",
        "NetIO": f"{human_size(s.net_rx)} / {human_size(s.net_tx)}",
        "BlockIO": f"{human_size(s.block_read)} / {human_size(s.block_write)}",
        "PIDs": str(s.pids),
    }


def as_given(stat: ContainerStatsLike, names: Sequence[str], no_trunc: bool) -> str:
    """``.Container``: the name or ID the user typed for this container, else its ID."""
    for text in names:
        bare = text.removeprefix("/")
        if stat.id.startswith(text) or stat.name == bare:
            return text
    return stat.id if no_trunc else stat.id[:12]


def render(rows: list[dict[str, str]], fmt: str | None) -> list[str]:
    """The lines of one frame: a table (default or ``table ...``), JSON lines or a template."""
    if not fmt:
        return align([[h for h, _ in COLUMNS], *([row[f] for _, f in COLUMNS] for row in rows)])
    fmt = fmt.replace("\\t", "\t").replace("\\n", "\n")
    if fmt == "json":
        import json

        return [json.dumps(row, separators=(",", ":"), sort_keys=True) for row in rows]
    from servin.cli.gotemplate import Template  # (templates only: the default table is light)

    if not fmt.startswith("table"):
        template = Template(fmt)
        return [template.render(row) for row in rows]
    spec = fmt[len("table") :].strip()
    if not spec:
        return render(rows, None)
    cells = spec.split("\t")
    headers = [header(cell) for cell in cells]
    templates = [Template(cell) for cell in cells]
    return align([headers, *([t.render(row) for t in templates] for row in rows)])


def header(cell: str) -> str:
    """A ``table`` format cell's column title: docker's for the known fields."""
    return column_header(cell, [*COLUMNS, *((h, f) for f, h in EXTRA_HEADERS.items())])
