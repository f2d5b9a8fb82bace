"""Pod networks: a pinned network namespace per pod, attached to the default CNI network.

What a Kubernetes runtime does for each pod sandbox with a network of its own: make a netns
(``<exec-root>/netns/<pod id>``), ADD it to the default CNI network with the kubelet's
``CNI_ARGS`` and the pod's port mappings (the portmap plugin's ``portMappings`` capability),
and on removal DEL it and unpin the namespace. The CNI caller records every attachment under
the daemon root, so a DEL after a daemon crash uses what ADD used; ``repair`` removes what
pods that no longer exist left (an attachment or a namespace of a create the crash
interrupted).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

from servin.engine.config import DaemonConfig
from servin.engine.crashpoints import crashpoint
from servin.engine.linux.netns import create_netns, list_netns, remove_netns
from servin.engine.networks.cni.caller import (
    CNI,
    Attachment,
    NetworkStatus,
    PortMapping,
    port_mappings,
)
from servin.engine.networks.cni.errors import PluginError
from servin.engine.networks.cni.result import ResultError, parse_result
from servin.errors import Internal, InvalidArgument, ServinError

log = logging.getLogger(__name__)

IFNAME = "eth0"


@dataclass(frozen=True)
class PodNetwork:
    """A pod's network: its namespace file and the addresses CNI gave it (IPv4 first)."""

    pod_id: str
    netns: str
    ips: tuple[str, ...] = ()
    network: str = ""


@dataclass(frozen=True)
class PodIdentity:
    """Who the pod is, for the plugins' ``CNI_ARGS`` (as the kubelet's runtimes pass them)."""

    namespace: str = ""
    name: str = ""
    uid: str = ""

    def cni_args(self, pod_id: str) -> dict[str, str]:
        """``IgnoreUnknown`` first, so plugins that know none of these keys accept them."""
        args = {"IgnoreUnknown": "1"}
        for key, value in (("K8S_POD_NAMESPACE", self.namespace), ("K8S_POD_NAME", self.name),
                           ("K8S_POD_INFRA_CONTAINER_ID", pod_id), ("K8S_POD_UID", self.uid)):
            if value:
                args[key] = value
        return args


class PodNetworks:
    """Sets up and tears down pods' CNI networks (see the module's docstring)."""

    def __init__(self, cni: CNI, netns_dir: Path) -> None:
        self.cni = cni
        self.netns_dir = netns_dir

    @classmethod
    def for_daemon(cls, config: DaemonConfig) -> PodNetworks:
        """The daemon's: its CNI configuration, namespaces under ``<exec-root>/netns``."""
        return cls(CNI.for_daemon(config), config.exec_root / "netns")

    async def status(self) -> NetworkStatus:
        """Whether pods can get a network now (a valid configuration and its plugins)."""
        return await self.cni.status()

    def netns_path(self, pod_id: str) -> Path:
        """Where the pod's namespace is pinned."""
        return self.netns_dir / pod_id

    async def setup(self, pod_id: str, identity: PodIdentity,
                    ports: Sequence[PortMapping] = ()) -> PodNetwork:
        """Make the pod's namespace and ADD it to the default network.

        On any failure nothing is left (the plugins that ran are DEL-ed by the caller, the
        namespace is removed) and the error says why.
        """
        attachment = Attachment(
            container_id=pod_id, netns=str(self.netns_path(pod_id)), ifname=IFNAME,
            args=identity.cni_args(pod_id),
            capability_args=port_mappings(ports) if ports else {},
        )
        attachment.validate()
        for port in ports:
            if not 0 < port.container_port < 65536 or not 0 <= port.host_port < 65536:
                raise InvalidArgument(f"invalid port mapping {port}")
        net = await self.cni.network()  # NoNetworkConfig before anything is made
        path = self.netns_path(pod_id)
        try:
            await asyncio.to_thread(create_netns, path)
        except FileExistsError:
            raise InvalidArgument(f"pod {pod_id} already has a network namespace") from None
        except OSError as exc:
            raise Internal(f"cannot create the network namespace of pod {pod_id}: {exc}") \
                from None
        try:
            result = await self.cni.add(attachment, net)
        except BaseException:
            await asyncio.shield(asyncio.to_thread(remove_netns, path))
            raise
        crashpoint("pod-network.after-setup")
        return PodNetwork(pod_id, str(path), _ips(result.addresses(IFNAME)), net.name)

    def get(self, pod_id: str) -> PodNetwork | None:
        """The pod's network as ADD recorded it, or None (no attachment recorded)."""
        for record in self.cni.attachments(pod_id):
            if record.ifname != IFNAME or record.result is None:
                continue
            try:
                result = parse_result(record.result)
            except ResultError:
                continue
            return PodNetwork(pod_id, record.netns, _ips(result.addresses(IFNAME)),
                              record.network)
        return None

    async def teardown(self, pod_id: str) -> None:
        """DEL every attachment of the pod and unpin its namespace (idempotent)."""
        await self.cni.delete_all(pod_id)
        await asyncio.to_thread(remove_netns, self.netns_path(pod_id))

    async def repair(self, pods: Iterable[str]) -> None:
        """Tear down what pods not in ``pods`` left (a crash between setup and the pod's
        record, or during a removal). Errors are logged, not raised: the next start retries."""
        keep = set(pods)
        stale = {r.container_id for r in self.cni.attachments() if r.container_id not in keep}
        stale |= {p.name for p in await asyncio.to_thread(list_netns, self.netns_dir)
                  if p.name not in keep}
        for pod_id in sorted(stale):
            log.info("removing the network of a pod that no longer exists",
                     extra={"pod": pod_id})
            with contextlib.suppress(PluginError, ServinError, OSError):
                await self.teardown(pod_id)


def _ips(addresses: Iterable[object]) -> tuple[str, ...]:
    """Addresses without their prefix length, IPv4 first (the CRI's primary IP)."""
    ips = [str(getattr(a, "ip", a)) for a in addresses]
    return tuple(sorted(ips, key=lambda ip: ":" in ip))
