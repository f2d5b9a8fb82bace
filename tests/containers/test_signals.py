"""Signals reach containers as docker delivers them, whatever the daemon ignored or blocked.

The module's daemon is started the hostile way (signals ignored and blocked, as ``nohup``, a
service manager or a shell may leave them): the container's program and every exec must still
start with every disposition at its default and an empty mask (docker: SigIgn and SigBlk all
zeros). Then every signal 1-64, by docker's name and by number, goes through ``kill -s``,
``stop -s``, ``--stop-signal`` and an image's STOPSIGNAL.

Efficient: one trap script reports many signals. For ``kill`` one container traps every
trappable signal and logs it; ``stop`` ends its container, so each stop case gets a container
of its own (created and started through the API, in parallel) whose trap exits with the
signal's number, and the stops themselves go through the CLI. Signals no shell can trap are
checked by their effect: KILL ends the container, STOP freezes it until CONT, and 32/33 (glibc
keeps them for itself, so busybox cannot trap them) kill a process that is not a namespace's
init (``--pid host``) by their default action.
"""

from __future__ import annotations

import ctypes
import signal
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from servin.signals import SIGNALS
from tests.daemon import DaemonProcess, short_tmpdir

UNTRAPPABLE = {9, 19, 32, 33}  # KILL, STOP, and glibc's own two
TRAPPABLE = [n for n in range(1, 65) if n not in UNTRAPPABLE]
# Ignored and blocked in the daemon (and so, without the fix, in its containers).
IGNORED = (signal.SIGHUP, signal.SIGQUIT, signal.SIGUSR1, signal.SIGPIPE, 33, 36)
BLOCKED = (signal.SIGUSR2, signal.SIGWINCH, 39)  # (not TERM: the daemon stops with it)


def names_of(number: int) -> list[str]:
    """docker's names of a signal (RTMIN+2 and RTMAX-12 both name 36)."""
    return [name for name, value in SIGNALS.items() if value == number]


def _ignore_raw(signum: int) -> None:
    # glibc refuses to touch 32 and 33 (signal.signal too): the raw syscall can.
    act = (ctypes.c_ulong * 4)(1, 0, 0, 0)  # SIG_IGN
    libc = ctypes.CDLL(None, use_errno=True)
    number = {"x86_64": 13, "aarch64": 134}[__import__("platform").machine()]
    if libc.syscall(number, signum, ctypes.byref(act), None, 8) != 0:
        raise OSError(ctypes.get_errno(), f"rt_sigaction({signum})")


def _hostile() -> None:
    """In the daemon's process before exec: what careless parents leave behind."""
    for signum in IGNORED:
        _ignore_raw(signum)
    signal.pthread_sigmask(signal.SIG_BLOCK, BLOCKED)


@pytest.fixture(scope="module")
def hostile(busybox_tar: Path) -> Iterator[DaemonProcess]:
    d = DaemonProcess(short_tmpdir(), preexec=_hostile).start()
    try:
        status = Path(f"/proc/{d.proc.pid}/status").read_text()  # type: ignore[union-attr]
        assert "SigIgn:\t0000000000000000" not in status  # the set-up did what it says
        d.cli("import", "-c", 'CMD ["sh"]', str(busybox_tar), "busybox", check=True)
        yield d
    finally:
        d.cleanup()


def _client(d: DaemonProcess):  # type: ignore[no-untyped-def]
    from servin.client.sync import Client

    return Client(d.host)


def _status_masks(text: str) -> dict[str, str]:
    return {k: v.strip() for k, v in (line.split(":", 1) for line in text.splitlines())
            if k in ("SigIgn", "SigBlk")}


ZERO = "0000000000000000"


