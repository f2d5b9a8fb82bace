"""Chain IDs, and one layer blob streamed through verification into an unpacked directory."""

from __future__ import annotations

import contextlib
import gzip
import hashlib
import mmap
import os
import zlib
from pathlib import Path
from typing import BinaryIO

from servin.engine.store import compression
from servin.engine.store.content import BlobCorrupted, ContentStore, HashingReader
from servin.engine.store.snapshots.unpack import unpack_layer
from servin.errors import InvalidArgument

_CHUNK = 1 << 20


def chain_id(parent: str | None, diff_id: str) -> str:
    """The OCI chain ID of a layer: its diff ID alone at the bottom, else
    sha256 of ``"<parent chain ID> <diff ID>"``."""
    if not parent:
        return diff_id
    return "sha256:" + hashlib.sha256(f"{parent} {diff_id}".encode()).hexdigest()


def chain_ids(diff_ids: list[str]) -> list[str]:
    """The chain ID of every layer of a stack, bottom first."""
    out: list[str] = []
    for diff_id in diff_ids:
        out.append(chain_id(out[-1] if out else None, diff_id))
    return out


def unpack_blob(content: ContentStore, blob: str, diff_id: str, dest: Path, *,
                limit: int = 0) -> int:
    """Unpack a stored layer blob into the empty directory ``dest``; return bytes written.

    The blob streams once: through sha256 (it must match ``blob``, else BlobCorrupted),
    then decompression, then sha256 again (it must match ``diff_id``, else InvalidArgument),
    into the safe extractor. An uncompressed blob is hashed once (it is its own diff) and its
    files' contents are copied by the kernel. Whatever fails, ``dest`` may hold a partial
    tree: the caller unpacks into a temp dir and throws it away.
    """
    with content.open(blob) as raw:
        kind, start = compression.sniff(raw)
        if kind == "none" and _file_descriptor(raw) >= 0:
            return _unpack_plain(raw, blob, diff_id, dest, limit)
        packed = HashingReader(start)
        # An uncompressed blob is its own diff: one hash serves both checks.
        plain = packed if kind == "none" else HashingReader(
            compression.decompressing_reader(packed, kind))  # type: ignore[arg-type]  # a file
        try:
            size = unpack_layer(plain, dest, limit=limit)  # type: ignore[arg-type]  # read()
            _drain_checked(plain)  # the archive's trailing padding is part of the diff
            packed.drain()
        except InvalidArgument as exc:
            # A damaged blob usually shows up as a broken archive first: say which it is.
            _drain_quietly(packed)
            if packed.digest != blob:
                raise _corrupted(blob, packed.digest) from exc
            raise
    if packed.digest != blob:
        raise _corrupted(blob, packed.digest)
    if plain.digest != diff_id:
        raise InvalidArgument(
            f"layer {blob}: its uncompressed content hashes to {plain.digest}, "
            f"but the image config lists diff ID {diff_id}")
    return size


def _unpack_plain(raw: BinaryIO, blob: str, diff_id: str, dest: Path, limit: int) -> int:
    """An uncompressed stored blob: verified by one native sha256 pass over its pages (a
    memory map: no copy into Python), before anything is written; then unpacked with the
    files' contents copied by the kernel (``unpack_layer(seekable=True)``)."""
    actual = "sha256:" + _sha256_file(raw.fileno())
    if actual != blob:
        raise _corrupted(blob, actual)
    if actual != diff_id:
        raise InvalidArgument(
            f"layer {blob}: its uncompressed content hashes to {actual}, "
            f"but the image config lists diff ID {diff_id}")
    raw.seek(0)
    return unpack_layer(raw, dest, limit=limit, seekable=True)


def _file_descriptor(raw: BinaryIO) -> int:
    """The file descriptor of a reader that is a plain file, else -1."""
    try:
        return raw.fileno()
    except (AttributeError, OSError, ValueError):  # io.UnsupportedOperation is both
        return -1


def _sha256_file(fd: int) -> str:
    size = os.fstat(fd).st_size
    if size == 0:
        return hashlib.sha256().hexdigest()
    with mmap.mmap(fd, size, access=mmap.ACCESS_READ) as view:
        return hashlib.sha256(view).hexdigest()


def unpack_stream(raw: BinaryIO, diff_id: str, dest: Path, *, limit: int = 0) -> int:
    """Unpack a layer blob read from ``raw`` (a download) into the empty directory ``dest``.

    The blob's own digest is the caller's to check (it hashes what it stores); here the
    uncompressed stream must hash to ``diff_id``, else InvalidArgument. As ``unpack_blob``,
    ``dest`` may hold a partial tree on failure.
    """
    kind, start = compression.sniff(raw)
    plain = HashingReader(compression.decompressing_reader(start, kind))
    size = unpack_layer(plain, dest, limit=limit)  # type: ignore[arg-type]  # read() suffices
    _drain_checked(plain)
    if plain.digest != diff_id:
        raise InvalidArgument(
            f"layer: its uncompressed content hashes to {plain.digest}, "
            f"but the image config lists diff ID {diff_id}")
    return size


def _drain_checked(stream: HashingReader) -> None:
    """Read to the end; a decompressor complaining there (a bad CRC) means a bad layer."""
    try:
        stream.drain()
    except (gzip.BadGzipFile, zlib.error, EOFError) as exc:
        raise InvalidArgument(f"layer is not valid compressed data: {exc}") from exc
    except Exception as exc:  # zstandard raises its own ZstdError
        if type(exc).__name__ == "ZstdError":
            raise InvalidArgument(f"layer is not valid zstd data: {exc}") from exc
        raise


def _drain_quietly(stream: HashingReader) -> None:
    with contextlib.suppress(OSError):  # only the digest matters now
        stream.drain()


def _corrupted(blob: str, actual: str) -> BlobCorrupted:
    return BlobCorrupted(f"layer blob {blob} is corrupted on disk (its content hashes to {actual})")
