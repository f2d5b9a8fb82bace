"""The CRI's way in: a pod created with network mode none and a pinned network namespace
handed to it (made, as the CRI door does, before the pod; CNI would configure it)."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from servin.api.servin.v1 import pods_pb2
from servin.client.sync import Client
from servin.engine.linux.netns import create_netns, remove_netns
from servin.errors import InvalidArgument
from tests.daemon import DaemonProcess, short_tmpdir


@pytest.fixture
def netns() -> object:
    base = short_tmpdir()
    path = base / "sandbox-ns"
    create_netns(path)
    try:
        yield path
    finally:
        remove_netns(path)
        os.rmdir(base)


def test_pod_joins_a_given_network_namespace(engine: DaemonProcess, netns: Path) -> None:
    with Client(engine.host) as client:
        spec = pods_pb2.PodSpec(network="none", netns_path=str(netns),
                                hostname="sandbox-1", log_directory="/var/log/pods/x",
                                labels={"io.kubernetes.pod.name": "x"},
                                annotations={"a": "b"})
        pod = client.pods.Create(pods_pb2.CreatePodRequest(name="sandbox", spec=spec))
        pod = client.pods.Start(pods_pb2.PodRequest(id=pod.id))
        assert os.stat(f"/proc/{pod.infra_pid}/ns/net").st_ino == os.stat(netns).st_ino
        engine.cli("run", "-d", "--pod", "sandbox", "--name", "sandbox-c", "busybox",
                   "sleep", "600", check=True)
        member_pid = int(engine.cli("inspect", "-f", "{{.State.Pid}}", "sandbox-c",
                                    check=True).stdout)
        assert os.stat(f"/proc/{member_pid}/ns/net").st_ino == os.stat(netns).st_ino
        assert engine.cli("exec", "sandbox-c", "hostname", check=True).stdout.strip() == \
            "sandbox-1"
        got = client.pods.Inspect(pods_pb2.PodRequest(id="sandbox"))
        assert got.spec.log_directory == "/var/log/pods/x"
        assert dict(got.spec.annotations) == {"a": "b"}
        client.pods.Remove(pods_pb2.RemovePodRequest(id=pod.id, force=True))
    # The namespace belongs to its maker: still pinned after the pod is gone.
    assert os.path.exists(netns)


def test_bad_netns_paths_are_refused(engine: DaemonProcess, netns: Path) -> None:
    with Client(engine.host) as client:
        for spec, words in (
            (pods_pb2.PodSpec(netns_path="/nonexistent/ns"), "no network namespace"),
            (pods_pb2.PodSpec(netns_path="relative/ns"), "invalid network namespace"),
            (pods_pb2.PodSpec(network="bridge", netns_path=str(netns)), "mode none"),
            (pods_pb2.PodSpec(netns_path=str(netns),
                              ports=[{"container_port": 80}]), "cannot publish"),
        ):
            with pytest.raises(InvalidArgument, match=words):
                client.pods.Create(pods_pb2.CreatePodRequest(name="bad", spec=spec))
        assert not list(client.pods.List(pods_pb2.ListPodsRequest()).pods)