@pytest.mark.parametrize("runtime", ["native", "runc", "crun"])
def test_program_and_exec_start_with_default_dispositions(hostile: DaemonProcess,
                                                          runtime: str) -> None:
    out = hostile.cli("run", "--rm", "--runtime", runtime, "busybox", "cat", "/proc/self/status",
                      check=True)
    assert _status_masks(out.stdout) == {"SigIgn": ZERO, "SigBlk": ZERO}
    cid = hostile.cli("run", "-d", "--runtime", runtime, "busybox", "sleep", "600",
                      check=True).stdout.strip()
    try:
        pid = hostile.cli("inspect", "-f", "{{.State.Pid}}", cid, check=True).stdout.strip()
        assert _status_masks(Path(f"/proc/{pid}/status").read_text()) == {
            "SigIgn": ZERO, "SigBlk": ZERO}
        out = hostile.cli("exec", cid, "cat", "/proc/self/status", check=True)
        assert _status_masks(out.stdout) == {"SigIgn": ZERO, "SigBlk": ZERO}
    finally:
        hostile.cli("rm", "-f", cid)


def test_init_child_starts_with_default_dispositions(hostile: DaemonProcess) -> None:
    out = hostile.cli("run", "--rm", "--init", "busybox", "cat", "/proc/self/status", check=True)
    assert _status_masks(out.stdout) == {"SigIgn": ZERO, "SigBlk": ZERO}


# ----- kill -s --------------------------------------------------------------------------------

_WAIT_LOOP = "mkfifo /tmp/f; exec 3<>/tmp/f; "  # a wait without children (no stray SIGCHLD)
# The shell runs a trap between commands, or when a signal interrupts its blocking read. A
# signal landing just before the read blocks (or while another trap runs) is only marked
# pending: with a plain `read` its trap would wait for the next signal, and the last signal
# of a burst could wait forever. `read -t 1` ends every second, so a pending trap runs within
# a second; a signal that never arrived still leaves no line.
_WAIT_FOREVER = "while :; do read -t 1 x <&3; done"


def _trap_script(action: Callable[[int], str]) -> str:
    traps = "; ".join(f"trap '{action(n)}' {n}" for n in TRAPPABLE)
    return f"{_WAIT_LOOP}{traps}; echo ready; {_WAIT_FOREVER}"


def _wait_logs(d: DaemonProcess, cid: str, ready: Callable[[str], bool],
               timeout: float = 60, missing: Callable[[str], object] | None = None) -> str:
    """The container's logs once ``ready`` says so (``missing`` says what is absent if not)."""
    deadline = time.monotonic() + timeout
    while True:
        text = d.cli("logs", cid).stdout
        if ready(text):
            return text
        assert time.monotonic() < deadline, (missing(text) if missing else "", text[-2000:])
        time.sleep(0.2)


def _counts(text: str) -> dict[int, int]:
    counts: dict[int, int] = {}
    for line in text.splitlines():
        if line.startswith("got "):
            n = int(line.split()[1])
            counts[n] = counts.get(n, 0) + 1
    return counts


def test_kill_delivers_every_trappable_signal_by_name_and_number(hostile: DaemonProcess) -> None:
    cid = hostile.cli("run", "-d", "busybox", "sh", "-c",
                      _trap_script(lambda n: f"echo got {n}"), check=True).stdout.strip()
    try:
        _wait_logs(hostile, cid, lambda t: "ready" in t)
        rounds = [
            [names_of(n)[0] for n in TRAPPABLE],  # QUIT, RTMIN+3, ...
            [f"SIG{names_of(n)[-1]}".lower() for n in TRAPPABLE],  # sigquit, sigrtmax-12, ...
            [str(n) for n in TRAPPABLE],  # 3, 37, ...
        ]
        # The kernel discards a pending SIGCONT when a stop signal (TSTP, TTIN, TTOU) is sent,
        # and pending stop signals when CONT is sent, trapped or not: CONT goes on its own,
        # once every other signal of the round has been trapped.
        cont = int(signal.SIGCONT)
        batches = [[n for n in TRAPPABLE if n != cont], [cont]]
        for i, spellings_ in enumerate(rounds, start=1):
            spelled = dict(zip(TRAPPABLE, spellings_, strict=True))
            for batch in batches:
                _send_kills(hostile, cid, [spelled[n] for n in batch], cli=i == 1)
                _wait_logs(hostile, cid, lambda t, i=i, b=batch: all(
                    _counts(t).get(n, 0) >= i for n in b), missing=lambda t, i=i, b=batch: [
                    n for n in b if _counts(t).get(n, 0) < i])
            counts = _counts(hostile.cli("logs", cid, check=True).stdout)
            assert counts == {n: i for n in TRAPPABLE}, {
                n: c for n, c in counts.items() if c != i}
    finally:
        hostile.cli("rm", "-f", cid)


