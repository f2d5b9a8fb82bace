"""The build context as ``servin build`` sends it: a tar stream, read once, with progress.

A directory context is walked with its ``.dockerignore`` (or ``<Dockerfile>.dockerignore``)
applied; when the Dockerfile's reads can be worked out (``servin.dockerfile.reads``), only the
files it can read are sent. Owners become root (as docker's CLI does), modes and times are
kept. A tar file or ``-`` (stdin: a tar archive, plain or compressed, or a bare Dockerfile)
is sent as it is. The archive is written as it is sent: big files are never held in memory.
"""

from __future__ import annotations

import io
import os
import stat
import sys
import tarfile
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import BinaryIO

from servin.dockerfile.dockerignore import Matcher, read_patterns
from servin.errors import InvalidArgument

CHUNK = 256 * 1024
_TAR_MAGICS = (b"\x1f\x8b", b"BZh", b"\xfd7zXZ\x00", b"\x28\xb5\x2f\xfd")


@dataclass
class Context:
    """What the CLI sends: the Dockerfile (when it read it) and the context stream."""

    chunks: Iterator[bytes]
    dockerfile: bytes = b""  # empty: the daemon reads ``dockerfile_path`` from the context
    dockerfile_path: str = ""
    ignore: list[str] = field(default_factory=list)
    trimmed: bool = False
    files: int = 0


def is_archive(head: bytes) -> bool:
    """Whether the first bytes of a stream are a (compressed) tar archive."""
    if head.startswith(_TAR_MAGICS):
        return True
    return len(head) >= 262 and head[257:262] == b"ustar"


def from_stdin(dockerfile_arg: str, stdin: BinaryIO | None = None) -> Context:
    """``servin build -``: a tar archive, or a Dockerfile and no context."""
    stream = stdin or sys.stdin.buffer
    head = _read_head(stream, 512)
    if is_archive(head):
        return Context(_stream_chunks(head, stream), dockerfile_path=dockerfile_arg)
    if dockerfile_arg and dockerfile_arg != "-":
        raise InvalidArgument("-f cannot be used with a Dockerfile on stdin (no context)")
    return Context(iter(()), dockerfile=head + stream.read())


def from_archive(path: Path, dockerfile_arg: str) -> Context:
    """A tar file (plain or compressed) as the context."""
    f = open(path, "rb")  # noqa: SIM115 - closed by the generator
    head = _read_head(f, 512)
    if not is_archive(head):
        f.close()
        raise InvalidArgument(f"{path} is neither a directory nor a tar archive")

    def chunks() -> Iterator[bytes]:
        try:
            yield from _stream_chunks(head, f)
        finally:
            f.close()

    return Context(chunks(), dockerfile_path=dockerfile_arg)


def _read_head(stream: BinaryIO, n: int) -> bytes:
    data = b""
    while len(data) < n:
        more = stream.read(n - len(data))
        if not more:
            break
        data += more
    return data


def _stream_chunks(head: bytes, stream: BinaryIO) -> Iterator[bytes]:
    if head:
        yield head
    while chunk := stream.read(CHUNK):
        yield chunk


def dockerfile_for(context_dir: Path, dockerfile_arg: str,
                   stdin: BinaryIO | None = None) -> tuple[bytes, Path | None]:
    """The Dockerfile's text and path (None when read from stdin) for a directory context."""
    if dockerfile_arg == "-":
        return (stdin or sys.stdin.buffer).read(), None
    if dockerfile_arg:
        path = Path(dockerfile_arg)
        if not path.is_absolute():
            path = Path.cwd() / path
    else:
        path = context_dir / "Dockerfile"
        if not path.exists() and (context_dir / "dockerfile").exists():
            path = context_dir / "dockerfile"
    try:
        return path.read_bytes(), path
    except FileNotFoundError:
        raise InvalidArgument(f"unable to prepare context: unable to evaluate symlinks in "
                              f"Dockerfile path: lstat {path}: no such file or directory") \
            from None
    except IsADirectoryError:
        raise InvalidArgument(f"the Dockerfile {path} is a directory") from None


