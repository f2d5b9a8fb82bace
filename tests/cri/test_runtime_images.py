"""The CRI's runtime facts and image service through the generated runtime.v1 stubs, against a
real daemon pulling critest's stand-ins through registry mirrors."""

from __future__ import annotations

import base64
import json

import grpc
import pytest

from servin.api.cri.runtime.v1 import api_pb2, api_pb2_grpc
from servin.devtools import critest_images as ci
from tests.cri.conftest import BUSYBOX, CRI

PAUSE = "registry.k8s.io/pause:3.9"


def test_version(cri: CRI) -> None:
    v = cri.runtime.Version(api_pb2.VersionRequest(version="v1"), timeout=10)
    assert (v.runtime_name, v.runtime_api_version) == ("servin", "v1")
    assert v.runtime_version


def test_status_and_runtime_config(cri: CRI) -> None:
    status = cri.runtime.Status(api_pb2.StatusRequest(verbose=True), timeout=30)
    conditions = {c.type: c for c in status.status.conditions}
    assert conditions["RuntimeReady"].status
    assert conditions["NetworkReady"].status, conditions["NetworkReady"].message
    assert json.loads(status.info["config"])["cniConfDir"] == str(cri.conf_dir)
    assert "" in [h.name for h in status.runtime_handlers]
    config = cri.runtime.RuntimeConfig(api_pb2.RuntimeConfigRequest(), timeout=10)
    assert config.linux.cgroup_driver == api_pb2.CGROUPFS
    cri.runtime.UpdateRuntimeConfig(api_pb2.UpdateRuntimeConfigRequest(
        runtime_config=api_pb2.RuntimeConfig(
            network_config=api_pb2.NetworkConfig(pod_cidr="10.224.0.0/16"))), timeout=10)
    with pytest.raises(grpc.RpcError) as err:
        cri.runtime.UpdateRuntimeConfig(api_pb2.UpdateRuntimeConfigRequest(
            runtime_config=api_pb2.RuntimeConfig(
                network_config=api_pb2.NetworkConfig(pod_cidr="not-a-cidr"))), timeout=10)
    assert err.value.code() == grpc.StatusCode.INVALID_ARGUMENT


def test_network_not_ready_without_a_configuration(cri: CRI) -> None:
    conf = cri.conf_dir / "10-test.conflist"
    saved = conf.read_text()
    conf.unlink()
    try:
        status = cri.runtime.Status(api_pb2.StatusRequest(), timeout=30)
        network = {c.type: c for c in status.status.conditions}["NetworkReady"]
        assert not network.status
        assert network.reason == "NetworkPluginNotReady"
        assert str(cri.conf_dir) in network.message
    finally:
        conf.write_text(saved)


def test_pull_list_status_remove(cri: CRI) -> None:
    pulled = cri.images.PullImage(api_pb2.PullImageRequest(
        image=api_pb2.ImageSpec(image=BUSYBOX)), timeout=120)
    assert pulled.image_ref.startswith("sha256:")
    listed = cri.images.ListImages(api_pb2.ListImagesRequest(), timeout=30).images
    mine = [i for i in listed if i.id == pulled.image_ref]
    assert mine and BUSYBOX in mine[0].repo_tags
    assert mine[0].size > 0
    # By name, by ID; verbose carries the config.
    for ref in (BUSYBOX, pulled.image_ref):
        status = cri.images.ImageStatus(api_pb2.ImageStatusRequest(
            image=api_pb2.ImageSpec(image=ref), verbose=True), timeout=30)
        assert status.image.id == pulled.image_ref
        assert json.loads(status.info["info"])["config"]["rootfs"]
    filtered = cri.images.ListImages(api_pb2.ListImagesRequest(filter=api_pb2.ImageFilter(
        image=api_pb2.ImageSpec(image=BUSYBOX))), timeout=30).images
    assert [i.id for i in filtered] == [pulled.image_ref]
    # The pause image the kubelet names is pulled like any other.
    pause = cri.images.PullImage(api_pb2.PullImageRequest(
        image=api_pb2.ImageSpec(image=PAUSE)), timeout=120)
    cri.images.RemoveImage(api_pb2.RemoveImageRequest(
        image=api_pb2.ImageSpec(image=pause.image_ref)), timeout=30)
    gone = cri.images.ImageStatus(api_pb2.ImageStatusRequest(
        image=api_pb2.ImageSpec(image=PAUSE)), timeout=30)
    assert not gone.HasField("image")
    # Removing what is not there is no error (the CRI's idempotence).
    cri.images.RemoveImage(api_pb2.RemoveImageRequest(
        image=api_pb2.ImageSpec(image=PAUSE)), timeout=30)


