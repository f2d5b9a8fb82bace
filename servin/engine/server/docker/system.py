"""Docker API system endpoints: _ping, version, info, system/df, events, auth.

Thin handlers over the engine's services, answering in docker's shapes (API 1.24 to 1.50:
fields a version did not have are left out for it, as dockerd does).
"""

from __future__ import annotations

import asyncio
import ipaddress
import os
import platform
import re
import socket
import subprocess
from datetime import datetime
from functools import cache
from typing import Any

from servin import __version__
from servin.engine import hostinfo
from servin.engine.config import DaemonConfig
from servin.engine.engine import CoreAPI
from servin.engine.events import Event, SubscriberTooSlow
from servin.engine.images.platforms import host_platform
from servin.engine.server.docker import params
from servin.engine.server.docker.containers import container_summary
from servin.engine.server.docker.http import Request, Response
from servin.engine.server.docker.responses import dump_json, json_response
from servin.engine.server.docker.router import ResponseAborted, Router
from servin.engine.server.docker.versions import (
    API_VERSION,
    MIN_API_VERSION,
    compare_versions,
)
from servin.engine.system import DiskUsage
from servin.errors import InvalidArgument, ServinError
from servin.reference import DEFAULT_DOMAIN, parse_reference
from servin.version import git_commit

# The legacy builder's protocol is what `POST /build` will speak (BuildKit is not served).
BUILDER_VERSION = "1"
INDEX_SERVER = "https://index.docker.io/v1/"

_PING_HEADERS = (
    ("Cache-Control", "no-cache, no-store, must-revalidate"),
    ("Pragma", "no-cache"),
    ("Builder-Version", BUILDER_VERSION),
    ("Swarm", "inactive"),
)
_PING_GET = Response(200, b"OK", content_type="text/plain; charset=utf-8", headers=_PING_HEADERS)
_PING_HEAD = Response(200, b"", content_type="text/plain; charset=utf-8",
                      headers=(*_PING_HEADERS, ("Content-Length", "0")))
_DF_TYPES = {"container": "Containers", "image": "Images", "volume": "Volumes",
             "build-cache": "BuildCache"}


def _older(req: Request, version: str) -> bool:
    return compare_versions(req.api_version, version) < 0


@cache
def runtime_version(binary: str) -> tuple[str, str]:
    """(version, commit) from ``BINARY --version`` (runc and crun print both), or ("", "")."""
    try:
        out = subprocess.run([binary, "--version"], capture_output=True, text=True, timeout=5,
                             check=False).stdout
    except (OSError, subprocess.SubprocessError):
        return "", ""
    version = commit = ""
    for line in out.splitlines():
        if " version " in line and not version:
            version = line.rsplit(" ", 1)[-1]
        elif line.startswith("commit:"):
            commit = line.split(":", 1)[1].strip()
    return version, commit


