"""11. CRI: the kubelet's hot paths through the CRI (runtime.v1 over gRPC, the generated stubs),
Servin beside containerd 1.6's CRI plugin (Debian's containerd, runc): a pod sandbox
run+stop+remove, a container create+start in a running pod, and ListContainers over N
containers. Both pull critest's stand-in images through mirrors from the run's local registry
and give pods a CNI bridge network (Debian's plugins) of their own."""

from __future__ import annotations

import json
import shutil
import subprocess
import time
from collections.abc import Callable
from pathlib import Path

import grpc

from bench.env import Environment
from bench.measure import Measure
from bench.model import Row, ScenarioResult
from bench.peers import ContainerdCriPeer
from servin.api.cri.runtime.v1 import api_pb2, api_pb2_grpc
from servin.devtools import critest_images as ci
from servin.devtools.daemonproc import (
    DaemonProcess,
    claim_net_slot,
    release_net_slot,
    short_tmpdir,
)

NAME = "cri"
TITLE = "CRI"
BUSYBOX = f"{ci.E2E}/busybox:1.29-2"
PAUSE = "registry.k8s.io/pause:3.9"


def conflist(name: str, bridge: str, subnet: str, ipam_dir: Path) -> str:
    """A bridge + host-local + portmap network, as a kubelet node would have."""
    return json.dumps({"cniVersion": "1.0.0", "name": name, "plugins": [
        {"type": "bridge", "bridge": bridge, "isGateway": True, "hairpinMode": True,
         "ipam": {"type": "host-local", "ranges": [[{"subnet": subnet}]],
                  "routes": [{"dst": "0.0.0.0/0"}], "dataDir": str(ipam_dir)}},
        {"type": "portmap", "capabilities": {"portMappings": True}}]})


class CRIEndpoint:
    """One CRI server's stubs, and the calls the scenario times."""

    def __init__(self, name: str, socket: Path, log_dir: Path) -> None:
        self.name = name
        self.channel = grpc.insecure_channel(f"unix:{socket}")
        self.runtime = api_pb2_grpc.RuntimeServiceStub(self.channel)
        self.images = api_pb2_grpc.ImageServiceStub(self.channel)
        self.log_dir = log_dir
        self._seq = 0

    def pull(self, image: str) -> None:
        self.images.PullImage(api_pb2.PullImageRequest(image=api_pb2.ImageSpec(image=image)),
                              timeout=300)

    def sandbox(self, name: str) -> api_pb2.PodSandboxConfig:
        return api_pb2.PodSandboxConfig(
            metadata=api_pb2.PodSandboxMetadata(name=name, uid=f"uid-{name}", namespace="bench"),
            hostname=name, log_directory=str(self.log_dir / name))

    def run_pod(self) -> tuple[str, api_pb2.PodSandboxConfig]:
        self._seq += 1
        config = self.sandbox(f"bench-{self._seq}")
        pod = self.runtime.RunPodSandbox(api_pb2.RunPodSandboxRequest(config=config),
                                         timeout=120).pod_sandbox_id
        return pod, config

    def remove_pod(self, pod: str) -> None:
        self.runtime.StopPodSandbox(api_pb2.StopPodSandboxRequest(pod_sandbox_id=pod),
                                    timeout=120)
        self.runtime.RemovePodSandbox(api_pb2.RemovePodSandboxRequest(pod_sandbox_id=pod),
                                      timeout=120)

    def create(self, pod: str, sandbox: api_pb2.PodSandboxConfig, name: str,
               cmd: list[str]) -> str:
        config = api_pb2.ContainerConfig(
            metadata=api_pb2.ContainerMetadata(name=name),
            image=api_pb2.ImageSpec(image=BUSYBOX), command=cmd, log_path=f"{name}.log")
        return str(self.runtime.CreateContainer(api_pb2.CreateContainerRequest(
            pod_sandbox_id=pod, config=config, sandbox_config=sandbox),
            timeout=120).container_id)

    def start(self, cid: str) -> None:
        self.runtime.StartContainer(api_pb2.StartContainerRequest(container_id=cid),
                                    timeout=120)

    def list_containers(self) -> int:
        return len(self.runtime.ListContainers(api_pb2.ListContainersRequest(),
                                               timeout=120).containers)

    def remove_everything(self) -> None:
        for pod in self.runtime.ListPodSandbox(api_pb2.ListPodSandboxRequest(),
                                               timeout=120).items:
            self.remove_pod(pod.id)

    def close(self) -> None:
        self.channel.close()


def _ms(fn: Callable[[], object]) -> float:
    start = time.perf_counter()
    fn()
    return (time.perf_counter() - start) * 1000


