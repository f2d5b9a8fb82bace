"""SIGKILL the daemon at named points of every mutating operation; the next start repairs.

Each case arms one crash point (``SERVIN_CRASH_AT``), makes the operation reach it, starts the
daemon again and checks the invariants of ``crashkit.check_invariants`` (the lists answer,
nothing half made is listed, no mount, cgroup, link, rule, monitor or file outside a record,
running containers run or have a recorded exit) plus what users expect of that operation
(restart policies carry on, the operation works again). The zygote and a monitor are killed
too. The summary lines "crash points tried" and "zygote and monitor kills tried" give the
counts.
"""

from __future__ import annotations

import os
import signal
import subprocess
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.daemon import short_tmpdir
from tests.hardening.crashkit import CrashDaemon, check_invariants, seen_ids, wait_for
from tests.hardening.figures import count
from tests.registry.registryd import Registry, start_registry

pytestmark = pytest.mark.slow

SLEEPER = ["busybox", "sleep", "1000"]


@pytest.fixture(scope="module")
def registry() -> Iterator[Registry]:
    reg = start_registry(short_tmpdir("sv-reg-"))
    try:
        yield reg
    finally:
        reg.stop()


@pytest.fixture(scope="module")
def house(busybox_tar: Path, registry: Registry) -> Iterator[CrashDaemon]:
    d = CrashDaemon(short_tmpdir())
    d.start()
    try:
        d.cli("import", "-c", 'CMD ["sh"]', str(busybox_tar), "busybox", check=True)
        ref = f"{registry.host}/crash/busybox:1"
        d.cli("tag", "busybox", ref, check=True)
        d.cli("push", ref, check=True)
        d.cli("rmi", ref, check=True)
        d.cli("tag", "busybox", "loadme:1", check=True)
        d.cli("save", "-o", str(d.base / "loadme.tar"), "loadme:1", check=True)
        d.cli("rmi", "loadme:1", check=True)
        yield d
    finally:
        d.restart()
        d.cleanup()


@dataclass
class Case:
    """One crash point and how to reach it."""

    point: str
    action: Callable[[CrashDaemon, str], object]  # (daemon, name) -> reaches the point
    setup: Callable[[CrashDaemon, str], object] = lambda d, n: None
    after: Callable[[CrashDaemon, str, dict], object] = lambda d, n, cs: None
    background: bool = False  # the point is reached by the daemon on its own (an exit)
    policy: bool = False  # the container has a restart policy (it keeps moving)


def cli(*args: str) -> Callable[[CrashDaemon, str], object]:
    """A CLI command with ``{n}`` replaced by the case's name (its result is not checked:
    the daemon dies under it)."""
    def run(d: CrashDaemon, n: str) -> object:
        return d.cli(*(a.format(n=n) for a in args), timeout=90)
    return run


def check(*args: str) -> Callable[[CrashDaemon, str], object]:
    def run(d: CrashDaemon, n: str) -> object:
        return d.cli(*(a.format(n=n) for a in args), check=True, timeout=90)
    return run


def steps(*fns: Callable[[CrashDaemon, str], object]) -> Callable[[CrashDaemon, str], object]:
    def run(d: CrashDaemon, n: str) -> object:
        for fn in fns:
            fn(d, n)
        return None
    return run


# -- what users expect after each kind of crash ------------------------------------------------


def absent(d: CrashDaemon, n: str, cs: dict) -> None:
    assert n not in cs, f"{n} is listed after its interrupted create/remove"


def startable(d: CrashDaemon, n: str, cs: dict) -> None:
    """Not running (its start never finished); start works now; then it goes."""
    assert cs[n]["State"]["Status"] in ("created", "exited"), cs[n]["State"]
    d.cli("start", n, check=True)
    assert d.state(n)["Status"] == "running"
    d.cli("rm", "-f", n, check=True)


def exited_then_rm(d: CrashDaemon, n: str, cs: dict) -> None:
    state = cs[n]["State"]
    assert state["Status"] == "exited" and state["FinishedAt"], state
    d.cli("rm", "-f", n, check=True)


def running_or_exited(d: CrashDaemon, n: str, cs: dict) -> None:
    """The signal was sent (PID 1 may ignore it): running, or exited with its exit recorded."""
    state = cs[n]["State"]
    assert state["Status"] == "running" or (state["Status"] == "exited"
                                            and state["FinishedAt"]), state
    d.cli("rm", "-f", n, check=True)


