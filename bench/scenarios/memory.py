"""3. Memory: the daemon's RSS idle and with N running ``sleep`` containers, and what each
running container costs in its monitor (PSS and RSS from /proc/PID/smaps_rollup) beside
docker's containerd-shim-runc-v2 and podman's conmon; and what each running pod's infra
process costs (catatonit -P, and its monitor) beside podman's infra (catatonit) and conmon."""

from __future__ import annotations

import contextlib
import subprocess
import time

from bench.engines import NO_NET, CliEngine
from bench.env import Environment
from bench.measure import Measure
from bench.model import Row, ScenarioResult
from bench.procfs import pids_where, pss_mb, rss_mb, smaps_rollup
from servin.devtools.daemonproc import DaemonProcess

NAME = "memory"
TITLE = "Memory"
SETTLE = 2.0  # seconds for start-up garbage and helper processes to go away


def sample_rss(pid: int, count: int = 3) -> Measure:
    m = Measure("MB")
    for _ in range(count):
        m.add(rss_mb(pid))
        time.sleep(0.5)
    return m


def monitor_pids(daemon: DaemonProcess) -> list[int]:
    """PIDs of the daemon's container monitors (from their monitor.pid files)."""
    pids = []
    for path in sorted((daemon.exec_root / "containers").glob("*/monitor.pid")):
        pids.append(int(path.read_text().split()[0]))
    return pids


def start_sleepers(engine: CliEngine, count: int) -> None:
    for i in range(count):
        engine.run_detached(f"bench-sleep-{i}", "sleep", "100000")


def per_process(pids: list[int], field: str) -> Measure:
    m = Measure("MB")
    for pid in pids:
        m.add(smaps_rollup(pid)[field] / 1024)
    return m


def run(env: Environment, result: ScenarioResult) -> None:
    count = 3 if env.quick else 100
    daemon = env.new_daemon()  # fresh: idle means no container has ever run in it
    try:
        servin = CliEngine("servin", [*env.servin.argv[:-1], daemon.host], env.servin.env)
        time.sleep(SETTLE)
        assert daemon.proc is not None
        idle = sample_rss(daemon.proc.pid)
        docker = env.docker()
        if docker is None:
            result.add(Row("daemon RSS, idle", idle, target="<= containerd"))
        else:
            containerd = sample_rss(docker.containerd_pid())
            result.add(Row("daemon RSS, idle", idle, "containerd", containerd, "<= 1x"))
            result.add(Row("daemon RSS, idle", idle, "dockerd", sample_rss(docker.pid)))

        start_sleepers(servin, count)
        time.sleep(SETTLE)
        busy = sample_rss(daemon.proc.pid)
        monitors = monitor_pids(daemon)
        if len(monitors) != count:
            raise RuntimeError(f"expected {count} monitors, found {len(monitors)}")
        mon_pss = per_process(monitors, "Pss")
        mon_rss = per_process(monitors, "Rss")
        zygote = _zygote_note(daemon)
        if zygote:
            result.notes.append(zygote)
        servin.remove_all()
        pod_count = 3 if env.quick else 10
        infra, infra_monitors = servin_pods(servin, daemon, pod_count)
        infra_pss = per_process(infra, "Pss")
        infra_mon_pss = per_process(infra_monitors, "Pss")
        servin.run("pod", "rm", "-f", "--all", timeout=900)
    finally:
        daemon.cleanup()

    podman = env.podman()
    infra_label = "per pod: infra process PSS"
    if podman is not None:
        try:
            podman_infra, podman_conmon = podman_pods(podman.engine, pod_count)
            result.add(Row(infra_label, infra_pss, "podman infra (catatonit -P)",
                           per_process(podman_infra, "Pss"), "<= 1 MB"))
            result.add(Row("per pod: infra's monitor PSS", infra_mon_pss, "conmon",
                           per_process(podman_conmon, "Pss")))
        except (OSError, RuntimeError, subprocess.SubprocessError) as exc:
            result.notes.append(f"podman's pods not measured: {exc}")
            podman_infra = []
        finally:
            with contextlib.suppress(RuntimeError, subprocess.SubprocessError):
                podman.engine.run("pod", "rm", "-f", "-a", timeout=900)
    if podman is None or not podman_infra:
        result.add(Row(infra_label, infra_pss, target="<= 1 MB"))
        result.add(Row("per pod: infra's monitor PSS", infra_mon_pss))
    result.notes.append(
        f"Per-pod rows: {pod_count} running pods with no other container (network none); the "
        "infra is a container running catatonit -P from an empty rootfs, under a monitor "
        "like every container."
    )

    label = f"daemon RSS, {count} running"
    pss_label, rss_label = "per container: monitor PSS", "per container: monitor RSS"
    peers = []
    if docker is not None:
        start_sleepers(docker.engine, count)
        time.sleep(SETTLE)
        result.add(Row(label, busy, "containerd", sample_rss(docker.containerd_pid())))
        result.add(Row(label, busy, "dockerd", sample_rss(docker.pid)))
        peers.append(("containerd-shim-runc-v2", docker.shim_pids(), docker.engine))
    if podman is not None:
        start_sleepers(podman.engine, count)
        time.sleep(SETTLE)
        peers.append(("conmon", podman.conmon_pids(), podman.engine))
    if not peers:
        result.add(Row(label, busy))
        result.add(Row(pss_label, mon_pss, target="<= 2 MB"))
        result.add(Row(rss_label, mon_rss))
    for name, pids, engine in peers:
        if len(pids) != count:
            result.notes.append(f"found {len(pids)} {name} processes for {count} containers")
        result.add(Row(pss_label, mon_pss, name, per_process(pids, "Pss"), "<= 2 MB"))
        result.add(Row(rss_label, mon_rss, name, per_process(pids, "Rss")))
        engine.remove_all()
    result.notes.append(
        "Per-container rows: the samples are the processes (one per running container); "
        "PSS splits shared pages among the processes mapping them."
    )


