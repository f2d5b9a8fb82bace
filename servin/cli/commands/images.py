"""``servin image ...`` (and the flat ``images``, ``rmi``, ``import``, ``tag``, ``history``)."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

import click

from servin.cli.each import inspect_each, raise_failures
from servin.cli.flagsyntax import DockerGroup
from servin.cli.options import add_commands, filter_option, format_option, parse_filters
from servin.cli.session import get_client
from servin.errors import InvalidArgument, NotFound, ServinError


def _short_id(image_id: str, no_trunc: bool) -> str:
    return image_id if no_trunc else image_id.removeprefix("sha256:")[:12]


def split_tag(name: str) -> tuple[str, str]:
    """('busybox', 'latest') from 'docker.io/library/busybox:latest' in docker's short form."""
    from servin.reference import familiar

    short = familiar(name)
    slash = short.rfind("/")
    colon = short.rfind(":")
    if colon > slash:
        return short[:colon], short[colon + 1 :]
    return short, "<none>"


@click.command("ls")
@click.option(
    "-a", "--all", "all_", is_flag=True, help="Show all images (default hides intermediate images)"
)
@click.option("-q", "--quiet", is_flag=True, help="Only show image IDs")
@click.option("--digests", is_flag=True, help="Show digests")
@click.option("--no-trunc", is_flag=True, help="Don't truncate output")
@filter_option
@format_option
@click.argument("repository", required=False, default="", metavar="[REPOSITORY[:TAG]]")
def image_ls(
    all_: bool,
    quiet: bool,
    digests: bool,
    no_trunc: bool,
    filters: tuple[str, ...],
    fmt: str | None,
    repository: str,
) -> None:
    """List images (those of REPOSITORY[:TAG] only, when given)."""
    from servin.api.servin.v1 import images_pb2
    from servin.cli.output import LabelText, print_rows
    from servin.humanize import ago, human_size

    if repository:  # docker's positional filter is a reference filter
        filters = (*filters, f"reference={repository}")
    reply = get_client().images.List(
        images_pb2.ListImagesRequest(all=all_, filters=parse_filters(filters), digests=digests)
    )
    rows: list[dict[str, Any]] = []
    seen_ids: set[str] = set()
    for image in sorted(reply.images, key=lambda i: i.created.ToNanoseconds(), reverse=True):
        created = image.created.ToNanoseconds() / 1e9
        digest = image.repo_digests[0].split("@", 1)[1] if image.repo_digests else "<none>"
        names = list(image.repo_tags) or ["<none>:<none>"]
        if quiet:
            if image.id not in seen_ids:
                rows.append({"ID": _short_id(image.id, no_trunc)})
                seen_ids.add(image.id)
            continue
        for name in names:
            repo, tag = ("<none>", "<none>") if name == "<none>:<none>" else split_tag(name)
            rows.append(
                {
                    "Repository": repo,
                    "Tag": tag,
                    "Digest": digest,
                    "ID": _short_id(image.id, no_trunc),
                    "CreatedSince": ago(created) if created else "N/A",
                    "CreatedAt": image.created.ToJsonString(),
                    "Size": human_size(image.size),
                    "VirtualSize": human_size(image.size),
                    "SharedSize": "N/A",
                    "UniqueSize": "N/A",
                    "Containers": "N/A",
                    "Labels": LabelText(dict(image.labels)),
                }
            )
    columns = [("REPOSITORY", "Repository"), ("TAG", "Tag")]
    if digests:
        columns.append(("DIGEST", "Digest"))
    columns += [("IMAGE ID", "ID"), ("CREATED", "CreatedSince"), ("SIZE", "Size")]
    print_rows(columns, rows, fmt, quiet_key="ID", quiet=quiet)


@click.command("rm")
@click.option("-f", "--force", is_flag=True, help="Force removal of the image")
@click.option("--no-prune", is_flag=True, help="Do not delete untagged parents")
@click.argument("images", nargs=-1, required=True)
def image_rm(force: bool, no_prune: bool, images: tuple[str, ...]) -> None:
    """Remove one or more images."""
    from servin.api.servin.v1 import images_pb2

    client = get_client()
    failed: list[ServinError] = []
    for ref in images:
        try:
            reply = client.images.Remove(
                images_pb2.RemoveImageRequest(reference=ref, force=force, no_prune=no_prune)
            )
        except ServinError as exc:
            if not (force and isinstance(exc, NotFound)):  # rmi -f: a missing one is no error
                failed.append(exc)
            continue
        from servin.reference import familiar

        for name in reply.untagged:
            click.echo(f"Untagged: {familiar(name)}")
        for image_id in reply.deleted:
            click.echo(f"Deleted: {image_id}")
    raise_failures(failed)


