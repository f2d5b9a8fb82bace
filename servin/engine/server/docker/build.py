"""Docker API ``POST /build`` (the legacy builder's protocol, which the docker CLI speaks when
``_ping`` says ``Builder-Version: 1``) and ``POST /build/prune``, over the core's
``BuildService``.

The body is the context as one tar stream (compressed or not); the query carries docker's
``build`` flags. The answer is a JSON message stream as the classic builder writes it:
``Step N/M : INSTRUCTION``, `` ---> Running in ID``, the RUN output, `` ---> Using cache``,
`` ---> ID`` per step, ``{"aux": {"ID": ...}}`` and ``Successfully built`` / ``tagged``;
a failing step ends it with docker's ``errorDetail`` (with the exit code).
"""

from __future__ import annotations

import json
from collections.abc import AsyncGenerator
from typing import Any, cast

from servin.engine.build import events
from servin.engine.build.options import BuildOptions, Limits
from servin.engine.engine import CoreAPI
from servin.engine.server.docker import params
from servin.engine.server.docker.http import Request, Response
from servin.engine.server.docker.responses import json_response
from servin.engine.server.docker.router import Router
from servin.engine.server.docker.streams import JSONMessages
from servin.errors import InvalidArgument, ServinError
from servin.units import parse_duration_ns


def _json_query(req: Request, key: str, what: str) -> Any:
    text = req.query_value(key)
    if not text:
        return None
    try:
        return json.loads(text)
    except ValueError:
        raise InvalidArgument(f"invalid {what} ({key}): not JSON") from None


def _string_map(req: Request, key: str, what: str) -> tuple[tuple[str, str], ...]:
    """``buildargs``/``labels``: a JSON object of strings (a null value: docker's "take it
    from the environment", which a daemon does not have: skipped)."""
    value = _json_query(req, key, what)
    if value is None:
        return ()
    if not isinstance(value, dict):
        raise InvalidArgument(f"invalid {what} ({key}): expected a JSON object")
    out = []
    for k, v in value.items():
        if v is None:
            continue
        if not isinstance(v, str):
            raise InvalidArgument(f"invalid {what} ({key}): {k} must be a string")
        out.append((k, v))
    return tuple(out)


def _int(req: Request, key: str) -> int:
    value = params.int_value(req, key, 0)
    if value < 0 and key != "memswap":
        raise InvalidArgument(f"invalid value for {key!r}: {value} is negative")
    return value


def build_options(req: Request) -> BuildOptions:
    """The engine's options from ``POST /build``'s query."""
    if req.query_value("remote"):
        raise InvalidArgument("building from a remote context (remote=) is not supported: "
                              "send the context in the body")
    if params.bool_value(req, "squash"):
        raise InvalidArgument("squash is not supported")
    outputs = _json_query(req, "outputs", "outputs")
    if outputs:
        raise InvalidArgument("build outputs are not supported by the legacy builder")
    cache_from = _json_query(req, "cachefrom", "cache sources") or []
    if not isinstance(cache_from, list) or not all(isinstance(c, str) for c in cache_from):
        raise InvalidArgument("invalid cache sources (cachefrom): expected a list of names")
    hosts = [h for value in req.query.get("extrahosts", []) for h in value.split(",") if h]
    network = req.query_value("networkmode")
    limits = Limits(
        memory=_int(req, "memory"), memory_swap=_int(req, "memswap"),
        cpu_shares=_int(req, "cpushares"), cpu_period=_int(req, "cpuperiod"),
        cpu_quota=_int(req, "cpuquota"), cpuset_cpus=req.query_value("cpusetcpus"),
        cpuset_mems=req.query_value("cpusetmems"), shm_size=_int(req, "shmsize"),
        ulimits=_ulimits(req))
    return BuildOptions(
        dockerfile_path=req.query_value("dockerfile"),
        tags=tuple(t for t in req.query.get("t", []) if t),
        build_args=_string_map(req, "buildargs", "build arguments"),
        target=req.query_value("target"),
        no_cache=params.bool_value(req, "nocache"),
        pull=params.bool_value(req, "pull"),
        cache_from=tuple(cache_from),
        labels=_string_map(req, "labels", "labels"),
        platform=req.query_value("platform"),
        network="default" if network in ("", "default", "bridge") else network,
        extra_hosts=tuple(hosts),
        limits=limits,
    )


def _ulimits(req: Request) -> tuple[tuple[str, int, int], ...]:
    value = _json_query(req, "ulimits", "ulimits")
    if not value:
        return ()
    if not isinstance(value, list):
        raise InvalidArgument("invalid ulimits: expected a list")
    out = []
    for u in value:
        if not isinstance(u, dict) or not isinstance(u.get("Name"), str):
            raise InvalidArgument("invalid ulimits: each needs a Name")
        soft, hard = u.get("Soft", 0), u.get("Hard", 0)
        if not isinstance(soft, int) or not isinstance(hard, int):
            raise InvalidArgument("invalid ulimits: Soft and Hard must be integers")
        out.append((u["Name"], soft, hard))
    return tuple(out)


def _short(image_id: str) -> str:
    return image_id.removeprefix("sha256:")[:12]


