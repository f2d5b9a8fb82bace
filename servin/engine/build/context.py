"""The build context: received once as a tar stream, unpacked into a private directory.

The stream may be plain or compressed (gzip, bzip2, xz, zstd) and empty (no context). It is
unpacked as it arrives (a worker thread reads what the event loop feeds), through the safe
extractor: no entry lands outside the directory, owners become root, device nodes are
skipped. Then, unless the client applied a ``.dockerignore`` already, the context's own
(``<Dockerfile>.dockerignore`` first) is applied, and the Dockerfile and ``.dockerignore``
are removed when they are excluded (as docker does: the build reads them, COPY cannot).
"""

from __future__ import annotations

import asyncio
import bz2
import contextlib
import errno
import gzip
import lzma
import os
import shutil
import stat
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

from servin.dockerfile.dockerignore import Matcher, read_patterns
from servin.engine import fsarchive
from servin.engine.images.archive.pipe import ChunkReader
from servin.engine.linux.safepath import openat2
from servin.errors import Cancelled, InvalidArgument, NotFound, ServinError

DEFAULT_DOCKERFILE = "Dockerfile"
_DIR = os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC
_REPORT_EVERY = 1 << 20


@dataclass
class Context:
    """An unpacked build context and the Dockerfile read from it (or given)."""

    root: Path
    dockerfile: bytes
    dockerfile_name: str  # for messages
    size: int  # bytes of file content

    def open_root(self) -> int:
        """An ``O_PATH`` fd of the context's root (the caller closes it)."""
        return os.open(self.root, os.O_PATH | os.O_DIRECTORY | os.O_CLOEXEC)


class _Prefixed:
    """A reader that gives ``head`` first, then the rest of ``inner``."""

    def __init__(self, head: bytes, inner: BinaryIO) -> None:
        self.head = head
        self.inner = inner

    def readable(self) -> bool:
        return True

    def read(self, n: int = -1) -> bytes:
        if self.head:
            if n < 0:
                data, self.head = self.head + self.inner.read(), b""
                return data
            data, self.head = self.head[:n], self.head[n:]
            return data
        return self.inner.read(n)


def _decompressed(raw: BinaryIO) -> BinaryIO | None:
    """A reader of the archive's plain tar bytes, or None for an empty stream."""
    head = b""
    while len(head) < 6:
        more = raw.read(6 - len(head))
        if not more:
            break
        head += more
    if not head:
        return None
    source: BinaryIO = _Prefixed(head, raw)  # type: ignore[assignment]  # read() is enough
    if head.startswith(b"\x1f\x8b"):
        return gzip.GzipFile(fileobj=source, mode="rb")  # type: ignore[return-value]  # a binary file
    if head.startswith(b"BZh"):
        return bz2.BZ2File(source)  # type: ignore[return-value]  # a binary file
    if head.startswith(b"\xfd7zXZ\x00"):
        return lzma.LZMAFile(source)  # type: ignore[return-value]  # a binary file
    if head.startswith(b"\x28\xb5\x2f\xfd"):
        import zstandard

        reader: BinaryIO = zstandard.ZstdDecompressor().stream_reader(source,
                                                                       read_across_frames=True)
        return reader
    return source


def _extract(reader: ChunkReader, dest: Path) -> None:
    """Unpack the stream into ``dest`` (blocking)."""
    fd = os.open(dest, _DIR)
    try:
        plain = _decompressed(reader)  # type: ignore[arg-type]  # read() is enough
        if plain is None:
            return
        try:
            fsarchive.Extractor(fd, preserve_owner=False, devices=False).extract(plain)
        except ServinError:
            raise
        except Exception as exc:  # a decompressor's own error types (gzip, lzma, zstd, ...)
            if isinstance(exc, OSError) and exc.errno not in (None, errno.EINVAL):
                raise
            raise InvalidArgument(f"the build context is not a valid archive: {exc}") from None
        # Whatever follows the archive's end blocks is read, so the sender is never stuck.
        while reader.read(1 << 20):
            pass
    finally:
        os.close(fd)


async def receive(chunks: AsyncIterator[bytes], dest: Path,
                  report: Callable[[int], None]) -> int:
    """Unpack the streamed context into ``dest`` (an empty directory); return the bytes
    received. ``report`` is called with the running total now and then."""
    reader = ChunkReader()
    task = asyncio.ensure_future(asyncio.to_thread(_extract, reader, dest))
    received = 0
    reported = 0
    try:
        try:
            async for chunk in chunks:
                if task.done():
                    break  # the extractor failed: its error is raised below
                received += len(chunk)
                await asyncio.to_thread(reader.feed, chunk)
                if received - reported >= _REPORT_EVERY:
                    reported = received
                    report(received)
            if not task.done():
                await asyncio.to_thread(reader.end)
        except Cancelled:
            pass  # the extractor stopped reading: it failed (raised below)
        await task
    finally:
        reader.close()
        if not task.done():
            with contextlib.suppress(BaseException):
                await task
    return received