@click.command("inspect")
@click.option(
    "-f", "--format", "fmt", metavar="FORMAT", help="Format the output using a Go template"
)
@click.argument("images", nargs=-1, required=True)
def image_inspect(fmt: str | None, images: tuple[str, ...]) -> None:
    """Display detailed information on one or more images."""
    from servin.api.servin.v1 import images_pb2

    client = get_client()
    inspect_each(images, lambda ref: client.images.Inspect(
        images_pb2.InspectImageRequest(reference=ref)), fmt)


@click.command("import")
@click.option(
    "-c",
    "--change",
    "changes",
    multiple=True,
    metavar="INSTRUCTION",
    help="Apply a Dockerfile instruction to the image (CMD, ENV, ...)",
)
@click.option("-m", "--message", default="", help="Commit message for the imported image")
@click.option("--platform", default="", help="Set the platform (os/arch) of the image")
@click.argument("source")
@click.argument("reference", required=False, default="")
def image_import(
    changes: tuple[str, ...], message: str, platform: str, source: str, reference: str
) -> None:
    """Import a root filesystem tarball (plain, gzip or zstd; - for stdin) as an image."""
    if reference:
        from servin.reference import parse_reference

        parse_reference(reference)
    if source == "-":
        src: Any = sys.stdin.buffer
    else:
        path = Path(source)
        if not path.exists():
            raise InvalidArgument(f"open {source}: no such file or directory")
        if not path.is_file():
            raise InvalidArgument(f"{source} is not a regular file")
        src = path
    reply = get_client().import_image(
        src, reference, changes=changes, message=message, platform=platform
    )
    click.echo(reply.image_id)


@click.command("tag")
@click.argument("source")
@click.argument("target")
def image_tag(source: str, target: str) -> None:
    """Create a tag TARGET that refers to SOURCE."""
    from servin.api.servin.v1 import images_pb2

    get_client().images.Tag(images_pb2.TagImageRequest(source=source, target=target))


@click.command("history")
@click.option(
    "-H", "--human", default=True, type=bool, help="Print sizes and dates in human readable format"
)
@click.option("--no-trunc", is_flag=True, help="Don't truncate output")
@click.option("-q", "--quiet", is_flag=True, help="Only show image IDs")
@format_option
@click.argument("image")
def image_history(human: bool, no_trunc: bool, quiet: bool, fmt: str | None, image: str) -> None:
    """Show the history of an image."""
    from servin.api.servin.v1 import images_pb2
    from servin.cli.output import print_rows
    from servin.humanize import ago, human_size

    reply = get_client().images.History(images_pb2.ImageHistoryRequest(reference=image))
    rows = []
    for e in reply.entries:
        created = e.created.ToNanoseconds() / 1e9
        created_by = (
            e.created_by if no_trunc or len(e.created_by) <= 45 else e.created_by[:44] + "…"
        )
        rows.append(
            {
                "ID": e.id if e.id == "<missing>" else _short_id(e.id, no_trunc),
                "CreatedSince": (ago(created) if human else e.created.ToJsonString())
                if created
                else "N/A",
                "CreatedAt": e.created.ToJsonString(),
                "CreatedBy": created_by,
                "Size": human_size(e.size) if human else str(e.size),
                "Comment": e.comment,
            }
        )
    print_rows(
        [
            ("IMAGE", "ID"),
            ("CREATED", "CreatedSince"),
            ("CREATED BY", "CreatedBy"),
            ("SIZE", "Size"),
            ("COMMENT", "Comment"),
        ],
        rows,
        fmt,
        quiet_key="ID",
        quiet=quiet,
    )