def test_image_user_is_reported(cri: CRI) -> None:
    ref = f"{ci.STAGING}/test-image-user-uid:latest"
    cri.images.PullImage(api_pb2.PullImageRequest(image=api_pb2.ImageSpec(image=ref)),
                         timeout=120)
    image = cri.images.ImageStatus(api_pb2.ImageStatusRequest(
        image=api_pb2.ImageSpec(image=ref)), timeout=30).image
    assert image.HasField("uid") and image.uid.value > 0


def test_pull_with_auth_and_errors(cri: CRI) -> None:
    # Credentials are passed on (the test registry accepts any); a base64 auth is decoded.
    auth = base64.b64encode(b"user:secret").decode()
    cri.images.PullImage(api_pb2.PullImageRequest(image=api_pb2.ImageSpec(image=BUSYBOX),
                                                  auth=api_pb2.AuthConfig(auth=auth)),
                         timeout=120)
    with pytest.raises(grpc.RpcError) as err:
        cri.images.PullImage(api_pb2.PullImageRequest(image=api_pb2.ImageSpec(image=BUSYBOX),
                                                      auth=api_pb2.AuthConfig(auth="!!")),
                             timeout=30)
    assert err.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    with pytest.raises(grpc.RpcError) as err:
        cri.images.PullImage(api_pb2.PullImageRequest(image=api_pb2.ImageSpec(
            image=f"{ci.STAGING}/no-such-image:latest")), timeout=60)
    # Not on the mirror, then the upstream registry cannot be reached (offline).
    assert err.value.code() in (grpc.StatusCode.NOT_FOUND, grpc.StatusCode.UNAVAILABLE)
    assert "no-such-image" in (err.value.details() or "")
    with pytest.raises(grpc.RpcError) as err:
        cri.images.ImageStatus(api_pb2.ImageStatusRequest(image=api_pb2.ImageSpec()),
                               timeout=30)
    assert err.value.code() == grpc.StatusCode.INVALID_ARGUMENT


def test_image_fs_info(cri: CRI) -> None:
    cri.images.PullImage(api_pb2.PullImageRequest(image=api_pb2.ImageSpec(image=BUSYBOX)),
                         timeout=120)
    fs = cri.images.ImageFsInfo(api_pb2.ImageFsInfoRequest(), timeout=30).image_filesystems
    assert len(fs) == 1
    assert fs[0].fs_id.mountpoint.startswith(str(cri.daemon.root))
    assert fs[0].used_bytes.value > 0 and fs[0].inodes_used.value > 0
    assert fs[0].timestamp > 0


def test_cri_socket_serves_only_the_cri() -> None:
    from servin.api.servin.v1 import system_pb2, system_pb2_grpc
    from tests.daemon import DaemonProcess, short_tmpdir

    base = short_tmpdir("sv-crisock-")
    sock = base / "cri.sock"
    d = DaemonProcess(base)
    base.mkdir(parents=True, exist_ok=True)
    (base / "config.toml").write_text(f'cri_socket = "{sock}"\n')
    d.extra_args = ["--config", str(base / "config.toml")]
    d.start()
    try:
        with grpc.insecure_channel(f"unix:{sock}") as channel:
            v = api_pb2_grpc.RuntimeServiceStub(channel).Version(api_pb2.VersionRequest(),
                                                                 timeout=10)
            assert v.runtime_name == "servin"
            assert api_pb2_grpc.ImageServiceStub(channel).ImageFsInfo(
                api_pb2.ImageFsInfoRequest(), timeout=10).image_filesystems
            with pytest.raises(grpc.RpcError) as err:
                system_pb2_grpc.SystemStub(channel).Ping(system_pb2.PingRequest(), timeout=10)
            assert err.value.code() == grpc.StatusCode.UNIMPLEMENTED
        assert oct(sock.stat().st_mode & 0o777) == oct(0o660)
        d.stop()
        assert not sock.exists()  # removed at a clean stop, as every socket
    finally:
        d.cleanup()
