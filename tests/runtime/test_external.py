"""The same OCI bundle under the native runtime, runc and crun (through ExternalRuntime)."""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import socket
import subprocess
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from servin.engine.linux.prctl import is_child_subreaper
from servin.engine.runtime.external import ExternalRuntime
from servin.engine.runtime.native import NativeRuntime
from servin.errors import NotFound, ServinError
from tests.runtime.helpers import (
    CGROUP_PARENT,
    Pipes,
    cgroup_dirs,
    cgroup_path,
    default_spec,
    new_id,
    run_container,
    start_container,
    wait_code,
    write_bundle,
)

# crun refuses a "hybrid" host whose cgroup2 still lists a controller; these v1 controllers
# are left unmounted on the CI VM (so cgroup2 owns hugetlb). Mounting them as v1 hierarchies
# empties cgroup2's list, as the project's notes on running crun here describe.
_V1_EXTRA = (("hugetlb", "hugetlb"), ("net_cls,net_prio", "net_cls,net_prio"),
             ("perf_event", "perf_event"))


def _mounted_v1_controllers() -> set[str]:
    found: set[str] = set()
    with open("/proc/self/mountinfo", encoding="utf-8") as file:
        for line in file:
            fields = line.split()
            separator = fields.index("-")
            if fields[separator + 1] == "cgroup":
                found.update(fields[separator + 3].split(","))
    return found


@pytest.fixture(scope="session")
def crun_host() -> Iterator[None]:
    """Make the host acceptable to crun for the session; undo what this fixture mounted."""
    mounted: list[Path] = []
    # Decided on what v1 has mounted, not on cgroup2's list: after an unmount the kernel hands
    # a controller back to cgroup2 lazily, so an empty list now may not be empty in a second.
    if Path("/sys/fs/cgroup/unified").is_dir():
        present = _mounted_v1_controllers()
        for options, name in _V1_EXTRA:
            if set(options.split(",")) & present:
                continue
            target = Path("/sys/fs/cgroup") / name
            target.mkdir(exist_ok=True)
            subprocess.run(["mount", "-t", "cgroup", "-o", options, "cgroup", str(target)],
                           check=True)
            mounted.append(target)
    yield
    for target in mounted:
        leftover = target / CGROUP_PARENT
        if leftover.is_dir():
            for child in leftover.iterdir():
                if child.is_dir():
                    child.rmdir()
            leftover.rmdir()
        subprocess.run(["umount", str(target)], check=True)
        target.rmdir()


def _binary(name: str) -> str:
    path = shutil.which(name)
    if path is None:
        pytest.fail(f"{name} is not installed (apt-get install {name})")
    return path


@pytest.fixture(params=["native", "runc", "crun"])
def any_runtime(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Any]:
    """Each of the three runtimes, with state under the test's tmp dir."""
    kind = request.param
    if kind == "native":
        yield NativeRuntime(tmp_path / "native")
        return
    if kind == "crun":
        request.getfixturevalue("crun_host")
    yield ExternalRuntime(kind, _binary(kind), tmp_path / kind)


PROBE = """
echo pid=$$
hostname
ls /sys/class/net
grep -E '^CapEff|^CapBnd|^NoNewPrivs' /proc/self/status | tr -d '\\t'
stat -c 'keys=%t,%T' /proc/keys
echo 1 > /proc/sys/vm/drop_caches 2>/dev/null || echo proc-sys-ro
ls -A /sys/firmware | wc -l
set -- /proc/[0-9]*; echo $#
id -u
exit 3
"""


def test_the_same_bundle_behaves_the_same_everywhere(any_runtime: Any, rootfs: Path) -> None:
    container_id = new_id()
    spec = default_spec(rootfs, ["sh", "-c", PROBE], cgroups_path=cgroup_path(container_id))
    result = run_container(any_runtime, rootfs, spec, container_id)
    assert result.code == 3, result.stderr
    assert result.stdout.split() == [
        "pid=1", "c1", "lo", "CapEff:00000000a80425fb", "CapBnd:00000000a80425fb",
        "NoNewPrivs:1", "keys=1,3", "proc-sys-ro", "0", "1", "0"]
    assert cgroup_dirs(container_id) == []


