"""``servin build`` (also ``image build``) and ``servin builder prune``."""

from __future__ import annotations

import os
import sys
import zlib
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

import click

from servin.cli.flagsyntax import DockerGroup
from servin.cli.progress import MODES
from servin.cli.session import get_client
from servin.errors import InvalidArgument, NotFound, ServinError

if TYPE_CHECKING:
    from servin.client.sync import Client


@click.command("build")
@click.option("-t", "--tag", "tags", multiple=True, metavar="NAME[:TAG]",
              help="Name and optionally a tag (repeatable)")
@click.option("-f", "--file", "file_", default="", metavar="PATH",
              help="Name of the Dockerfile (default: PATH/Dockerfile; - for stdin)")
@click.option("--build-arg", "build_args", multiple=True, metavar="KEY[=VALUE]",
              help="Set build-time variables")
@click.option("--target", default="", help="Set the target build stage to build")
@click.option("--no-cache", is_flag=True, help="Do not use cache when building the image")
@click.option("--pull", is_flag=True, help="Always attempt to pull a newer version of the image")
@click.option("--cache-from", multiple=True, metavar="IMAGE",
              help="Images to consider as cache sources")
@click.option("--label", "labels", multiple=True, metavar="KEY=VALUE",
              help="Set metadata for an image")
@click.option("--iidfile", default="", metavar="FILE", help="Write the image ID to the file")
@click.option("-q", "--quiet", is_flag=True,
              help="Suppress the build output and print image ID on success")
@click.option("--platform", default=lambda: os.environ.get("DOCKER_DEFAULT_PLATFORM", ""),
              help="Set platform (this machine's; others need emulation)")
@click.option("--network", default="default",
              help="Set the networking mode for the RUN instructions (default, none, host, "
              "or a network's name)")
@click.option("--add-host", multiple=True, metavar="HOST:IP",
              help="Add a custom host-to-IP mapping")
@click.option("--progress", type=click.Choice(MODES), default="auto",
              help="Type of progress output (auto, plain, tty, quiet)")
@click.option("-o", "--output", "outputs", multiple=True, metavar="type=local,dest=DIR",
              help="Export the result's files (type=local,dest=DIR or type=tar,dest=FILE) "
              "instead of recording an image")
@click.option("--secret", "secrets", multiple=True, metavar="id=ID,src=PATH",
              help="Secret for RUN --mount=type=secret (id=ID,src=PATH or id=ID,env=VAR)")
@click.option("--rm/--no-rm", default=True,
              help="Remove intermediate containers after a successful build (always done)")
@click.option("--force-rm", is_flag=True,
              help="Always remove intermediate containers (always done)")
@click.option("--compress", is_flag=True, help="Compress the build context using gzip")
@click.option("-m", "--memory", default="", help="Memory limit of RUN steps")
@click.option("--memory-swap", default="",
              help="Swap limit equal to memory plus swap: -1 to enable unlimited swap")
@click.option("-c", "--cpu-shares", type=int, default=0, help="CPU shares (relative weight)")
@click.option("--cpu-period", type=int, default=0,
              help="Limit the CPU CFS (Completely Fair Scheduler) period")
@click.option("--cpu-quota", type=int, default=0,
              help="Limit the CPU CFS (Completely Fair Scheduler) quota")
@click.option("--cpuset-cpus", default="", help="CPUs in which to allow execution (0-3, 0,1)")
@click.option("--cpuset-mems", default="", help="MEMs in which to allow execution (0-3, 0,1)")
@click.option("--shm-size", default="", help="Size of /dev/shm of RUN steps")
@click.option("--ulimit", "ulimits", multiple=True, metavar="NAME=SOFT[:HARD]",
              help="Ulimit options")
