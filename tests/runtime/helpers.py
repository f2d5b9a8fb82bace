"""Helpers for the runtime tests: a Docker-like OCI spec, pipes, and container runners.

Nothing here skips: a missing prerequisite fails the test that needs it with a message
saying what is missing.
"""

from __future__ import annotations

import json
import os
import selectors
import uuid
from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar

from servin.engine.linux.capabilities import DOCKER_DEFAULT_CAPS
from servin.engine.runtime.oci import Stdio

BUSYBOX = "/bin/busybox"
CGROUP_PARENT = "servin-rt-test"

DOCKER_MASKED_PATHS = [
    "/proc/asound", "/proc/acpi", "/proc/kcore", "/proc/keys", "/proc/latency_stats",
    "/proc/timer_list", "/proc/timer_stats", "/proc/sched_debug", "/proc/scsi",
    "/sys/firmware", "/sys/devices/virtual/powercap",
]
DOCKER_READONLY_PATHS = ["/proc/bus", "/proc/fs", "/proc/irq", "/proc/sys", "/proc/sysrq-trigger"]

PASSWD = """root:x:0:0:root:/root:/bin/sh
nobody:x:65534:65534:nobody:/nonexistent:/bin/false
user:x:1000:1000:user:/home/user:/bin/sh
"""
GROUP = """root:x:0:
tty:x:5:
wheel:x:10:
user:x:1000:
nogroup:x:65534:
"""


def default_spec(rootfs: Path, args: list[str], *, cgroups_path: str | None = None,
                 terminal: bool = False) -> dict[str, Any]:
    """A config.json like Docker's default for `docker run --network none busybox ARGS`."""
    caps = list(DOCKER_DEFAULT_CAPS)
    spec: dict[str, Any] = {
        "ociVersion": "1.0.2",
        "process": {
            "terminal": terminal,
            "user": {"uid": 0, "gid": 0},
            "args": args,
            "env": ["PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
                    "HOSTNAME=c1", "TERM=xterm"],
            "cwd": "/",
            "capabilities": {"bounding": caps, "effective": caps, "permitted": caps},
            "rlimits": [{"type": "RLIMIT_NOFILE", "hard": 1024, "soft": 1024}],
            "noNewPrivileges": True,
            "oomScoreAdj": 0,
        },
        "root": {"path": str(rootfs), "readonly": False},
        "hostname": "c1",
        "mounts": [
            {"destination": "/proc", "type": "proc", "source": "proc",
             "options": ["nosuid", "noexec", "nodev"]},
            {"destination": "/dev", "type": "tmpfs", "source": "tmpfs",
             "options": ["nosuid", "strictatime", "mode=755", "size=65536k"]},
            {"destination": "/dev/pts", "type": "devpts", "source": "devpts",
             "options": ["nosuid", "noexec", "newinstance", "ptmxmode=0666", "mode=0620",
                         "gid=5"]},
            {"destination": "/sys", "type": "sysfs", "source": "sysfs",
             "options": ["nosuid", "noexec", "nodev", "ro"]},
            {"destination": "/sys/fs/cgroup", "type": "cgroup", "source": "cgroup",
             "options": ["ro", "nosuid", "noexec", "nodev"]},
            {"destination": "/dev/mqueue", "type": "mqueue", "source": "mqueue",
             "options": ["nosuid", "noexec", "nodev"]},
            {"destination": "/dev/shm", "type": "tmpfs", "source": "shm",
             "options": ["nosuid", "noexec", "nodev", "mode=1777", "size=67108864"]},
        ],
        "linux": {
            "namespaces": [{"type": "mount"}, {"type": "network"}, {"type": "uts"},
                           {"type": "pid"}, {"type": "ipc"}, {"type": "cgroup"}],
            "maskedPaths": list(DOCKER_MASKED_PATHS),
            "readonlyPaths": list(DOCKER_READONLY_PATHS),
            "resources": {"devices": [{"allow": False, "access": "rwm"}]},
        },
    }
    if cgroups_path:
        spec["linux"]["cgroupsPath"] = cgroups_path
    return spec


def write_bundle(rootfs: Path, spec: dict[str, Any]) -> Path:
    """Write config.json next to the rootfs; return the bundle directory."""
    bundle = rootfs.parent
    (bundle / "config.json").write_text(json.dumps(spec, indent=1))
    return bundle


@dataclass
class Result:
    """What a finished container left: its exit code (or -signal) and its output."""

    code: int
    stdout: str
    stderr: str


def new_id() -> str:
    """A unique container id."""
    return "t" + uuid.uuid4().hex[:12]


def cgroup_path(container_id: str) -> str:
    """The cgroupsPath the tests give a container."""
    return f"/{CGROUP_PARENT}/{container_id}"


