"""The log reader alone, on files the monitor's LogWriter wrote: chunks complete and in order,
tail, time windows, streams, damaged lines, rotation, and following through inotify."""

from __future__ import annotations

import asyncio
import socket
from pathlib import Path

import pytest

from servin.engine.containers import logs as logreader
from servin.engine.containers.logs import LogChunk, read_log
from servin.engine.runtime.monitor.logfile import LogWriter
from servin.engine.runtime.monitor.protocol import STDERR, STDOUT

T0 = 1_700_000_000_000_000_000  # ns


def write(path: Path, lines: list[tuple[int, bytes]], *, max_size: int = 0, max_file: int = 1,
          step_ns: int = 1_000_000) -> list[int]:  # fmt: skip
    """Log ``lines`` (stream, text) one entry each, times T0 + i*step; returns the times."""
    w = LogWriter(str(path), max_size=max_size, max_file=max_file)
    times = []
    for i, (stream, text) in enumerate(lines):
        times.append(T0 + i * step_ns)
        w.write(stream, text, times[-1])
    w.close()
    return times


def collect(path: Path, **kw: object) -> list[LogChunk]:
    async def go() -> list[LogChunk]:
        return [c async for c in read_log(path, **kw)]  # type: ignore[arg-type]

    return asyncio.run(go())


def flat(chunks: list[LogChunk]) -> list[tuple[int, int, bytes]]:
    return [(s, t, bytes(d)) for c in chunks for s, t, d in c.records()]


def numbered(n: int, every_err: int = 0) -> list[tuple[int, bytes]]:
    return [(STDERR if every_err and i % every_err == 0 else STDOUT, b"line %06d\n" % i)
            for i in range(n)]  # fmt: skip


def test_many_chunks_complete_in_order_with_times(tmp_path: Path) -> None:
    log = tmp_path / "c-json.log"
    lines = numbered(30_000, every_err=7)  # ~2.4 MB of file: several chunks
    times = write(log, lines)
    chunks = collect(log, timestamps=True)
    assert len(chunks) > 3
    assert flat(chunks) == [(s, t, d) for (s, d), t in zip(lines, times, strict=True)]


def test_without_times_runs_of_one_stream_are_merged(tmp_path: Path) -> None:
    log = tmp_path / "c-json.log"
    lines = numbered(5000, every_err=100)
    write(log, lines)
    got = flat(collect(log))
    assert all(t == 0 for _, t, _ in got)
    assert len(got) < 200  # runs, not entries
    for stream in (STDOUT, STDERR):
        assert b"".join(d for s, _, d in got if s == stream) == b"".join(
            d for s, d in lines if s == stream)
    # The order across streams is kept: each run holds the lines between two changes.
    assert b"".join(d for _, _, d in got) == b"".join(d for _, d in lines)


def test_stream_choice(tmp_path: Path) -> None:
    log = tmp_path / "c-json.log"
    lines = numbered(1000, every_err=3)
    write(log, lines)
    for stdout, stderr, want in ((True, False, {STDOUT}), (False, True, {STDERR})):
        got = flat(collect(log, stdout=stdout, stderr=stderr, timestamps=True))
        assert [d for _, _, d in got] == [d for s, d in lines if s in want]


def test_tail_across_rotated_files(tmp_path: Path) -> None:
    log = tmp_path / "c-json.log"
    lines = numbered(3000)
    write(log, lines, max_size=20_000, max_file=5)
    assert log.with_name(log.name + ".3").exists()
    files = logreader.log_files(log)
    present = sum(len(f.read_bytes().splitlines()) for f in files)
    kept = [d for _, d in lines][-present:]
    for n in (0, 1, 5, 200, present - 1, present, present + 50):
        got = [d for _, _, d in flat(collect(log, tail=n, timestamps=True))]
        assert got == (kept[-n:] if n else []), n
    assert [d for _, _, d in flat(collect(log, timestamps=True))] == kept


def test_time_window(tmp_path: Path) -> None:
    log = tmp_path / "c-json.log"
    lines = numbered(20_000)
    times = write(log, lines)
    since, until = times[4000], times[15_000]
    got = flat(collect(log, since_ns=since, until_ns=until, timestamps=True))
    assert [t for _, t, _ in got] == times[4000:15_001]
    got = flat(collect(log, since_ns=since, until_ns=until))
    assert b"".join(d for _, _, d in got) == b"".join(d for _, d in lines[4000:15_001])
    # --tail applies before the window, as docker does.
    got = flat(collect(log, tail=100, since_ns=times[19_950], timestamps=True))
    assert [t for _, t, _ in got] == times[19_950:]