@pytest.mark.parametrize("name", ["runc", "crun"])
def test_external_lifecycle(name: str, rootfs: Path, tmp_path: Path,
                            request: pytest.FixtureRequest) -> None:
    if name == "crun":
        request.getfixturevalue("crun_host")
    runtime = ExternalRuntime(name, _binary(name), tmp_path / name)
    container_id = new_id()
    spec = default_spec(rootfs, ["sh", "-c", "echo ready; exec sleep 30"],
                        cgroups_path=cgroup_path(container_id))
    bundle = write_bundle(rootfs, spec)
    pipes = Pipes()
    pid = runtime.create(container_id, bundle, pipes.stdio)
    pipes.close_child_ends()
    try:
        assert is_child_subreaper()
        state = runtime.state(container_id)
        assert (state.status, state.pid, state.bundle) == ("created", pid, bundle)
        runtime.start(container_id)
        assert runtime.state(container_id).status == "running"
        with pytest.raises(ServinError):
            runtime.delete(container_id)  # running, no force
        runtime.kill(container_id, signal.SIGKILL)
        assert wait_code(pid) == -signal.SIGKILL  # waitable: the caller is a subreaper
        deadline = time.monotonic() + 5
        while runtime.state(container_id).status != "stopped" and time.monotonic() < deadline:
            time.sleep(0.01)
        assert runtime.state(container_id).status == "stopped"
        runtime.delete(container_id)
        with pytest.raises(NotFound):
            runtime.state(container_id)
        assert cgroup_dirs(container_id) == []
    finally:
        with contextlib.suppress(NotFound):
            runtime.delete(container_id, force=True)
    assert pipes.drain()[0] == "ready\n"


@pytest.mark.parametrize("name", ["runc", "crun"])
def test_external_errors_carry_the_runtimes_message(name: str, rootfs: Path, tmp_path: Path,
                                                   request: pytest.FixtureRequest) -> None:
    if name == "crun":
        request.getfixturevalue("crun_host")
    runtime = ExternalRuntime(name, _binary(name), tmp_path / name)
    container_id = new_id()
    spec = default_spec(rootfs, ["no-such-program"], cgroups_path=cgroup_path(container_id))
    pipes = Pipes()
    pid = None
    with pytest.raises(ServinError) as info:
        pid = runtime.create(container_id, write_bundle(rootfs, spec), pipes.stdio)
        # crun checks the executable at start, runc at create.
        runtime.start(container_id)
    pipes.close_child_ends()
    if pid is not None:
        wait_code(pid)  # the failed init is ours to reap (we are its subreaper)
    assert isinstance(info.value, NotFound), info.value
    assert "no-such-program" in str(info.value) and name in str(info.value)
    with contextlib.suppress(NotFound):
        runtime.delete(container_id, force=True)
    with pytest.raises(NotFound):
        runtime.state(container_id)
    assert cgroup_dirs(container_id) == []
    pipes.drain()


def test_external_terminal(rootfs: Path, tmp_path: Path) -> None:
    runtime = ExternalRuntime("runc", _binary("runc"), tmp_path / "runc")
    console_path = tmp_path / "console.sock"
    server = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    server.bind(str(console_path))
    server.listen(1)
    received: dict[str, int] = {}

    def receive() -> None:
        conn, _ = server.accept()
        _, fds, _, _ = socket.recv_fds(conn, 1024, 1)
        received["fd"] = fds[0]
        conn.close()

    receiver = threading.Thread(target=receive)
    receiver.start()
    container_id = new_id()
    spec = default_spec(rootfs, ["sh", "-c", "test -t 0 && echo on-a-tty"], terminal=True)
    pid = runtime.create(container_id, write_bundle(rootfs, spec), None,
                         console_socket=console_path)
    receiver.join(5)
    server.close()
    master = received["fd"]
    try:
        runtime.start(container_id)
        output = b""
        while True:
            try:
                chunk = os.read(master, 4096)
            except OSError:
                break
            if not chunk:
                break
            output += chunk
        assert wait_code(pid) == 0
    finally:
        os.close(master)
        runtime.delete(container_id, force=True)
    assert b"on-a-tty" in output


def test_native_and_runc_agree_on_a_running_container(rootfs: Path, tmp_path: Path) -> None:
    native = NativeRuntime(tmp_path / "native")
    runc = ExternalRuntime("runc", _binary("runc"), tmp_path / "runc")
    views = []
    for runtime in (native, runc):
        container_id = new_id()
        spec = default_spec(rootfs, ["sh", "-c", "cut -d' ' -f5 /proc/self/mountinfo | sort;"
                                                 " sleep 30"],
                            cgroups_path=cgroup_path(container_id))
        running = start_container(runtime, rootfs, spec, container_id)
        time.sleep(0.1)
        runtime.kill(running.id, signal.SIGKILL)
        wait_code(running.pid)
        runtime.delete(running.id)
        views.append(running.pipes.drain()[0].split())
    assert views[0] == views[1]


def test_external_create_without_stdio_returns_while_the_container_runs(
        rootfs: Path, tmp_path: Path) -> None:
    runtime = ExternalRuntime("runc", _binary("runc"), tmp_path / "runc")
    container_id = new_id()
    spec = default_spec(rootfs, ["sleep", "30"])
    started = time.monotonic()
    pid = runtime.create(container_id, write_bundle(rootfs, spec), None)
    try:
        runtime.start(container_id)
        assert runtime.state(container_id).status == "running"
        assert time.monotonic() - started < 10
    finally:
        runtime.kill(container_id, signal.SIGKILL)
        assert wait_code(pid) == -signal.SIGKILL
        runtime.delete(container_id, force=True)
