"""Containers outlive the daemon and the zygote: no running container, log line or exit lost."""

from __future__ import annotations

import asyncio
import json
import os
import shutil
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

from servin.engine.runtime.monitor import client
from servin.engine.runtime.monitor.client import MonitorClient
from servin.engine.runtime.monitor.protocol import MONITOR_COMM, monitor_alive, read_exit_record
from tests.daemon import short_tmpdir

from .bundle import remove_test_cgroups
from .conftest import REPO, Harness, arun, zygote_pid

COUNTER = "i=0; while [ $i -lt 60 ]; do echo $i; i=$((i+1)); sleep 0.05; done; exit 7"

# A stand-in for the daemon: starts (or reuses) the zygote, spawns and starts a container,
# stays attached to it, and prints what the test needs.
DAEMON = textwrap.dedent("""
    import asyncio, json, sys
    sys.path.insert(0, {repo!r})
    from servin.engine.runtime.monitor import client
    from servin.engine.runtime.monitor.protocol import SpawnSpec

    async def main():
        sock = client.ensure_zygote({exec_root!r})
        spec = SpawnSpec.from_json(json.loads({spec!r}))
        result = await client.spawn(sock, spec)
        mon = client.MonitorClient(spec.state_dir)
        attachment = await mon.attach()
        await mon.start()
        print(json.dumps({{"monitor_pid": result.monitor_pid, "pid": result.pid}}), flush=True)
        async for _ in attachment:
            pass
        await asyncio.sleep(3600)

    asyncio.run(main())
""")


@pytest.fixture
def private_root():
    """An exec root with its own zygote, which the test may kill (short path: its sockets
    must fit AF_UNIX's 107 bytes wherever pytest puts its temp dirs)."""
    base = short_tmpdir()
    root = base / "exec"
    yield root
    client.stop_zygote(root)
    remove_test_cgroups()
    shutil.rmtree(base, ignore_errors=True)


def test_container_survives_daemon_and_zygote_kill(harness: Harness, private_root: Path) -> None:
    spec = harness.spec(["/bin/sh", "-c", COUNTER])
    state_dir = private_root / "containers" / spec.id
    state_dir.mkdir(parents=True)
    spec_json = dict(spec.to_json(), state_dir=str(state_dir))
    harness.specs[-1] = type(spec).from_json(spec_json)
    code = DAEMON.format(repo=str(REPO), exec_root=str(private_root), spec=json.dumps(spec_json))
    daemon = subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE, text=True)
    try:
        line = daemon.stdout.readline()
        assert line, "the stand-in daemon failed"
        started = json.loads(line)
        old_zygote = zygote_pid(private_root / "monitor" / "zygote.sock")
        deadline = time.monotonic() + 10
        while len(spec.log.path.read_text().splitlines()) < 5:
            assert time.monotonic() < deadline, "no output"
            time.sleep(0.02)
    finally:
        daemon.kill()  # SIGKILL: the daemon gets no chance to clean anything up
        daemon.wait()
    waiting = _waiting_for_a_request(old_zygote)
    assert len(waiting) == 2, "the zygote keeps a monitor and its setup child forked ahead"
    os.kill(old_zygote, signal.SIGKILL)
    time.sleep(0.1)
    # The pair forked ahead goes with its zygote (nothing would ever serve its socket).
    deadline = time.monotonic() + 5
    while any(_running(pid) for pid in waiting):
        assert time.monotonic() < deadline, "the waiting monitor outlived its zygote"
        time.sleep(0.02)

    # The container and its monitor carry on without either.
    assert monitor_alive(state_dir)
    os.kill(started["pid"], 0)
    lines_then = len(spec.log.path.read_text().splitlines())

    async def reconnect():
        mon = MonitorClient(state_dir)
        state = await mon.state()
        # A restarted daemon starts a new zygote; the running monitor is not affected.
        sock = await asyncio.to_thread(client.ensure_zygote, private_root)
        return state, sock, await asyncio.wait_for(mon.wait(), 30)

    state, sock, record = arun(reconnect())
    assert state.status == "running" and state.pid == started["pid"]
    assert zygote_pid(sock) != old_zygote
    assert len(spec.log.path.read_text().splitlines()) > lines_then  # it kept logging
    assert record.exit_code == 7
    assert read_exit_record(state_dir) == record
    entries = [json.loads(x) for x in spec.log.path.read_text().splitlines()]
    assert [e["log"] for e in entries] == [f"{i}\n" for i in range(60)]  # no gap, no loss


