"""A docker CLI script over the object endpoints (images, registry, networks, volumes, system),
run against Servin's docker.sock and, where installed, against a private dockerd 20.10.

Each step names the command (with ``{S}`` a per-run suffix, ``{REG}`` the test registry,
``{DIR}`` a scratch directory, ``{NET}`` a subnet, ``{SINCE}``/``{UNTIL}`` times), the exit
code, and what its output must show. ``same`` marks the steps whose normalised output must
be identical on both daemons.
"""

from __future__ import annotations

import re
import subprocess
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

DockerCLI = Callable[..., subprocess.CompletedProcess[str]]
HEX64 = re.compile(r"^[0-9a-f]{64}$")
_DIGEST = re.compile(r"sha256:[0-9a-f]{64}")
_SHORT_ID = re.compile(r"\b[0-9a-f]{12}\b")


@dataclass(frozen=True)
class Step:
    """One command of the script."""

    args: tuple[str, ...]
    rc: int = 0
    out: str | None = None  # the exact stdout (stripped), placeholders expanded
    contains: tuple[str, ...] = ()  # substrings of stdout + stderr
    match: re.Pattern[str] | None = None  # a pattern stdout (stripped) must match whole
    same: bool = True  # the normalised stdout agrees with dockerd's
    unordered: bool = False  # ``out``'s lines in any order
    mark: str = ""  # record the time before this step as {SINCE} / after it as {UNTIL}


