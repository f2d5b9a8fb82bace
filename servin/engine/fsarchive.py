"""Tar streams of directory trees, written and extracted only through file descriptors.

Used by ``cp``, ``export``, ``commit`` and volume backups. Every path is resolved from a
root fd with openat2(RESOLVE_IN_ROOT) or one component at a time with O_NOFOLLOW, so a
process racing to swap a directory for a symlink can neither lead a write out of the root
nor make a read pick up a file outside it. Entries that would land outside the destination
(absolute names, ``..``, hard links out) are refused.
"""

from __future__ import annotations

import contextlib
import errno
import io
import os
import stat
import tarfile
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import BinaryIO

from servin.engine.linux.safepath import RESOLVE_IN_ROOT, RESOLVE_NO_MAGICLINKS, openat2
from servin.errors import InvalidArgument

_DIR = os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC
_FILE = os.O_RDONLY | os.O_NOFOLLOW | os.O_CLOEXEC | os.O_NONBLOCK
_IN_ROOT = RESOLVE_IN_ROOT | RESOLVE_NO_MAGICLINKS
WHITEOUT_PREFIX = ".wh."


# -- writing ------------------------------------------------------------------------------


@dataclass
class TarWriter:
    """Adds files (named by fds) to a streaming tar archive; hard links are kept."""

    out: BinaryIO
    owner: tuple[int, int] | None = None  # force uid/gid (None: keep the files')
    _tar: tarfile.TarFile = field(init=False)
    _links: dict[tuple[int, int], str] = field(default_factory=dict, init=False)

    def __post_init__(self) -> None:
        self._tar = tarfile.open(  # noqa: SIM115 - closed by close()
            fileobj=self.out, mode="w|", format=tarfile.PAX_FORMAT)

    def close(self) -> None:
        """Write the end-of-archive blocks (the output stays open)."""
        self._tar.close()

    def _info(self, name: str, st: os.stat_result) -> tarfile.TarInfo:
        info = tarfile.TarInfo(name)
        info.mode = stat.S_IMODE(st.st_mode)
        info.uid, info.gid = self.owner or (st.st_uid, st.st_gid)
        info.mtime = st.st_mtime
        return info

    def add_entry(self, dir_fd: int, name: str, arcname: str,
                  st: os.stat_result | None = None, recursive: bool = True) -> None:
        """Add ``name`` (in directory ``dir_fd``; not followed if a symlink) as ``arcname``."""
        if st is None:
            st = os.lstat(name, dir_fd=dir_fd)
        mode = st.st_mode
        info = self._info(arcname, st)
        key = (st.st_dev, st.st_ino)
        if not stat.S_ISDIR(mode) and st.st_nlink > 1:
            first = self._links.get(key)
            if first is not None:
                info.type = tarfile.LNKTYPE
                info.linkname = first
                self._tar.addfile(info)
                return
            self._links[key] = arcname
        if stat.S_ISDIR(mode):
            info.type = tarfile.DIRTYPE
            self._tar.addfile(info)
            if recursive:
                sub = os.open(name, _DIR, dir_fd=dir_fd)
                try:
                    self.add_children(sub, arcname)
                finally:
                    os.close(sub)
        elif stat.S_ISREG(mode):
            fd = os.open(name, _FILE, dir_fd=dir_fd)
            with os.fdopen(fd, "rb") as f:
                now = os.fstat(f.fileno())
                if not stat.S_ISREG(now.st_mode):
                    raise OSError(errno.EAGAIN, f"{arcname} changed while being archived")
                info.size = now.st_size
                self._tar.addfile(info, _Exactly(f, now.st_size))
        elif stat.S_ISLNK(mode):
            info.type = tarfile.SYMTYPE
            info.linkname = os.readlink(name, dir_fd=dir_fd)
            self._tar.addfile(info)
        elif stat.S_ISCHR(mode) or stat.S_ISBLK(mode):
            info.type = tarfile.CHRTYPE if stat.S_ISCHR(mode) else tarfile.BLKTYPE
            info.devmajor, info.devminor = os.major(st.st_rdev), os.minor(st.st_rdev)
            self._tar.addfile(info)
        elif stat.S_ISFIFO(mode):
            info.type = tarfile.FIFOTYPE
            self._tar.addfile(info)
        # sockets are not archived (tar cannot hold them)

    def add_fd(self, fd: int, arcname: str) -> None:
        """Add the file an ``O_PATH`` fd names (directories recursively) as ``arcname``."""
        st = os.fstat(fd)
        if stat.S_ISDIR(st.st_mode):
            sub = os.open(".", _DIR & ~os.O_NOFOLLOW, dir_fd=fd)
            try:
                info = self._info(arcname, st)
                info.type = tarfile.DIRTYPE
                self._tar.addfile(info)
                self.add_children(sub, arcname)
            finally:
                os.close(sub)
            return
        if stat.S_ISLNK(st.st_mode):
            info = self._info(arcname, st)
            info.type = tarfile.SYMTYPE
            info.linkname = os.readlink("", dir_fd=fd)
            self._tar.addfile(info)
            return
        if stat.S_ISREG(st.st_mode):
            # Reopening through the fd's own /proc link reads exactly this inode.
            with open(f"/proc/self/fd/{fd}", "rb") as f:
                info = self._info(arcname, st)
                info.size = st.st_size
                self._tar.addfile(info, _Exactly(f, st.st_size))
            return
        parent_less = self._info(arcname, st)
        if stat.S_ISFIFO(st.st_mode):
            parent_less.type = tarfile.FIFOTYPE
        elif stat.S_ISCHR(st.st_mode) or stat.S_ISBLK(st.st_mode):
            parent_less.type = tarfile.CHRTYPE if stat.S_ISCHR(st.st_mode) else tarfile.BLKTYPE
            parent_less.devmajor = os.major(st.st_rdev)
            parent_less.devminor = os.minor(st.st_rdev)
        else:
            return
        self._tar.addfile(parent_less)

    def add_children(self, dir_fd: int, prefix: str,
                     skip: Callable[[str], bool] = lambda name: False) -> None:
        """Add every entry of directory ``dir_fd`` under ``prefix`` (recursively)."""
        for name in sorted(os.listdir(dir_fd)):
            if skip(name):
                continue
            try:
                st = os.lstat(name, dir_fd=dir_fd)
            except FileNotFoundError:
                continue  # removed meanwhile
            self.add_entry(dir_fd, name, f"{prefix}/{name}" if prefix else name, st)

    def add_whiteout(self, arcname: str) -> None:
        """An OCI whiteout entry (``dir/.wh.name``) marking ``arcname`` deleted (mode 0600,
        as docker writes them)."""
        head, _, base = arcname.rpartition("/")
        info = tarfile.TarInfo(f"{head}/{WHITEOUT_PREFIX}{base}" if head else
                               f"{WHITEOUT_PREFIX}{base}")
        info.mode = 0o600
        self._tar.addfile(info)

    def add_opaque(self, arcname: str, st: os.stat_result) -> None:
        """The opaque marker (``dir/.wh..wh..opq``) of directory ``arcname``: nothing of the
        layers below shows through it. Owner and permissions are the directory's."""
        info = self._info(f"{arcname}/{WHITEOUT_PREFIX}{WHITEOUT_PREFIX}.opq", st)
        self._tar.addfile(info)


