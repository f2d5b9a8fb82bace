"""The console's frame (header, footer) and its container table: what is shown where, at
80x24 and 160x48, and that live figures repaint only the cells that changed."""

from __future__ import annotations

from typing import Any

from servin.api.servin.v1 import containers_pb2
from servin.tui import format as fmt
from servin.tui.chrome import HeaderFacts, info_line, tab_bar
from servin.tui.screens.containers import COLUMNS
from servin.tui.table import KeyedTable, fit_columns
from tests.tui.conftest import make_app
from tests.tui.fake import FakeDaemon
from tests.tui.helpers import async_test, screen_text, settle


def widths(width: int) -> dict[str, int]:
    # The table's content is the terminal less the one-cell scrollbar.
    return {c.key: w for c, w in fit_columns(COLUMNS, width - 1)}


def test_columns_keep_the_important_ones_whole() -> None:
    wide = widths(160)
    assert list(wide) == [c.key for c in COLUMNS]  # everything at 160 columns
    assert wide["state"] >= len("exited(137)")
    assert wide["ports"] >= len("127.0.0.1:8080->80/tcp")
    assert sum(wide.values()) + len(wide) == 159  # the room is used, not left empty
    narrow = widths(80)
    assert {"name", "image", "state", "cpu", "mem"} <= set(narrow)
    assert "ports" not in narrow and "health" not in narrow  # dropped, not cut
    assert narrow["state"] >= len("exited(137)")
    assert sum(narrow.values()) + len(narrow) <= 79


def test_tab_bar_names_the_current_screen_at_every_width() -> None:
    full = tab_bar("images", [], 150)
    assert ("2 Images", True) in full and ("1 Containers", False) in full
    short = tab_bar("containers", ["web-1", "logs web-1"], 100)
    assert short[0] == ("1 Containers > web-1 > logs web-1", True)
    assert ("2 Img", False) in short
    assert ("2", False) in tab_bar("containers", ["web-1", "logs web-1"], 76)
    tiny = tab_bar("system", [], 40)
    assert ("9 System", True) in tiny and ("1", False) in tiny


def test_info_line_keeps_host_and_status_on_narrow_terminals() -> None:
    facts = HeaderFacts(
        where="prod (ssh://ops@prod-1)",
        status="12/14 running",
        version="servin 0.1.0",
        cpu="2 CPU 37%",
        memory="mem 1.2GB/3.8GB",
    )
    assert [t for t, _ in info_line(facts, 160)] == [
        "prod (ssh://ops@prod-1)",
        "12/14 running",
        "2 CPU 37%",
        "mem 1.2GB/3.8GB",
        "servin 0.1.0",
    ]
    assert [t for t, _ in info_line(facts, 60)] == [
        "prod (ssh://ops@prod-1)",
        "12/14 running",
        "2 CPU 37%",
    ]


def test_memory_sparkline_scale() -> None:
    flat = [200_000.0] * 10
    top = fmt.memory_top(25 * 2**30, 25 * 2**30, flat)  # no limit: the host's memory
    assert fmt.sparkline(flat, 10, top) == "▁" * 10  # low and flat, not full
    limited = fmt.memory_top(256 * 2**20, 25 * 2**30, flat)
    assert limited == 256 * 2**20  # its own limit is the scale
    growing = [float(i * 100 * 2**20) for i in range(1, 9)]
    assert fmt.sparkline(growing, 8, fmt.memory_top(0, 0, growing))[-1] in "▆▇"
    assert fmt.graph_rows([0.0, 50.0, 100.0], 3, 2, 100.0) == ["  █", " ██"]
    assert fmt.stopping_text(6.2, 30) == "stopping (SIGKILL in 7s)"
    assert fmt.stopping_text(6.2, 12) == "stopping 7s"
    assert fmt.stopping_text(-0.5, 30) == "killing"
    assert fmt.fit_middle("127.0.0.1:5000/team/busybox:1.36", 20) == "127.0.0.1…sybox:1.36"
    assert fmt.fit_middle("busybox:1.36", 20) == "busybox:1.36"


async def containers_ready(pilot: Any) -> Any:
    app = pilot.app
    await settle(pilot, lambda: app.source.state.connected and len(app.source.state.stats) == 4)
    await settle(pilot, lambda: app.screen.query_one(KeyedTable).row_count == 6)
    return app


@async_test
async def test_header_and_footer_at_80x24() -> None:
    app = make_app(FakeDaemon())
    async with app.run_test(size=(80, 24)) as pilot:
        await containers_ready(pilot)
        lines = screen_text(app).splitlines()
        assert "1 Containers" in lines[0]
        assert "unix:///run/servin/servin.sock · 4/6 running" in lines[1]
        assert lines[-1].rstrip().endswith("? Help  q Quit")  # never pushed off the footer
        assert "exited(3)" in screen_text(app)
        await pilot.press("down", "down", "down")  # the cursor on web-1
        await pilot.pause()
        rows = screen_text(app).splitlines()[3:9]
        columns = {line.index(word) for line in rows for word in ("running", "exited", "created")
                   if word in line}  # fmt: skip
        assert len(columns) == 1  # STATE starts in the same cell on every row, the cursor's too
        await pilot.press("up", "up", "up")
        await pilot.press("down", "down", "down", "enter")  # details of web-1
        await settle(pilot, lambda: "1 Containers > web-1" in screen_text(app))
        await pilot.press("l")
        await settle(pilot, lambda: "1 Containers > web-1 > logs web-1" in screen_text(app))
        assert screen_text(app).splitlines()[-1].rstrip().endswith("? Help  q Quit")
        await pilot.press("2")
        await settle(pilot, lambda: "2 Images" in screen_text(app).splitlines()[0])


@async_test
async def test_header_shows_version_and_host_figures() -> None:
    fake = FakeDaemon()
    app = make_app(fake)
    app.source._info_interval = 0.05  # two Info answers give the host's CPU use
    async with app.run_test(size=(160, 48)) as pilot:
        await containers_ready(pilot)
        await settle(pilot, lambda: "2 CPU 25%" in screen_text(app))
        header = screen_text(app).splitlines()[1]
        assert "servin 0.1.0" in header
        assert "mem 6.32GB/25.3GB" in header  # used (total less available) of total


@async_test
async def test_live_figures_repaint_only_changed_cells() -> None:
    fake = FakeDaemon()
    app = make_app(fake)
    async with app.run_test(size=(160, 48)) as pilot:
        await containers_ready(pilot)
        await pilot.pause(0.2)
        table = app.screen.query_one(KeyedTable)
        db = fake.resolve("db").id
        stats = app.source.state.stats
        same = containers_pb2.StatsBatch(stats=list(stats.values()))
        for _ in range(12):  # flat figures, longer than the sparklines
            app.source._apply_stats(same)
        app.source.flush_now()
        await pilot.pause()
        before = table.painted_cells
        # The same figures again: nothing to repaint.
        app.source._apply_stats(same)
        app.source.flush_now()
        await pilot.pause()
        assert table.painted_cells == before
        # One container's CPU changes: its CPU cell is repainted (the sparkline is in it),
        # no other cell of any row.
        batch = [containers_pb2.ContainerStats() for _ in stats]
        for fresh, old in zip(batch, stats.values(), strict=True):
            fresh.CopyFrom(old)
        for s in batch:
            if s.id == db:
                s.cpu_percent = 42.0
        app.source._apply_stats(containers_pb2.StatsBatch(stats=batch))
        app.source.flush_now()
        await pilot.pause()
        assert table.painted_cells - before == 1
        assert "42.0" in screen_text(app)
