"""Exec, Attach and PortForward: validated by the CRI door, then registered with the daemon's
streaming server, whose URL the client gets (the sessions themselves: tests/streaming)."""

from __future__ import annotations

import grpc
import pytest

from servin.api.cri.runtime.v1 import api_pb2
from tests.cri.conftest import CRI


def test_streaming_urls_and_refusals(cri: CRI) -> None:
    pod = cri.run_pod("stream")
    try:
        cid = cri.create(pod, "stream", "c", ["sleep", "1000"])
        with pytest.raises(grpc.RpcError) as err:  # created, not running
            cri.runtime.Exec(api_pb2.ExecRequest(container_id=cid, cmd=["true"], stdout=True),
                             timeout=30)
        assert err.value.code() == grpc.StatusCode.FAILED_PRECONDITION
        cri.runtime.StartContainer(api_pb2.StartContainerRequest(container_id=cid), timeout=60)
        url = cri.runtime.Exec(api_pb2.ExecRequest(container_id=cid, cmd=["true"],
                                                   stdout=True), timeout=30).url
        assert url.startswith("http://127.0.0.1:") and "/exec/" in url
        url = cri.runtime.Attach(api_pb2.AttachRequest(container_id=cid, stdout=True),
                                 timeout=30).url
        assert "/attach/" in url
        url = cri.runtime.PortForward(api_pb2.PortForwardRequest(pod_sandbox_id=pod,
                                                                 port=[80]), timeout=30).url
        assert "/portforward/" in url
        for call, code in (
            (lambda: cri.runtime.Exec(api_pb2.ExecRequest(container_id=cid, cmd=[],
                                                          stdout=True), timeout=30),
             grpc.StatusCode.INVALID_ARGUMENT),
            (lambda: cri.runtime.Exec(api_pb2.ExecRequest(container_id="nope", cmd=["true"],
                                                          stdout=True), timeout=30),
             grpc.StatusCode.NOT_FOUND),
            (lambda: cri.runtime.PortForward(api_pb2.PortForwardRequest(
                pod_sandbox_id="nope", port=[80]), timeout=30), grpc.StatusCode.NOT_FOUND),
            (lambda: cri.runtime.PortForward(api_pb2.PortForwardRequest(
                pod_sandbox_id=pod, port=[70000]), timeout=30),
             grpc.StatusCode.INVALID_ARGUMENT),
        ):
            with pytest.raises(grpc.RpcError) as err:
                call()
            assert err.value.code() == code
    finally:
        cri.remove_pod(pod)