class Pipes:
    """stdin (pre-filled), stdout and stderr pipes for one container, drained by the test.

    Every fd still open at the end of a test is closed by the ``_close_pipes`` fixture.
    """

    live: ClassVar[list[Pipes]] = []

    def __init__(self, stdin_data: bytes = b"") -> None:
        self.stdin_r, self.stdin_w = os.pipe()
        self.out_r, self.out_w = os.pipe()
        self.err_r, self.err_w = os.pipe()
        self.open = {self.stdin_r, self.stdin_w, self.out_r, self.out_w, self.err_r,
                     self.err_w}
        Pipes.live.append(self)
        os.write(self.stdin_w, stdin_data)
        self._close(self.stdin_w)

    def _close(self, fd: int) -> None:
        if fd in self.open:
            self.open.discard(fd)
            os.close(fd)

    @property
    def stdio(self) -> Stdio:
        """The container's ends."""
        return Stdio(self.stdin_r, self.out_w, self.err_w)

    def close_child_ends(self) -> None:
        """Close the ends the container holds (after create), so EOF arrives on exit."""
        for fd in (self.stdin_r, self.out_w, self.err_w):
            self._close(fd)

    def close(self) -> None:
        """Close whatever is still open."""
        for fd in list(self.open):
            self._close(fd)

    def drain(self, timeout: float = 20.0) -> tuple[str, str]:
        """Read both pipes until EOF."""
        chunks: dict[int, list[bytes]] = {self.out_r: [], self.err_r: []}
        selector = selectors.DefaultSelector()
        for fd in chunks:
            selector.register(fd, selectors.EVENT_READ)
        open_fds = set(chunks)
        while open_fds:
            events = selector.select(timeout)
            if not events:
                raise TimeoutError("container output did not end")
            for key, _ in events:
                data = os.read(key.fd, 65536)
                if data:
                    chunks[key.fd].append(data)
                else:
                    selector.unregister(key.fd)
                    open_fds.discard(key.fd)
        selector.close()
        self.close()
        return (b"".join(chunks[self.out_r]).decode(errors="replace"),
                b"".join(chunks[self.err_r]).decode(errors="replace"))


def wait_code(pid: int) -> int:
    """waitpid and turn the status into an exit code (-N for signal N)."""
    _, status = os.waitpid(pid, 0)
    return os.waitstatus_to_exitcode(status)


def run_container(runtime: Any, rootfs: Path, spec: dict[str, Any],
                  container_id: str | None = None) -> Result:
    """create + start + wait + delete one container; return its exit code and output."""
    container_id = container_id or new_id()
    bundle = write_bundle(rootfs, spec)
    pipes = Pipes()
    try:
        pid = runtime.create(container_id, bundle, pipes.stdio)
    finally:
        pipes.close_child_ends()
    try:
        runtime.start(container_id)
        stdout, stderr = pipes.drain()
        code = wait_code(pid)
    finally:
        runtime.delete(container_id, force=True)
    return Result(code, stdout, stderr)


_WATCHED = ("/proc", "/dev", "/sys", "/etc", "/bin", "/usr", "/var", "/root", "/home")
SESSION_TMP: list[Path] = []


def mount_points() -> Counter[tuple[str, str, str]]:
    """The host's mounts that a container could wrongly affect, counted.

    (mount point, fs type, source) for "/", the usual container destinations (/proc, /dev,
    /sys, ...) and everything under this session's tmp dir; duplicates count, so a second
    mount stacked on "/" shows. Other processes' mounts elsewhere (other test suites running
    at the same time) are left out so they cannot make a test fail.
    """
    result: Counter[tuple[str, str, str]] = Counter()
    base = str(SESSION_TMP[0]) if SESSION_TMP else None
    with open("/proc/self/mountinfo", encoding="utf-8") as file:
        for line in file:
            fields = line.split()
            point = fields[4]
            separator = fields.index("-")
            watched = point == "/" or any(point == w or point.startswith(w + "/")
                                          for w in _WATCHED)
            if watched or (base is not None and point.startswith(base)):
                result[(point, fields[separator + 1], fields[separator + 2])] += 1
    return result


def child_pids() -> set[int]:
    """The PIDs of this process's children (to prove a test left none)."""
    result: set[int] = set()
    for task in os.listdir("/proc/self/task"):
        with open(f"/proc/self/task/{task}/children", encoding="ascii") as file:
            result.update(int(p) for p in file.read().split())
    return result


@dataclass
class Running:
    """A started container whose output the test reads itself."""

    id: str
    pid: int
    pipes: Pipes

    def read_line(self, timeout: float = 10.0) -> str:
        """One line of the container's stdout (for handshakes such as "ready")."""
        selector = selectors.DefaultSelector()
        selector.register(self.pipes.out_r, selectors.EVENT_READ)
        line = b""
        try:
            while not line.endswith(b"\n"):
                if not selector.select(timeout):
                    raise TimeoutError(f"no line from the container (got {line!r})")
                byte = os.read(self.pipes.out_r, 1)
                if not byte:
                    break
                line += byte
        finally:
            selector.close()
        return line.decode().rstrip("\n")


def start_container(runtime: Any, rootfs: Path, spec: dict[str, Any],
                    container_id: str | None = None, stdin_data: bytes = b"") -> Running:
    """create + start; the caller waits and deletes."""
    container_id = container_id or new_id()
    bundle = write_bundle(rootfs, spec)
    pipes = Pipes(stdin_data)
    try:
        pid = runtime.create(container_id, bundle, pipes.stdio)
    finally:
        pipes.close_child_ends()
    runtime.start(container_id)
    return Running(container_id, pid, pipes)


def cgroup_dirs(container_id: str) -> list[Path]:
    """Every directory of the container's cgroup that exists now, in any hierarchy."""
    base = Path("/sys/fs/cgroup")
    return [h / CGROUP_PARENT / container_id for h in base.iterdir()
            if (h / CGROUP_PARENT / container_id).is_dir()]


def host_state() -> tuple[Counter[tuple[str, str, str]], set[int]]:
    """The host's mount points and this process's children (compared before and after)."""
    return mount_points(), child_pids()