class SystemRoutes:
    """The system endpoints over the core's API."""

    def __init__(self, core: CoreAPI, *, docker_hosts: tuple[str, ...] = ()) -> None:
        self.core = core
        self.docker_hosts = docker_hosts
        self._version: Response | None = None

    @property
    def config(self) -> DaemonConfig:
        """The daemon's configuration (read-only)."""
        return self.core.system.config

    def register(self, router: Router) -> None:
        """Declare the routes."""
        router.add("GET", "/_ping", self.ping)
        router.add("HEAD", "/_ping", self.ping)
        router.add("GET", "/version", self.version)
        router.add("GET", "/info", self.info)
        router.add("GET", "/system/df", self.disk_usage)
        router.add("GET", "/events", self.events)
        router.add("POST", "/auth", self.auth)

    # -- ping and version ----------------------------------------------------------------

    async def ping(self, req: Request) -> Response:
        """``OK`` with the negotiation headers (HEAD: the headers alone)."""
        return _PING_HEAD if req.method == "HEAD" else _PING_GET

    def _runtime_path(self, name: str) -> str:
        return self.core.system.runtime_path(name)

    async def version(self, req: Request) -> Response:
        """docker's Version document; Components: the engine and the OCI runtimes (what it
        says cannot change while the daemon runs: made once)."""
        if self._version is None:
            self._version = await self._version_response()
        return self._version

    async def _version_response(self) -> Response:
        arch = host_platform().architecture
        kernel = hostinfo.kernel_version()
        commit = git_commit()
        components: list[dict[str, Any]] = [{
            "Name": "Engine",
            "Version": __version__,
            "Details": {
                "ApiVersion": API_VERSION,
                "Arch": arch,
                "BuildTime": "",
                "Experimental": "false",
                "GitCommit": commit,
                "GoVersion": "",
                "KernelVersion": kernel,
                "MinAPIVersion": MIN_API_VERSION,
                "Os": "linux",
                "PythonVersion": platform.python_version(),
            },
        }]
        for name in self.core.system.runtimes():
            if name == "native":
                components.append({"Name": "native", "Version": __version__,
                                   "Details": {"GitCommit": commit}})
                continue
            path = self._runtime_path(name)
            found, runtime_commit = (await asyncio.to_thread(runtime_version, path)
                                     if path else ("", ""))
            components.append({"Name": name, "Version": found,
                               "Details": {"GitCommit": runtime_commit}})
        return json_response({
            "Platform": {"Name": "Servin"},
            "Components": components,
            "Version": __version__,
            "ApiVersion": API_VERSION,
            "MinAPIVersion": MIN_API_VERSION,
            "GitCommit": commit,
            "GoVersion": "",
            "Os": "linux",
            "Arch": arch,
            "KernelVersion": kernel,
            "BuildTime": "",
        })

    # -- info ----------------------------------------------------------------------------

    async def info(self, req: Request) -> Response:
        """docker's Info document with this host's and this engine's real numbers."""
        cfg = self.config
        summary = await self.core.system.info()
        paused = summary.containers_paused
        running = summary.containers_running
        features, fstype = await asyncio.to_thread(
            lambda: (hostinfo.cgroup_features(), hostinfo.filesystem_type(cfg.root)))
        cgroup_version = str(hostinfo.cgroup_version())
        default_path = self._runtime_path(cfg.default_runtime)
        runc_commit = "N/A"
        if cfg.default_runtime != "native" and default_path:
            runc_commit = (await asyncio.to_thread(runtime_version, default_path))[1] or "N/A"
        security = ["name=seccomp,profile=builtin", "name=cgroupns", "name=no-new-privileges"]
        if _older(req, "1.25"):
            security = ["seccomp", "cgroupns", "no-new-privileges"]
        runtimes: dict[str, Any] = {}
        for name in summary.runtimes:
            entry: dict[str, Any] = {}
            if name != "native" and (path := self._runtime_path(name)):
                entry["path"] = path
            runtimes[name] = entry
        doc: dict[str, Any] = {
            "ID": summary.id,
            "Containers": summary.containers,
            "ContainersRunning": running,
            "ContainersPaused": paused,
            "ContainersStopped": summary.containers - running - paused,
            "Images": summary.images,
            "Driver": summary.storage_driver,
            "DriverStatus": [["Backing Filesystem", fstype]] if fstype else [],
            "Plugins": {
                "Volume": ["local"],
                "Network": ["bridge", "host", "null"],
                "Authorization": None,
                "Log": ["json-file", "none"],
            },
            "MemoryLimit": features.memory_limit,
            "SwapLimit": features.swap_limit,
            "CpuCfsPeriod": features.cpu_cfs,
            "CpuCfsQuota": features.cpu_cfs,
            "CPUShares": features.cpu_shares,
            "CPUSet": features.cpuset,
            "PidsLimit": features.pids_limit,
            "IPv4Forwarding": hostinfo.ipv4_forwarding(),
            "Debug": cfg.log_level.lower() == "debug",
            "NFd": _open_fds(),
            "OomKillDisable": features.oom_kill_disable,
            "NGoroutines": len(asyncio.all_tasks()),
            "SystemTime": datetime.now().astimezone().isoformat(timespec="microseconds"),
            "LoggingDriver": "json-file",
            "CgroupDriver": "cgroupfs",
            "CgroupVersion": cgroup_version,
            "NEventsListener": self.core.events.subscriber_count,
            "KernelVersion": hostinfo.kernel_version(),
            "OperatingSystem": hostinfo.os_release_name(),
            "OSVersion": hostinfo.os_release().get("VERSION_ID", ""),
            "OSType": "linux",
            "Architecture": platform.machine(),
            "IndexServerAddress": INDEX_SERVER,
            "RegistryConfig": self._registry_config(req),
            "NCPU": os.cpu_count() or 1,
            "MemTotal": hostinfo.mem_total(),
            "GenericResources": None,
            "DockerRootDir": str(cfg.root),
            "HttpProxy": _proxy_env("HTTP_PROXY"),
            "HttpsProxy": _proxy_env("HTTPS_PROXY"),
            "NoProxy": os.environ.get("NO_PROXY") or os.environ.get("no_proxy", ""),
            "Name": socket.gethostname(),
            "Labels": [],
            "ExperimentalBuild": False,
            "ServerVersion": __version__,
            "Runtimes": runtimes,
            "DefaultRuntime": cfg.default_runtime,
            "Swarm": {
                "NodeID": "",
                "NodeAddr": "",
                "LocalNodeState": "inactive",
                "ControlAvailable": False,
                "Error": "",
                "RemoteManagers": None,
            },
            # Containers outlive the daemon: what dockerd calls live restore is always on.
            "LiveRestoreEnabled": True,
            "Isolation": "",
            "InitBinary": "",
            "ContainerdCommit": {"ID": "N/A"},
            "RuncCommit": {"ID": runc_commit},
            "InitCommit": {"ID": "N/A"},
            "SecurityOptions": security,
            "DefaultAddressPools": [{"Base": cfg.address_pool, "Size": cfg.address_pool_size}],
            "FirewallBackend": {"Driver": "nftables"},
            "CDISpecDirs": [],
            "Warnings": self._warnings(features, cgroup_version),
        }
        if features.kernel_memory_tcp:
            doc["KernelMemoryTCP"] = True
        if _older(req, "1.49"):
            del doc["FirewallBackend"]
            for key in ("ContainerdCommit", "RuncCommit", "InitCommit"):
                doc[key]["Expected"] = doc[key]["ID"]
        if _older(req, "1.50"):
            doc["BridgeNfIptables"] = False
            doc["BridgeNfIp6tables"] = False
        return json_response(doc)

    def _registry_config(self, req: Request) -> dict[str, Any]:
        reg = self.config.registries
        cidrs = ["::1/128", "127.0.0.0/8"]  # loopback registries may speak plain HTTP
        indexes: dict[str, Any] = {DEFAULT_DOMAIN: {
            "Name": DEFAULT_DOMAIN, "Mirrors": list(reg.mirrors.get(DEFAULT_DOMAIN, [])),
            "Secure": True, "Official": True}}
        for host in reg.insecure:
            try:
                cidrs.append(str(ipaddress.ip_network(host, strict=False)))
                continue
            except ValueError:
                pass
            indexes[host] = {"Name": host, "Mirrors": list(reg.mirrors.get(host, [])),
                             "Secure": False, "Official": False}
        for host, mirrors in reg.mirrors.items():
            indexes.setdefault(host, {"Name": host, "Mirrors": list(mirrors), "Secure": True,
                                      "Official": False})
        doc: dict[str, Any] = {
            "InsecureRegistryCIDRs": cidrs,
            "IndexConfigs": indexes,
            "Mirrors": list(reg.mirrors.get(DEFAULT_DOMAIN, [])),
        }
        if _older(req, "1.47"):
            doc = {"AllowNondistributableArtifactsCIDRs": None,
                   "AllowNondistributableArtifactsHostnames": None, **doc}
        return doc

    def _warnings(self, features: hostinfo.CgroupFeatures, cgroup_version: str) -> list[str]:
        warnings = []
        checks = [
            (features.memory_limit, "WARNING: No memory limit support"),
            (features.swap_limit, "WARNING: No swap limit support"),
            (features.cpu_cfs, "WARNING: No cpu cfs quota support"),
            (features.cpu_cfs, "WARNING: No cpu cfs period support"),
            (features.cpu_shares, "WARNING: No cpu shares support"),
            (features.cpuset, "WARNING: No cpuset support"),
        ]
        if cgroup_version == "1":
            checks.append((features.oom_kill_disable, "WARNING: No oom kill disable support"))
        warnings += [text for ok, text in checks if not ok]
        cfg = self.config
        for host in (*cfg.effective_hosts(), *self.docker_hosts):
            if host.startswith("tcp://"):
                address = host[len("tcp://"):]
                if not cfg.tls_cert:
                    warnings.append(f"WARNING: API is accessible on http://{address} without "
                                    "encryption: anyone who reaches it is root on this host")
                elif not cfg.tls_verify:
                    warnings.append(f"WARNING: API is accessible on https://{address} without "
                                    "TLS client verification")
        return warnings

    # -- disk usage ----------------------------------------------------------------------

    async def disk_usage(self, req: Request) -> Response:
        """docker's DiskUsage (the API <= 1.51 shape: the objects, with their sizes)."""
        wanted = set(_DF_TYPES.values())
        if not _older(req, "1.42") and "type" in req.query:
            wanted = set()
            for value in req.query["type"]:
                if value not in _DF_TYPES:
                    raise InvalidArgument(f"unknown object type: {value}")
                wanted.add(_DF_TYPES[value])
        usage = await self.core.system.disk_usage()
        doc: dict[str, Any] = {}
        if "Images" in wanted:
            doc["LayersSize"] = usage.layers_size
            doc["Images"] = _image_usage(usage, req)
        if "Containers" in wanted:
            doc["Containers"] = _container_usage(
                usage, await asyncio.to_thread(self.core.networks.network_ids))
        if "Volumes" in wanted:
            doc["Volumes"] = _volume_usage(usage)
        builder_size = 0
        if "BuildCache" in wanted:
            entries = await self.core.builds.cache_entries()
            # Nothing holds an entry once its build is done: none is in use or shared.
            doc["BuildCache"] = [{
                "ID": e.key.removeprefix("sha256:")[:25],
                "Parents": None,
                "Type": "regular",
                "Description": e.description,
                "InUse": False,
                "Shared": False,
                "Size": e.size,
                "CreatedAt": _rfc3339(e.created_ns),
                "LastUsedAt": _rfc3339(e.last_used_ns),
                "UsageCount": 0,
            } for e in entries]
            builder_size = sum(e.size for e in entries)
        doc["BuilderSize"] = builder_size
        return json_response(doc)

    # -- events --------------------------------------------------------------------------

    async def events(self, req: Request) -> Response | None:
        """Past events from ``since`` and live ones until ``until`` (or until the client
        leaves), one JSON object per line."""
        since = params.timestamp(req, "since")
        until = params.timestamp(req, "until")
        if until is not None and since is not None and until < since:
            raise InvalidArgument(
                f"`since` time ({req.query_value('since')}) cannot be after `until` time "
                f"({req.query_value('until')})")
        if until is not None and since is None:
            since = 0  # docker replays history for --until alone too
        match = event_filter(params.filters(req))
        skip_image_create = _older(req, "1.46")
        stream = await req.stream(200, "application/json")
        try:
            async for event in self.core.events.subscribe(
                    since_ns=since, until_ns=until, match=match):
                if skip_image_create and event.type == "image" and event.action == "create":
                    continue
                await stream.write(dump_json(event_message(event)))
        except SubscriberTooSlow as exc:
            raise ResponseAborted(str(exc)) from None
        return None

    # -- auth ----------------------------------------------------------------------------

    async def auth(self, req: Request) -> Response:
        """Check credentials with a registry (the client keeps them; nothing is stored)."""
        data = await params.read_json(req, check_type=False, limit=64 * 1024)
        auth = params.RegistryAuth.from_json(data, "auth config")
        token = await self.core.images.login(auth.server_address, auth.credentials())
        body: dict[str, str] = {"Status": "Login Succeeded"}
        if token:
            body["IdentityToken"] = token
        return json_response(body)


