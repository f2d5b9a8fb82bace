"""servin.v1.Containers: translates requests onto the engine's ContainerService."""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import AsyncIterator

import grpc

from servin.api.servin.v1 import common_pb2, containers_pb2, containers_pb2_grpc
from servin.engine.containers.detachkeys import parse_detach_keys
from servin.engine.containers.model import EXITED, RUNNING, Container
from servin.engine.engine import Engine
from servin.engine.images.compression import archive_reader
from servin.engine.runtime.monitor.client import MonitorClient
from servin.engine.server.grpc.attach import relay
from servin.engine.server.grpc.filters import (
    PRUNE_FILTERS,
    filter_map,
    label_matches,
    parse_bool,
    prune_predicate,
)
from servin.engine.server.grpc.stats import stats_stream, top_response
from servin.engine.server.grpc.streams import AsyncReader, split_upload, stream_from_thread
from servin.engine.server.grpc.timestamps import from_ns, to_ns
from servin.errors import InvalidArgument, ServinError
from servin.humanize import ago, human_duration

_LIST_FILTERS = {
    "id",
    "name",
    "label",
    "status",
    "exited",
    "ancestor",
    "before",
    "since",
    "volume",
    "network",
    "health",
    "is-task",
}

log = logging.getLogger(__name__)


def status_text(c: Container, now: float | None = None) -> str:
    """docker's human status: "Up 2 minutes", "Exited (0) 3 seconds ago", "Created"."""
    s = c.state
    now = now or time.time()
    if s.status == RUNNING:
        health = {"starting": " (health: starting)", "healthy": " (healthy)",
                  "unhealthy": " (unhealthy)"}.get(s.health_status, "")
        return f"Up {human_duration(now - s.started_at_ns / 1e9)}{health}"
    if s.status == "paused":
        return f"Up {human_duration(now - s.started_at_ns / 1e9)} (Paused)"
    if s.status == EXITED:
        if not s.finished_at_ns:
            return f"Exited ({s.exit_code})"
        return f"Exited ({s.exit_code}) {ago(s.finished_at_ns / 1e9, now)}"
    return s.status.capitalize()


def command_text(c: Container) -> str:
    """The command docker shows in ``ps``: entrypoint + cmd as given."""
    return " ".join([*c.spec.entrypoint, *c.spec.cmd]) if (c.spec.cmd or c.spec.entrypoint) else ""


def summary(c: Container, command: str = "",
            networks: list[str] | None = None) -> containers_pb2.ContainerSummary:
    """The list view of a container (``networks``: the names of the networks it is on)."""
    s = c.state
    return containers_pb2.ContainerSummary(
        id=c.id,
        name=c.name,
        image=c.image_ref,
        image_id=c.image_id,
        command=command or command_text(c),
        created=from_ns(c.created_ns),
        state=s.status,
        status=status_text(c),
        labels=dict(c.spec.labels),
        exit_code=s.exit_code,
        started_at=from_ns(s.started_at_ns),
        finished_at=from_ns(s.finished_at_ns),
        restart_count=s.restart_count,
        health=s.health_status,
        mounts=list(c.spec.mounts),
        pod_id=c.spec.pod_id,
        runtime=c.runtime,
        networks=networks if networks else ([c.spec.network_mode] if c.spec.network_mode else []),
        ports=port_mappings(c),
    )


def port_mappings(c: Container) -> list[containers_pb2.PortMapping]:
    """The host ports a running container publishes."""
    return [
        containers_pb2.PortMapping(container_port=p["container_port"], protocol=p["protocol"],
                                   host_ip=p["host_ip"] or "0.0.0.0", host_port=p["host_port"])
        for p in c.state.ports
    ]


