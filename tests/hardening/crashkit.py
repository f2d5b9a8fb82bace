"""The crash-point harness: kill a daemon at a named point, start it again, check the house.

``SERVIN_CRASH_AT`` (servin.engine.crashpoints) makes the daemon SIGKILL itself when it reaches
the point; the harness then starts it without the point and checks the invariants every
crash must keep (``check_invariants``).
"""

from __future__ import annotations

import ipaddress
import json
import os
import re
import subprocess
import time
from pathlib import Path
from typing import Any

from servin.engine.runtime.monitor.protocol import monitor_alive
from tests.containers.helpers import assert_listing_matches_records
from tests.daemon import DaemonProcess

CGROUP_ROOTS = [Path("/sys/fs/cgroup") / c / "servin" for c in ("memory", "pids", "cpu,cpuacct",
                                                                "freezer", "devices", "")]


class CrashDaemon(DaemonProcess):
    """A daemon the harness restarts with or without an armed crash point."""

    log_mark = 0
    pull_ref = ""

    def restart(self, point: str = "") -> None:
        """Stop (if running: SIGKILL, as a crash) and start again, armed at ``point``."""
        if self.proc is not None and self.proc.poll() is None:
            self.stop(9)
        self.env = {"SERVIN_CRASH_AT": point} if point else {}
        self.log_mark = len(self.log())
        self.start(timeout=60)

    def died_at(self, point: str, timeout: float = 60.0) -> None:
        """Wait for the daemon to kill itself at ``point``; fail if it did not."""
        assert self.proc is not None
        try:
            self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            raise AssertionError(f"the daemon never reached crash point {point}") from None
        name = point.partition("#")[0]
        assert f"crashpoint {name}:" in self.log()[self.log_mark:], f"died, but not at {point}"

    def api(self) -> Any:
        from servin.client.sync import Client

        return Client(self.host)

    def ids(self) -> set[str]:
        from servin.api.servin.v1 import containers_pb2

        with self.api() as client:
            reply = client.containers.List(containers_pb2.ListContainersRequest(all=True))
        return {c.id for c in reply.containers}

    def inspect_all(self) -> list[dict[str, Any]]:
        ids = sorted(self.ids())
        if not ids:
            return []
        out = self.cli("inspect", *ids, check=True)
        return json.loads(out.stdout)

    def state(self, name: str) -> dict[str, Any]:
        return json.loads(self.cli("inspect", name, check=True).stdout)[0]["State"]


def seen_ids(d: DaemonProcess) -> set[str]:
    """Every container ID the daemon's directories mention (records or not)."""
    found: set[str] = set()
    for parent in (d.root / "containers", d.exec_root / "containers",
                   d.root / "snapshots" / "containers"):
        if parent.is_dir():
            found |= {p.name for p in parent.iterdir() if re.fullmatch(r"[0-9a-f]{64}", p.name)}
    return found


def _mounts() -> list[str]:
    with open("/proc/self/mountinfo") as f:
        return [line.split()[4] for line in f]


def _links(bridge: str) -> list[str]:
    brif = Path("/sys/class/net") / bridge / "brif"
    return sorted(p.name for p in brif.iterdir()) if brif.is_dir() else []


def _monitors_of(d: DaemonProcess) -> list[int]:
    """Monitor processes holding files of this daemon (found by their open fds)."""
    out = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/comm") as f:
                if f.read().strip() != "servin-monitor":
                    continue
            fds = os.listdir(f"/proc/{entry}/fd")
            links = [os.readlink(f"/proc/{entry}/fd/{fd}") for fd in fds]
        except OSError:
            continue
        if any(str(d.root) in link or str(d.exec_root) in link for link in links):
            out.append(int(entry))
    return out