def steps(busybox_tar: Path) -> list[Step]:
    """The script (the busybox rootfs tarball is imported first)."""
    S = Step
    return [
        S(("import", "-c", 'CMD ["sh"]', str(busybox_tar), "sv-base{S}:1"),
          match=re.compile(r"^sha256:[0-9a-f]{64}$"), same=False, mark="since"),
        S(("images", "--format", "{{.Repository}}:{{.Tag}}", "--filter",
           "reference=sv-base{S}"), out="sv-base{S}:1"),
        S(("import", "-m", "imported for the script", "-c", "ENV X=1", str(busybox_tar),
           "sv-msg{S}:1"), match=re.compile(r"^sha256:[0-9a-f]{64}$"), same=False),
        S(("history", "--format", "{{.Comment}}", "sv-msg{S}:1"),
          out="imported for the script"),
        S(("image", "inspect", "-f", "{{.Config.Env}}", "sv-msg{S}:1"), out="[X=1]"),
        S(("rmi", "sv-msg{S}:1"), contains=("Untagged: sv-msg{S}:1", "Deleted: sha256:"),
          same=False),
        S(("tag", "sv-base{S}:1", "sv-base{S}:2"), out=""),
        S(("tag", "sv-base{S}:1", "{REG}/sv-script{S}:v1"), out=""),
        S(("images", "--filter", "reference=sv-base{S}:*", "--format", "{{.Tag}}"),
          out="1\n2", unordered=True),
        S(("images", "--filter", "dangling=true", "--format", "{{.ID}}",
           "sv-base{S}"), out=""),
        S(("image", "inspect", "-f", "{{.Os}} {{len .RepoTags}} {{.Config.Cmd}}",
           "sv-base{S}:1"), out="linux 3 [sh]"),
        S(("history", "--format", "{{.Size}}", "sv-base{S}:2"), match=re.compile(r"^\S+B$"),
          same=False),
        S(("history", "sv-base{S}:1"), contains=("IMAGE", "CREATED BY"), same=False),
        S(("push", "{REG}/sv-script{S}:v1"),
          contains=("The push refers to repository [{REG}/sv-script{S}]", "v1: digest: sha256:"),
          same=False),
        S(("tag", "sv-base{S}:1", "{REG}/sv-script{S}:v2"), out=""),
        S(("push", "--all-tags", "{REG}/sv-script{S}"),
          contains=("v1: digest: sha256:", "v2: digest: sha256:"), same=False),
        S(("rmi", "{REG}/sv-script{S}:v2"), contains=("Untagged: {REG}/sv-script{S}:v2",),
          same=False),
        S(("rmi", "{REG}/sv-script{S}:v1"), contains=("Untagged: {REG}/sv-script{S}:v1",),
          same=False),
        S(("pull", "{REG}/sv-script{S}:v1"),
          contains=("v1: Pulling from sv-script{S}",
                    "Status: Downloaded newer image for {REG}/sv-script{S}:v1",
                    "Digest: sha256:"), same=False),
        S(("images", "--digests", "--format", "{{.Repository}}:{{.Tag}} {{.Digest}}",
           "{REG}/sv-script{S}"), match=re.compile(r"^\S+/sv-script\S*:v1 sha256:[0-9a-f]{64}$"),
          same=False),  # each daemon compresses the layer its own way
        S(("save", "-o", "{DIR}/saved.tar", "sv-base{S}:1", "sv-base{S}:2"), out=""),
        S(("rmi", "sv-base{S}:2"), out="Untagged: sv-base{S}:2"),
        S(("load", "-i", "{DIR}/saved.tar"),
          contains=("Loaded image: sv-base{S}:1", "Loaded image: sv-base{S}:2"), same=False),
        S(("images", "--format", "{{.Tag}}", "sv-base{S}"), out="1\n2", unordered=True),
        S(("rmi", "sv-missing{S}:nope"), rc=1,
          contains=("No such image: sv-missing{S}:nope",)),
        S(("tag", "sv-missing{S}:nope", "sv-other{S}"), rc=1,
          contains=("No such image: sv-missing{S}:nope",)),
        S(("network", "create", "--label", "k=v", "--subnet", "{NET}", "sv-net{S}"),
          match=HEX64, same=False),
        S(("network", "create", "sv-net{S}"), rc=1,
          contains=("network with name sv-net{S} already exists",)),
        S(("network", "create", "--internal", "sv-net{S}-b"), match=HEX64, same=False),
        S(("network", "ls", "--filter", "label=k=v", "--format",
           "{{.Name}} {{.Driver}} {{.Scope}}"), out="sv-net{S} bridge local"),
        S(("network", "inspect", "-f", "{{.Name}} {{.Driver}} {{.Internal}} "
           "{{(index .IPAM.Config 0).Subnet}} {{index .Labels \"k\"}}", "sv-net{S}"),
          out="sv-net{S} bridge false {NET} v"),
        S(("network", "inspect", "-f", "{{.Internal}} {{len .Containers}}", "sv-net{S}-b"),
          out="true 0"),
        S(("network", "ls", "-q", "--filter", "name=sv-net{S}"), match=re.compile(
            r"^[0-9a-f]{12}\n[0-9a-f]{12}$"), same=False),
        S(("network", "rm", "sv-net{S}"), out="sv-net{S}"),
        S(("network", "rm", "sv-missing{S}"), rc=1, contains=("sv-missing{S}", "not found")),
        S(("network", "prune", "-f", "--filter", "label!=other"),
          contains=("Deleted Networks:", "sv-net{S}-b"), same=False),
        S(("network", "ls", "-q", "--filter", "name=sv-net{S}"), out=""),
        S(("volume", "create", "--label", "a=b", "sv-vol{S}"), out="sv-vol{S}"),
        S(("volume", "create", "sv-vol{S}-b"), out="sv-vol{S}-b"),
        S(("volume", "ls", "--filter", "label=a=b", "--format", "{{.Name}} {{.Driver}}"),
          out="sv-vol{S} local"),
        S(("volume", "inspect", "-f", "{{.Name}} {{.Driver}} {{.Labels}} {{.Scope}}",
           "sv-vol{S}"), out="sv-vol{S} local map[a:b] local"),
        S(("volume", "rm", "sv-vol{S}"), out="sv-vol{S}"),
        S(("volume", "rm", "sv-vol{S}"), rc=1, contains=("no such volume",)),
        S(("volume", "ls", "-q", "--filter", "name=sv-vol{S}"), out="sv-vol{S}-b"),
        S(("volume", "rm", "sv-vol{S}-b"), out="sv-vol{S}-b"),
        # (dockerd 20.10 speaks API 1.41: prune's --all and its anonymous-only default came
        # with 1.42, so this prune has nothing of the script's to remove on either daemon)
        S(("volume", "prune", "-f"), contains=("Total reclaimed space",), same=False,
          mark="until"),
        S(("volume", "ls", "-q", "--filter", "name=sv-vol{S}"), out=""),
        S(("events", "--since", "{SINCE}", "--until", "{UNTIL}", "--filter", "type=volume",
           "--filter", "event=create", "--filter", "event=destroy",
           "--format", "{{.Action}} {{.Actor.ID}}"),
          out="create sv-vol{S}\ncreate sv-vol{S}-b\ndestroy sv-vol{S}\ndestroy sv-vol{S}-b"),
        S(("events", "--since", "{SINCE}", "--until", "{UNTIL}", "--filter", "type=network",
           "--filter", "event=create", "--format", "{{.Action}} {{.Actor.Attributes.name}}"),
          out="create sv-net{S}\ncreate sv-net{S}-b"),
        S(("system", "df", "--format", "{{.Type}}"),
          out="Images\nContainers\nLocal Volumes\nBuild Cache"),
        S(("info", "--format", "{{.Swarm.LocalNodeState}}"), out="inactive"),
        S(("version", "--format", "{{.Server.Os}}"), out="linux"),
        # The classic builder (DOCKER_BUILDKIT=0 on both: dockerd 20.10 may offer BuildKit).
        S(("build", "-t", "sv-built{S}:1", "{DIR}/ctx"),
          contains=("Step 1/3 : FROM sv-base{S}:1", "Step 2/3 : RUN echo value-{S} > /v",
                    " ---> Running in ", "value-{S}", "Successfully built ",
                    "Successfully tagged sv-built{S}:1")),
        S(("build", "-t", "sv-built{S}:2", "{DIR}/ctx"),
          contains=(" ---> Using cache", "Successfully tagged sv-built{S}:2")),
        # (dockerd numbers ARG as a step and runs a container for metadata steps: compared
        # by what the image has)
        S(("build", "-t", "sv-built{S}:3", "-f", "{DIR}/ctx/full.Dockerfile", "--build-arg",
           "V=x{S}", "--label", "l=1", "{DIR}/ctx"),
          contains=("value=x{S}", "Successfully tagged sv-built{S}:3"), same=False),
        S(("image", "inspect", "-f", "{{.Config.Labels.l}} {{.Config.Cmd}} {{.Config.WorkingDir}}",
           "sv-built{S}:3"), out="1 [cat /v] /w"),
        S(("build", "-q", "{DIR}/ctx"),
          match=re.compile(r"^sha256:[0-9a-f]{64}$"), same=False),
        S(("build", "-f", "{DIR}/ctx/bad.Dockerfile", "{DIR}/ctx"), rc=3,
          contains=("The command '/bin/sh -c exit 3' returned a non-zero code: 3",)),
        S(("build", "-f", "{DIR}/ctx/missing.Dockerfile", "{DIR}/ctx"), rc=1, same=False),
        # A rebuild under the same tag leaves the old image dangling; prune takes it.
        S(("build", "-q", "-t", "sv-built{S}:3", "--build-arg", "V=y{S}", "-f",
           "{DIR}/ctx/full.Dockerfile", "{DIR}/ctx"), match=re.compile(r"^sha256:[0-9a-f]{64}$"),
          same=False),
        S(("images", "-q", "--filter", "dangling=true", "--filter", "label=l=1"),
          match=re.compile(r"^[0-9a-f]{12}$"), same=False),
        S(("image", "prune", "-f", "--filter", "label=l=1"),
          contains=("Deleted Images:", "deleted: sha256:", "Total reclaimed space"),
          same=False),
        S(("images", "-q", "--filter", "dangling=true", "--filter", "label=l=1"), out=""),
        S(("rmi", "sv-built{S}:1", "sv-built{S}:2", "sv-built{S}:3"),
          contains=("Untagged: sv-built{S}:1", "Untagged: sv-built{S}:3"),
          same=False),
        S(("builder", "prune", "-f"), contains=("Total reclaimed space",), same=False),
        S(("rmi", "sv-base{S}:1", "sv-base{S}:2"), contains=("Untagged: sv-base{S}:1",
                                                           "Untagged: sv-base{S}:2"),
          same=False),
    ]


