"""Recognise and undo the compressions a layer or rootfs tarball may carry."""

from __future__ import annotations

import gzip
import io
import zlib
from typing import Any, BinaryIO, Literal

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
        return io.BufferedReader(GzipStream(raw), _CHUNK)
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


_CHUNK = 1 << 20
_OUT_MAX = 4 << 20  # the most a megabyte of input is inflated to in one step (bounded memory)
_GZIP_WBITS = 31  # a gzip member: header and trailer (CRC32, length) checked


def _inflater() -> tuple[Any, tuple[type[Exception], ...]]:
    """The fastest gzip decompressor here: ISA-L's (python-isal) when installed, else zlib."""
    try:
        from isal import isal_zlib
    except ImportError:
        return zlib, (zlib.error,)
    return isal_zlib, (isal_zlib.error, zlib.error)


class GzipStream(io.RawIOBase):
    """The uncompressed bytes of a gzip stream (one member or several, zero-padded between),
    inflated a megabyte of input at a time in native code.

    ``gzip.GzipFile`` reads its input in 8 KiB pieces through several Python layers; here
    each step is one call into ISA-L (python-isal, about twice zlib's speed) or zlib. Errors
    are ``zlib.error`` (damaged data, bad CRC), ``EOFError`` (truncated) and
    ``gzip.BadGzipFile`` (not gzip), as with ``gzip``.
    """

    def __init__(self, raw: BinaryIO) -> None:
        super().__init__()
        self._raw = raw
        self._module, self._errors = _inflater()
        self._inflater: Any = None
        self._input = b""
        self._output = memoryview(b"")
        self._eof = False

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: memoryview) -> int:  # type: ignore[override]  # bytes-like
        """Fill ``buffer`` with the next uncompressed bytes (0 at the end)."""
        while not self._output:
            if self._eof:
                return 0
            self._fill()
        n = min(len(buffer), len(self._output))
        buffer[:n] = self._output[:n]
        self._output = self._output[n:]
        return n

    def _next_input(self) -> bytes:
        data, self._input = self._input, b""
        return data or self._raw.read(_CHUNK)

    def _fill(self) -> None:
        if self._inflater is None:  # at the start of a member, or at the end of the stream
            data = self._next_input().lstrip(b"\0")  # zeros may pad between members
            while not data:
                more = self._raw.read(_CHUNK)
                if not more:
                    self._eof = True
                    return
                data = more.lstrip(b"\0")
            if len(data) < 2:
                data += self._raw.read(_CHUNK)
            if data[:2] != _GZIP_MAGIC:
                raise gzip.BadGzipFile(f"Not a gzipped file ({data[:2]!r})")
            self._inflater = self._module.decompressobj(_GZIP_WBITS)
            self._input = data
        data = self._next_input()
        if not data:
            raise EOFError("Compressed file ended before the end-of-stream marker was reached")
        try:
            out = self._inflater.decompress(data, _OUT_MAX)
        except self._errors as exc:
            raise zlib.error(str(exc)) from exc
        self._input = self._inflater.unconsumed_tail
        if self._inflater.eof:
            self._input = self._inflater.unused_data + self._input
            self._inflater = None
        self._output = memoryview(out)
