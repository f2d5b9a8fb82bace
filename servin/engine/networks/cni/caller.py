"""The CNI caller: attach a network namespace to the default CNI network and detach it.

Executes network configurations as the spec's section 3 says: ADD runs the plugins in order,
each getting the previous one's result; DEL runs them in reverse order with ADD's final result;
CHECK runs them in order with it. The attachment's parameters, configuration and result are
recorded on disk (``cache.py``), so DEL works after a daemon crash and with the configuration
ADD used. Operations on one container are serialized; GC excludes every other operation.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import re
from collections.abc import AsyncIterator, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from servin.engine.config import DaemonConfig
from servin.engine.linux.netns import is_netns
from servin.engine.networks.cni.cache import AttachmentRecord, ResultCache
from servin.engine.networks.cni.conf import (
    NetworkConfigList,
    at_least,
    load_dir,
    parse_config_list,
    version_key,
)
from servin.engine.networks.cni.errors import (
    CONTAINER_UNKNOWN,
    INCOMPATIBLE_VERSION,
    NoNetworkConfig,
    PluginError,
    PluginNotFound,
)
from servin.engine.networks.cni.invoke import Invocation, find_plugin, run_plugin
from servin.engine.networks.cni.result import Result, ResultError, parse_result
from servin.errors import Conflict, InvalidArgument, NotFound

log = logging.getLogger(__name__)

DEFAULT_CONF_DIR = DaemonConfig.cni_conf_dir
# Upstream's install dir first, then Debian's containernetworking-plugins.
DEFAULT_BIN_DIRS = DaemonConfig.cni_bin_dirs
DEFAULT_TIMEOUT = 60.0

_ID_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.\-]*$")
_ARG_RE = re.compile(r"^[^;=\s]+$")


@dataclass(frozen=True)
class PortMapping:
    """A host port forwarded into the attachment (the ``portMappings`` capability)."""

    host_port: int
    container_port: int
    protocol: str = "tcp"
    host_ip: str = ""

    def as_capability(self) -> dict[str, Any]:
        """The convention's JSON form."""
        doc: dict[str, Any] = {"hostPort": self.host_port, "containerPort": self.container_port,
                               "protocol": self.protocol}
        if self.host_ip:
            doc["hostIP"] = self.host_ip
        return doc


def port_mappings(mappings: Iterable[PortMapping]) -> dict[str, Any]:
    """Capability arguments carrying ``mappings`` (for :class:`Attachment`)."""
    return {"portMappings": [m.as_capability() for m in mappings]}


@dataclass(frozen=True)
class Attachment:
    """The per-attachment parameters (spec section 3, "Attachment Parameters").

    ``args`` become ``CNI_ARGS`` (kubelet-style runtimes pass ``K8S_POD_NAMESPACE`` and
    friends); ``capability_args`` go to the plugins that declare the capability (e.g.
    ``portMappings`` for portmap, built with :func:`port_mappings`).
    """

    container_id: str
    netns: str
    ifname: str = "eth0"
    args: Mapping[str, str] = field(default_factory=dict)
    capability_args: Mapping[str, Any] = field(default_factory=dict)

    def validate(self) -> None:
        """Raise InvalidArgument for parameters the spec does not allow."""
        if not _ID_RE.match(self.container_id):
            raise InvalidArgument(f"invalid CNI container ID {self.container_id!r}")
        if not 0 < len(self.ifname) <= 15 or any(c in self.ifname for c in "/: \t\n") \
                or self.ifname in (".", ".."):
            raise InvalidArgument(f"invalid interface name {self.ifname!r}")
        for key, value in self.args.items():
            if not _ARG_RE.match(key) or (value and not _ARG_RE.match(value)):
                raise InvalidArgument(f"invalid CNI argument {key}={value}")
        try:
            json.dumps(dict(self.capability_args))
        except (TypeError, ValueError) as exc:
            raise InvalidArgument(f"CNI capability arguments are not JSON: {exc}") from None

    @property
    def cni_args(self) -> str:
        """``CNI_ARGS``: ``K1=V1;K2=V2``."""
        return ";".join(f"{k}={v}" for k, v in self.args.items())


@dataclass(frozen=True)
class NetworkStatus:
    """Whether pods can get a network now, and why not (for the CRI's NetworkReady)."""

    ready: bool
    message: str
    network: str = ""


@dataclass(frozen=True)
class PluginVersion:
    """A plugin's VERSION answer."""

    cni_version: str
    supported_versions: tuple[str, ...]