def prepare(directory: Path, suffix: str) -> None:
    """The build context of the script's builds."""
    ctx = directory / "ctx"
    ctx.mkdir()
    (ctx / "Dockerfile").write_text(
        f"FROM sv-base{suffix}:1\nRUN echo value-{suffix} > /v && cat /v\n"
        "COPY f.txt /w/f.txt\n")
    (ctx / "full.Dockerfile").write_text(
        f"FROM sv-base{suffix}:1\nARG V\nRUN echo \"value=$V\" > /v && cat /v\n"
        "COPY f.txt /w/f.txt\nWORKDIR /w\nCMD [\"cat\", \"/v\"]\n")
    (ctx / "f.txt").write_text("file in the context\n")
    (ctx / "bad.Dockerfile").write_text(f"FROM sv-base{suffix}:1\nRUN exit 3\n")


@dataclass
class Result:
    """What one step printed."""

    step: Step
    args: list[str]
    rc: int
    stdout: str
    stderr: str
    normalised: str = ""


@dataclass
class Context:
    """The placeholders of one run."""

    suffix: str
    registry: str
    directory: Path
    subnet: str
    values: dict[str, str] = field(default_factory=dict)

    def expand(self, text: str) -> str:
        table = {"{S}": self.suffix, "{REG}": self.registry, "{DIR}": str(self.directory),
                 "{NET}": self.subnet, **self.values}
        for key, value in table.items():
            text = text.replace(key, value)
        return text

    def normalise(self, text: str, unordered: bool = False) -> str:
        text = text.replace(self.registry, "{REG}").replace(self.suffix, "{S}")
        text = text.replace(self.subnet, "{NET}").strip()
        # IDs differ between daemons (each its own layers and times): compare the rest.
        text = _DIGEST.sub("<digest>", _SHORT_ID.sub("<id>", text))
        return "\n".join(sorted(text.splitlines())) if unordered else text


