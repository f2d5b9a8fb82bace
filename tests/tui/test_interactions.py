"""Pilot-driven behaviour of the console over the recorded daemon."""

from __future__ import annotations

from typing import Any

from servin.api.servin.v1 import containers_pb2, system_pb2
from servin.tui.logview import LogView
from servin.tui.screens.containers import ContainersScreen
from servin.tui.screens.dialogs import ConfirmScreen
from servin.tui.screens.logs import LogsScreen
from servin.tui.table import KeyedTable
from tests.tui.conftest import make_app
from tests.tui.fake import FakeDaemon
from tests.tui.helpers import async_test, screen_text, settle


def names(app: Any) -> list[str]:
    """Container names in table order."""
    return list(app.screen.visible_names())


def cursor_name(app: Any) -> str:
    key = app.screen.query_one(KeyedTable).cursor_key
    return str(app.source.state.containers[key].name)


async def ready(pilot: Any) -> Any:
    app = pilot.app
    await settle(pilot, lambda: app.source.state.connected and len(app.source.state.stats) == 4)
    await settle(pilot, lambda: app.screen.query_one(KeyedTable).row_count == 6)
    return app


@async_test
async def test_filter_substring_regex_state_and_label(fake: FakeDaemon) -> None:
    app = make_app(fake)
    async with app.run_test(size=(100, 30)) as pilot:
        await ready(pilot)
        screen: ContainersScreen = app.screen  # type: ignore[assignment]
        await pilot.press("slash")
        await pilot.press(*"web")
        await pilot.press("enter")
        await pilot.pause()
        assert names(app) == ["web-1", "web-2"]
        screen.apply_filter("/^(db|work)/")
        await pilot.pause()
        assert names(app) == ["db", "worker"]
        screen.apply_filter("/^web-1$/")  # anchors apply to the name itself
        await pilot.pause()
        assert names(app) == ["web-1"]
        screen.apply_filter("state=exited state=created")
        await pilot.pause()
        assert names(app) == ["backup", "migrate"]
        screen.apply_filter("label=tier=back state=running")
        await pilot.pause()
        assert names(app) == ["db", "worker"]
        assert "filter: label=tier=back state=running" in screen_text(app)
        assert not screen.apply_filter("/([/")  # a bad regex is refused, the filter stays
        assert names(app) == ["db", "worker"]
        await pilot.press("escape")
        await pilot.pause()
        assert len(names(app)) == 6


@async_test
async def test_sort_by_cpu_and_memory_keeps_the_cursor(fake: FakeDaemon) -> None:
    app = make_app(fake)
    async with app.run_test(size=(100, 30)) as pilot:
        await ready(pilot)
        await pilot.press("down", "down", "down")
        assert cursor_name(app) == "web-1"
        app.run_command("sort cpu")
        await pilot.pause()
        stats = app.source.state.stats
        by_name = {c.name: stats.get(c.id) for c in app.source.state.containers.values()}
        order = names(app)
        assert order[0] == "worker"  # the busy loop
        cpus = [by_name[n].cpu_percent if by_name[n] else 0.0 for n in order]
        assert cpus == sorted(cpus, reverse=True)
        assert cursor_name(app) == "web-1"  # the cursor followed its container
        app.run_command("sort mem")
        await pilot.pause()
        mems = [by_name[n].memory_usage if by_name[n] else 0 for n in names(app)]
        assert mems == sorted(mems, reverse=True)
        assert cursor_name(app) == "web-1"
        await pilot.press("O")  # reverse
        await pilot.pause()
        mems = [by_name[n].memory_usage if by_name[n] else 0 for n in names(app)]
        assert mems == sorted(mems)


@async_test
async def test_in_place_update_does_not_move_the_cursor(fake: FakeDaemon) -> None:
    app = make_app(fake)
    async with app.run_test(size=(100, 30)) as pilot:
        await ready(pilot)
        await pilot.press("down", "down")
        assert cursor_name(app) == "migrate"
        # A new container appears before it in name order: the cursor stays on migrate.
        new = containers_pb2.ContainerSummary(
            id="a" * 64, name="alpha", image="busybox", state="created"
        )
        fake.containers[new.id] = new
        app.source.request_refresh()
        await settle(pilot, lambda: len(names(app)) == 7)
        assert cursor_name(app) == "migrate"


