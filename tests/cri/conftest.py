"""Fixtures for the CRI door's tests: a local registry with critest's stand-in images, and a
daemon pulling through mirrors to it, with a private CNI network (bridge ``svcri<slot>``,
10.224.<slot>.0/24, portmap) and the CRI spoken through the generated runtime.v1 stubs."""

from __future__ import annotations

import contextlib
import json
import shutil
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import grpc
import pytest

from servin.api.cri.runtime.v1 import api_pb2, api_pb2_grpc
from servin.devtools import critest_images as ci
from servin.engine.linux.netns import list_netns, remove_netns
from tests.daemon import DaemonProcess, claim_net_slot, short_tmpdir
from tests.registry.registryd import Registry, start_registry

BUSYBOX = f"{ci.E2E}/busybox:1.29-2"
NGINX = f"{ci.E2E}/nginx:1.14-2"


@pytest.fixture(scope="module")
def registry() -> Iterator[Registry]:
    reg = start_registry(short_tmpdir("sv-crireg-"))
    try:
        yield reg
    finally:
        reg.stop()


@pytest.fixture(scope="module")
def pushed(registry: Registry) -> dict[str, str]:
    return ci.push_all(registry.host)


@dataclass
class CRI:
    """A daemon with its CRI stubs and its private CNI network."""

    daemon: DaemonProcess
    channel: grpc.Channel
    runtime: api_pb2_grpc.RuntimeServiceStub
    images: api_pb2_grpc.ImageServiceStub

    @property
    def slot(self) -> int:
        assert self.daemon.net_slot is not None
        return self.daemon.net_slot

    @property
    def bridge(self) -> str:
        return f"svcri{self.slot}"

    @property
    def subnet(self) -> str:
        return f"10.224.{self.slot}.0/24"

    @property
    def conf_dir(self) -> Path:
        return self.daemon.base / "net.d"

    @property
    def ipam_dir(self) -> Path:
        return self.daemon.base / "ipam"

    @property
    def log_dir(self) -> Path:
        return self.daemon.base / "pods"

    def conflist(self) -> dict[str, Any]:
        return {
            "cniVersion": "1.0.0", "name": f"svcri{self.slot}",
            "plugins": [
                {"type": "bridge", "bridge": self.bridge, "isGateway": True, "ipMasq": False,
                 "hairpinMode": True,
                 "ipam": {"type": "host-local", "ranges": [[{"subnet": self.subnet}]],
                          "routes": [{"dst": "0.0.0.0/0"}], "dataDir": str(self.ipam_dir)}},
                {"type": "portmap", "capabilities": {"portMappings": True}},
            ],
        }

    def write_conf(self) -> None:
        self.conf_dir.mkdir(parents=True, exist_ok=True)
        (self.conf_dir / "10-test.conflist").write_text(json.dumps(self.conflist()))

    def leases(self) -> list[str]:
        """host-local's reservations on this network."""
        directory = self.ipam_dir / f"svcri{self.slot}"
        if not directory.is_dir():
            return []
        return sorted(p.name for p in directory.iterdir()
                      if p.name != "lock" and not p.name.startswith("last_reserved_ip"))

    def bridge_ports(self) -> list[str]:
        """The host sides of the veths on this network's bridge."""
        out = subprocess.run(["ip", "-o", "link", "show", "master", self.bridge],
                             capture_output=True, text=True).stdout
        return [line.split(":")[1].strip().split("@")[0] for line in out.splitlines()]

    def netns(self) -> list[Path]:
        """The pinned pod network namespaces the daemon holds."""
        return list_netns(self.daemon.exec_root / "netns")

    def reconnect(self) -> None:
        """A new channel (after a daemon restart)."""
        self.channel.close()
        self.channel = grpc.insecure_channel(f"unix:{self.daemon.socket}")
        self.runtime = api_pb2_grpc.RuntimeServiceStub(self.channel)
        self.images = api_pb2_grpc.ImageServiceStub(self.channel)

    # -- helpers the tests share ---------------------------------------------------------

    def sandbox_config(self, name: str, **kwargs: Any) -> api_pb2.PodSandboxConfig:
        config = api_pb2.PodSandboxConfig(
            metadata=api_pb2.PodSandboxMetadata(name=name, uid=f"uid-{name}",
                                                namespace="testns", attempt=0),
            hostname=name, log_directory=str(self.log_dir / name),
            labels={"app": name}, annotations={"note": name}, **kwargs)
        return config

    def run_pod(self, name: str, **kwargs: Any) -> str:
        config = self.sandbox_config(name, **kwargs)
        return str(self.runtime.RunPodSandbox(
            api_pb2.RunPodSandboxRequest(config=config), timeout=60).pod_sandbox_id)

    def create(self, pod_id: str, pod_name: str, name: str, cmd: list[str],
               image: str = BUSYBOX, **kwargs: Any) -> str:
        config = api_pb2.ContainerConfig(
            metadata=api_pb2.ContainerMetadata(name=name), image=api_pb2.ImageSpec(image=image),
            command=cmd, log_path=f"{name}.log", **kwargs)
        return str(self.runtime.CreateContainer(api_pb2.CreateContainerRequest(
            pod_sandbox_id=pod_id, config=config,
            sandbox_config=self.sandbox_config(pod_name)), timeout=60).container_id)

    def exec_sync(self, cid: str, cmd: list[str], timeout: int = 10) -> api_pb2.ExecSyncResponse:
        return self.runtime.ExecSync(api_pb2.ExecSyncRequest(
            container_id=cid, cmd=cmd, timeout=timeout), timeout=timeout + 30)

    def remove_pod(self, pod_id: str) -> None:
        self.runtime.StopPodSandbox(api_pb2.StopPodSandboxRequest(pod_sandbox_id=pod_id),
                                    timeout=60)
        self.runtime.RemovePodSandbox(api_pb2.RemovePodSandboxRequest(pod_sandbox_id=pod_id),
                                      timeout=60)


