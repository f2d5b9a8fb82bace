"""servin.v1.Containers: translates requests onto the core's container API."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator

from servin.api.servin.v1 import common_pb2, containers_pb2, containers_pb2_grpc
from servin.engine.containers.execs import ExecRecord
from servin.engine.containers.model import PAUSED, RESTARTING, RUNNING, Container
from servin.engine.containers.streams import AttachOptions, StreamInput, StreamSession
from servin.engine.containers.views import ContainerDetails, ContainerListing
from servin.engine.engine import CoreAPI
from servin.engine.semantics.inspect import container_document, to_json
from servin.engine.semantics.status import command_text, status_text
from servin.engine.server.grpc import convert
from servin.engine.server.grpc.rpc import Context
from servin.engine.server.grpc.stats import stats_stream, top_response
from servin.engine.server.grpc.streams import split_upload
from servin.engine.server.grpc.timestamps import from_ns, to_ns
from servin.engine.server.grpc.wirecache import WireCache
from servin.errors import InvalidArgument
from servin.protowire import framed


def port_mappings(c: Container) -> list[containers_pb2.PortMapping]:
    """The host ports a running container publishes."""
    return [
        containers_pb2.PortMapping(container_port=p.container_port, protocol=p.protocol,
                                   host_ip=p.host_ip or "0.0.0.0", host_port=p.host_port)
        for p in c.state.ports
    ]


def summary(row: ContainerListing, *, now: float | None = None,
            timeless: bool = False) -> containers_pb2.ContainerSummary:
    """The list view of a container (``timeless``: without ``status``, whose text changes
    with the clock, and the sizes)."""
    c = row.container
    s = c.state
    out = containers_pb2.ContainerSummary(
        id=c.id,
        name=c.name,
        image=c.image_ref,
        image_id=c.image_id,
        command=command_text(row.command),
        created=from_ns(c.created_ns),
        state=s.status,
        status="" if timeless else status_text(c, now),
        labels=c.config.labels,
        exit_code=s.exit_code,
        started_at=from_ns(s.started_at_ns),
        finished_at=from_ns(s.finished_at_ns),
        restart_count=s.restart_count,
        health=s.health_status,
        mounts=[convert.mount_to_wire(m) for m in c.mounts],
        pod_id=c.pod_id,
        runtime=c.runtime,
        networks=row.networks,
        ports=port_mappings(c),
    )
    if row.size_rw is not None and not timeless:
        out.size_rw = row.size_rw
        out.size_root_fs = row.size_root_fs or 0
    return out


def _timeless_summary(row: ContainerListing) -> bytes:
    return summary(row, timeless=True).SerializeToString()


def detail(d: ContainerDetails, size: bool) -> containers_pb2.ContainerDetail:
    """The inspect view of a container, with docker's document."""
    c = d.container
    s = c.state
    return containers_pb2.ContainerDetail(
        size_rw=d.size_rw or 0,
        size_root_fs=d.size_root_fs or 0,
        id=c.id,
        name=c.name,
        created=from_ns(c.created_ns),
        image=c.image_ref,
        image_id=c.image_id,
        spec=convert.container_spec(c),
        state=containers_pb2.ContainerStateDetail(
            status=s.status,
            running=s.status in (RUNNING, PAUSED),
            paused=s.status == PAUSED,
            restarting=s.status == RESTARTING,
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
                log=[containers_pb2.HealthLog(start=from_ns(r.start_ns), end=from_ns(r.end_ns),
                                              exit_code=r.exit_code, output=r.output)
                     for r in s.health_log],
            ) if s.health_status else None,
        ),
        path=d.path,
        args=d.args,
        log_path=str(d.paths.log_path),
        bundle_path=str(d.paths.dir),
        rootfs=str(d.paths.rootfs),
        restart_count=s.restart_count,
        mounts=[convert.mount_to_wire(m) for m in d.mounts],
        hostname_path=str(d.paths.etc_files["/etc/hostname"]),
        hosts_path=str(d.paths.etc_files["/etc/hosts"]),
        resolv_conf_path=str(d.paths.etc_files["/etc/resolv.conf"]),
        pod_id=c.pod_id,
        exec_ids=d.exec_ids,
        driver=d.driver,
        ports=port_mappings(c),
        networks=[
            containers_pb2.NetworkAttachment(
                network=a.network.name, network_id=a.network.id,
                ip_address=a.endpoint.address if a.active else "",
                ip_prefix_len=a.network.prefixlen if a.active and a.network.subnet else 0,
                gateway=a.network.gateway if a.active else "",
                mac_address=a.endpoint.mac, aliases=a.endpoint.aliases,
            )
            for a in d.networks
        ],
        document=to_json(container_document(d, size=size)),
    )