def _image_usage(usage: DiskUsage, req: Request) -> list[Any]:
    out = []
    for image in usage.images:
        record = image.record
        item: dict[str, Any] = {
            "Containers": image.containers,
            "Created": _unix(record.created),
            "Id": record.id,
            "Labels": record.labels or None,
            "ParentId": "",
            "RepoDigests": record.repo_digests,
            "RepoTags": record.repo_tags,
            "SharedSize": image.shared_size,
            "Size": record.size,
        }
        if _older(req, "1.44"):
            item["VirtualSize"] = record.size
        out.append(item)
    return out


def _container_usage(usage: DiskUsage, network_ids: dict[str, str]) -> list[Any]:
    # The same summaries as GET /containers/json, with their writable layer sizes.
    return [container_summary(row, network_ids) for row in usage.containers]


def _volume_usage(usage: DiskUsage) -> list[Any]:
    return [{
        "CreatedAt": _rfc3339(view.volume.created_ns),
        "Driver": view.volume.driver,
        "Labels": view.volume.labels or None,
        "Mountpoint": view.volume.mountpoint,
        "Name": view.volume.name,
        "Options": view.volume.options or None,
        "Scope": "local",
        "UsageData": {"Size": view.size, "RefCount": view.ref_count},
    } for view in usage.volumes]


