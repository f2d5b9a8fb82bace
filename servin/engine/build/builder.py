"""One build: the stages of a Dockerfile as a graph, each step cached, reported as events.

Only the target stage and the stages it reads are built; each is its own task and waits
only for the stages it reads (its base, ``COPY --from``, ``RUN --mount from=``), so
independent stages run at the same time. A step is planned first (its cache key, its
history line, its config change and the filesystem work it needs); the cache (or a
``--cache-from`` image) may answer it, otherwise it runs. Config-only steps add a history
entry and no layer; steps that change files (RUN, COPY, ADD, WORKDIR) add a layer unless
they changed nothing.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import json
import logging
import os
import posixpath
import secrets
import shlex
import shutil
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from servin.dockerfile.instructions import (
    PLATFORM_ARGS,
    PROXY_ARGS,
    Arg,
    Cmd,
    Copy,
    Dockerfile,
    Entrypoint,
    Env,
    Expose,
    Healthcheck,
    Instruction,
    Label,
    OnBuild,
    Run,
    Shell,
    Single,
    Stage,
    Volume,
    load,
    parse_trigger,
)
from servin.dockerfile.parser import Heredoc
from servin.dockerfile.plan import Plan, make_plan, platform_args
from servin.dockerfile.shell import Lexer
from servin.engine.build import copier, fetch, imageconfig, runmounts
from servin.engine.build.adapter import EngineAdapter, HostMount, Roots, RunSpec
from servin.engine.build.cache import BuildCache, Key
from servin.engine.build.context import Context
from servin.engine.build.events import (
    BuildEvent,
    Message,
    StepDone,
    StepError,
    StepFailed,
    StepOutput,
    StepRunning,
    StepStarted,
)
from servin.engine.build.options import BuildOptions
from servin.engine.build.state import Layer, State, begin_stage, scratch
from servin.engine.images.platforms import Platform, parse_platform
from servin.engine.store.leases import Lease
from servin.engine.store.snapshots.layers import chain_ids
from servin.errors import InvalidArgument, ServinError

log = logging.getLogger(__name__)

Emit = Callable[[BuildEvent], None]


@dataclass
class StepPlan:
    """What one step will do, known before it runs."""

    key: str
    created_by: str  # its history line
    mutate: Callable[[State], None] | None = None  # its config change
    produce: Callable[[State], Awaitable[Layer | None]] | None = None  # its filesystem work
    container: str = ""  # set by a RUN step while it runs


@dataclass
class StageScope:
    """What substitution sees in a stage: its declared ARGs (ENV wins over them)."""

    args: dict[str, str | None] = field(default_factory=dict)
    cmd_set: bool = False

    def env(self, state: State) -> dict[str, str]:
        """The variables for substitution."""
        out = {k: v for k, v in self.args.items() if v is not None}
        out.update(state.env())
        return out


@dataclass
class CacheImage:
    """A ``--cache-from`` image: its history and layers."""

    history: list[dict[str, Any]]
    layers: list[Layer]


class Builder:
    """Runs one build; events go to ``emit`` (called on the event loop; it never blocks)."""

    def __init__(self, adapter: EngineAdapter, cache: BuildCache, options: BuildOptions,
                 context: Context, build_id: str, lease: Lease, emit: Emit) -> None:
        self.adapter = adapter
        self.cache = cache
        self.options = options
        self.context = context
        self.build_id = build_id
        self.lease = lease
        self.emit = emit
        self.build_args = dict(options.build_args)
        self.used_args: set[str] = set()
        self.vertex = 0
        self.results: dict[int, asyncio.Future[State]] = {}
        self.cache_images: list[CacheImage] = []
        self.images: dict[str, State] = {}  # base and --from images, by reference
        self._image_locks: dict[str, asyncio.Lock] = {}
        self.host = adapter.platform
        self.df: Dockerfile | None = None
        self.plan: Plan | None = None
        self.numbers: dict[int, int] = {}
        self.total = 0
        self.hits: list[str] = []  # cache entries used (their last use is recorded at the end)

    # -- the whole build ------------------------------------------------------------------------

    async def run(self) -> State:
        """Build the target stage (and what it needs); its final state."""
        self.df = load(self.context.dockerfile)
        for warning in self.df.warnings:
            self.emit(Message(warning, "warning"))
        target_platform = self._platform(self.options.platform)
        plats = platform_args(str(target_platform), str(self.host))
        self.target_platform = target_platform
        self.plan = make_plan(self.df, self.build_args, self.options.target, plats)
        self.platform_values = plats
        for arg in self.df.meta_args:
            self.used_args.update(name for name, _ in arg.args)
        await self._load_cache_from()
        self._number_steps()
        loop = asyncio.get_running_loop()
        for index in self.plan.needed:
            self.results[index] = loop.create_future()
        tasks = {index: asyncio.ensure_future(self._stage_task(index))
                 for index in self.plan.needed}
        try:
            await self._wait_all(tasks)
        finally:
            for task in tasks.values():
                task.cancel()
            for task in tasks.values():
                with contextlib.suppress(BaseException):
                    await task
            for future in self.results.values():
                if not future.done():
                    future.cancel()
        await asyncio.to_thread(self.cache.touch, self.hits)
        unused = sorted(k for k in self.build_args if k not in self.used_args
                        and k not in PROXY_ARGS)
        if unused:
            self.emit(Message(f"one or more build-args {unused} were not consumed",
                                    "warning"))
        return self.results[self.plan.target].result()

    async def _wait_all(self, tasks: dict[int, asyncio.Task[State]]) -> None:
        """Wait for every stage; the first failure cancels the others and is raised."""
        pending = set(tasks.values())
        while pending:
            done, pending = await asyncio.wait(pending, return_when=asyncio.FIRST_EXCEPTION)
            for task in done:
                if task.cancelled():
                    continue
                exc = task.exception()
                if exc is not None:
                    raise exc

    def _number_steps(self) -> None:
        """``Step N/M`` numbers: each needed stage's steps in Dockerfile order."""
        assert self.plan is not None
        number = 0
        for index in self.plan.needed:
            self.numbers[index] = number
            number += self._stage_count(self.plan.stages[index].stage, index)
        self.total = number

    def _stage_count(self, stage: Stage, index: int) -> int:
        assert self.plan is not None
        extra = 1 if index == self.plan.target and self.options.labels else 0
        return 1 + sum(1 for i in stage.instructions if not isinstance(i, Arg)) + extra

    def _platform(self, text: str) -> Platform:
        """A requested platform: this machine's, or one an emulator runs."""
        if not text:
            return self.host
        wanted = parse_platform(text)
        if (wanted.os, wanted.architecture) == (self.host.os, self.host.architecture):
            return wanted
        if wanted.os == "linux" and _emulated(wanted.architecture):
            return wanted
        raise InvalidArgument(f"platform {wanted} cannot run on this {self.host} machine (no "
                              "emulator registered in binfmt_misc)")

    async def _load_cache_from(self) -> None:
        for reference in self.options.cache_from:
            info = await self.adapter.find_image(reference)
            if info is None:
                try:
                    info = await self.adapter.pull(reference, str(self.target_platform),
                                                   lambda line: None)
                except ServinError as exc:
                    self.emit(Message(f"--cache-from {reference}: {exc}", "warning"))
                    continue
            self.cache_images.append(CacheImage(list(info.config.get("history") or []),
                                                info.layers))

    # -- stages ---------------------------------------------------------------------------------

    async def _stage_task(self, index: int) -> State:
        try:
            state = await self._stage(index)
        except BaseException as exc:
            if not self.results[index].done():
                if isinstance(exc, asyncio.CancelledError):
                    self.results[index].cancel()
                else:
                    self.results[index].set_exception(exc)
                    self.results[index].exception()  # retrieved: the task raises it
            raise
        self.results[index].set_result(state)
        return state

    async def stage_result(self, index: int) -> State:
        """The final state of stage ``index`` (waits for it)."""
        future = self.results.get(index)
        if future is None:
            raise InvalidArgument(f"stage {index} is not part of this build")
        return await asyncio.shield(future)

    async def _stage(self, index: int) -> State:
        assert self.plan is not None
        planned = self.plan.stages[index]
        stage = planned.stage
        count = self._stage_count(stage, index)
        counter = _Counter(self.numbers[index])
        from_text = stage.from_.text
        parent = None
        if planned.base_stage is not None:
            parent = await self.stage_result(planned.base_stage)  # its failure is reported
        vertex = await self._start(stage.label, counter, count, from_text, "FROM")
        started = time.monotonic()
        try:
            if parent is not None:
                base = parent.copy()
            elif planned.base.lower() == "scratch":
                plat = self.target_platform
                base = State(scratch(plat.os, plat.architecture, plat.variant),
                             key=Key("scratch").add(str(plat)).digest)
            else:
                platform = self._platform(planned.platform) if planned.platform else \
                    self.target_platform
                base = await self._image(planned.base, platform)
        except ServinError as exc:
            self._failed(vertex, exc)
            raise
        triggers = list(base.image.get("OnBuild") or [])
        begin_stage(base)
        self.emit(StepDone(vertex, False, base.id, time.monotonic() - started))
        scope = StageScope()
        state = base
        for text in triggers:
            try:
                trigger = parse_trigger(text)
            except ServinError as exc:
                raise InvalidArgument(f"invalid ONBUILD trigger {text!r} in the base image: "
                                      f"{exc}") from None
            state = await self._instruction(stage, scope, counter, count, trigger, state,
                                            title=f"ONBUILD {text}", trigger=True)
        for inst in stage.instructions:
            state = await self._instruction(stage, scope, counter, count, inst, state)
        if index == self.plan.target and self.options.labels:
            state = await self._label_step(stage, counter, count, state)
        return state

    async def _image(self, reference: str, platform: Platform) -> State:
        """A base (or ``--from``) image as a state, pulled when missing or with ``--pull``."""
        key = f"{reference}@{platform}"
        lock = self._image_locks.setdefault(key, asyncio.Lock())
        async with lock:
            if key in self.images:
                return self.images[key].copy()
            info = None if self.options.pull else await self.adapter.find_image(reference)
            if info is None:
                self.emit(Message(f"pulling {reference}"))
                info = await self.adapter.pull(reference, str(platform),
                                               lambda line: self.emit(Message(line)))
            arch = str(info.config.get("architecture") or "")
            if arch and arch != platform.architecture:
                self.emit(Message(f"the image {reference} is for linux/{arch}, not "
                                        f"{platform}", "warning"))
            state = State(info.config, info.layers, Key("image").add(info.id).digest, info.id)
            await self.adapter.ensure_layers(state, self.lease)
            self.images[key] = state
            return state.copy()

    # -- one instruction ------------------------------------------------------------------------

    async def _start(self, stage: str, counter: _Counter, count: int, title: str,
                     keyword: str) -> int:
        self.vertex += 1
        counter.index += 1
        self.emit(StepStarted(self.vertex, stage, counter.index, count,
                                    counter.base + counter.index, self.total, title, keyword))
        return self.vertex

    async def _instruction(self, stage: Stage, scope: StageScope, counter: _Counter,
                           count: int, inst: Instruction, state: State, *, title: str = "",
                           trigger: bool = False) -> State:
        if isinstance(inst, Arg):
            self._declare(scope, inst, state)
            return state
        if trigger:
            count += 1  # triggers are steps the Dockerfile does not count
        await self._stages_read(inst, scope, state)
        vertex = await self._start(stage.label, counter, count, title or inst.text,
                                   inst.keyword)
        started = time.monotonic()
        try:
            plan = await self._plan(stage, scope, inst, state, vertex)
            new, cached = await self._execute(plan, state, vertex)
        except ServinError as exc:
            self._failed(vertex, exc)
            raise
        self.emit(StepDone(vertex, cached, new.id, time.monotonic() - started,
                                 plan.container))
        return new

    def _failed(self, vertex: int, exc: ServinError) -> None:
        """Report a step's failure once (a stage reading a failed stage fails with the same
        error, which was reported where it happened)."""
        if getattr(exc, "reported", False):
            return
        self.emit(StepFailed(vertex, str(exc)))
        exc.reported = True  # type: ignore[attr-defined]  # a mark on this exception only

    async def _label_step(self, stage: Stage, counter: _Counter, count: int,
                          state: State) -> State:
        pairs = list(self.options.labels)
        text = "LABEL " + " ".join(f"{k}={shlex.quote(v)}" for k, v in pairs)
        vertex = await self._start(stage.label, counter, count, text, "LABEL")
        started = time.monotonic()
        plan = StepPlan(Key("LABEL", state.key).add(pairs).digest, text,
                        mutate=lambda s: imageconfig.set_labels(s.image, pairs))
        new, cached = await self._execute(plan, state, vertex)
        self.emit(StepDone(vertex, cached, new.id, time.monotonic() - started))
        return new

    async def _stages_read(self, inst: Instruction, scope: StageScope, state: State) -> None:
        """Wait for the stages a step reads, so that it starts (and is timed) once they are
        built (a name that does not expand is the step's error to report)."""
        assert self.df is not None
        refs: list[str] = []
        if isinstance(inst, Copy) and inst.from_:
            refs.append(inst.from_)
        elif isinstance(inst, Run):
            for mount in inst.mounts:
                for part in mount.split(","):
                    key, _, value = part.partition("=")
                    if key.strip().lower() == "from" and value:
                        refs.append(value.strip())
        for ref in refs:
            try:
                name = self._lexer().process_word(ref, scope.env(state))
            except ServinError:
                continue
            found = self.df.stage(name)
            if found is not None and found.index in self.results:
                await self.stage_result(found.index)  # its failure was reported by its stage

    def _declare(self, scope: StageScope, inst: Arg, state: State) -> None:
        """ARG in a stage: its value from --build-arg, its default, the global scope or the
        platform."""
        assert self.plan is not None
        lexer = Lexer(self.df.escape if self.df else "\\")
        for name, default in inst.args:
            self.used_args.add(name)
            if name in self.build_args:
                scope.args[name] = self.build_args[name]
            elif default is not None:
                scope.args[name] = lexer.process_word(default, scope.env(state))
            elif name in self.plan.declared_globals and name in self.plan.global_args:
                scope.args[name] = self.plan.global_args[name]
            elif name in PLATFORM_ARGS:
                scope.args[name] = self.platform_values[name]
            else:
                scope.args.setdefault(name, None)

    async def _execute(self, plan: StepPlan, parent: State, vertex: int) -> tuple[State, bool]:
        """The state after a planned step: from the cache, a --cache-from image, or run."""
        if not self.options.no_cache:
            hit = await asyncio.to_thread(self.cache.get, plan.key)
            if hit is not None:
                self.adapter.hold(self.lease, hit)
                if await asyncio.to_thread(self.adapter.layers_present, hit):
                    self.hits.append(plan.key)
                    return hit, True
                await asyncio.to_thread(self.cache.drop, plan.key)
            from_image = self._from_cache_images(plan, parent)
            if from_image is not None:
                self.adapter.hold(self.lease, from_image)
                if await asyncio.to_thread(self.adapter.layers_present, from_image):
                    own = from_image.layers[-1] if len(from_image.layers) > len(
                        parent.layers) else None
                    await self._store(plan, from_image, own)
                    return from_image, True
        layer = await plan.produce(parent) if plan.produce is not None else None
        new = parent.derive()
        if plan.mutate is not None:
            plan.mutate(new)
        new.add_step(plan.created_by, layer)
        new.key = plan.key
        await self._store(plan, new, layer)
        return new, False

    async def _store(self, plan: StepPlan, state: State, own: Layer | None) -> None:
        chains = chain_ids(state.diff_ids)
        await asyncio.to_thread(self.cache.put, plan.key, state, description=plan.created_by,
                                chain=chains[-1] if chains else "",
                                size=own.size if own is not None else 0)

    def _from_cache_images(self, plan: StepPlan, parent: State) -> State | None:
        """The step's result taken from a --cache-from image whose history goes the same
        way up to here and continues with this very step."""
        history = parent.history
        for image in self.cache_images:
            n, k = len(history), len(parent.layers)
            if len(image.history) <= n or [x.diff_id for x in image.layers[:k]] != \
                    parent.diff_ids:
                continue
            if [_hist(h) for h in image.history[:n]] != [_hist(h) for h in history]:
                continue
            entry = image.history[n]
            if entry.get("created_by") != plan.created_by:
                continue
            layer = None
            if not entry.get("empty_layer"):
                if len(image.layers) <= k:
                    continue
                layer = image.layers[k]
            elif plan.produce is not None and plan.created_by.startswith(("COPY", "ADD")):
                continue  # a copy always makes a layer: this entry is something else
            new = parent.derive()
            if plan.mutate is not None:
                plan.mutate(new)
            new.add_step(plan.created_by, layer, created=str(entry.get("created") or ""))
            new.key = plan.key
            return new
        return None

    # -- planning each kind of step -------------------------------------------------------------

    def _lexer(self) -> Lexer:
        return Lexer(self.df.escape if self.df else "\\")

    async def _plan(self, stage: Stage, scope: StageScope, inst: Instruction, state: State,
                    vertex: int) -> StepPlan:
        lexer = self._lexer()
        env = scope.env(state)

        def word(text: str) -> str:
            return lexer.process_word(text, env)

        key = Key(inst.keyword, state.key)
        if isinstance(inst, Env):
            pairs = [(word(k), word(v)) for k, v in inst.pairs]
            text = "ENV " + " ".join(f"{k}={v}" for k, v in pairs)

            def set_env(s: State) -> None:
                for k, v in pairs:
                    s.set_env(k, v)

            return StepPlan(key.add(pairs).digest, text, set_env)
        if isinstance(inst, Label):
            pairs = [(word(k), word(v)) for k, v in inst.pairs]
            text = "LABEL " + " ".join(f"{k}={v}" for k, v in pairs)
            return StepPlan(key.add(pairs).digest, text,
                            lambda s: imageconfig.set_labels(s.image, pairs))
        if isinstance(inst, Cmd | Entrypoint):
            argv = imageconfig.command(state.image, inst.argv, inst.script)
            is_cmd = isinstance(inst, Cmd)
            if is_cmd:
                scope.cmd_set = True
            cmd_set = scope.cmd_set
            text = f"{inst.keyword} {_json(argv)}"

            def set_command(s: State) -> None:
                if is_cmd:
                    s.image["Cmd"] = argv
                else:
                    s.image["Entrypoint"] = argv
                    if not cmd_set:
                        s.image["Cmd"] = None
            return StepPlan(key.add(argv, cmd_set).digest, text, set_command)
        if isinstance(inst, Expose):
            ports = [p for raw in inst.ports for p in lexer.process_words(raw, env)]
            imageconfig.expose({}, ports)  # refuse bad ports now
            return StepPlan(key.add(ports).digest, "EXPOSE " + " ".join(ports),
                            lambda s: imageconfig.expose(s.image, ports))
        if isinstance(inst, Volume):
            paths = [word(p) for p in inst.paths]
            return StepPlan(key.add(paths).digest, "VOLUME " + _json(paths),
                            lambda s: imageconfig.add_volumes(s.image, paths))
        if isinstance(inst, Shell):
            argv = list(inst.argv)
            return StepPlan(key.add(argv).digest, "SHELL " + _json(argv),
                            lambda s: s.image.__setitem__("Shell", argv))
        if isinstance(inst, Healthcheck):
            test = list(inst.test)
            timings = {"interval": word(inst.interval), "timeout": word(inst.timeout),
                       "start_period": word(inst.start_period),
                       "start_interval": word(inst.start_interval), "retries": word(inst.retries)}
            imageconfig.healthcheck({}, test, **timings)
            return StepPlan(key.add(test, timings).digest, f"HEALTHCHECK {_json(test)}",
                            lambda s: imageconfig.healthcheck(s.image, test, **timings))
        if isinstance(inst, OnBuild):
            expression = inst.expression

            def add_trigger(s: State) -> None:
                s.image["OnBuild"] = [*(s.image.get("OnBuild") or []), expression]
            return StepPlan(key.add(expression).digest, f"ONBUILD {expression}", add_trigger)
        if isinstance(inst, Single):
            return self._single(inst, word(inst.value), key, state)
        if isinstance(inst, Run):
            return await self._plan_run(scope, inst, state, key, vertex, env)
        if isinstance(inst, Copy):
            return await self._plan_copy(inst, state, key, env)
        raise InvalidArgument(f"{inst.line.where()}: {inst.keyword} is not supported")

    def _single(self, inst: Single, value: str, key: Key, state: State) -> StepPlan:
        kw = inst.keyword
        if kw == "USER":
            if not value:
                raise StepError("USER requires a user name or id")
            return StepPlan(key.add(value).digest, f"USER {value}",
                            lambda s: s.image.__setitem__("User", value))
        if kw == "STOPSIGNAL":
            imageconfig.stop_signal({}, value)
            return StepPlan(key.add(value).digest, f"STOPSIGNAL {value}",
                            lambda s: imageconfig.stop_signal(s.image, value))
        if kw == "MAINTAINER":
            return StepPlan(key.add(value).digest, f"MAINTAINER {value}",
                            lambda s: s.config.__setitem__("author", value))
        # WORKDIR: the directory is made (root's, 0755) when missing.
        path = imageconfig.workdir(dict(state.image), value)

        def set_workdir(s: State) -> None:
            imageconfig.workdir(s.image, value)

        plan = StepPlan(key.add(path).digest, f"WORKDIR {path}", set_workdir)

        async def make(parent: State) -> Layer | None:
            def work(roots: Roots) -> None:
                os.close(copier.ensure_dir(roots.dest, path, (0, 0)))

            _, layer = await self.adapter.filesystem_step(parent, work, self.lease)
            return layer

        plan.produce = make
        return plan

    # -- RUN ------------------------------------------------------------------------------------

    async def _plan_run(self, scope: StageScope, inst: Run, state: State, key: Key,
                        vertex: int, env: dict[str, str]) -> StepPlan:
        lexer = self._lexer()
        image = state.image
        script_file: Heredoc | None = None
        if inst.argv is not None:
            argv = list(inst.argv)
        elif len(inst.line.heredocs) == 1 and _lone_marker(inst.script):
            doc = inst.line.heredocs[0]
            if doc.content.startswith("#!"):
                script_file = doc
                argv = [f"/dev/.servin-heredoc/{doc.name}"]
            else:
                argv = [*imageconfig.shell(image), doc.content]
        elif inst.line.heredocs:
            text = inst.script
            for doc in inst.line.heredocs:
                text += "\n" + doc.content + doc.name
            argv = [*imageconfig.shell(image), text]
        else:
            argv = [*imageconfig.shell(image), inst.script]
        # Build arguments the command sees (ENV of the same name wins), as its environment.
        config_env = state.env()
        run_env = {k: v for k, v in scope.args.items() if v is not None and k not in config_env}
        for name in PROXY_ARGS:
            if name in self.build_args and name not in config_env:
                run_env[name] = self.build_args[name]
                self.used_args.add(name)
        env_list = [f"{k}={v}" for k, v in sorted(run_env.items())]
        network = lexer.process_word(inst.network, env) if inst.network else \
            (self.options.network or "default")
        if network not in ("default", "none", "host") and inst.network:
            raise StepError(f"RUN --network={network}: use default, none or host")
        if inst.security and lexer.process_word(inst.security, env) != "sandbox":
            raise StepError("RUN --security=insecure is not supported")
        mounts = [runmounts.parse_mount(lexer.process_word(m, env),
                                        image.get("WorkingDir") or "/") for m in inst.mounts]
        runmounts.check_unique(mounts)
        mount_keys: list[Any] = []
        mount_states: dict[int, State] = {}
        for i, m in enumerate(mounts):
            part: dict[str, Any] = m.key()
            if m.type == "bind" or (m.type == "cache" and m.from_):
                if m.type == "cache":
                    raise StepError("RUN --mount=type=cache,from=... is not supported")
                if m.from_:
                    source_state = await self._from_state(m.from_)
                    mount_states[i] = source_state
                    part["layers"] = source_state.diff_ids
                else:
                    part["content"] = await asyncio.to_thread(self._context_digest,
                                                               [m.source or "/"])
            mount_keys.append(part)
        if script_file is not None:
            mount_keys.append({"script": script_file.content})
        history = "RUN " + _shell_join(argv)
        if env_list:
            history = f"RUN |{len(env_list)} {' '.join(env_list)} {_shell_join(argv)}"
        key.add(argv, env_list, mount_keys, network, list(self.options.extra_hosts))
        plan = StepPlan(key.digest, history)

        async def produce(parent: State) -> Layer | None:
            return await self._run(plan, vertex, parent, argv, env_list, network, mounts,
                                   mount_states, script_file)

        plan.produce = produce
        return plan

    async def _run(self, plan: StepPlan, vertex: int, parent: State, argv: list[str],
                   env: list[str], network: str, mounts: list[runmounts.RunMount],
                   mount_states: dict[int, State], script: Heredoc | None) -> Layer | None:
        adapter = self.adapter
        step_dir = adapter.step_dir(self.build_id, f"step{vertex}")
        host_mounts: list[HostMount] = []
        made: list[str] = []
        releases: list[Callable[[], None]] = []
        try:
            for i, m in enumerate(mounts):
                made.append(m.target)
                host = await self._host_mount(m, i, step_dir, mount_states.get(i), releases)
                if host is not None:
                    host_mounts.append(host)
            if script is not None:
                path = step_dir / "heredoc"
                path.mkdir(exist_ok=True)
                (path / script.name).write_text(script.content)
                (path / script.name).chmod(0o755)
                host_mounts.append(HostMount("bind", "/dev/.servin-heredoc", str(path), True))
            image_id = await adapter.acquire_parent(parent, self.lease, self.build_id)
            try:
                spec = RunSpec(self.build_id, image_id, argv, env,
                               "bridge" if network == "default" else network,
                               list(self.options.extra_hosts), host_mounts,
                               self.options.limits, made)

                async def on_start(container_id: str) -> None:
                    plan.container = container_id
                    self.emit(StepRunning(vertex, container_id))

                async def output(stream: int, data: bytes) -> None:
                    self.emit(StepOutput(vertex, data, stream))

                result = await adapter.run(spec, parent, self.lease, on_start, output)
            finally:
                await adapter.release_parent(image_id)
        finally:
            for release in releases:
                release()
            await asyncio.shield(asyncio.to_thread(adapter.release_dir, step_dir))
        if result.exit_code != 0:
            command = _shell_join(argv)
            message = (f"process \"{command}\" did not complete successfully: exit code: "
                       f"{result.exit_code}")
            self.emit(StepFailed(vertex, message, command, result.exit_code))
            error = StepError(message)
            error.reported = True  # type: ignore[attr-defined]  # StepFailed is out already
            raise error
        return result.layer

    async def _host_mount(self, m: runmounts.RunMount, i: int, step_dir: Path,
                          source_state: State | None,
                          releases: list[Callable[[], None]]) -> HostMount | None:
        """What to mount for one ``--mount`` (None: nothing, a missing optional secret)."""
        adapter = self.adapter
        if m.type == "tmpfs":
            return HostMount("tmpfs", m.target, options=[f"size={m.size}"] if m.size else [])
        if m.type == "secret":
            secret = next((s for s in self.options.secrets if s.id == m.id), None)
            if secret is None:
                if m.required:
                    raise StepError(f"secret {m.id} not found (give it with --secret "
                                    f"id={m.id},src=PATH)")
                return None
            path = step_dir / f"secret{i}"
            await asyncio.to_thread(_write_secret, path, secret.data, m.mode, m.uid, m.gid)
            return HostMount("bind", m.target, str(path), True)
        if m.type == "cache":
            directory = await self._cache_dir(m, releases)
            return HostMount("bind", m.target, str(directory), m.readonly)
        # A bind mount: the context or another stage's (an image's) files.
        if source_state is not None:
            view = step_dir / f"view{i}"
            await asyncio.to_thread(adapter.mount_view, source_state, view)
            root = view
        else:
            root = self.context.root
        try:
            source = await asyncio.to_thread(adapter.resolve_in, root, m.source or "/")
        except OSError:
            raise StepError(f"RUN --mount: {m.source or '/'} not found in "
                            f"{'the build context' if source_state is None else m.from_}") \
                from None
        if m.readonly:
            return HostMount("bind", m.target, str(source), True)
        scratch = step_dir / f"rw{i}"
        if source.is_dir():
            target = step_dir / f"rwview{i}"
            await asyncio.to_thread(adapter.overlay_rw, source, target, scratch)
            return HostMount("bind", m.target, str(target), False)
        scratch.mkdir(parents=True, exist_ok=True)
        copy = scratch / "file"
        await asyncio.to_thread(_copy_file, source, copy)
        return HostMount("bind", m.target, str(copy), False)

    async def _cache_dir(self, m: runmounts.RunMount,
                         releases: list[Callable[[], None]]) -> Path:
        """A cache mount's persistent directory (``locked``: one step at a time;
        ``private``: a directory of its own while another step uses the first)."""
        base = hashlib.sha256(m.id.encode()).hexdigest()[:32]
        name = base
        if m.sharing == "locked":
            lock = _CACHE_LOCKS.setdefault(base, asyncio.Lock())
            await lock.acquire()
            releases.append(lock.release)
        elif m.sharing == "private":
            n = 0
            while f"{base}-{n}" in _PRIVATE_IN_USE:
                n += 1
            name = f"{base}-{n}"
            _PRIVATE_IN_USE.add(name)
            releases.append(lambda: _PRIVATE_IN_USE.discard(name))
        directory = self.adapter.cache_mounts / name
        await asyncio.to_thread(_make_dir, directory, m.mode, m.uid, m.gid)
        return directory

    # -- COPY and ADD ---------------------------------------------------------------------------

    async def _from_state(self, text: str) -> State:
        """The state ``--from`` names: an earlier stage (by name or index) or an image."""
        assert self.df is not None
        stage = self.df.stage(text)
        if stage is not None:
            return await self.stage_result(stage.index)
        return await self._image(text, self.target_platform)

    def _context_digest(self, patterns: list[str]) -> str:
        root = self.context.open_root()
        try:
            sources = copier.find_sources(root, patterns, what="build context")
            return copier.digest_sources(sources)
        finally:
            os.close(root)

    async def _plan_copy(self, inst: Copy, state: State, key: Key,
                         env: dict[str, str]) -> StepPlan:
        lexer = self._lexer()

        def word(text: str) -> str:
            return lexer.process_word(text, env)

        docs = {d.name: d for d in inst.heredocs}
        workdir = state.image.get("WorkingDir") or "/"
        dest = word(inst.dest)
        trailing = dest.endswith("/") or dest.endswith("/.") or dest == "."
        dest = posixpath.normpath(posixpath.join(workdir, dest))
        if trailing and not dest.endswith("/"):
            dest += "/"
        chown = word(inst.chown) if inst.chown else ""
        chmod = copier.parse_chmod(word(inst.chmod)) if inst.chmod else None
        from_text = word(inst.from_) if inst.from_ else ""
        heredocs: list[copier.Source] = []
        patterns: list[str] = []
        urls: list[str] = []
        for raw in inst.sources:
            name = raw.lstrip("<").lstrip("-").strip("'\"") if raw.startswith("<<") else ""
            if name and name in docs:
                doc = docs[name]
                content = lexer.expand_heredoc(doc.content, env) if doc.expand else doc.content
                heredocs.append(copier.Source(name, data=content.encode()))
                continue
            source = word(raw)
            if inst.is_add and fetch.is_url(source):
                if fetch.is_git(source):
                    raise StepError(f"ADD {source}: git repositories are not supported")
                urls.append(source)
            elif inst.is_add and fetch.is_git(source):
                raise StepError(f"ADD {source}: git repositories are not supported")
            else:
                patterns.append(source)
        from_state: State | None = None
        if from_text:
            from_state = await self._from_state(from_text)
            key.add("from", from_state.diff_ids)
            what = f"stage {from_text}" if self.df and self.df.stage(from_text) else from_text
        else:
            what = "build context"
            if patterns:
                key.add("content", await asyncio.to_thread(self._context_digest, patterns))
        downloads: list[copier.Source] = []
        for url in urls:
            target = self.adapter.download_dir(self.build_id) / \
                f"{secrets.token_hex(8)}"
            got = await fetch.download(url, target, word(inst.checksum) if inst.checksum
                                       else "")
            downloads.append(copier.Source(got.name or "download", path=str(target),
                                           mode=0o600, mtime=got.mtime))
            key.add("url", url, got.digest)
        if urls and not dest.endswith("/") and len(urls) + len(patterns) + len(heredocs) > 1:
            raise StepError("when using ADD with more than one source file, the destination "
                            "must be a directory and end with a /")
        if inst.checksum and not urls:
            raise StepError("ADD --checksum applies to URLs only")
        for made in heredocs:
            key.add("heredoc", made.name, hashlib.sha256(made.data or b"").hexdigest())
        key.add(patterns, dest, chown, chmod, inst.link)
        digest = Key("sources").add(key.digest).digest[:16]
        if from_text:
            created_by = f"{inst.keyword} --from={from_text} {' '.join(patterns)} {dest}"
        else:
            kind = "multi" if len(patterns) + len(urls) + len(heredocs) > 1 else "file"
            created_by = f"{inst.keyword} {kind}:{digest} in {dest}"
        plan = StepPlan(key.digest, created_by)
        is_add = inst.is_add
        link = inst.link

        async def produce(parent: State) -> Layer | None:
            def work(roots: Roots) -> None:
                owner = copier.chown_identity(roots.parent_path, chown) if chown else (0, 0)
                sources: list[copier.Source] = []
                if patterns:
                    if from_state is not None:
                        src_root = roots.sources["from"]
                        sources += copier.find_sources(src_root, patterns, what=what)
                    else:
                        src_root = self.context.open_root()
                        found = copier.find_sources(src_root, patterns, what=what)
                        for s in found:
                            if is_add and not s.is_dir and copier.is_archive(src_root, s.path):
                                s.archive = True
                        sources += found
                for d in downloads:
                    sources.append(_download_source(d))
                sources += heredocs
                try:
                    copier.copy_into(roots.dest, sources, dest,
                                     copier.CopyOptions(owner, chmod))
                finally:
                    _close_sources(sources, roots)

            _, layer = await self.adapter.filesystem_step(
                parent, work, self.lease,
                sources={"from": from_state} if from_state is not None else None, link=link)
            return layer

        plan.produce = produce
        return plan


