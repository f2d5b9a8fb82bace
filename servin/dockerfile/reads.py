"""Which files of the build context a Dockerfile can read, worked out before the build.

The CLI sends only these to the daemon. A build reads the context through COPY and ADD
sources (not ``--from``, not URLs, not here-documents), ``RUN --mount=type=bind`` without
``from=``, and the ONBUILD triggers of its base images. The sources are expanded with what is
known before the build: ARG values (defaults and ``--build-arg``) and the Dockerfile's own
ENV. When a source depends on something only the build knows (a base image's ENV, say), the
answer is "everything" (None), so trimming never changes what a build sees.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping

from servin.dockerfile.instructions import (
    PLATFORM_ARGS,
    PROXY_ARGS,
    Arg,
    Copy,
    Dockerfile,
    Env,
    Instruction,
    Run,
    parse_trigger,
)
from servin.dockerfile.plan import Plan, make_plan
from servin.dockerfile.shell import Lexer
from servin.errors import InvalidArgument, ServinError

ALL = None  # the whole context


class _Unknown(Exception):
    """A variable whose value only the build knows."""


def context_reads(df: Dockerfile, build_args: Mapping[str, str], target: str,
                  platforms: Mapping[str, str],
                  base_triggers: Callable[[str], list[str] | None]) -> list[str] | None:
    """Context paths (patterns, ``/``-separated, relative) the build may read, or None for
    the whole context.

    ``base_triggers(image)`` gives the ONBUILD triggers of a base image, or None when they
    cannot be known (the image is not local yet).
    """
    try:
        plan = make_plan(df, build_args, target, platforms)
    except ServinError:
        return ALL  # the daemon reports the error
    out: list[str] = []
    for index in plan.needed:
        found = _stage_reads(plan, index, build_args, platforms, base_triggers)
        if found is None:
            return ALL
        out.extend(found)
    return sorted(set(out))


def _stage_reads(plan: Plan, index: int, build_args: Mapping[str, str],
                 platforms: Mapping[str, str],
                 base_triggers: Callable[[str], list[str] | None]) -> list[str] | None:
    planned = plan.stages[index]
    lexer = Lexer(plan.dockerfile.escape)
    known: dict[str, str] = {k: v for k, v in build_args.items() if k in PROXY_ARGS}
    instructions: list[Instruction] = []
    if planned.base_stage is None and planned.base.lower() != "scratch":
        triggers = base_triggers(planned.base)
        if triggers is None:
            return None
        for text in triggers:
            try:
                instructions.append(parse_trigger(text))
            except ServinError:
                return None
    instructions.extend(planned.stage.instructions)
    reads: list[str] = []
    for inst in instructions:
        scope = _Open(known)  # the base image's ENV is unknown: any other name may be in it
        try:
            if isinstance(inst, Arg):
                for name, default in inst.args:
                    if name in build_args:
                        known[name] = build_args[name]
                    elif default is not None:
                        known[name] = lexer.process_word(default, scope)
                    elif name in plan.declared_globals and name in plan.global_args:
                        known[name] = plan.global_args[name]
                    elif name in PLATFORM_ARGS:
                        known[name] = platforms[name]
            elif isinstance(inst, Env):
                for key, value in inst.pairs:
                    known[lexer.process_word(key, scope)] = lexer.process_word(value, scope)
            elif isinstance(inst, Copy):
                if inst.from_:
                    continue
                docs = {d.name for d in inst.heredocs}
                for raw in inst.sources:
                    if raw.startswith("<<") and raw.lstrip("<-").strip("'\"") in docs:
                        continue
                    source = lexer.process_word(raw, scope)
                    if inst.is_add and source.startswith(("http://", "https://")):
                        continue
                    reads.append(clean(source))
            elif isinstance(inst, Run):
                for mount in inst.mounts:
                    fields = dict(_fields(lexer.process_word(mount, scope)))
                    if fields.get("type", "bind") != "bind" or fields.get("from"):
                        continue
                    reads.append(clean(fields.get("source") or fields.get("src") or "/"))
        except (_Unknown, InvalidArgument):
            return None
    return reads


class _Open(Mapping[str, str]):
    """The stage's known variables; any other name may be in the base image's ENV."""

    def __init__(self, known: dict[str, str]) -> None:
        self.known = known

    def __getitem__(self, key: str) -> str:
        if key in self.known:
            return self.known[key]
        raise _Unknown(key)

    def get(self, key: str, default: object = None) -> str:
        if key in self.known:
            return self.known[key]
        raise _Unknown(key)

    def __contains__(self, key: object) -> bool:
        if key in self.known:
            return True
        raise _Unknown(str(key))

    def __iter__(self) -> Iterator[str]:
        return iter(self.known)

    def __len__(self) -> int:
        return len(self.known)


def _fields(text: str) -> Iterator[tuple[str, str]]:
    for part in text.split(","):
        key, _, value = part.strip().partition("=")
        yield key.lower(), value


def clean(path: str) -> str:
    """A source path made relative to its root (``..`` cannot climb above it)."""
    parts: list[str] = []
    for comp in path.split("/"):
        if comp in ("", "."):
            continue
        if comp == "..":
            if parts:
                parts.pop()
            continue
        parts.append(comp)
    return "/".join(parts)


def wanted(patterns: list[str], path: str) -> bool:
    """Whether a context path (relative) is one a build reading ``patterns`` needs: it is
    named, inside a named directory, or a directory on the way to one."""
    import fnmatch

    comps = path.split("/")
    for pattern in patterns:
        if pattern == "":
            return True
        pat = pattern.split("/")
        n = min(len(pat), len(comps))
        if all(fnmatch.fnmatchcase(comps[i], pat[i]) for i in range(n)):
            return True  # named, below a named path, or an ancestor of one
    return False
