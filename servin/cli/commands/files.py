"""``servin cp``, ``diff``, ``commit`` and ``export``: files in and out of containers.

``cp`` works like docker's: the daemon resolves container paths inside the container (so a
symlink there can never reach a host path) and moves tar streams; this side decides the
names (copy *into* a directory, *as* a new name, or a directory's contents with ``SRC/.``)
and reads or writes the host files.
"""

from __future__ import annotations

import os
import queue
import stat
import sys
import tarfile
import threading
from collections.abc import Iterator
from typing import TYPE_CHECKING, Any

import click

from servin.cli.session import get_client
from servin.errors import InvalidArgument, NotFound

if TYPE_CHECKING:
    from servin.api.servin.v1.containers_pb2 import PathStat
    from servin.client.sync import Client

_CHUNK = 1024 * 1024


def split_cp_arg(arg: str) -> tuple[str, str]:
    """``CONTAINER:PATH`` -> (container, path); a local path -> ("", path). A local path
    containing ':' must start with '/' or '.' (as with docker)."""
    if arg.startswith(("/", ".")) or ":" not in arg:
        return "", arg
    container, _, path = arg.partition(":")
    return container, path


class _StreamReader:
    """A file over an iterator of byte chunks (for tarfile's stream mode)."""

    def __init__(self, chunks: Iterator[bytes]) -> None:
        self._chunks = chunks
        self._buf = b""

    def read(self, n: int = -1) -> bytes:
        while n < 0 or len(self._buf) < n:
            chunk = next(self._chunks, None)
            if chunk is None:
                break
            self._buf += chunk
        if n < 0:
            out, self._buf = self._buf, b""
        else:
            out, self._buf = self._buf[:n], self._buf[n:]
        return out


class _QueueWriter:
    def __init__(self, q: queue.Queue[Any]) -> None:
        self.q = q
        self.pending = bytearray()

    def write(self, data: bytes) -> int:
        self.pending += data
        if len(self.pending) >= _CHUNK:
            self.flush()
        return len(data)

    def flush(self) -> None:
        if self.pending:
            self.q.put(bytes(self.pending))
            self.pending.clear()


def _tar_chunks(build: Any) -> Iterator[bytes]:
    """Run ``build(fileobj)`` in a thread; yield the bytes it writes."""
    q: queue.Queue[Any] = queue.Queue(maxsize=8)
    done = object()

    def run() -> None:
        out = _QueueWriter(q)
        try:
            build(out)
            out.flush()
            q.put(done)
        except BaseException as exc:
            q.put(exc)

    threading.Thread(target=run, daemon=True).start()
    while True:
        item = q.get()
        if item is done:
            return
        if isinstance(item, BaseException):
            raise item
        yield item


def _container_stat(client: Client, container: str, path: str) -> PathStat | None:
    from servin.api.servin.v1 import containers_pb2

    try:
        reply = client.containers.CopyFrom(containers_pb2.CopyFromRequest(
            id=container, path=path, stat_only=True, follow_link=True))
        for msg in reply:
            return msg.stat
    except NotFound:
        return None
    return None


