"""A local unprivileged user finds nothing of the daemon's: no secret, no device node.

The user is made by the test (``useradd``) and removed after it. The daemon's base directory
is opened up (0755, as /var/lib is) so that only the daemon's own modes stand in the way.
"""

from __future__ import annotations

import json
import os
import secrets
import signal
import stat
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.daemon import DaemonProcess

SYSTEM_PYTHON = "/usr/bin/python3"
SECRET = "DB_PASSWORD=hunter2-" + secrets.token_hex(8)

# Run as the other user: walk the daemon root, try to read every file and open every device
# node it can reach; print what it managed as JSON.
PROBE = r"""
import json, os, stat, sys
root, extra = sys.argv[1], sys.argv[2:]
found = {"listed": [], "read": [], "devices": []}
def visit(path):
    try:
        st = os.lstat(path)
    except OSError:
        return
    if stat.S_ISDIR(st.st_mode):
        try:
            names = os.listdir(path)
        except OSError:
            return
        found["listed"].append(path)
        for name in names:
            visit(os.path.join(path, name))
    elif stat.S_ISREG(st.st_mode):
        try:
            with open(path, "rb") as f:
                f.read(1)
            found["read"].append(path)
        except OSError:
            pass
    elif stat.S_ISCHR(st.st_mode) or stat.S_ISBLK(st.st_mode):
        try:
            os.close(os.open(path, os.O_RDWR))
            found["devices"].append(path)
        except OSError:
            pass
visit(root)
for path in extra:  # paths the test knows, tried directly (no listing needed)
    try:
        fd = os.open(path, os.O_RDWR if not path.endswith((".db", "-wal")) else os.O_RDONLY)
        os.close(fd)
        found["devices" if "node" in path else "read"].append(path)
    except OSError:
        pass
print(json.dumps(found))
"""


@pytest.fixture
def stranger() -> Iterator[tuple[int, int]]:
    """A local user made for this test: (uid, gid)."""
    name = f"svtest{os.getpid() % 100000}"
    subprocess.run(["useradd", "--system", "--no-create-home", "--shell", "/usr/sbin/nologin",
                    "--user-group", name], check=True, capture_output=True)
    try:
        import pwd

        entry = pwd.getpwnam(name)
        yield entry.pw_uid, entry.pw_gid
    finally:
        subprocess.run(["userdel", name], check=False, capture_output=True)


def probe(user: tuple[int, int], root: Path, *extra: Path) -> dict[str, list[str]]:
    # The system python: the test's own may live where the user cannot reach (/root).
    out = subprocess.run([SYSTEM_PYTHON, "-S", "-c", PROBE, str(root), *map(str, extra)],
                         user=user[0], group=user[1], extra_groups=[], cwd="/",
                         capture_output=True, text=True, check=True, timeout=60)
    return json.loads(out.stdout)


def assert_nothing_reachable(found: dict[str, list[str]]) -> None:
    assert found == {"listed": [], "read": [], "devices": []}, found


def test_other_users_find_nothing_in_the_root(
    daemon_factory: type[DaemonProcess], busybox_tar: Path, stranger: tuple[int, int]
) -> None:
    d = daemon_factory()
    d.base.chmod(0o755)  # as /var/lib is: only the daemon's own modes may keep others out
    d.start()
    d.cli("import", str(busybox_tar), "busybox", check=True)
    d.cli("volume", "create", "vol", check=True)
    # A secret in the WAL, and a device node a container made in a volume, open to all.
    d.cli("run", "--name", "maker", "-e", SECRET, "-v", "vol:/v", "busybox", "sh", "-c",
          "mknod /v/node c 1 3 && chmod 666 /v/node", check=True)
    data = d.root / "volumes" / "vol" / "_data"
    node = data / "node"
    assert stat.S_ISCHR(node.lstat().st_mode)
    db = d.root / "servin.db"
    wal = d.root / "servin.db-wal"
    assert SECRET.encode() in db.read_bytes() + (wal.read_bytes() if wal.exists() else b"")

    assert_nothing_reachable(probe(stranger, d.root, node, db, wal))
    for path in (db, wal, d.root / "servin.db-shm"):
        if path.exists():
            assert stat.S_IMODE(path.stat().st_mode) == 0o600, path
    assert stat.S_IMODE(d.root.stat().st_mode) & 0o007 == 0

    # After a restart (migrations run, the WAL is reopened) it stays so.
    d.stop(signal.SIGKILL)
    d.start()
    d.cli("run", "--rm", "-e", SECRET, "busybox", "true", check=True)
    assert_nothing_reachable(probe(stranger, d.root, node, db, wal))


def test_wide_modes_are_repaired_at_start_with_a_warning(
    daemon_factory: type[DaemonProcess], busybox_tar: Path, stranger: tuple[int, int]
) -> None:
    d = daemon_factory()
    d.base.chmod(0o755)
    d.start()
    d.cli("import", str(busybox_tar), "busybox", check=True)
    d.cli("volume", "create", "vol", check=True)
    d.cli("run", "--name", "maker", "-v", "vol:/v", "busybox", "sh", "-c",
          "mknod /v/node c 1 3 && chmod 666 /v/node", check=True)
    d.stop()
    # What an older Servin left: a traversable root, a world-readable database and volumes.
    widened = {
        d.root: 0o711,
        d.root / "servin.db": 0o644,
        d.root / "volumes": 0o701,
        d.root / "volumes" / "vol": 0o755,
        d.root / "containers": 0o755,
    }
    for path, mode in widened.items():
        path.chmod(mode)
    node = d.root / "volumes" / "vol" / "_data" / "node"
    assert probe(stranger, d.root, node)["devices"] == [str(node)]  # the hole is real

    d.start()
    assert_nothing_reachable(probe(stranger, d.root, node))
    for path in widened:
        assert stat.S_IMODE(path.stat().st_mode) & 0o007 == 0, path
    assert stat.S_IMODE((d.root / "volumes" / "vol" / "_data").stat().st_mode) == 0o755
    warnings = [json.loads(line) for line in d.log().splitlines()
                if "narrowed the mode" in line and line.startswith("{")]
    assert {w["path"] for w in warnings} >= {str(p) for p in widened}