def event_message(event: Event) -> dict[str, Any]:
    """docker's events.Message for an engine event (with the legacy status/id/from fields
    container and image events carry up to API 1.51)."""
    message: dict[str, Any] = {}
    if event.type == "container":
        message = {"status": event.action, "id": event.id,
                   "from": event.attributes.get("image", "")}
        if not message["from"]:
            del message["from"]
    elif event.type == "image":
        message = {"status": event.action, "id": event.id}
    message.update({
        "Type": event.type,
        "Action": event.action,
        "Actor": {"ID": event.id, "Attributes": dict(event.attributes)},
        "scope": "local",
        "time": event.time_ns // 1_000_000_000,
        "timeNano": event.time_ns,
    })
    return message


_FUZZY_ACTIONS = ("health_status", "exec_create", "exec_start")


def event_filter(filters: dict[str, list[str]]) -> Any:
    """docker's events filter (daemon/events/filter.go semantics) as a predicate."""
    def exact(key: str, value: str) -> bool:
        values = filters.get(key)
        return not values or value in values

    def fuzzy(key: str, value: str) -> bool:
        values = filters.get(key)
        return not values or any(value.startswith(v) for v in values)

    events = filters.get("event") or []
    fuzzy_event = any(v in _FUZZY_ACTIONS for v in events)

    def match(event: Event) -> bool:
        attrs = event.attributes
        if events and not (fuzzy("event", event.action) if fuzzy_event
                           else event.action in events):
            return False
        if not exact("type", event.type) or not exact("scope", "local"):
            return False
        name = attrs.get("name", "")
        for kind in ("daemon", "container", "plugin", "volume", "network", "node", "service",
                     "secret", "config"):
            if filters.get(kind) and event.type != kind:
                return False
            if filters.get(kind) and not (fuzzy(kind, event.id) or fuzzy(kind, name)):
                return False
        if filters.get("image"):
            image = attrs.get("name" if event.type == "image" else "image", "")
            candidates = {event.id, image, _strip_tag(event.id), _strip_tag(image)}
            if not candidates & set(filters["image"]):
                return False
        for item in filters.get("label") or []:
            key, sep, value = item.partition("=")
            if key not in attrs or (sep and attrs[key] != value):
                return False
        return True

    return match