def _matches(c: Container, filters: dict[str, list[str]],
             networks: list[str] | None = None) -> bool:
    if "id" in filters and not any(c.id.startswith(v) for v in filters["id"]):
        return False
    if "name" in filters and not any(v.removeprefix("/") in c.name for v in filters["name"]):
        return False
    if "label" in filters and not label_matches(dict(c.spec.labels), filters["label"]):
        return False
    if "status" in filters and c.state.status not in filters["status"]:
        return False
    if "exited" in filters and (
        c.state.status != EXITED or str(c.state.exit_code) not in filters["exited"]
    ):
        return False
    if "ancestor" in filters and not any(
        v in (c.image_ref, c.image_id) or c.image_id.removeprefix("sha256:").startswith(v)
        for v in filters["ancestor"]
    ):
        return False
    if "health" in filters and (c.state.health_status or "none") not in filters["health"]:
        return False
    if "volume" in filters and not any(
        v in (m.name, m.source, m.target) for m in c.spec.mounts for v in filters["volume"]
    ):
        return False
    # before/since were resolved to creation times by List: strictly older/newer than those.
    if "before" in filters and not all(c.created_ns < int(ns) for ns in filters["before"]):
        return False
    if "since" in filters and not all(c.created_ns > int(ns) for ns in filters["since"]):
        return False
    # No swarm here: no container is a task.
    if "is-task" in filters and parse_bool("is-task", filters["is-task"]):
        return False
    names = set(networks or []) | {c.spec.network_mode}
    return "network" not in filters or bool(names & set(filters["network"]))