def _send_kills(d: DaemonProcess, cid: str, spellings_: list[str], cli: bool) -> None:
    """``kill -s`` each signal: through the CLI (four at a time), or through the very call the
    CLI makes (without a process start for each)."""
    if cli:
        with ThreadPoolExecutor(4) as pool:
            results = list(pool.map(lambda s: d.cli("kill", "-s", s, cid), spellings_))
        for spelling, out in zip(spellings_, results, strict=True):
            assert out.returncode == 0, (spelling, out.stderr)
        return
    from servin.api.servin.v1 import containers_pb2

    with _client(d) as client:
        for spelling in spellings_:
            client.containers.Kill(containers_pb2.KillContainerRequest(id=cid, signal=spelling))


@pytest.mark.parametrize("spelling", ["KILL", "9", "SIGKILL"])
def test_kill_with_sigkill(hostile: DaemonProcess, spelling: str) -> None:
    cid = hostile.cli("run", "-d", "busybox", "sleep", "600", check=True).stdout.strip()
    try:
        hostile.cli("kill", "-s", spelling, cid, check=True)
        assert hostile.cli("wait", cid, check=True).stdout == "137\n"
    finally:
        hostile.cli("rm", "-f", cid)


def test_kill_with_stop_and_cont(hostile: DaemonProcess) -> None:
    cid = hostile.cli("run", "-d", "busybox", "sh", "-c",
                      f"{_WAIT_LOOP}trap 'echo got 18' 18; echo ready; {_WAIT_FOREVER}",
                      check=True).stdout.strip()
    try:
        _wait_logs(hostile, cid, lambda t: "ready" in t)
        pid = hostile.cli("inspect", "-f", "{{.State.Pid}}", cid, check=True).stdout.strip()

        def state() -> str:
            return next(line.split()[1] for line in
                        Path(f"/proc/{pid}/status").read_text().splitlines()
                        if line.startswith("State:"))

        for round_, (stop, cont) in enumerate((("STOP", "CONT"), ("19", "18")), start=1):
            hostile.cli("kill", "-s", stop, cid, check=True)
            deadline = time.monotonic() + 10
            while state() != "T":
                assert time.monotonic() < deadline, state()
                time.sleep(0.05)
            hostile.cli("kill", "-s", cont, cid, check=True)
            _wait_logs(hostile, cid, lambda t, r=round_: _counts(t).get(18, 0) >= r)
            assert state() != "T"
    finally:
        hostile.cli("rm", "-f", cid)


@pytest.mark.parametrize("number", [32, 33])
def test_kill_with_glibcs_own_signals(hostile: DaemonProcess, number: int) -> None:
    """No name (docker has none either); default action: the process ends by the signal."""
    cid = hostile.cli("run", "-d", "--pid", "host", "busybox", "sleep", "600",
                      check=True).stdout.strip()
    try:
        hostile.cli("kill", "-s", str(number), cid, check=True)
        assert hostile.cli("wait", cid, check=True).stdout == f"{128 + number}\n"
    finally:
        hostile.cli("rm", "-f", cid)


def test_bad_signals_are_refused(hostile: DaemonProcess, busybox_tar: Path) -> None:
    for bad in ("NOSUCH", "0", "65", "RTMIN+16", "SIG"):
        out = hostile.cli("kill", "-s", bad, "nosuchcontainer")
        assert out.returncode == 1 and f"invalid signal: {bad}" in out.stderr, (bad, out.stderr)
        out = hostile.cli("create", "--stop-signal", bad, "busybox")
        assert out.returncode == 125 and "invalid signal" in out.stderr, (bad, out.stderr)
    out = hostile.cli("import", "-c", "STOPSIGNAL NOSUCH", str(busybox_tar), "x:1")
    assert out.returncode == 1 and "invalid signal: NOSUCH" in out.stderr, out.stderr