def running_again(d: CrashDaemon, n: str, cs: dict) -> None:
    """A restart policy carries on: the container runs again, start works, then it goes."""
    wait_for(lambda: d.state(n)["Status"] == "running", 30, f"{n} to run again")
    d.cli("stop", "-t", "0", n, check=True)
    d.cli("start", n, check=True)
    assert d.state(n)["Status"] == "running"
    d.cli("rm", "-f", n, check=True)


def running_unfrozen(d: CrashDaemon, n: str, cs: dict) -> None:
    state = d.state(n)
    assert state["Status"] == "running" and not state["Paused"], state
    freezer = Path("/sys/fs/cgroup/freezer/servin") / cs[n]["Id"] / "freezer.state"
    if freezer.exists():
        assert freezer.read_text().strip() == "THAWED"
    assert d.cli("exec", n, "true").returncode == 0
    d.cli("rm", "-f", n, check=True)


def image_absent(ref: str) -> Callable[[CrashDaemon, str, dict], object]:
    def after(d: CrashDaemon, n: str, cs: dict) -> None:
        listed = d.cli("images", "--format", "{{.Repository}}:{{.Tag}}", check=True).stdout
        assert ref.format(n=n) not in listed.split(), listed
    return after


def volume_absent_then_fresh(d: CrashDaemon, n: str, cs: dict) -> None:
    assert n not in d.cli("volume", "ls", "-q", check=True).stdout.split()
    d.cli("volume", "create", n, check=True)
    out = d.cli("run", "--rm", "-v", f"{n}:/v", "busybox", "ls", "-A", "/v", check=True).stdout
    assert out.strip() == "", f"a new volume {n} sees old data: {out!r}"
    d.cli("volume", "rm", n, check=True)


def network_whole_or_absent(d: CrashDaemon, n: str, cs: dict) -> None:
    if n in d.cli("network", "ls", "--format", "{{.Name}}", check=True).stdout.split():
        d.cli("run", "--rm", "--network", n, "busybox", "true", check=True)
        d.cli("network", "rm", n, check=True)


def connected_consistently(d: CrashDaemon, n: str, cs: dict) -> None:
    assert cs[n]["State"]["Status"] == "running"
    d.cli("rm", "-f", n, check=True)
    d.cli("network", "rm", f"{n}-net", check=True)


def still_running(d: CrashDaemon, n: str, cs: dict) -> None:
    assert cs[n]["State"]["Status"] == "running"
    assert d.cli("exec", n, "true").returncode == 0
    d.cli("rm", "-f", n, check=True)


RESTARTER = ["sh", "-c", "sleep 0.5; exit 1"]

