"""The peers, each private to this run: dockerd, podman, a registry, an OCI bundle for runc/crun.

Every peer keeps its state in its own temp dir (data root, exec root, socket), so a benchmark
never touches a system-wide daemon and leaves nothing behind. Missing peers are installed from
Debian's packages.
"""

from __future__ import annotations

import json
import os
import resource
import shutil
import signal
import socket
import subprocess
import tarfile
import time
import urllib.request
from pathlib import Path

import grpc

from bench.engines import CliEngine
from bench.measure import CommandFailed, first_line, run
from bench.procfs import pids_where
from servin.api.cri.runtime.v1 import api_pb2, api_pb2_grpc
from servin.devtools.critest_images import containerd_mirrors

# binary -> the Debian package that provides it
PACKAGES = {
    "dockerd": "docker.io",
    "containerd": "containerd",
    "podman": "podman",
    "conmon": "conmon",
    "crun": "crun",
    "runc": "runc",
    "skopeo": "skopeo",
    "docker-registry": "docker-registry",
    "tmux": "tmux",
}
BUSYBOX_CHANGES = 'CMD ["sh"]'
PODMAN_NPROC = 4096


def ensure_binaries(*binaries: str) -> None:
    """Install the Debian packages of any of ``binaries`` not on PATH (apt-get)."""
    missing = sorted({PACKAGES[b] for b in binaries if shutil.which(b) is None})
    if not missing:
        return
    env = dict(os.environ, DEBIAN_FRONTEND="noninteractive")
    print(f"bench: installing {' '.join(missing)} (apt-get)", flush=True)
    run(["apt-get", "install", "-y", "-q", *missing], env=env, timeout=1800)


def free_port() -> int:
    """A TCP port on 127.0.0.1 nobody listens on right now."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def wait_until(check, what: str, timeout: float = 60.0, proc: subprocess.Popen | None = None):
    """Poll ``check()`` until it is truthy; fail with ``what`` after ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc is not None and proc.poll() is not None:
            raise RuntimeError(f"{what}: the process exited {proc.returncode}")
        try:
            result = check()
        except Exception:
            result = None
        if result:
            return result
        time.sleep(0.1)
    raise RuntimeError(f"{what}: not ready after {timeout:.0f} s")


def stop_process(proc: subprocess.Popen | None, timeout: float = 30.0) -> None:
    """SIGTERM, then SIGKILL after ``timeout`` seconds."""
    if proc is None or proc.poll() is not None:
        return
    proc.send_signal(signal.SIGTERM)
    try:
        proc.wait(timeout)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()


def unmount_under(base: Path) -> None:
    """Lazily unmount whatever a peer left mounted under ``base`` (deepest first)."""
    prefix = str(base.resolve())
    points = []
    for line in Path("/proc/self/mountinfo").read_text().splitlines():
        point = line.split()[4].replace("\\040", " ")
        if point == prefix or point.startswith(prefix + "/"):
            points.append(point)
    for point in sorted(points, key=len, reverse=True):
        subprocess.run(["umount", "-l", point], capture_output=True)


def remove_tree(base: Path) -> None:
    """Unmount leftovers under ``base`` and delete it (twice: a peer that was still exiting
    can mount again, as podman's storage did once here)."""
    for _ in range(2):
        unmount_under(base)
        shutil.rmtree(base, ignore_errors=True)
        if not base.exists():
            return
        time.sleep(1)
    print(f"bench: could not remove {base} completely", flush=True)


