"""Safe extraction of an image layer tarball into a directory that overlayfs uses as a lower.

A layer is untrusted input. Every entry is written relative to an fd of the destination,
and every parent directory is opened one component at a time with ``O_NOFOLLOW``, so a
symlink that an earlier entry planted can never redirect a later write out of the layer.

Policy (the safer choice that still unpacks every layer a registry or ``docker save`` makes):

- Entry names are relative: an absolute name (``/etc/passwd``) is refused, as no layer
  docker, podman or a registry makes holds one and such an entry only makes sense as an
  attempt at the host's file. Names are cleaned lexically (``./etc/x`` is ``<dest>/etc/x``);
  a ``..`` that would climb above the root is refused. (Hard link *targets* may be written
  absolute: they name an entry of this layer either way.)
- A parent directory that is a symbolic link is refused, wherever it points. Layer tarballs
  built from a filesystem diff never hold an entry below a symlink (the walk that makes them
  records a symlink as a leaf), so only crafted archives hit this rule.
- The final component is never followed: an existing entry there is replaced (a directory
  over a directory keeps its content, as tar does).
- A hard link's target must be an entry already in this layer, reached without symlinks.
- ``.wh.NAME`` becomes an overlay whiteout (a 0:0 character device named NAME) and
  ``.wh..wh..opq`` marks its directory opaque (xattr ``trusted.overlay.opaque=y``).
  Overlay's own ``trusted.overlay.*`` xattrs in the archive are dropped: they would steer
  the kernel's lookups (redirects, metacopy) and only the snapshotter may set them.

A refused entry raises ``InvalidArgument`` naming it; the caller unpacks into a temp dir and
removes it, so a refusal leaves nothing behind.
"""

from __future__ import annotations

import errno
import gzip
import logging
import os
import shutil
import stat
import tarfile
import zlib
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, BinaryIO, Literal

from servin.errors import InvalidArgument, ResourceExhausted

log = logging.getLogger(__name__)

WHITEOUT_PREFIX = ".wh."
OPAQUE_MARKER = ".wh..wh..opq"
OPAQUE_XATTR = "trusted.overlay.opaque"
OVERLAY_XATTR_PREFIX = "trusted.overlay."
_PAX_XATTR = "SCHILY.xattr."

_DIR_FLAGS = os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC
_CHUNK = 1 << 20
_TAR_BUFSIZE = 1 << 18
# errnos that mean "this archive asks for something impossible", not "the host is unwell".
_LAYER_FAULTS = frozenset({errno.ENOENT, errno.ENOTDIR, errno.EISDIR, errno.EEXIST, errno.ELOOP,
                           errno.ENAMETOOLONG, errno.EINVAL, errno.EPERM, errno.EMLINK,
                           errno.ENOTEMPTY, errno.EXDEV})


def clean_name(name: str, what: str = "layer entry") -> list[str]:
    """The components of an archive path inside the root; refuse one that climbs out of it."""
    parts: list[str] = []
    for comp in name.split("/"):
        if comp in ("", "."):
            continue
        if comp == "..":
            if not parts:
                raise InvalidArgument(f"{what} {name!r} points outside the layer")
            parts.pop()
        else:
            parts.append(comp)
    return parts


def is_whiteout(st: os.stat_result) -> bool:
    """Whether a file is an overlay whiteout (a character device 0:0)."""
    return stat.S_ISCHR(st.st_mode) and st.st_rdev == 0


def lstat_at(dir_fd: int, name: str) -> os.stat_result | None:
    """lstat of ``name`` in a directory fd, or None when it does not exist."""
    try:
        return os.lstat(name, dir_fd=dir_fd)
    except FileNotFoundError:
        return None


def remove_at(dir_fd: int, name: str, st: os.stat_result | None = None) -> None:
    """Remove ``name`` (a whole tree if it is a directory) without following any symlink."""
    st = st if st is not None else lstat_at(dir_fd, name)
    if st is None:
        return
    if stat.S_ISDIR(st.st_mode):
        # rmtree with dir_fd walks by fds and never follows symlinks.
        shutil.rmtree(name, dir_fd=dir_fd)
    else:
        os.unlink(name, dir_fd=dir_fd)