# ----- stop -s, --stop-signal, STOPSIGNAL ----------------------------------------------------

def spellings(path: int) -> list[tuple[str, int]]:
    """(spelling, number) for every signal 1-64, as stop path ``path`` (0-2) gives it.

    Each stop costs a container (it ends it), so each path gets every signal once, the three
    paths rotating through docker's name, its SIG-prefixed other name and the number: every
    signal goes through every path, and every spelling of every signal through the stop paths
    together (``kill -s`` above takes all three spellings of every signal, on one container).
    """
    out = []
    for n in range(1, 65):
        forms = [str(n)]
        if names_of(n):
            forms = [names_of(n)[0], f"SIG{names_of(n)[-1]}", str(n)]
        out.append((forms[(n + path) % len(forms)], n))
    return out


EXIT_SCRIPT = _trap_script(lambda n: f"exit {n}")


def _expected(number: int) -> int:
    """The container's exit code after ``stop`` with this signal."""
    if number in (9, 19):
        return 137  # KILL at once; STOP freezes it, and the timeout's SIGKILL ends it
    return 128 + number if number in (32, 33) else number  # default action, or the trap's exit


def _start_all(d: DaemonProcess, specs: list[object]) -> list[str]:
    """Create and start containers (API, in parallel); wait until each trap script is ready."""
    from servin.api.servin.v1 import containers_pb2

    def one(spec: object) -> str:
        with _client(d) as client:
            cid = client.containers.Create(
                containers_pb2.CreateContainerRequest(spec=spec)).id
            client.containers.Start(containers_pb2.StartContainerRequest(id=cid))
            if spec.pid_mode != "host":  # type: ignore[attr-defined]
                deadline = time.monotonic() + 60
                while not any(b"ready" in e.data for e in client.containers.Logs(
                        containers_pb2.ContainerLogsRequest(id=cid, stdout=True, tail=-1))):
                    assert time.monotonic() < deadline, cid
                    time.sleep(0.05)
            return cid

    with ThreadPoolExecutor(6) as pool:
        return list(pool.map(one, specs))


def _spec(image: str, number: int, stop_signal: str = ""):  # type: ignore[no-untyped-def]
    from servin.api.servin.v1 import containers_pb2

    glibc_own = number in (32, 33)  # untrappable: a non-init process that ends by its default
    return containers_pb2.ContainerSpec(
        image=image, network_mode="none", stop_signal=stop_signal,
        pid_mode="host" if glibc_own else "",
        cmd=["sleep", "600"] if glibc_own else ["sh", "-c", EXIT_SCRIPT])


def _exit_codes(d: DaemonProcess, ids: list[str]) -> list[int]:
    from servin.api.servin.v1 import containers_pb2

    with _client(d) as client:
        return [client.containers.Wait(containers_pb2.WaitContainerRequest(id=c)).exit_code
                for c in ids]


def _check_exits(d: DaemonProcess, cases: list[tuple[str, int]], ids: list[str]) -> None:
    got = _exit_codes(d, ids)
    wrong = [(s, g) for (s, n), g in zip(cases, got, strict=True) if g != _expected(n)]
    assert not wrong, wrong


def _remove(d: DaemonProcess, ids: list[str]) -> None:
    for start in range(0, len(ids), 50):
        d.cli("rm", "-f", *ids[start:start + 50])