def check_invariants(d: CrashDaemon, candidates: set[str],
                     policy_names: frozenset[str] = frozenset()) -> dict[str, dict[str, Any]]:
    """What every restart after a crash must show; returns the containers by name.

    ``candidates``: container IDs the crash may have left things of (records or not);
    ``policy_names``: containers a restart policy keeps starting.
    """
    from servin.api.servin.v1 import images_pb2, networks_pb2, volumes_pb2

    with d.api() as client:  # the four lists answer
        client.images.List(images_pb2.ListImagesRequest(all=True))
        volumes = {v.name for v in client.volumes.List(volumes_pb2.ListVolumesRequest()).volumes}
        networks = list(client.networks.List(networks_pb2.ListNetworksRequest()).networks)
    containers = d.inspect_all()
    ids = {c["Id"] for c in containers}
    # The listing (the daemon's in-memory view) agrees with the records it was rebuilt from.
    assert_listing_matches_records(d)
    # A container a restart policy keeps starting moves while we look (its monitor, mount and
    # links come and go): only settled containers are held to the exact rules; the cases stop
    # the moving ones and check again.
    moving = {c["Id"] for c in containers if c["Name"].lstrip("/") in policy_names
              or c["State"]["Status"] == "restarting"}
    running = {c["Id"]: c for c in containers if c["State"]["Status"] in ("running", "paused")
               and c["Id"] not in moving}
    for c in containers:
        status = c["State"]["Status"]
        assert status in ("created", "running", "paused", "exited", "restarting"), (c["Name"],
                                                                                    status)
        assert (d.root / "containers" / c["Id"]).is_dir(), f"{c['Name']} has no directory"
        assert (d.root / "snapshots" / "containers" / c["Id"]).is_dir(), \
            f"{c['Name']} has no snapshot"
        if c["Id"] in moving:
            continue
        if c["Id"] in running:
            pid = c["State"]["Pid"]
            assert pid and Path(f"/proc/{pid}").exists(), f"{c['Name']} runs no process"
            assert monitor_alive(d.exec_root / "containers" / c["Id"]), \
                f"{c['Name']} has no monitor"
        else:
            assert not monitor_alive(d.exec_root / "containers" / c["Id"]), \
                f"{c['Name']} ({status}) still has a monitor"
    # Nothing of a container without a record: files, state, snapshot, cgroup.
    for cid in (candidates | seen_ids(d)) - ids:
        for path in (d.root / "containers" / cid, d.exec_root / "containers" / cid,
                     d.root / "snapshots" / "containers" / cid):
            assert not path.exists(), f"{path} is left without a record"
        for root in CGROUP_ROOTS:
            assert not (root / cid).exists(), f"cgroup {root / cid} is left without a record"
    # Cgroups of stopped containers are gone too.
    for cid in ids - set(running) - moving:
        for root in CGROUP_ROOTS:
            assert not (root / cid).exists(), f"cgroup {root / cid} of a stopped container"
    # Mounts under the daemon's dirs: only running containers' root filesystems.
    allowed = {str(d.exec_root / "containers" / cid / "rootfs") for cid in {*running, *moving}}
    ours = [m for m in _mounts() if m.startswith((str(d.root) + "/", str(d.exec_root) + "/"))]
    stray = [m for m in ours if m not in allowed]
    assert not stray, f"mounts left: {stray}"
    # Monitors: exactly one per running container (and at most one per moving one).
    monitors = len(_monitors_of(d))
    assert len(running) <= monitors <= len(running) + len(moving), (
        f"{monitors} monitors for {len(running)} running containers")
    # Links on the daemon's bridges: only running containers' (one per network endpoint).
    bridges = {n.name: n for n in networks}
    wanted = sum(len(c["NetworkSettings"]["Networks"] or {}) for c in running.values()
                 if c["HostConfig"]["NetworkMode"] not in ("none", "host")
                 and not c["HostConfig"]["NetworkMode"].startswith("container:"))
    names = [d.bridge] + [f"svb{n.id[:12]}" for n in networks if n.name not in
                          ("bridge", "host", "none")]
    have = sum(len(_links(b)) for b in names)
    spare = sum(len(c["NetworkSettings"]["Networks"] or {}) for c in containers
                if c["Id"] in moving)
    assert wanted <= have <= wanted + spare, \
        f"{have} links on the bridges for {wanted} running endpoints"
    # Our bridges: the default one and one per user network, no other.
    owned = _owned_bridges(d)
    assert owned <= set(names), f"bridges left: {owned - set(names)}"
    # NAT rules point only at running containers.
    addresses = {ep["IPAddress"] for c in running.values()
                 for ep in (c["NetworkSettings"]["Networks"] or {}).values()}
    for target in _dnat_targets(d):
        assert target in addresses, f"a DNAT rule points at {target}, no running container"
    # Volumes: a directory per record, no other, no trash.
    on_disk = {p.name for p in (d.root / "volumes").iterdir()}
    assert on_disk == volumes, f"volume dirs {sorted(on_disk)} vs records {sorted(volumes)}"
    assert not list((d.root / "content" / "ingest").iterdir())
    assert not list((d.root / "snapshots" / "tmp").iterdir())
    _ = bridges
    return {c["Name"].lstrip("/"): c for c in containers}


def _owned_bridges(d: DaemonProcess) -> set[str]:
    owner = f"servin {d.root}"
    found = set()
    for path in Path("/sys/class/net").iterdir():
        if (path / "bridge").is_dir():
            try:
                alias = (path / "ifalias").read_text().strip()
            except OSError:
                continue
            if alias == owner:
                found.add(path.name)
    return found


def _dnat_targets(d: DaemonProcess) -> list[str]:
    import hashlib

    table = "servin_" + hashlib.sha256(str(d.root).encode()).hexdigest()[:8]
    out = subprocess.run(["nft", "list", "table", "ip", table], capture_output=True, text=True)
    if out.returncode != 0:
        return []
    targets = re.findall(r"dnat to ([0-9.]+)", out.stdout)
    return [t for t in targets if ipaddress.ip_address(t)]


def wait_for(predicate: Any, timeout: float = 30.0, what: str = "a condition") -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(0.1)
    raise AssertionError(f"timed out waiting for {what}")