class _SharedExclusive:
    """Many shared holders (ADD, DEL, CHECK) or one exclusive one (GC)."""

    def __init__(self) -> None:
        self._cond = asyncio.Condition()
        self._shared = 0
        self._exclusive = False

    @contextlib.asynccontextmanager
    async def shared(self) -> AsyncIterator[None]:
        async with self._cond:
            await self._cond.wait_for(lambda: not self._exclusive)
            self._shared += 1
        try:
            yield
        finally:
            async with self._cond:
                self._shared -= 1
                self._cond.notify_all()

    @contextlib.asynccontextmanager
    async def exclusive(self) -> AsyncIterator[None]:
        async with self._cond:
            await self._cond.wait_for(lambda: not self._exclusive and self._shared == 0)
            self._exclusive = True
        try:
            yield
        finally:
            async with self._cond:
                self._exclusive = False
                self._cond.notify_all()


class CNI:
    """Calls the CNI plugins of the first valid network configuration in ``conf_dir``."""

    def __init__(self, *, cache_dir: Path, conf_dir: Path = DEFAULT_CONF_DIR,
                 bin_dirs: Sequence[Path] = DEFAULT_BIN_DIRS,
                 timeout: float = DEFAULT_TIMEOUT) -> None:
        self.conf_dir = conf_dir
        self.bin_dirs = tuple(bin_dirs)
        self.timeout = timeout
        self.cache = ResultCache(cache_dir)
        self._locks: dict[str, tuple[asyncio.Lock, int]] = {}
        self._gc_lock = _SharedExclusive()
        self._versions: dict[tuple[str, float], PluginVersion] = {}

    @classmethod
    def for_daemon(cls, config: DaemonConfig) -> CNI:
        """The caller a daemon uses: its configured dirs, records under ``<root>/cni/results``
        (kept across reboots, as libcni keeps /var/lib/cni, so DEL finds them after a crash)."""
        return cls(cache_dir=config.root / "cni" / "results", conf_dir=config.cni_conf_dir,
                   bin_dirs=config.cni_bin_dirs)

    # -- configuration -------------------------------------------------------------------

    async def network(self) -> NetworkConfigList:
        """The default network: the first valid configuration (read anew on every call).

        Raises NoNetworkConfig naming the directory and why each file was refused.
        """
        valid, problems = await asyncio.to_thread(load_dir, self.conf_dir)
        if not valid:
            why = f" ({'; '.join(problems)})" if problems else ""
            raise NoNetworkConfig(f"no valid CNI network configuration in {self.conf_dir}{why}")
        for problem in problems:
            log.debug("skipping: %s", problem)
        return await self._negotiate(valid[0])

    async def status(self) -> NetworkStatus:
        """Ready when a network configuration exists and all its plugins are installed (and,
        for spec 1.1.0 configurations, answer STATUS without error)."""
        try:
            net = await self.network()
            for plugin in net.plugins:
                find_plugin(plugin["type"], self.bin_dirs, net.name)
            if at_least(net.cni_version, "1.1.0"):
                for plugin in net.plugins:
                    await self._run(net, plugin, Invocation("STATUS"), prev_result=None,
                                    capability_args={})
        except (NoNetworkConfig, PluginError) as exc:
            return NetworkStatus(False, exc.message)
        return NetworkStatus(True, f"CNI network {net.name} ({net.source})", net.name)

    async def version(self, plugin_type: str, cni_version: str = "1.1.0") -> PluginVersion:
        """What a plugin binary answers to VERSION (cached per binary and modification time)."""
        path = find_plugin(plugin_type, self.bin_dirs)
        key = (str(path), path.stat().st_mtime)
        if key not in self._versions:
            answer = await run_plugin(path, Invocation("VERSION"),
                                      json.dumps({"cniVersion": cni_version}).encode(),
                                      bin_dirs=self.bin_dirs, timeout=self.timeout)
            supported = answer.get("supportedVersions") if isinstance(answer, dict) else None
            if not isinstance(supported, list) or not all(isinstance(v, str) for v in supported):
                raise PluginError(f"CNI plugin {plugin_type} VERSION: invalid answer {answer!r}",
                                  plugin=plugin_type, command="VERSION")
            self._versions[key] = PluginVersion(str(answer.get("cniVersion", "")),
                                                tuple(supported))
        return self._versions[key]

    async def _negotiate(self, net: NetworkConfigList) -> NetworkConfigList:
        # The spec lets a runtime consider the plugins' own versions when a configuration
        # offers several (cniVersions): pick the newest that every plugin supports.
        if len(net.versions) < 2:
            return net
        common = set(net.versions)
        try:
            for plugin in net.plugins:
                common &= set((await self.version(plugin["type"])).supported_versions)
        except PluginError:
            return net  # a missing or odd plugin fails later with its own clear error
        if not common:
            return net
        return net.with_version(max(common, key=version_key))

    # -- attachments ---------------------------------------------------------------------

    async def add(self, attachment: Attachment,
                  network: NetworkConfigList | None = None) -> Result:
        """Attach ``attachment.netns`` to ``network`` (default: :meth:`network`).

        On failure the plugins that ran are undone (DEL), and the error is raised; if that DEL
        fails too, the attachment stays recorded for :meth:`delete_all` to retry.
        """
        attachment.validate()
        net = network or await self.network()
        async with self._gc_lock.shared(), self._lock(attachment.container_id):
            if self.cache.read(net.name, attachment.container_id, attachment.ifname):
                raise Conflict(
                    f"container {attachment.container_id} already has interface "
                    f"{attachment.ifname} on CNI network {net.name} (DEL it first)"
                )
            record = AttachmentRecord(
                network=net.name, container_id=attachment.container_id,
                ifname=attachment.ifname, netns=attachment.netns, args=attachment.cni_args,
                capability_args=dict(attachment.capability_args), config=dict(net.document),
                cni_version=net.cni_version,
            )
            await asyncio.to_thread(self.cache.write, record)
            call = Invocation("ADD", attachment.container_id, attachment.netns,
                              attachment.ifname, attachment.cni_args)
            prev: Mapping[str, Any] | None = None
            started: list[Mapping[str, Any]] = []
            try:
                for plugin in net.plugins:
                    started.append(plugin)
                    answer = await self._run(net, plugin, call, prev_result=prev,
                                             capability_args=attachment.capability_args)
                    prev = _checked_result(answer, plugin["type"], call.command, net.name).raw
                if prev is None:
                    raise PluginError(f"CNI network {net.name}: ADD gave no result",
                                      plugin=net.plugins[-1]["type"], command="ADD")
                result = _checked_result(prev, net.plugins[-1]["type"], "ADD", net.name)
            except BaseException as exc:
                # The spec wants a DEL even after a failed ADD: of the plugins that ran, in
                # reverse order. The plugin that failed answers for its own partial work (as
                # the spec asks of plugins), so its DEL is best-effort; one that is missing or
                # refused the version did nothing. Shielded, so a cancelled ADD still cleans
                # up what it made.
                failed = started[-1] if started else None
                if isinstance(exc, PluginNotFound) or (
                        isinstance(exc, PluginError) and exc.code == INCOMPATIBLE_VERSION):
                    started.pop()
                await asyncio.shield(self._undo(record, started, failed))
                raise
            record.result = result.raw
            await asyncio.to_thread(self.cache.write, record)
            return result

    async def _undo(self, record: AttachmentRecord, started: list[Mapping[str, Any]],
                    failed: Mapping[str, Any] | None) -> None:
        try:
            await self._delete_record(record, started, best_effort=failed)
        except PluginError as exc:
            log.warning("CNI DEL after a failed ADD of %s failed (will retry): %s",
                        record.container_id, exc)

    async def check(self, attachment: Attachment) -> None:
        """CHECK a recorded attachment (on every network it is attached to). Raises the first
        plugin's error; NotFound if it was never added."""
        attachment.validate()
        async with self._gc_lock.shared(), self._lock(attachment.container_id):
            records = [r for r in self.cache.records(attachment.container_id)
                       if r.ifname == attachment.ifname and r.result is not None]
            if not records:
                raise NotFound(
                    f"container {attachment.container_id} has no CNI attachment "
                    f"{attachment.ifname} to check"
                )
            for record in records:
                net = self._recorded_network(record)
                if not at_least(net.cni_version, "0.4.0"):
                    raise InvalidArgument(
                        f"CNI network {net.name}: version {net.cni_version} has no CHECK "
                        "(0.4.0 or newer)"
                    )
                if net.disable_check:
                    continue
                call = Invocation("CHECK", record.container_id, attachment.netns or record.netns,
                                  record.ifname, record.args)
                for plugin in net.plugins:
                    await self._run(net, plugin, call, prev_result=record.result,
                                    capability_args=record.capability_args)

    async def delete(self, attachment: Attachment) -> None:
        """DEL the attachment from every network it is recorded on; when none is recorded,
        from the default network (DEL is idempotent, so that is harmless). Plugins run in
        reverse order; the record goes only when all succeeded. A missing netns is fine."""
        attachment.validate()
        async with self._gc_lock.shared(), self._lock(attachment.container_id):
            records = [r for r in self.cache.records(attachment.container_id)
                       if r.ifname == attachment.ifname]
            if not records:
                try:
                    net = await self.network()
                except NoNetworkConfig:
                    return  # nothing recorded and no network: nothing was ever attached
                records = [AttachmentRecord(
                    network=net.name, container_id=attachment.container_id,
                    ifname=attachment.ifname, netns=attachment.netns, args=attachment.cni_args,
                    capability_args=dict(attachment.capability_args),
                    config=dict(net.document), cni_version=net.cni_version,
                )]
            for record in records:
                await self._delete_record(record)

    async def delete_all(self, container_id: str) -> None:
        """DEL every recorded attachment of a container (pod removal, crash recovery)."""
        async with self._gc_lock.shared(), self._lock(container_id):
            for record in self.cache.records(container_id):
                await self._delete_record(record)

    def attachments(self, container_id: str | None = None) -> list[AttachmentRecord]:
        """The recorded attachments (of one container), e.g. to reconcile after a restart."""
        return self.cache.records(container_id)

    async def gc(self, valid: Iterable[tuple[str, str]]) -> None:
        """Remove what attachments not in ``valid`` ((container ID, ifname) pairs) left: DEL
        each such recorded attachment, then GC the default network's plugins if it speaks
        spec 1.1.0. Runs alone (no ADD or DEL meanwhile); raises the first error after trying
        everything."""
        keep = set(valid)
        errors: list[PluginError] = []
        async with self._gc_lock.exclusive():
            for record in self.cache.records():
                if (record.container_id, record.ifname) not in keep:
                    try:
                        await self._delete_record(record)
                    except PluginError as exc:
                        errors.append(exc)
            try:
                net = await self.network()
            except NoNetworkConfig:
                net = None
            if net is not None and at_least(net.cni_version, "1.1.0") and not net.disable_gc:
                attachments = [{"containerID": c, "ifname": i} for c, i in sorted(keep)]
                for plugin in net.plugins:
                    try:
                        await self._run(net, plugin, Invocation("GC"), prev_result=None,
                                        capability_args={},
                                        extra={"cni.dev/valid-attachments": attachments})
                    except PluginError as exc:
                        errors.append(exc)
        if errors:
            raise errors[0]

    # -- internals -----------------------------------------------------------------------

    @contextlib.asynccontextmanager
    async def _lock(self, container_id: str) -> AsyncIterator[None]:
        # One operation per container at a time (the spec forbids parallel ones); the lock
        # goes away with its last user.
        lock, users = self._locks.get(container_id, (asyncio.Lock(), 0))
        self._locks[container_id] = (lock, users + 1)
        try:
            async with lock:
                yield
        finally:
            lock, users = self._locks[container_id]
            if users == 1:
                del self._locks[container_id]
            else:
                self._locks[container_id] = (lock, users - 1)

    def _recorded_network(self, record: AttachmentRecord) -> NetworkConfigList:
        net = parse_config_list(record.config, f"recorded for {record.container_id}")
        return net.with_version(record.cni_version)

    async def _delete_record(self, record: AttachmentRecord,
                             plugins: Sequence[Mapping[str, Any]] | None = None,
                             best_effort: Mapping[str, Any] | None = None) -> None:
        net = self._recorded_network(record)
        # The netns may be gone already (the spec makes CNI_NETNS optional for DEL).
        netns = record.netns if record.netns and is_netns(Path(record.netns)) else ""
        call = Invocation("DEL", record.container_id, netns, record.ifname, record.args)
        # Before 0.4.0, DEL got no prevResult.
        prev = record.result if at_least(net.cni_version, "0.4.0") else None
        for plugin in reversed(net.plugins if plugins is None else plugins):
            try:
                await self._run(net, plugin, call, prev_result=prev,
                                capability_args=record.capability_args)
            except PluginError as exc:
                if plugin is best_effort:
                    log.warning("ignoring the DEL error of the plugin whose ADD failed: %s", exc)
                elif exc.code != CONTAINER_UNKNOWN:  # "nothing to clean up" is success for DEL
                    raise
        await asyncio.to_thread(self.cache.remove, record.network, record.container_id,
                                record.ifname)

    async def _run(self, net: NetworkConfigList, plugin: Mapping[str, Any], call: Invocation,
                   *, prev_result: Mapping[str, Any] | None, capability_args: Mapping[str, Any],
                   extra: Mapping[str, Any] | None = None) -> Any:
        path = find_plugin(plugin["type"], self.bin_dirs, net.name)
        request = net.request(plugin, prev_result=prev_result, capability_args=capability_args,
                              extra=extra)
        return await run_plugin(path, call, request, bin_dirs=self.bin_dirs,
                                timeout=self.timeout, network=net.name)


def _checked_result(answer: Any, plugin: str, command: str, network: str) -> Result:
    try:
        return parse_result(answer)
    except ResultError as exc:
        raise PluginError(f"CNI plugin {plugin} {command} on network {network}: invalid result: "
                          f"{exc}", plugin=plugin, command=command) from None
