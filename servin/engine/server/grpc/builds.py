"""servin.v1 ``Images.Build`` and ``Images.PruneBuildCache``: translation onto the builder."""

from __future__ import annotations

from collections.abc import AsyncIterator

from servin.api.servin.v1 import images_pb2
from servin.engine.build import events
from servin.engine.build.options import BuildOptions, Limits, Secret
from servin.engine.engine import CoreAPI
from servin.engine.server.grpc.streams import split_upload
from servin.errors import InvalidArgument


def build_options(o: images_pb2.BuildOptions) -> BuildOptions:
    """The engine's options from the first message's."""
    r = o.resources
    limits = Limits(
        memory=r.memory, memory_swap=r.memory_swap, cpu_shares=r.cpu_shares,
        cpu_period=r.cpu_period, cpu_quota=r.cpu_quota, cpuset_cpus=r.cpuset_cpus,
        cpuset_mems=r.cpuset_mems, shm_size=o.shm_size,
        ulimits=tuple((u.name, u.soft, u.hard) for u in o.ulimits))
    return BuildOptions(
        dockerfile=o.dockerfile, dockerfile_path=o.dockerfile_path, tags=tuple(o.tags),
        build_args=tuple((kv.key, kv.value) for kv in o.build_args), target=o.target,
        no_cache=o.no_cache, pull=o.pull, cache_from=tuple(o.cache_from),
        labels=tuple((kv.key, kv.value) for kv in o.labels), platform=o.platform,
        network=o.network, extra_hosts=tuple(o.extra_hosts),
        secrets=tuple(Secret(s.id, s.data) for s in o.secrets), limits=limits,
        output=o.output, context_trimmed=o.context_trimmed,
        dockerignore=tuple(o.dockerignore))


def progress(event: events.BuildEvent) -> images_pb2.BuildProgress:
    """One engine event as a servin.v1 message."""
    P = images_pb2.BuildProgress
    if isinstance(event, events.StepStarted):
        return P(started=images_pb2.BuildStepStarted(
            vertex=event.vertex, stage=event.stage, index=event.index, count=event.count,
            number=event.number, total=event.total, instruction=event.instruction,
            keyword=event.keyword), vertex=event.vertex)
    if isinstance(event, events.StepRunning):
        return P(vertex=event.vertex, container_id=event.container_id)
    if isinstance(event, events.StepOutput):
        return P(vertex=event.vertex, data=event.data, stream=event.stream)
    if isinstance(event, events.StepDone):
        return P(done=images_pb2.BuildStepDone(
            vertex=event.vertex, cached=event.cached, image_id=event.image_id,
            seconds=event.seconds, container_id=event.container_id), vertex=event.vertex)
    if isinstance(event, events.StepFailed):
        return P(failed=images_pb2.BuildStepFailed(
            vertex=event.vertex, message=event.message, command=event.command,
            exit_code=event.exit_code or 0, has_exit_code=event.exit_code is not None),
            vertex=event.vertex)
    if isinstance(event, events.Message):
        return P(warning=event.text) if event.level == "warning" else P(message=event.text)
    if isinstance(event, events.ContextReceived):
        return P(context_size=event.bytes) if event.done else P(context_bytes=event.bytes)
    if isinstance(event, events.OutputData):
        return P(output_data=event.data)
    assert isinstance(event, events.BuildResult)
    return P(result=images_pb2.BuildResult(image_id=event.image_id, tags=event.tags,
                                           recorded=event.recorded))


async def build(core: CoreAPI, request_iterator: AsyncIterator[images_pb2.BuildInput]
                ) -> AsyncIterator[images_pb2.BuildProgress]:
    """The Build call: options from the first message, the context from the rest."""
    first, chunks = await split_upload(request_iterator)
    if first is None or not first.HasField("options"):
        raise InvalidArgument("build: the first message must carry the options")
    async for event in core.builds.build(build_options(first.options), chunks):
        yield progress(event)


async def prune(core: CoreAPI, request: images_pb2.PruneBuildCacheRequest
                ) -> images_pb2.PruneBuildCacheResponse:
    """Drop build cache entries."""
    if request.unused_for_ns < 0:
        raise InvalidArgument("unused_for_ns cannot be negative")
    report = await core.builds.prune_cache(request.unused_for_ns)
    return images_pb2.PruneBuildCacheResponse(entries=report.entries,
                                              space_reclaimed=report.reclaimed)
