"""Typed Dockerfile instructions and stages, from the parser's logical lines.

Arguments stay as written (with their quotes and ``$`` references): substitution needs the
values of ARG and ENV at the point of use, which only the builder knows. What can be checked
without them is checked here (flags, argument counts, forms), with docker's messages.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from servin.dockerfile.parser import (
    DockerfileError,
    Heredoc,
    Line,
    Parsed,
    extract_flags,
    parse,
    parse_json_array,
    split_words,
)

# The ARGs every build defines without a declaration (docker's "predefined" ones): the proxy
# settings are usable in RUN when given with --build-arg and stay out of the image history.
PROXY_ARGS = (
    "HTTP_PROXY", "http_proxy", "HTTPS_PROXY", "https_proxy", "FTP_PROXY", "ftp_proxy",
    "NO_PROXY", "no_proxy", "ALL_PROXY", "all_proxy",
)
# Set from the build's platform; in the global scope automatically, in a stage after ``ARG X``.
PLATFORM_ARGS = (
    "TARGETPLATFORM", "TARGETOS", "TARGETARCH", "TARGETVARIANT",
    "BUILDPLATFORM", "BUILDOS", "BUILDARCH", "BUILDVARIANT",
)


@dataclass
class Instruction:
    """Base of every instruction: the logical line it came from."""

    line: Line

    @property
    def keyword(self) -> str:
        """RUN, COPY, ..."""
        return self.line.keyword

    @property
    def text(self) -> str:
        """The instruction as written (continuations joined), for progress lines."""
        return self.line.original.strip()


@dataclass
class From(Instruction):
    image: str = ""  # raw: may hold $ARGs from the global scope
    name: str = ""  # the stage name (AS ...), lower-case; "" when unnamed
    platform: str = ""  # raw --platform


@dataclass
class Command(Instruction):
    """RUN, CMD and ENTRYPOINT: exec form (``argv``) or shell form (``script``)."""

    argv: list[str] | None = None  # exec (JSON) form
    script: str = ""  # shell form


@dataclass
class Run(Command):
    mounts: list[str] = field(default_factory=list)  # raw --mount values
    network: str = ""  # raw --network
    security: str = ""


@dataclass
class Cmd(Command):
    pass


@dataclass
class Entrypoint(Command):
    pass


@dataclass
class KeyValues(Instruction):
    """ENV and LABEL: (key, value) pairs, raw."""

    pairs: list[tuple[str, str]] = field(default_factory=list)


@dataclass
class Env(KeyValues):
    pass


@dataclass
class Label(KeyValues):
    pass


@dataclass
class Arg(Instruction):
    args: list[tuple[str, str | None]] = field(default_factory=list)  # (name, raw default)


@dataclass
class Copy(Instruction):
    """COPY and ADD."""

    sources: list[str] = field(default_factory=list)  # raw (heredoc names included)
    dest: str = ""
    from_: str = ""  # raw --from (COPY only)
    chown: str = ""
    chmod: str = ""
    link: bool = False
    checksum: str = ""  # ADD --checksum
    keep_git_dir: bool = False
    heredocs: list[Heredoc] = field(default_factory=list)

    @property
    def is_add(self) -> bool:
        """ADD (archives are unpacked, URLs fetched) rather than COPY."""
        return self.keyword == "ADD"


@dataclass
class Expose(Instruction):
    ports: list[str] = field(default_factory=list)


@dataclass
class Volume(Instruction):
    paths: list[str] = field(default_factory=list)


@dataclass
class Single(Instruction):
    """USER, WORKDIR, STOPSIGNAL, MAINTAINER: one raw string."""

    value: str = ""


@dataclass
class Shell(Instruction):
    argv: list[str] = field(default_factory=list)


@dataclass
class Healthcheck(Instruction):
    test: list[str] = field(default_factory=list)  # ["NONE"], ["CMD", ...], ["CMD-SHELL", x]
    interval: str = ""  # raw durations
    timeout: str = ""
    start_period: str = ""
    start_interval: str = ""
    retries: str = ""


@dataclass
class OnBuild(Instruction):
    expression: str = ""  # the trigger as written, stored in the image's OnBuild
    trigger: Instruction | None = None


@dataclass
class Stage:
    """One build stage: FROM and the instructions after it."""

    index: int
    from_: From
    instructions: list[Instruction] = field(default_factory=list)

    @property
    def name(self) -> str:
        """The ``AS`` name, or ""."""
        return self.from_.name

    @property
    def label(self) -> str:
        """How progress lines name the stage: its name, else ``stage-N``."""
        return self.name or f"stage-{self.index}"


@dataclass
class Dockerfile:
    """A parsed Dockerfile: global ARGs, then stages."""

    meta_args: list[Arg]
    stages: list[Stage]
    escape: str = "\\"
    directives: dict[str, str] = field(default_factory=dict)
    warnings: list[str] = field(default_factory=list)

    def stage(self, text: str) -> Stage | None:
        """The stage called ``text`` (case-insensitive), or numbered ``text``."""
        wanted = text.lower()
        for stage in self.stages:
            if stage.name and stage.name == wanted:
                return stage
        if text.isdigit() and int(text) < len(self.stages):
            return self.stages[int(text)]
        return None


def load(text: str | bytes) -> Dockerfile:
    """Parse a Dockerfile into global ARGs and stages (raises DockerfileError)."""
    parsed = parse(text)
    return from_parsed(parsed)


def from_parsed(parsed: Parsed) -> Dockerfile:
    """Typed instructions and stages from the parser's lines."""
    meta: list[Arg] = []
    stages: list[Stage] = []
    names: set[str] = set()
    for line in parsed.lines:
        inst = instruction(line, parsed.escape)
        if isinstance(inst, From):
            if inst.name:
                if inst.name in names:
                    raise DockerfileError(
                        f"{line.where()}: duplicate name {inst.name!r} for a build stage")
                names.add(inst.name)
            stages.append(Stage(len(stages), inst))
        elif not stages:
            if not isinstance(inst, Arg):
                raise DockerfileError(
                    f"{line.where()}: {line.keyword} before the first FROM (only ARG may "
                    "come before it)")
            meta.append(inst)
        else:
            stages[-1].instructions.append(inst)
    if not stages:
        raise DockerfileError("the Dockerfile has no FROM instruction (no build stage)")
    return Dockerfile(meta, stages, parsed.escape, parsed.directives, parsed.warnings)


