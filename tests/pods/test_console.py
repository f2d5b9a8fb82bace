"""The console's Pods screen against a real daemon: a pod stopped with its key."""

from __future__ import annotations

import json
from typing import Any

from textual.widgets import DataTable

from servin.tui.app import ServinApp
from servin.tui.screens.pods import PodsScreen
from servin.tui.source import Source, client_factory
from tests.daemon import DaemonProcess
from tests.tui.helpers import async_test, settle


def _cells(app: Any) -> dict[str, list[str]]:
    table = app.screen.query_one(DataTable)
    rows = [[str(c) for c in table.get_row_at(i)] for i in range(table.row_count)]
    return {row[0]: row for row in rows}


def test_stop_a_pod_from_the_console(engine: DaemonProcess) -> None:
    engine.cli("pod", "create", "--name", "tui-pod", check=True)
    engine.cli("run", "-d", "--pod", "tui-pod", "--name", "tui-member", "busybox", "sleep",
               "600", check=True)

    @async_test
    async def drive() -> None:
        source = Source(client_factory(engine.host), engine.host, list_interval=0.5,
                        coalesce=0.05, stats_interval_ms=500)
        app = ServinApp(source)
        async with app.run_test(size=(160, 30)) as pilot:
            await settle(pilot, lambda: source.state.connected, timeout=20)
            await pilot.press("5")
            await settle(pilot, lambda: isinstance(app.screen, PodsScreen)
                         and "tui-pod" in _cells(app), timeout=20)
            row = _cells(app)["tui-pod"]
            assert row[2] == "Running" and row[4] == "tui-member"
            # The members' figures come from the stats stream.
            await settle(pilot, lambda: _cells(app)["tui-pod"][5] != "-", timeout=20)
            table = app.screen.query_one(DataTable)
            table.move_cursor(row=list(_cells(app)).index("tui-pod"))
            await pilot.press("s", "y")
            await settle(pilot, lambda: _cells(app).get("tui-pod", [""] * 3)[2] == "Exited",
                         timeout=60)

    drive()
    doc = json.loads(engine.cli("pod", "inspect", "tui-pod", check=True).stdout)[0]
    assert doc["State"] == "Exited"
    assert {c["State"] for c in doc["Containers"]} == {"exited"}
    engine.cli("pod", "rm", "tui-pod", check=True)
