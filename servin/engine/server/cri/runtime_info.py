"""Version, Status, RuntimeConfig and UpdateRuntimeConfig: what the runtime is and whether it
is ready."""

from __future__ import annotations

import ipaddress
import json
import logging

from servin import __version__
from servin.api.cri.runtime.v1 import api_pb2
from servin.engine.server.cri.base import Verbs
from servin.engine.server.grpc.rpc import Context
from servin.errors import InvalidArgument

log = logging.getLogger(__name__)

RUNTIME_NAME = "servin"
API_VERSION = "v1"


class RuntimeInfoVerbs(Verbs):
    """The runtime's identity and conditions."""

    async def Version(self, request: api_pb2.VersionRequest,
                      context: Context) -> api_pb2.VersionResponse:
        return api_pb2.VersionResponse(
            version="0.1.0", runtime_name=RUNTIME_NAME, runtime_version=__version__,
            runtime_api_version=API_VERSION)

    async def Status(self, request: api_pb2.StatusRequest,
                     context: Context) -> api_pb2.StatusResponse:
        network = await self.core.pod_networks.status()
        conditions = [
            api_pb2.RuntimeCondition(type="RuntimeReady", status=True),
            api_pb2.RuntimeCondition(
                type="NetworkReady", status=network.ready,
                reason="" if network.ready else "NetworkPluginNotReady",
                message="" if network.ready else f"Network plugin returns error: "
                                                 f"{network.message}"),
        ]
        handlers = [
            api_pb2.RuntimeHandler(name=name, features=api_pb2.RuntimeHandlerFeatures(
                recursive_read_only_mounts=True, user_namespaces=False))
            for name in self.handlers()
        ]
        info: dict[str, str] = {}
        if request.verbose:
            system = self.core.system
            info["config"] = json.dumps({
                "defaultRuntime": system.config.default_runtime,
                "runtimes": system.runtimes(),
                "cniConfDir": str(system.config.cni_conf_dir),
                "cniBinDirs": [str(d) for d in system.config.cni_bin_dirs],
                "storageDriver": system.storage_driver,
                "network": network.message,
            })
        return api_pb2.StatusResponse(
            status=api_pb2.RuntimeStatus(conditions=conditions), info=info,
            runtime_handlers=handlers,
            features=api_pb2.RuntimeFeatures(supplemental_groups_policy=True))

    async def RuntimeConfig(self, request: api_pb2.RuntimeConfigRequest,
                            context: Context) -> api_pb2.RuntimeConfigResponse:
        # Servin manages cgroups through cgroupfs (it never delegates to systemd).
        return api_pb2.RuntimeConfigResponse(
            linux=api_pb2.LinuxRuntimeConfiguration(cgroup_driver=api_pb2.CGROUPFS))

    async def UpdateRuntimeConfig(self, request: api_pb2.UpdateRuntimeConfigRequest,
                                  context: Context) -> api_pb2.UpdateRuntimeConfigResponse:
        cidr = request.runtime_config.network_config.pod_cidr
        for part in filter(None, cidr.split(",")):
            try:
                ipaddress.ip_network(part.strip())
            except ValueError:
                raise InvalidArgument(f"invalid pod CIDR {part!r}") from None
        if cidr:
            # The CNI configuration is the operator's (no templating of it): noted only.
            log.info("the kubelet reports the node's pod CIDR", extra={"pod_cidr": cidr})
        return api_pb2.UpdateRuntimeConfigResponse()
