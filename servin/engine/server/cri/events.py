"""GetContainerEvents: the core's container events of CRI containers as the CRI's
ContainerEventResponse stream (created, started, stopped, deleted)."""

from __future__ import annotations

from collections.abc import AsyncIterator

from servin.api.cri.runtime.v1 import api_pb2
from servin.engine.events import Event, SubscriberTooSlow
from servin.engine.server.cri import common
from servin.engine.server.cri.base import Verbs
from servin.engine.server.cri.container_status import container_status
from servin.engine.server.grpc.rpc import Context
from servin.errors import NotFound, Unavailable

_TYPES = {
    "create": api_pb2.CONTAINER_CREATED_EVENT,
    "start": api_pb2.CONTAINER_STARTED_EVENT,
    "die": api_pb2.CONTAINER_STOPPED_EVENT,
    "destroy": api_pb2.CONTAINER_DELETED_EVENT,
}


def _wanted(event: Event) -> bool:
    return event.type == "container" and event.action in _TYPES


class EventVerbs(Verbs):
    """GetContainerEvents."""

    async def GetContainerEvents(self, request: api_pb2.GetEventsRequest,
                                 context: Context) -> AsyncIterator[api_pb2.ContainerEventResponse]:
        try:
            async for event in self.core.events.subscribe(match=_wanted):
                try:
                    c = await self.core.containers.get(event.id)
                except NotFound:
                    if event.action != "destroy":
                        continue
                    yield api_pb2.ContainerEventResponse(
                        container_id=event.id, container_event_type=_TYPES[event.action],
                        created_at=event.time_ns)
                    continue
                if c.host_config.annotations.get(common.KIND) != common.CONTAINER_KIND:
                    continue
                response = api_pb2.ContainerEventResponse(
                    container_id=c.id, container_event_type=_TYPES[event.action],
                    created_at=event.time_ns, containers_statuses=[container_status(c)])
                response.pod_sandbox_status.id = c.pod_id
                yield response
        except SubscriberTooSlow:
            raise Unavailable("the event stream fell too far behind; subscribe again") from None