def proc_path(dir_fd: int, name: str) -> str:
    """A path naming ``name`` in an open directory, for calls that take no dir_fd (xattrs)."""
    return f"/proc/self/fd/{dir_fd}/{name}"


class DirCursor:
    """Open directories under a root fd, one component at a time, never through a symlink.

    It keeps the fds of the last path it opened, so consecutive entries of the same
    directory (the usual tar order) cost no extra syscalls.
    """

    def __init__(self, root_fd: int) -> None:
        self.root_fd = root_fd
        self._stack: list[tuple[str, int]] = []

    def open(self, parts: list[str], *, create: bool, entry: str) -> int:
        """The fd of directory ``parts`` (relative to the root); the cursor owns it.

        With ``create``, missing directories are made (0755, root-owned, as tar does).
        Raises InvalidArgument naming ``entry`` when a component is a symlink or not a dir.
        """
        keep = 0
        while keep < len(self._stack) and keep < len(parts) and self._stack[keep][0] == parts[keep]:
            keep += 1
        self._truncate(keep)
        for comp in parts[keep:]:
            parent = self._stack[-1][1] if self._stack else self.root_fd
            self._stack.append((comp, self._open_one(parent, comp, create, entry)))
        return self._stack[-1][1] if self._stack else self.root_fd

    def _open_one(self, parent: int, comp: str, create: bool, entry: str) -> int:
        try:
            return os.open(comp, _DIR_FLAGS, dir_fd=parent)
        except FileNotFoundError:
            if not create:
                raise
            os.mkdir(comp, 0o755, dir_fd=parent)
            return os.open(comp, _DIR_FLAGS, dir_fd=parent)
        except OSError as exc:
            if exc.errno not in (errno.ELOOP, errno.ENOTDIR):
                raise
            where = "/".join([c for c, _ in self._stack] + [comp])
            st = lstat_at(parent, comp)
            if st is not None and stat.S_ISLNK(st.st_mode):
                raise InvalidArgument(f"{entry}: its parent {where!r} is a symbolic link;"
                                      " refusing to write through it") from None
            raise InvalidArgument(f"{entry}: its parent {where!r} is not a directory") from None

    def invalidate(self) -> None:
        """Forget every cached fd (a directory on the cached path may have been replaced)."""
        self._truncate(0)

    def _truncate(self, keep: int) -> None:
        while len(self._stack) > keep:
            os.close(self._stack.pop()[1])

    def close(self) -> None:
        """Close every fd the cursor holds."""
        self.invalidate()