class ContainersServicer(containers_pb2_grpc.ContainersServicer):
    """The Containers service of servin.v1."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        self.containers = engine.containers

    async def Create(
        self, request: containers_pb2.CreateContainerRequest, context: grpc.aio.ServicerContext
    ) -> containers_pb2.CreateContainerResponse:
        c = await self.containers.create(request.name, request.spec)
        return containers_pb2.CreateContainerResponse(
            id=c.id, warnings=self.engine.networks.spec_warnings(c.spec))

    async def Start(
        self, request: containers_pb2.StartContainerRequest, context: grpc.aio.ServicerContext
    ) -> containers_pb2.StartContainerResponse:
        await self.containers.start(request.id)
        return containers_pb2.StartContainerResponse()

    async def Stop(
        self, request: containers_pb2.StopContainerRequest, context: grpc.aio.ServicerContext
    ) -> containers_pb2.StopContainerResponse:
        await self.containers.stop(request.id, request.timeout, request.signal)
        return containers_pb2.StopContainerResponse()

    async def Restart(
        self, request: containers_pb2.RestartContainerRequest, context: grpc.aio.ServicerContext
    ) -> containers_pb2.RestartContainerResponse:
        await self.containers.restart(request.id, request.timeout, request.signal)
        return containers_pb2.RestartContainerResponse()

    async def Kill(
        self, request: containers_pb2.KillContainerRequest, context: grpc.aio.ServicerContext
    ) -> containers_pb2.KillContainerResponse:
        await self.containers.kill(request.id, request.signal or "KILL")
        return containers_pb2.KillContainerResponse()

    async def Remove(
        self, request: containers_pb2.RemoveContainerRequest, context: grpc.aio.ServicerContext
    ) -> containers_pb2.RemoveContainerResponse:
        await self.containers.remove(request.id, force=request.force, volumes=request.volumes)
        return containers_pb2.RemoveContainerResponse()

    async def List(
        self, request: containers_pb2.ListContainersRequest, context: grpc.aio.ServicerContext
    ) -> containers_pb2.ListContainersResponse:
        filters = filter_map(request.filters, _LIST_FILTERS)
        for key in ("before", "since"):  # container names/IDs -> their creation times
            if key in filters:
                filters[key] = [
                    str((await self.containers.resolve(v)).created_ns) for v in filters[key]
                ]
        found = await self.containers.list()
        if not request.all and "status" not in filters and "exited" not in filters:
            found = [c for c in found if c.state.status in (RUNNING, "paused", "restarting")]
        on = await asyncio.to_thread(self.engine.networks.network_names)
        found = [c for c in found if _matches(c, filters, on.get(c.id))]
        if request.limit > 0:
            found = found[: request.limit]
        images: dict[str, list[str]] = {}
        out = []
        for c in found:
            command = command_text(c)
            if not command:
                if c.image_id not in images:
                    images[c.image_id] = await asyncio.to_thread(self._image_command, c)
                command = " ".join(images[c.image_id])
            out.append(summary(c, command, on.get(c.id)))
        if request.size:
            sizes = await asyncio.to_thread(self._sizes, found)
            for item, (rw, root) in zip(out, sizes, strict=True):
                item.size_rw, item.size_root_fs = rw, root
        return containers_pb2.ListContainersResponse(containers=out)

    async def Prune(
        self, request: containers_pb2.PruneContainersRequest, context: grpc.aio.ServicerContext
    ) -> containers_pb2.PruneContainersResponse:
        match = prune_predicate(filter_map(request.filters, PRUNE_FILTERS))
        stopped = [c for c in await self.containers.list()
                   if c.state.status not in (RUNNING, "paused", "restarting")
                   and match(c.created_ns, dict(c.spec.labels))]
        deleted, reclaimed = [], 0
        for c, (rw, _) in zip(stopped, await asyncio.to_thread(self._sizes, stopped),
                              strict=True):
            try:
                await self.containers.remove(c.id)
            except ServinError as exc:  # started or removed meanwhile: not ours to prune
                log.info("not pruned", extra={"container": c.id, "error": exc.message})
                continue
            deleted.append(c.id)
            reclaimed += rw
        return containers_pb2.PruneContainersResponse(deleted=deleted, space_reclaimed=reclaimed)

    def _sizes(self, found: list[Container]) -> list[tuple[int, int]]:
        """(writable layer bytes, writable + image bytes) of each container (ps -s)."""
        out = []
        for c in found:
            try:
                rw = self.engine.snapshots.usage(c.id)
            except ServinError:
                rw = 0
            try:
                image = self.engine.images.store.get(c.image_id).size
            except ServinError:
                image = 0
            out.append((rw, rw + image))
        return out

    def _image_command(self, c: Container) -> list[str]:
        try:
            config = self.engine.images.store.config(self.engine.images.store.get(c.image_id))
        except Exception:
            return []
        image = config.get("config") or {}
        return [*(image.get("Entrypoint") or []), *(image.get("Cmd") or [])]

    async def Inspect(
        self, request: containers_pb2.InspectContainerRequest, context: grpc.aio.ServicerContext
    ) -> containers_pb2.ContainerDetail:
        c = await self.containers.resolve(request.id)
        extra = await asyncio.to_thread(self.containers.inspect_extra, c)
        s = c.state
        config_args = extra["args"]
        size_rw, size_root_fs = (
            (await asyncio.to_thread(self._sizes, [c]))[0] if request.size else (0, 0)
        )
        return containers_pb2.ContainerDetail(
            size_rw=size_rw,
            size_root_fs=size_root_fs,
            id=c.id,
            name=c.name,
            created=from_ns(c.created_ns),
            image=c.image_ref,
            image_id=c.image_id,
            spec=c.spec,
            state=containers_pb2.ContainerStateDetail(
                status=s.status,
                running=s.status in (RUNNING, "paused"),
                paused=s.status == "paused",
                restarting=s.status == "restarting",
                oom_killed=s.oom_killed,
                dead=s.status == "dead",
                pid=s.pid,
                exit_code=s.exit_code,
                error=s.error,
                started_at=from_ns(s.started_at_ns),
                finished_at=from_ns(s.finished_at_ns),
                health=containers_pb2.HealthState(
                    status=s.health_status,
                    failing_streak=s.failing_streak,
                    log=[containers_pb2.HealthLog(start=from_ns(r["start_ns"]),
                                                  end=from_ns(r["end_ns"]),
                                                  exit_code=r["exit_code"], output=r["output"])
                         for r in s.health_log],
                ) if s.health_status else None,
            ),
            path=config_args[0] if config_args else "",
            args=config_args[1:],
            log_path=extra["log_path"],
            bundle_path=extra["bundle"],
            rootfs=extra["rootfs"],
            restart_count=s.restart_count,
            mounts=await asyncio.to_thread(self._mounts_detail, c),
            hostname_path=extra["etc"]["/etc/hostname"],
            hosts_path=extra["etc"]["/etc/hosts"],
            resolv_conf_path=extra["etc"]["/etc/resolv.conf"],
            pod_id=c.spec.pod_id,
            driver=self.engine.snapshots.driver,
            ports=port_mappings(c),
            networks=await asyncio.to_thread(self._attachments, c),
        )

    def _mounts_detail(self, c: Container) -> list[common_pb2.Mount]:
        """The container's mounts; a volume's source is where its data lives on the host."""
        out = []
        for m in c.spec.mounts:
            copy = common_pb2.Mount()
            copy.CopyFrom(m)
            if m.type == "volume" and m.name:
                found = self.engine.volumes.store.find(m.name)
                if found is not None:
                    copy.source = found.mountpoint
            out.append(copy)
        return out

    def _attachments(self, c: Container) -> list[containers_pb2.NetworkAttachment]:
        return [
            containers_pb2.NetworkAttachment(
                network=n.name, network_id=n.id, ip_address=ep.address if c.state.running else "",
                ip_prefix_len=n.prefixlen if c.state.running else 0,
                gateway=n.gateway if c.state.running else "", mac_address=ep.mac,
                aliases=ep.aliases,
            )
            for n, ep in self.engine.networks.networks_of(c)
        ]

    async def Pause(
        self, request: containers_pb2.PauseContainerRequest, context: grpc.aio.ServicerContext
    ) -> containers_pb2.PauseContainerResponse:
        await self.containers.pause(request.id)
        return containers_pb2.PauseContainerResponse()

    async def Unpause(
        self, request: containers_pb2.UnpauseContainerRequest, context: grpc.aio.ServicerContext
    ) -> containers_pb2.UnpauseContainerResponse:
        await self.containers.unpause(request.id)
        return containers_pb2.UnpauseContainerResponse()

    async def Update(
        self, request: containers_pb2.UpdateContainerRequest, context: grpc.aio.ServicerContext
    ) -> containers_pb2.UpdateContainerResponse:
        carrier = containers_pb2.ContainerSpec(resources=request.resources)
        policy = request.restart_policy if request.HasField("restart_policy") else None
        await self.containers.update(request.id, carrier, list(request.fields), policy)
        return containers_pb2.UpdateContainerResponse()

    async def Rename(
        self, request: containers_pb2.RenameContainerRequest, context: grpc.aio.ServicerContext
    ) -> containers_pb2.RenameContainerResponse:
        await self.containers.rename(request.id, request.new_name)
        return containers_pb2.RenameContainerResponse()

    async def Wait(
        self, request: containers_pb2.WaitContainerRequest, context: grpc.aio.ServicerContext
    ) -> containers_pb2.WaitContainerResponse:
        state = await self.containers.wait(request.id, request.condition)
        return containers_pb2.WaitContainerResponse(
            exit_code=state.exit_code, error=state.error, oom_killed=state.oom_killed
        )

    async def Logs(
        self, request: containers_pb2.ContainerLogsRequest, context: grpc.aio.ServicerContext
    ) -> AsyncIterator[containers_pb2.LogChunk]:
        async for chunk in self.containers.logs(
            request.id,
            follow=request.follow,
            tail=request.tail,
            since_ns=to_ns(request.since),
            until_ns=to_ns(request.until),
            stdout=request.stdout or not request.stderr,
            stderr=request.stderr or not request.stdout,
            timestamps=request.timestamps,
            details=request.details,
        ):
            yield containers_pb2.LogChunk(data=chunk.data, sizes=chunk.sizes,
                                          streams=chunk.streams, times=chunk.times,
                                          attrs=chunk.attrs)  # fmt: skip

    async def Stats(
        self, request: containers_pb2.StatsRequest, context: grpc.aio.ServicerContext
    ) -> AsyncIterator[containers_pb2.StatsBatch]:
        async for batch in stats_stream(self.engine, request):
            yield batch

    async def Top(
        self, request: containers_pb2.TopRequest, context: grpc.aio.ServicerContext
    ) -> containers_pb2.TopResponse:
        return await top_response(self.engine, request)

    async def Attach(
        self,
        request_iterator: AsyncIterator[containers_pb2.AttachInput],
        context: grpc.aio.ServicerContext,
    ) -> AsyncIterator[containers_pb2.AttachOutput]:
        first = await anext(aiter(request_iterator), None)
        if first is None:
            return
        c = await self.containers.resolve(first.id)
        keys = parse_detach_keys(first.detach_keys) if c.spec.tty else None
        default = not (first.stdin or first.stdout or first.stderr)  # none named: both outputs
        options = {
            "stdin": first.stdin,
            "stdout": first.stdout or default,
            "stderr": first.stderr or default,  # exactly the streams asked for (run -a stdout)
            "stdin_once": first.stdin,
        }
        if c.state.running:
            attachment = await self.containers.attach_running(c, options)
            yield containers_pb2.AttachOutput()  # registered
        else:
            future = self.containers.attach_on_start(c, options)
            try:
                yield containers_pb2.AttachOutput()  # registered: the client may start it now
                attachment = await future
            finally:
                future.cancel()

        monitor = MonitorClient(self.containers.paths(c.id).state_dir)
        if first.rows and first.cols:
            await self.containers.resize(c.id, first.rows, first.cols)

        async def resize(rows: int, cols: int) -> None:
            await self.containers.resize(c.id, rows, cols)

        async def detach() -> None:
            await monitor.detach(attachment)

        async for out in relay(attachment, request_iterator, stdin=first.stdin,
                               detach_keys=keys, resize=resize, detach=detach):
            yield out

    async def ExecCreate(
        self, request: containers_pb2.ExecCreateRequest, context: grpc.aio.ServicerContext
    ) -> containers_pb2.ExecCreateResponse:
        record = await self.engine.execs.create(
            request.container_id,
            list(request.cmd),
            env=list(request.env),
            user=request.user,
            working_dir=request.working_dir,
            tty=request.tty,
            attach_stdin=request.attach_stdin,
            attach_stdout=request.attach_stdout or not request.attach_stdin,
            attach_stderr=request.attach_stderr or not request.attach_stdin,
            privileged=request.privileged,
            detach_keys=request.detach_keys,
        )
        return containers_pb2.ExecCreateResponse(id=record.id)

    async def ExecStart(
        self,
        request_iterator: AsyncIterator[containers_pb2.ExecInput],
        context: grpc.aio.ServicerContext,
    ) -> AsyncIterator[containers_pb2.AttachOutput]:
        first = await anext(aiter(request_iterator), None)
        if first is None:
            return
        execs = self.engine.execs
        record = execs.get(first.exec_id)
        attachment = await execs.start(record.id, detach=first.detach, rows=first.rows,
                                       cols=first.cols)
        if attachment is None:
            return  # detached: it runs on; ExecInspect tells how it ends
        keys = parse_detach_keys(record.detach_keys) if record.tty else None
        monitor = MonitorClient(self.containers.paths(record.container_id).state_dir)
        want = {1: record.attach_stdout, 2: record.attach_stderr}

        async def resize(rows: int, cols: int) -> None:
            await execs.resize(record.id, rows, cols)

        async def detach() -> None:
            await monitor.detach(attachment)

        async for out in relay(attachment, request_iterator, stdin=record.attach_stdin,
                               detach_keys=keys, resize=resize, detach=detach):
            if out.detached:
                yield out
                return
            if want.get(out.stream, True):
                yield out
        code = await execs.wait(record.id)
        yield containers_pb2.AttachOutput(exited=True, exit_code=code)

    async def Resize(
        self, request: containers_pb2.ResizeRequest, context: grpc.aio.ServicerContext
    ) -> containers_pb2.ResizeResponse:
        await self.containers.resize(request.id, request.rows, request.cols)
        return containers_pb2.ResizeResponse()

    async def ExecResize(
        self, request: containers_pb2.ExecResizeRequest, context: grpc.aio.ServicerContext
    ) -> containers_pb2.ResizeResponse:
        await self.engine.execs.resize(request.exec_id, request.rows, request.cols)
        return containers_pb2.ResizeResponse()

    async def ExecInspect(
        self, request: containers_pb2.ExecInspectRequest, context: grpc.aio.ServicerContext
    ) -> containers_pb2.ExecDetail:
        record = self.engine.execs.get(request.exec_id)
        return containers_pb2.ExecDetail(
            id=record.id,
            container_id=record.container_id,
            running=record.running,
            exit_code=record.exit_code or 0,
            pid=record.pid,
            cmd=record.cmd,
            tty=record.tty,
        )

    # -- files -----------------------------------------------------------------------------

    async def Changes(
        self, request: containers_pb2.ChangesRequest, context: grpc.aio.ServicerContext
    ) -> containers_pb2.ChangesResponse:
        found = await self.engine.files.changes(request.id)
        return containers_pb2.ChangesResponse(
            changes=[containers_pb2.Change(path=path, kind=kind) for kind, path in found])

    async def Export(
        self, request: containers_pb2.ExportContainerRequest, context: grpc.aio.ServicerContext
    ) -> AsyncIterator[common_pb2.DataChunk]:
        files = self.engine.files
        async with files.access(request.id) as c:
            async for chunk in stream_from_thread(lambda out: files.files.export(c, out)):
                yield common_pb2.DataChunk(data=chunk)

    async def CopyFrom(
        self, request: containers_pb2.CopyFromRequest, context: grpc.aio.ServicerContext
    ) -> AsyncIterator[containers_pb2.CopyFromOutput]:
        files = self.engine.files
        async with files.access(request.id) as c:
            st = await asyncio.to_thread(files.files.stat, c, request.path, request.follow_link)
            yield containers_pb2.CopyFromOutput(stat=containers_pb2.PathStat(
                name=st.name, size=st.size, mode=st.mode, mtime=from_ns(st.mtime_ns),
                link_target=st.link_target))
            if request.stat_only:
                return
            async for chunk in stream_from_thread(
                    lambda out: files.files.copy_from(c, request.path, out,
                                                      request.follow_link)):
                yield containers_pb2.CopyFromOutput(data=chunk)

    async def CopyTo(
        self,
        request_iterator: AsyncIterator[containers_pb2.CopyToInput],
        context: grpc.aio.ServicerContext,
    ) -> containers_pb2.CopyToResponse:
        first, chunks = await split_upload(request_iterator)
        if first is None or not first.id or not first.path:
            raise InvalidArgument("copy: the first message must name the container and path")

        files = self.engine.files
        async with files.access(first.id) as c:
            reader = AsyncReader(chunks, asyncio.get_running_loop())

            def copy() -> None:  # sniffing the compression reads: in the worker thread
                files.files.copy_to(c, first.path, archive_reader(reader),
                                    preserve_owner=first.copy_uid_gid)

            await asyncio.to_thread(copy)
        return containers_pb2.CopyToResponse()

    async def Commit(
        self, request: containers_pb2.CommitContainerRequest, context: grpc.aio.ServicerContext
    ) -> containers_pb2.CommitContainerResponse:
        record = await self.engine.files.commit(
            request.id, request.reference, comment=request.comment, author=request.author,
            changes=list(request.changes), pause=request.pause)
        return containers_pb2.CommitContainerResponse(image_id=record.id)
