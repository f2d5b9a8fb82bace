"""What an operator meets in the first minutes: filtering as they type, the split view with
the selected container's logs and graphs, a stop that shows its SIGKILL countdown, every
tag of an image, and System counts that agree with the other screens."""

from __future__ import annotations

import asyncio
from typing import Any

from servin.tui.logview import LogView
from servin.tui.peek import ContainerPeek
from servin.tui.screens.containers import ContainersScreen
from servin.tui.screens.images import ImagesScreen
from servin.tui.screens.resources import NetworksScreen
from servin.tui.table import KeyedTable
from tests.tui.conftest import make_app
from tests.tui.fake import FakeDaemon
from tests.tui.helpers import async_test, screen_text, settle


async def ready(pilot: Any) -> Any:
    app = pilot.app
    await settle(pilot, lambda: app.source.state.connected and len(app.source.state.stats) == 4)
    await settle(pilot, lambda: app.screen.query_one(KeyedTable).row_count == 6)
    return app


def names(app: Any) -> list[str]:
    screen = next(s for s in app.screen_stack if isinstance(s, ContainersScreen))
    return list(screen.visible_names())


@async_test
async def test_filter_as_you_type(fake: FakeDaemon) -> None:
    app = make_app(fake)
    async with app.run_test(size=(100, 30)) as pilot:
        await ready(pilot)
        await pilot.press("slash", *"web")  # no enter
        await settle(pilot, lambda: names(app) == ["web-1", "web-2"])
        await pilot.press("backspace", "backspace", "backspace", *"/^(db|wo)/")
        await settle(pilot, lambda: names(app) == ["db", "worker"])
        await pilot.press("left", "parenleft")  # "/^(db|wo)(/" does not parse
        await pilot.pause(0.3)
        assert names(app) == ["db", "worker"]  # the last good filter stays while typing
        assert not app._notifications  # and nobody is scolded mid-word
        await pilot.press("escape")  # cancel: the filter from before the prompt is back
        await settle(pilot, lambda: len(names(app)) == 6)
        await pilot.press("slash", *"state=exited", "enter")
        await settle(pilot, lambda: names(app) == ["migrate"])
        assert isinstance(app.screen, ContainersScreen)
        assert "filter: state=exited" in screen_text(app)


@async_test
async def test_filter_runs_in_a_worker_thread(fake: FakeDaemon) -> None:
    app = make_app(fake)
    async with app.run_test(size=(100, 30)) as pilot:
        await ready(pilot)
        screen: ContainersScreen = app.screen  # type: ignore[assignment]
        screen.offload_at = 0  # as with hundreds of containers
        table = screen.table
        await pilot.press("down", "down", "down")  # web-1
        assert screen.apply_filter("web")
        assert not screen.filter_settled()  # the rows come from the thread
        await settle(pilot, screen.filter_settled)
        assert names(app) == ["web-1", "web-2"]
        assert table.cursor_key == fake.resolve("web-1").id  # the cursor kept its row
        # A newer filter wins over an older one still running.
        screen.apply_filter("db")
        screen.apply_filter("worker")
        await settle(pilot, screen.filter_settled)
        await pilot.pause(0.1)
        assert names(app) == ["worker"]


@async_test
async def test_split_view_follows_the_cursor_and_toggles(fake: FakeDaemon) -> None:
    app = make_app(fake)
    async with app.run_test(size=(160, 48)) as pilot:
        await ready(pilot)
        screen: ContainersScreen = app.screen  # type: ignore[assignment]
        peek = screen.query_one(ContainerPeek)
        assert screen.split_shown and peek.display
        await pilot.press("down", "down", "down")  # web-1
        log = peek.query_one(LogView)
        await settle(pilot, lambda: peek.container_id == fake.resolve("web-1").id)
        await settle(pilot, lambda: log.shown_count() == 112)
        assert "req=112" in screen_text(app)  # the tail, beside the list
        assert "logs of web-1" in screen_text(app)
        fake.push_log(fake.resolve("web-1").id, "GET /live 200 req=113")
        await settle(pilot, lambda: "req=113" in screen_text(app))  # live
        await pilot.press("up", "up")  # db: its own stream replaces web-1's
        await settle(pilot, lambda: peek.container_id == fake.resolve("db").id)
        await settle(pilot, lambda: "logs of db" in screen_text(app))
        assert "req=113" not in screen_text(app)
        await pilot.press("v")
        await pilot.pause()
        assert not peek.display and "logs of db" not in screen_text(app)
        await pilot.press("v")
        await settle(pilot, lambda: "logs of db" in screen_text(app))