@click.command("save")
@click.option(
    "-o", "--output", default="", metavar="FILE", help="Write to a file, instead of STDOUT"
)
@click.option(
    "--format",
    "fmt",
    type=click.Choice(["docker-archive", "oci-archive"]),
    default="docker-archive",
    show_default=True,
    help="Archive format",
)
@click.argument("images", nargs=-1, required=True)
def image_save(output: str, fmt: str, images: tuple[str, ...]) -> None:
    """Save one or more images to a tar archive (streamed to STDOUT by default)."""
    import os
    import tempfile

    client = get_client()
    if not output:
        if sys.stdout.isatty():
            raise InvalidArgument(
                "cowardly refusing to save to a terminal. Use the -o flag or redirect"
            )
        out = sys.stdout.buffer
        for chunk in client.save_images(images, fmt):
            out.write(chunk)
        out.flush()
        return
    target = Path(output)
    if target.is_dir():
        raise InvalidArgument(f"{output} is a directory")
    # Written next to the target and renamed at the end: a failed save leaves no half file.
    fd, tmp = tempfile.mkstemp(dir=target.parent, prefix=f".{target.name}.", suffix=".part")
    try:
        with os.fdopen(fd, "wb") as f:
            for chunk in client.save_images(images, fmt):
                f.write(chunk)
        os.chmod(tmp, 0o644)
        os.replace(tmp, target)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


@click.command("load")
@click.option("-i", "--input", "input_", default="", metavar="FILE",
              help="Read from a tar archive file, instead of STDIN")
@click.option("-q", "--quiet", is_flag=True, help="Suppress the load progress")
def image_load(input_: str, quiet: bool) -> None:
    """Load images from a tar archive (docker-archive or OCI layout) from a file or STDIN."""
    if input_:
        path = Path(input_)
        if not path.exists():
            raise InvalidArgument(f"open {input_}: no such file or directory")
        if not path.is_file():
            raise InvalidArgument(f"{input_} is not a regular file")
        source: Any = path
    else:
        if sys.stdin.isatty():
            raise InvalidArgument(
                "requested load from stdin, but stdin is a terminal: use -i or redirect"
            )
        source = sys.stdin.buffer
    for message in get_client().load_images(source):
        # -q keeps the "Loaded image" lines and drops the per-file progress.
        if message.image_id or (message.status and not quiet):
            click.echo(message.status)


@click.command("prune")
@click.option("-a", "--all", "all_", is_flag=True,
              help="Remove all unused images, not just dangling ones")
@click.option("-f", "--force", is_flag=True, help="Do not prompt for confirmation")
@click.option("--filter", "filters", multiple=True, metavar="KEY=VALUE",
              help="Provide filter values (until=24h, label=key[=value], label!=...)")
def image_prune(all_: bool, force: bool, filters: tuple[str, ...]) -> None:
    """Remove unused images (dangling ones; every unused one with -a)."""
    from servin.api.servin.v1 import images_pb2
    from servin.humanize import human_size
    from servin.reference import familiar

    parsed = parse_filters(filters)
    if not force:
        what = (
            "all images without at least one container associated to them"
            if all_
            else "all dangling images"
        )
        click.echo(f"WARNING! This will remove {what}.")
        try:
            if not click.confirm("Are you sure you want to continue?", default=False):
                return
        except click.Abort:  # no answer (stdin at its end): as docker, that is a no
            click.echo("")
            return
    reply = get_client().images.Prune(images_pb2.PruneImagesRequest(all=all_, filters=parsed))
    if reply.untagged or reply.deleted:
        click.echo("Deleted Images:")
        for name in reply.untagged:
            click.echo(f"untagged: {familiar(name)}")
        for image_id in reply.deleted:
            click.echo(f"deleted: {image_id}")
        click.echo("")
    click.echo(f"Total reclaimed space: {human_size(reply.space_reclaimed)}")


@click.group(cls=DockerGroup)
def image() -> None:
    """Manage images."""


from servin.cli.commands.build import build as _build  # noqa: E402 (image build)
from servin.cli.commands.registry import pull as _pull  # noqa: E402 (registry commands)
from servin.cli.commands.registry import push as _push  # noqa: E402

add_commands(
    image,
    (
        (_build, ("build",)),
        (_pull, ("pull",)),
        (_push, ("push",)),
        (image_ls, ("ls", "list")),
        (image_rm, ("rm", "remove")),
        (image_inspect, ("inspect",)),
        (image_import, ("import",)),
        (image_tag, ("tag",)),
        (image_history, ("history",)),
        (image_save, ("save",)),
        (image_load, ("load",)),
        (image_prune, ("prune",)),
    ),
)