@click.option("--isolation", default="", help="Container isolation technology (default only)")
@click.argument("path", metavar="PATH | -")
def build(tags: tuple[str, ...], file_: str, build_args: tuple[str, ...], target: str,
          no_cache: bool, pull: bool, cache_from: tuple[str, ...], labels: tuple[str, ...],
          iidfile: str, quiet: bool, platform: str, network: str, add_host: tuple[str, ...],
          progress: str, outputs: tuple[str, ...], secrets: tuple[str, ...], rm: bool,
          force_rm: bool, compress: bool, memory: str, memory_swap: str, cpu_shares: int,
          cpu_period: int, cpu_quota: int, cpuset_cpus: str, cpuset_mems: str, shm_size: str,
          ulimits: tuple[str, ...], isolation: str, path: str) -> None:
    """Build an image from a Dockerfile."""
    from servin.api.servin.v1 import common_pb2, images_pb2
    from servin.cli.buildprogress import renderer

    if isolation not in ("", "default"):
        raise InvalidArgument(f"isolation {isolation!r} is not supported (only default)")
    from servin.reference import parse_reference

    for tag in tags:
        if parse_reference(tag).digest:
            raise InvalidArgument(f"invalid tag {tag!r}: a tag cannot carry a digest")
    output = _parse_output(outputs)
    args = _build_args(build_args)
    options = images_pb2.BuildOptions(
        tags=list(tags), target=target, no_cache=no_cache, pull=pull,
        cache_from=list(cache_from), platform=platform, network=network,
        extra_hosts=list(add_host), output="tar" if output else "")
    options.build_args.extend(common_pb2.KeyValue(key=k, value=v) for k, v in args)
    for item in labels:
        key, _, value = item.partition("=")
        options.labels.append(common_pb2.KeyValue(key=key, value=value))
    for secret in secrets:
        options.secrets.append(_secret(secret))
    r = options.resources
    if memory or memory_swap or shm_size:
        from servin.units import parse_bytes
    if memory:
        r.memory = parse_bytes(memory, "--memory")
    if memory_swap:
        r.memory_swap = parse_bytes(memory_swap, "--memory-swap")
    r.cpu_shares, r.cpu_period, r.cpu_quota = cpu_shares, cpu_period, cpu_quota
    r.cpuset_cpus, r.cpuset_mems = cpuset_cpus, cpuset_mems
    if shm_size:
        options.shm_size = parse_bytes(shm_size, "--shm-size")
    for item in ulimits:
        name, sep, limits = item.partition("=")
        soft, _, hard = limits.partition(":")
        try:
            options.ulimits.append(images_pb2.BuildUlimit(name=name, soft=int(soft),
                                                          hard=int(hard or soft)))
        except ValueError:
            raise InvalidArgument(f"invalid ulimit argument: {item!r}") from None
        if not sep:
            raise InvalidArgument(f"invalid ulimit argument: {item!r}")

    client = get_client()
    context = _context(client, path, file_, dict(args), target, platform)
    options.dockerfile = context.dockerfile
    options.dockerfile_path = context.dockerfile_path
    options.context_trimmed = context.trimmed
    options.dockerignore.extend(context.ignore)
    view = renderer("quiet" if quiet else progress)
    chunks = _counted(context.chunks, view, compress)
    sink = _OutputSink(output) if output else None
    try:
        for msg in client.build(options, chunks):
            if msg.WhichOneof("event") == "output_data":
                assert sink is not None
                sink.write(msg.output_data)
                continue
            view.feed(msg)
    except ServinError:
        view.close()
        if sink is not None:
            sink.abort()
        if view.failure is not None:
            sys.exit(1)  # the failed step is on screen already
        raise
    except BaseException:
        view.close()
        if sink is not None:
            sink.abort()
        raise
    view.close()
    if sink is not None:
        sink.finish()
    result = view.result
    if result is None:
        raise ServinError("the daemon ended the build without a result")
    if iidfile:
        Path(iidfile).write_text(result.image_id)
    if not result.recorded:
        return
    if quiet:
        click.echo(result.image_id)
        return
    click.echo(f"Successfully built {result.image_id.removeprefix('sha256:')[:12]}")
    for tag in result.tags:
        click.echo(f"Successfully tagged {tag}")


def _build_args(items: tuple[str, ...]) -> list[tuple[str, str]]:
    """``KEY=VALUE``, or ``KEY`` (its value from this environment; skipped when unset)."""
    out: list[tuple[str, str]] = []
    for item in items:
        key, sep, value = item.partition("=")
        if not key:
            raise InvalidArgument(f"invalid --build-arg {item!r}")
        if not sep:
            if key not in os.environ:
                continue
            value = os.environ[key]
        out.append((key, value))
    return out


