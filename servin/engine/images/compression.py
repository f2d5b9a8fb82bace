"""Recognise and undo the compressions a layer or rootfs tarball may carry."""

from __future__ import annotations

import gzip
import io
from typing import BinaryIO, Literal

from servin.engine.images import mediatypes

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


def layer_media_type(compression: Compression) -> str:
    """The OCI layer media type for a layer blob with this compression."""
    return {
        "none": mediatypes.OCI_LAYER_TAR,
        "gzip": mediatypes.OCI_LAYER_GZIP,
        "zstd": mediatypes.OCI_LAYER_ZSTD,
    }[compression]


def decompressing_reader(raw: BinaryIO, compression: Compression) -> BinaryIO:
    """A reader that yields the uncompressed bytes of ``raw``."""
    if compression == "gzip":
        return gzip.GzipFile(fileobj=raw, mode="rb")  # type: ignore[return-value]
    if compression == "zstd":
        import zstandard  # only layers that need it pay for the import

        return zstandard.ZstdDecompressor().stream_reader(raw, read_across_frames=True)  # type: ignore[return-value]
    return raw


def sniff(raw: BinaryIO) -> tuple[Compression, BinaryIO]:
    """Peek at a seekable or buffered stream and return its compression and a reader at 0."""
    if raw.seekable():
        head = raw.read(8)
        raw.seek(0)
        return detect(head), raw
    buffered = io.BufferedReader(raw)  # type: ignore[arg-type]
    return detect(buffered.peek(8)), buffered  # type: ignore[return-value]


def archive_reader(raw: BinaryIO) -> BinaryIO:
    """The plain tar stream of an uploaded archive, as docker's DecompressStream reads one:
    uncompressed, gzip, bzip2, xz or zstd (``cp - CONTAINER:PATH``)."""
    kind, reader = sniff(raw)
    if kind != "none":
        return decompressing_reader(reader, kind)
    head = reader.peek(8) if hasattr(reader, "peek") else b""  # type: ignore[attr-defined]
    if head.startswith(_BZIP2_MAGIC):
        import bz2

        return bz2.BZ2File(reader, "rb")  # type: ignore[return-value]
    if head.startswith(_XZ_MAGIC):
        import lzma

        return lzma.LZMAFile(reader, "rb")  # type: ignore[return-value]
    return reader
