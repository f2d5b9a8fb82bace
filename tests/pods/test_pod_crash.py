"""SIGKILL the daemon in the middle of pod create, start and rm: the next start repairs (no
half-made pod listed, nothing of a removed pod left: records, processes, cgroups)."""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.daemon import short_tmpdir
from tests.hardening.crashkit import CrashDaemon, check_invariants

CGROUPS = [Path("/sys/fs/cgroup") / c for c in ("memory", "pids", "cpu,cpuacct", "freezer")]


@pytest.fixture(scope="module")
def house(busybox_tar: Path) -> Iterator[CrashDaemon]:
    d = CrashDaemon(short_tmpdir())
    d.start()
    try:
        d.cli("import", "-c", 'CMD ["sh"]', str(busybox_tar), "busybox", check=True)
        yield d
    finally:
        d.restart()
        d.cleanup()


def pods_in_store(d: CrashDaemon) -> dict[str, dict]:
    """The pod rows, read from the database of the dead daemon."""
    db = sqlite3.connect(d.root / "servin.db")
    try:
        rows = db.execute("SELECT id, name, state FROM pods").fetchall()
    finally:
        db.close()
    return {name: {"id": pid, **json.loads(state)} for pid, name, state in rows}


def pod_names(d: CrashDaemon) -> set[str]:
    return set(d.cli("pod", "ls", "--format", "{{.Name}}", check=True).stdout.split())


def assert_gone(d: CrashDaemon, pod_id: str, pids: list[int]) -> None:
    for root in CGROUPS:
        assert not (root / "servin" / f"pod-{pod_id}").exists(), f"{root}: pod cgroup left"
    for pid in pids:
        assert not Path(f"/proc/{pid}").exists(), f"process {pid} of the pod is left"
    labels = d.cli("ps", "-a", "--format", "{{.Labels}}", check=True).stdout
    assert pod_id not in labels, "an infra container of the pod is left"


@pytest.mark.parametrize("point", ["pod.create.after-record", "pod.create.after-infra"])
def test_crash_during_create(house: CrashDaemon, point: str) -> None:
    name = point.rsplit(".", 1)[1]
    house.restart(point)
    house.cli("pod", "create", "--name", name, "-m", "64m", timeout=90)
    house.died_at(point)
    pod_id = pods_in_store(house)[name]["id"]
    house.restart()
    assert name not in pod_names(house)
    assert_gone(house, pod_id, [])
    check_invariants(house, set())
    house.cli("pod", "create", "--name", name, check=True)  # the name is free again
    house.cli("pod", "rm", name, check=True)


@pytest.mark.parametrize("point", ["pod.rm.after-mark", "pod.rm.after-container"])
def test_crash_during_rm(house: CrashDaemon, point: str) -> None:
    name = point.rsplit(".", 1)[1]
    house.restart(point)
    house.cli("pod", "create", "--name", name, "-m", "64m", check=True)
    house.cli("run", "-d", "--pod", name, "--name", f"{name}-1", "busybox", "sleep", "600",
              check=True)
    doc = json.loads(house.cli("pod", "inspect", name, check=True).stdout)[0]
    pids = [doc["InfraPid"],
            int(house.cli("inspect", "-f", "{{.State.Pid}}", f"{name}-1", check=True).stdout)]
    house.cli("pod", "rm", "-f", name, timeout=90)
    house.died_at(point)
    house.restart()
    assert name not in pod_names(house)
    assert f"{name}-1" not in house.cli("ps", "-a", "--format", "{{.Names}}").stdout.split()
    assert_gone(house, doc["Id"], pids)
    check_invariants(house, {c["Id"] for c in doc["Containers"]})


def test_crash_during_start(house: CrashDaemon) -> None:
    house.restart("pod.start.after-infra")
    house.cli("pod", "create", "--name", "half", check=True)
    house.cli("create", "--pod", "half", "--name", "half-1", "busybox", "sleep", "600",
              check=True)
    house.cli("pod", "start", "half", timeout=90)
    house.died_at("pod.start.after-infra")
    house.restart()
    doc = json.loads(house.cli("pod", "inspect", "half", check=True).stdout)[0]
    assert {c["Name"]: c["State"] for c in doc["Containers"]}["half-1"] == "created"
    check_invariants(house, set())
    house.cli("pod", "start", "half", check=True)  # it works again
    assert json.loads(house.cli("pod", "inspect", "half", check=True).stdout)[0]["State"] == \
        "Running"
    house.cli("pod", "rm", "-f", "half", check=True)