def servin_pods(engine: CliEngine, daemon: DaemonProcess, count: int
                ) -> tuple[list[int], list[int]]:
    """Create and start ``count`` pods; the PIDs of their infra processes and monitors."""
    names = [f"bench-pod-{i}" for i in range(count)]
    for name in names:
        engine.run("pod", "create", "--name", name, *NO_NET)
        engine.run("pod", "start", name)
    time.sleep(SETTLE)
    infra, monitors = [], []
    for line in engine.output("pod", "inspect", "-f", "{{.InfraPid}} {{.InfraContainerID}}",
                              *names).split("\n"):
        if line.strip():
            pid, cid = line.split()
            infra.append(int(pid))
            path = daemon.exec_root / "containers" / cid / "monitor.pid"
            monitors.append(int(path.read_text().split()[0]))
    if len(infra) != count:
        raise RuntimeError(f"expected {count} infra processes, found {len(infra)}")
    return infra, monitors


def podman_pods(engine: CliEngine, count: int) -> tuple[list[int], list[int]]:
    """The same with podman: its infra processes (catatonit) and their conmons."""
    infra, conmons = [], []
    for i in range(count):
        name = f"bench-pod-{i}"
        engine.run("pod", "create", "--name", name, *NO_NET)
        engine.run("pod", "start", name)
        cid = engine.output("pod", "inspect", "-f", "{{.InfraContainerID}}", name).strip()
        pid, conmon = engine.output("inspect", "-f", "{{.State.Pid}} {{.State.ConmonPid}}",
                                    cid).split()
        infra.append(int(pid))
        conmons.append(int(conmon))
    time.sleep(SETTLE)
    return infra, conmons


def _zygote_note(daemon: DaemonProcess) -> str:
    """The monitor zygote's own footprint (one per daemon, not per container)."""
    sock = str(daemon.exec_root)
    # The zygote's forks (the monitor it keeps waiting, its setup child) share its command
    # line: the zygote is the one whose parent is none of them.
    found = set(pids_where(lambda a: "--socket" in a and any(x.startswith(sock) for x in a)))
    for pid in sorted(found):
        if _parent(pid) in found:
            continue
        return (
            f"monitor zygote (one per daemon, forks the monitors): RSS {rss_mb(pid):.1f} MB, "
            f"PSS {pss_mb(pid):.1f} MB"
        )
    return ""


def _parent(pid: int) -> int:
    try:
        with open(f"/proc/{pid}/stat", "rb") as f:
            return int(f.read().rsplit(b")", 1)[1].split()[1])
    except (OSError, ValueError, IndexError):
        return 0
