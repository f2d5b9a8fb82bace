"""Pilot-driven tests of the Pods screen over the fake daemon (hand-written pods grouping
recorded containers): live figures, the actions on keys, create, and the pod in the
container detail."""

from __future__ import annotations

from typing import Any

from textual.widgets import DataTable

from servin.tui.screens.detail import ContainerDetailScreen
from servin.tui.screens.dialogs import ConfirmScreen
from servin.tui.screens.pods import PodsScreen
from tests.tui.conftest import make_app
from tests.tui.fake import FakeDaemon
from tests.tui.helpers import async_test, screen_text, settle
from tests.tui.test_resources import calls, first_column, move_to, on_screen


def status_of(app: Any, name: str) -> str:
    table = app.screen.query_one(DataTable)
    row = first_column(app).index(name)
    return str(table.get_row_at(row)[2])


@async_test
async def test_pods_show_members_and_summed_figures(fake: FakeDaemon) -> None:
    app = make_app(fake)
    async with app.run_test(size=(160, 30)) as pilot:
        await on_screen(pilot, "5", PodsScreen, 2)
        assert first_column(app) == ["shop", "batch"]
        text = screen_text(app)
        assert "web-1,web-2" in text and "migrate,backup" in text
        stats = app.source.state.stats
        web = [c.id for c in fake.containers.values() if c.name in ("web-1", "web-2")]
        cpu = sum(stats[i].cpu_percent for i in web)
        table = app.screen.query_one(DataTable)
        assert str(table.get_row_at(0)[5]) == f"{cpu:.1f}"
        assert str(table.get_row_at(1)[5]) == "-"  # nothing of it runs


@async_test
async def test_pod_actions_on_keys(fake: FakeDaemon) -> None:
    app = make_app(fake)
    async with app.run_test(size=(160, 30)) as pilot:
        await on_screen(pilot, "5", PodsScreen, 2)
        await move_to(pilot, "shop")
        await pilot.press("s")
        assert isinstance(app.screen, ConfirmScreen)
        await pilot.press("y")
        await settle(pilot, lambda: status_of(app, "shop") == "Exited")
        assert len(calls(fake, "Pods.Stop")) == 1
        await pilot.press("u")
        await settle(pilot, lambda: status_of(app, "shop") == "Running")
        await pilot.press("p")
        await settle(pilot, lambda: status_of(app, "shop") == "Paused")
        await pilot.press("p")
        await settle(pilot, lambda: status_of(app, "shop") == "Running")
        await move_to(pilot, "batch")
        await pilot.press("d", "y")
        await settle(pilot, lambda: first_column(app) == ["shop"])
        await pilot.press("c")
        await pilot.press(*"cache memory=64m share=pid")
        await pilot.press("enter")
        await settle(pilot, lambda: first_column(app) == ["cache", "shop"])
        created = next(p for p in fake.pods if p.name == "cache")
        assert created.spec.memory == 64 * 1024 * 1024 and created.spec.share_pid


@async_test
async def test_read_only_console_offers_no_pod_actions(fake: FakeDaemon) -> None:
    app = make_app(fake, read_only=True)
    async with app.run_test(size=(160, 30)) as pilot:
        await on_screen(pilot, "5", PodsScreen, 2)
        await pilot.press("s", "u", "p", "K", "d", "c", "P")
        await pilot.pause()
        assert isinstance(app.screen, PodsScreen)
        assert not [m for m, _ in fake.calls if m.startswith("Pods.") and m != "Pods.List"]


@async_test
async def test_container_detail_names_its_pod(fake: FakeDaemon) -> None:
    app = make_app(fake)
    async with app.run_test(size=(120, 30)) as pilot:
        await on_screen(pilot, "1", type(app.screen), 6)
        web1 = next(c for c in fake.containers.values() if c.name == "web-1")
        app.push_screen(ContainerDetailScreen(web1.id))
        await settle(pilot, lambda: "pod shop" in screen_text(app))