CASES = [
    # run / create
    Case("container.create.after-snapshot", cli("create", "--name", "{n}", *SLEEPER), after=absent),
    Case("container.create.after-record", cli("run", "-d", "--name", "{n}", *SLEEPER),
         after=absent),
    # start (and run's start)
    Case("container.start.after-mount", cli("start", "{n}"),
         setup=check("create", "--name", "{n}", *SLEEPER), after=startable),
    Case("container.start.after-spawn", cli("start", "{n}"),
         setup=check("create", "--name", "{n}", "-p", "127.0.0.1::80", *SLEEPER),
         after=startable),
    Case("container.start.after-network", cli("run", "-d", "--name", "{n}", "-p",
                                              "127.0.0.1::80", *SLEEPER), after=startable),
    Case("container.start.after-monitor-start", cli("run", "-d", "--name", "{n}", *SLEEPER),
         after=startable),
    # stop, exit, restart, rm -f
    Case("container.stop.after-signal", cli("stop", "{n}"),
         setup=check("run", "-d", "--name", "{n}", *SLEEPER), after=running_or_exited),
    Case("container.exit.before-record", lambda d, n: None, background=True,
         setup=check("run", "-d", "--name", "{n}", "busybox", "sh", "-c", "sleep 0.5; exit 3"),
         after=exited_then_rm),
    Case("container.start.after-mount#2", cli("restart", "-t", "0", "{n}"),
         setup=check("run", "-d", "--name", "{n}", *SLEEPER), after=startable),
    Case("container.rm.after-kill", cli("rm", "-f", "{n}"),
         setup=check("run", "-d", "--name", "{n}", *SLEEPER), after=exited_then_rm),
    Case("container.rm.after-mark", cli("rm", "-f", "{n}"),
         setup=check("run", "-d", "--name", "{n}", *SLEEPER), after=absent),
    Case("container.rm.after-files", cli("rm", "{n}"),
         setup=check("create", "--name", "{n}", *SLEEPER), after=absent),
    # restart policies: the daemon dies while the policy restarts the container
    Case("container.start.after-spawn#2", lambda d, n: None, background=True, policy=True,
         setup=check("run", "-d", "--restart", "always", "--name", "{n}", "busybox",
                     *RESTARTER), after=running_again),
    Case("container.restart.before-start", lambda d, n: None, background=True, policy=True,
         setup=check("run", "-d", "--restart", "on-failure:50", "--name", "{n}", "busybox",
                     *RESTARTER), after=running_again),
    Case("container.start.after-monitor-start#2", lambda d, n: None, background=True, policy=True,
         setup=check("run", "-d", "--restart", "unless-stopped", "--name", "{n}", "busybox",
                     *RESTARTER), after=running_again),
    Case("container.exit.before-record#1", lambda d, n: None, background=True, policy=True,
         setup=check("run", "-d", "--restart", "always", "--name", "{n}", "busybox",
                     *RESTARTER), after=running_again),
    # commit
    Case("commit.after-freeze", cli("commit", "{n}", "{n}:img"),
         setup=check("run", "-d", "--name", "{n}", *SLEEPER), after=running_unfrozen),
    Case("commit.after-layer", cli("commit", "{n}", "{n}:img"),
         setup=check("run", "-d", "--name", "{n}", *SLEEPER), after=running_unfrozen),
    Case("commit.before-record", cli("commit", "{n}", "{n}:img"),
         setup=check("run", "-d", "--name", "{n}", "busybox", "sh", "-c",
                     "echo x > /made; sleep 1000"),
         after=lambda d, n, cs: (image_absent("{n}:img")(d, n, cs),
                                 running_unfrozen(d, n, cs))),
    # images
    Case("image.import.after-blobs", lambda d, n: d.cli("import", str(d.base / "rootfs.tar"),
                                                         f"{n}:1"),
         after=image_absent("{n}:1")),
    Case("image.import.after-unpack", lambda d, n: d.cli("import", str(d.base / "rootfs.tar"),
                                                          f"{n}:1"),
         after=image_absent("{n}:1")),
    Case("image.load.after-blobs", lambda d, n: d.cli("load", "-i", str(d.base / "loadme.tar")),
         after=image_absent("loadme:1")),
    Case("image.load.before-record", lambda d, n: d.cli("load", "-i",
                                                         str(d.base / "loadme.tar")),
         after=image_absent("loadme:1")),
    Case("image.pull.after-layers", lambda d, n: d.cli("pull", d.pull_ref),
         after=lambda d, n, cs: image_absent(d.pull_ref)(d, n, cs)),
    Case("image.pull.before-record", lambda d, n: d.cli("pull", d.pull_ref),
         after=lambda d, n, cs: image_absent(d.pull_ref)(d, n, cs)),
    # volumes
    Case("volume.create.after-dirs", cli("volume", "create", "{n}"),
         after=volume_absent_then_fresh),
    Case("volume.rm.after-rename", cli("volume", "rm", "{n}"),
         setup=check("run", "--rm", "-v", "{n}:/v", "busybox", "sh", "-c",
                     "mkdir /v/d && echo secret > /v/d/f"),
         after=volume_absent_then_fresh),
    Case("volume.rm.after-record", cli("volume", "rm", "{n}"),
         setup=check("run", "--rm", "-v", "{n}:/v", "busybox", "sh", "-c",
                     "echo secret > /v/f"),
         after=volume_absent_then_fresh),
    Case("volume.import.after-extract",
         lambda d, n: d.cli("volume", "import", n, str(d.base / "rootfs.tar")),
         after=volume_absent_then_fresh),
    # networks
    Case("network.create.after-record", cli("network", "create", "{n}"),
         after=network_whole_or_absent),
    Case("network.create.after-bridge", cli("network", "create", "{n}"),
         after=network_whole_or_absent),
    Case("network.rm.after-record", cli("network", "rm", "{n}"),
         setup=check("network", "create", "{n}"), after=network_whole_or_absent),
    Case("network.connect.after-record", cli("network", "connect", "{n}-net", "{n}"),
         setup=steps(check("network", "create", "{n}-net"),
                     check("run", "-d", "--name", "{n}", *SLEEPER)),
         after=connected_consistently),
    Case("network.connect.after-link", cli("network", "connect", "{n}-net", "{n}"),
         setup=steps(check("network", "create", "{n}-net"),
                     check("run", "-d", "--name", "{n}", *SLEEPER)),
         after=connected_consistently),
    # exec
    Case("exec.after-start", cli("exec", "{n}", "sleep", "1"),
         setup=check("run", "-d", "--name", "{n}", *SLEEPER), after=still_running),
]


