"""Operating live containers: pause, restart policies, update, rename, events."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import time
from pathlib import Path

from tests.containers.helpers import cgroup_dirs
from tests.daemon import REPO, DaemonProcess


def inspect(engine: DaemonProcess, fmt: str, name: str) -> str:
    return engine.cli("inspect", "-f", fmt, name, check=True).stdout.strip()


def wait_until(predicate, timeout: float = 20.0, what: str = "condition") -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return
        time.sleep(0.05)
    raise AssertionError(f"timed out waiting for {what}")


def cpu_usage(cid: str) -> int:
    for d in cgroup_dirs(cid):
        for name in ("cpuacct.usage",):
            if (d / name).exists():
                return int((d / name).read_text())
        if (d / "cpu.stat").exists() and d.parent.name != "cpu":
            for line in (d / "cpu.stat").read_text().splitlines():
                if line.startswith("usage_usec"):
                    return int(line.split()[1]) * 1000
    raise AssertionError("no cpu accounting found")


def test_pause_stops_cpu_and_unpause_resumes(engine: DaemonProcess) -> None:
    cid = engine.cli("run", "-d", "--name", "spinner", "busybox", "sh", "-c",
                     "while :; do :; done", check=True).stdout.strip()
    engine.cli("pause", "spinner", check=True)
    assert inspect(engine, "{{.State.Status}} {{.State.Paused}}", "spinner") == "paused true"
    assert "(Paused)" in engine.cli("ps", "--format", "{{.Status}}", check=True).stdout
    before = cpu_usage(cid)
    time.sleep(1.0)
    assert cpu_usage(cid) - before < 10_000_000  # < 10 ms of CPU in a second: frozen
    again = engine.cli("pause", "spinner")
    assert again.returncode == 1 and "already paused" in again.stderr
    engine.cli("unpause", "spinner", check=True)
    before = cpu_usage(cid)
    time.sleep(0.5)
    assert cpu_usage(cid) - before > 100_000_000  # it spins again
    # A paused container can still be stopped.
    engine.cli("pause", "spinner", check=True)
    engine.cli("stop", "-t", "1", "spinner", check=True)
    assert inspect(engine, "{{.State.Status}}", "spinner") == "exited"
    engine.cli("rm", "spinner", check=True)


def test_on_failure_restarts_exactly_n_times(engine: DaemonProcess) -> None:
    engine.cli("run", "-d", "--name", "flaky", "--restart", "on-failure:3", "busybox", "sh",
               "-c", "echo run; exit 2", check=True)
    wait_until(lambda: inspect(engine, "{{.RestartCount}} {{.State.Status}}", "flaky")
               == "3 exited", what="three restarts")
    time.sleep(2.0)  # the back-off would have fired a 4th time by now
    assert inspect(engine, "{{.RestartCount}} {{.State.Status}} {{.State.ExitCode}}",
                   "flaky") == "3 exited 2"
    assert engine.cli("logs", "flaky", check=True).stdout.split() == ["run"] * 4
    engine.cli("rm", "flaky", check=True)


def test_always_restarts_a_container_that_exits(engine: DaemonProcess) -> None:
    engine.cli("run", "-d", "--name", "looper", "--restart", "always", "busybox", "sh", "-c",
               "sleep 0.2", check=True)
    wait_until(lambda: int(inspect(engine, "{{.RestartCount}}", "looper")) >= 2,
               what="two restarts")
    engine.cli("stop", "-t", "1", "looper", check=True)
    count = inspect(engine, "{{.RestartCount}}", "looper")
    time.sleep(1.0)
    assert inspect(engine, "{{.State.Status}} {{.RestartCount}}", "looper") == f"exited {count}"
    engine.cli("rm", "looper", check=True)


def test_policies_after_daemon_restart(daemon_factory: type[DaemonProcess],
                                       busybox_tar: Path) -> None:
    d = daemon_factory().start()
    d.cli("import", str(busybox_tar), "busybox", check=True)
    for name, policy in (("pa", "always"), ("pu", "unless-stopped"), ("pn", "no")):
        d.cli("run", "-d", "--name", name, "--restart", policy, "busybox", "sleep", "300",
              check=True)
        d.cli("stop", "-t", "0", name, check=True)
    d.stop(signal.SIGKILL)
    d.start()
    wait_until(lambda: inspect(d, "{{.State.Status}}", "pa") == "running",
               what="the always container to start")
    assert inspect(d, "{{.State.Status}}", "pu") == "exited"
    assert inspect(d, "{{.State.Status}}", "pn") == "exited"


def test_update_limits_of_a_running_container(engine: DaemonProcess) -> None:
    cid = engine.cli("run", "-d", "-m", "64m", "busybox", "sleep", "60",
                     check=True).stdout.strip()
    engine.cli("update", "-m", "128m", "--pids-limit", "30", "--restart", "on-failure:2", cid,
               check=True)
    dirs = {d.parent.parent.name: d for d in cgroup_dirs(cid)}
    if "memory" in dirs:
        assert (dirs["memory"] / "memory.limit_in_bytes").read_text().strip() == \
            str(128 * 1024 * 1024)
        assert (dirs["pids"] / "pids.max").read_text().strip() == "30"
    info = json.loads(engine.cli("inspect", cid, check=True).stdout)[0]
    assert info["HostConfig"]["Memory"] == 128 * 1024 * 1024
    assert info["HostConfig"]["PidsLimit"] == 30
    bad = engine.cli("update", "-m", "1k", cid)
    assert bad.returncode == 1 and "Minimum memory limit" in bad.stderr
    nothing = engine.cli("update", cid)
    assert nothing.returncode == 1 and "one or more flags" in nothing.stderr
    engine.cli("rm", "-f", cid, check=True)


def test_rename(engine: DaemonProcess) -> None:
    engine.cli("create", "--name", "before", "busybox", check=True)
    engine.cli("create", "--name", "taken", "busybox", check=True)
    engine.cli("rename", "before", "after", check=True)
    assert inspect(engine, "{{.Name}}", "after") == "/after"
    assert engine.cli("inspect", "before").returncode == 1
    clash = engine.cli("rename", "after", "taken")
    assert clash.returncode == 1 and "already in use" in clash.stderr
    bad = engine.cli("rename", "after", "bad name!")
    assert bad.returncode == 1 and "Invalid container name" in bad.stderr
    engine.cli("rm", "after", "taken", check=True)


def test_events_arrive_in_order(engine: DaemonProcess) -> None:
    watcher = subprocess.Popen(
        [sys.executable, "-m", "servin", "-H", engine.host, "events", "--filter",
         "type=container", "--format", "{{.Action}} {{.Actor.Attributes.name}} "
         "{{index .Actor.Attributes \"exitCode\"}}"],
        stdout=subprocess.PIPE, text=True, cwd=REPO)
    try:
        time.sleep(1.0)  # the subscription is in place
        engine.cli("run", "--name", "evt", "busybox", "sh", "-c", "exit 4")
        engine.cli("rm", "evt", check=True)
        lines = []
        deadline = time.monotonic() + 15
        while time.monotonic() < deadline and not any(" evt" in ln and "destroy" in ln
                                                      for ln in lines):
            lines.append(watcher.stdout.readline().strip())
    finally:
        watcher.terminate()
        watcher.wait(10)
    mine = [ln for ln in lines if " evt" in ln]
    actions = [ln.split()[0] for ln in mine]
    assert actions == ["create", "start", "die", "destroy"], lines
    assert mine[2].split()[-1] == "4"
    past = engine.cli("events", "--since", "1m", "--until", "0s", "--filter", "event=die",
                      "--format", "{{.Actor.Attributes.name}}", check=True).stdout.split()
    assert "evt" in past


def test_health_checks(engine: DaemonProcess) -> None:
    engine.cli("run", "-d", "--name", "sick", "--health-cmd", "echo probing; exit 1",
               "--health-interval", "200ms", "--health-retries", "2", "busybox", "sleep", "60",
               check=True)
    engine.cli("run", "-d", "--name", "fine", "--health-cmd", "test -d /tmp",
               "--health-interval", "200ms", "busybox", "sleep", "60", check=True)
    engine.cli("run", "-d", "--name", "slow", "--health-cmd", "true", "--health-interval",
               "1h", "busybox", "sleep", "60", check=True)
    assert inspect(engine, "{{.State.Health.Status}}", "slow") == "starting"
    wait_until(lambda: inspect(engine, "{{.State.Health.Status}}", "sick") == "unhealthy",
               what="sick to turn unhealthy")
    wait_until(lambda: inspect(engine, "{{.State.Health.Status}}", "fine") == "healthy",
               what="fine to turn healthy")
    health = json.loads(engine.cli("inspect", "sick", check=True).stdout)[0]["State"]["Health"]
    assert health["FailingStreak"] >= 2
    assert health["Log"][-1]["ExitCode"] == 1 and "probing" in health["Log"][-1]["Output"]
    statuses = engine.cli("ps", "--format", "{{.Names}} {{.Status}}", check=True).stdout
    assert "(unhealthy)" in statuses and "(healthy)" in statuses
    unhealthy = engine.cli("ps", "--filter", "health=unhealthy", "--format", "{{.Names}}",
                           check=True).stdout.split()
    assert unhealthy == ["sick"]
    seen = engine.cli("events", "--since", "1m", "--until", "0s", "--filter",
                      "container=sick", "--format", "{{.Action}}", check=True).stdout
    assert "health_status: unhealthy" in seen
    disabled = engine.cli("run", "-d", "--no-healthcheck", "busybox", "sleep", "60",
                          check=True).stdout.strip()
    assert inspect(engine, "{{.State.Status}}", disabled) == "running"
    assert "Health" not in json.loads(engine.cli("inspect", disabled,
                                                 check=True).stdout)[0]["State"]
    engine.cli("rm", "-f", "sick", "fine", "slow", disabled, check=True)