class ServinCRI:
    """A Servin daemon mirroring critest's registries, with its own CNI network."""

    def __init__(self, registry: str) -> None:
        self.base = short_tmpdir("bsc-")
        self.base.mkdir(parents=True, exist_ok=True)
        self.slot = claim_net_slot()
        (self.base / "net.d").mkdir()
        (self.base / "net.d" / "10-bench.conflist").write_text(conflist(
            "benchservin", f"svbsc{self.slot}", f"10.228.{self.slot}.0/24", self.base / "ipam"))
        config = self.base / "config.toml"
        config.write_text(f'cni_conf_dir = "{self.base / "net.d"}"\n\n'
                          + ci.servin_mirrors(registry))
        self.daemon = DaemonProcess(self.base, ["--config", str(config)], log_level="info")
        self.daemon.net_slot = self.slot
        self.daemon.start()
        self.endpoint = CRIEndpoint("servin", self.daemon.socket, self.base / "pods")

    def stop(self) -> None:
        self.endpoint.close()
        self.daemon.cleanup()
        subprocess.run(["ip", "link", "del", f"svbsc{self.slot}"], capture_output=True)
        shutil.rmtree(self.base, ignore_errors=True)


class ContainerdCRI:
    """The bench's containerd CRI peer (runc as the runtime) on a kubelet-like CNI network,
    with the scenario's stubs on its socket."""

    def __init__(self, registry: str) -> None:
        self.slot = claim_net_slot()
        base = short_tmpdir("bcd-")
        bridge = f"svbcd{self.slot}"
        self.peer = ContainerdCriPeer(base, registry, runtime="runc", bridge=bridge,
                                      conflist=conflist("benchcontainerd", bridge,
                                                        f"10.229.{self.slot}.0/24",
                                                        base / "ipam"))
        try:
            self.peer.start()
        except BaseException:
            self.peer.stop()
            release_net_slot(self.slot)
            raise
        self.endpoint = CRIEndpoint("containerd", self.peer.socket, base / "pods")

    def stop(self) -> None:
        try:
            self.endpoint.remove_everything()
        finally:
            self.endpoint.close()
            # The shims outlive containerd; every container was removed, so they end too.
            self.peer.stop()
            release_net_slot(self.slot)


def measure(endpoint: CRIEndpoint, rounds: int, count: int) -> dict[str, Measure]:
    """The three figures for one CRI server."""
    out = {"pod": Measure("ms"), "container": Measure("ms"), "list": Measure("ms")}
    endpoint.pull(BUSYBOX)
    endpoint.pull(PAUSE)  # what the kubelet pulls first (containerd's sandbox image)
    for _ in range(rounds):
        def cycle() -> None:
            pod, _ = endpoint.run_pod()
            endpoint.remove_pod(pod)
        out["pod"].add(_ms(cycle))
    pod, sandbox = endpoint.run_pod()
    try:
        for i in range(rounds):
            out["container"].add(_ms(lambda i=i: endpoint.start(
                endpoint.create(pod, sandbox, f"c{i}", ["sleep", "1000"]))))
    finally:
        endpoint.remove_pod(pod)
    # N created containers over a few pods, as a node's worth of them.
    per_pod = 100
    pods = []
    try:
        for start in range(0, count, per_pod):
            pod, sandbox = endpoint.run_pod()
            pods.append(pod)
            for i in range(start, min(start + per_pod, count)):
                endpoint.create(pod, sandbox, f"l{i}", ["true"])
        listed = endpoint.list_containers()
        if listed < count:
            raise RuntimeError(f"{endpoint.name} ListContainers lists {listed} of {count}")
        for _ in range(rounds):
            out["list"].add(_ms(endpoint.list_containers))
    finally:
        for pod in pods:
            endpoint.remove_pod(pod)
    return out


def run(env: Environment, result: ScenarioResult) -> None:
    rounds, count = (2, 10) if env.quick else (10, 500)
    registry = env.registry()
    ci.push_all(registry.address)
    servin = ServinCRI(registry.address)
    try:
        mine = measure(servin.endpoint, rounds, count)
    finally:
        servin.stop()
    theirs: dict[str, Measure] | None = None
    if not env.quick and shutil.which("containerd"):
        peer = ContainerdCRI(registry.address)
        try:
            theirs = measure(peer.endpoint, rounds, count)
        finally:
            peer.stop()
    metrics = {"pod": "pod sandbox run + stop + remove",
               "container": "container create + start in a running pod",
               "list": f"ListContainers with {count} containers"}
    for key, metric in metrics.items():
        if theirs is None:
            result.add(Row(metric, mine[key]))
        else:
            result.add(Row(metric, mine[key], "containerd", theirs[key], "<= 1x"))
    if theirs is not None:
        result.notes.append("containerd 1.6 (Debian) with its CRI plugin and runc; both "
                            "through the same generated runtime.v1 stubs, pods on a CNI bridge "
                            "network")