def read_dockerfile(root: Path, name: str) -> tuple[bytes, str]:
    """The Dockerfile at ``name`` in the context (``Dockerfile``, else ``dockerfile``),
    resolved inside the context; (text, the name found)."""
    candidates = [name] if name else [DEFAULT_DOCKERFILE, "dockerfile"]
    fd = os.open(root, os.O_PATH | os.O_DIRECTORY | os.O_CLOEXEC)
    try:
        for candidate in candidates:
            try:
                file_fd = openat2(fd, candidate, os.O_RDONLY)
            except FileNotFoundError:
                continue
            except OSError as exc:
                raise InvalidArgument(f"cannot read the Dockerfile {candidate}: "
                                      f"{exc.strerror}") from None
            with os.fdopen(file_fd, "rb") as f:
                if not stat.S_ISREG(os.fstat(f.fileno()).st_mode):
                    raise InvalidArgument(f"the Dockerfile {candidate} is not a regular file")
                return f.read(), candidate
    finally:
        os.close(fd)
    raise NotFound(f"cannot find the Dockerfile {name or DEFAULT_DOCKERFILE} in the build "
                   "context")


def ignore_patterns(root: Path, dockerfile_name: str) -> list[str]:
    """The context's ``<Dockerfile>.dockerignore``, else its ``.dockerignore``."""
    fd = os.open(root, os.O_PATH | os.O_DIRECTORY | os.O_CLOEXEC)
    try:
        for name in (f"{dockerfile_name}.dockerignore", ".dockerignore"):
            try:
                file_fd = openat2(fd, name, os.O_RDONLY)
            except OSError:
                continue
            with os.fdopen(file_fd, "rb") as f:
                if stat.S_ISREG(os.fstat(f.fileno()).st_mode):
                    return read_patterns(f.read(1 << 20).decode(errors="replace"))
    finally:
        os.close(fd)
    return []


def apply_ignore(root: Path, patterns: list[str]) -> None:
    """Remove what the patterns exclude (blocking)."""
    matcher = Matcher(patterns)
    if not matcher:
        return
    fd = os.open(root, _DIR)
    try:
        _prune(fd, "", matcher)
    finally:
        os.close(fd)


def _prune(dir_fd: int, prefix: str, matcher: Matcher) -> bool:
    """Remove excluded entries below ``dir_fd``; return whether anything is left."""
    left = False
    for name in os.listdir(dir_fd):
        rel = f"{prefix}/{name}" if prefix else name
        st = os.lstat(name, dir_fd=dir_fd)
        is_dir = stat.S_ISDIR(st.st_mode)
        excluded = matcher.excluded(rel)
        if is_dir and (not excluded or matcher.may_hold_kept(rel)):
            sub = os.open(name, _DIR, dir_fd=dir_fd)
            try:
                kept_inside = _prune(sub, rel, matcher)
            finally:
                os.close(sub)
            if excluded and not kept_inside:
                os.rmdir(name, dir_fd=dir_fd)
                continue
            left = True
            continue
        if excluded:
            if is_dir:
                _remove_tree(dir_fd, name)
            else:
                os.unlink(name, dir_fd=dir_fd)
            continue
        left = True
    return left


def _remove_tree(dir_fd: int, name: str) -> None:
    sub = os.open(name, _DIR, dir_fd=dir_fd)
    try:
        for child in os.listdir(sub):
            if stat.S_ISDIR(os.lstat(child, dir_fd=sub).st_mode):
                _remove_tree(sub, child)
            else:
                os.unlink(child, dir_fd=sub)
    finally:
        os.close(sub)
    os.rmdir(name, dir_fd=dir_fd)


def tree_size(root: Path) -> int:
    """Bytes of file content under ``root``."""
    total = 0
    for _, _, files, dir_fd in os.fwalk(root, follow_symlinks=False):
        for name in files:
            with contextlib.suppress(OSError):
                st = os.lstat(name, dir_fd=dir_fd)
                if stat.S_ISREG(st.st_mode):
                    total += st.st_size
    return total


def remove(path: Path) -> None:
    """Delete an unpacked context."""
    shutil.rmtree(path, ignore_errors=True)