def start_cri(registry: Registry) -> CRI:
    """A daemon mirroring critest's registries to ``registry``, with a CNI conf dir."""
    base = short_tmpdir("sv-cri-")
    base.mkdir(parents=True, exist_ok=True)
    config = base / "config.toml"
    config.write_text(f'cni_conf_dir = "{base / "net.d"}"\n\n'
                      + ci.servin_mirrors(registry.host))
    d = DaemonProcess(base, ["--config", str(config)])
    d.net_slot = claim_net_slot()
    channel = grpc.insecure_channel(f"unix:{d.socket}")
    cri = CRI(d, channel, api_pb2_grpc.RuntimeServiceStub(channel),
              api_pb2_grpc.ImageServiceStub(channel))
    d.start()
    return cri


def stop_cri(cri: CRI) -> None:
    """Remove every pod, stop the daemon, and delete what CNI made. A daemon that a test
    stopped is started again first: its pods run on without it and would be left behind."""
    if cri.daemon.proc is not None and cri.daemon.proc.poll() is not None:
        cri.daemon.env = {}
        cri.daemon.start()
        cri.reconnect()
    with contextlib.suppress(grpc.RpcError):
        for pod in cri.runtime.ListPodSandbox(api_pb2.ListPodSandboxRequest(), timeout=30).items:
            cri.remove_pod(pod.id)
    cri.channel.close()
    netns = cri.netns()
    bridge = cri.bridge
    cri.daemon.cleanup()
    for ns in netns:
        remove_netns(ns)
    subprocess.run(["ip", "link", "del", bridge], capture_output=True)
    shutil.rmtree(cri.daemon.base, ignore_errors=True)


@contextlib.contextmanager
def running_cri(registry: Registry) -> Iterator[CRI]:
    """``start_cri`` with its CNI network written and busybox pulled; ``stop_cri`` after."""
    env = start_cri(registry)
    try:
        env.write_conf()
        env.images.PullImage(api_pb2.PullImageRequest(image=api_pb2.ImageSpec(image=BUSYBOX)),
                             timeout=120)
        yield env
    finally:
        stop_cri(env)


@pytest.fixture(scope="module")
def cri(registry: Registry, pushed: dict[str, str]) -> Iterator[CRI]:
    with running_cri(registry) as env:
        yield env