def _copy_to_container(client: Client, src: str, container: str, dest: str, *, follow: bool,
                       archive: bool) -> None:
    from servin.api.servin.v1 import containers_pb2

    dest = dest or "/"
    if not dest.startswith("/"):
        dest = "/" + dest
    if src == "-":
        st = _container_stat(client, container, dest)
        if st is None or not stat.S_ISDIR(st.mode):
            raise InvalidArgument(f"destination \"{container}:{dest}\" must be a directory")
        chunks: Iterator[bytes] = iter(lambda: sys.stdin.buffer.read(_CHUNK), b"")
        into = dest
    else:
        try:
            host_st = os.stat(src) if follow else os.lstat(src)
        except FileNotFoundError:
            raise NotFound(f'could not find the file {src}: no such file or directory') from None
        src_is_dir = stat.S_ISDIR(host_st.st_mode)
        contents = src_is_dir and (src.endswith("/.") or src == ".")
        st = _container_stat(client, container, dest)
        if st is not None and stat.S_ISDIR(st.mode):
            into, top = dest, os.path.basename(os.path.normpath(os.path.abspath(src)))
        elif st is not None:
            if src_is_dir:
                raise InvalidArgument("cannot copy a directory to a file: "
                                      f"{container}:{dest} is not a directory")
            into, top = os.path.dirname(dest.rstrip("/")) or "/", os.path.basename(dest)
        else:
            if dest.endswith("/") and not src_is_dir:
                raise NotFound(f"destination directory {container}:{dest} does not exist")
            clean = dest.rstrip("/") or "/"
            into, top = os.path.dirname(clean) or "/", os.path.basename(clean)
            contents = False
        source = os.path.realpath(src) if follow else src

        def build(out: Any) -> None:
            with tarfile.open(fileobj=out, mode="w|", format=tarfile.PAX_FORMAT) as tar:
                if contents and st is not None:
                    for name in sorted(os.listdir(source)):
                        tar.add(os.path.join(source, name), arcname=name)
                else:
                    tar.add(source, arcname=top)

        chunks = _tar_chunks(build)

    def messages() -> Iterator[Any]:
        yield containers_pb2.CopyToInput(id=container, path=into, copy_uid_gid=archive)
        for chunk in chunks:
            yield containers_pb2.CopyToInput(data=chunk)

    client.containers.CopyTo(messages())


def _copy_from_container(client: Client, container: str, src: str, dest: str, *, follow: bool,
                         archive: bool) -> None:
    from servin.api.servin.v1 import containers_pb2

    if not src.startswith("/"):
        src = "/" + src
    stream = client.containers.CopyFrom(containers_pb2.CopyFromRequest(
        id=container, path=src, follow_link=follow))
    first = next(iter(stream))
    data = (msg.data for msg in stream)
    if dest == "-":
        out = sys.stdout.buffer
        for chunk in data:
            out.write(chunk)
        out.flush()
        return
    src_is_dir = stat.S_ISDIR(first.stat.mode)
    contents = src_is_dir and src.endswith("/.")
    rename: str | None = None
    if os.path.isdir(dest):
        into = dest
    elif os.path.lexists(dest):
        if src_is_dir:
            raise InvalidArgument(f"cannot copy a directory to a file: {dest}")
        try:
            kind = os.stat(dest).st_mode  # docker follows a destination symlink
        except OSError:
            kind = stat.S_IFREG
        if not stat.S_ISREG(kind) and stat.S_ISREG(first.stat.mode):
            _write_into(data, dest)  # /dev/stdout, a fifo: the file's bytes go into it
            return
        dest = os.path.realpath(dest)
        into, rename = os.path.dirname(dest), os.path.basename(dest)
    else:
        if dest.endswith("/") and not src_is_dir:
            raise NotFound(f"destination directory {dest} does not exist")
        clean = os.path.abspath(dest)
        into, rename = os.path.dirname(clean), os.path.basename(clean)
        if not os.path.isdir(into):
            raise NotFound(f"destination directory {into} does not exist")
        contents = False
    top = first.stat.name

    def renamed(name: str) -> str | None:
        parts = name.split("/", 1)
        if contents:
            return parts[1] if len(parts) > 1 and parts[1] else None
        if rename is not None and parts[0] == top:
            return "/".join([rename, *parts[1:]])
        return name

    uid, gid = os.getuid(), os.getgid()
    # typeshed wants an IO object; stream mode ("r|") only calls read()
    with tarfile.open(fileobj=_StreamReader(data), mode="r|") as tar:  # type: ignore[call-overload]
        for member in tar:
            name = renamed(member.name)
            if name is None:
                continue
            member.name = name
            if member.islnk():
                member.linkname = renamed(member.linkname) or member.linkname
            if not archive:
                member.uid, member.gid, member.uname, member.gname = uid, gid, "", ""
            mode = member.mode
            # The container's archive is untrusted: refuse what would land outside ``into``
            # (tarfile's "tar" filter) but keep the mode bits it would clear.
            checked = tarfile.tar_filter(member, into)
            _refuse_kind_change(os.path.join(into, checked.name), member.isdir(), into)
            tar.extract(checked.replace(mode=mode, deep=False), into, numeric_owner=True,
                        filter="fully_trusted")