def case_name(case: Case) -> str:
    return case.point.replace(".", "-").replace("#", "-")


@pytest.mark.parametrize("case", CASES, ids=[c.point for c in CASES])
def test_crash_point(house: CrashDaemon, registry: Registry, busybox_tar: Path,
                     case: Case) -> None:
    d = house
    d.pull_ref = f"{registry.host}/crash/busybox:1"
    if not (d.base / "rootfs.tar").exists():
        (d.base / "rootfs.tar").write_bytes(busybox_tar.read_bytes())
    name = case_name(case).lower().replace("_", "-")[:60]
    d.restart(case.point)
    case.setup(d, name)
    if case.background:
        d.died_at(case.point)
    else:
        case.action(d, name)
        d.died_at(case.point)
    candidates = seen_ids(d)
    d.restart()
    containers = check_invariants(d, candidates, frozenset({name} if case.policy else ()))
    case.after(d, name, containers)
    check_invariants(d, seen_ids(d))
    count("crash points tried")


def _parent(pid: int) -> int:
    with open(f"/proc/{pid}/stat", "rb") as f:
        return int(f.read().rsplit(b")", 1)[1].split()[1])


def test_zygote_killed(house: CrashDaemon) -> None:
    """Running containers carry on; the next run starts a new zygote."""
    d = house
    d.restart()
    d.cli("run", "-d", "--name", "before-zygote-kill", *SLEEPER, check=True)
    found = subprocess.run(["pgrep", "-f", f"zygote --socket {d.exec_root}"],
                           capture_output=True, text=True).stdout.split()
    # Monitors, and the monitor and setup process it keeps forked ahead, are forks of the
    # zygote (same command line): the zygote is the one whose parent is none of them.
    pids = {int(p) for p in found}
    zygotes = [p for p in pids if _parent(p) not in pids]
    assert len(zygotes) == 1, f"zygotes: {zygotes}"
    os.kill(zygotes[0], signal.SIGKILL)
    time.sleep(0.2)
    assert d.state("before-zygote-kill")["Status"] == "running"
    d.cli("run", "--rm", "busybox", "true", check=True)
    d.cli("run", "-d", "--name", "after-zygote-kill", *SLEEPER, check=True)
    check_invariants(d, seen_ids(d))
    d.cli("rm", "-f", "before-zygote-kill", "after-zygote-kill", check=True)
    count("zygote and monitor kills tried")


@pytest.mark.parametrize("policy", ["no", "always"])
def test_monitor_killed(house: CrashDaemon, policy: str) -> None:
    """The container is ended and its exit recorded (nothing runs unsupervised); a restart
    policy starts it again."""
    d = house
    d.restart()
    name = f"monitor-kill-{policy}"
    d.cli("run", "-d", "--restart", policy, "--name", name, *SLEEPER, check=True)
    cid = d.state(name)
    container_pid = cid["Pid"]
    monitor = int((d.exec_root / "containers" / d.cli("inspect", "-f", "{{.Id}}", name,
                                                       check=True).stdout.strip()
                   / "monitor.pid").read_text().split()[0])
    os.kill(monitor, signal.SIGKILL)
    wait_for(lambda: not Path(f"/proc/{container_pid}").exists(), 20,
             "the unsupervised container to be ended")
    if policy == "always":
        wait_for(lambda: d.state(name)["Status"] == "running", 20, "the restart")
    else:
        wait_for(lambda: d.state(name)["Status"] == "exited", 20, "the recorded exit")
    check_invariants(d, seen_ids(d), frozenset({name}))
    d.cli("rm", "-f", name, check=True)
    count("zygote and monitor kills tried")
