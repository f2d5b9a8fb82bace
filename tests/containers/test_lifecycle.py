"""Container lifecycle against a real daemon: exit codes, stop, kill, rm, logs, restarts."""

from __future__ import annotations

import json
import shutil
import signal
import time

import pytest

from tests.containers.helpers import cgroup_dirs, mounts_mentioning, processes_mentioning
from tests.daemon import DaemonProcess


def cid_of(engine: DaemonProcess, name: str) -> str:
    return engine.cli("inspect", "-f", "{{.Id}}", name, check=True).stdout.strip()


def wait_for(predicate, timeout: float = 15.0, what: str = "condition") -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return
        time.sleep(0.05)
    raise AssertionError(f"timed out waiting for {what}")


def test_foreground_output_and_exit_codes(engine: DaemonProcess) -> None:
    out = engine.cli("run", "--rm", "busybox", "sh", "-c", "echo out; echo err >&2; exit 3")
    assert out.returncode == 3
    assert out.stdout == "out\n" and out.stderr == "err\n"
    assert engine.cli("run", "--rm", "busybox", "true").returncode == 0
    piped = engine.cli("run", "--rm", "-i", "busybox", "cat", input=b"through stdin\n")
    assert piped.stdout == "through stdin\n"


def test_detached_lifecycle_and_ps(engine: DaemonProcess) -> None:
    cid = engine.cli(
        "run", "-d", "--name", "sleeper", "busybox", "sleep", "60", check=True
    ).stdout.strip()
    assert len(cid) == 64
    ps = engine.cli("ps", "--format", "{{.Names}} {{.State}} {{.Command}}", check=True).stdout
    assert 'sleeper running "sleep 60"' in ps
    assert engine.cli("ps", "-q", check=True).stdout.split() == [cid[:12]]
    table = engine.cli("ps", check=True).stdout.splitlines()
    assert table[0].split()[:2] == ["CONTAINER", "ID"] and "Up " in table[1]
    # PID 1 ignores signals it has no handler for (as under docker): use one that kills.
    engine.cli("kill", "-s", "KILL", "sleeper", check=True)
    assert engine.cli("wait", "sleeper", check=True).stdout.strip() == str(128 + signal.SIGKILL)
    assert engine.cli("ps", "-q", check=True).stdout.strip() == ""
    exited = engine.cli(
        "ps", "-a", "--filter", "status=exited", "--format", "{{.Names}}|{{.Status}}", check=True
    ).stdout
    assert exited.startswith("sleeper|Exited (137)")
    # Restart the same container; it keeps its identity.
    engine.cli("start", "sleeper", check=True)
    assert (
        engine.cli("inspect", "-f", "{{.State.Status}}", "sleeper", check=True).stdout.strip()
        == "running"
    )
    engine.cli("rm", "-f", "sleeper", check=True)
    assert "sleeper" not in engine.cli("ps", "-a", check=True).stdout


def test_stop_kills_a_process_ignoring_sigterm(engine: DaemonProcess) -> None:
    engine.cli(
        "run",
        "-d",
        "--name",
        "stubborn",
        "busybox",
        "sh",
        "-c",
        "trap '' TERM; while :; do sleep 1; done",
        check=True,
    )
    started = time.monotonic()
    engine.cli("stop", "-t", "1", "stubborn", check=True)
    elapsed = time.monotonic() - started
    assert 0.9 < elapsed < 10
    code = engine.cli("inspect", "-f", "{{.State.ExitCode}}", "stubborn", check=True)
    assert code.stdout.strip() == "137"
    engine.cli("rm", "stubborn", check=True)


def test_logs_tail_timestamps_and_follow(engine: DaemonProcess) -> None:
    engine.cli(
        "run",
        "--name",
        "talker",
        "busybox",
        "sh",
        "-c",
        "for i in 1 2 3 4 5; do echo line$i; done; echo oops >&2",
        check=True,
    )
    assert engine.cli("logs", "talker", check=True).stdout.split() == [
        "line1",
        "line2",
        "line3",
        "line4",
        "line5",
    ]
    assert engine.cli("logs", "talker", check=True).stderr == "oops\n"
    assert engine.cli("logs", "--tail", "2", "talker", check=True).stdout.split() == ["line5"]
    stamped = engine.cli("logs", "-t", "--tail", "3", "talker", check=True).stdout.splitlines()
    assert stamped[0].split()[0].endswith("Z") and stamped[0].split()[1] == "line4"
    engine.cli("rm", "talker", check=True)
    engine.cli(
        "run",
        "-d",
        "--name",
        "ticker",
        "busybox",
        "sh",
        "-c",
        "for i in 1 2 3; do echo tick$i; sleep 0.3; done",
        check=True,
    )
    followed = engine.cli("logs", "-f", "ticker", check=True, timeout=30).stdout.split()
    assert followed == ["tick1", "tick2", "tick3"]
    engine.cli("rm", "ticker", check=True)


def test_rm_leaves_nothing_behind(engine: DaemonProcess) -> None:
    cid = engine.cli("run", "-d", "busybox", "sleep", "60", check=True).stdout.strip()
    assert cgroup_dirs(cid), "the container should have a cgroup while it runs"
    assert mounts_mentioning(cid)
    engine.cli("rm", "-f", cid, check=True)
    assert mounts_mentioning(cid) == []
    assert cgroup_dirs(cid) == []
    assert processes_mentioning(cid) == []
    assert not (engine.root / "containers" / cid).exists()
    assert not (engine.exec_root / "containers" / cid).exists()
    assert list((engine.root / "snapshots").rglob(f"*{cid}*")) == []


