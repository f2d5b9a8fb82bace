"""What tests look at on the host after a container is gone: mounts, cgroups, processes."""

from __future__ import annotations

import os
from pathlib import Path

from servin.devtools.daemonproc import DaemonProcess

CGROUP_ROOT = Path("/sys/fs/cgroup")


def mounts_mentioning(text: str) -> list[str]:
    """Lines of /proc/self/mountinfo that mention ``text``."""
    return [line for line in Path("/proc/self/mountinfo").read_text().splitlines() if text in line]


def cgroup_dirs(container_id: str) -> list[Path]:
    """Cgroup directories of the container in any hierarchy (v1 or v2)."""
    found = []
    for hierarchy in CGROUP_ROOT.iterdir():
        candidate = hierarchy / "servin" / container_id
        if candidate.exists():
            found.append(candidate)
    candidate = CGROUP_ROOT / "servin" / container_id
    if candidate.exists():
        found.append(candidate)
    return found


def processes_mentioning(text: str) -> list[int]:
    """PIDs whose command line mentions ``text``."""
    pids = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            cmdline = Path(f"/proc/{entry}/cmdline").read_bytes().replace(b"\0", b" ")
        except OSError:
            continue
        if text.encode() in cmdline:
            pids.append(int(entry))
    return pids


def listing_vs_records(d: DaemonProcess) -> tuple[dict[str, tuple], dict[str, tuple]]:
    """(what servin.v1 List answers, what the daemon's SQLite rows hold): ID -> (name, status,
    exit code, started at ns) of every container. List reads the daemon's in-memory view;
    the rows are read straight from its database file (read-only; WAL lets both be open)."""
    import json
    import sqlite3

    from servin.api.servin.v1 import containers_pb2
    from servin.client.sync import Client
    from servin.engine.server.grpc.timestamps import to_ns

    with Client(d.host) as client:
        reply = client.containers.List(containers_pb2.ListContainersRequest(all=True))
    listed = {c.id: (c.name, c.state, c.exit_code, to_ns(c.started_at) or 0)
              for c in reply.containers}
    db = sqlite3.connect(f"file:{d.root / 'servin.db'}?mode=ro", uri=True)
    try:
        rows = db.execute("SELECT id, name, state FROM containers").fetchall()
    finally:
        db.close()
    stored = {}
    for cid, name, state_doc in rows:
        state = json.loads(state_doc)
        stored[cid] = (name, state.get("status") or "created", state.get("exit_code", 0),
                       state.get("started_at_ns", 0))
    return listed, stored


def assert_listing_matches_records(d: DaemonProcess, attempts: int = 50) -> None:
    """The daemon's listing (its in-memory view) equals its stored records. Containers that
    are still moving (a restart policy, a program exiting) may differ for a moment between
    the two reads: the comparison is repeated until both agree or ``attempts`` run out."""
    import time

    for _ in range(attempts):
        listed, stored = listing_vs_records(d)
        if listed == stored:
            return
        time.sleep(0.1)
    raise AssertionError(f"listing {listed} != records {stored}")