@async_test
async def test_multi_select_and_bulk_stop_with_confirm(fake: FakeDaemon) -> None:
    app = make_app(fake)
    async with app.run_test(size=(100, 30)) as pilot:
        await ready(pilot)
        await pilot.press("down", "down", "down", "space", "space")  # web-1, web-2
        assert "2 selected" in screen_text(app)
        await pilot.press("s")
        await pilot.pause()
        assert isinstance(app.screen, ConfirmScreen)
        assert "Stop 2 containers?" in screen_text(app)
        await pilot.press("n")  # cancelled: nothing is called
        await pilot.pause()
        assert not [c for c in fake.calls if c[0] == "Containers.Stop"]
        await pilot.press("s")
        await pilot.pause()
        await pilot.press("y")
        await pilot.app.workers.wait_for_complete()
        stopped = sorted(fake.resolve(cid).name for m, cid in fake.calls if m == "Containers.Stop")
        assert stopped == ["web-1", "web-2"]
        await settle(pilot, lambda: "exited(0)" in screen_text(app))
        assert "selected" not in screen_text(app)


@async_test
async def test_start_needs_no_confirmation_and_errors_are_calm(fake: FakeDaemon) -> None:
    app = make_app(fake)
    async with app.run_test(size=(100, 30)) as pilot:
        await ready(pilot)
        await pilot.press("u")  # start "backup" (the first row)
        await pilot.app.workers.wait_for_complete()
        assert ("Containers.Start", fake.resolve("backup").id) in fake.calls
        fake.unsupported["Containers.Pause"] = "the daemon does not support this call yet"
        await pilot.press("p", "y")
        await pilot.app.workers.wait_for_complete()
        await pilot.pause()
        assert isinstance(app.screen, ContainersScreen)  # no crash, a notification instead
        notes = [n.message for n in app._notifications]
        assert any("does not support this call yet" in m for m in notes)


@async_test
async def test_read_only_hides_and_refuses_actions(fake: FakeDaemon) -> None:
    app = make_app(fake, read_only=True)
    async with app.run_test(size=(100, 30)) as pilot:
        await ready(pilot)
        text = screen_text(app)
        assert "read-only" in text
        assert "Stop" not in text.splitlines()[-1]  # not in the footer
        await pilot.press("s", "d", "K")
        await pilot.pause()
        assert isinstance(app.screen, ContainersScreen)
        assert not [c for c in fake.calls if c[0] in ("Containers.Stop", "Containers.Remove")]


@async_test
async def test_unsupported_volumes_are_calm(fake: FakeDaemon) -> None:
    app = make_app(fake)
    async with app.run_test(size=(100, 30)) as pilot:
        fake.unsupported["Volumes.List"] = "the daemon does not support this call yet"
        await ready(pilot)
        await pilot.press("3")
        await pilot.app.workers.wait_for_complete()
        await pilot.pause()
        assert "Volumes: not supported by this daemon" in screen_text(app)


@async_test
async def test_command_line_switches_and_filters(fake: FakeDaemon) -> None:
    app = make_app(fake)
    async with app.run_test(size=(100, 30)) as pilot:
        await ready(pilot)
        await pilot.press("colon", *"images name=busy", "enter")
        await settle(pilot, lambda: "1/1 shown (1 images)" in screen_text(app))
        assert "filter: name=busy" in screen_text(app)
        app.run_command("images name=nginx")
        await settle(pilot, lambda: "0/1 shown (1 images)" in screen_text(app))
        app.run_command("containers state=running")
        await settle(pilot, lambda: "4/6 shown" in screen_text(app))
        app.run_command("logs db")
        await settle(pilot, lambda: isinstance(app.screen, LogsScreen))
        app.run_command("bogus")
        await pilot.pause()
        assert any("unknown command" in n.message for n in app._notifications)


async def log_screen(pilot: Any, name: str, lines: int) -> LogView:
    app = await ready(pilot)
    app.run_command(f"logs {name}")
    await settle(
        pilot,
        lambda: (
            isinstance(app.screen, LogsScreen)
            and bool(app.screen.query(LogView))
            and app.screen.query_one(LogView).shown_count() == lines
        ),
    )
    return app.screen.query_one(LogView)


@async_test
async def test_log_search_highlights_and_moves_with_n(fake: FakeDaemon) -> None:
    app = make_app(fake)
    async with app.run_test(size=(80, 24)) as pilot:
        view = await log_screen(pilot, "web-2", 58)
        await pilot.press("home")  # search runs from the top of the screen, as less does
        await pilot.press("slash", *"/POST.*502/", "enter")
        await pilot.pause()
        assert view.match_count == 7
        first = view.current_match
        assert first is not None and "POST /api/pay 502" in view.buffer.get(first).text
        assert "match 1/7" in screen_text(app)
        await pilot.press("n")
        second = view.current_match
        assert second is not None and second > first
        assert "match 2/7" in screen_text(app)
        await pilot.press("N")
        assert view.current_match == first
        assert not view.follow  # searching stops following
        # Filter mode shows only matching lines.
        app.screen.apply_filter("502")
        await pilot.pause()
        assert view.shown_count() == 7