def test_running_container_is_not_removed_without_force(engine: DaemonProcess) -> None:
    cid = engine.cli("run", "-d", "busybox", "sleep", "60", check=True).stdout.strip()
    out = engine.cli("rm", cid)
    assert out.returncode == 1 and "Stop the container" in out.stderr
    engine.cli("rm", "-f", cid, check=True)


@pytest.mark.parametrize(
    ("args", "code", "message"),
    [
        (["busybox", "/no/such/binary"], 127, "no such file"),
        (["-u", "nosuchuser", "busybox", "true"], 125, "unable to find user nosuchuser"),
        (["-w", "relative", "busybox", "true"], 125, "needs to be an absolute path"),
        (["--pull", "never", "nosuchimage", "true"], 125, "Unable to find image"),
        (["--cap-add", "BOGUS", "busybox", "true"], 125, "unknown capability"),
        (["-m", "1k", "busybox", "true"], 125, "Minimum memory limit"),
    ],
)
def test_failed_start_says_why_and_leaves_nothing(
    engine: DaemonProcess, args: list[str], code: int, message: str
) -> None:
    before = set(engine.cli("ps", "-aq", "--no-trunc", check=True).stdout.split())
    mounts_before = len(mounts_mentioning(str(engine.base)))
    out = engine.cli("run", "--rm", *args)
    assert out.returncode == code, out.stderr
    lines = out.stderr.strip().splitlines()
    assert len(lines) == 1, out.stderr
    assert message.lower() in lines[0].lower()
    after = set(engine.cli("ps", "-aq", "--no-trunc", check=True).stdout.split())
    assert after == before
    assert len(mounts_mentioning(str(engine.base))) == mounts_before
    for cid in after - before:
        assert cgroup_dirs(cid) == []


def test_bad_start_of_created_container_cleans_up(engine: DaemonProcess) -> None:
    cid = engine.cli("create", "busybox", "/nope", check=True).stdout.strip()
    out = engine.cli("start", cid)
    assert out.returncode == 1 and "/nope" in out.stderr
    assert mounts_mentioning(cid) == []
    assert cgroup_dirs(cid) == []
    state = engine.cli(
        "inspect", "-f", "{{.State.Status}}|{{.State.Error}}", cid, check=True
    ).stdout
    assert state.startswith("created|") and "/nope" in state
    engine.cli("rm", cid, check=True)


def test_name_conflict_and_resolution(engine: DaemonProcess) -> None:
    cid = engine.cli("create", "--name", "unique1", "busybox", check=True).stdout.strip()
    dup = engine.cli("create", "--name", "unique1", "busybox")
    assert dup.returncode == 125 and "already in use" in dup.stderr
    assert cid_of(engine, cid[:8]) == cid
    assert cid_of(engine, "unique1") == cid
    refused = engine.cli("rmi", "busybox")
    assert refused.returncode == 1 and "is using its referenced image" in refused.stderr
    engine.cli("rm", "unique1", check=True)


@pytest.mark.parametrize("runtime", ["runc", "crun"])
def test_external_runtimes_run_the_same_bundle(engine: DaemonProcess, runtime: str) -> None:
    if shutil.which(runtime) is None:
        pytest.skip(f"{runtime} is not installed (scripts/bootstrap installs it)")
    out = engine.cli(
        "run",
        "--rm",
        "--runtime",
        runtime,
        "busybox",
        "sh",
        "-c",
        "echo $$; hostname; grep -E 'Seccomp|NoNewPrivs' /proc/self/status; exit 7",
    )
    assert out.returncode == 7, out.stderr
    lines = out.stdout.split("\n")
    assert lines[0] == "1"
    assert "Seccomp:\t2" in out.stdout and "NoNewPrivs:\t1" in out.stdout
    cid = engine.cli(
        "run", "-d", "--runtime", runtime, "busybox", "sleep", "60", check=True
    ).stdout.strip()
    info = json.loads(engine.cli("inspect", cid, check=True).stdout)[0]
    assert info["HostConfig"]["Runtime"] == runtime and info["State"]["Running"]
    engine.cli("rm", "-f", cid, check=True)
    assert cgroup_dirs(cid) == []
    assert mounts_mentioning(cid) == []


def test_info_counts_containers(engine: DaemonProcess) -> None:
    def counts() -> tuple[int, int, int]:
        info = json.loads(engine.cli("info", "--format", "json", check=True).stdout)
        return info["Containers"], info["ContainersRunning"], info["ContainersStopped"]

    total, running, stopped = counts()
    engine.cli("run", "-d", "--name", "counted-up", "busybox", "sleep", "60", check=True)
    engine.cli("create", "--name", "counted-down", "busybox", check=True)
    assert counts() == (total + 2, running + 1, stopped + 1)
    engine.cli("rm", "-f", "counted-up", "counted-down", check=True)


def test_ps_size_counts_the_writable_layer(engine: DaemonProcess) -> None:
    engine.cli("run", "--name", "writer", "busybox", "sh", "-c",
               "head -c 3000000 /dev/zero > /big", check=True)
    size = engine.cli("ps", "-a", "-s", "--filter", "name=writer", "--format", "{{.Size}}",
                      check=True).stdout.strip()
    written, virtual = size.split(" (virtual ")
    assert written.endswith("MB") and float(written[:-2]) >= 3.0
    assert float(virtual.rstrip("MB)")) > float(written[:-2])
    assert "SIZE" in engine.cli("ps", "-a", "-s", check=True).stdout.splitlines()[0]
    engine.cli("rm", "writer", check=True)
