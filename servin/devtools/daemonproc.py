"""A real servin daemon in temp dirs, and the CLI run against it.

Shared by the integration tests (``tests/daemon.py``) and the benchmarks (``bench/``): both need
an isolated daemon (its own root, exec root, socket, bridge and subnets) that ``start()`` waits
for and ``cleanup()`` removes with every container it ran.
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]


def short_tmpdir(prefix: str = "sv-") -> Path:
    """A temp dir with a short path (unix socket paths are limited to 107 bytes)."""
    return Path(tempfile.mkdtemp(prefix=prefix, dir="/tmp"))


NET_CLAIMS = Path("/tmp/servin-test-nets")
NET_SLOTS = 250


def claim_net_slot() -> int:
    """A network slot no other live test daemon on this host uses (a claim file per slot).

    Slot ``i`` gives a daemon bridge ``svt<i>``, default subnet 10.200.<i>.0/24 and user
    network pool 10.201.<i>.0/24, so test daemons running in parallel never clash.
    """
    NET_CLAIMS.mkdir(exist_ok=True)
    for slot in range(NET_SLOTS):
        if Path(f"/sys/class/net/svt{slot}").exists():
            # A bridge left by a daemon that was killed and never restarted: the slot is not
            # usable (a new daemon refuses a bridge of that name it did not make).
            continue
        path = NET_CLAIMS / str(slot)
        try:
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644)
        except FileExistsError:
            try:
                owner = int(path.read_text() or "0")
                os.kill(owner, 0)
                continue
            except (ValueError, ProcessLookupError, FileNotFoundError):
                path.unlink(missing_ok=True)  # left by a test process that died
                try:
                    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644)
                except FileExistsError:
                    continue
        os.write(fd, str(os.getpid()).encode())
        os.close(fd)
        return slot
    raise RuntimeError("no free test network slot")


def release_net_slot(slot: int) -> None:
    """Give a slot back."""
    (NET_CLAIMS / str(slot)).unlink(missing_ok=True)


def _delete_own_bridge(name: str, owner: str) -> None:
    """Delete the test daemon's bridge if a kill left it behind (a clean stop removes it)."""
    try:
        alias = Path(f"/sys/class/net/{name}/ifalias").read_text().strip()
    except OSError:
        return
    if alias == owner:
        subprocess.run(["ip", "link", "delete", name], capture_output=True, check=False)


