"""Exec through a container's monitor, with the native runtime and with runc."""

from __future__ import annotations

import asyncio
import json
import signal
from pathlib import Path

import pytest

from servin.engine.runtime.monitor.protocol import MONITOR_PID
from servin.errors import Conflict, NotFound
from tests.monitor.conftest import Harness, arun


def bundle_process(harness: Harness, spec, args: list[str], *, tty: bool = False) -> dict:
    process = json.loads((spec.bundle / "config.json").read_text())["process"]
    process["args"] = args
    process["terminal"] = tty
    return process


async def collect(att) -> dict[int, bytes]:
    out: dict[int, bytearray] = {1: bytearray(), 2: bytearray()}
    async for stream, data in att:
        out[stream] += data
    return {k: bytes(v) for k, v in out.items()}


def test_exec_joins_pid_namespace_and_reports_exit_code(harness: Harness) -> None:
    async def go():
        spec, mon = await harness.run(["/bin/sh", "-c", "echo $$ > /tmp/initpid; sleep 60"])
        await asyncio.sleep(0.2)
        process = bundle_process(harness, spec, [
            "/bin/sh", "-c", "cat /tmp/initpid; echo $$; readlink /proc/1/ns/pid;"
            " readlink /proc/self/ns/pid; echo oops >&2; exit 7"])
        pid, att = await mon.exec("e1", process)
        out = await collect(att)
        code = await mon.exec_wait("e1")
        state = await mon.exec_state("e1")
        await mon.kill(9)
        await mon.wait()
        return pid, out, code, state

    pid, out, code, state = arun(go())
    lines = out[1].decode().split()
    assert lines[0] == "1", lines  # the init is PID 1: the exec sees the container's pid ns
    assert lines[1] != "1" and int(lines[1]) < 100, lines
    assert lines[2] == lines[3], "the exec is in the init's pid namespace"
    assert out[2] == b"oops\n"
    assert code == 7
    assert state["running"] is False and state["exit_code"] == 7 and state["pid"] == pid


def status_of(pid: int) -> dict[str, str]:
    with open(f"/proc/{pid}/status") as f:
        return dict(line.split(":\t", 1) for line in f.read().splitlines() if ":\t" in line)


def test_exec_process_is_placed_like_the_init(harness: Harness) -> None:
    """The exec is in the init's cgroup and security settings; with the native runtime it is
    the monitor's own child from its first instant (one fork, nothing reparented)."""
    async def go():
        spec, mon = await harness.run(["/bin/sleep", "60"])
        init = int((await mon.state()).pid)
        process = bundle_process(harness, spec, ["/bin/sleep", "30"])
        pid, att = await mon.exec("slow", process, attach=False)
        assert att is None
        monitor = int((spec.state_dir / MONITOR_PID).read_text().split()[0])
        seen = (status_of(pid), status_of(init), Path(f"/proc/{pid}/cgroup").read_text(),
                Path(f"/proc/{init}/cgroup").read_text(), monitor)
        await mon.exec_kill("slow", signal.SIGKILL)
        code = await mon.exec_wait("slow")
        await mon.kill(9)
        await mon.wait()
        return seen, code

    (status, init_status, cgroup, init_cgroup, monitor), code = arun(go())
    assert code == 128 + signal.SIGKILL
    assert cgroup == init_cgroup and cgroup.strip()
    for key in ("CapEff", "CapPrm", "CapBnd", "NoNewPrivs", "Seccomp"):
        assert status[key] == init_status[key], key
    if harness.runtime == "native":
        assert int(status["PPid"]) == monitor


def test_exec_stdin_and_tty(harness: Harness) -> None:
    async def go():
        spec, mon = await harness.run(["/bin/sleep", "60"])
        process = bundle_process(harness, spec, ["/bin/cat"])
        _, att = await mon.exec("cat", process, stdin=True)
        await att.write(b"hello through stdin\n")
        await att.close_stdin()
        out = await collect(att)
        code = await mon.exec_wait("cat")
        tty_process = bundle_process(harness, spec, ["/bin/sh", "-c", "stty size; tty"],
                                     tty=True)
        tty_process["consoleSize"] = {"height": 33, "width": 101}
        _, att2 = await mon.exec("tty", tty_process)
        out2 = await collect(att2)
        code2 = await mon.exec_wait("tty")
        await mon.kill(9)
        await mon.wait()
        return out, code, out2, code2

    out, code, out2, code2 = arun(go())
    assert out[1] == b"hello through stdin\n" and code == 0
    text = out2[1].decode()
    assert "33 101" in text and "/dev/pts/" in text, text
    assert code2 == 0


def test_exec_errors(harness: Harness) -> None:
    async def go():
        spec, mon = await harness.run(["/bin/sleep", "60"])
        process = bundle_process(harness, spec, ["no-such-program"])
        with pytest.raises(NotFound) as missing:
            await mon.exec("m", process)
        with pytest.raises(NotFound):
            await mon.exec_state("never-started")
        await mon.kill(9)
        await mon.wait()
        return str(missing.value)

    message = arun(go())
    assert "no-such-program" in message
    assert "\n" not in message


def test_exec_in_stopped_container_is_refused(harness: Harness) -> None:
    async def go():
        spec, mon = await harness.create(["/bin/true"])
        process = bundle_process(harness, spec, ["/bin/true"])
        with pytest.raises(Conflict):
            await mon.exec("x", process)
        await mon.start()
        await mon.wait()

    arun(go())
