"""Helpers for Pilot-driven tests of the console."""

from __future__ import annotations

from typing import Any

from textual.app import App


def screen_text(app: App[object]) -> str:
    """What the terminal shows right now, as plain text (one line per row)."""
    strips = app.screen._compositor.render_strips()
    return "\n".join("".join(seg.text for seg in strip) for strip in strips)


async def settle(pilot: object, ready: object, timeout: float = 10.0) -> None:
    """Pause the pilot until ``ready()`` is true (data arrived), then let the screen redraw."""
    import asyncio

    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while not ready():  # type: ignore[operator]
        if loop.time() > deadline:
            raise AssertionError("the console did not reach the expected state in time")
        await pilot.pause(0.05)  # type: ignore[attr-defined]
    await pilot.pause()  # type: ignore[attr-defined]


def async_test(fn: Any) -> Any:
    """Run an async test function in a fresh event loop (no pytest-asyncio needed)."""
    import asyncio
    import functools

    @functools.wraps(fn)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        return asyncio.run(fn(*args, **kwargs))

    return wrapper


async def screen_workers_done(pilot: object) -> None:
    """Wait for the current screen's own workers (loads, actions) to finish; the endless
    ones of other widgets (the split view's log tail) are not waited for."""
    app = pilot.app  # type: ignore[attr-defined]
    screen = app.screen
    await settle(pilot, lambda: all(w.is_finished for w in app.workers if w.node is screen))