class _Exactly(io.RawIOBase):
    """A file read as exactly ``size`` bytes (zero-padded if it shrank while being read), so
    a file a container truncates mid-copy cannot corrupt the tar stream."""

    def __init__(self, f: BinaryIO, size: int) -> None:
        self.f = f
        self.left = size

    def readable(self) -> bool:
        return True

    def readinto(self, buf: memoryview) -> int:  # type: ignore[override]  # bytes-like
        if self.left <= 0:
            return 0
        want = min(len(buf), self.left)
        data = self.f.read(want) or b"\0" * want
        buf[: len(data)] = data
        self.left -= len(data)
        return len(data)


# -- extracting ---------------------------------------------------------------------------


def clean_name(name: str) -> list[str]:
    """The components of a tar entry name; InvalidArgument if it would leave the root."""
    parts = [p for p in name.split("/") if p not in ("", ".")]
    if name.startswith("/") or ".." in parts:
        raise InvalidArgument(f"archive entry {name!r} points outside the destination")
    return parts


def check_members(source: BinaryIO) -> None:
    """Read a whole archive and refuse it if any entry (or hard link) leaves its root."""
    try:
        with tarfile.open(fileobj=source, mode="r|") as tar:
            for member in tar:
                clean_name(member.name)
                if member.islnk():
                    clean_name(member.linkname)
    except tarfile.TarError as exc:
        raise InvalidArgument(f"input is not a valid tar archive: {exc}") from exc


