"""Fixtures for the monitor tests: a busybox rootfs, a zygote, bundles, and strict cleanup."""

from __future__ import annotations

import asyncio
import contextlib
import os
import shutil
import signal
import subprocess
import sys
import time
import uuid
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))

from servin.engine.runtime.monitor import client  # noqa: E402
from servin.engine.runtime.monitor.protocol import (  # noqa: E402
    CONTAINER_PID,
    LogConfig,
    RuntimeConfig,
    SpawnSpec,
    monitor_alive,
)
from tests.daemon import short_tmpdir  # noqa: E402

from .bundle import build_rootfs, remove_test_cgroups, write_bundle  # noqa: E402

RUNC = shutil.which("runc") or "/usr/sbin/runc"


@pytest.fixture(scope="session")
def rootfs(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """One busybox rootfs shared by every test container."""
    return build_rootfs(tmp_path_factory.mktemp("rootfs") / "rootfs")


@pytest.fixture(scope="session")
def session_root(tmp_path_factory: pytest.TempPathFactory):
    """An exec root with a running zygote, shut down (and checked empty) at the end."""
    base = short_tmpdir()  # sockets below it must fit AF_UNIX's 107 bytes
    root = base / "exec"
    sock = client.ensure_zygote(root)
    yield root, sock
    assert client.stop_zygote(root)
    remove_test_cgroups()
    shutil.rmtree(base, ignore_errors=True)


def zygote_pid(sock: Path) -> int:
    info = client._ping(sock)
    assert info is not None, "zygote does not answer"
    return int(info["pid"])


class Harness:
    """Builds bundles and specs for one test and cleans up every container it made."""

    def __init__(self, exec_root: Path, zygote: Path, rootfs: Path, runtime: str,
                 work: Path) -> None:
        self.state_root = exec_root / "containers"
        self.exec_root = exec_root
        self.zygote = zygote
        self.rootfs = rootfs
        self.runtime = runtime
        self.work = work
        self.runc_root = exec_root / "runc"
        self.specs: list[SpawnSpec] = []

    def runtime_config(self) -> RuntimeConfig:
        if self.runtime == "native":
            return RuntimeConfig(name="native")
        return RuntimeConfig(name="runc", binary=RUNC, root=str(self.runc_root))

    def spec(self, args: list[str], *, tty: bool = False, open_stdin: bool = False,
             driver: str = "json-file", max_size: int = 0, max_file: int = 1,
             memory_limit: int | None = None) -> SpawnSpec:
        cid = "t" + uuid.uuid4().hex[:15]
        bundle = write_bundle(self.work / "bundles" / cid, self.rootfs, cid, args, tty=tty,
                              memory_limit=memory_limit)
        state_dir = self.state_root / cid
        state_dir.mkdir(parents=True)
        spec = SpawnSpec(
            id=cid,
            bundle=bundle,
            state_dir=state_dir,
            log=LogConfig(path=self.work / "logs" / cid / f"{cid}-json.log", driver=driver,
                          max_size=max_size, max_file=max_file),
            runtime=self.runtime_config(),
            open_stdin=open_stdin,
            tty=tty,
        )
        self.specs.append(spec)
        return spec

    async def create(self, args: list[str], **kw) -> tuple[SpawnSpec, client.MonitorClient]:
        spec = self.spec(args, **kw)
        await client.spawn(self.zygote, spec)
        return spec, client.MonitorClient(spec.state_dir)

    async def run(self, args: list[str], **kw) -> tuple[SpawnSpec, client.MonitorClient]:
        spec, mon = await self.create(args, **kw)
        await mon.start()
        return spec, mon

    def cleanup(self) -> list[str]:
        """Kill what is left; return what had to be killed (a test expecting none asserts)."""
        leftovers = []
        for spec in self.specs:
            if (spec.state_dir / "exit.json").exists():
                # Exited: its monitor is on its way out (it lingers only for slow readers).
                deadline = time.monotonic() + 10
                while monitor_alive(spec.state_dir) and time.monotonic() < deadline:
                    time.sleep(0.01)
            if monitor_alive(spec.state_dir):
                leftovers.append(f"monitor of {spec.id}")
                with contextlib.suppress(FileNotFoundError, ValueError, ProcessLookupError):
                    pid = int((spec.state_dir / CONTAINER_PID).read_text())
                    os.kill(pid, signal.SIGKILL)
                deadline = time.monotonic() + 10
                while monitor_alive(spec.state_dir) and time.monotonic() < deadline:
                    time.sleep(0.02)
                if monitor_alive(spec.state_dir):
                    mpid = int((spec.state_dir / "monitor.pid").read_text().split()[0])
                    os.kill(mpid, signal.SIGKILL)
            if self.runtime == "runc":
                subprocess.run([RUNC, "--root", str(self.runc_root), "delete", "--force",
                                spec.id], capture_output=True)
        return leftovers


@pytest.fixture(params=["native", "runc"])
def runtime(request: pytest.FixtureRequest) -> str:
    """Each container test runs with Servin's own runtime and with runc."""
    return request.param


@pytest.fixture
def harness(session_root, rootfs: Path, runtime: str, tmp_path: Path):
    exec_root, sock = session_root
    h = Harness(exec_root, sock, rootfs, runtime, tmp_path)
    yield h
    leftovers = h.cleanup()
    assert not leftovers, f"left running after the test: {leftovers}"


def arun(coro, timeout: float = 60.0):
    """Run a coroutine to completion with a deadline (no pytest-asyncio here)."""
    return asyncio.run(asyncio.wait_for(coro, timeout))
