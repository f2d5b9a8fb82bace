"""The build side of the engine core: ``CoreAPI.builds`` (a ``BuildService``).

``build(options, context_chunks)`` is an async iterator of events (``events.py``): it
receives the context, builds, records the image (or streams its files back) and ends with a
``BuildResult``. A failure raises a ServinError after the failing step's ``StepFailed``;
closing the iterator cancels the build. Either way nothing is left behind: the context
directory, the steps' mounts and containers and the temporary parent images go, and what
the build wrote that nothing references is collected.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import secrets
import threading
import time
from collections.abc import AsyncIterator
from typing import Any

from servin.engine.build import context as build_context
from servin.engine.build.adapter import Collaborators, EngineAdapter
from servin.engine.build.builder import Builder
from servin.engine.build.cache import BuildCache, Entry, PruneReport
from servin.engine.build.events import (
    BuildEvent,
    BuildResult,
    ContextReceived,
    OutputData,
    StepStarted,
)
from servin.engine.build.options import BuildOptions
from servin.errors import InvalidArgument
from servin.reference import parse_reference

log = logging.getLogger(__name__)

_OUTPUT_QUEUE = 64  # OutputData chunks waiting for the client at most


class BuildService:
    """Builds images from Dockerfiles; owns the build cache.

    How a front door runs a build (the servin.v1 ``Images.Build`` servicer in
    ``server/grpc/builds.py`` does exactly this)::

        options = BuildOptions(tags=("app:1",), build_args=(("V", "2"),), target="",
                               no_cache=False, pull=False, labels=(), network="default")
        async for event in core.builds.build(options, context_chunks):
            ...  # render it (events.py); the last one is the BuildResult

    - ``context_chunks``: an async iterator of ``bytes``, the build context as one tar
      stream (plain or gzip/bzip2/xz/zstd compressed, docker's ``POST /build`` body as it
      arrives). An empty stream is an empty context; the Dockerfile then comes in
      ``options.dockerfile`` (its text), else it is read from the context at
      ``options.dockerfile_path`` (default ``Dockerfile``). The context's ``.dockerignore``
      is applied unless ``options.dockerignore`` says the client applied it already.
    - ``options``: ``options.BuildOptions`` (docker's ``build`` flags; ``limits`` are the
      RUN containers' resources, ``output="tar"`` streams the result's files back as
      ``OutputData`` instead of recording an image).
    - Events (``events.py``), in order: ``ContextReceived`` (bytes so far; ``done=True`` once
      unpacked), then per step ``StepStarted`` (``number``/``total`` are docker's
      ``Step N/M``, ``instruction`` the text to print), for RUN ``StepRunning`` (its container
      ID) and ``StepOutput`` (stdout 1 / stderr 2 bytes), then ``StepDone`` (``cached``: docker's
      ``Using cache``; ``image_id``: docker's ``---> <id>``) or ``StepFailed`` (message,
      command, exit code); ``Message`` notes and warnings; the last event is one
      ``BuildResult`` (image ID, tags). Steps of parallel stages interleave (``vertex``).
    - Errors: bad options raise a ``ServinError`` before any event; a failing step raises
      one (``StepError``, an ``InvalidArgument``) right after its ``StepFailed``. Closing the
      iterator (``aclose``, or cancelling its task: a client gone) cancels the build; either
      way everything it made is cleaned up.

    ``prune_cache(unused_for_ns)`` drops cache entries (``builder prune``); ``usage()``
    counts them.
    """

    def __init__(self, engine: Collaborators) -> None:
        self.adapter = EngineAdapter(engine)
        self.cache = BuildCache(self.adapter.db)
        self.adapter.add_gc_roots(self.cache.roots)

    def repair(self) -> None:
        """At daemon start: what an interrupted build left in the build directories."""
        self.adapter.repair()

    async def recover(self) -> None:
        """Once containers are recovered: interrupted builds' containers and images."""
        await self.adapter.recover()

    async def prune_cache(self, unused_for_ns: int = 0) -> PruneReport:
        """Drop cache entries (all, or those unused for ``unused_for_ns``), then collect the
        layers only they kept."""
        if unused_for_ns < 0:
            raise InvalidArgument("unused_for_ns cannot be negative")
        entries = await asyncio.to_thread(self.cache.prune, unused_for_ns)
        reclaimed = await self.adapter.collect()
        return PruneReport(entries, reclaimed)

    def usage(self) -> tuple[int, int]:
        """(cache entries, bytes of their own layers), for disk usage reports (blocking)."""
        return self.cache.usage()

    async def cache_entries(self) -> list[Entry]:
        """Every cache entry, oldest first (docker's BuildCache records in ``system df``)."""
        return await asyncio.to_thread(lambda: list(self.cache.entries()))

    async def build(self, options: BuildOptions,
                    chunks: AsyncIterator[bytes]) -> AsyncIterator[BuildEvent]:
        """Build; yield events, the last one the ``BuildResult``."""
        _check(options)
        await self.adapter.check_network(options.network)
        build_id = secrets.token_hex(16)
        queue: asyncio.Queue[BuildEvent | None] = asyncio.Queue()
        name = options.name or build_id[:12]

        loop = asyncio.get_running_loop()
        loop_thread = threading.get_ident()

        def emit(event: BuildEvent) -> None:
            if threading.get_ident() != loop_thread:  # a worker thread's report
                loop.call_soon_threadsafe(emit, event)
                return
            if isinstance(event, StepStarted):
                self.adapter.publish("step", build_id, name=name,
                                     step=f"{event.number}/{event.total} {event.instruction}")
            queue.put_nowait(event)

        task = asyncio.ensure_future(self._run(options, chunks, build_id, name, emit, queue))
        task.add_done_callback(lambda _: queue.put_nowait(None))
        try:
            while (event := await queue.get()) is not None:
                yield event
            result = await task
        finally:
            if not task.done():
                task.cancel()
            with contextlib.suppress(BaseException):
                await task
        yield result

    async def _run(self, options: BuildOptions, chunks: AsyncIterator[bytes], build_id: str,
                   name: str, emit: Any, queue: asyncio.Queue[Any]) -> BuildResult:
        adapter = self.adapter
        directory = adapter.contexts / build_id
        directory.mkdir()
        directory.chmod(0o755)  # the context root as docker has it (its parent is private)
        adapter.publish("start", build_id, name=name)
        started = time.monotonic()
        failed = True
        try:
            with adapter.lease(f"build {build_id}") as lease:
                await build_context.receive(chunks, directory,
                                            lambda n: emit(ContextReceived(n)))
                ctx = await asyncio.to_thread(_prepare_context, directory, options)
                emit(ContextReceived(ctx.size, done=True))
                builder = Builder(adapter, self.cache, options, ctx, build_id, lease, emit)
                state = await builder.run()
                if options.output == "tar":
                    async for chunk in adapter.export(state):
                        while queue.qsize() > _OUTPUT_QUEUE:
                            await asyncio.sleep(0.005)  # the client reads slower than we write
                        emit(OutputData(chunk))
                    result = BuildResult(state.id, [], recorded=False)
                else:
                    image_id = await adapter.record(state, list(options.tags), lease)
                    result = BuildResult(image_id, list(options.tags))
            failed = False
            log.info("build done", extra={"build": build_id, "image": result.image_id,
                                          "seconds": round(time.monotonic() - started, 3)})
            return result
        finally:
            await asyncio.shield(asyncio.to_thread(build_context.remove, directory))
            await asyncio.shield(asyncio.to_thread(build_context.remove,
                                                   adapter.downloads / build_id))
            await asyncio.shield(asyncio.to_thread(adapter.release_dir,
                                                   adapter.exec_dir / build_id))
            adapter.publish("end", build_id, name=name, status="failed" if failed else "done")
            if failed or adapter.parents_used(build_id):
                await asyncio.shield(adapter.collect())


def _check(options: BuildOptions) -> None:
    """Refuse bad options before any work."""
    for tag in options.tags:
        if parse_reference(tag).digest:
            raise InvalidArgument(f"invalid tag {tag!r}: a tag cannot carry a digest")
    if options.output not in ("", "tar"):
        raise InvalidArgument(f"unsupported output {options.output!r} (\"\" or \"tar\")")
    for host in options.extra_hosts:
        name, sep, address = host.partition(":")
        if not sep or not name or not address:
            raise InvalidArgument(f"invalid --add-host {host!r}: use HOST:IP")
    for secret in options.secrets:
        if not secret.id:
            raise InvalidArgument("a secret needs an id")


def _prepare_context(directory: Any, options: BuildOptions) -> build_context.Context:
    """Read the Dockerfile and apply the context's ``.dockerignore`` (blocking)."""
    if options.dockerfile:
        text, found = options.dockerfile, options.dockerfile_path or "Dockerfile"
    else:
        text, found = build_context.read_dockerfile(directory, options.dockerfile_path)
    if not options.dockerignore:
        patterns = build_context.ignore_patterns(directory, found)
        build_context.apply_ignore(directory, patterns)
    return build_context.Context(directory, text, found, build_context.tree_size(directory))