def run_script(cli: Callable[..., subprocess.CompletedProcess[str]], ctx: Context,
               busybox_tar: Path) -> list[Result]:
    """Run every step; return what each printed (checked by ``check``)."""
    prepare(ctx.directory, ctx.suffix)
    out = []
    for step in steps(busybox_tar):
        if step.mark == "since":
            ctx.values["{SINCE}"] = f"{time.time() - 1:.3f}"
        args = [ctx.expand(a) for a in step.args]
        done = cli(*args, timeout=120)
        if step.mark == "until":
            time.sleep(0.2)
            ctx.values["{UNTIL}"] = f"{time.time():.3f}"
            time.sleep(0.3)
        out.append(Result(step, args, done.returncode, done.stdout, done.stderr,
                          ctx.normalise(done.stdout, step.unordered)))
    return out


def check(results: list[Result], ctx: Context) -> list[str]:
    """The failed expectations (empty when every step did what it should)."""
    failures = []
    for r in results:
        step, what = r.step, " ".join(r.args)
        if r.rc != step.rc:
            failures.append(f"{what}: exit {r.rc}, expected {step.rc}: {r.stderr.strip()}")
            continue
        text = r.stdout.strip()
        if step.unordered:
            text = "\n".join(sorted(text.splitlines()))
        if step.out is not None and text != ctx.expand(step.out):
            failures.append(f"{what}: printed {text!r}, expected {ctx.expand(step.out)!r}")
        for piece in step.contains:
            if ctx.expand(piece) not in r.stdout + r.stderr:
                failures.append(f"{what}: {ctx.expand(piece)!r} not in {r.stdout + r.stderr!r}")
        if step.match is not None and not step.match.match(text):
            failures.append(f"{what}: {text!r} does not match {step.match.pattern}")
    return failures
