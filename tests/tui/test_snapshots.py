"""Every screen at 80x24 and 160x48, dark and light, from the recorded daemon.

Update after an intended change with:
    .venv/bin/pytest tests/tui/test_snapshots.py --snapshot-update
and review the SVGs under snapshots/tui/test_snapshots/.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import Any

import pytest
from textual.pilot import Pilot
from textual.widgets import DataTable, Input, Tree

from servin.tui import kube
from servin.tui.logview import LogView
from servin.tui.peek import ContainerPeek
from servin.tui.table import KeyedTable
from tests.tui.conftest import make_app
from tests.tui.fake import FakeDaemon
from tests.tui.helpers import screen_text, screen_workers_done, settle

SIZES = {"80x24": (80, 24), "160x48": (160, 48)}
THEMES = ["dark", "light"]


def _table_rows(app: Any, n: int) -> Callable[[], bool]:
    def ready() -> bool:
        tables = app.screen.query(KeyedTable) or app.screen.query(DataTable)
        return bool(tables) and tables.first().row_count >= n

    return ready


async def containers(pilot: Pilot[Any]) -> None:
    """At 160x48 with the split view: web-1's log tail and graphs under the table."""
    app: Any = pilot.app
    await settle(pilot, lambda: app.source.state.connected and len(app.source.state.stats) == 4)
    await settle(pilot, _table_rows(app, 6))
    await pilot.press("down", "down", "down")  # the cursor on web-1
    screen = app.screen
    if screen.split_shown:
        peek = screen.query_one(ContainerPeek)
        await settle(pilot, lambda: peek.query_one(LogView).shown_count() == 112)
        await pilot.pause(0.2)


async def filtering(pilot: Pilot[Any]) -> None:
    """``/`` with "web" typed and no Enter yet: the table already shows the two."""
    await containers(pilot)
    app: Any = pilot.app
    await pilot.press("slash")
    app.screen.query_one(Input).cursor_blink = False  # a still picture
    await pilot.press(*"web")
    screen = app.screen_stack[-2]
    await settle(pilot, lambda: screen.visible_names() == ["web-1", "web-2"])
    await pilot.pause(0.4)


async def stopping(pilot: Pilot[Any]) -> None:
    """A stop under way (web-1 ignores SIGTERM): the SIGKILL countdown on its row."""
    app: Any = pilot.app
    app.fake.stop_gate = asyncio.Event()
    await containers(pilot)
    await pilot.press("s", "y")
    await settle(pilot, lambda: "SIGKILL in 10s" in screen_text(app))
    await pilot.pause(0.2)


async def details(pilot: Pilot[Any]) -> None:
    await containers(pilot)
    await pilot.press("enter")
    app: Any = pilot.app
    await settle(pilot, lambda: app.screen.query(Tree) and app.screen.detail is not None)
    await screen_workers_done(pilot)
    await pilot.pause()


async def details_inspect(pilot: Pilot[Any]) -> None:
    await details(pilot)
    await pilot.press("right")  # the Inspect tab
    await pilot.pause()


async def logs(pilot: Pilot[Any]) -> None:
    await containers(pilot)
    await pilot.press("l")
    app: Any = pilot.app
    await settle(
        pilot,
        lambda: app.screen.query(LogView) and app.screen.query_one(LogView).shown_count() == 112,
    )


async def logs_search(pilot: Pilot[Any]) -> None:
    await logs(pilot)
    app: Any = pilot.app
    app.screen.query_one(LogView).timestamps = True
    app.screen.apply_search("req=9")
    # The search stops following: the "paused" marker takes a line from the view. Wait for
    # that layout before the next jump, which centres the match in the view's height.
    await settle(pilot, lambda: app.screen.query_one("#marker").display)
    await pilot.pause()
    await pilot.press("n")
    await pilot.pause()


async def images(pilot: Pilot[Any]) -> None:
    """Every tag of an image is a row, as `servin images` lists them."""
    app: Any = pilot.app
    app.fake.images[0].repo_tags.append("127.0.0.1:5000/team/busybox:1.36")
    await containers(pilot)
    await pilot.press("2")
    await settle(pilot, _table_rows(pilot.app, 2))


async def volumes(pilot: Pilot[Any]) -> None:
    await containers(pilot)
    await pilot.press("3")
    await settle(pilot, _table_rows(pilot.app, 4))


async def networks(pilot: Pilot[Any]) -> None:
    await containers(pilot)
    await pilot.press("4")
    await settle(pilot, _table_rows(pilot.app, 4))


async def pods(pilot: Pilot[Any]) -> None:
    """Two pods with their members, status and the members' summed CPU and memory."""
    await containers(pilot)
    await pilot.press("5")
    await settle(pilot, _table_rows(pilot.app, 2))
    await screen_workers_done(pilot)
    await pilot.pause()


async def logs_merged(pilot: Pilot[Any]) -> None:
    await containers(pilot)
    await pilot.press("6")
    app: Any = pilot.app
    await settle(
        pilot,
        lambda: app.screen.query(LogView) and app.screen.query_one(LogView).shown_count() == 202,
    )


async def metrics(pilot: Pilot[Any]) -> None:
    await containers(pilot)
    await pilot.press("7")
    await settle(pilot, _table_rows(pilot.app, 4))


async def pull(pilot: Pilot[Any]) -> None:
    """An image pull stopped half-way (the fake holds the stream): per-layer progress."""
    await containers(pilot)
    app: Any = pilot.app
    app.run_command("pull alpine-web:3.21")
    await settle(pilot, lambda: len(getattr(app.screen, "pulled_layers", {})) == 3)
    await pilot.pause(0.2)


