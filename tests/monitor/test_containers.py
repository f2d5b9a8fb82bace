"""Real containers through the zygote and a monitor, with the native runtime and with runc."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import time
from pathlib import Path

import pytest

from servin.engine.runtime.monitor.client import spawn
from servin.engine.runtime.monitor.protocol import (
    CONTAINER_PID,
    EXIT_RECORD,
    MONITOR_COMM,
    MONITOR_PID,
    MONITOR_SOCK,
    monitor_alive,
    read_exit_record,
)
from servin.errors import Conflict, ServinError

from .conftest import Harness, arun, zygote_pid


def json_log(path: Path) -> list[tuple[str, str]]:
    return [(e["stream"], e["log"]) for e in map(json.loads, path.read_text().splitlines())]


async def collect(att, until: bytes | None = None) -> dict[int, bytes]:
    out: dict[int, bytearray] = {1: bytearray(), 2: bytearray()}
    async for stream, data in att:
        out[stream] += data
        if until is not None and until in out[1]:
            break
    return {k: bytes(v) for k, v in out.items()}


def wait_monitor_gone(state_dir: Path, timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while monitor_alive(state_dir):
        assert time.monotonic() < deadline, "monitor did not exit"
        time.sleep(0.01)


def test_states_output_order_and_exit_code(harness: Harness) -> None:
    script = "i=1; while [ $i -le 500 ]; do echo out $i; echo err $i >&2; i=$((i+1)); done; exit 3"

    async def go():
        spec, mon = await harness.create(["/bin/sh", "-c", script])
        created = await mon.state()
        assert monitor_alive(spec.state_dir)
        await mon.start()
        record = await mon.wait()
        return spec, mon, created, record

    spec, mon, created, record = arun(go())
    assert created.status == "created" and created.pid > 0
    assert record.exit_code == 3 and record.signal is None and record.oom_killed is False
    assert record.started_at and record.finished_at >= record.started_at
    log = json_log(spec.log.path)
    assert [t for s, t in log if s == "stdout"] == [f"out {i}\n" for i in range(1, 501)]
    assert [t for s, t in log if s == "stderr"] == [f"err {i}\n" for i in range(1, 501)]
    assert read_exit_record(spec.state_dir) == record
    wait_monitor_gone(spec.state_dir)
    # The monitor cleaned up after itself but kept the record and the pid for the daemon.
    names = sorted(p.name for p in spec.state_dir.iterdir())
    assert names == sorted([CONTAINER_PID, EXIT_RECORD])
    # And wait() still answers, from disk.
    assert arun(mon.wait()) == record


def test_exit_zero_and_sigkill(harness: Harness) -> None:
    async def go():
        _, ok = await harness.run(["/bin/true"])
        _, victim = await harness.run(["/bin/sleep", "100"])
        running = await victim.state()
        await victim.kill(signal.SIGKILL)
        waits = await asyncio.gather(victim.wait(), victim.wait())
        return await ok.wait(), running, waits

    ok, running, (killed, killed_again) = arun(go())
    assert ok.exit_code == 0 and ok.signal is None
    assert running.status == "running"
    assert killed.exit_code == 137 and killed.signal == 9
    assert killed_again == killed


def test_cri_log_format(harness: Harness) -> None:
    async def go():
        spec, mon = await harness.run(["/bin/sh", "-c", "echo one; echo two >&2; printf three"],
                                      driver="cri")
        await mon.wait()
        return spec

    spec = arun(go())
    rows = [r.split(" ", 3) for r in spec.log.path.read_text().split("\n")[:-1]]
    by_stream = {s: [(tag, text) for _, s2, tag, text in rows if s2 == s]
                 for s in ("stdout", "stderr")}
    assert by_stream == {"stdout": [("F", "one"), ("F", "three")], "stderr": [("F", "two")]}


def test_log_rotation(harness: Harness) -> None:
    script = "i=0; while [ $i -lt 300 ]; do echo line $i; i=$((i+1)); done"

    async def go():
        spec, mon = await harness.run(["/bin/sh", "-c", script], max_size=2048, max_file=3)
        await mon.wait()
        return spec

    spec = arun(go())
    path = spec.log.path
    files = [path.with_name(path.name + ".2"), path.with_name(path.name + ".1"), path]
    assert sorted(p.name for p in path.parent.iterdir()) == sorted(p.name for p in files)
    numbers = [int(t.split()[1]) for f in files for _, t in json_log(f)]
    assert numbers == list(range(numbers[0], 300)) and numbers[0] > 0
    assert all(f.stat().st_size <= 2048 for f in files)


def test_a_slow_attach_client_gets_everything(harness: Harness) -> None:
    # 6 MB, read at a few MB/s: far behind a monitor that logs at hundreds of MB/s, but always
    # taking data, so the output waits for it (as docker's attach) instead of dropping frames.
    script = "yes 0123456789012345678901234567890123456789 | head -c 6000000; echo END"

    async def go():
        _spec, mon = await harness.create(["/bin/sh", "-c", script])
        slow = await mon.attach()
        await mon.start()
        got = bytearray()
        async for _stream, data in slow:
            got += data
            await asyncio.sleep(0.002)
        await slow.close()
        return bytes(got), await asyncio.wait_for(mon.wait(), 60)

    got, record = arun(go(), timeout=120)
    assert record.exit_code == 0
    assert len(got) == 6_000_000 + 4 and got.endswith(b"END\n")


def test_two_attach_clients_see_all_output(harness: Harness) -> None:
    script = "sleep 0.2; for i in 1 2 3 4 5; do echo out$i; echo err$i >&2; done"

    async def go():
        _spec, mon = await harness.create(["/bin/sh", "-c", script])
        a = await mon.attach()
        b = await mon.attach(stderr=False)
        await mon.start()
        got_a, got_b = await asyncio.gather(collect(a), collect(b))
        await a.close()
        await b.close()
        return got_a, got_b, await mon.wait()

    got_a, got_b, record = arun(go())
    expected_out = b"".join(b"out%d\n" % i for i in range(1, 6))
    assert got_a[1] == expected_out and got_b[1] == expected_out
    assert got_a[2] == b"".join(b"err%d\n" % i for i in range(1, 6))
    assert got_b[2] == b""
    assert record.exit_code == 0


def test_slow_attach_client_blocks_nobody(harness: Harness) -> None:
    # 8 MB of output: far past what the monitor buffers for one client that never reads.
    script = "yes 0123456789012345678901234567890123456789 | head -c 8000000; echo; echo END"

    async def go():
        spec, mon = await harness.create(["/bin/sh", "-c", script])
        stuck = await mon.attach()  # never read
        fast = await mon.attach()
        await mon.start()
        got = await collect(fast)
        record = await asyncio.wait_for(mon.wait(), 30)
        await stuck.close()
        await fast.close()
        return spec, got, record

    spec, got, record = arun(go())
    assert record.exit_code == 0
    assert len(got[1]) == 8000000 + 5 and got[1].endswith(b"\nEND\n")
    assert json_log(spec.log.path)[-1] == ("stdout", "END\n")


def test_stdin_through_attach(harness: Harness) -> None:
    async def go():
        spec, mon = await harness.create(["/bin/cat"], open_stdin=True)
        att = await mon.attach(stdin=True, stdin_once=True)
        await mon.start()
        await att.write(b"hello through stdin\n")
        first = await collect(att, until=b"stdin\n")
        await att.write(b"second\n")
        await att.close_stdin()  # stdin_once: EOF reaches cat, which exits
        rest = await collect(att)
        record = await mon.wait()
        await att.close()
        return spec, first, rest, record

    spec, first, rest, record = arun(go())
    assert first[1] == b"hello through stdin\n"
    assert rest[1] == b"second\n"
    assert record.exit_code == 0
    assert json_log(spec.log.path) == [("stdout", "hello through stdin\n"), ("stdout", "second\n")]


def test_close_stdin_request(harness: Harness) -> None:
    async def go():
        _, mon = await harness.run(["/bin/sh", "-c", "cat; exit 4"], open_stdin=True)
        await asyncio.sleep(0.1)
        assert (await mon.state()).status == "running"
        await mon.close_stdin()
        return await mon.wait()

    assert arun(go()).exit_code == 4


def test_tty_and_resize(harness: Harness) -> None:
    async def go():
        spec, mon = await harness.create(["/bin/sh", "-c", "read x; stty size; exit 5"],
                                         tty=True, open_stdin=True)
        att = await mon.attach(stdin=True)
        assert att.tty
        await mon.start()
        await mon.resize(37, 101)
        await att.write(b"go\r")
        got = await collect(att)
        await att.close()
        return spec, got, await mon.wait()

    spec, got, record = arun(go())
    assert b"37 101" in got[1]
    assert got[2] == b""
    assert record.exit_code == 5
    assert any("37 101" in t for s, t in json_log(spec.log.path) if s == "stdout")


def test_resize_without_tty_and_start_twice_are_errors(harness: Harness) -> None:
    async def go():
        _, mon = await harness.run(["/bin/sleep", "100"])
        with pytest.raises(ServinError):
            await mon.resize(10, 10)
        with pytest.raises(Conflict):
            await mon.start()
        await mon.kill(signal.SIGKILL)
        record = await mon.wait()
        with pytest.raises(ServinError):
            await mon.kill(signal.SIGKILL)  # served while lingering, or no monitor at all
        return record

    assert arun(go()).exit_code == 137


def test_failed_create_is_one_line_and_leaves_nothing(harness: Harness) -> None:
    zpid = zygote_pid(harness.zygote)
    before = children_of(zpid)

    async def go():
        spec = harness.spec(["/no/such/binary", "arg"])
        with pytest.raises(ServinError) as info:
            await spawn(harness.zygote, spec)
        return spec, info.value

    spec, error = arun(go())
    message = str(error)
    assert "\n" not in message and message
    assert "/no/such/binary" in message or "no such file" in message.lower(), message
    assert list(spec.state_dir.iterdir()) == []
    # The failed monitor answers just before it exits: give it a moment, no more.
    deadline = time.monotonic() + 5
    while children_of(zpid) - before and time.monotonic() < deadline:
        time.sleep(0.01)
    assert children_of(zpid) - before == set()
    assert not spec.log.path.exists()


def children_of(pid: int) -> set[int]:
    """The zygote's monitors (not the one it keeps waiting for the next request)."""
    out: set[int] = set()
    for tid in os.listdir(f"/proc/{pid}/task"):
        with open(f"/proc/{pid}/task/{tid}/children") as f:
            out.update(int(p) for p in f.read().split())
    monitors = set()
    for child in out:
        try:
            with open(f"/proc/{child}/comm") as f:
                if f.read().strip() == MONITOR_COMM:
                    monitors.add(child)
        except FileNotFoundError:
            continue
    return monitors