@dataclass
class _Applier:
    """Applies tar members one by one under ``root_fd``."""

    root_fd: int
    bytes_written: int = 0
    limit: int = 0  # the most bytes of file content the layer may hold (0: no limit)
    source_fd: int = -1  # the tar's own file, for in-kernel copies of contents (-1: read)
    cursor: DirCursor = field(init=False)
    # Directories whose mtimes are set at the end, once nothing more is written inside them.
    dir_times: list[tuple[list[str], int, int]] = field(default_factory=list)

    def __post_init__(self) -> None:
        self.cursor = DirCursor(self.root_fd)

    def apply(self, tar: tarfile.TarFile, member: tarfile.TarInfo) -> None:
        label = f"layer entry {member.name!r}"
        if member.name.startswith("/"):
            raise InvalidArgument(f"{label} is an absolute path; layer entries are relative")
        parts = clean_name(member.name)
        if not parts:
            if not member.isdir():
                raise InvalidArgument(f"{label} names the layer root but is not a directory")
            self._set_dir_meta(self.root_fd, member, label)
            self.dir_times.append(([], *_times(member)))
            return
        base = parts[-1]
        if base.startswith(WHITEOUT_PREFIX):
            self._whiteout(parts, label)
            return
        parent = self.cursor.open(parts[:-1], create=True, entry=label)
        existing = lstat_at(parent, base)
        if member.isdir():
            self._dir(parent, base, parts, existing, member, label)
        elif member.isreg():
            self._replace(parent, base, existing)
            self._file(tar, parent, base, member, label)
        elif member.issym():
            self._replace(parent, base, existing)
            os.symlink(member.linkname, base, dir_fd=parent)
            self._set_meta(parent, base, member, label, chmod=False)
        elif member.islnk():
            self._hardlink(parent, base, existing, member, label)
        elif member.ischr() or member.isblk() or member.isfifo():
            self._replace(parent, base, existing)
            if member.isfifo():
                os.mkfifo(base, 0o600, dir_fd=parent)
            else:
                kind = stat.S_IFCHR if member.ischr() else stat.S_IFBLK
                device = os.makedev(member.devmajor, member.devminor)
                os.mknod(base, kind | 0o600, device, dir_fd=parent)
            self._set_meta(parent, base, member, label)
        else:
            raise InvalidArgument(f"{label} has an unsupported tar type {member.type!r}")

    def _whiteout(self, parts: list[str], label: str) -> None:
        base = parts[-1]
        parent = self.cursor.open(parts[:-1], create=True, entry=label)
        if base == OPAQUE_MARKER:
            os.setxattr(parent, OPAQUE_XATTR, b"y")
            return
        if base.startswith(WHITEOUT_PREFIX + WHITEOUT_PREFIX):
            return  # other AUFS metadata (.wh..wh.plnk, .wh..wh.aufs): nothing to do on overlay
        hidden = base[len(WHITEOUT_PREFIX):]
        if hidden in ("", ".", ".."):
            raise InvalidArgument(f"{label} is not a valid whiteout")
        self._replace(parent, hidden, lstat_at(parent, hidden))
        os.mknod(hidden, stat.S_IFCHR, os.makedev(0, 0), dir_fd=parent)

    @staticmethod
    def _replace(parent: int, name: str, existing: os.stat_result | None) -> None:
        # The cursor's cached fds are exactly ``parent``'s ancestors, so removing a child of
        # ``parent`` can never pull a directory out from under them.
        if existing is not None:
            remove_at(parent, name, existing)

    def _dir(self, parent: int, base: str, parts: list[str], existing: os.stat_result | None,
             member: tarfile.TarInfo, label: str) -> None:
        if existing is None or not stat.S_ISDIR(existing.st_mode):
            self._replace(parent, base, existing)
            os.mkdir(base, 0o700, dir_fd=parent)
        fd = os.open(base, _DIR_FLAGS, dir_fd=parent)
        try:
            self._set_dir_meta(fd, member, label)
        finally:
            os.close(fd)
        self.dir_times.append((parts, *_times(member)))

    def _set_dir_meta(self, fd: int, member: tarfile.TarInfo, label: str) -> None:
        os.chown(fd, member.uid, member.gid)
        os.chmod(fd, stat.S_IMODE(member.mode))
        _set_xattrs(fd, member, label)

    def _file(self, tar: tarfile.TarFile, parent: int, base: str, member: tarfile.TarInfo,
              label: str) -> None:
        if self.limit and self.bytes_written + member.size > self.limit:
            raise LayerTooLarge(f"{label}: the layer unpacks to more than {self.limit} bytes "
                                "(the daemon's max_layer_size)")
        fd = os.open(base, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC,
                     0o600, dir_fd=parent)
        try:
            if self.source_fd >= 0 and not getattr(member, "sparse", None):
                _copy_range(self.source_fd, fd, member.offset_data, member.size)
            else:
                source = tar.extractfile(member)
                if source is not None:
                    with source:
                        _copy_sparse(source, fd, member)
            self.bytes_written += member.size
            # chown before chmod (chown clears setuid) and before xattrs (it drops caps).
            os.chown(fd, member.uid, member.gid)
            os.chmod(fd, stat.S_IMODE(member.mode))
            _set_xattrs(fd, member, label)
            os.utime(fd, ns=_times(member))
        finally:
            os.close(fd)

    def _hardlink(self, parent: int, base: str, existing: os.stat_result | None,
                  member: tarfile.TarInfo, label: str) -> None:
        target = clean_name(member.linkname, f"{label}: hard link target")
        if not target:
            raise InvalidArgument(f"{label}: hard link to the layer root")
        # The target's parents are walked with a second cursor so this entry's stays cached.
        walker = DirCursor(self.root_fd)
        try:
            src_parent, src = self._link_target(walker, target, member, label)
            if existing is not None:
                if (existing.st_dev, existing.st_ino) == (src.st_dev, src.st_ino):
                    return  # already this very file
                self._replace(parent, base, existing)
                if stat.S_ISDIR(existing.st_mode):
                    # The removed tree may have held the target: look it up afresh.
                    walker.invalidate()
                    src_parent, src = self._link_target(walker, target, member, label)
            os.link(target[-1], base, src_dir_fd=src_parent, dst_dir_fd=parent,
                    follow_symlinks=False)
        finally:
            walker.close()

    @staticmethod
    def _link_target(walker: DirCursor, target: list[str], member: tarfile.TarInfo,
                     label: str) -> tuple[int, os.stat_result]:
        try:
            src_parent = walker.open(target[:-1], create=False,
                                     entry=f"{label}: hard link target {member.linkname!r}")
            src = lstat_at(src_parent, target[-1])
        except FileNotFoundError:
            src = None
        if src is None:
            raise InvalidArgument(
                f"{label}: hard link target {member.linkname!r} is not in this layer")
        if stat.S_ISDIR(src.st_mode):
            raise InvalidArgument(f"{label}: hard link target {member.linkname!r} is a directory")
        return src_parent, src

    def _set_meta(self, parent: int, base: str, member: tarfile.TarInfo, label: str,
                  *, chmod: bool = True) -> None:
        os.chown(base, member.uid, member.gid, dir_fd=parent, follow_symlinks=False)
        if chmod:
            # Just created here as a non-symlink, so following the last component is safe.
            os.chmod(base, stat.S_IMODE(member.mode), dir_fd=parent)
        _set_xattrs(proc_path(parent, base), member, label)
        os.utime(base, ns=_times(member), dir_fd=parent, follow_symlinks=False)

    def finish(self) -> None:
        """Set directory mtimes now that their content is complete."""
        for parts, atime, mtime in self.dir_times:
            if not parts:
                os.utime(self.root_fd, ns=(atime, mtime))
                continue
            try:
                parent = self.cursor.open(parts[:-1], create=False, entry="")
            except (InvalidArgument, FileNotFoundError):
                continue  # a later entry replaced this directory's parent
            st = lstat_at(parent, parts[-1])
            if st is not None and stat.S_ISDIR(st.st_mode):
                os.utime(parts[-1], ns=(atime, mtime), dir_fd=parent, follow_symlinks=False)


