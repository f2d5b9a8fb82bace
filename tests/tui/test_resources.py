"""Pilot-driven tests of the Volumes, Networks, Images (pull, prune), Metrics and Logs screens
over the fake daemon (recorded data plus tests/tui/data/handwritten.json)."""

from __future__ import annotations

from typing import Any

from textual.widgets import DataTable, Tree

from servin.tui.logview import LogView
from servin.tui.screens.dialogs import ConfirmScreen
from servin.tui.screens.images import PullScreen
from servin.tui.screens.logs import MergedLogsScreen
from servin.tui.screens.metrics import MetricsScreen
from servin.tui.screens.resources import InspectScreen, NetworksScreen, VolumesScreen
from servin.tui.table import KeyedTable
from tests.tui.conftest import make_app
from tests.tui.fake import FakeDaemon
from tests.tui.helpers import async_test, screen_text, settle


def first_column(app: Any) -> list[str]:
    if hasattr(app.screen, "visible_names"):  # a KeyedTable screen (Metrics)
        return list(app.screen.visible_names())
    table = app.screen.query_one(DataTable)
    return [str(table.get_row_at(i)[0]) for i in range(table.row_count)]


def row_count(app: Any) -> int:
    tables = app.screen.query(KeyedTable) or app.screen.query(DataTable)
    return tables.first().row_count if tables else 0


async def connected(pilot: Any) -> Any:
    app = pilot.app
    await settle(pilot, lambda: app.source.state.connected and len(app.source.state.stats) == 4)
    return app


async def on_screen(pilot: Any, key: str, cls: type, rows: int) -> Any:
    app = await connected(pilot)
    await pilot.press(key)
    await settle(
        pilot,
        lambda: isinstance(app.screen, cls) and row_count(app) >= rows,
    )
    return app


async def move_to(pilot: Any, name: str) -> None:
    app = pilot.app
    rows = first_column(app)
    table = app.screen.query_one(DataTable)
    table.move_cursor(row=rows.index(name))
    await pilot.pause()


def calls(fake: FakeDaemon, method: str) -> list[Any]:
    return [key for m, key in fake.calls if m == method]


@async_test
async def test_volumes_create_remove_prune_with_confirmation(fake: FakeDaemon) -> None:
    app = make_app(fake)
    async with app.run_test(size=(120, 30)) as pilot:
        await on_screen(pilot, "3", VolumesScreen, 4)
        assert "pgdata" in first_column(app) and "4/4 volumes" in screen_text(app)
        # Create: a prompt, then the new volume appears.
        await pilot.press("c", *"cache label=app=shop opt=type=tmpfs", "enter")
        await settle(pilot, lambda: "cache" in first_column(app))
        made = next(v for v in fake.volumes if v.name == "cache")
        assert dict(made.labels) == {"app": "shop"} and dict(made.options) == {"type": "tmpfs"}
        # A bad create line changes nothing and says why.
        await pilot.press("c", *"x bogus=1", "enter")
        await pilot.pause()
        assert any("unknown option 'bogus'" in n.message for n in app._notifications)
        assert calls(fake, "Volumes.Create") == ["cache"]
        # Remove asks first; "n" keeps it.
        await move_to(pilot, "backup-2024")
        await pilot.press("d")
        await pilot.pause()
        assert isinstance(app.screen, ConfirmScreen)
        assert "Remove volume backup-2024?" in screen_text(app)
        await pilot.press("n")
        await pilot.pause()
        assert not calls(fake, "Volumes.Remove")
        await pilot.press("d", "y")
        await settle(pilot, lambda: "backup-2024" not in first_column(app))
        # Removing a volume in use fails calmly (the daemon's reason, no crash).
        await move_to(pilot, "pgdata")
        await pilot.press("d", "y")
        await settle(pilot, lambda: any("in use" in n.message for n in app._notifications))
        assert "pgdata" in first_column(app)
        # Prune: confirmed, removes the unused ones, says what it freed.
        await pilot.press("P")
        await pilot.pause()
        assert "Prune volumes?" in screen_text(app)
        await pilot.press("y")
        await settle(pilot, lambda: sorted(first_column(app)) == ["pgdata", "web-static"])
        assert any("pruned 2 volumes" in n.message for n in app._notifications)