class DockerPeer:
    """A private dockerd (with the containerd it starts itself) on a socket in ``base``."""

    def __init__(self, base: Path) -> None:
        self.base = base
        self.socket = base / "docker.sock"
        self.proc: subprocess.Popen[bytes] | None = None
        client = "/usr/bin/docker" if Path("/usr/bin/docker").exists() else "docker"
        self.engine = CliEngine("docker", [client, "-H", f"unix://{self.socket}"])

    def start(self) -> DockerPeer:
        ensure_binaries("dockerd", "containerd")
        self.base.mkdir(parents=True, exist_ok=True)
        log = open(self.base / "dockerd.log", "ab")  # noqa: SIM115 - the child holds it
        self.proc = subprocess.Popen(
            [
                "dockerd",
                "--host", f"unix://{self.socket}",
                "--data-root", str(self.base / "data"),
                "--exec-root", str(self.base / "exec"),
                "--pidfile", str(self.base / "dockerd.pid"),
                "--iptables=false", "--ip-masq=false", "--bridge=none",
                "--storage-driver", "overlay2",
            ],
            stdout=log, stderr=log, stdin=subprocess.DEVNULL,
        )  # fmt: skip
        log.close()
        wait_until(
            lambda: self.socket.exists() and self.engine.run("version", timeout=10),
            "dockerd", proc=self.proc,
        )
        return self

    @property
    def pid(self) -> int:
        assert self.proc is not None
        return self.proc.pid

    def containerd_pid(self) -> int:
        """The containerd this dockerd started (its config lives under our exec root)."""
        base = str(self.base)
        found = list(
            pids_where(lambda a: Path(a[0]).name == "containerd" and any(base in x for x in a))
        )
        if len(found) != 1:
            raise RuntimeError(f"expected one containerd under {base}, found {found}")
        return found[0]

    def shim_pids(self) -> list[int]:
        """containerd-shim-runc-v2 processes of this dockerd's containers."""
        base = str(self.base)
        return list(
            pids_where(
                lambda a: Path(a[0]).name == "containerd-shim-runc-v2"
                and any(base in x for x in a)
            )
        )

    def import_busybox(self, tar: Path) -> None:
        self.engine.run("import", "-c", BUSYBOX_CHANGES, str(tar), "busybox")

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            try:
                self.engine.remove_all()
            except CommandFailed as exc:
                print(f"bench: docker cleanup: {exc}", flush=True)
        stop_process(self.proc)
        remove_tree(self.base)


class PodmanPeer:
    """podman with its storage, run root and tmp dir under ``base`` (no system state)."""

    def __init__(self, base: Path) -> None:
        self.base = base
        self.service: subprocess.Popen[bytes] | None = None
        self.api_socket = base / "podman.sock"
        conf = base / "containers.conf"
        registries = base / "registries.conf"
        env = dict(
            os.environ, CONTAINERS_CONF=str(conf), CONTAINERS_REGISTRIES_CONF=str(registries)
        )
        self.engine = CliEngine(
            "podman",
            [
                "podman",
                "--root", str(base / "root"),
                "--runroot", str(base / "runroot"),
                "--tmpdir", str(base / "tmp"),
                "--storage-driver", "overlay",
                "--cgroup-manager", "cgroupfs",
                "--events-backend", "file",
            ],
            env,
        )  # fmt: skip

    def start(self) -> PodmanPeer:
        ensure_binaries("podman", "conmon", "crun")
        self.base.mkdir(parents=True, exist_ok=True)
        # Without CAP_SYS_RESOURCE podman's default rlimits fail in crun: pin nofile at the hard
        # limit and nproc well under it (crun refuses even the hard nproc limit here).
        nofile = resource.getrlimit(resource.RLIMIT_NOFILE)[1]
        nproc = resource.getrlimit(resource.RLIMIT_NPROC)[1]
        nproc = PODMAN_NPROC if nproc == resource.RLIM_INFINITY else min(nproc, PODMAN_NPROC)
        limits = [f"nofile={nofile}:{nofile}", f"nproc={nproc}:{nproc}"]
        (self.base / "containers.conf").write_text(
            "[containers]\n"
            f"default_ulimits = {json.dumps(limits)}\n"
            "[engine]\n"
            'cgroup_manager = "cgroupfs"\n'
            'events_logger = "file"\n'
            'runtime = "crun"\n'
        )
        (self.base / "registries.conf").write_text(
            'unqualified-search-registries = []\n'
            '[[registry]]\nlocation = "127.0.0.1"\ninsecure = true\n'
        )
        self.engine.run("info", timeout=60)
        return self

    def import_busybox(self, tar: Path) -> None:
        self.engine.run("import", "-c", BUSYBOX_CHANGES, str(tar), "busybox")

    def start_service(self) -> str:
        """Start ``podman system service`` (docker-compatible API); returns its socket path."""
        if self.service is None:
            self.service = subprocess.Popen(
                [*self.engine.argv, "system", "service", "--time=0", f"unix://{self.api_socket}"],
                env=self.engine.env, stdin=subprocess.DEVNULL,
                stdout=subprocess.DEVNULL, stderr=open(self.base / "service.log", "ab"),  # noqa: SIM115
            )  # fmt: skip
            wait_until(lambda: self.api_socket.exists(), "podman service", proc=self.service)
        return str(self.api_socket)

    def conmon_pids(self) -> list[int]:
        """conmon processes of this podman's containers."""
        base = str(self.base)
        return list(
            pids_where(lambda a: Path(a[0]).name == "conmon" and any(base in x for x in a))
        )

    def stop(self) -> None:
        stop_process(self.service)
        try:
            self.engine.run("rm", "-a", "-f", "-t", "0", timeout=900)
        except (CommandFailed, FileNotFoundError) as exc:
            print(f"bench: podman cleanup: {exc}", flush=True)
        remove_tree(self.base)