# -- helpers ------------------------------------------------------------------------------------

# Cache mounts shared by every build of this daemon: locks of ``sharing=locked`` ones and the
# ``sharing=private`` directories in use.
_CACHE_LOCKS: dict[str, asyncio.Lock] = {}
_PRIVATE_IN_USE: set[str] = set()


def _make_dir(directory: Path, mode: int, uid: int, gid: int) -> None:
    # Made once, by the first step that uses it; steps of parallel stages may race here.
    tmp = directory.with_name(f".new-{directory.name}-{secrets.token_hex(4)}")
    if directory.exists():
        return
    tmp.mkdir(mode=0o700)
    os.chown(tmp, uid, gid)
    os.chmod(tmp, mode)
    try:
        os.rename(tmp, directory)  # fails when another step made it meanwhile
    except OSError:
        tmp.rmdir()
        if not directory.is_dir():
            raise


@dataclass
class _Counter:
    base: int  # the stage's first step number minus one
    index: int = 0


def _json(value: Any) -> str:
    return json.dumps(value)


def _shell_join(argv: list[str]) -> str:
    return " ".join(argv)


def _lone_marker(script: str) -> bool:
    """Whether a RUN's command is nothing but one here-document marker (``<<EOF``)."""
    text = script.strip()
    return text.startswith("<<") and not any(c.isspace() for c in text)