def test_stop_with_every_signal(hostile: DaemonProcess) -> None:
    """``stop -s`` does not choose the container: a few containers take every signal in turn,
    started again after each stop (no container made and removed per signal)."""
    from servin.api.servin.v1 import containers_pb2

    cases = spellings(0)
    trappable = [c for c in cases if c[1] not in (32, 33)]
    lanes = 4
    ids = _start_all(hostile, [_spec("busybox", 1) for _ in range(lanes)])
    glibc_own = _start_all(hostile, [_spec("busybox", n) for _, n in cases if n in (32, 33)])

    def lane(index: int) -> list[tuple[str, int]]:
        cid, wrong = ids[index], []
        with _client(hostile) as client:
            for spelling, number in trappable[index::lanes]:
                out = hostile.cli("stop", "-s", spelling, "-t", "2", cid)
                assert out.returncode == 0, (spelling, out.stderr)
                code = client.containers.Wait(
                    containers_pb2.WaitContainerRequest(id=cid)).exit_code
                if code != _expected(number):
                    wrong.append((spelling, code))
                _restart(client, cid)
        return wrong

    try:
        with ThreadPoolExecutor(lanes) as pool:
            wrong = [w for found in pool.map(lane, range(lanes)) for w in found]
        assert not wrong, wrong
        for (spelling, _), cid in zip([c for c in cases if c[1] in (32, 33)], glibc_own,
                                      strict=True):
            hostile.cli("stop", "-s", spelling, "-t", "2", cid, check=True)
        _check_exits(hostile, [c for c in cases if c[1] in (32, 33)], glibc_own)
    finally:
        _remove(hostile, ids + glibc_own)


def _restart(client: object, cid: str) -> None:
    """Start the trap container again and wait until its traps are set."""
    from servin.api.servin.v1 import containers_pb2

    since = time.time()
    client.containers.Start(containers_pb2.StartContainerRequest(id=cid))  # type: ignore[attr-defined]
    deadline = time.monotonic() + 60
    request = containers_pb2.ContainerLogsRequest(id=cid, stdout=True, tail=-1)
    request.since.FromNanoseconds(int(since * 1e9))
    while not any(b"ready" in e.data for e in client.containers.Logs(request)):  # type: ignore[attr-defined]
        assert time.monotonic() < deadline, cid
        time.sleep(0.05)


def test_stop_signal_option_with_every_signal(hostile: DaemonProcess) -> None:
    cases = spellings(1)
    ids = _start_all(hostile, [_spec("busybox", n, s) for s, n in cases])
    try:
        out = hostile.cli("stop", "-t", "2", *ids, timeout=600)
        assert out.returncode == 0, out.stderr
        _check_exits(hostile, cases, ids)
        shown = hostile.cli("inspect", "-f", "{{.Config.StopSignal}}", ids[0], check=True)
        assert shown.stdout.strip() == cases[0][0]
    finally:
        _remove(hostile, ids)


def test_image_stopsignal_with_every_signal(hostile: DaemonProcess, busybox_tar: Path) -> None:
    cases = spellings(2)
    tag = {s: f"stopsig-{i}:1" for i, (s, _) in enumerate(cases)}

    def make(spelling: str) -> None:
        with _client(hostile) as client:
            client.import_image(busybox_tar, tag[spelling], changes=[f"STOPSIGNAL {spelling}"])

    with ThreadPoolExecutor(4) as pool:
        list(pool.map(make, tag))
    ids = _start_all(hostile, [_spec(tag[s], n) for s, n in cases])
    try:
        out = hostile.cli("stop", "-t", "2", *ids, timeout=600)
        assert out.returncode == 0, out.stderr
        _check_exits(hostile, cases, ids)
    finally:
        _remove(hostile, ids)
        hostile.cli("rmi", *tag.values())


def test_quit_as_stop_signal_like_nginx(hostile: DaemonProcess, busybox_tar: Path) -> None:
    """The issue's case: an image whose STOPSIGNAL is SIGQUIT (nginx's) stops at once, though
    the daemon ignores SIGQUIT (a shell cannot even trap a signal ignored at its start)."""
    hostile.cli("import", "-c", "STOPSIGNAL SIGQUIT", str(busybox_tar), "quitter:1", check=True)
    cid = hostile.cli("run", "-d", "quitter:1", "sh", "-c",
                      f"{_WAIT_LOOP}trap 'exit 3' QUIT; echo ready; {_WAIT_FOREVER}",
                      check=True).stdout.strip()
    try:
        _wait_logs(hostile, cid, lambda t: "ready" in t)
        hostile.cli("stop", "-t", "20", cid, check=True)
        assert hostile.cli("wait", cid, check=True).stdout == "3\n"
    finally:
        hostile.cli("rm", "-f", cid)
        hostile.cli("rmi", "quitter:1")
