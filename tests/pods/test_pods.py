"""Pods against a real daemon: shared namespaces, the pod cgroup, removal leaving nothing,
bad input, the CLI's pod commands."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from tests.daemon import DaemonProcess

CGROUP_ROOT = Path("/sys/fs/cgroup")


def ok(d: DaemonProcess, *args: str) -> str:
    out = d.cli(*args)
    assert out.returncode == 0, f"servin {' '.join(args)}: {out.stderr}"
    return out.stdout


def inspect_pod(d: DaemonProcess, name: str) -> dict:
    return json.loads(ok(d, "pod", "inspect", name))[0]


def fails(d: DaemonProcess, *args: str) -> str:
    """The one-line error of a command that must fail (no traceback)."""
    out = d.cli(*args)
    assert out.returncode != 0, f"servin {' '.join(args)} succeeded: {out.stdout}"
    lines = out.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("Error"), out.stderr
    return lines[0]


def names(d: DaemonProcess) -> set[str]:
    return set(ok(d, "ps", "-a", "--format", "{{.Names}}").split())


def pod_names(d: DaemonProcess) -> set[str]:
    return set(ok(d, "pod", "ls", "--format", "{{.Name}}").split())


def test_members_share_localhost_and_hostname(engine: DaemonProcess) -> None:
    ok(engine, "pod", "create", "--name", "web")
    ok(engine, "run", "-d", "--pod", "web", "--name", "web-srv", "busybox", "sh", "-c",
       "echo hello-over-lo | nc -l -p 8080; sleep 60")
    out = ok(engine, "run", "--rm", "--pod", "web", "busybox", "sh", "-c",
             "for i in $(seq 100); do nc 127.0.0.1 8080 && break; sleep 0.1; done; hostname")
    assert out.split() == ["hello-over-lo", "web"]
    assert ok(engine, "exec", "web-srv", "hostname").strip() == "web"
    doc = inspect_pod(engine, "web")
    assert doc["State"] == "Running"
    assert doc["SharedNamespaces"] == ["ipc", "net", "uts"]
    assert [c["Name"] for c in doc["Containers"]][1:] == ["web-srv"]
    rows = ok(engine, "pod", "ps", "--format", "{{.Name}} {{.Status}} {{.NumberOfContainers}}")
    assert "web Running 2" in rows.splitlines()
    ok(engine, "pod", "rm", "-f", "web")
    assert "web-srv" not in names(engine)


def test_share_pid(engine: DaemonProcess) -> None:
    ok(engine, "pod", "create", "--name", "pidpod", "--share", "net,ipc,uts,pid")
    ok(engine, "pod", "create", "--name", "nopid")
    for pod in ("pidpod", "nopid"):
        ok(engine, "run", "-d", "--pod", pod, "--name", f"{pod}-sleeper", "busybox",
           "sleep", "1234")
    shared = ok(engine, "run", "--rm", "--pod", "pidpod", "busybox", "ps", "-o", "args")
    private = ok(engine, "run", "--rm", "--pod", "nopid", "busybox", "ps", "-o", "args")
    assert "sleep 1234" in shared and "/catatonit -P" in shared
    assert "sleep 1234" not in private
    assert inspect_pod(engine, "pidpod")["SharedNamespaces"] == ["ipc", "net", "uts", "pid"]
    ok(engine, "pod", "rm", "-f", "pidpod", "nopid")


def test_pod_memory_limit_kills_inside_the_pod_only(engine: DaemonProcess) -> None:
    ok(engine, "pod", "create", "--name", "small", "--memory", "32m")
    ok(engine, "run", "-d", "--pod", "small", "--name", "small-calm", "busybox", "sleep", "600")
    ok(engine, "run", "-d", "--name", "outsider", "busybox", "sleep", "600")
    hog = engine.cli("run", "--pod", "small", "--name", "small-hog", "busybox", "sh", "-c",
                     "x=$(head -c 200000000 /dev/zero | tr '\\0' a); echo survived")
    assert hog.returncode == 137, (hog.returncode, hog.stdout, hog.stderr)
    assert "survived" not in hog.stdout
    doc = inspect_pod(engine, "small")
    states = {c["Name"]: c["State"] for c in doc["Containers"]}
    assert states["small-calm"] == "running" and states["small-hog"] == "exited"
    assert doc["Containers"][0]["State"] == "running"  # the infra
    assert ok(engine, "inspect", "-f", "{{.State.Status}}", "outsider").strip() == "running"
    limit = CGROUP_ROOT / "memory" / doc["CgroupPath"].lstrip("/") / "memory.limit_in_bytes"
    assert int(limit.read_text()) == 32 * 1024 * 1024
    assert doc["State"] == "Degraded"
    ok(engine, "pod", "rm", "-f", "small")
    ok(engine, "rm", "-f", "outsider")


def _in_netns(pid: int | str, inode: int) -> bool:
    try:
        return os.stat(f"/proc/{pid}/ns/net").st_ino == inode
    except OSError:
        return False


def _netns_holders(inode: int) -> list[int]:
    return [int(pid) for pid in os.listdir("/proc") if pid.isdigit() and _in_netns(pid, inode)]


def test_pod_rm_force_leaves_nothing(engine: DaemonProcess) -> None:
    bridge_ports = Path(f"/sys/class/net/{engine.bridge}/brif")
    before = set(os.listdir(bridge_ports)) if bridge_ports.exists() else set()
    ok(engine, "pod", "create", "--name", "gone", "-p", "127.0.0.1::80", "--cpus", "0.5")
    ok(engine, "pod", "start", "gone")
    ok(engine, "run", "-d", "--pod", "gone", "--name", "gone-1", "busybox", "sleep", "600")
    doc = inspect_pod(engine, "gone")
    infra_pid = doc["InfraPid"]
    netns = os.stat(f"/proc/{infra_pid}/ns/net").st_ino
    ids = [c["Id"] for c in doc["Containers"]]
    cgroup_dirs = [CGROUP_ROOT / ctl / doc["CgroupPath"].lstrip("/")
                   for ctl in ("memory", "cpu", "pids")]
    assert all(d.is_dir() for d in cgroup_dirs)
    quota = cgroup_dirs[1] / "cpu.cfs_quota_us"
    assert int(quota.read_text()) == 50000
    assert set(os.listdir(bridge_ports)) - before  # the infra's veth
    holders = _netns_holders(netns)
    assert infra_pid in holders and len(holders) >= 2  # the infra and the member
    ok(engine, "pod", "rm", "-f", "gone")
    assert not Path(f"/proc/{infra_pid}").exists()
    # None of them is left. (Not "no process in a netns with that inode": the kernel reuses
    # a freed namespace's inode number at once, for a netns another test file makes.)
    assert [pid for pid in holders if _in_netns(pid, netns)] == []
    assert not any(d.exists() for d in cgroup_dirs)
    mounts = Path("/proc/self/mountinfo").read_text()
    assert not any(i in mounts for i in ids)
    assert set(os.listdir(bridge_ports)) == before
    assert not any((engine.exec_root / "containers" / i).exists() for i in ids)
    assert "gone" not in pod_names(engine)


def test_bad_input_changes_nothing(engine: DaemonProcess) -> None:
    ok(engine, "pod", "create", "--name", "strict")
    before_ctrs, before_pods = names(engine), pod_names(engine)
    assert "no such pod" in fails(engine, "run", "--pod", "nope", "busybox", "true")
    assert "in use" in fails(engine, "pod", "create", "--name", "strict")
    assert "--network" in fails(engine, "run", "--pod", "strict", "--network", "none",
                                "busybox", "true")
    assert "-p" in fails(engine, "create", "--pod", "strict", "-p", "80", "busybox")
    assert "hostname" in fails(engine, "create", "--pod", "strict", "-h", "other", "busybox")
    assert "6MB" in fails(engine, "pod", "create", "--name", "tiny", "-m", "1m")
    assert "--share" in fails(engine, "pod", "create", "--share", "net,mnt")
    assert "CPUs" in fails(engine, "pod", "create", "--cpus", "999")
    assert "no such pod" in fails(engine, "pod", "start", "nope")
    assert "no such pod" in fails(engine, "pod", "rm", "nope")
    infra = inspect_pod(engine, "strict")["InfraContainerID"]
    assert "remove the pod" in fails(engine, "rm", "-f", infra)
    ok(engine, "run", "-d", "--pod", "strict", "--name", "strict-1", "busybox", "sleep", "600")
    assert "force" in fails(engine, "pod", "rm", "strict")
    assert inspect_pod(engine, "strict")["State"] == "Running"
    assert names(engine) == before_ctrs | {"strict-1"}
    assert pod_names(engine) == before_pods
    ok(engine, "pod", "rm", "-f", "strict")


def test_lifecycle_commands(engine: DaemonProcess) -> None:
    ok(engine, "pod", "create", "--name", "life", "--label", "tier=db")
    ok(engine, "create", "--pod", "life", "--name", "life-1", "busybox", "sh", "-c",
       "echo one; sleep 600")
    ok(engine, "create", "--pod", "life", "--name", "life-2", "busybox", "sh", "-c",
       "echo two >&2; sleep 600")
    assert inspect_pod(engine, "life")["State"] == "Created"
    assert int(ok(engine, "info", "-f", "{{.Pods}}")) >= 1
    ok(engine, "pod", "start", "life")
    assert inspect_pod(engine, "life")["State"] == "Running"
    assert ok(engine, "pod", "ls", "-q", "--filter", "label=tier=db").strip()
    assert not ok(engine, "pod", "ls", "-q", "--filter", "label=tier=web").strip()
    assert ok(engine, "pod", "ls", "--filter", "status=running", "--format", "{{.Name}}"
              ).split().count("life") == 1
    top = ok(engine, "pod", "top", "life")
    assert "sleep 600" in top and "/catatonit -P" in top
    stats = ok(engine, "pod", "stats", "--no-stream", "life")
    assert stats.splitlines()[0].split()[:3] == ["POD", "CID", "NAME"]
    assert {"life-1", "life-2"} <= {line.split()[2] for line in stats.splitlines()[1:]}
    logs = engine.cli("pod", "logs", "life")
    assert "life-1 one" in logs.stdout and "life-2 two" in logs.stderr
    ok(engine, "pod", "pause", "life")
    assert inspect_pod(engine, "life")["State"] == "Paused"
    ok(engine, "pod", "unpause", "life")
    infra_pid = inspect_pod(engine, "life")["InfraPid"]
    ok(engine, "pod", "restart", "-t", "1", "life")
    doc = inspect_pod(engine, "life")
    assert doc["State"] == "Running" and doc["InfraPid"] != infra_pid
    ok(engine, "pod", "stop", "-t", "1", "life")
    assert inspect_pod(engine, "life")["State"] == "Exited"
    ok(engine, "pod", "start", "life")
    ok(engine, "pod", "kill", "life")
    assert inspect_pod(engine, "life")["State"] == "Exited"
    assert ok(engine, "pod", "prune", "-f").split() == [doc["Id"]]
    assert "life" not in pod_names(engine)
    assert not {"life-1", "life-2"} & names(engine)


@pytest.mark.parametrize("published", ["127.0.0.1::8080"])
def test_published_port_reaches_a_member(engine: DaemonProcess, published: str) -> None:
    ok(engine, "pod", "create", "--name", "pub", "-p", published)
    ok(engine, "run", "-d", "--pod", "pub", "--name", "pub-srv", "busybox", "sh", "-c",
       "while true; do echo via-host-port | nc -l -p 8080; done")
    port = ok(engine, "port", inspect_pod(engine, "pub")["InfraContainerID"], "8080").strip()
    host, _, number = port.rpartition(":")
    import socket
    import time

    deadline = time.monotonic() + 10
    data = b""
    while time.monotonic() < deadline and not data:
        try:
            with socket.create_connection((host, int(number)), timeout=2) as s:
                data = s.recv(100)
        except OSError:
            time.sleep(0.1)
    assert data == b"via-host-port\n"
    ok(engine, "pod", "rm", "-f", "pub")


def test_restart_policy_brings_the_infra_back(engine: DaemonProcess) -> None:
    import time

    ok(engine, "pod", "create", "--name", "again")
    ok(engine, "run", "-d", "--pod", "again", "--name", "again-1", "--restart", "always",
       "busybox", "sh", "-c", "sleep 2; exit 1")
    infra = inspect_pod(engine, "again")["InfraContainerID"]
    ok(engine, "stop", "-t", "0", infra)  # the member's next start needs it again
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        restarts = int(ok(engine, "inspect", "-f", "{{.RestartCount}}", "again-1"))
        if restarts >= 1 and inspect_pod(engine, "again")["Containers"][0]["State"] == "running":
            break
        time.sleep(0.2)
    else:
        raise AssertionError(ok(engine, "pod", "inspect", "again"))
    ok(engine, "pod", "rm", "-f", "again")


def test_pod_logs_follow(engine: DaemonProcess) -> None:
    import subprocess
    import sys

    ok(engine, "pod", "create", "--name", "chatty")
    ok(engine, "run", "-d", "--pod", "chatty", "--name", "chatty-a", "busybox", "sh", "-c",
       "echo first; sleep 1; echo second; sleep 600")
    proc = subprocess.Popen([sys.executable, "-m", "servin", "-H", engine.host, "pod", "logs",
                             "-f", "chatty"], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True)
    try:
        assert proc.stdout is not None
        assert proc.stdout.readline() == "chatty-a first\n"
        assert proc.stdout.readline() == "chatty-a second\n"
    finally:
        proc.kill()
        proc.wait()
    ok(engine, "pod", "rm", "-f", "chatty")


def test_pod_on_a_user_network_answers_by_name(engine: DaemonProcess) -> None:
    ok(engine, "network", "create", "podnet")
    ok(engine, "pod", "create", "--name", "svc", "--network", "podnet", "--network-alias",
       "api")
    ok(engine, "run", "-d", "--pod", "svc", "--name", "svc-srv", "busybox", "sh", "-c",
       "while true; do echo from-the-pod | nc -l -p 7000; done")
    for name in ("svc", "api"):  # the pod's name (its hostname) and its alias
        out = ok(engine, "run", "--rm", "--network", "podnet", "busybox", "sh", "-c",
                 f"for i in $(seq 50); do nc {name} 7000 && break; sleep 0.1; done")
        assert out.strip() == "from-the-pod", name
    assert inspect_pod(engine, "svc")["InfraConfig"]["Networks"] == ["podnet"]
    ok(engine, "pod", "rm", "-f", "svc")
    ok(engine, "network", "rm", "podnet")


def test_rm_force_of_a_paused_pod(engine: DaemonProcess) -> None:
    ok(engine, "pod", "create", "--name", "frozen")
    ok(engine, "run", "-d", "--pod", "frozen", "--name", "frozen-1", "busybox", "sleep", "600")
    ok(engine, "pod", "pause", "frozen")
    doc = inspect_pod(engine, "frozen")
    assert doc["State"] == "Paused"
    member = int(ok(engine, "inspect", "-f", "{{.State.Pid}}", "frozen-1"))
    ok(engine, "pod", "rm", "-f", "frozen")
    for pid in (doc["InfraPid"], member):
        assert not Path(f"/proc/{pid}").exists()
    assert "frozen" not in pod_names(engine)
