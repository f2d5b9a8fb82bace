"""The log view's model: capped buffer, filter, search, wrap, and its cost on big inputs."""

from __future__ import annotations

from servin.api.servin.v1 import containers_pb2
from servin.tui.logview import LogBuffer, LogLine, LogView, compile_pattern, lines_from_entries
from tests.tui.conftest import make_app
from tests.tui.fake import FakeDaemon
from tests.tui.helpers import async_test, settle


def test_buffer_caps_and_keeps_absolute_numbers() -> None:
    buf = LogBuffer(max_lines=1000)
    buf.extend([LogLine(0, 1, f"line {i}") for i in range(2500)])
    assert len(buf) <= 1000
    assert buf.get(buf.end - 1).text == "line 2499"
    assert buf.get(buf.dropped).text == f"line {buf.dropped}"


def test_entries_become_clean_lines_and_partials_join() -> None:
    def entry(data: bytes, stream: int = 1) -> containers_pb2.LogEntry:
        return containers_pb2.LogEntry(stream=stream, data=data, container_id="c1")

    partial: dict[str, str] = {}
    out = lines_from_entries(
        [entry(b"hel"), entry(b"lo\x1b[31m red\x1b[0m\n"), entry(b"a\tb\nsecond\n", 2)],
        None,
        partial,
    )
    assert [(ln.stream, ln.text) for ln in out] == [(1, "hello red"), (2, "a   b"), (2, "second")]


@async_test
async def test_a_hundred_thousand_lines_stay_cheap() -> None:
    app = make_app(FakeDaemon())
    async with app.run_test(size=(80, 24)) as pilot:
        await settle(pilot, lambda: app.source.state.connected)
        app.run_command("logs web-1")
        await settle(pilot, lambda: bool(app.screen.query(LogView)))
        view = app.screen.query_one(LogView)
        await settle(pilot, lambda: view.shown_count() == 112)  # the recorded tail first
        lines = [
            LogLine(float(i), 1, f"request {i} status {200 if i % 10 else 500}")
            for i in range(100_000)
        ]
        for i in range(0, len(lines), 1000):  # as the timer feeds it: batches
            view.append(lines[i : i + 1000])
        await pilot.pause()
        view.set_filter(compile_pattern("status 500"))
        assert view.shown_count() == 10_000
        view.set_filter(None)
        view.wrap = True
        await pilot.pause()
        # Only the visible rows are rendered: drawing costs the same for 100 or 100k lines
        # (how fast that is, `python -m servin.tui.bench` measures; tests do not time).
        assert len(view._cache) < 200