def ignore_patterns(context_dir: Path, dockerfile: Path | None) -> list[str]:
    """``<Dockerfile>.dockerignore`` next to the Dockerfile, else the context's
    ``.dockerignore``."""
    candidates = []
    if dockerfile is not None:
        candidates.append(dockerfile.with_name(dockerfile.name + ".dockerignore"))
    candidates.append(context_dir / ".dockerignore")
    for path in candidates:
        try:
            return read_patterns(path.read_text(errors="replace"))
        except (FileNotFoundError, NotADirectoryError):
            continue
    return []


def from_directory(context_dir: Path, dockerfile: bytes, dockerfile_path: Path | None,
                   patterns: list[str], wanted: Callable[[str], bool] | None,
                   ) -> Context:
    """A directory context: the files ``.dockerignore`` keeps (and, when ``wanted`` is
    given, only those it wants)."""
    if not context_dir.is_dir():
        raise InvalidArgument(f"unable to prepare context: path {str(context_dir)!r} not found")
    matcher = Matcher(patterns)
    entries = list(_walk(context_dir, matcher))
    if wanted is not None:
        chosen = [rel for rel, _ in entries if wanted(rel)]
        keep: set[str] = set(chosen)
        for rel in chosen:
            parent = rel.rpartition("/")[0]
            while parent and parent not in keep:
                keep.add(parent)
                parent = parent.rpartition("/")[0]
        entries = [(rel, is_dir) for rel, is_dir in entries if rel in keep]
    inside = None
    if dockerfile_path is not None:
        try:
            inside = dockerfile_path.resolve().relative_to(context_dir.resolve()).as_posix()
        except ValueError:
            inside = None
    return Context(_tar(context_dir, [rel for rel, _ in entries]), dockerfile=dockerfile,
                   dockerfile_path=inside or "", ignore=patterns,
                   trimmed=wanted is not None, files=len(entries))


def _walk(root: Path, matcher: Matcher, prefix: str = "") -> Iterator[tuple[str, bool]]:
    try:
        names = sorted(os.listdir(root / prefix if prefix else root))
    except PermissionError as exc:
        raise InvalidArgument(f"unable to prepare context: {exc}") from None
    for name in names:
        rel = f"{prefix}/{name}" if prefix else name
        st = os.lstat(root / rel)
        is_dir = stat.S_ISDIR(st.st_mode)
        if matcher and matcher.excluded(rel):
            if is_dir and matcher.may_hold_kept(rel):
                yield from _walk(root, matcher, rel)
            continue
        yield rel, is_dir
        if is_dir:
            yield from _walk(root, matcher, rel)


def _tar(root: Path, names: list[str]) -> Iterator[bytes]:
    """A PAX tar stream of ``names`` (relative to ``root``), written as it is read."""
    helper = tarfile.TarFile(fileobj=io.BytesIO(), mode="w")  # its gettarinfo tracks hard links
    pending = bytearray()
    for rel in names:
        path = root / rel
        try:
            # None for a socket (typeshed says TarInfo only)
            info: tarfile.TarInfo | None = helper.gettarinfo(str(path), arcname=rel)
        except FileNotFoundError:
            continue  # removed meanwhile
        if info is None:
            continue  # a socket: tar cannot hold it
        info.uid = info.gid = 0
        info.uname = info.gname = ""
        pending += info.tobuf(tarfile.PAX_FORMAT, "utf-8", "surrogateescape")
        if info.isreg() and info.size:
            with open(path, "rb") as f:
                left = info.size
                while left > 0:
                    data = f.read(min(CHUNK, left))
                    if not data:
                        data = b"\0" * left  # shrank while being read: keep the archive valid
                    pending += data
                    left -= len(data)
                    if len(pending) >= CHUNK:
                        yield bytes(pending)
                        pending.clear()
            pad = (-info.size) % tarfile.BLOCKSIZE
            pending += b"\0" * pad
        if len(pending) >= CHUNK:
            yield bytes(pending)
            pending.clear()
    pending += b"\0" * (tarfile.BLOCKSIZE * 2)
    yield bytes(pending)