# -- one instruction -----------------------------------------------------------------------

_ALLOWED_FLAGS: dict[str, dict[str, str]] = {
    # flag name -> kind: "str", "bool", "list"
    "FROM": {"platform": "str"},
    "RUN": {"mount": "list", "network": "str", "security": "str"},
    "COPY": {"from": "str", "chown": "str", "chmod": "str", "link": "bool"},
    "ADD": {"chown": "str", "chmod": "str", "link": "bool", "checksum": "str",
            "keep-git-dir": "bool"},
    "HEALTHCHECK": {"interval": "str", "timeout": "str", "start-period": "str",
                    "start-interval": "str", "retries": "str"},
}


def _flags(line: Line) -> dict[str, str | bool | list[str]]:
    allowed = _ALLOWED_FLAGS.get(line.keyword, {})
    out: dict[str, str | bool | list[str]] = {}
    for flag in line.flags:
        name, eq, value = flag[2:].partition("=")
        kind = allowed.get(name)
        if kind is None:
            raise DockerfileError(f"{line.where()}: unknown flag: --{name}")
        if kind == "bool":
            if eq and value.lower() not in ("true", "false"):
                raise DockerfileError(f"{line.where()}: expecting boolean value for flag "
                                      f"{name}, not: {value}")
            out[name] = (not eq) or value.lower() == "true"
        elif kind == "list":
            if not eq:
                raise DockerfileError(f"{line.where()}: missing a value on flag: --{name}")
            existing = out.setdefault(name, [])
            assert isinstance(existing, list)
            existing.append(value)
        else:
            if not eq:
                raise DockerfileError(f"{line.where()}: missing a value on flag: --{name}")
            if name in out:
                raise DockerfileError(f"{line.where()}: duplicate flag specified: --{name}")
            out[name] = value
    return out


