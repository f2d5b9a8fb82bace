"""A build's plan before anything runs: global ARG values, stage bases, the stage graph.

Shared by the builder (which stages to build, in what order, from what) and the CLI (which
context files the build may read). Stage ``i`` depends on stage ``j`` when it starts ``FROM
j``, copies ``--from=j`` or mounts from it (``RUN --mount=...,from=j``); only the target stage
and what it depends on are built.
"""

from __future__ import annotations

import contextlib
from collections.abc import Mapping
from dataclasses import dataclass, field

from servin.dockerfile.instructions import (
    PLATFORM_ARGS,
    Arg,
    Copy,
    Dockerfile,
    OnBuild,
    Run,
    Stage,
)
from servin.dockerfile.shell import Lexer
from servin.errors import InvalidArgument


def platform_args(target: str, build: str) -> dict[str, str]:
    """TARGETPLATFORM, TARGETOS, ... for ``os/arch[/variant]`` platform strings."""
    out: dict[str, str] = {}
    for prefix, text in (("TARGET", target), ("BUILD", build)):
        parts = text.split("/")
        out[f"{prefix}PLATFORM"] = text
        out[f"{prefix}OS"] = parts[0]
        out[f"{prefix}ARCH"] = parts[1] if len(parts) > 1 else ""
        out[f"{prefix}VARIANT"] = parts[2] if len(parts) > 2 else ""
    assert set(out) == set(PLATFORM_ARGS)
    return out


@dataclass
class PlannedStage:
    """A stage to build: its base (an image reference or an earlier stage) and dependencies."""

    stage: Stage
    base: str  # the expanded FROM argument
    base_stage: int | None  # index of the stage FROM names, if it names one
    platform: str  # the expanded --platform ("" when not given)
    deps: set[int] = field(default_factory=set)


@dataclass
class Plan:
    """What a build will do."""

    dockerfile: Dockerfile
    global_args: dict[str, str]  # the global scope's values (for FROM lines)
    declared_globals: set[str]  # global ARG names (a stage's ``ARG NAME`` takes their value)
    stages: dict[int, PlannedStage]  # every stage, planned
    target: int  # the stage whose result is the build's result
    needed: list[int]  # the stages to build, dependencies first


def global_scope(df: Dockerfile, build_args: Mapping[str, str],
                 platforms: Mapping[str, str]) -> tuple[dict[str, str], set[str]]:
    """The values of the ARGs before the first FROM (``--build-arg`` overrides defaults)."""
    lexer = Lexer(df.escape)
    env = dict(platforms)
    declared: set[str] = set()
    for arg in df.meta_args:
        for name, default in arg.args:
            declared.add(name)
            if name in build_args:
                env[name] = build_args[name]
            elif default is not None:
                env[name] = lexer.process_word(default, env)
    return env, declared


def make_plan(df: Dockerfile, build_args: Mapping[str, str], target: str,
              platforms: Mapping[str, str]) -> Plan:
    """Expand every FROM, find each stage's dependencies, pick the target and what it needs."""
    lexer = Lexer(df.escape)
    genv, declared = global_scope(df, build_args, platforms)
    planned: dict[int, PlannedStage] = {}
    for stage in df.stages:
        where = stage.from_.line.where()
        base = lexer.process_word(stage.from_.image, genv)
        if not base:
            raise InvalidArgument(f"{where}: base name ({stage.from_.image}) should not be blank")
        platform = lexer.process_word(stage.from_.platform, genv) if stage.from_.platform else ""
        base_stage = None
        found = df.stage(base) if not base.isdigit() else None
        if found is not None and found.index < stage.index:
            base_stage = found.index
        item = PlannedStage(stage, base, base_stage, platform)
        if base_stage is not None:
            item.deps.add(base_stage)
        env = dict(genv)
        for inst in stage.instructions:
            for ref in _stage_refs(inst):
                try:
                    name = lexer.process_word(ref, env)
                except InvalidArgument:
                    continue
                dep = df.stage(name)
                if dep is None:
                    continue  # an image
                if dep.index >= stage.index:
                    raise InvalidArgument(
                        f"{inst.line.where()}: stage {name!r} is not defined before it is used "
                        f"(circular dependency)")
                item.deps.add(dep.index)
            if isinstance(inst, Arg):
                for name_, default in inst.args:
                    if name_ in build_args:
                        env[name_] = build_args[name_]
                    elif default is not None:
                        with contextlib.suppress(InvalidArgument):
                            env[name_] = lexer.process_word(default, env)
        planned[stage.index] = item
    if target:
        chosen = next((s for s in df.stages if s.name and s.name == target.lower()), None)
        if chosen is None:
            raise InvalidArgument(f"target stage {target!r} could not be found")
        goal = chosen.index
    else:
        goal = df.stages[-1].index
    needed: set[int] = set()
    pending = [goal]
    while pending:
        index = pending.pop()
        if index in needed:
            continue
        needed.add(index)
        pending.extend(planned[index].deps)
    return Plan(df, genv, declared, planned, goal, sorted(needed))


def _stage_refs(inst: object) -> list[str]:
    """Raw stage/image names an instruction reads from (--from, RUN --mount from=)."""
    if isinstance(inst, OnBuild):
        return []
    if isinstance(inst, Copy) and inst.from_:
        return [inst.from_]
    if isinstance(inst, Run):
        refs = []
        for mount in inst.mounts:
            for part in mount.split(","):
                key, _, value = part.partition("=")
                if key.strip().lower() == "from" and value:
                    refs.append(value.strip())
        return refs
    return []