def _times(member: tarfile.TarInfo) -> tuple[int, int]:
    mtime = int(member.mtime * 1_000_000_000)
    atime_text = member.pax_headers.get("atime")
    try:
        atime = int(float(atime_text) * 1_000_000_000) if atime_text else mtime
    except ValueError:
        atime = mtime
    return atime, mtime


def _set_xattrs(target: int | str, member: tarfile.TarInfo, label: str) -> None:
    for key, value in member.pax_headers.items():
        if not key.startswith(_PAX_XATTR):
            continue
        name = key[len(_PAX_XATTR):]
        if name.startswith(OVERLAY_XATTR_PREFIX):
            continue
        # tarfile decodes PAX values as UTF-8 with surrogateescape; this gives the bytes back.
        raw = value.encode("utf-8", "surrogateescape")
        try:
            # An fd is the file itself; a path must not follow a symlink at its end.
            os.setxattr(target, name, raw, follow_symlinks=isinstance(target, int))
        except OSError as exc:
            # Not every filesystem takes every namespace (security.selinux without an LSM,
            # user.* on a symlink); like docker, drop those and keep going.
            if name.startswith("security.") or exc.errno in (errno.ENOTSUP, errno.EPERM):
                log.debug("dropped xattr", extra={"entry": label, "xattr": name,
                                                  "error": exc.strerror})
                continue
            raise


class LayerTooLarge(ResourceExhausted):
    """The layer's files add up to more than the daemon allows (a decompression bomb)."""