def _refuse_kind_change(path: str, is_dir: bool, into: str) -> None:
    """docker's cp never replaces a directory with a file, or a file with a directory."""
    try:
        existing = os.lstat(path).st_mode
    except FileNotFoundError:
        return
    if stat.S_ISDIR(existing) and not is_dir:
        raise InvalidArgument(f'cannot overwrite directory "{path}" with non-directory "{into}"')
    if is_dir and not stat.S_ISDIR(existing):
        raise InvalidArgument(f'cannot overwrite non-directory "{path}" with directory "{into}"')


def _write_into(chunks: Iterator[bytes], dest: str) -> None:
    """The one regular file of a tar stream, written into an existing non-regular file."""
    # typeshed wants an IO object; stream mode ("r|") only calls read()
    with tarfile.open(fileobj=_StreamReader(chunks), mode="r|") as tar:  # type: ignore[call-overload]
        member = next(iter(tar), None)
        source = tar.extractfile(member) if member is not None and member.isfile() else None
        if source is None:
            raise InvalidArgument(f"cannot copy a non-regular file into {dest}")
        with open(dest, "wb") as out:
            while block := source.read(_CHUNK):
                out.write(block)


@click.command()
@click.option("-a", "--archive", is_flag=True, help="Archive mode (copy all uid/gid information)")
@click.option("-L", "--follow-link", is_flag=True, help="Always follow symbol link in SRC_PATH")
@click.argument("source")
@click.argument("destination")
def cp(archive: bool, follow_link: bool, source: str, destination: str) -> None:
    """Copy files/folders between a container and the local filesystem.

    Use '-' as the source to read a tar archive from stdin and extract it to a directory
    in the container, or '-' as the destination to write a tar archive of the container
    path to stdout.
    """
    src_container, src_path = split_cp_arg(source)
    dst_container, dst_path = split_cp_arg(destination)
    if src_container and dst_container:
        raise InvalidArgument("copying between containers is not supported")
    if not src_container and not dst_container:
        raise InvalidArgument("must specify at least one container source")
    client = get_client()
    if src_container:
        _copy_from_container(client, src_container, src_path, dst_path, follow=follow_link,
                             archive=archive)
    else:
        _copy_to_container(client, src_path, dst_container, dst_path, follow=follow_link,
                           archive=archive)


@click.command()
@click.argument("container")
def diff(container: str) -> None:
    """Inspect changes to files or directories on a container's filesystem."""
    from servin.api.servin.v1 import containers_pb2

    reply = get_client().containers.Changes(containers_pb2.ChangesRequest(id=container))
    for change in reply.changes:
        click.echo(f"{change.kind} {change.path}")


@click.command()
@click.option("-a", "--author", default="", help='Author (e.g., "Jane <jane@example.com>")')
@click.option("-c", "--change", "changes", multiple=True, metavar="INSTRUCTION",
              help="Apply a Dockerfile instruction to the created image (CMD, ENV, ...)")
@click.option("-m", "--message", default="", help="Commit message")
@click.option("-p", "--pause/--no-pause", default=True, show_default=True,
              help="Pause the container during commit")
@click.argument("container")
@click.argument("reference", required=False, default="")
def commit(author: str, changes: tuple[str, ...], message: str, pause: bool, container: str,
           reference: str) -> None:
    """Create a new image from a container's changes."""
    from servin.api.servin.v1 import containers_pb2

    reply = get_client().containers.Commit(containers_pb2.CommitContainerRequest(
        id=container, reference=reference, comment=message, author=author,
        changes=list(changes), pause=pause))
    click.echo(reply.image_id)


@click.command()
@click.option("-o", "--output", default="", help="Write to a file, instead of STDOUT")
@click.argument("container")
def export(output: str, container: str) -> None:
    """Export a container's filesystem as a tar archive."""
    from servin.api.servin.v1 import containers_pb2

    if not output and sys.stdout.isatty():
        raise InvalidArgument("cowardly refusing to save to a terminal: use -o or redirect")
    stream = get_client().containers.Export(containers_pb2.ExportContainerRequest(id=container))
    out = open(output, "wb") if output else sys.stdout.buffer  # noqa: SIM115
    try:
        for chunk in stream:
            out.write(chunk.data)
        out.flush()
    finally:
        if output:
            out.close()