def _secret(text: str) -> Any:
    from servin.api.servin.v1 import images_pb2

    fields: dict[str, str] = {}
    for part in text.split(","):
        key, _, value = part.partition("=")
        fields[key.strip().lower()] = value
    secret_id = fields.get("id", "")
    if not secret_id:
        raise InvalidArgument(f"invalid --secret {text!r}: it needs id=")
    source = fields.get("src") or fields.get("source") or ""
    env = fields.get("env", "")
    if source:
        try:
            data = Path(source).expanduser().read_bytes()
        except OSError as exc:
            raise InvalidArgument(f"--secret {secret_id}: cannot read {source}: "
                                  f"{exc.strerror}") from None
    elif env or secret_id in os.environ:
        name = env or secret_id
        if name not in os.environ:
            raise InvalidArgument(f"--secret {secret_id}: the environment variable {name} is "
                                  "not set")
        data = os.environ[name].encode()
    else:
        raise InvalidArgument(f"--secret {secret_id}: give src=PATH or env=VAR")
    return images_pb2.BuildSecret(id=secret_id, data=data)


def _parse_output(outputs: tuple[str, ...]) -> tuple[str, str] | None:
    """``-o`` as (kind, dest): ``DIR`` or ``type=local,dest=DIR``, ``-`` or
    ``type=tar[,dest=FILE]`` (stdout without dest)."""
    if not outputs:
        return None
    if len(outputs) > 1:
        raise InvalidArgument("only one --output may be given")
    text = outputs[0]
    if text == "-":
        return ("tar", "-")
    if "=" not in text:
        return ("local", text)
    fields: dict[str, str] = {}
    for part in text.split(","):
        key, _, value = part.partition("=")
        fields[key.strip()] = value.strip()
    kind = fields.pop("type", "local")
    dest = fields.pop("dest", "")
    if fields:
        raise InvalidArgument(f"unknown --output field {next(iter(fields))!r}")
    if kind == "local":
        if not dest:
            raise InvalidArgument("--output type=local needs dest=DIR")
        return ("local", dest)
    if kind == "tar":
        return ("tar", dest or "-")
    raise InvalidArgument(f"unsupported --output type {kind!r} (local or tar)")


class _OutputSink:
    """Writes the result's files: a tar file, stdout, or a directory (extracted)."""

    def __init__(self, output: tuple[str, str]) -> None:
        import tempfile

        self.kind, self.dest = output
        self.spool: Any = None
        if self.kind == "tar" and self.dest == "-":
            if sys.stdout.isatty():
                raise InvalidArgument("refusing to write a tar archive to a terminal: "
                                      "redirect it or give dest=FILE")
            self.out: Any = sys.stdout.buffer
        elif self.kind == "tar":
            self.out = open(self.dest, "wb")  # noqa: SIM115 - closed in finish/abort
        else:
            Path(self.dest).mkdir(parents=True, exist_ok=True)
            self.spool = tempfile.TemporaryFile()  # noqa: SIM115 - closed in finish/abort
            self.out = self.spool

    def write(self, data: bytes) -> None:
        self.out.write(data)

    def finish(self) -> None:
        import tarfile

        if self.spool is not None:
            self.spool.seek(0)
            with tarfile.open(fileobj=self.spool, mode="r") as tar:
                tar.extractall(self.dest, filter="tar")
            self.spool.close()
        elif self.out is not sys.stdout.buffer:
            self.out.close()
        else:
            self.out.flush()

    def abort(self) -> None:
        if self.spool is not None:
            self.spool.close()
        elif self.out is not sys.stdout.buffer:
            self.out.close()
            Path(self.dest).unlink(missing_ok=True)


def _counted(chunks: Iterator[bytes], view: Any, compress: bool) -> Iterator[bytes]:
    """The context's chunks (gzip-compressed with ``--compress``), reporting bytes sent."""
    sent = 0
    packer = zlib.compressobj(6, zlib.DEFLATED, 31) if compress else None
    for chunk in chunks:
        data = packer.compress(chunk) if packer is not None else chunk
        if data:
            sent += len(data)
            view.sending(sent)
            yield data
    if packer is not None:
        tail = packer.flush()
        sent += len(tail)
        yield tail
    view.sending(sent, done=True)


