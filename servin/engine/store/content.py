"""The content store: blobs addressed by their sha256 digest.

A blob is written to ``ingest/``, hashed as it streams in, fsynced, checked against the
expected digest when there is one, and only then renamed into ``blobs/sha256/<hex>``: a crash
leaves at worst a stray file in ``ingest/``, which the next start removes. Readers that
need the bytes to be right (configs, manifests) use ``read_verified``.

Operations that write blobs before an image record points at them hold a lease
(``ContentStore.leases``, see ``leases.py``): a writer given a lease adds its digest to it
before the blob becomes visible, so garbage collection never takes it away.
"""

from __future__ import annotations

import hashlib
import os
import re
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import BinaryIO

from servin.engine.store.leases import Lease, LeaseManager
from servin.errors import Internal, InvalidArgument, NotFound

_DIGEST_RE = re.compile(r"^sha256:[0-9a-f]{64}$")
_CHUNK = 1 << 20


def check_digest(digest: str) -> str:
    """Return ``digest`` if it is a well-formed sha256 digest, else raise InvalidArgument."""
    if not _DIGEST_RE.match(digest):
        raise InvalidArgument(f"invalid digest {digest!r}")
    return digest


class HashingReader:
    """A read-only stream that hashes (sha256) what passes through it."""

    def __init__(self, inner: BinaryIO) -> None:
        self.inner = inner
        self.hash = hashlib.sha256()

    def read(self, n: int = -1) -> bytes:
        """Read from the inner stream, hashing the bytes."""
        data = self.inner.read(n)
        self.hash.update(data)
        return data

    def drain(self) -> None:
        """Read (and hash) whatever is left."""
        while self.read(_CHUNK):
            pass

    @property
    def digest(self) -> str:
        """The digest of what was read so far."""
        return "sha256:" + self.hash.hexdigest()


class BlobCorrupted(Internal):
    """A stored blob's bytes no longer match its digest."""


class BlobWriter:
    """An open ingest: write bytes, then ``commit`` (or ``abort``)."""

    def __init__(self, store: ContentStore, lease: Lease | None = None) -> None:
        self._store = store
        self._lease = lease
        self.path = store.ingest_dir / f"{uuid.uuid4().hex}.partial"
        self._file: BinaryIO = open(self.path, "xb")  # noqa: SIM115 - closed by commit/abort
        self._hash = hashlib.sha256()
        self.size = 0
        self._done = False

    def write(self, data: bytes | bytearray | memoryview) -> None:
        """Append bytes to the blob."""
        self._file.write(data)
        self._hash.update(data)
        self.size += len(data)

    @property
    def digest(self) -> str:
        """The digest of what was written so far."""
        return "sha256:" + self._hash.hexdigest()

    def commit(self, expected: str | None = None) -> str:
        """Make the blob durable and visible; return its digest.

        Raises InvalidArgument (and discards the data) when ``expected`` does not match.
        """
        digest = self.digest
        self._file.flush()
        os.fsync(self._file.fileno())
        self._file.close()
        self._done = True
        if expected is not None and expected != digest:
            self.path.unlink(missing_ok=True)
            raise InvalidArgument(f"digest mismatch: expected {expected}, got {digest}")
        if self._lease is not None:
            self._lease.add_blob(digest)  # before it is visible: GC must never see it unheld
        final = self._store.blob_path(digest)
        if final.exists():
            self.path.unlink()
        else:
            os.rename(self.path, final)
            _fsync_dir(final.parent)
        return digest

    def abort(self) -> None:
        """Throw the partial blob away."""
        if not self._done:
            self._file.close()
            self._done = True
        self.path.unlink(missing_ok=True)

    def __enter__(self) -> BlobWriter:
        return self

    def __exit__(self, exc_type: object, *_: object) -> None:
        if exc_type is not None or not self._done:
            self.abort()


class ContentStore:
    """Blobs by digest under ``root`` (``blobs/sha256/``, ``ingest/``)."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.blobs_dir = root / "blobs" / "sha256"
        self.ingest_dir = root / "ingest"
        self.leases = LeaseManager()
        root.mkdir(parents=True, exist_ok=True, mode=0o700)  # configs may hold secrets (env)
        self.blobs_dir.mkdir(parents=True, exist_ok=True)
        self.ingest_dir.mkdir(parents=True, exist_ok=True)

    def clean_ingest(self) -> int:
        """Remove partial blobs a crash left behind; return how many."""
        removed = 0
        for entry in self.ingest_dir.iterdir():
            entry.unlink(missing_ok=True)
            removed += 1
        return removed

    def blob_path(self, digest: str) -> Path:
        """Where a blob lives (whether or not it exists)."""
        return self.blobs_dir / check_digest(digest).removeprefix("sha256:")

    def exists(self, digest: str) -> bool:
        """Whether the blob is stored."""
        return self.blob_path(digest).exists()

    def size(self, digest: str) -> int:
        """The blob's size in bytes."""
        try:
            return self.blob_path(digest).stat().st_size
        except FileNotFoundError:
            raise NotFound(f"blob {digest} not found") from None

    def writer(self, lease: Lease | None = None) -> BlobWriter:
        """Start a new ingest; with ``lease``, the committed blob is held by it."""
        return BlobWriter(self, lease)

    def write_bytes(
        self, data: bytes, expected: str | None = None, lease: Lease | None = None
    ) -> str:
        """Store a small blob in one call; return its digest."""
        with self.writer(lease) as w:
            w.write(data)
            return w.commit(expected)

    def open(self, digest: str) -> BinaryIO:
        """Open a blob for reading (unverified: stream it through a hash when it matters)."""
        try:
            return open(self.blob_path(digest), "rb")
        except FileNotFoundError:
            raise NotFound(f"blob {digest} not found") from None

    def read_verified(self, digest: str) -> bytes:
        """Read a whole blob and check its digest; raise BlobCorrupted when it does not match."""
        with self.open(digest) as f:
            data = f.read()
        actual = "sha256:" + hashlib.sha256(data).hexdigest()
        if actual != digest:
            raise BlobCorrupted(
                f"blob {digest} is corrupted on disk (its content hashes to {actual})"
            )
        return data

    def verify(self, digest: str) -> None:
        """Stream a blob through sha256; raise BlobCorrupted when it does not match."""
        h = hashlib.sha256()
        with self.open(digest) as f:
            while chunk := f.read(_CHUNK):
                h.update(chunk)
        if "sha256:" + h.hexdigest() != digest:
            raise BlobCorrupted(f"blob {digest} is corrupted on disk")

    def delete(self, digest: str) -> None:
        """Remove a blob if present."""
        self.blob_path(digest).unlink(missing_ok=True)

    def digests(self) -> Iterator[str]:
        """Every stored blob's digest."""
        for entry in self.blobs_dir.iterdir():
            yield "sha256:" + entry.name

    def total_size(self) -> int:
        """Bytes used by all blobs."""
        return sum(e.stat().st_size for e in self.blobs_dir.iterdir())


def _fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