@async_test
async def test_volume_inspect_and_filter(fake: FakeDaemon) -> None:
    app = make_app(fake)
    async with app.run_test(size=(120, 30)) as pilot:
        await on_screen(pilot, "3", VolumesScreen, 4)
        app.screen.apply_filter("tmpfs")  # matches no cell: cells hold name, driver, sizes...
        await pilot.pause()
        assert first_column(app) == []
        app.screen.apply_filter("pgdata")
        await pilot.pause()
        assert first_column(app) == ["pgdata"]
        await pilot.press("enter")
        await settle(pilot, lambda: isinstance(app.screen, InspectScreen))
        await app.workers.wait_for_complete()
        await pilot.pause()
        tree = app.screen.query_one(Tree)
        labels = [str(n.label) for n in tree.root.children]
        assert any("mountpoint" in label for label in labels)
        assert "/var/lib/servin/volumes/pgdata/_data" in screen_text(app)
        await pilot.press("escape")
        await pilot.pause()
        assert isinstance(app.screen, VolumesScreen)


@async_test
async def test_networks_create_remove_and_prune(fake: FakeDaemon) -> None:
    app = make_app(fake)
    async with app.run_test(size=(120, 30)) as pilot:
        await on_screen(pilot, "4", NetworksScreen, 4)
        assert "10.89.0.0/24" in screen_text(app)
        await pilot.press("c", *"front subnet=10.90.0.0/24 gateway=10.90.0.1 internal", "enter")
        await settle(pilot, lambda: "front" in first_column(app))
        made = next(n for n in fake.networks if n.name == "front")
        assert made.internal and made.ipam[0].subnet == "10.90.0.0/24"
        assert made.ipam[0].gateway == "10.90.0.1"
        # The daemon refuses to remove a pre-defined network: a calm notice.
        await move_to(pilot, "host")
        await pilot.press("d", "y")
        await settle(pilot, lambda: any("pre-defined" in n.message for n in app._notifications))
        assert "host" in first_column(app)
        await pilot.press("P", "y")
        await settle(pilot, lambda: "front" not in first_column(app))
        assert sorted(first_column(app)) == ["backend", "host", "none", "servin"]


@async_test
async def test_read_only_hides_resource_actions(fake: FakeDaemon) -> None:
    app = make_app(fake, read_only=True)
    async with app.run_test(size=(120, 30)) as pilot:
        await on_screen(pilot, "3", VolumesScreen, 4)
        await pilot.press("c", "d", "P")
        await pilot.pause()
        assert isinstance(app.screen, VolumesScreen)
        footer = screen_text(app).splitlines()[-1]
        assert "Remove" not in footer and "Prune" not in footer and "Create" not in footer
        assert not [m for m, _ in fake.calls if m.startswith("Volumes.") and m != "Volumes.List"]


@async_test
async def test_unsupported_actions_are_calm(fake: FakeDaemon) -> None:
    fake.unsupported["Networks.Prune"] = "the daemon does not support this call yet"
    app = make_app(fake)
    async with app.run_test(size=(120, 30)) as pilot:
        await on_screen(pilot, "4", NetworksScreen, 4)
        await pilot.press("P", "y")
        await settle(
            pilot,
            lambda: any("not supported by this daemon" in n.message for n in app._notifications),
        )
        assert isinstance(app.screen, NetworksScreen)


@async_test
async def test_image_pull_shows_live_per_layer_progress(fake: FakeDaemon) -> None:
    app = make_app(fake)
    async with app.run_test(size=(120, 30)) as pilot:
        await connected(pilot)
        await pilot.press("2", "p", *"alpine-web:3.21", "enter")
        await settle(pilot, lambda: isinstance(app.screen, PullScreen))
        screen: PullScreen = app.screen  # type: ignore[assignment]
        await settle(
            pilot, lambda: len(screen.pulled_layers) == 3 and "1/3 layers" in screen_text(app)
        )
        text = screen_text(app)
        assert "Pull complete" in text and "Downloading" in text
        assert "12.6MB / 27.1MB" in text or "13.2MB / 28.5MB" in text
        assert "pulling" in text
        fake.pull_gate.set()
        await settle(pilot, lambda: "3/3 layers" in screen_text(app) and screen.finished)
        await pilot.pause(0.2)
        assert "done: 7b3ae1f2c4d5" in screen_text(app)
        assert "Downloaded newer image" in screen_text(app)
        assert calls(fake, "Images.Pull") == ["alpine-web:3.21"]
        await pilot.press("escape")
        await pilot.pause()
        assert app.screen.__class__.__name__ == "ImagesScreen"