@dataclass
class Extractor:
    """Extracts a tar stream into the directory ``dest_fd`` as the root of every entry."""

    dest_fd: int
    preserve_owner: bool = True
    owner: tuple[int, int] = (0, 0)  # used when not preserving
    devices: bool = True  # False: device nodes and fifos are skipped (a build context)
    _dirs: list[tuple[list[str], tarfile.TarInfo]] = field(default_factory=list)

    def extract(self, source: BinaryIO) -> int:
        """Extract every entry; directory times are set last. Returns the entry count."""
        count = 0
        try:
            with tarfile.open(fileobj=source, mode="r|") as tar:
                for member in tar:
                    self._entry(tar, member)
                    count += 1
        except tarfile.TarError as exc:
            raise InvalidArgument(f"input is not a valid tar archive: {exc}") from exc
        for parts, member in reversed(self._dirs):
            with contextlib.suppress(OSError):
                fd = openat2(self.dest_fd, "/".join(parts) or ".",
                             os.O_PATH | os.O_DIRECTORY | os.O_NOFOLLOW, resolve=_IN_ROOT)
                try:
                    self._set_times(fd, member)
                finally:
                    os.close(fd)
        return count

    def _parent(self, parts: list[str]) -> int:
        """An O_PATH fd of the entry's parent, created (0755) where missing."""
        path = "/".join(parts[:-1]) or "."
        try:
            return openat2(self.dest_fd, path, os.O_PATH | os.O_DIRECTORY, resolve=_IN_ROOT)
        except FileNotFoundError:
            pass
        fd = os.dup(self.dest_fd)
        try:
            for part in parts[:-1]:
                try:
                    nxt = openat2(fd, part, os.O_PATH | os.O_DIRECTORY, resolve=_IN_ROOT)
                except FileNotFoundError:
                    with contextlib.suppress(FileExistsError):
                        os.mkdir(part, 0o755, dir_fd=fd)
                    nxt = openat2(fd, part, os.O_PATH | os.O_DIRECTORY | os.O_NOFOLLOW,
                                  resolve=_IN_ROOT)
                os.close(fd)
                fd = nxt
            return fd
        except BaseException:
            os.close(fd)
            raise

    def _entry(self, tar: tarfile.TarFile, member: tarfile.TarInfo) -> None:
        parts = clean_name(member.name)
        if not parts:
            # The root itself ("./"): its metadata applies to the destination.
            if member.isdir():
                self._apply(os.dup(self.dest_fd), member, close=True)
            return
        parent = self._parent(parts)
        try:
            self._create(tar, member, parent, parts)
        finally:
            os.close(parent)

    def _clear(self, parent: int, name: str, for_dir: bool) -> None:
        """Make room for a new entry: an existing non-directory is replaced by a non-directory;
        a directory and a non-directory never replace each other (as docker's cp)."""
        try:
            st = os.lstat(name, dir_fd=parent)
        except FileNotFoundError:
            return
        if stat.S_ISDIR(st.st_mode):
            if not for_dir:
                raise InvalidArgument(f"cannot overwrite directory {name!r} with a non-directory")
            return
        if for_dir:
            raise InvalidArgument(f"cannot overwrite non-directory {name!r} with a directory")
        os.unlink(name, dir_fd=parent)

    def _create(self, tar: tarfile.TarFile, member: tarfile.TarInfo, parent: int,
                parts: list[str]) -> None:
        name = parts[-1]
        if member.isdir():
            self._clear(parent, name, True)
            with contextlib.suppress(FileExistsError):
                os.mkdir(name, 0o700, dir_fd=parent)
            fd = os.open(name, os.O_PATH | os.O_NOFOLLOW | os.O_DIRECTORY | os.O_CLOEXEC,
                         dir_fd=parent)
            self._apply(fd, member, close=True, times=False)
            self._dirs.append((parts, member))
            return
        self._clear(parent, name, False)
        if member.isreg():
            fd = os.open(name, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW
                         | os.O_CLOEXEC, 0o600, dir_fd=parent)
            with os.fdopen(fd, "wb") as out:
                data = tar.extractfile(member)
                assert data is not None
                while chunk := data.read(1 << 20):
                    out.write(chunk)
                out.flush()
                self._apply(os.dup(out.fileno()), member, close=True)
            return
        if member.issym():
            os.symlink(member.linkname, name, dir_fd=parent)
            if self.preserve_owner:
                os.chown(name, member.uid, member.gid, dir_fd=parent, follow_symlinks=False)
            else:
                os.chown(name, *self.owner, dir_fd=parent, follow_symlinks=False)
            with contextlib.suppress(OSError):
                os.utime(name, (member.mtime, member.mtime), dir_fd=parent,
                         follow_symlinks=False)
            return
        if member.islnk():
            target = clean_name(member.linkname)
            if not target:
                raise InvalidArgument(f"hard link {member.name!r} has no target")
            src_parent = openat2(self.dest_fd, "/".join(target[:-1]) or ".",
                                 os.O_PATH | os.O_DIRECTORY, resolve=_IN_ROOT)
            try:
                os.link(target[-1], name, src_dir_fd=src_parent, dst_dir_fd=parent,
                        follow_symlinks=False)
            finally:
                os.close(src_parent)
            return
        if member.ischr() or member.isblk() or member.isfifo():
            if not self.devices:
                return
            kind = stat.S_IFCHR if member.ischr() else stat.S_IFBLK if member.isblk() \
                else stat.S_IFIFO
            os.mknod(name, kind | 0o600, os.makedev(member.devmajor, member.devminor),
                     dir_fd=parent)
            fd = os.open(name, os.O_PATH | os.O_NOFOLLOW | os.O_CLOEXEC, dir_fd=parent)
            self._apply(fd, member, close=True)
            return
        raise InvalidArgument(f"unsupported archive entry type for {member.name!r}")

    def _apply(self, fd: int, member: tarfile.TarInfo, *, close: bool,
               times: bool = True) -> None:
        """Owner, mode (and times) on the fd's file, never through a path."""
        try:
            path = f"/proc/self/fd/{fd}"
            uid, gid = (member.uid, member.gid) if self.preserve_owner else self.owner
            os.chown(path, uid, gid)
            os.chmod(path, member.mode & 0o7777)
            if times:
                self._set_times(fd, member)
        finally:
            if close:
                os.close(fd)

    @staticmethod
    def _set_times(fd: int, member: tarfile.TarInfo) -> None:
        os.utime(f"/proc/self/fd/{fd}", (member.mtime, member.mtime))
