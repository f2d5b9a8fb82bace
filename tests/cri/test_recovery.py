"""A SIGKILLed daemon with CRI pods running: after its restart the same sandboxes and
containers, in the same states, with their IPs and log files; and what a crash between a
pod's network setup and its record left is released (DEL, netns unpinned) at the next start."""

from __future__ import annotations

import signal
import time
from collections.abc import Iterator

import grpc
import pytest

from servin.api.cri.runtime.v1 import api_pb2
from tests.cri.conftest import CRI, running_cri
from tests.registry.registryd import Registry


@pytest.fixture
def own_cri(registry: Registry, pushed: dict[str, str]) -> Iterator[CRI]:
    with running_cri(registry) as env:
        yield env


def _snapshot(cri: CRI) -> tuple[dict[str, tuple[int, str]], dict[str, tuple[int, str]]]:
    pods = {}
    for p in cri.runtime.ListPodSandbox(api_pb2.ListPodSandboxRequest(), timeout=30).items:
        ip = cri.runtime.PodSandboxStatus(api_pb2.PodSandboxStatusRequest(
            pod_sandbox_id=p.id), timeout=30).status.network.ip
        pods[p.id] = (p.state, ip)
    containers = {}
    for c in cri.runtime.ListContainers(api_pb2.ListContainersRequest(), timeout=30).containers:
        status = cri.runtime.ContainerStatus(api_pb2.ContainerStatusRequest(
            container_id=c.id), timeout=30).status
        containers[c.id] = (status.state, status.log_path)
    return pods, containers


def _log_size(path: str) -> int:
    with open(path, "rb") as f:
        return len(f.read())


def test_sigkilled_daemon_finds_its_pods_again(own_cri: CRI) -> None:
    cri = own_cri
    first = cri.run_pod("rec-a")
    second = cri.run_pod("rec-b")
    ticker = cri.create(first, "rec-a", "ticker",
                        ["sh", "-c", "while true; do echo tick; sleep 0.1; done"])
    done = cri.create(second, "rec-b", "done", ["sh", "-c", "echo bye; exit 3"])
    created = cri.create(second, "rec-b", "idle", ["sleep", "1000"])
    for cid in (ticker, done):
        cri.runtime.StartContainer(api_pb2.StartContainerRequest(container_id=cid), timeout=60)
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        state = cri.runtime.ContainerStatus(api_pb2.ContainerStatusRequest(
            container_id=done), timeout=30).status.state
        if state == api_pb2.CONTAINER_EXITED:
            break
        time.sleep(0.1)
    before_pods, before_containers = _snapshot(cri)
    assert before_containers[ticker][0] == api_pb2.CONTAINER_RUNNING
    assert before_containers[done][0] == api_pb2.CONTAINER_EXITED
    assert before_containers[created][0] == api_pb2.CONTAINER_CREATED
    assert all(state == api_pb2.SANDBOX_READY and ip for state, ip in before_pods.values())
    log = before_containers[ticker][1]
    size = _log_size(log)

    cri.daemon.stop(signal.SIGKILL)
    cri.daemon.start()
    cri.reconnect()

    after_pods, after_containers = _snapshot(cri)
    assert after_pods == before_pods
    assert after_containers == before_containers
    # The ticker ran on, and its log with it.
    deadline = time.monotonic() + 10
    while _log_size(log) <= size and time.monotonic() < deadline:
        time.sleep(0.1)
    assert _log_size(log) > size
    assert cri.exec_sync(ticker, ["echo", "alive"]).stdout == b"alive\n"
    status = cri.runtime.ContainerStatus(api_pb2.ContainerStatusRequest(container_id=done),
                                         timeout=30).status
    assert status.exit_code == 3 and status.reason == "Error"
    # And everything goes cleanly afterwards.
    for pod in (first, second):
        cri.remove_pod(pod)
    assert cri.leases() == [] and cri.bridge_ports() == [] and cri.netns() == []


def test_network_of_a_pod_never_recorded_is_released_at_start(own_cri: CRI) -> None:
    cri = own_cri
    cri.daemon.stop()
    cri.daemon.env = {"SERVIN_CRASH_AT": "pod-network.after-setup"}
    cri.daemon.start()
    cri.reconnect()
    with pytest.raises(grpc.RpcError):  # the daemon died under the call
        cri.run_pod("crash")
    assert "crashpoint pod-network.after-setup" in cri.daemon.log()
    assert cri.leases() and cri.netns()  # what the crash left
    cri.daemon.env = {}
    cri.daemon.start()
    cri.reconnect()
    assert cri.leases() == [] and cri.netns() == [] and cri.bridge_ports() == []
    assert not cri.runtime.ListPodSandbox(api_pb2.ListPodSandboxRequest(), timeout=30).items