def _hist(entry: dict[str, Any]) -> tuple[str, bool]:
    return str(entry.get("created_by") or ""), bool(entry.get("empty_layer"))


def _emulated(architecture: str) -> bool:
    """Whether binfmt_misc has an emulator registered for the architecture."""
    names = {"arm64": "aarch64", "amd64": "x86_64", "arm": "arm", "386": "i386",
             "ppc64le": "ppc64le", "s390x": "s390x", "riscv64": "riscv64"}
    path = Path("/proc/sys/fs/binfmt_misc") / f"qemu-{names.get(architecture, architecture)}"
    try:
        return path.read_text().startswith("enabled")
    except OSError:
        return False


def _write_secret(path: Path, data: bytes, mode: int, uid: int, gid: int) -> None:
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC, 0o600)
    try:
        os.write(fd, data)
        os.fchown(fd, uid, gid)
        os.fchmod(fd, mode)
    finally:
        os.close(fd)


def _copy_file(source: Path, dest: Path) -> None:
    shutil.copy2(source, dest, follow_symlinks=True)


def _download_source(d: copier.Source) -> copier.Source:
    """A downloaded file as a source (its directory opened here, in the copy thread)."""
    path = Path(d.path)
    root = os.open(path.parent, os.O_PATH | os.O_DIRECTORY | os.O_CLOEXEC)
    return copier.Source(d.name, root, path.name, False, mode=d.mode, mtime=d.mtime)


def _close_sources(sources: list[copier.Source], roots: Roots) -> None:
    keep = set(roots.sources.values()) | {roots.dest}
    closed: set[int] = set()
    for s in sources:
        if s.root >= 0 and s.root not in keep and s.root not in closed:
            closed.add(s.root)
            with contextlib.suppress(OSError):
                os.close(s.root)

