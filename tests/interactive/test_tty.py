"""TTYs end to end, the CLI driven through a real pty: exec -it, run -it, start -ai, attach."""

from __future__ import annotations

import signal
import time
from collections.abc import Iterator

import pytest

from tests.daemon import DaemonProcess
from tests.interactive.ptyproc import PtyCli

PROMPT = rb"/ # "


@pytest.fixture
def ptys() -> Iterator[list[PtyCli]]:
    made: list[PtyCli] = []
    yield made
    for p in made:
        p.close()


def spawn(ptys: list[PtyCli], engine: DaemonProcess, *args: str, **size: int) -> PtyCli:
    p = PtyCli(engine.host, *args, **size)
    ptys.append(p)
    return p


def running(engine: DaemonProcess, cid: str) -> bool:
    return engine.cli("inspect", "-f", "{{.State.Running}}", cid,
                      check=True).stdout.strip() == "true"


def stty_size_after_resize(p: PtyCli, rows: int, cols: int) -> None:
    """Resize the window, then `stty size` in the container until it reports the new size."""
    p.resize(rows, cols)
    deadline = time.monotonic() + 10
    while True:
        p.send(b"stty size\r")
        m = p.read_until(rb"\r\n(\d+) (\d+)\r\n")
        if (int(m.group(1)), int(m.group(2))) == (rows, cols):
            return
        assert time.monotonic() < deadline, f"size stayed {m.group(0)!r}"
        time.sleep(0.1)


@pytest.mark.parametrize("runtime", ["native", "runc"])
def test_exec_it_prompt_command_resize_and_terminal_restored(
    engine: DaemonProcess, ptys: list[PtyCli], runtime: str
) -> None:
    cid = engine.cli("run", "-d", "--runtime", runtime, "busybox", "sleep", "300",
                     check=True).stdout.strip()
    try:
        p = spawn(ptys, engine, "exec", "-it", cid, "sh", rows=30, cols=100)
        before = p.stty()
        p.read_until(PROMPT)
        assert p.stty() != before  # raw while attached
        p.send(b"echo $((6 * 7)) $TERM; tty\r")
        p.read_until(rb"42 xterm\r\n/dev/pts/\d+\r\n")
        p.send(b"stty size\r")
        p.read_until(rb"\r\n30 100\r\n")  # the window's size from the start
        stty_size_after_resize(p, 40, 132)  # SIGWINCH -> resize, end to end
        p.send(b"exit 5\r")
        assert p.wait() == 5
        assert p.stty() == before, "the terminal was not restored"
        assert running(engine, cid)
    finally:
        engine.cli("rm", "-f", cid)


def test_run_it_and_start_ai(engine: DaemonProcess, ptys: list[PtyCli]) -> None:
    p = spawn(ptys, engine, "run", "-it", "--rm", "--name", "runit", "busybox", "sh",
              rows=25, cols=90)
    before = p.stty()
    p.read_until(PROMPT)
    stty_size_after_resize(p, 26, 91)
    p.send(b"exit 3\r")
    assert p.wait() == 3
    assert p.stty() == before
    assert engine.cli("inspect", "runit").returncode != 0  # --rm removed it

    cid = engine.cli("create", "-it", "busybox", "sh", check=True).stdout.strip()
    try:
        p = spawn(ptys, engine, "start", "-ai", cid, rows=20, cols=70)
        before = p.stty()
        p.read_until(PROMPT)
        p.send(b"stty size; exit 4\r")
        p.read_until(rb"20 70\r\n")
        assert p.wait() == 4
        assert p.stty() == before
    finally:
        engine.cli("rm", "-f", cid)


def test_two_attachers_see_output_and_detach_keeps_container(
    engine: DaemonProcess, ptys: list[PtyCli]
) -> None:
    cid = engine.cli("run", "-dit", "--name", "shared", "busybox", "sh",
                     check=True).stdout.strip()
    try:
        a = spawn(ptys, engine, "attach", "shared")
        b = spawn(ptys, engine, "attach", "shared")
        before_a, before_b = a.stty(), b.stty()
        # Once both are attached, a line typed in one shows in both.
        deadline = time.monotonic() + 15
        n = 0
        while True:
            n += 1
            a.send(f"echo marker-$(({n} * 1000))\r".encode())
            a.read_until(f"marker-{n * 1000}")
            try:
                b.read_until(f"marker-{n * 1000}", timeout=0.5)
                break
            except AssertionError:
                assert time.monotonic() < deadline, "the second attacher saw nothing"
        a.send(b"echo both-$((20 + 3))\r")
        a.read_until(rb"both-23\r\n")
        b.read_until(rb"both-23\r\n")

        a.send(b"\x10\x11")  # ctrl-p ctrl-q: detach the first attacher
        a.read_until(rb"read escape sequence\r?\n")  # docker's words, on the restored terminal
        assert a.wait() == 0
        assert a.stty() == before_a
        assert running(engine, cid)

        b.send(b"echo still-$((2 + 3))\r")  # the other one still works
        b.read_until(rb"still-5\r\n")
        b.send(b"\x10\x11")
        assert b.wait() == 0
        assert b.stty() == before_b
        assert running(engine, cid)

        # A custom detach sequence; the first key alone (then another) reaches the shell.
        c = spawn(ptys, engine, "attach", "--detach-keys", "ctrl-a,x", "shared")
        c.send(b"\r")
        c.read_until(PROMPT)
        c.send(b"\x01x")
        assert c.wait() == 0
        assert running(engine, cid)
        r = engine.cli("exec", cid, "true")
        assert r.returncode == 0
    finally:
        engine.cli("rm", "-f", cid)


def test_sigterm_restores_the_terminal(engine: DaemonProcess, ptys: list[PtyCli]) -> None:
    cid = engine.cli("run", "-d", "busybox", "sleep", "300", check=True).stdout.strip()
    try:
        p = spawn(ptys, engine, "exec", "-it", cid, "sh")
        before = p.stty()
        p.read_until(PROMPT)
        assert p.stty() != before
        p.proc.send_signal(signal.SIGTERM)
        assert p.wait() == 128 + signal.SIGTERM
        assert p.stty() == before
        # An error path: exec -it of a missing command restores it too.
        q = spawn(ptys, engine, "exec", "-it", cid, "no-such-shell")
        before = q.stty()
        assert q.wait() == 127
        assert q.stty() == before
        assert b"no-such-shell" in bytes(q.output)
    finally:
        engine.cli("rm", "-f", cid)
