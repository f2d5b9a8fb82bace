"""The console's data layer against the fake daemon: subscriptions, coalescing, reconnects."""

from __future__ import annotations

import asyncio

from servin.api.servin.v1 import system_pb2
from servin.tui.source import Source
from tests.tui.fake import HOST, FakeDaemon
from tests.tui.helpers import async_test


def make_source(fake: FakeDaemon, coalesce: float = 0.05) -> Source:
    return Source(
        fake.client,
        HOST,
        clock=lambda: fake.now,
        coalesce=coalesce,
        backoff=(0.05, 0.2),
        list_interval=3600,
        unsupported_retry=3600,
    )


async def until(check: object, timeout: float = 5.0) -> None:
    deadline = asyncio.get_running_loop().time() + timeout
    while not check():  # type: ignore[operator]
        assert asyncio.get_running_loop().time() < deadline, "timed out"
        await asyncio.sleep(0.01)


@async_test
async def test_one_stats_and_one_events_subscription_and_coalesced_updates() -> None:
    fake = FakeDaemon()
    source = make_source(fake, coalesce=0.2)
    calls: list[set[str]] = []
    source.subscribe(calls.append)
    source.start()
    try:
        await source.wait_connected(5)
        await until(lambda: len(source.state.stats) == 4)
        await asyncio.sleep(0.3)
        # 12 stats batches and 14 events arrived, but listeners heard one coalesced call.
        assert len(calls) == 1
        assert {"connection", "containers", "stats", "events"} <= calls[0]
        assert len(source.state.events) == 14
        worker = next(c for c in source.state.containers.values() if c.name == "worker")
        assert len(source.state.history[worker.id].cpu) == 12
        assert source.state.stats[worker.id].cpu_percent > 50
        # No polling per container: one List at connect, no Inspect, no Top.
        methods = [m for m, _ in fake.calls]
        # One List at connect and one for the whole burst of 14 recorded events.
        assert methods.count("Containers.List") <= 2
        assert not [m for m in methods if m in ("Containers.Inspect", "Containers.Top")]
    finally:
        await source.stop()


@async_test
async def test_destroy_event_removes_at_once_and_unsupported_stats_are_noted() -> None:
    fake = FakeDaemon()
    fake.unsupported["Containers.Stats"] = "the daemon does not support this call yet"
    source = make_source(fake)
    source.start()
    try:
        await source.wait_connected(5)
        await until(lambda: source.state.stats_note != "")
        assert "does not support this call yet" in source.state.stats_note
        assert source.state.connected  # the rest keeps working
        db = fake.resolve("db")
        ev = system_pb2.Event(type="container", action="destroy", id=db.id)
        ev.time.FromSeconds(int(fake.now) + 10)
        fake.push_event(ev)
        await until(lambda: db.id not in source.state.containers)
    finally:
        await source.stop()


@async_test
async def test_reconnects_with_backoff_and_keeps_the_last_data() -> None:
    fake = FakeDaemon()
    source = make_source(fake)
    source.start()
    try:
        await source.wait_connected(5)
        before = dict(source.state.containers)
        fake.go_down()
        await until(lambda: not source.state.connected)
        assert source.state.containers == before
        assert "Cannot connect" in source.state.error
        attempts = fake.connections
        await asyncio.sleep(0.5)
        assert fake.connections > attempts
        fake.come_back()
        await source.wait_connected(5)
        assert source.state.error == ""
    finally:
        await source.stop()


@async_test
async def test_running_builds_follow_the_builder_events() -> None:
    fake = FakeDaemon()
    source = make_source(fake)
    source.start()
    try:
        await source.wait_connected(5)
        await until(lambda: len(source.state.events) == 14)  # the events stream is open

        def push(action: str, **attributes: str) -> None:
            ev = system_pb2.Event(type="builder", action=action, id="b1", attributes=attributes)
            ev.time.FromSeconds(int(fake.now) + 1000 + len(source.state.events))
            fake.push_event(ev)

        push("start", name="app:1")
        await until(lambda: source.state.builds.get("b1") == "app:1")
        push("step", name="app:1", step="2/5 RUN make")
        await until(lambda: source.state.builds.get("b1") == "app:1: 2/5 RUN make")
        push("end", name="app:1")
        await until(lambda: "b1" not in source.state.builds)
    finally:
        await source.stop()