def _strip_tag(name: str) -> str:
    """``busybox:latest`` -> ``busybox`` (docker's FamiliarName); anything else as it is."""
    try:
        return parse_reference(name, default_tag=False).familiar_repository if name else name
    except ServinError:
        return name


def _open_fds() -> int:
    try:
        return len(os.listdir("/proc/self/fd"))
    except OSError:
        return 0


def _proxy_env(name: str) -> str:
    """A proxy setting from the environment with its password masked, as dockerd shows it."""
    value = os.environ.get(name) or os.environ.get(name.lower(), "")
    if "@" in value and "://" in value:
        scheme, rest = value.split("://", 1)
        userinfo, host = rest.rsplit("@", 1)
        user = userinfo.split(":", 1)[0]
        return f"{scheme}://{user}:xxxxx@{host}" if ":" in userinfo else value
    return value


_FRACTION = re.compile(r"\.\d+")


def _unix(created: str) -> int:
    """Seconds since the epoch of an image config's RFC 3339 ``created`` (0 when unset)."""
    try:
        return int(datetime.fromisoformat(
            _FRACTION.sub("", created, count=1).replace("Z", "+00:00")).timestamp())
    except ValueError:
        return 0


def _rfc3339(ns: int) -> str:
    return datetime.fromtimestamp(ns / 1e9).astimezone().isoformat(timespec="seconds")