_Input = containers_pb2.AttachInput | containers_pb2.ExecInput


async def _stream_inputs(messages: AsyncIterator[_Input],
                         initial: _Input | None) -> AsyncIterator[StreamInput]:
    if initial is not None and initial.rows and initial.cols:
        yield StreamInput(rows=initial.rows, cols=initial.cols)
    async for msg in messages:
        yield StreamInput(data=msg.data, rows=msg.rows, cols=msg.cols,
                          close_stdin=msg.close_stdin)


async def _relay(session: StreamSession, messages: AsyncIterator[_Input],
                 initial: _Input | None = None) -> AsyncIterator[containers_pb2.AttachOutput]:
    async for out in session.relay(_stream_inputs(messages, initial)):
        yield containers_pb2.AttachOutput(stream=out.stream, data=out.data,
                                          detached=out.detached)


class ContainersServicer(containers_pb2_grpc.ContainersServicer):
    """The Containers service of servin.v1."""

    def __init__(self, core: CoreAPI) -> None:
        self.core = core
        self.containers = core.containers
        self._listed: WireCache[ContainerListing] = WireCache(_timeless_summary)

    async def Create(
        self, request: containers_pb2.CreateContainerRequest, context: Context
    ) -> containers_pb2.CreateContainerResponse:
        created = await self.containers.create(
            convert.create_request(request.name, request.spec))
        return containers_pb2.CreateContainerResponse(id=created.container.id,
                                                      warnings=created.warnings)

    async def Start(
        self, request: containers_pb2.StartContainerRequest, context: Context
    ) -> containers_pb2.StartContainerResponse:
        await self.containers.start(request.id)
        return containers_pb2.StartContainerResponse()

    async def Stop(
        self, request: containers_pb2.StopContainerRequest, context: Context
    ) -> containers_pb2.StopContainerResponse:
        timeout = request.timeout if request.timeout >= 0 else None
        await self.containers.stop(request.id, timeout, request.signal)
        return containers_pb2.StopContainerResponse()

    async def Restart(
        self, request: containers_pb2.RestartContainerRequest, context: Context
    ) -> containers_pb2.RestartContainerResponse:
        await self.containers.restart(request.id,
                                      request.timeout if request.timeout >= 0 else None,
                                      request.signal)
        return containers_pb2.RestartContainerResponse()

    async def Kill(
        self, request: containers_pb2.KillContainerRequest, context: Context
    ) -> containers_pb2.KillContainerResponse:
        await self.containers.kill(request.id, request.signal or "KILL")
        return containers_pb2.KillContainerResponse()

    async def Remove(
        self, request: containers_pb2.RemoveContainerRequest, context: Context
    ) -> containers_pb2.RemoveContainerResponse:
        await self.containers.remove(request.id, force=request.force, volumes=request.volumes)
        return containers_pb2.RemoveContainerResponse()

    async def List(
        self, request: containers_pb2.ListContainersRequest, context: Context
    ) -> bytes:
        """The encoded ListContainersResponse (registered with a passthrough serializer):
        each container's message, but for its status text, comes from a cache kept per view
        version (and command and networks, which the version does not cover)."""
        rows = await self.containers.list(all=request.all, filters=convert.filters(
            list(request.filters)), limit=request.limit, size=request.size)
        now = time.time()
        if request.size:  # sizes are measured on every call: nothing to keep
            return containers_pb2.ListContainersResponse(
                containers=[summary(r, now=now) for r in rows]).SerializeToString()
        out = []
        for r in rows:
            key = (r.version, tuple(r.command), tuple(r.networks))
            timeless = self._listed.get(r.container.id, key, r)
            text = status_text(r.container, now)
            # ContainerSummary.status is field 8; the response's containers field 1.
            out.append(framed(1, timeless + framed(8, text.encode()) if text else timeless))
        self._listed.prune(e.container.id for e in self.containers.entries())
        return b"".join(out)

    async def Inspect(
        self, request: containers_pb2.InspectContainerRequest, context: Context
    ) -> containers_pb2.ContainerDetail:
        details = await self.containers.inspect(request.id, size=request.size)
        return await asyncio.to_thread(detail, details, request.size)

    async def Pause(
        self, request: containers_pb2.PauseContainerRequest, context: Context
    ) -> containers_pb2.PauseContainerResponse:
        await self.containers.pause(request.id)
        return containers_pb2.PauseContainerResponse()

    async def Unpause(
        self, request: containers_pb2.UnpauseContainerRequest, context: Context
    ) -> containers_pb2.UnpauseContainerResponse:
        await self.containers.unpause(request.id)
        return containers_pb2.UnpauseContainerResponse()

    async def Update(
        self, request: containers_pb2.UpdateContainerRequest, context: Context
    ) -> containers_pb2.UpdateContainerResponse:
        policy = (convert.restart_policy_from_wire(request.restart_policy)
                  if request.HasField("restart_policy") else None)
        await self.containers.update(request.id, convert.resources_from_wire(request.resources),
                                     list(request.fields), policy)
        return containers_pb2.UpdateContainerResponse()

    async def Rename(
        self, request: containers_pb2.RenameContainerRequest, context: Context
    ) -> containers_pb2.RenameContainerResponse:
        await self.containers.rename(request.id, request.new_name)
        return containers_pb2.RenameContainerResponse()

    async def Prune(
        self, request: containers_pb2.PruneContainersRequest, context: Context
    ) -> containers_pb2.PruneContainersResponse:
        deleted, reclaimed = await self.containers.prune(
            convert.filters(list(request.filters)))
        return containers_pb2.PruneContainersResponse(deleted=deleted,
                                                      space_reclaimed=reclaimed)

    async def Wait(
        self, request: containers_pb2.WaitContainerRequest, context: Context
    ) -> containers_pb2.WaitContainerResponse:
        state = await self.containers.wait(request.id, request.condition)
        return containers_pb2.WaitContainerResponse(
            exit_code=state.exit_code, error=state.error, oom_killed=state.oom_killed
        )

    async def Logs(
        self, request: containers_pb2.ContainerLogsRequest, context: Context
    ) -> AsyncIterator[containers_pb2.LogChunk]:
        async for chunk in self.core.logs.read(
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
        self, request: containers_pb2.StatsRequest, context: Context
    ) -> AsyncIterator[containers_pb2.StatsBatch]:
        async for batch in stats_stream(self.core, request):
            yield batch

    async def Top(
        self, request: containers_pb2.TopRequest, context: Context
    ) -> containers_pb2.TopResponse:
        return await top_response(self.core, request)

    async def Attach(
        self,
        request_iterator: AsyncIterator[containers_pb2.AttachInput],
        context: Context,
    ) -> AsyncIterator[containers_pb2.AttachOutput]:
        first = await anext(aiter(request_iterator), None)
        if first is None:
            return
        session = await self.core.attach.attach(first.id, AttachOptions(
            stdin=first.stdin, stdout=first.stdout, stderr=first.stderr,
            detach_keys=first.detach_keys))
        try:
            yield containers_pb2.AttachOutput()  # registered: the client may start it now
        except BaseException:
            await session.close()
            raise
        # The first message's terminal size applies once the process has its terminal.
        async for out in _relay(session, request_iterator, initial=first):
            yield out

    async def ExecCreate(
        self, request: containers_pb2.ExecCreateRequest, context: Context
    ) -> containers_pb2.ExecCreateResponse:
        record = await self._exec_create(request)
        return containers_pb2.ExecCreateResponse(id=record.id)

    async def _exec_create(self, request: containers_pb2.ExecCreateRequest) -> ExecRecord:
        return await self.core.execs.create(
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

    async def ExecStart(
        self,
        request_iterator: AsyncIterator[containers_pb2.ExecInput],
        context: Context,
    ) -> AsyncIterator[containers_pb2.AttachOutput]:
        first = await anext(aiter(request_iterator), None)
        if first is None:
            return
        exec_id = first.exec_id
        if first.HasField("create"):  # create and start in one round trip
            if exec_id:
                raise InvalidArgument("ExecStart takes an exec_id or a create request, not both")
            exec_id = (await self._exec_create(first.create)).id
        session = await self.core.execs.start(exec_id, detach=first.detach,
                                              rows=first.rows, cols=first.cols)
        if session is None:
            return  # detached: it runs on; ExecInspect tells how it ends
        async for out in _relay(session, request_iterator):
            yield out
            if out.detached:
                return
        yield containers_pb2.AttachOutput(exited=True, exit_code=await session.exit_code())

    async def Resize(
        self, request: containers_pb2.ResizeRequest, context: Context
    ) -> containers_pb2.ResizeResponse:
        await self.core.attach.resize(request.id, request.rows, request.cols)
        return containers_pb2.ResizeResponse()

    async def ExecResize(
        self, request: containers_pb2.ExecResizeRequest, context: Context
    ) -> containers_pb2.ResizeResponse:
        await self.core.execs.resize(request.exec_id, request.rows, request.cols)
        return containers_pb2.ResizeResponse()

    async def ExecInspect(
        self, request: containers_pb2.ExecInspectRequest, context: Context
    ) -> containers_pb2.ExecDetail:
        record = await self.core.execs.inspect(request.exec_id)
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
        self, request: containers_pb2.ChangesRequest, context: Context
    ) -> containers_pb2.ChangesResponse:
        found = await self.core.files.changes(request.id)
        return containers_pb2.ChangesResponse(
            changes=[containers_pb2.Change(path=path, kind=kind) for kind, path in found])

    async def Export(
        self, request: containers_pb2.ExportContainerRequest, context: Context
    ) -> AsyncIterator[common_pb2.DataChunk]:
        async for chunk in self.core.files.export(request.id):
            yield common_pb2.DataChunk(data=chunk)

    async def CopyFrom(
        self, request: containers_pb2.CopyFromRequest, context: Context
    ) -> AsyncIterator[containers_pb2.CopyFromOutput]:
        stream = self.core.files.copy_from(request.id, request.path, follow=request.follow_link)
        try:
            async for item in stream:
                if isinstance(item, bytes):
                    yield containers_pb2.CopyFromOutput(data=item)
                    continue
                yield containers_pb2.CopyFromOutput(stat=containers_pb2.PathStat(
                    name=item.name, size=item.size, mode=item.mode,
                    mtime=from_ns(item.mtime_ns), link_target=item.link_target))
                if request.stat_only:
                    return
        finally:
            await stream.aclose()

    async def CopyTo(
        self,
        request_iterator: AsyncIterator[containers_pb2.CopyToInput],
        context: Context,
    ) -> containers_pb2.CopyToResponse:
        first, chunks = await split_upload(request_iterator)
        if first is None or not first.id or not first.path:
            raise InvalidArgument("copy: the first message must name the container and path")
        await self.core.files.copy_to(first.id, first.path, chunks,
                                      preserve_owner=first.copy_uid_gid)
        return containers_pb2.CopyToResponse()

    async def Commit(
        self, request: containers_pb2.CommitContainerRequest, context: Context
    ) -> containers_pb2.CommitContainerResponse:
        record = await self.core.files.commit(
            request.id, request.reference, comment=request.comment, author=request.author,
            changes=list(request.changes), pause=request.pause)
        return containers_pb2.CommitContainerResponse(image_id=record.id)
