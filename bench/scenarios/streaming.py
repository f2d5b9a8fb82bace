"""11. CRI streaming: bytes/s through exec stdout and through a port-forward, beside containerd.

The same client for both runtimes: crictl (cri-tools v1.36.0, ``SERVIN_BENCH_CRICTL``, by
default /opt/critools/crictl). A pod sandbox with one busybox container (the ``critest_images``
stand-in, pulled through mirrors from the run's registry) that serves a file of zeros with
busybox httpd. Exec: ``crictl exec CTR head -c SIZE /dev/zero``, its stdout counted. Port-
forward: ``crictl port-forward POD LOCAL:8080`` and one ``GET`` of the file through it, the
body counted. Each is timed from the command's start to the last byte (the CRI call and the
stream's set-up included: a fixed cost that the size makes small). Lower times are better.

Servin's side needs its CRI door (Exec/PortForward and the sandboxes); while the daemon does
not answer the CRI, only containerd is measured and a note says so.
"""

from __future__ import annotations

import json
import socket
import subprocess
import time
from pathlib import Path

from bench.env import Environment
from bench.measure import CommandFailed, Measure
from bench.model import Row, ScenarioResult
from bench.peers import CRICTL, ContainerdCriPeer, cri_ctl, free_port, wait_until
from servin.devtools.critest_images import push_all, servin_mirrors
from servin.devtools.daemonproc import DaemonProcess, short_tmpdir

NAME = "streaming"
TITLE = "CRI streaming"
IMAGE = "registry.k8s.io/e2e-test-images/busybox:1.29-2"
MIB = 1024 * 1024


def _count(stream) -> int:  # type: ignore[no-untyped-def]
    total = 0
    while chunk := stream.read(1 << 20):
        total += len(chunk)
    return total


class CriTarget:
    """One runtime's pod and container, driven through crictl."""

    def __init__(self, endpoint: str, base: Path, size: int) -> None:
        self.endpoint = endpoint
        self.base = base
        self.size = size
        self.pod = ""
        self.ctr = ""

    def crictl(self, *args: str, timeout: float = 300) -> str:
        return cri_ctl(self.endpoint, *args, timeout=timeout).stdout.strip()

    def setup(self) -> None:
        self.crictl("pull", IMAGE)
        pod = self.base / "pod.json"
        pod.write_text(json.dumps({
            "metadata": {"name": "bench-stream", "namespace": "bench", "uid": "bench-stream-1"},
            "log_directory": str(self.base / "logs"), "linux": {}}))
        ctr = self.base / "ctr.json"
        ctr.write_text(json.dumps({
            "metadata": {"name": "web"}, "image": {"image": IMAGE},
            "command": ["sh", "-c", f"mkdir -p /www && head -c {self.size} /dev/zero > "
                                    "/www/big && exec httpd -f -p 8080 -h /www"],
            "log_path": "web.log", "linux": {}}))
        self.pod = self.crictl("runp", str(pod))
        self.ctr = self.crictl("create", self.pod, str(ctr), str(pod))
        self.crictl("start", self.ctr)
        wait_until(lambda: cri_ctl(self.endpoint, "exec", self.ctr, "wget", "-q", "--spider",
                                   "http://127.0.0.1:8080/big", check=False).returncode == 0,
                   "httpd in the pod")

    def exec_seconds(self) -> float:
        argv = [CRICTL, "--runtime-endpoint", self.endpoint, "exec", self.ctr, "head", "-c",
                str(self.size), "/dev/zero"]
        start = time.perf_counter()
        proc = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        assert proc.stdout is not None
        got = _count(proc.stdout)
        elapsed = time.perf_counter() - start
        if proc.wait(60) != 0 or got != self.size:
            error = proc.stderr.read().decode()[:200] if proc.stderr else ""
            raise CommandFailed(f"crictl exec: exit {proc.returncode}, {got} of {self.size} "
                                f"bytes: {error}")
        return elapsed

    def port_forward_seconds(self) -> float:
        port = free_port()
        argv = [CRICTL, "--runtime-endpoint", self.endpoint, "port-forward", self.pod,
                f"{port}:8080"]
        forward = subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        try:
            wait_until(lambda: socket.create_connection(("127.0.0.1", port), 1).close() or True,
                       "crictl port-forward", proc=forward)
            start = time.perf_counter()
            with socket.create_connection(("127.0.0.1", port), 30) as sock:
                sock.sendall(b"GET /big HTTP/1.0\r\n\r\n")
                reader = sock.makefile("rb")
                head = b""
                while not head.endswith(b"\r\n\r\n"):
                    byte = reader.read(1)
                    if not byte:
                        raise CommandFailed(f"port-forward: the response ended early: {head!r}")
                    head += byte
                got = _count(reader)
            elapsed = time.perf_counter() - start
        finally:
            forward.terminate()
            forward.wait(30)
        if not head.startswith(b"HTTP/1.1 200") or got != self.size:
            raise CommandFailed(f"port-forward: {head[:40]!r}, {got} of {self.size} bytes")
        return elapsed

    def teardown(self) -> None:
        if self.pod:
            cri_ctl(self.endpoint, "rmp", "-f", self.pod, check=False)