def _str(flags: dict[str, str | bool | list[str]], name: str) -> str:
    value = flags.get(name, "")
    return value if isinstance(value, str) else ""


def instruction(line: Line, escape: str = "\\") -> Instruction:
    """The typed instruction of one logical line."""
    kw = line.keyword
    flags = _flags(line)
    rest = line.rest.strip()
    where = line.where()
    if kw == "FROM":
        words = rest.split()
        if len(words) not in (1, 3) or (len(words) == 3 and words[1].lower() != "as"):
            raise DockerfileError(f"{where}: FROM requires either one or three arguments")
        name = words[2].lower() if len(words) == 3 else ""
        if name and not re.fullmatch(r"[a-z][a-z0-9._-]*", name):
            raise DockerfileError(f"{where}: invalid name for build stage: {words[2]!r}, name "
                                  "can't start with a number or contain symbols")
        return From(line, image=words[0], name=name, platform=_str(flags, "platform"))
    if kw in ("RUN", "CMD", "ENTRYPOINT"):
        argv = parse_json_array(rest)
        if argv is None and not rest and kw == "RUN" and not line.heredocs:
            raise DockerfileError(f"{where}: RUN requires at least one argument")
        if kw == "RUN":
            mounts = flags.get("mount", [])
            return Run(line, argv=argv, script=rest if argv is None else "",
                       mounts=list(mounts) if isinstance(mounts, list) else [],
                       network=_str(flags, "network"), security=_str(flags, "security"))
        cls = Cmd if kw == "CMD" else Entrypoint
        return cls(line, argv=argv, script=rest if argv is None else "")
    if kw in ("ENV", "LABEL"):
        pairs = _key_values(rest, kw, where, escape)
        return (Env if kw == "ENV" else Label)(line, pairs=pairs)
    if kw == "ARG":
        words = split_words(rest, escape)
        if not words:
            raise DockerfileError(f"{where}: ARG requires at least one argument")
        args: list[tuple[str, str | None]] = []
        for word in words:
            name, eq, value = word.partition("=")
            if not name:
                raise DockerfileError(f"{where}: ARG names can not be blank")
            args.append((name, value if eq else None))
        return Arg(line, args=args)
    if kw in ("COPY", "ADD"):
        listed = parse_json_array(rest)
        words = listed if listed is not None else rest.split()
        if len(words) < 2:
            raise DockerfileError(f"{where}: {kw} requires at least two arguments, but only "
                                  f"{len(words)} provided")
        if kw == "ADD" and flags.get("from"):
            raise DockerfileError(f"{where}: unknown flag: --from")
        return Copy(line, sources=words[:-1], dest=words[-1], from_=_str(flags, "from"),
                    chown=_str(flags, "chown"), chmod=_str(flags, "chmod"),
                    link=bool(flags.get("link", False)), checksum=_str(flags, "checksum"),
                    keep_git_dir=bool(flags.get("keep-git-dir", False)),
                    heredocs=list(line.heredocs))
    if kw == "EXPOSE":
        if not rest:
            raise DockerfileError(f"{where}: EXPOSE requires at least one argument")
        return Expose(line, ports=rest.split())
    if kw == "VOLUME":
        paths = parse_json_array(rest)
        if paths is None:
            paths = rest.split()
        if not paths or any(not p.strip() for p in paths):
            raise DockerfileError(f"{where}: VOLUME specified can not be an empty string")
        return Volume(line, paths=paths)
    if kw in ("USER", "WORKDIR", "STOPSIGNAL", "MAINTAINER"):
        if not rest:
            raise DockerfileError(f"{where}: {kw} requires exactly one argument")
        if kw == "STOPSIGNAL" and len(rest.split()) > 1:
            raise DockerfileError(f"{where}: {kw} requires exactly one argument")
        return Single(line, value=rest)
    if kw == "SHELL":
        argv = parse_json_array(rest)
        if argv is None:
            raise DockerfileError(f"{where}: SHELL requires the arguments to be in JSON form")
        if not argv:
            raise DockerfileError(f"{where}: SHELL requires at least one argument")
        return Shell(line, argv=argv)
    if kw == "HEALTHCHECK":
        return _healthcheck(line, flags, rest)
    if kw == "ONBUILD":
        return _onbuild(line, rest, escape)
    raise DockerfileError(f"{where}: unknown instruction: {kw}")


