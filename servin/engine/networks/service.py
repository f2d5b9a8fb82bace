"""The network half of the engine core: networks, container endpoints, ports, DNS.

Containers get their endpoints (addresses) when they are created or connected, and keep them
until removed or disconnected, so a restarted container has the same address. Links (veth
pairs), published host ports, DNS names and DNAT rules exist only while a container runs.
"""

from __future__ import annotations

import asyncio
import builtins
import contextlib
import hashlib
import ipaddress
import logging
import secrets
import time
from dataclasses import dataclass
from typing import Any

from servin.engine import limits
from servin.engine.config import DaemonConfig
from servin.engine.containers.model import Container, EndpointConfig, PublishedPort
from servin.engine.containers.store import ContainerStore
from servin.engine.crashpoints import crashpoint
from servin.engine.events import EventBus
from servin.engine.networks import bridge, firewall, ipam, ports
from servin.engine.networks.dns import DNSServer, host_resolvers
from servin.engine.networks.model import (
    BRIDGE,
    BUILTIN_NAMES,
    HOST,
    NULL,
    Endpoint,
    Network,
    NetworkView,
    check_mac,
)
from servin.engine.networks.store import NetworkStore
from servin.engine.semantics import filters as docker_filters
from servin.engine.store.metadata import MetadataStore
from servin.errors import Conflict, InvalidArgument, NotFound, ServinError

log = logging.getLogger(__name__)
# pyroute2 logs every netlink message at debug level: far too much for the daemon log.
logging.getLogger("pyroute2").setLevel(logging.WARNING)



def primary_network(c: Container) -> str:
    """The network a container's mode names ('' for host, none, container:X and ns:PATH)."""
    mode = c.host_config.network_mode or BRIDGE
    if mode in ("host", "none", "default") or mode.startswith(("container:", "ns:")):
        return BRIDGE if mode == "default" else ""
    return mode


@dataclass
class _Running:
    """What a running container holds: its published ports (with container address)."""

    rules: list[firewall.PortRule]