@async_test
async def test_follow_marker_counts_new_lines(fake: FakeDaemon) -> None:
    app = make_app(fake)
    async with app.run_test(size=(80, 24)) as pilot:
        view = await log_screen(pilot, "web-1", 112)
        cid = fake.resolve("web-1").id
        assert view.follow
        fake.push_log(cid, "GET /live 200 req=113")
        await settle(pilot, lambda: view.shown_count() == 113)
        assert "req=113" in screen_text(app)  # following: the new line is on screen
        await pilot.press("pageup")
        assert not view.follow
        for i in range(5):
            fake.push_log(cid, f"GET /live 200 req={114 + i}")
        await settle(pilot, lambda: view.shown_count() == 118)
        await pilot.pause()
        assert "5 new lines" in screen_text(app)
        assert "req=118" not in screen_text(app)
        await pilot.press("end")
        await pilot.pause()
        assert view.follow
        assert "new lines" not in screen_text(app)
        assert "req=118" in screen_text(app)


@async_test
async def test_disconnect_keeps_data_and_reconnects(fake: FakeDaemon) -> None:
    app = make_app(fake)
    async with app.run_test(size=(100, 30)) as pilot:
        await ready(pilot)
        connections = fake.connections
        fake.go_down()
        await settle(pilot, lambda: not app.source.state.connected)
        await pilot.pause()
        text = screen_text(app)
        assert "DISCONNECTED" in text
        assert "web-1" in text and "worker" in text  # the last data stays
        await pilot.pause(0.5)
        assert fake.connections > connections  # it keeps trying (with backoff)
        fake.come_back()
        await settle(pilot, lambda: app.source.state.connected)
        await pilot.pause()
        assert "DISCONNECTED" not in screen_text(app)
        # Live again: a new container shows up through the event-driven refresh.
        new = containers_pb2.ContainerSummary(
            id="b" * 64, name="newcomer", image="busybox", state="created"
        )
        fake.containers[new.id] = new
        ev = system_pb2.Event(type="container", action="create", id=new.id)
        ev.time.FromSeconds(int(fake.now) + 100)
        fake.push_event(ev)
        await settle(pilot, lambda: "newcomer" in screen_text(app))


@async_test
async def test_keys_are_configurable(fake: FakeDaemon) -> None:
    app = make_app(fake, keys={"containers.stop": "x"})
    async with app.run_test(size=(100, 30)) as pilot:
        await ready(pilot)
        await pilot.press("s")
        await pilot.pause()
        assert isinstance(app.screen, ContainersScreen)
        await pilot.press("x")
        await pilot.pause()
        assert isinstance(app.screen, ConfirmScreen)
        await pilot.press("escape")
        assert "x                Stop" in app.help_text().replace("[dim]", "")


@async_test
async def test_copy_id_uses_the_clipboard(fake: FakeDaemon) -> None:
    app = make_app(fake)
    async with app.run_test(size=(100, 30)) as pilot:
        await ready(pilot)
        await pilot.press("y")
        assert app.clipboard == fake.resolve("backup").id


@async_test
async def test_theme_switch_and_palette_command(fake: FakeDaemon) -> None:
    app = make_app(fake)
    async with app.run_test(size=(100, 30)) as pilot:
        await ready(pilot)
        assert app.theme == "servin-dark"
        app.run_command("theme light")
        assert app.theme == "servin-light"
        await pilot.press("ctrl+t")
        assert app.theme == "servin-dark"


@async_test
async def test_off_screen_rows_catch_up_when_scrolled_to(fake: FakeDaemon) -> None:
    # 60 more containers: live updates refresh only the rows on screen; the others are
    # brought up to date as soon as the cursor takes them on screen.
    for i in range(60):
        c = containers_pb2.ContainerSummary(
            id=f"{i:064x}", name=f"zz-{i:02d}", image="busybox", state="created"
        )
        fake.containers[c.id] = c
    app = make_app(fake)
    async with app.run_test(size=(100, 24)) as pilot:
        await settle(pilot, lambda: app.source.state.connected)
        await settle(pilot, lambda: app.screen.query_one(KeyedTable).row_count == 66)
        last = fake.resolve("zz-59")
        last.state = "exited"  # changes off screen, seen by the next list refresh
        app.source.request_refresh()
        await settle(pilot, lambda: app.source.state.containers[last.id].state == "exited")
        await pilot.pause()
        table = app.screen.query_one(KeyedTable)
        assert last.id not in table.held_keys()  # off screen: never computed, nor drawn
        app.screen.query_one(KeyedTable).move_cursor(row=65)  # as page-down would
        await settle(pilot, lambda: cursor_name(app) == "zz-59")
        await settle(pilot, lambda: "zz-59" in screen_text(app) and "exited(0)" in screen_text(app))