async def logs_select(pilot: Pilot[Any]) -> None:
    await logs(pilot)
    await pilot.press("v", "up", "up", "up")
    await pilot.pause()


async def events(pilot: Pilot[Any]) -> None:
    await containers(pilot)
    await pilot.press("8")
    await settle(pilot, _table_rows(pilot.app, 14))


async def system(pilot: Pilot[Any]) -> None:
    await containers(pilot)
    await pilot.press("9")
    await settle(pilot, _table_rows(pilot.app, 2))


async def confirm(pilot: Pilot[Any]) -> None:
    await containers(pilot)
    await pilot.press("space", "space", "s")  # select web-1 and web-2, then stop
    await pilot.pause()


async def help_screen(pilot: Pilot[Any]) -> None:
    await containers(pilot)
    await pilot.press("question_mark")
    await pilot.pause()


async def disconnected(pilot: Pilot[Any]) -> None:
    await containers(pilot)
    app: Any = pilot.app
    app.fake.go_down()
    await settle(pilot, lambda: not app.source.state.connected)


SCREENS: dict[str, Callable[[Pilot[Any]], Awaitable[None]]] = {
    "containers": containers,
    "filtering": filtering,
    "stopping": stopping,
    "details": details,
    "inspect": details_inspect,
    "logs": logs,
    "logs_search": logs_search,
    "images": images,
    "volumes": volumes,
    "networks": networks,
    "pods": pods,
    "logs_merged": logs_merged,
    "logs_select": logs_select,
    "metrics": metrics,
    "pull": pull,
    "events": events,
    "system": system,
    "confirm": confirm,
    "help": help_screen,
    "disconnected": disconnected,
}


@pytest.mark.parametrize("theme", THEMES)
@pytest.mark.parametrize("size", list(SIZES))
@pytest.mark.parametrize("screen", list(SCREENS))
def test_screen(snap_compare: Any, screen: str, size: str, theme: str) -> None:
    fake = FakeDaemon()
    app = make_app(fake, theme=theme)
    app.fake = fake  # type: ignore[attr-defined]
    assert snap_compare(app, terminal_size=SIZES[size], run_before=SCREENS[screen])


# ---- pods and containers the kubelet made (through the CRI) ----------------------------

# Pod name in the recording -> (namespace, Kubernetes pod name, member -> container name).
KUBE = {
    "shop": ("default", "shop-6d4f9c7b8-x2x7q", {"web-1": "frontend", "web-2": "api"}),
    "batch": ("kube-system", "kube-proxy-28h1x", {"migrate": "kube-proxy", "backup": "init"}),
}


def kube_fake() -> FakeDaemon:
    """The recording with its two pods labelled as the kubelet labels them (the other
    containers stay docker-style)."""
    fake = FakeDaemon()
    by_name = {c.name: c for c in fake.containers.values()}
    for pod in fake.pods:
        namespace, pod_name, members = KUBE[pod.name]
        labels = {kube.NAMESPACE: namespace, kube.POD_NAME: pod_name,
                  kube.POD_UID: f"uid-{pod.name}"}
        pod.spec.labels.update(labels)
        for member, container in members.items():
            by_name[member].labels.update({**labels, kube.CONTAINER_NAME: container})
    return fake


async def kube_containers(pilot: Pilot[Any]) -> None:
    """The NAMESPACE column and pod/container names; the cursor on shop's frontend (web-1,
    whose log tail the split view shows at 160x48)."""
    app: Any = pilot.app
    await settle(pilot, lambda: app.source.state.connected and len(app.source.state.stats) == 4)
    await settle(pilot, _table_rows(app, 6))
    screen = app.screen
    web1 = next(c.id for c in app.fake.containers.values() if c.name == "web-1")
    screen.table.move_to_key(web1)
    if screen.split_shown:
        peek = screen.query_one(ContainerPeek)
        await settle(pilot, lambda: peek.container_id == web1
                     and peek.query_one(LogView).shown_count() == 112)
        await pilot.pause(0.2)


async def kube_filtered(pilot: Pilot[Any]) -> None:
    """``ns=default`` typed in the filter: the shop pod's two containers."""
    await kube_containers(pilot)
    app: Any = pilot.app
    await pilot.press("slash")
    app.screen.query_one(Input).cursor_blink = False
    await pilot.press(*"ns=default")
    screen = app.screen_stack[-2]
    await settle(pilot, lambda: len(screen.table.order) == 2)
    await pilot.pause(0.4)


async def kube_pods(pilot: Pilot[Any]) -> None:
    """The NAMESPACE column, Kubernetes pod names and the members' container names."""
    await kube_containers(pilot)
    await pilot.press("5")
    await settle(pilot, _table_rows(pilot.app, 2))
    await screen_workers_done(pilot)
    await pilot.pause()


KUBE_SCREENS: dict[str, Callable[[Pilot[Any]], Awaitable[None]]] = {
    "containers": kube_containers,
    "filtered": kube_filtered,
    "pods": kube_pods,
}


@pytest.mark.parametrize("size", list(SIZES))
@pytest.mark.parametrize("screen", list(KUBE_SCREENS))
def test_kube_screen(snap_compare: Any, screen: str, size: str) -> None:
    fake = kube_fake()
    app = make_app(fake)
    app.fake = fake  # type: ignore[attr-defined]
    assert snap_compare(app, terminal_size=SIZES[size], run_before=KUBE_SCREENS[screen])