def _key_values(rest: str, kw: str, where: str, escape: str) -> list[tuple[str, str]]:
    words = split_words(rest, escape)
    if not words:
        raise DockerfileError(f"{where}: {kw} requires at least one argument")
    if "=" not in words[0]:
        # The legacy form: ``ENV NAME some value`` (one pair; the value is the rest).
        parts = re.split(r"[ \t]+", rest, maxsplit=1)
        if len(parts) < 2 or not parts[1]:
            raise DockerfileError(f"{where}: {kw} must have two arguments")
        return [(parts[0], parts[1])]
    pairs: list[tuple[str, str]] = []
    for word in words:
        key, eq, value = word.partition("=")
        if not eq:
            raise DockerfileError(f"{where}: syntax error - can't find = in {word!r}. Must be "
                                  "of the form: name=value")
        if not key:
            raise DockerfileError(f"{where}: {kw} names can not be blank")
        pairs.append((key, value))
    return pairs


def _healthcheck(line: Line, flags: dict[str, str | bool | list[str]], rest: str) -> Healthcheck:
    where = line.where()
    kind, _, args = rest.partition(" ")
    kind_upper = kind.upper()
    if kind_upper == "NONE":
        if args.strip() or line.flags:
            raise DockerfileError(f"{where}: HEALTHCHECK NONE takes no arguments")
        return Healthcheck(line, test=["NONE"])
    if kind_upper != "CMD":
        raise DockerfileError(f"{where}: Unknown type {kind!r} in HEALTHCHECK (try CMD)")
    args = args.strip()
    argv = parse_json_array(args)
    if argv is not None:
        test = ["CMD", *argv]
    else:
        if not args:
            raise DockerfileError(f"{where}: Missing command after HEALTHCHECK CMD")
        test = ["CMD-SHELL", args]
    return Healthcheck(
        line, test=test, interval=_str(flags, "interval"), timeout=_str(flags, "timeout"),
        start_period=_str(flags, "start-period"), start_interval=_str(flags, "start-interval"),
        retries=_str(flags, "retries"))


def _onbuild(line: Line, rest: str, escape: str) -> OnBuild:
    where = line.where()
    if not rest:
        raise DockerfileError(f"{where}: ONBUILD requires at least one argument")
    expression = re.sub(r"(?i)^\s*ONBUILD\s*", "", line.original.strip(), count=1)
    trigger = trigger_line(expression, line.start, line.heredocs)
    # Here-documents travel with the trigger text, so the child build parses them again.
    for doc in line.heredocs:
        expression += "\n" + doc.content + doc.name
    return OnBuild(line, expression=expression, trigger=instruction(trigger, escape))


def trigger_line(expression: str, start: int, heredocs: list[Heredoc] | None = None) -> Line:
    """The logical line of an ONBUILD trigger expression (checked: no ONBUILD, FROM or
    MAINTAINER)."""
    keyword, _, rest = expression.strip().partition(" ")
    upper = keyword.upper()
    where = f"line {start}"
    if upper == "ONBUILD":
        raise DockerfileError(f"{where}: Chaining ONBUILD via `ONBUILD ONBUILD` isn't allowed")
    if upper in ("FROM", "MAINTAINER"):
        raise DockerfileError(f"{where}: {upper} isn't allowed as an ONBUILD trigger")
    from servin.dockerfile.parser import KEYWORDS

    if upper not in KEYWORDS:
        raise DockerfileError(f"{where}: unknown instruction: {keyword}")
    flags, args = extract_flags(rest.lstrip())
    return Line(upper, flags, args, expression, start, start, list(heredocs or []))


def parse_trigger(expression: str) -> Instruction:
    """An ONBUILD trigger stored in a base image, as an instruction to run now."""
    parsed = parse(expression)
    if len(parsed.lines) != 1:
        raise DockerfileError(f"invalid ONBUILD trigger {expression!r}")
    line = parsed.lines[0]
    trigger_line(line.original, 1)  # the same checks as at ONBUILD time
    return instruction(line, parsed.escape)
