"""Busybox OCI bundles for the monitor tests, and cleanup of what their containers leave."""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import subprocess
from pathlib import Path

BUSYBOX = "/bin/busybox"

# Docker's default capability set.
DOCKER_CAPS = [
    "CAP_CHOWN", "CAP_DAC_OVERRIDE", "CAP_FSETID", "CAP_FOWNER", "CAP_MKNOD", "CAP_NET_RAW",
    "CAP_SETGID", "CAP_SETUID", "CAP_SETFCAP", "CAP_SETPCAP", "CAP_NET_BIND_SERVICE",
    "CAP_SYS_CHROOT", "CAP_KILL", "CAP_AUDIT_WRITE",
]

CGROUP_PARENT = "servin-monitor-test"
CGROUP_V1_ROOT = Path("/sys/fs/cgroup")


def build_rootfs(root: Path) -> Path:
    """A rootfs of /bin/busybox, a link per applet, and /etc/passwd and /etc/group."""
    (root / "bin").mkdir(parents=True)
    shutil.copy2(BUSYBOX, root / "bin" / "busybox")
    applets = subprocess.run([BUSYBOX, "--list"], check=True, capture_output=True, text=True)
    for name in applets.stdout.split():
        if name != "busybox":
            os.symlink("busybox", root / "bin" / name)
    for d in ("etc", "proc", "dev", "sys", "tmp", "root"):
        (root / d).mkdir(exist_ok=True)
    (root / "etc" / "passwd").write_text("root:x:0:0:root:/root:/bin/sh\n"
                                         "nobody:x:65534:65534:nobody:/:/bin/false\n")
    (root / "etc" / "group").write_text("root:x:0:\nnogroup:x:65534:\n")
    return root


def write_bundle(bundle: Path, rootfs: Path, container_id: str, args: list[str],
                 *, tty: bool = False, memory_limit: int | None = None) -> Path:
    """A bundle directory whose config.json runs ``args`` in ``rootfs``."""
    bundle.mkdir(parents=True, exist_ok=True)
    caps = list(DOCKER_CAPS)
    config = {
        "ociVersion": "1.0.2",
        "process": {
            "terminal": tty,
            "user": {"uid": 0, "gid": 0},
            "args": args,
            "env": ["PATH=/bin", "TERM=xterm", "HOME=/root"],
            "cwd": "/",
            "capabilities": {"bounding": caps, "effective": caps, "permitted": caps},
            "noNewPrivileges": True,
        },
        "root": {"path": str(rootfs), "readonly": False},
        "hostname": container_id[:12],
        "mounts": [
            {"destination": "/proc", "type": "proc", "source": "proc",
             "options": ["nosuid", "noexec", "nodev"]},
            {"destination": "/dev", "type": "tmpfs", "source": "tmpfs",
             "options": ["nosuid", "strictatime", "mode=755", "size=65536k"]},
            {"destination": "/dev/pts", "type": "devpts", "source": "devpts",
             "options": ["nosuid", "noexec", "newinstance", "ptmxmode=0666", "mode=0620"]},
        ],
        "linux": {
            "namespaces": [{"type": t} for t in ("mount", "pid", "uts", "ipc")],
            "cgroupsPath": f"/{CGROUP_PARENT}/{container_id}",
        },
    }
    if memory_limit is not None:
        config["linux"]["resources"] = {"memory": {"limit": memory_limit, "swap": memory_limit}}
    (bundle / "config.json").write_text(json.dumps(config, indent=1))
    return bundle


def remove_test_cgroups() -> None:
    """Remove the cgroups the tests' containers left (children first), in every v1 hierarchy."""
    for ctl in CGROUP_V1_ROOT.iterdir():
        parent = ctl / CGROUP_PARENT
        if not parent.is_dir():
            continue
        for child in sorted(parent.rglob("*"), key=lambda p: len(p.parts), reverse=True):
            if child.is_dir():
                with contextlib.suppress(OSError):
                    child.rmdir()
        with contextlib.suppress(OSError):
            parent.rmdir()
