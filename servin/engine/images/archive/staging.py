"""The first pass of ``load``: an archive's files streamed into the content store.

A ``docker save`` archive may list its layers before ``manifest.json`` (podman and older
docker do), so the loader cannot know what a file is when it streams past. Every regular file
goes straight into the content store (hashed on the way, held by the operation's lease), and
only the small index files (``manifest.json``, ``index.json``, ``oci-layout``,
``repositories``) are kept in memory. Symbolic and hard links between archive files are
remembered as aliases. Nothing is ever written to disk under an archive's own names.
"""

from __future__ import annotations

import re
import tarfile
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import BinaryIO

from servin.engine.store.content import ContentStore
from servin.engine.store.leases import Lease
from servin.engine.store.snapshots.unpack import clean_name
from servin.errors import InvalidArgument

INDEX_FILES = ("manifest.json", "index.json", "oci-layout", "repositories")
_INDEX_LIMIT = 16 << 20  # an index file bigger than this is not an index file
_CHUNK = 1 << 20
_MAX_HOPS = 32
_BLOB_PATH = re.compile(r"^blobs/sha256/([0-9a-f]{64})$")
# Files of docker's legacy v1 layout that nothing reads when manifest.json is there.
_LEGACY = ("VERSION", "json")


@dataclass
class Staged:
    """What an archive held: blob digests by archive path, links, and the index files."""

    blobs: dict[str, str] = field(default_factory=dict)
    links: dict[str, str] = field(default_factory=dict)
    index_files: dict[str, bytes] = field(default_factory=dict)

    def digest_of(self, path: str) -> str:
        """The digest of the file at ``path`` in the archive (links followed)."""
        name = "/".join(clean_name(path, "archive path"))
        for _ in range(_MAX_HOPS):
            if name in self.blobs:
                return self.blobs[name]
            if name not in self.links:
                raise InvalidArgument(f"the archive has no file {path!r}")
            name = self.links[name]
        raise InvalidArgument(f"the archive's links at {path!r} loop")


def _archive_name(member: tarfile.TarInfo) -> str:
    return "/".join(clean_name(member.name, "archive entry"))


def stage(
    reader: BinaryIO,
    content: ContentStore,
    lease: Lease,
    progress: Callable[[str, int], None] = lambda name, size: None,
) -> Staged:
    """Read a tar stream to its end, storing every regular file as a blob.

    A file under ``blobs/sha256/<hex>`` must hash to ``<hex>`` (else InvalidArgument).
    ``progress(name, size)`` is called after each stored file. Blocking.
    """
    staged = Staged()
    try:
        with tarfile.open(fileobj=reader, mode="r|") as tar:
            for member in tar:
                _stage_member(tar, member, staged, content, lease, progress)
                tar.members.clear()  # type: ignore[attr-defined]  # stream mode keeps them all
    except tarfile.TarError as exc:
        raise InvalidArgument(f"input is not a valid tar archive: {exc}") from exc
    except EOFError as exc:
        raise InvalidArgument(f"the archive ends early: {exc}") from exc
    if not staged.blobs and not staged.index_files:
        raise InvalidArgument("the archive is empty")
    return staged


def _stage_member(
    tar: tarfile.TarFile,
    member: tarfile.TarInfo,
    staged: Staged,
    content: ContentStore,
    lease: Lease,
    progress: Callable[[str, int], None],
) -> None:
    name = _archive_name(member)
    if member.isdir() or not name:
        return
    if member.issym():
        base = name.rsplit("/", 1)[0] if "/" in name else ""
        target = member.linkname if member.linkname.startswith("/") else f"{base}/{member.linkname}"
        staged.links[name] = "/".join(clean_name(target, f"link {name!r} target"))
        return
    if member.islnk():
        staged.links[name] = "/".join(clean_name(member.linkname, f"link {name!r} target"))
        return
    if not member.isreg():
        raise InvalidArgument(f"archive entry {member.name!r} is not a file, directory or link")
    source = tar.extractfile(member)
    assert source is not None  # a regular member always has a reader
    if name in INDEX_FILES:
        if member.size > _INDEX_LIMIT:
            raise InvalidArgument(f"archive file {name!r} is too big ({member.size} bytes)")
        staged.index_files[name] = source.read()
        return
    if "/" in name and name.rsplit("/", 1)[1] in _LEGACY and not _BLOB_PATH.match(name):
        return
    match = _BLOB_PATH.match(name)
    expected = f"sha256:{match.group(1)}" if match else None
    with content.writer(lease) as writer:
        while chunk := source.read(_CHUNK):
            writer.write(chunk)
        try:
            digest = writer.commit(expected)
        except InvalidArgument:
            raise InvalidArgument(
                f"archive file {name!r} does not match its digest (got {writer.digest})"
            ) from None
    staged.blobs[name] = digest
    progress(name, member.size)