def test_damaged_and_unterminated_lines(tmp_path: Path) -> None:
    log = tmp_path / "c-json.log"
    write(log, numbered(10))
    good = log.read_bytes().splitlines(keepends=True)
    torn = good[3][: len(good[3]) // 2]
    log.write_bytes(b"".join(good[:3]) + torn + b"".join(good[3:]) + good[9][:-1])
    got = [d for _, _, d in flat(collect(log, timestamps=True))]
    # The torn line and the line it was glued to are lost; the rest, and an unterminated
    # but whole last entry, are read.
    assert got == [b"line %06d\n" % i for i in (0, 1, 2, 4, 5, 6, 7, 8, 9, 9)]


def test_non_ascii_sizes(tmp_path: Path) -> None:
    log = tmp_path / "c-json.log"
    lines = [(STDOUT, "été %d ☃\n".encode() % i) for i in range(50)]
    write(log, lines)
    assert [d for _, _, d in flat(collect(log, timestamps=True))] == [d for _, d in lines]


def test_follow_wakes_on_writes_and_rotation_and_ends_at_exit(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # A follower that polled would sleep an hour here: only inotify can wake it.
    monkeypatch.setattr(logreader, "FOLLOW_POLL", 3600.0)
    log = tmp_path / "c-json.log"
    w = LogWriter(str(log), max_size=4000, max_file=3)
    w.write(STDOUT, b"before\n", T0)

    async def go() -> list[bytes]:
        exited = asyncio.Event()
        got: list[bytes] = []

        async def follow() -> None:
            async for chunk in read_log(log, follow=True, running=True, exited=exited,
                                        timestamps=True):  # fmt: skip
                got.extend(bytes(d) for _, _, d in chunk.records())

        task = asyncio.create_task(follow())
        for i in range(300):  # ~45 KB: the file rotates several times
            w.write(STDERR if i % 5 == 0 else STDOUT, b"tick %03d\n" % i, T0 + i + 1)
            if i % 10 == 0:
                want = 2 + i
                for _ in range(200):
                    if len(got) >= want:
                        break
                    await asyncio.sleep(0.01)
                assert len(got) >= want, (i, got[-3:])
        w.write(STDOUT, b"last\n", T0 + 1000)
        w.close()
        exited.set()
        await asyncio.wait_for(task, 10)
        return got

    got = asyncio.run(go())
    assert got == [b"before\n", *(b"tick %03d\n" % i for i in range(300)), b"last\n"]


def test_follow_of_a_stopped_container_returns_what_is_there(tmp_path: Path) -> None:
    log = tmp_path / "c-json.log"
    write(log, numbered(10))
    got = flat(collect(log, follow=True, running=False))
    assert b"".join(d for _, _, d in got) == b"".join(b"line %06d\n" % i for i in range(10))


def test_a_cancelled_follower_leaves_no_watch_behind(tmp_path: Path) -> None:
    # The inotify fd is closed when a follower goes; a reader left registered for its number
    # would break whatever the event loop gets that number for next (a monitor connection).
    log = tmp_path / "c-json.log"
    write(log, numbered(3))

    async def go() -> None:
        loop = asyncio.get_running_loop()
        for _ in range(3):
            follower = read_log(log, follow=True, running=True, exited=asyncio.Event())
            assert await anext(follower) is not None
            waiting = asyncio.ensure_future(anext(follower))
            await asyncio.sleep(0.05)  # now waiting on inotify
            waiting.cancel()
            with pytest.raises(asyncio.CancelledError):
                await waiting
            await follower.aclose()
            # Both ends are readable and take the lowest free numbers: the follower's.
            a, b = socket.socketpair()
            try:
                fired = {a.fileno(): asyncio.Event(), b.fileno(): asyncio.Event()}
                for fd, event in fired.items():
                    loop.add_reader(fd, event.set)
                a.send(b"x")
                b.send(b"x")
                for fd, event in fired.items():
                    await asyncio.wait_for(event.wait(), 5)
                    loop.remove_reader(fd)
            finally:
                a.close()
                b.close()

    asyncio.run(go())


def test_details_give_each_entry_with_its_attributes(tmp_path: Path) -> None:
    log = tmp_path / "c-json.log"
    for attrs, first in (({"tier": "web"}, 0), ({"tier": "db", "MODE": "x"}, 50)):
        w = LogWriter(str(log), attrs=attrs)  # a restart with other attributes appends
        for i in range(first, first + 50):
            w.write(STDERR if i % 7 == 0 else STDOUT, b"line %06d\n" % i, T0 + i)
        w.close()
    chunks = collect(log, details=True)
    got = [(c.attrs, bytes(d)) for c in chunks for _, _, d in c.records()]
    assert got == [({"tier": "web"} if i < 50 else {"tier": "db", "MODE": "x"}, b"line %06d\n" % i)
                   for i in range(100)]  # fmt: skip
    assert all(t == 0 for c in chunks for _, t, _ in c.records())  # no times unless asked
    assert all(not c.attrs for c in collect(log))  # nor attributes


def test_follow_picks_up_a_log_created_later(tmp_path: Path) -> None:
    log = tmp_path / "c-json.log"

    async def go() -> list[bytes]:
        exited = asyncio.Event()
        got: list[bytes] = []

        async def follow() -> None:
            async for chunk in read_log(log, follow=True, running=True, exited=exited):
                got.extend(bytes(d) for _, _, d in chunk.records())

        task = asyncio.create_task(follow())
        await asyncio.sleep(0.1)
        write(log, numbered(3))
        for _ in range(200):
            if got:
                break
            await asyncio.sleep(0.01)
        exited.set()
        await asyncio.wait_for(task, 10)
        return got

    assert b"".join(asyncio.run(go())) == b"".join(d for _, d in numbered(3))


def test_cri_lines_decode_with_partial_pieces_joined() -> None:
    block = (b"2026-12-05T01:50:48.515048029Z stdout F starting\n"
             b"2026-12-05T01:50:48.6Z stdout P part one \n"
             b"damaged line\n"
             b"2026-12-05T01:50:48.7Z stderr F \n"
             b"2026-12-05T01:50:48.8Z stdout F and the rest\n")
    entries = logreader.decode_cri_lines(block)
    assert entries.texts == ["starting\n", "part one ", "\n", "and the rest\n"]
    assert entries.names == ["stdout", "stdout", "stderr", "stdout"]
    assert entries.times[0] == "2026-12-05T01:50:48.515048029Z"