class Registry:
    """A private docker-registry (distribution v2) on 127.0.0.1, storing under ``base``."""

    def __init__(self, base: Path) -> None:
        self.base = base
        self.port = free_port()
        self.proc: subprocess.Popen[bytes] | None = None

    @property
    def address(self) -> str:
        return f"127.0.0.1:{self.port}"

    def start(self) -> Registry:
        ensure_binaries("docker-registry", "skopeo")
        self.base.mkdir(parents=True, exist_ok=True)
        config = self.base / "config.yml"
        config.write_text(
            "version: 0.1\n"
            "log:\n  level: error\n"
            f"storage:\n  filesystem:\n    rootdirectory: {self.base / 'data'}\n"
            f"http:\n  addr: {self.address}\n"
        )
        self.proc = subprocess.Popen(
            ["docker-registry", "serve", str(config)],
            stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
            stderr=open(self.base / "registry.log", "ab"),  # noqa: SIM115
        )  # fmt: skip
        url = f"http://{self.address}/v2/"
        wait_until(lambda: urllib.request.urlopen(url, timeout=2).status == 200, "registry",
                   proc=self.proc)
        return self

    def push_oci(self, layout: Path, repository: str) -> str:
        """Push an OCI layout's ``latest`` into the registry; returns the reference."""
        ref = f"{self.address}/{repository}:latest"
        run(["skopeo", "copy", "--quiet", "--dest-tls-verify=false",
             f"oci:{layout}:latest", f"docker://{ref}"], timeout=900)  # fmt: skip
        return ref

    def stop(self) -> None:
        stop_process(self.proc)
        remove_tree(self.base)


class OciBundle:
    """A runc/crun bundle running busybox's ``/bin/true``: rootfs from the busybox tarball,
    config.json from ``runc spec`` (the OCI defaults: new namespaces, no network)."""

    def __init__(self, base: Path, busybox_tar: Path) -> None:
        self.base = base
        self.bundle = base / "bundle"
        self.busybox_tar = busybox_tar
        self.count = 0

    def build(self) -> OciBundle:
        ensure_binaries("runc", "crun")
        rootfs = self.bundle / "rootfs"
        rootfs.mkdir(parents=True, exist_ok=True)
        with tarfile.open(self.busybox_tar) as tar:
            tar.extractall(rootfs, filter="tar")
        run(["runc", "spec", "--bundle", str(self.bundle)])
        config_path = self.bundle / "config.json"
        config = json.loads(config_path.read_text())
        config["process"]["terminal"] = False
        config["process"]["args"] = ["/bin/true"]
        config_path.write_text(json.dumps(config, indent=2))
        return self

    def run_argv(self, runtime: str) -> list[str]:
        """``RUNTIME --root STATE run -b BUNDLE ID`` with a fresh container ID."""
        self.count += 1
        state = self.base / f"state-{runtime}"
        return [runtime, "--root", str(state), "run", "-b", str(self.bundle),
                f"bench-{runtime}-{self.count}"]  # fmt: skip

    def check(self, runtime: str) -> str | None:
        """None when ``RUNTIME run`` works here, else why not (one line)."""
        proc = subprocess.run(self.run_argv(runtime), capture_output=True, timeout=60,
                              stdin=subprocess.DEVNULL)  # fmt: skip
        if proc.returncode != 0:
            return first_line(proc.stderr.decode(errors="replace")) or f"exit {proc.returncode}"
        return None

    def cleanup(self) -> None:
        remove_tree(self.base)


CRICTL = os.environ.get("SERVIN_BENCH_CRICTL", "/opt/critools/crictl")


# runtime name -> the binary containerd's runc shim runs (Debian's packages)
CRI_RUNTIMES = {"crun": "/usr/bin/crun", "runc": "/usr/sbin/runc"}


def isolated_bridge_conflist(bridge: str, subnet: str, ipam_dir: Path) -> str:
    """A CNI bridge network with no gateway, no masquerade and no iptables."""
    return json.dumps({
        "cniVersion": "1.0.0", "name": "bench", "plugins": [
            {"type": "bridge", "bridge": bridge, "isGateway": False, "ipMasq": False,
             "ipam": {"type": "host-local", "ranges": [[{"subnet": subnet}]],
                      "dataDir": str(ipam_dir)}}]})