class _Renderer:
    """The classic builder's messages for the engine's build events."""

    def __init__(self, out: JSONMessages, *, quiet: bool, remove: bool) -> None:
        self.out = out
        self.quiet = quiet
        self.remove = remove
        self.running: dict[int, str] = {}  # vertex -> container of its RUN
        self.failed: events.StepFailed | None = None

    async def say(self, text: str) -> None:
        if not self.quiet:
            await self.out.stream(text)

    async def event(self, e: events.BuildEvent) -> None:
        if isinstance(e, events.StepStarted):
            await self.say(f"Step {e.number}/{e.total} : {e.instruction}")
            await self.say("\n")
        elif isinstance(e, events.StepRunning):
            self.running[e.vertex] = e.container_id
            await self.say(f" ---> Running in {e.container_id[:12]}\n")
        elif isinstance(e, events.StepOutput):
            await self.say(e.data.decode("utf-8", "replace"))
        elif isinstance(e, events.StepDone):
            if e.cached:
                await self.say(" ---> Using cache\n")
            container = self.running.pop(e.vertex, "")
            if container and self.remove:
                await self.say(f"Removing intermediate container {container[:12]}\n")
            await self.say(f" ---> {_short(e.image_id)}\n")
        elif isinstance(e, events.StepFailed):
            self.failed = e
        elif isinstance(e, events.Message):
            text = e.text if e.text.endswith("\n") else e.text + "\n"
            if e.level == "warning":
                text = "[Warning] " + text
            await self.say(text)
        elif isinstance(e, events.BuildResult):
            await self.out.aux({"ID": e.image_id})
            if self.quiet:
                await self.out.stream(e.image_id + "\n")
                return
            await self.say(f"Successfully built {_short(e.image_id)}\n")
            for tag in e.tags:
                await self.say(f"Successfully tagged {tag}\n")
        # ContextReceived: the client already said "Sending build context"; OutputData does
        # not happen (no outputs here).

    async def error(self, exc: ServinError) -> None:
        failed = self.failed
        if failed is not None and failed.exit_code is not None and failed.command:
            message = (f"The command '{failed.command}' returned a non-zero code: "
                       f"{failed.exit_code}")
            self.out.errored = True
            await self.out.send({"errorDetail": {"code": failed.exit_code, "message": message},
                                 "error": message})
            return
        await self.out.error(exc.message)


class BuildRoutes:
    """``POST /build`` and ``POST /build/prune`` over the core's build service."""

    def __init__(self, core: CoreAPI) -> None:
        self.core = core

    def register(self, router: Router) -> None:
        """Declare the routes."""
        router.add("POST", "/build", self.build)
        router.add("POST", "/build/prune", self.prune)

    async def build(self, req: Request) -> Response | None:
        """``POST /build``: the context tar in the body, docker's flags in the query."""
        version = req.query_value("version")
        if version == "2":
            raise InvalidArgument("BuildKit (version=2) is not supported: use the classic "
                                  "builder (DOCKER_BUILDKIT=0)")
        options = build_options(req)
        content_type = req.header("content-type")
        if content_type and content_type.split(";", 1)[0].strip() not in (
                "application/x-tar", "application/tar", "application/octet-stream"):
            raise InvalidArgument(f"unsupported build context type {content_type!r}: send "
                                  "a tar archive")
        stream = cast(AsyncGenerator[events.BuildEvent, None],
                      self.core.builds.build(options, req.chunks()))
        try:
            # Until the first step the build has nothing to say: bad options, an unreadable
            # context or Dockerfile are plain error responses, as dockerd's.
            first: events.BuildEvent | None = None
            async for event in stream:
                if not isinstance(event, events.ContextReceived):
                    first = event
                    break
            out = JSONMessages((await req.stream(200, "application/json")).write)
            render = _Renderer(out, quiet=params.bool_value(req, "q"),
                               remove=params.bool_value(req, "rm", True)
                               or params.bool_value(req, "forcerm"))
            try:
                if first is not None:
                    await render.event(first)
                async for event in stream:
                    await render.event(event)
            except ServinError as exc:
                await render.error(exc)
        finally:
            await stream.aclose()
        return None

    async def prune(self, req: Request) -> Response:
        """``POST /build/prune``: the whole cache, or entries unused for ``until`` /
        ``unused-for``; ``CachesDeleted`` is null (entries are counted, not named)."""
        wanted = params.filters(req, {"until", "unused-for", "type", "inuse", "shared",
                                      "private", "id", "parent", "description"})
        unused_for = 0
        for key in ("until", "unused-for"):
            for value in wanted.get(key, []):
                try:
                    unused_for = max(unused_for, parse_duration_ns(value))
                except (ValueError, InvalidArgument):
                    raise InvalidArgument(f"invalid {key} filter {value!r}: use a duration "
                                          "such as 24h") from None
        for key in ("type", "inuse", "shared", "private", "id", "parent", "description"):
            if key in wanted:
                raise InvalidArgument(f"the {key!r} filter is not supported")
        if params.int_value(req, "keep-storage", 0) or params.int_value(req, "max-used-space",
                                                                          0):
            raise InvalidArgument("keep-storage is not supported")
        report = await self.core.builds.prune_cache(unused_for)
        return json_response({"CachesDeleted": None, "SpaceReclaimed": report.reclaimed})