def test_monitor_files_while_running(harness: Harness) -> None:
    async def go():
        spec, mon = await harness.run(["/bin/sleep", "100"])
        state = await mon.state()
        names = sorted(p.name for p in spec.state_dir.iterdir())
        await mon.kill(signal.SIGKILL)
        await mon.wait()
        return spec, state, names

    spec, state, names = arun(go())
    assert names == sorted([CONTAINER_PID, MONITOR_PID, MONITOR_SOCK])
    assert int((spec.state_dir / CONTAINER_PID).read_text()) == state.pid


def test_oom_kill_is_reported(harness: Harness) -> None:
    # The shell keeps a 200 MB string in its own memory: with a 32 MB limit (and no swap
    # beyond it) the kernel's OOM killer takes the init.
    script = "x=$(head -c 200000000 /dev/zero | tr '\\0' a); echo survived"

    async def go():
        spec, mon = await harness.run(["/bin/sh", "-c", script], memory_limit=32 << 20)
        return spec, await asyncio.wait_for(mon.wait(), 60)

    spec, record = arun(go())
    assert record.oom_killed is True
    assert record.exit_code == 137 and record.signal == 9
    assert ("stdout", "survived\n") not in json_log(spec.log.path)


def test_container_gets_default_signal_dispositions(harness: Harness) -> None:
    # Python ignores SIGPIPE and the zygote handles SIGTERM and ignores SIGCHLD: none of
    # that may reach the container (ignored signals survive execve). No shell in between:
    # busybox sh ignores SIGQUIT for the commands it runs.
    async def go():
        spec, mon = await harness.run(["/bin/grep", "-E", "^Sig(Ign|Blk)", "/proc/self/status"])
        await mon.wait()
        return spec

    spec = arun(go())
    lines = {t.split(":")[0]: t.split(":")[1].strip() for _, t in json_log(spec.log.path)}
    assert lines == {"SigIgn": "0000000000000000", "SigBlk": "0000000000000000"}


def test_state_dir_longer_than_a_socket_path(harness: Harness) -> None:
    # sockaddr_un holds 107 bytes; exec roots in deep temp dirs (and 64-hex ids) exceed it.
    harness.state_root = harness.state_root / ("d" * 60) / ("e" * 60)

    async def go():
        spec, mon = await harness.create(["/bin/sh", "-c", "read x; echo got $x"],
                                         tty=True, open_stdin=True)
        assert len(str(spec.state_dir / "monitor.sock")) > 108
        att = await mon.attach(stdin=True)
        await mon.start()
        await att.write(b"long\r")
        got = await collect(att)
        await att.close()
        return got, await mon.wait()

    got, record = arun(go())
    assert b"got long" in got[1] and record.exit_code == 0