@dataclass
class DaemonProcess:
    """One daemon: ``start()`` waits until its socket answers."""

    base: Path
    extra_args: list[str] = field(default_factory=list)
    log_level: str = "debug"
    # Runs in the daemon's process before exec (e.g. to start it with signals ignored).
    preexec: Callable[[], None] | None = None
    proc: subprocess.Popen[bytes] | None = None
    net_slot: int | None = None
    # Extra environment for the daemon process (e.g. SERVIN_CRASH_AT for crash tests).
    env: dict[str, str] = field(default_factory=dict)

    @property
    def bridge(self) -> str:
        """The default network's Linux bridge of this daemon."""
        return f"svt{self.net_slot}"

    @property
    def default_subnet(self) -> str:
        return f"10.200.{self.net_slot}.0/24"

    @property
    def address_pool(self) -> str:
        return f"10.201.{self.net_slot}.0/24"

    @property
    def root(self) -> Path:
        return self.base / "root"

    @property
    def exec_root(self) -> Path:
        return self.base / "run"

    @property
    def socket(self) -> Path:
        return self.exec_root / "servin.sock"

    @property
    def host(self) -> str:
        return f"unix://{self.socket}"

    @property
    def log_path(self) -> Path:
        return self.base / "daemon.log"

    def command(self) -> list[str]:
        return [
            sys.executable,
            "-m",
            "servin",
            "daemon",
            "--root",
            str(self.root),
            "--exec-root",
            str(self.exec_root),
            "--log-level",
            self.log_level,
            "--bridge-name",
            self.bridge,
            "--default-subnet",
            self.default_subnet,
            "--address-pool",
            self.address_pool,
            "--address-pool-size",
            "28",
            # Test daemons run side by side: never the default 10010.
            "--streaming-port",
            "0",
            *self.extra_args,
        ]

    def start(self, timeout: float = 20.0) -> DaemonProcess:
        self.base.mkdir(parents=True, exist_ok=True)
        if self.net_slot is None:
            self.net_slot = claim_net_slot()
        log = open(self.log_path, "ab")  # noqa: SIM115 - the child holds it
        self.proc = subprocess.Popen(
            self.command(), stdout=log, stderr=log, cwd=REPO, stdin=subprocess.DEVNULL,
            preexec_fn=self.preexec,
            env={**os.environ, **self.env} if self.env else None,
        )
        log.close()
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"daemon exited {self.proc.returncode}:\n{self.log()}")
            if self.socket.exists() and self.ping():
                return self
            time.sleep(0.05)
        raise RuntimeError(f"daemon did not come up:\n{self.log()}")

    def ping(self) -> bool:
        from servin.api.servin.v1 import system_pb2
        from servin.client.sync import Client
        from servin.errors import ServinError

        try:
            with Client(self.host) as c:
                c.system.Ping(system_pb2.PingRequest(), timeout=2)
            return True
        except ServinError:
            return False

    def log(self) -> str:
        try:
            return self.log_path.read_text(errors="replace")
        except FileNotFoundError:
            return ""

    def stop(self, sig: int = signal.SIGTERM, timeout: float = 15.0) -> int | None:
        if self.proc is None or self.proc.poll() is not None:
            return self.proc.returncode if self.proc else None
        self.proc.send_signal(sig)
        try:
            return self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            return self.proc.wait()

    def cleanup(self) -> None:
        """Remove every container, stop the daemon and its monitor zygote, delete the dirs."""
        if self.proc is not None and self.proc.poll() is None:
            ids = self.cli("ps", "-aq", "--no-trunc").stdout.split()
            if ids and self.cli("rm", "-f", *ids).returncode != 0:
                # Pods' infra containers go only with their pod.
                self.cli("pod", "rm", "-f", "--all")
        self.stop()
        from servin.engine.runtime.monitor.client import stop_zygote

        stop_zygote(self.exec_root)
        if self.net_slot is not None:
            _delete_own_bridge(self.bridge, f"servin {self.root}")
        shutil.rmtree(self.base, ignore_errors=True)
        if self.net_slot is not None:
            release_net_slot(self.net_slot)
            self.net_slot = None

    def cli(
        self,
        *args: str,
        input: bytes | None = None,
        check: bool = False,
        env: dict[str, str] | None = None,
        timeout: float = 120,
    ) -> subprocess.CompletedProcess[str]:
        """Run ``servin -H <this daemon> ARGS`` and return its result (text)."""
        return run_cli("-H", self.host, *args, input=input, check=check, env=env, timeout=timeout)


def run_cli(
    *args: str,
    input: bytes | None = None,
    check: bool = False,
    env: dict[str, str] | None = None,
    timeout: float = 120,
) -> subprocess.CompletedProcess[str]:
    """Run the ``servin`` CLI as a subprocess."""
    full_env = dict(os.environ)
    full_env.pop("SERVIN_HOST", None)  # tests name their daemon explicitly
    full_env.update(env or {})
    proc = subprocess.run(
        [sys.executable, "-m", "servin", *args],
        input=input,
        capture_output=True,
        env=full_env,
        timeout=timeout,
        cwd=REPO,
    )
    result = subprocess.CompletedProcess(
        proc.args,
        proc.returncode,
        proc.stdout.decode(errors="replace"),
        proc.stderr.decode(errors="replace"),
    )
    if check and result.returncode != 0:
        raise AssertionError(
            f"servin {' '.join(args)} failed ({result.returncode}):\n"
            f"{result.stdout}\n{result.stderr}"
        )
    return result
