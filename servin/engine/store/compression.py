"""Recognise and undo the compressions a layer or rootfs tarball may carry."""

from __future__ import annotations

import gzip
import io
from typing import BinaryIO, Literal

Compression = Literal["none", "gzip", "zstd"]

_GZIP_MAGIC = b"\x1f\x8b"
_ZSTD_MAGIC = b"\x28\xb5\x2f\xfd"
_BZIP2_MAGIC = b"BZh"
_XZ_MAGIC = b"\xfd7zXZ\x00"


def detect(head: bytes) -> Compression:
    """The compression of a stream from its first bytes."""
    if head.startswith(_GZIP_MAGIC):
        return "gzip"
    if head.startswith(_ZSTD_MAGIC):
        return "zstd"
    return "none"


def decompressing_reader(raw: BinaryIO, compression: Compression) -> BinaryIO:
    """A reader that yields the uncompressed bytes of ``raw``."""
    if compression == "gzip":
        return gzip.GzipFile(fileobj=raw, mode="rb")  # type: ignore[return-value]  # binary
    if compression == "zstd":
        import zstandard  # only layers that need it pay for the import

        reader: BinaryIO = zstandard.ZstdDecompressor().stream_reader(raw,
                                                                       read_across_frames=True)
        return reader
    return raw


def sniff(raw: BinaryIO) -> tuple[Compression, BinaryIO]:
    """Peek at a seekable or buffered stream and return its compression and a reader at 0."""
    if raw.seekable():
        head = raw.read(8)
        raw.seek(0)
        return detect(head), raw
    # BufferedReader wants a RawIOBase; any readable binary stream does at run time.
    buffered = io.BufferedReader(raw)  # type: ignore[type-var]
    return detect(buffered.peek(8)), buffered


def archive_reader(raw: BinaryIO) -> BinaryIO:
    """The plain tar stream of an uploaded archive, as docker's DecompressStream reads one:
    uncompressed, gzip, bzip2, xz or zstd (``cp - CONTAINER:PATH``)."""
    kind, reader = sniff(raw)
    if kind != "none":
        return decompressing_reader(reader, kind)
    peek = getattr(reader, "peek", None)  # a BufferedReader; else a seekable stream at 0
    if peek is not None:
        head = bytes(peek(8)[:8])
    else:
        head = reader.read(8)
        reader.seek(0)
    if head.startswith(_BZIP2_MAGIC):
        import bz2

        return bz2.BZ2File(reader, "rb")  # type: ignore[return-value]  # a binary file
    if head.startswith(_XZ_MAGIC):
        import lzma

        return lzma.LZMAFile(reader, "rb")  # type: ignore[return-value]  # a binary file
    return reader