class NetworkService:
    """Networks and the networking of containers."""

    def __init__(self, config: DaemonConfig, meta: MetadataStore, containers: ContainerStore,
                 events: EventBus) -> None:
        self.config = config
        self.store = NetworkStore(meta)
        self.containers = containers
        self.events = events
        self.table = config.firewall_table or (
            "servin_" + hashlib.sha256(str(config.root).encode()).hexdigest()[:8]
        )
        # Marks the Linux bridges this daemon made (their interface alias).
        self.owner = f"servin {config.root}"
        self.reservations = ports.Reservations()
        self.dns = DNSServer(self._dns_lookup, self._dns_upstreams)
        self._running: dict[str, _Running] = {}
        # network id -> name -> addresses (running containers only); client ip -> --dns.
        self._names: dict[str, dict[str, set[str]]] = {}
        # client ip -> its links' alias -> linked container name (docker's legacy links).
        self._client_links: dict[str, dict[str, str]] = {}
        # client ip -> its container; container -> the user networks it is on (a container
        # resolves the names of every network it shares, whichever gateway it asks).
        self._address_owner: dict[str, str] = {}
        self._container_networks: dict[str, set[str]] = {}
        self._client_dns: dict[str, list[str]] = {}
        self._fw_lock = asyncio.Lock()

    # -- daemon start and stop -----------------------------------------------------------

    def setup(self) -> None:
        """At daemon start (blocking): built-in networks, bridges, stray links removed."""
        self._ensure_builtin()
        bridge.enable_forwarding()
        networks = self.store.list()
        for n in networks:
            if not n.is_bridge:
                continue
            try:
                bridge.ensure_bridge(n.bridge, n.gateway, n.prefixlen, self.owner)
            except Conflict as exc:
                if n.name != BRIDGE:
                    raise
                # The default network's: say which setting to change (scripts/up shows it).
                raise Conflict(f"{exc.message}: set bridge_name (and default_network_subnet) "
                               "in the daemon's config.toml, or --bridge-name "
                               "(--default-subnet)") from None
        # Bridges of networks whose removal a crash interrupted (record gone, bridge not).
        stray = set(bridge.owned_bridges(self.owner)) - {n.bridge for n in networks}
        if stray:
            log.warning("removing bridges of removed networks",
                        extra={"bridges": ",".join(sorted(stray))})
            bridge.delete_bridges(sorted(stray), self.owner)
        self.repair_links()

    def _ensure_builtin(self) -> None:
        existing = {n.name: n for n in self.store.list()}
        subnet = ipam.parse_subnet(self.config.default_network_subnet)
        gateway = str(subnet.network_address + 1)
        default = existing.get(BRIDGE)
        if default is None:
            self.store.add(Network(
                id=secrets.token_hex(32), name=BRIDGE, driver=BRIDGE, subnet=str(subnet),
                gateway=gateway, bridge=self.config.bridge_name, builtin=True,
                created_ns=time.time_ns(),
            ))
        elif (default.subnet, default.bridge) != (str(subnet), self.config.bridge_name):
            if self.store.endpoints_of_network(default.id):
                log.warning("the default network's settings changed but containers use it; "
                            "keeping the old ones until they are removed")
            else:
                old = default.bridge
                default.subnet, default.gateway = str(subnet), gateway
                default.bridge = self.config.bridge_name
                self.store.update_builtin(default)
                if old != default.bridge:
                    bridge.delete_bridges([old], self.owner)
        for name, driver in (("host", HOST), ("none", NULL)):
            if name not in existing:
                self.store.add(Network(id=secrets.token_hex(32), name=name, driver=driver,
                                       builtin=True, created_ns=time.time_ns()))

    async def start(self) -> None:
        """Serve DNS on every user network (after ``setup``)."""
        for n in await asyncio.to_thread(self.store.list):
            if n.user_defined:
                await self.dns.listen(n.id, n.gateway)

    def repair_links(self) -> None:
        """Delete veths on our bridges that belong to no running container (blocking)."""
        wanted: set[str] = set()
        for ep in self.store.all_endpoints():
            with contextlib.suppress(NotFound):
                if self.containers.get(ep.container_id).state.running:
                    wanted.add(bridge.veth_name(ep.container_id, ep.network_id))
        stray: builtins.list[str] = []
        for n in self.store.list():
            if n.is_bridge:
                stray += [p for p in bridge.bridge_ports(n.bridge) if p not in wanted]
        if stray:
            log.info("removing stray container links", extra={"links": ",".join(stray)})
            bridge.delete_links(stray)

    async def shutdown(self, any_running: bool) -> None:
        """Stop DNS and let host ports go; with no container left, remove bridges and rules."""
        await self.dns.close()
        self.reservations.close()
        if any_running:
            return  # running containers keep their links and DNAT rules
        networks = await asyncio.to_thread(self.store.list)
        await asyncio.to_thread(bridge.delete_bridges, [n.bridge for n in networks if n.is_bridge],
                                self.owner)
        with contextlib.suppress(ServinError):
            await asyncio.to_thread(firewall.remove, self.table)

    async def sync_firewall(self) -> None:
        """Render the daemon's nftables table from the current state and apply it."""
        async with self._fw_lock:
            networks = await asyncio.to_thread(self.store.list)
            rules = [r for running in self._running.values() for r in running.rules]
            bridges = [firewall.BridgeRules(n.bridge, n.subnet, n.internal)
                       for n in networks if n.is_bridge]
            await asyncio.to_thread(firewall.apply, self.table, bridges, rules)

    async def sync_firewall_or_warn(self) -> None:
        """``sync_firewall`` at daemon start: a failure is logged, not raised (containers
        still run and reach each other; NAT and published ports do not)."""
        try:
            await self.sync_firewall()
        except ServinError as exc:
            log.error("cannot set up the firewall", extra={"error": str(exc)})

    # -- networks ------------------------------------------------------------------------

    async def resolve(self, text: str) -> Network:
        """A network by ID, name or unique ID prefix."""
        return await asyncio.to_thread(self.store.resolve, text)

    async def all(self) -> builtins.list[Network]:
        """Every network record."""
        return await asyncio.to_thread(self.store.list)

    async def list(self, filters: docker_filters.Filters | None = None
                   ) -> builtins.list[NetworkView]:
        """The networks docker's ``filters`` select, with their endpoints."""
        wanted = docker_filters.check(filters or {}, docker_filters.NETWORK_KEYS)

        def build() -> builtins.list[NetworkView]:
            views = [self._view(n) for n in self.store.list()]
            return [v for v in views if docker_filters.network_matches(v, wanted)]

        return await asyncio.to_thread(build)

    async def inspect(self, ref: str) -> NetworkView:
        """A network by ID, name or unique ID prefix, with its endpoints."""
        n = await self.resolve(ref)
        return await asyncio.to_thread(self._view, n)

    def _view(self, n: Network) -> NetworkView:
        return NetworkView(n, self.endpoints(n.id))

    def endpoints(self, network_id: str) -> builtins.list[tuple[Endpoint, Container]]:
        """The network's endpoints with their containers (blocking)."""
        out = []
        for ep in self.store.endpoints_of_network(network_id):
            with contextlib.suppress(NotFound):
                out.append((ep, self.containers.get(ep.container_id)))
        return out

    async def create(self, name: str, *, driver: str = "", subnet: str = "", gateway: str = "",
                     ip_range: str = "", internal: bool = False,
                     labels: dict[str, str] | None = None,
                     options: dict[str, str] | None = None) -> Network:
        """Create a bridge network: its record, bridge, DNS and rules; all or nothing."""
        limits.check_name("network", name)
        limits.check_labels(dict(labels or {}))
        limits.check_options(dict(options or {}))
        if name in BUILTIN_NAMES:
            raise Conflict(f"{name} is a pre-defined network and cannot be created")
        if (driver or BRIDGE) != BRIDGE:
            raise InvalidArgument(f"unsupported network driver {driver!r} (only bridge)")
        if (gateway or ip_range) and not subnet:
            raise InvalidArgument("--gateway and --ip-range need --subnet")
        for attempt in range(3):
            on_host = await asyncio.to_thread(bridge.host_subnets)
            if subnet:
                net = ipam.parse_subnet(subnet)
                ipam.check_overlap(net, [(f"interface {i}", str(sn)) for i, sn in on_host])
            else:
                # Skip blocks in use by our networks and by any interface of the host (other
                # daemons' bridges included).
                taken = [n.subnet for n in await self.all()] + [str(sn) for _, sn in on_host]
                net = ipam.pick_subnet(self.config.address_pool, self.config.address_pool_size,
                                       taken)
            gw, rng = ipam.validate(net, gateway, ip_range)
            network_id = secrets.token_hex(32)
            n = Network(
                id=network_id, name=name, driver=BRIDGE, subnet=str(net), gateway=gw,
                ip_range=rng, internal=internal, bridge="svb" + network_id[:12],
                labels=dict(labels or {}), options=dict(options or {}),
                created_ns=time.time_ns(),
            )
            try:
                await asyncio.to_thread(self.store.add, n)  # checks the name and overlaps
                crashpoint("network.create.after-record")
                break
            except Conflict:
                # Another create took the pool block we picked meanwhile: pick again.
                if subnet or attempt == 2 or name in {x.name for x in await self.all()}:
                    raise
        try:
            await asyncio.to_thread(bridge.ensure_bridge, n.bridge, n.gateway, n.prefixlen,
                                    self.owner)
            crashpoint("network.create.after-bridge")
            await self.sync_firewall()
        except BaseException:
            with contextlib.suppress(Exception):
                await asyncio.to_thread(bridge.delete_bridges, [n.bridge], self.owner)
            await asyncio.to_thread(self.store.delete, n.id)
            with contextlib.suppress(Exception):
                await self.sync_firewall()
            raise
        await self.dns.listen(n.id, n.gateway)
        self.events.publish("network", "create", n.id, name=n.name, driver=n.driver)
        return n

    async def remove(self, text: str) -> Network:
        """Remove a user network that no container uses."""
        n = await self.resolve(text)
        if n.builtin:
            raise Conflict(f"{n.name} is a pre-defined network and cannot be removed")
        users = await asyncio.to_thread(self.endpoints, n.id)
        if users:
            names = ", ".join(c.name for _, c in users)
            raise Conflict(f"network {n.name} is in use by container(s): {names}")
        await asyncio.to_thread(self.store.delete, n.id)
        crashpoint("network.rm.after-record")
        self.dns.stop(n.id)
        self._names.pop(n.id, None)
        await asyncio.to_thread(bridge.delete_bridges, [n.bridge], self.owner)
        await self.sync_firewall()
        self.events.publish("network", "destroy", n.id, name=n.name, driver=n.driver)
        return n

    async def prune(self, filters: docker_filters.Filters | None = None) -> builtins.list[str]:
        """Remove every user network no container uses that ``filters`` (until=, label=,
        label!=) select; their names."""
        wanted = docker_filters.check(filters or {}, docker_filters.NETWORK_PRUNE_KEYS)
        deleted = []
        for n in await self.all():
            if n.builtin or not docker_filters.labels_ok(n.labels, wanted) \
                    or not docker_filters.until_ok(n.created_ns, wanted):
                continue
            if await asyncio.to_thread(self.endpoints, n.id):
                continue
            try:
                await self.remove(n.id)
            except ServinError:
                continue  # taken by a container meanwhile
            deleted.append(n.name)
        return deleted

    # -- containers: create and remove ---------------------------------------------------

    def validate(self, c: Container, image: dict[str, Any]) -> None:
        """Refuse at create what attach would refuse at start (blocking)."""
        mode = c.host_config.network_mode
        if (mode in ("host", "none") or mode.startswith(("container:", "ns:"))) and any(
                ep.mac_address for ep in c.networking.endpoints.values()):
            raise InvalidArgument("conflicting options: mac-address and the network mode")
        wanted = self._wanted(c)
        if mode not in ("host", "none") and not mode.startswith(("container:", "ns:")) \
                and not wanted:
            raise InvalidArgument(f"invalid network mode {mode!r}")
        if mode.startswith("container:"):
            if c.host_config.port_bindings or c.host_config.publish_all_ports:
                raise InvalidArgument(
                    "conflicting options: port publishing and the container type network mode")
            if c.config.exposed_ports:
                raise InvalidArgument(
                    "conflicting options: port exposing and the container type network mode")
        for name, ep in wanted.items():
            n = self.store.resolve(name)
            if not n.is_bridge:
                raise InvalidArgument(
                    f"container cannot be connected to network {n.name} with other networks")
            if ep.ipv4_address:
                if not n.user_defined:
                    raise InvalidArgument(
                        "user specified IP address is supported on user defined networks only")
                ipam.check_static(ipaddress.IPv4Network(n.subnet), n.gateway,
                                  ep.ipv4_address, set())
            if ep.mac_address:
                check_mac(ep.mac_address)
            if ep.aliases and not n.user_defined:
                raise InvalidArgument(
                    "network-scoped aliases are supported for user-defined networks only")
        if c.host_config.links:
            for link in c.host_config.links:
                parse_link(link)
            if not any(self.store.resolve(name).user_defined for name in wanted):
                raise InvalidArgument("links are supported on user-defined networks only "
                                      "(the default bridge's /etc/hosts links are not)")
        requested = self.port_requests(c, image)
        # Explicit host ports must be free now (they are taken for real at start).
        explicit = [b for b in requested if b.host_port and not b.host_port_end]
        if explicit and wanted:
            probe = ports.Reservations()
            try:
                probe.take("probe", explicit)
            finally:
                probe.close()

    @staticmethod
    def spec_warnings(c: Container) -> builtins.list[str]:
        """What docker warns about at create (the container is made all the same)."""
        if c.host_config.network_mode == "host" and (c.host_config.port_bindings
                                                     or c.host_config.publish_all_ports):
            return ["Published ports are discarded when using host network mode"]
        return []

    @staticmethod
    def _wanted(c: Container) -> dict[str, EndpointConfig]:
        primary = primary_network(c)
        endpoints = c.networking.endpoints
        wanted: dict[str, EndpointConfig] = {}
        if primary:
            wanted[primary] = endpoints.get(primary) or EndpointConfig()
        for name, ep in endpoints.items():
            wanted.setdefault(name, ep)
        return wanted

    @staticmethod
    def port_requests(c: Container, image: dict[str, Any]) -> builtins.list[ports.Binding]:
        """The ports to publish: ``-p`` entries, plus every exposed port with ``-P``."""
        out: builtins.list[ports.Binding] = []
        for p in c.host_config.port_bindings:
            proto = p.protocol or "tcp"
            ports.check_request(p.container_port, proto, p.host_ip, p.host_port,
                                p.host_port_end)
            out.append(ports.Binding(p.container_port, proto, p.host_ip, p.host_port,
                                     p.host_port_end))
        if c.host_config.publish_all_ports:
            exposed = list(c.config.exposed_ports) + list((image.get("ExposedPorts") or {}).keys())
            have = {(b.container_port, b.protocol) for b in out}
            for number, proto in ports.exposed_ports(exposed):
                if (number, proto) not in have:
                    have.add((number, proto))
                    out.append(ports.Binding(number, proto, "", 0))
        return out

    def allocate(self, c: Container) -> builtins.list[Endpoint]:
        """Give a new container its addresses (blocking); all or none."""
        made: builtins.list[Endpoint] = []
        try:
            for name, ep in self._wanted(c).items():
                n = self.store.resolve(name)
                made.append(self.store.allocate(n, c.id, address=ep.ipv4_address,
                                                aliases=list(ep.aliases), mac=ep.mac_address))
        except BaseException:
            for done in made:
                self.store.release(done.network_id, c.id)
            raise
        return made

    # -- containers: start and exit ------------------------------------------------------

    def addressing(self, c: Container) -> tuple[str, str]:
        """The container's primary address, and the embedded DNS server ('' if none).

        A container in another's network namespace (``container:NAME``) shares its view.
        """
        if c.host_config.network_mode.startswith("container:"):
            with contextlib.suppress(NotFound):
                c = self.containers.resolve(c.host_config.network_mode.split(":", 1)[1])
        endpoints = self.store.endpoints_of_container(c.id)
        if not endpoints:
            return "", ""
        n = self.store.get(endpoints[0].network_id)
        return endpoints[0].address, (n.gateway if n.user_defined else "")

    async def attach(self, c: Container, pid: int,
                     image: dict[str, Any]) -> builtins.list[PublishedPort]:
        """Give a just-spawned container its links, ports and names; returns the ports."""
        # One worker-thread hop for the records and the netlink work together.
        started = time.perf_counter()
        endpoints, networks, links = await asyncio.to_thread(self._make_links, c, pid)
        if not endpoints:
            return []
        log.debug("container links made", extra={
            "container": c.id, "ms": round((time.perf_counter() - started) * 1e3, 1)})
        taken: builtins.list[ports.Binding] = []
        try:
            requested = self.port_requests(c, image)
            if requested:
                taken = self.reservations.take(c.id, requested)
                self._publish(c.id, endpoints[0].address, taken)
                await self.sync_firewall()
        except BaseException:
            self.reservations.release(c.id)
            self._running.pop(c.id, None)
            await asyncio.to_thread(bridge.delete_links, [link.host_name for link in links])
            raise
        self._register_names(c, endpoints, networks)
        return [PublishedPort(container_port=b.container_port, protocol=b.protocol,
                              host_ip=b.host_ip, host_port=b.host_port) for b in taken]

    def _make_links(self, c: Container, pid: int,
                    ) -> tuple[builtins.list[Endpoint], dict[str, Network],
                               builtins.list[bridge.Link]]:
        endpoints = self.store.endpoints_of_container(c.id)
        if not endpoints:
            return [], {}, []
        networks = {n.id: n for n in self.store.list()}
        links = []
        for i, ep in enumerate(endpoints):
            n = networks[ep.network_id]
            links.append(bridge.Link(
                host_name=bridge.veth_name(c.id, n.id), bridge=n.bridge, ifname=f"eth{i}",
                address=ep.address, prefixlen=n.prefixlen, mac=ep.mac,
                gateway=n.gateway if i == 0 and not n.internal else "",
            ))
        bridge.attach(pid, links)
        return endpoints, networks, links

    def _publish(self, container_id: str, address: str,
                 taken: builtins.list[ports.Binding]) -> None:
        self._running[container_id] = _Running([
            firewall.PortRule(b.protocol, b.host_ip, b.host_port, address, b.container_port)
            for b in taken
        ])

    def _register_names(self, c: Container, endpoints: builtins.list[Endpoint],
                        networks: dict[str, Network]) -> None:
        for ep in endpoints:
            n = networks.get(ep.network_id)
            if n is None or not n.user_defined:
                continue
            names = self._names.setdefault(n.id, {})
            for name in self._names_of(c, ep):
                names.setdefault(name, set()).add(ep.address)
            self._client_dns[ep.address] = list(c.host_config.dns)
            self._address_owner[ep.address] = c.id
            self._container_networks.setdefault(c.id, set()).add(n.id)
            if c.host_config.links:
                self._client_links[ep.address] = dict(
                    (alias.lower(), target.lower())
                    for target, alias in map(parse_link, c.host_config.links))

    @staticmethod
    def _names_of(c: Container, ep: Endpoint) -> set[str]:
        out = {c.name.lower(), c.id[:12], *(a.lower() for a in ep.aliases)}
        if c.config.hostname:
            out.add(c.config.hostname.lower())
        return out

    def _unregister_names(self, c: Container, endpoints: builtins.list[Endpoint]) -> None:
        for ep in endpoints:
            names = self._names.get(ep.network_id)
            if names is None:
                continue
            for name in self._names_of(c, ep):
                addresses = names.get(name)
                if addresses is not None:
                    addresses.discard(ep.address)
                    if not addresses:
                        del names[name]
            self._client_dns.pop(ep.address, None)
            self._client_links.pop(ep.address, None)
            self._address_owner.pop(ep.address, None)
            joined = self._container_networks.get(c.id)
            if joined is not None:
                joined.discard(ep.network_id)
                if not joined:
                    del self._container_networks[c.id]

    async def renamed(self, old: Container, new: Container) -> None:
        """A running container has a new name: DNS answers to it, no longer to the old one."""
        endpoints = await asyncio.to_thread(self.store.endpoints_of_container, new.id)
        networks = {n.id: n for n in await self.all()}
        self._unregister_names(old, endpoints)
        self._register_names(new, endpoints, networks)

    async def restore(self, c: Container) -> None:
        """At daemon start, for a container still running: its ports and names again."""
        endpoints = await asyncio.to_thread(self.store.endpoints_of_container, c.id)
        if not endpoints:
            return
        networks = {n.id: n for n in await self.all()}
        await asyncio.to_thread(self._restore_links, c, endpoints, networks)
        wanted = [ports.Binding(p.container_port, p.protocol, p.host_ip, p.host_port)
                  for p in c.state.ports]
        if wanted:
            try:
                self.reservations.take(c.id, wanted)
            except ServinError as exc:
                log.warning("cannot hold a published port again",
                            extra={"container": c.id, "error": str(exc)})
            self._publish(c.id, endpoints[0].address, wanted)
        self._register_names(c, endpoints, networks)

    def _restore_links(self, c: Container, endpoints: builtins.list[Endpoint],
                       networks: dict[str, Network]) -> None:
        """Make the links of endpoints recorded by a ``connect`` a crash interrupted before
        its link was made (blocking)."""
        for ep in endpoints:
            n = networks.get(ep.network_id)
            name = bridge.veth_name(c.id, ep.network_id)
            if n is None or not n.is_bridge or not c.state.pid or bridge.link_exists(name):
                continue
            log.warning("making the link of an interrupted connect",
                        extra={"container": c.id, "network": n.name})
            try:
                bridge.attach(c.state.pid, [bridge.Link(
                    host_name=name, bridge=n.bridge, ifname=bridge.free_ifname(c.state.pid),
                    address=ep.address, prefixlen=n.prefixlen, mac=ep.mac, gateway="")])
            except (OSError, ServinError) as exc:
                log.warning("cannot make the link", extra={"container": c.id,
                                                           "error": str(exc)})

    async def detach(self, c: Container) -> None:
        """The container stopped: let its ports, links, rules and names go."""
        self.reservations.release(c.id)
        had_ports = self._running.pop(c.id, None) is not None
        started = time.perf_counter()
        endpoints = await asyncio.to_thread(self._delete_links, c)
        self._unregister_names(c, endpoints)
        if endpoints:
            log.debug("container links deleted", extra={
                "container": c.id, "ms": round((time.perf_counter() - started) * 1e3, 1)})
        if had_ports:
            await self.sync_firewall()

    def _delete_links(self, c: Container) -> builtins.list[Endpoint]:
        endpoints = self.store.endpoints_of_container(c.id)
        # The kernel deletes them with the namespace too, but only once nothing holds it.
        bridge.delete_links([bridge.veth_name(c.id, ep.network_id) for ep in endpoints])
        return endpoints

    # -- connect and disconnect ----------------------------------------------------------

    async def connect(self, network: str, container: str, *, aliases: builtins.list[str],
                      address: str) -> None:
        """Attach a container to one more network (at once when it runs)."""
        c = await asyncio.to_thread(self.containers.resolve, container)
        n = await self.resolve(network)
        if not n.is_bridge:
            raise InvalidArgument(f"cannot connect a container to network {n.name}")
        if not primary_network(c):
            raise Conflict(f"container {c.name} uses network mode {c.network_mode} and "
                           "cannot be connected to networks")
        if (aliases or address) and not n.user_defined:
            raise InvalidArgument("aliases and --ip are supported on user-defined networks only")
        ep = await asyncio.to_thread(self.store.allocate, n, c.id, address=address,
                                     aliases=aliases)
        crashpoint("network.connect.after-record")
        if c.state.running and c.state.pid:
            try:
                link = bridge.Link(
                    host_name=bridge.veth_name(c.id, n.id), bridge=n.bridge,
                    ifname=await asyncio.to_thread(bridge.free_ifname, c.state.pid),
                    address=ep.address, prefixlen=n.prefixlen, mac=ep.mac, gateway="",
                )
                await asyncio.to_thread(bridge.attach, c.state.pid, [link])
                crashpoint("network.connect.after-link")
            except BaseException:
                await asyncio.to_thread(self.store.release, n.id, c.id)
                raise
            self._register_names(c, [ep], {n.id: n})
        self.events.publish("network", "connect", n.id, name=n.name, container=c.id)

    async def disconnect(self, network: str, container: str) -> None:
        """Detach a container from a network (its link goes at once when it runs)."""
        c = await asyncio.to_thread(self.containers.resolve, container)
        n = await self.resolve(network)
        endpoints = await asyncio.to_thread(self.store.endpoints_of_container, c.id)
        ep = next((e for e in endpoints if e.network_id == n.id), None)
        if ep is None:
            raise NotFound(f"container {c.name} is not connected to network {n.name}")
        if c.state.running:
            self._unregister_names(c, [ep])
            await asyncio.to_thread(bridge.delete_links, [bridge.veth_name(c.id, n.id)])
        await asyncio.to_thread(self.store.release, n.id, c.id)
        self.events.publish("network", "disconnect", n.id, name=n.name, container=c.id)

    def network_ids(self) -> dict[str, str]:
        """Network name -> ID (blocking)."""
        return {n.name: n.id for n in self.store.list()}

    def network_names(self) -> dict[str, builtins.list[str]]:
        """Container ID -> the names of its networks, for every container (blocking)."""
        names = {n.id: n.name for n in self.store.list()}
        out: dict[str, list[str]] = {}
        for ep in self.store.all_endpoints():
            out.setdefault(ep.container_id, []).append(names.get(ep.network_id, ep.network_id))
        return out

    def networks_of(self, c: Container) -> builtins.list[tuple[Network, Endpoint]]:
        """The container's networks with its endpoint on each (blocking)."""
        out = []
        for ep in self.store.endpoints_of_container(c.id):
            with contextlib.suppress(NotFound):
                out.append((self.store.get(ep.network_id), ep))
        return out

    # -- DNS -----------------------------------------------------------------------------

    def _dns_lookup(self, network_id: str, name: str, client: str = "") -> builtins.list[str]:
        owner = self._address_owner.get(client, "")
        # The network asked first, then the client's other user networks (docker's embedded
        # DNS answers for every network the container is on).
        networks = [network_id, *sorted(self._container_networks.get(owner, set())
                                        - {network_id})]
        target = self._client_links.get(client, {}).get(name)
        for nid in networks:
            names = self._names.get(nid, {})
            if target is not None and names.get(target):
                return sorted(names[target])  # a link's alias, for its container only
            if names.get(name):
                return sorted(names[name])
        return []

    def _dns_upstreams(self, network_id: str, client: str) -> builtins.list[str]:
        return self._client_dns.get(client) or host_resolvers()


def parse_link(text: str) -> tuple[str, str]:
    """docker's link ``CONTAINER[:ALIAS]`` (a leading ``/`` allowed) as (container, alias)."""
    target, sep, alias = text.strip().lstrip("/").partition(":")
    alias = alias.rsplit("/", 1)[-1]  # inspect's "/target:/name/alias" form
    if not target or (sep and not alias):
        raise InvalidArgument(f"invalid link {text!r}: use CONTAINER[:ALIAS]")
    return target, alias or target