@async_test
async def test_split_view_stays_off_at_80x24(fake: FakeDaemon) -> None:
    app = make_app(fake)
    async with app.run_test(size=(80, 24)) as pilot:
        await ready(pilot)
        screen: ContainersScreen = app.screen  # type: ignore[assignment]
        assert not screen.split_shown
        assert not screen.query_one(ContainerPeek).display
        assert "Split" not in screen_text(app).splitlines()[-1]
        await pilot.press("v")
        await pilot.pause()
        assert not screen.query_one(ContainerPeek).display
        assert not [c for c in fake.calls if c[0] == "Containers.Logs"]  # no stream either


@async_test
async def test_stop_shows_the_sigkill_countdown(fake: FakeDaemon) -> None:
    fake.stop_gate = asyncio.Event()  # web-1 ignores SIGTERM: the stop takes its time
    app = make_app(fake)
    async with app.run_test(size=(120, 30)) as pilot:
        await ready(pilot)
        await pilot.press("down", "down", "down", "s", "y")  # stop web-1
        await settle(pilot, lambda: "stopping (SIGKILL in 10s)" in screen_text(app))
        assert "web-1: stopping (SIGKILL in 10s)" in screen_text(app)  # and in the status
        fake.now += 4  # four seconds later (the console's clock is the recording's)
        await settle(pilot, lambda: "stopping (SIGKILL in 6s)" in screen_text(app), timeout=5)
        fake.now += 7
        await settle(pilot, lambda: "killing" in screen_text(app), timeout=5)
        fake.stop_gate.set()
        await settle(pilot, lambda: "exited(0)" in screen_text(app))
        assert "SIGKILL" not in screen_text(app) and "killing" not in screen_text(app)


@async_test
async def test_images_show_every_tag(fake: FakeDaemon) -> None:
    image = fake.images[0]
    image.repo_tags.append("127.0.0.1:5000/team/busybox:1.36")
    app = make_app(fake)
    async with app.run_test(size=(100, 30)) as pilot:
        await ready(pilot)
        await pilot.press("2")
        await settle(pilot, lambda: "2/2 shown (1 images)" in screen_text(app))
        text = screen_text(app)
        assert "busybox:1.36" in text and "127.0.0.1:5000/team/busybox:1.36" in text
        screen: ImagesScreen = app.screen  # type: ignore[assignment]
        rows = [tag for tag, _ in screen.visible_items()]
        assert rows == ["127.0.0.1:5000/team/busybox:1.36", "busybox:1.36"]
        # Removing a tag row removes that tag (as `rmi TAG`), not the image by ID.
        await pilot.press("d", "y")
        await pilot.app.workers.wait_for_complete()
        removed = [ref for call, ref in fake.calls if call == "Images.Remove:reference"]
        assert removed == ["127.0.0.1:5000/team/busybox:1.36"]


@async_test
async def test_system_counts_agree_with_the_other_screens(fake: FakeDaemon) -> None:
    app = make_app(fake)
    async with app.run_test(size=(160, 48)) as pilot:
        await ready(pilot)
        await pilot.press("4")
        await settle(
            pilot,
            lambda: isinstance(app.screen, NetworksScreen) and len(app.screen.items) > 0,
        )
        networks = len(app.screen.items)
        await pilot.press("9")
        await settle(pilot, lambda: "DAEMON" in screen_text(app))
        text = screen_text(app)
        assert f"networks {networks}" in text
        assert f"volumes {len(fake.volumes)}" in text
        assert "containers  6 (4 running, 0 paused, 2 stopped)" in text