class ContainerdCriPeer:
    """Debian's containerd 1.6 with its CRI plugin, private to this run: root, state, sockets,
    streaming port and a CNI bridge of its own; images come through mirrors from the run's
    registry (``critest_images`` stand-ins). ``runtime`` is ``crun`` or ``runc``; ``bridge`` and
    ``conflist`` name the pods' network (by default an isolated bridge: no gateway, no
    masquerade, no iptables)."""

    def __init__(self, base: Path, registry: str, *, runtime: str = "crun",
                 bridge: str | None = None, conflist: str | None = None) -> None:
        self.base = base
        self.registry = registry
        self.runtime = runtime
        self.socket = base / "containerd.sock"
        self.stream_port = free_port()
        self.bridge = bridge or f"svbc{os.getpid() % 100000}"
        self.conflist = conflist or isolated_bridge_conflist(
            self.bridge, f"10.226.{os.getpid() % 250}.0/24", base / "ipam")
        self.proc: subprocess.Popen[bytes] | None = None

    @property
    def endpoint(self) -> str:
        return f"unix://{self.socket}"

    def start(self) -> ContainerdCriPeer:
        ensure_binaries("containerd", self.runtime)
        self.base.mkdir(parents=True, exist_ok=True)
        cni = self.base / "net.d"
        cni.mkdir(exist_ok=True)
        (cni / "10-bench.conflist").write_text(self.conflist)
        runtimes = f'plugins."io.containerd.grpc.v1.cri".containerd.runtimes.{self.runtime}'
        config = self.base / "config.toml"
        config.write_text(f"""version = 2
root = "{self.base / 'root'}"
state = "{self.base / 'state'}"
[grpc]
  address = "{self.socket}"
[ttrpc]
  address = "{self.socket}.ttrpc"
[debug]
  address = ""
[metrics]
  address = ""
[plugins."io.containerd.internal.v1.opt"]
  path = "{self.base / 'opt'}"
[plugins."io.containerd.grpc.v1.cri"]
  sandbox_image = "registry.k8s.io/pause:3.9"
  restrict_oom_score_adj = true
  stream_server_address = "127.0.0.1"
  stream_server_port = "{self.stream_port}"
[plugins."io.containerd.grpc.v1.cri".containerd]
  default_runtime_name = "{self.runtime}"
  snapshotter = "overlayfs"
[{runtimes}]
  runtime_type = "io.containerd.runc.v2"
[{runtimes}.options]
  BinaryName = "{CRI_RUNTIMES[self.runtime]}"
[plugins."io.containerd.grpc.v1.cri".cni]
  bin_dir = "/usr/lib/cni"
  conf_dir = "{cni}"
{containerd_mirrors(self.registry)}""")
        self.proc = subprocess.Popen(
            ["containerd", "--config", str(config), "--log-level", "warn"], cwd=self.base,
            stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
            stderr=open(self.base / "containerd.log", "ab"),  # noqa: SIM115
        )  # fmt: skip
        wait_until(self._answers, "containerd's CRI", proc=self.proc)
        return self

    def _answers(self) -> bool:
        """True once the CRI plugin answers Version on the socket."""
        if not self.socket.exists():
            return False
        with grpc.insecure_channel(f"unix:{self.socket}") as channel:
            api_pb2_grpc.RuntimeServiceStub(channel).Version(api_pb2.VersionRequest(),
                                                             timeout=5)
        return True

    def crictl(self, *args: str, check: bool = True,
               timeout: float = 300) -> subprocess.CompletedProcess[str]:
        """crictl against this containerd."""
        return cri_ctl(self.endpoint, *args, check=check, timeout=timeout)

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None and Path(CRICTL).exists():
            # Pods first: their shims outlive containerd, their netns and CNI leases too.
            self.crictl("rmp", "-fa", check=False)
        stop_process(self.proc)
        unmount_under(self.base)
        subprocess.run(["ip", "link", "delete", self.bridge], capture_output=True)
        remove_tree(self.base)


def cri_ctl(endpoint: str, *args: str, check: bool = True,
            timeout: float = 300) -> subprocess.CompletedProcess[str]:
    """Run crictl against a CRI endpoint (images too); a failure raises CommandFailed."""
    proc = subprocess.run([CRICTL, "--runtime-endpoint", endpoint, "--image-endpoint", endpoint,
                           "--timeout", "60s", *args], capture_output=True, text=True,
                          timeout=timeout)
    if check and proc.returncode != 0:
        raise CommandFailed(f"crictl {' '.join(args)}: "
                            f"{first_line(proc.stderr) or proc.returncode}")
    return proc