def _children(pid: int) -> list[int]:
    out: list[int] = []
    for tid in os.listdir(f"/proc/{pid}/task"):
        with open(f"/proc/{pid}/task/{tid}/children") as f:
            out.extend(int(p) for p in f.read().split())
    return out


def _running(pid: int) -> bool:
    """Whether ``pid`` still runs (a zombie does not: its reaper may be this very test
    process, a subreaper after the runtime tests)."""
    try:
        with open(f"/proc/{pid}/stat", "rb") as f:
            return f.read().rsplit(b")", 1)[1].split()[0] not in (b"Z", b"X")
    except FileNotFoundError:
        return False


def _waiting_for_a_request(zygote: int) -> list[int]:
    """The zygote's monitor that has no container yet, and that monitor's setup child."""
    for child in _children(zygote):
        with open(f"/proc/{child}/comm") as f:
            if f.read().strip() != MONITOR_COMM:
                return [child, *_children(child)]
    return []


def test_exit_while_no_daemon_is_recorded(harness: Harness) -> None:
    """A container that exits while nobody listens leaves its record on disk."""

    async def go():
        spec, _mon = await harness.run(["/bin/sh", "-c", "sleep 0.2; exit 42"])
        return spec

    spec = arun(go())  # the "daemon" does not wait
    deadline = time.monotonic() + 10
    while monitor_alive(spec.state_dir):
        assert time.monotonic() < deadline
        time.sleep(0.02)
    record = read_exit_record(spec.state_dir)
    assert record is not None and record.exit_code == 42
    assert arun(MonitorClient(spec.state_dir).wait()) == record


def test_zygote_is_reused_and_replaced_when_stale(
    harness: Harness, private_root: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    sock = client.ensure_zygote(private_root)
    first = zygote_pid(sock)
    assert client.ensure_zygote(private_root) == sock and zygote_pid(sock) == first

    spec = harness.spec(["/bin/sleep", "100"])
    state_dir = private_root / "containers" / spec.id
    state_dir.mkdir(parents=True)
    spec = type(spec).from_json(dict(spec.to_json(), state_dir=str(state_dir)))
    harness.specs[-1] = spec

    async def run_one():
        await client.spawn(sock, spec)
        await MonitorClient(state_dir).start()

    arun(run_one())
    # Newer code on disk: the old zygote is asked to go and a new one takes its place.
    monkeypatch.setattr(client, "code_fingerprint", lambda: "something newer")
    assert client.ensure_zygote(private_root) == sock
    second = zygote_pid(sock)
    assert second != first
    deadline = time.monotonic() + 5
    while os.path.exists(f"/proc/{first}") and time.monotonic() < deadline:
        time.sleep(0.01)
    assert not os.path.exists(f"/proc/{first}") or _is_zombie(first)
    # The old zygote's monitor still serves its container.
    async def finish():
        mon = MonitorClient(state_dir)
        state = await mon.state()
        await mon.kill(signal.SIGKILL)
        return state, await mon.wait()

    state, record = arun(finish())
    assert state.status == "running" and record.exit_code == 137


def _is_zombie(pid: int) -> bool:
    with open(f"/proc/{pid}/stat") as f:
        return f.read().rsplit(")", 1)[1].split()[0] == "Z"
