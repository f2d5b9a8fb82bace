"""Bad CRI requests get INVALID_ARGUMENT or NOT_FOUND with a one-line reason, and nothing is
half created: no pod, container, netns, veth or IPAM lease is left behind."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import grpc
import pytest

from servin.api.cri.runtime.v1 import api_pb2
from tests.cri.conftest import BUSYBOX, CRI


def _code(call: Callable[[], Any]) -> tuple[grpc.StatusCode, str]:
    with pytest.raises(grpc.RpcError) as err:
        call()
    details = err.value.details() or ""
    assert "\n" not in details and "Traceback" not in details, details
    return err.value.code(), details


def _nothing_left(cri: CRI) -> None:
    assert not cri.runtime.ListPodSandbox(api_pb2.ListPodSandboxRequest(), timeout=30).items
    assert not cri.runtime.ListContainers(api_pb2.ListContainersRequest(),
                                          timeout=30).containers
    assert cri.leases() == [] and cri.netns() == [] and cri.bridge_ports() == []
    assert not cri.daemon.cli("ps", "-aq", check=True).stdout.split()


def _run(cri: CRI, config: api_pb2.PodSandboxConfig, handler: str = "") -> Any:
    return lambda: cri.runtime.RunPodSandbox(api_pb2.RunPodSandboxRequest(
        config=config, runtime_handler=handler), timeout=60)


def test_bad_sandboxes_change_nothing(cri: CRI) -> None:
    assert _code(_run(cri, api_pb2.PodSandboxConfig()))[0] == grpc.StatusCode.INVALID_ARGUMENT
    code, msg = _code(_run(cri, cri.sandbox_config("bad"), handler="no-such-runtime"))
    assert code == grpc.StatusCode.INVALID_ARGUMENT and "no-such-runtime" in msg
    reserved = cri.sandbox_config("bad")
    reserved.annotations["io.servin.cri.kind"] = "x"
    assert _code(_run(cri, reserved))[0] == grpc.StatusCode.INVALID_ARGUMENT
    # Refused by the core after the network was set up: the network is released.
    bad_host = cri.sandbox_config("bad")
    bad_host.hostname = "not a hostname!"
    code, msg = _code(_run(cri, bad_host))
    assert code == grpc.StatusCode.INVALID_ARGUMENT and "hostname" in msg
    bad_cgroup = cri.sandbox_config("bad")
    bad_cgroup.linux.cgroup_parent = "/a/../b"
    assert _code(_run(cri, bad_cgroup))[0] == grpc.StatusCode.INVALID_ARGUMENT
    _nothing_left(cri)


def test_no_network_configuration_changes_nothing(cri: CRI) -> None:
    conf = cri.conf_dir / "10-test.conflist"
    saved = conf.read_text()
    conf.unlink()
    try:
        _, msg = _code(_run(cri, cri.sandbox_config("nonet")))
        assert str(cri.conf_dir) in msg
    finally:
        conf.write_text(saved)
    _nothing_left(cri)


def test_the_same_sandbox_twice_is_refused(cri: CRI) -> None:
    pod = cri.run_pod("twice")
    try:
        code, _ = _code(_run(cri, cri.sandbox_config("twice")))
        assert code in (grpc.StatusCode.FAILED_PRECONDITION, grpc.StatusCode.ALREADY_EXISTS)
        items = cri.runtime.ListPodSandbox(api_pb2.ListPodSandboxRequest(), timeout=30).items
        assert [p.id for p in items] == [pod]
        assert len(cri.leases()) == 1 and len(cri.netns()) == 1
    finally:
        cri.remove_pod(pod)
    _nothing_left(cri)


def test_bad_containers_change_nothing(cri: CRI) -> None:
    pod = cri.run_pod("badc")
    sandbox = cri.sandbox_config("badc")

    def create(config: api_pb2.ContainerConfig, pod_id: str = pod) -> Any:
        return lambda: cri.runtime.CreateContainer(api_pb2.CreateContainerRequest(
            pod_sandbox_id=pod_id, config=config, sandbox_config=sandbox), timeout=60)

    def config(**kwargs: Any) -> api_pb2.ContainerConfig:
        base: dict[str, Any] = {"metadata": api_pb2.ContainerMetadata(name="c"),
                                "image": api_pb2.ImageSpec(image=BUSYBOX)}
        base.update(kwargs)
        return api_pb2.ContainerConfig(**base)

    try:
        cases: list[tuple[Any, grpc.StatusCode]] = [
            (create(config(), pod_id="0" * 64), grpc.StatusCode.NOT_FOUND),
            (create(config(metadata=api_pb2.ContainerMetadata())),
             grpc.StatusCode.INVALID_ARGUMENT),
            (create(config(image=api_pb2.ImageSpec(image="docker.io/library/nope:1"))),
             grpc.StatusCode.NOT_FOUND),
            (create(config(mounts=[api_pb2.Mount(container_path="rel", host_path="/tmp")])),
             grpc.StatusCode.INVALID_ARGUMENT),
            (create(config(mounts=[api_pb2.Mount(container_path="/m", host_path="/tmp",
                                                 recursive_read_only=True)])),
             grpc.StatusCode.INVALID_ARGUMENT),
            (create(config(envs=[api_pb2.KeyValue(key="", value=b"x")])),
             grpc.StatusCode.INVALID_ARGUMENT),
            (create(config(linux=api_pb2.LinuxContainerConfig(
                security_context=api_pb2.LinuxContainerSecurityContext(privileged=True)))),
             grpc.StatusCode.INVALID_ARGUMENT),
            (create(config(linux=api_pb2.LinuxContainerConfig(
                security_context=api_pb2.LinuxContainerSecurityContext(
                    seccomp=api_pb2.SecurityProfile(
                        profile_type=api_pb2.SecurityProfile.Localhost,
                        localhost_ref="/no/such/profile.json"))))),
             grpc.StatusCode.INVALID_ARGUMENT),
            (create(config(linux=api_pb2.LinuxContainerConfig(
                security_context=api_pb2.LinuxContainerSecurityContext(
                    run_as_group=api_pb2.Int64Value(value=5))))),
             grpc.StatusCode.INVALID_ARGUMENT),
        ]
        for call, expected in cases:
            code, msg = _code(call)
            assert code == expected, msg
        assert not cri.runtime.ListContainers(api_pb2.ListContainersRequest(),
                                              timeout=30).containers
        # Unknown objects.
        for call in (
            lambda: cri.runtime.ContainerStatus(api_pb2.ContainerStatusRequest(
                container_id="nope"), timeout=30),
            lambda: cri.runtime.StartContainer(api_pb2.StartContainerRequest(
                container_id="nope"), timeout=30),
            lambda: cri.runtime.PodSandboxStatus(api_pb2.PodSandboxStatusRequest(
                pod_sandbox_id="nope"), timeout=30),
            lambda: cri.exec_sync("nope", ["true"]),
        ):
            assert _code(call)[0] == grpc.StatusCode.NOT_FOUND
        assert _code(lambda: cri.exec_sync("nope", []))[0] == grpc.StatusCode.INVALID_ARGUMENT
        # A docker-style container is not a CRI container.
        cid = cri.daemon.cli("create", BUSYBOX, "true", check=True).stdout.strip()
        try:
            assert _code(lambda: cri.runtime.ContainerStatus(api_pb2.ContainerStatusRequest(
                container_id=cid), timeout=30))[0] == grpc.StatusCode.NOT_FOUND
        finally:
            cri.daemon.cli("rm", cid, check=True)
    finally:
        cri.remove_pod(pod)
    _nothing_left(cri)