_ZEROS = bytes(_CHUNK)


def _write_or_skip(fd: int, data: bytes) -> None:
    """Write ``data`` at the file offset, or leave a hole if it is all zeros."""
    if data == _ZEROS[:len(data)]:
        os.lseek(fd, len(data), os.SEEK_CUR)
        return
    view = memoryview(data)
    while view:
        view = view[os.write(fd, view):]


def _copy_range(source_fd: int, fd: int, offset: int, size: int) -> None:
    """Copy ``size`` bytes at ``offset`` of ``source_fd`` to ``fd`` inside the kernel."""
    done = 0
    while done < size:
        n = os.copy_file_range(source_fd, fd, size - done, offset + done)
        if n == 0:
            raise EOFError("unexpected end of a member's data")
        done += n


def _copy_sparse(source: IO[bytes], fd: int, member: tarfile.TarInfo) -> None:
    """Copy a member's content into ``fd`` keeping holes: the holes of a sparse archive member
    are never read (only its data segments), and zero chunks of any file are skipped."""
    segments = getattr(member, "sparse", None)
    raw = getattr(source, "raw", None)
    if segments and raw is not None:
        for offset, size in segments:
            raw.seek(offset)
            os.lseek(fd, offset, os.SEEK_SET)
            while size > 0:
                chunk = raw.read(min(size, _CHUNK))
                if not chunk:
                    raise EOFError("unexpected end of a sparse member's data")
                _write_or_skip(fd, chunk)
                size -= len(chunk)
    else:
        while chunk := source.read(_CHUNK):
            _write_or_skip(fd, chunk)
    os.ftruncate(fd, member.size)  # the file's length, trailing hole included


def unpack_layer(reader: BinaryIO, dest: Path, *, limit: int = 0, seekable: bool = False) -> int:
    """Apply an (uncompressed) layer tar stream to the empty directory ``dest``.

    Returns the bytes of regular-file content written (their length: holes stay holes).
    Raises InvalidArgument naming the entry for anything that would write outside ``dest``
    or that is not a valid archive, ResourceExhausted when the disk is full, LayerTooLarge
    when the files add up to more than ``limit`` bytes (0: no limit). Blocking: call it from
    a worker thread. ``seekable``: ``reader`` is a regular file holding the tar itself; the
    content of its files is then copied by the kernel (copy_file_range: no pass through
    Python, on filesystems that support it no copy at all) instead of read and written.
    """
    root_fd = os.open(dest, _DIR_FLAGS)
    applier = _Applier(root_fd, limit=limit, source_fd=reader.fileno() if seekable else -1)
    member: tarfile.TarInfo | None = None
    try:
        mode: Literal["r:", "r|"] = "r:" if seekable else "r|"
        with tarfile.open(fileobj=reader, mode=mode, bufsize=_TAR_BUFSIZE) as tar:
            while (member := tar.next()) is not None:
                applier.apply(tar, member)
                tar.members.clear()  # type: ignore[attr-defined]  # stream mode keeps them all
            member = None
            applier.finish()
    except (tarfile.TarError, EOFError, gzip.BadGzipFile, zlib.error) as exc:
        raise InvalidArgument(f"layer is not a valid tar archive: {exc}") from exc
    except OSError as exc:
        raise _os_error(exc, member) from exc
    except Exception as exc:  # zstandard raises its own ZstdError
        if type(exc).__name__ == "ZstdError":
            raise InvalidArgument(f"layer is not valid zstd data: {exc}") from exc
        raise
    finally:
        applier.cursor.close()
        os.close(root_fd)
    return applier.bytes_written


def _os_error(exc: OSError, member: tarfile.TarInfo | None) -> Exception:
    where = f"layer entry {member.name!r}" if member is not None else "layer"
    reason = exc.strerror or str(exc)
    if exc.errno in (errno.ENOSPC, errno.EDQUOT):
        return ResourceExhausted(f"cannot unpack {where}: {reason}")
    if exc.errno in _LAYER_FAULTS and member is not None:
        return InvalidArgument(f"cannot unpack {where}: {reason}")
    return exc
