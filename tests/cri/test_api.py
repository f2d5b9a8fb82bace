"""The generated CRI API (runtime.v1): one grpc server serves it next to servin.v1."""

from __future__ import annotations

import asyncio
from pathlib import Path

import grpc
import pytest

from servin.api.cri.runtime.v1 import api_pb2, api_pb2_grpc
from servin.api.servin.v1 import system_pb2, system_pb2_grpc
from servin.engine.server.grpc.errors import ErrorMappingInterceptor
from servin.errors import NotFound


class _System(system_pb2_grpc.SystemServicer):
    async def Ping(self, request: system_pb2.PingRequest,
                   context: grpc.aio.ServicerContext) -> system_pb2.PingResponse:
        return system_pb2.PingResponse(api_version="test")


class _Runtime(api_pb2_grpc.RuntimeServiceServicer):
    async def Version(self, request: api_pb2.VersionRequest,
                      context: grpc.aio.ServicerContext) -> api_pb2.VersionResponse:
        return api_pb2.VersionResponse(version=request.version, runtime_name="servin",
                                       runtime_api_version="v1")

    async def PodSandboxStatus(self, request: api_pb2.PodSandboxStatusRequest,
                               context: grpc.aio.ServicerContext) -> None:
        raise NotFound(f"pod sandbox {request.pod_sandbox_id} not found")


class _Images(api_pb2_grpc.ImageServiceServicer):
    async def ImageFsInfo(self, request: api_pb2.ImageFsInfoRequest,
                          context: grpc.aio.ServicerContext) -> api_pb2.ImageFsInfoResponse:
        usage = api_pb2.FilesystemUsage(timestamp=1, fs_id=api_pb2.FilesystemIdentifier(
            mountpoint="/var/lib/servin"), used_bytes=api_pb2.UInt64Value(value=42))
        return api_pb2.ImageFsInfoResponse(image_filesystems=[usage])


def test_descriptors_are_the_kubernetes_names() -> None:
    """The wire names kubelet and crictl call are runtime.v1's, whatever our module path is."""
    services = api_pb2.DESCRIPTOR.services_by_name
    assert api_pb2.DESCRIPTOR.package == "runtime.v1"
    assert services["RuntimeService"].full_name == "runtime.v1.RuntimeService"
    assert services["ImageService"].full_name == "runtime.v1.ImageService"
    methods = set(services["RuntimeService"].methods_by_name)
    assert {"RunPodSandbox", "ExecSync", "GetContainerEvents", "ListMetricDescriptors"} <= methods
    # v0.36.3 made KeyValue.value bytes (the same bytes as a string on the wire).
    value = api_pb2.KeyValue.DESCRIPTOR.fields_by_name["value"]
    assert value.type == value.TYPE_BYTES


def test_servin_v1_and_runtime_v1_on_one_socket(tmp_path: Path) -> None:
    sock = tmp_path / "s.sock"

    async def main() -> None:
        server = grpc.aio.server(interceptors=[ErrorMappingInterceptor()])
        system_pb2_grpc.add_SystemServicer_to_server(_System(), server)
        api_pb2_grpc.add_RuntimeServiceServicer_to_server(_Runtime(), server)
        api_pb2_grpc.add_ImageServiceServicer_to_server(_Images(), server)
        server.add_insecure_port(f"unix:{sock}")
        await server.start()
        try:
            async with grpc.aio.insecure_channel(f"unix:{sock}") as channel:
                ping = await system_pb2_grpc.SystemStub(channel).Ping(system_pb2.PingRequest())
                assert ping.api_version == "test"
                runtime = api_pb2_grpc.RuntimeServiceStub(channel)
                version = await runtime.Version(api_pb2.VersionRequest(version="v1"))
                assert (version.runtime_name, version.version) == ("servin", "v1")
                fs = await api_pb2_grpc.ImageServiceStub(channel).ImageFsInfo(
                    api_pb2.ImageFsInfoRequest())
                assert fs.image_filesystems[0].used_bytes.value == 42
                # Typed errors map to gRPC codes through the same interceptor.
                with pytest.raises(grpc.aio.AioRpcError) as err:
                    await runtime.PodSandboxStatus(
                        api_pb2.PodSandboxStatusRequest(pod_sandbox_id="nope"))
                assert err.value.code() == grpc.StatusCode.NOT_FOUND
                assert "pod sandbox nope not found" in (err.value.details() or "")
                # A method the servicer has not written answers UNIMPLEMENTED.
                with pytest.raises(grpc.aio.AioRpcError) as err:
                    await runtime.Status(api_pb2.StatusRequest())
                assert err.value.code() == grpc.StatusCode.UNIMPLEMENTED
        finally:
            await server.stop(None)

    asyncio.run(main())