@async_test
async def test_image_pull_cancel_and_prune(fake: FakeDaemon) -> None:
    app = make_app(fake)
    async with app.run_test(size=(120, 30)) as pilot:
        await connected(pilot)
        app.run_command("pull busybox:latest")
        await settle(pilot, lambda: isinstance(app.screen, PullScreen))
        await settle(pilot, lambda: len(app.screen.pulled_layers) == 3)
        await pilot.press("escape")  # cancels the pull mid-way
        await pilot.pause()
        assert any("cancelled" in n.message for n in app._notifications)
        assert app.screen.__class__.__name__ == "ImagesScreen"
        await pilot.press("P")
        await pilot.pause()
        assert "Prune dangling images?" in screen_text(app)
        await pilot.press("y")
        await settle(pilot, lambda: any("pruned 0 images" in n.message for n in app._notifications))
        assert ("Images.Prune", None) in fake.calls


@async_test
async def test_metrics_sorts_by_live_figures(fake: FakeDaemon) -> None:
    app = make_app(fake)
    async with app.run_test(size=(160, 40)) as pilot:
        await on_screen(pilot, "7", MetricsScreen, 4)
        assert first_column(app)[0] == "worker"  # the busy loop, by CPU
        assert "4 running" in screen_text(app)
        app.run_command("sort mem")
        await pilot.pause()
        stats = {
            c.name: app.source.state.stats[c.id]
            for c in app.source.state.containers.values()
            if c.id in app.source.state.stats
        }
        mems = [stats[n].memory_usage for n in first_column(app)]
        assert mems == sorted(mems, reverse=True)
        app.run_command("sort name")
        await pilot.pause()
        assert first_column(app) == ["db", "web-1", "web-2", "worker"]
        assert not [m for m, _ in fake.calls if m in ("Containers.Inspect", "Containers.Top")]


@async_test
async def test_logs_screen_merges_selection_or_running(fake: FakeDaemon) -> None:
    app = make_app(fake)
    async with app.run_test(size=(120, 30)) as pilot:
        await connected(pilot)
        await pilot.press("6")
        await settle(pilot, lambda: isinstance(app.screen, MergedLogsScreen))
        screen: MergedLogsScreen = app.screen  # type: ignore[assignment]
        assert [n for _, n in screen.containers] == ["db", "web-1", "web-2", "worker"]
        view = screen.query_one(LogView)
        await settle(pilot, lambda: view.shown_count() == 112 + 58 + 32)
        assert "web-1        │" in screen_text(app)  # tagged by container
        # Select two containers on the Containers screen: the Logs screen follows them.
        await pilot.press("1", "down", "down", "down", "space", "space", "6")
        await settle(pilot, lambda: [n for _, n in screen.containers] == ["web-1", "web-2"])
        await settle(pilot, lambda: view.shown_count() == 112 + 58)


@async_test
async def test_copy_selected_log_lines_with_osc52(fake: FakeDaemon) -> None:
    app = make_app(fake)
    async with app.run_test(size=(80, 24)) as pilot:
        await connected(pilot)
        app.run_command("logs web-1")
        await settle(
            pilot,
            lambda: (
                bool(app.screen.query(LogView))
                and app.screen.query_one(LogView).shown_count() == 112
            ),
        )
        await pilot.press("v", "up", "up")
        assert "3 selected" in screen_text(app)
        await pilot.press("y")
        assert app.clipboard.splitlines() == [
            "GET /index.html 200 req=110",
            "GET /index.html 200 req=111",
            "GET /index.html 200 req=112",
        ]
        # Without a selection, y copies the current search match.
        app.screen.apply_search("req=57")
        await pilot.press("y")
        assert app.clipboard == "GET /index.html 200 req=57\n"