def _context(client: Client, path: str, file_: str, args: dict[str, str], target: str,
             platform: str) -> Any:
    """The context to send for PATH (directory, tar file or -)."""
    from servin.cli import buildcontext

    if path == "-":
        if file_ == "-":
            raise InvalidArgument("the context and the Dockerfile cannot both come from stdin")
        return buildcontext.from_stdin(file_)
    if "://" in path or path.startswith("git@"):
        raise InvalidArgument(f"remote build contexts ({path}) are not supported: clone or "
                              "download it and build from the directory")
    context_dir = Path(path)
    if context_dir.is_file():
        return buildcontext.from_archive(context_dir, file_)
    if not context_dir.exists():
        raise InvalidArgument(f"unable to prepare context: path {path!r} not found")
    dockerfile, dockerfile_path = buildcontext.dockerfile_for(context_dir, file_)
    patterns = buildcontext.ignore_patterns(context_dir, dockerfile_path)
    # A daemon on this machine gets the whole context (as docker sends it); a remote one only
    # what the Dockerfile can read.
    remote = not client.url.startswith("unix://")
    wanted = _reads(client, dockerfile, args, target, platform) if remote else None
    return buildcontext.from_directory(context_dir, dockerfile, dockerfile_path, patterns,
                                       wanted)


def _reads(client: Client, dockerfile: bytes, args: dict[str, str], target: str,
           platform: str) -> Any:
    """A filter keeping the context files the Dockerfile can read (None: send them all)."""
    import json

    from servin.dockerfile import reads
    from servin.dockerfile.instructions import load
    from servin.dockerfile.plan import platform_args

    try:
        df = load(dockerfile)
    except ServinError:
        return None  # the daemon reports the error with the whole context
    host = _host_platform()
    plats = platform_args(platform or host, host)

    def triggers(image: str) -> list[str] | None:
        from servin.api.servin.v1 import images_pb2

        try:
            detail = client.images.Inspect(images_pb2.InspectImageRequest(reference=image))
        except NotFound:
            return None
        try:
            config = json.loads(detail.raw_config or b"{}")
        except ValueError:
            return None
        return list((config.get("config") or {}).get("OnBuild") or [])

    found = reads.context_reads(df, args, target, plats, triggers)
    if found is None:
        return None
    return lambda rel: reads.wanted(found, rel)


def _host_platform() -> str:
    import platform as _platform

    machine = _platform.machine()
    arch = {"x86_64": "amd64", "aarch64": "arm64", "armv7l": "arm", "i686": "386"}.get(machine,
                                                                                       machine)
    return f"linux/{arch}"


@click.command("prune")
@click.option("-a", "--all", "all_", is_flag=True, help="Remove all build cache (the default)")
@click.option("-f", "--force", is_flag=True, help="Do not prompt for confirmation")
@click.option("--filter", "filters", multiple=True, metavar="until=DURATION",
              help="Provide filter values (until=24h: entries unused for that long)")
def builder_prune(all_: bool, force: bool, filters: tuple[str, ...]) -> None:
    """Remove build cache."""
    from servin.api.servin.v1 import images_pb2
    from servin.humanize import human_size
    from servin.units import parse_duration_ns as parse_duration

    unused = 0
    for item in filters:
        key, _, value = item.partition("=")
        if key != "until" or not value:
            raise InvalidArgument(f"invalid filter {item!r} (until=DURATION)")
        unused = parse_duration(value, "--filter until")
    if not force:
        click.echo("WARNING! This will remove all dangling build cache.")
        if not click.confirm("Are you sure you want to continue?", default=False):
            return
    reply = get_client().images.PruneBuildCache(
        images_pb2.PruneBuildCacheRequest(unused_for_ns=unused))
    click.echo(f"Deleted build cache objects: {reply.entries}")
    click.echo(f"Total reclaimed space: {human_size(reply.space_reclaimed)}")


@click.group(cls=DockerGroup)
def builder() -> None:
    """Manage builds."""


builder.add_command(builder_prune, "prune")