def _servin_daemon(registry: str) -> tuple[DaemonProcess, str]:
    """A daemon whose pods use a CNI bridge of their own (returned: CNI DEL leaves it)."""
    base = short_tmpdir("svbs-")
    cni = base / "net.d"
    cni.mkdir()
    slot_subnet = f"10.227.{base.stat().st_ino % 250}.0/24"
    bridge = f"svbs{base.stat().st_ino % 100000}"
    (cni / "10-bench.conflist").write_text(json.dumps({
        "cniVersion": "1.0.0", "name": "bench", "plugins": [
            {"type": "bridge", "bridge": bridge,
             "isGateway": False, "ipMasq": False,
             "ipam": {"type": "host-local", "ranges": [[{"subnet": slot_subnet}]],
                      "dataDir": str(base / "ipam")}}]}))
    config = base / "config.toml"
    config.write_text(f'cni_conf_dir = "{cni}"\n\n{servin_mirrors(registry)}\n')
    return DaemonProcess(base, ["--config", str(config)], log_level="info").start(), bridge


def run(env: Environment, result: ScenarioResult) -> None:
    size, rounds = (16 * MIB, 1) if env.quick else (256 * MIB, 5)
    if not Path(CRICTL).exists():
        result.notes.append(f"not run: no crictl at {CRICTL} (SERVIN_BENCH_CRICTL)")
        return
    registry = env.registry()
    push_all(registry.address)
    measures: dict[str, dict[str, Measure]] = {}
    targets: list[tuple[str, CriTarget]] = []
    daemon, bridge = _servin_daemon(registry.address)
    try:
        if cri_ctl(daemon.host, "version", check=False).returncode == 0:
            targets.append(("servin", CriTarget(daemon.host, daemon.base, size)))
        else:
            result.notes.append("Servin: the daemon does not answer the CRI yet (its CRI door "
                                "is not built): only containerd measured")
        peer = None
        if not env.quick:
            peer = ContainerdCriPeer(short_tmpdir("bcd-"), registry.address).start()
            targets.append(("containerd", CriTarget(peer.endpoint, peer.base, size)))
        try:
            for name, target in targets:
                target.setup()
                measures[name] = {"exec": Measure("s"), "pf": Measure("s")}
            for _ in range(rounds):
                for name, target in targets:
                    measures[name]["exec"].add(target.exec_seconds())
                    measures[name]["pf"].add(target.port_forward_seconds())
        finally:
            for _, target in targets:
                target.teardown()
            if peer is not None:
                peer.stop()
    finally:
        daemon.cleanup()
        subprocess.run(["ip", "link", "delete", bridge], capture_output=True)
    mib = size // MIB
    labels = {"exec": f"exec stdout, {mib} MiB through `crictl exec`: time",
              "pf": f"port-forward, {mib} MiB through `crictl port-forward`: time"}
    for key, label in labels.items():
        servin = measures.get("servin", {}).get(key)
        if "containerd" in measures:
            result.add(Row(label, servin, "containerd 1.6", measures["containerd"][key]))
        elif servin is not None:
            result.add(Row(label, servin))
    for name, m in measures.items():
        result.notes.append(
            f"{name}: exec stdout {size / m['exec'].median / 1e6:.0f} MB/s, port-forward "
            f"{size / m['pf'].median / 1e6:.0f} MB/s (medians of {rounds})")
