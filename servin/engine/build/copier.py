"""COPY and ADD into a root filesystem, with docker's rules, through file descriptors only.

Sources are found in a source root (the build context, or another stage's or an image's
root filesystem): a path names one entry (a symlink at the top is followed, inside the
root), a pattern with ``*``, ``?`` or ``[...]`` names every entry it matches. A directory
source copies its contents. Every path on both sides is resolved inside its root
(openat2 ``RESOLVE_IN_ROOT``): a symlink in the image pointing at ``/etc`` resolves to the
image's own ``/etc``, never the host's.

Destination rules (docker's): a relative destination is below WORKDIR; one ending in ``/``
is a directory, and so is one that exists as a directory; several sources need a directory
destination. Copied entries keep their modes and times and become root's (or ``--chown``'s);
missing parent directories are made 0755 for the same owner. ``ADD`` unpacks a local tar
archive (plain or compressed) into the destination and keeps its owners.
"""

from __future__ import annotations

import bz2
import contextlib
import errno
import fnmatch
import gzip
import hashlib
import lzma
import os
import posixpath
import stat
import tarfile
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

from servin.dockerfile.reads import clean
from servin.engine import fsarchive
from servin.engine.build.events import StepError
from servin.engine.linux.safepath import openat2
from servin.engine.runtime.userdb import resolve_user
from servin.errors import InvalidArgument, ServinError

_PATH = os.O_PATH | os.O_CLOEXEC
_DIR = os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC
_WILDCARDS = "*?["
_CHUNK = 1 << 20


@dataclass
class Source:
    """One thing to copy."""

    name: str  # the base name a copy into a directory gives it
    root: int = -1  # fd of the root it is found in (-1: ``data``)
    path: str = ""  # resolved inside ``root``
    is_dir: bool = False
    data: bytes | None = None  # a here-document's content
    mode: int | None = None  # forced permissions (a downloaded file: 0600)
    mtime: float | None = None
    archive: bool = False  # ADD: a local archive, unpacked into the destination

    def display(self) -> str:
        """How messages name it."""
        return self.name if self.root < 0 else self.path


def _has_wildcard(path: str) -> bool:
    return any(ch in path for ch in _WILDCARDS)


def find_sources(root: int, patterns: list[str], *, what: str) -> list[Source]:
    """The entries ``patterns`` name in ``root`` (an ``O_PATH`` directory fd), in order.

    Raises StepError for a path that is not there or a pattern that matches nothing.
    ``what`` names the source root in messages ("build context", "stage build", ...).
    """
    found: list[Source] = []
    for pattern in patterns:
        rel = clean(pattern)
        if _has_wildcard(rel):
            matches = sorted(_glob(root, rel.split("/"), ""))
            if not matches:
                raise StepError(f"no source files were specified (nothing in the {what} "
                                f"matches {pattern!r})")
            for match in matches:
                found.append(_source(root, match, posixpath.basename(match), what))
        else:
            name = posixpath.basename(rel) if rel else ""
            found.append(_source(root, rel, name, what))
    return found


def _source(root: int, rel: str, name: str, what: str) -> Source:
    try:
        fd = openat2(root, rel or ".", _PATH)
    except OSError as exc:
        if exc.errno in (errno.ENOENT, errno.ENOTDIR):
            raise StepError(f"file not found in {what}: {rel or '.'}: no such file or "
                            "directory") from None
        raise StepError(f"cannot read {rel} in {what}: {os.strerror(exc.errno or 0)}") \
            from None
    try:
        st = os.fstat(fd)
    finally:
        os.close(fd)
    return Source(name or ".", root, rel, stat.S_ISDIR(st.st_mode))


def _glob(root: int, parts: list[str], prefix: str) -> Iterator[str]:
    """Paths below ``prefix`` matching the pattern components ``parts``."""
    head, rest = parts[0], parts[1:]
    try:
        fd = openat2(root, prefix or ".", os.O_RDONLY | os.O_DIRECTORY)
    except OSError:
        return
    try:
        names = sorted(os.listdir(fd))
    finally:
        os.close(fd)
    for name in names:
        if not (fnmatch.fnmatchcase(name, head) if _has_wildcard(head) else name == head):
            continue
        path = f"{prefix}/{name}" if prefix else name
        if rest:
            yield from _glob(root, rest, path)
        else:
            yield path


# -- what the sources are made of (for the cache key) -------------------------------------------


def digest_sources(sources: list[Source]) -> str:
    """A digest of every source's names, types, modes, owners, sizes, times, link targets
    and contents (blocking)."""
    h = hashlib.sha256()
    for source in sources:
        h.update(f"\0source\0{source.name}\0{source.mode}\0{source.mtime}\0{source.archive}\0"
                 .encode())
        if source.data is not None:
            h.update(hashlib.sha256(source.data).digest())
            continue
        fd = openat2(source.root, source.path or ".", _PATH)
        try:
            _digest_entry(h, fd, "", os.fstat(fd), top=True)
        finally:
            os.close(fd)
    return "sha256:" + h.hexdigest()


def _digest_entry(h: hashlib._Hash, fd: int, rel: str, st: os.stat_result,
                  top: bool = False) -> None:
    link = os.readlink("", dir_fd=fd) if stat.S_ISLNK(st.st_mode) else ""
    h.update(f"\0{rel}\0{st.st_mode:o}\0{st.st_uid}\0{st.st_gid}\0{st.st_size}\0"
             f"{st.st_mtime_ns}\0{link}\0{st.st_rdev}\0".encode())
    if stat.S_ISREG(st.st_mode):
        with open(f"/proc/self/fd/{fd}", "rb") as f:
            while chunk := f.read(_CHUNK):
                h.update(chunk)
    elif stat.S_ISDIR(st.st_mode):
        sub = os.open(".", _DIR & ~os.O_NOFOLLOW, dir_fd=fd) if top else \
            os.open(f"/proc/self/fd/{fd}", _DIR & ~os.O_NOFOLLOW)
        try:
            for name in sorted(os.listdir(sub)):
                try:
                    child = os.open(name, _PATH | os.O_NOFOLLOW, dir_fd=sub)
                except FileNotFoundError:
                    continue
                try:
                    _digest_entry(h, child, f"{rel}/{name}", os.fstat(child))
                finally:
                    os.close(child)
        finally:
            os.close(sub)


# -- owners -------------------------------------------------------------------------------------


def chown_identity(rootfs: Path, spec: str) -> tuple[int, int]:
    """``--chown=user[:group]`` resolved against the image's own /etc/passwd and
    /etc/group (a lone user names the group too, as docker's builder reads it)."""
    user, sep, group = spec.partition(":")
    if not user:
        raise StepError(f"invalid --chown {spec!r}: a user is required")
    try:
        found = resolve_user(rootfs, f"{user}:{group if sep else user}")
    except InvalidArgument as exc:
        raise StepError(f"--chown {spec}: {exc}") from None
    return found.uid, found.gid


def parse_chmod(text: str) -> int:
    """``--chmod`` as octal permissions."""
    try:
        value = int(text, 8)
    except ValueError:
        raise StepError(f"invalid --chmod {text!r}: use octal permissions (0755)") from None
    if not 0 <= value <= 0o7777:
        raise StepError(f"invalid --chmod {text!r}: out of range")
    return value


# -- copying ------------------------------------------------------------------------------------


@dataclass
class CopyOptions:
    """How entries are written."""

    owner: tuple[int, int] = (0, 0)
    chmod: int | None = None


def copy_into(dest_root: int, sources: list[Source], dest: str,
              options: CopyOptions) -> None:
    """Copy ``sources`` to ``dest`` (absolute, inside ``dest_root``) with docker's rules."""
    if not sources:
        raise StepError("no source files were specified")
    as_dir = dest.endswith("/") or dest.endswith("/.") or len(sources) > 1
    if len(sources) > 1 and not (dest.endswith("/") or dest.endswith("/.")):
        raise StepError("when using COPY with more than one source file, the destination "
                        "must be a directory and end with a /")
    target = posixpath.normpath(dest)
    for source in sources:
        try:
            _copy_one(dest_root, source, target, as_dir, options)
        except ServinError:
            raise
        except OSError as exc:
            raise StepError(f"cannot copy {source.display()} to {dest}: "
                            f"{os.strerror(exc.errno or 0) if exc.errno else exc}") from None


def _copy_one(dest_root: int, source: Source, target: str, as_dir: bool,
              options: CopyOptions) -> None:
    if source.archive:
        # As the classic builder: missing directories are root's, the archive keeps its own
        # owners (--chown does not apply).
        parent = ensure_dir(dest_root, target, (0, 0))
        try:
            _unpack(source, parent)
        finally:
            os.close(parent)
        return
    if source.is_dir:
        # As the classic builder: missing parents are root's; the destination takes the
        # source directory's mode, and --chown's owner when it is new (root's otherwise).
        existed = _is_dir(dest_root, target)
        top = ensure_dir(dest_root, target, (0, 0))
        try:
            src = openat2(source.root, source.path or ".", os.O_RDONLY | os.O_DIRECTORY)
            try:
                _copy_children(src, top, options)
                _apply_dir_meta(src, top, options if not existed else
                                CopyOptions((0, 0), options.chmod))
            finally:
                os.close(src)
        finally:
            os.close(top)
        return
    # A file (or link, device): into the directory, or as the destination path itself.
    into_dir = as_dir or _is_dir(dest_root, target)
    if into_dir:
        parent_path, name = target, source.name
    else:
        parent_path, name = posixpath.dirname(target), posixpath.basename(target)
    if not name or name in (".", ".."):
        raise StepError(f"cannot copy {source.display()} to {target}: not a file name")
    parent = ensure_dir(dest_root, parent_path, options.owner)
    try:
        if source.data is not None:
            _write_data(parent, name, source, options)
        else:
            src = openat2(source.root, source.path, _PATH)
            try:
                _copy_entry(src, os.fstat(src), parent, name, options)
            finally:
                os.close(src)
    finally:
        os.close(parent)


def _is_dir(root: int, path: str) -> bool:
    try:
        fd = openat2(root, path, _PATH)
    except OSError:
        return False
    try:
        return stat.S_ISDIR(os.fstat(fd).st_mode)
    finally:
        os.close(fd)


def ensure_dir(root: int, path: str, owner: tuple[int, int], mode: int = 0o755) -> int:
    """An fd (``O_RDONLY``) of directory ``path`` inside ``root``, made (with its missing
    parents, ``mode``, ``owner``) where missing."""
    try:
        return openat2(root, path or "/", os.O_RDONLY | os.O_DIRECTORY)
    except FileNotFoundError:
        pass
    except NotADirectoryError:
        raise StepError(f"cannot copy to {path}: a path component is not a directory") \
            from None
    fd = openat2(root, "/", os.O_RDONLY | os.O_DIRECTORY)
    try:
        for part in [p for p in path.split("/") if p]:
            try:
                nxt = openat2(fd, part, os.O_RDONLY | os.O_DIRECTORY)
            except FileNotFoundError:
                with contextlib.suppress(FileExistsError):
                    os.mkdir(part, mode, dir_fd=fd)
                    os.chown(part, *owner, dir_fd=fd, follow_symlinks=False)
                    os.chmod(part, mode, dir_fd=fd)
                nxt = openat2(fd, part, os.O_RDONLY | os.O_DIRECTORY)
            except NotADirectoryError:
                raise StepError(f"cannot copy to {path}: {part} is not a directory") from None
            os.close(fd)
            fd = nxt
        return fd
    except BaseException:
        os.close(fd)
        raise


def _clear(parent: int, name: str, for_dir: bool) -> bool:
    """Make room for ``name``: a non-directory in the way goes; return whether a directory
    is already there (kept, for a directory; an error otherwise)."""
    try:
        st = os.lstat(name, dir_fd=parent)
    except FileNotFoundError:
        return False
    if stat.S_ISDIR(st.st_mode):
        if for_dir:
            return True
        raise StepError(f"cannot overwrite directory {name!r} with a non-directory")
    os.unlink(name, dir_fd=parent)
    return False


def _copy_children(src_dir: int, dest_dir: int, options: CopyOptions) -> None:
    for name in sorted(os.listdir(src_dir)):
        try:
            fd = os.open(name, _PATH | os.O_NOFOLLOW, dir_fd=src_dir)
        except FileNotFoundError:
            continue
        try:
            _copy_entry(fd, os.fstat(fd), dest_dir, name, options)
        finally:
            os.close(fd)


def _mode(st: os.stat_result, options: CopyOptions) -> int:
    return options.chmod if options.chmod is not None else stat.S_IMODE(st.st_mode)


def _copy_entry(src: int, st: os.stat_result, parent: int, name: str,
                options: CopyOptions) -> None:
    """Copy the entry ``src`` (an ``O_PATH`` fd, not followed) as ``name`` in ``parent``."""
    mode = st.st_mode
    if stat.S_ISDIR(mode):
        existed = _clear(parent, name, True)
        if not existed:
            os.mkdir(name, 0o700, dir_fd=parent)
        sub_src = os.open(f"/proc/self/fd/{src}", _DIR & ~os.O_NOFOLLOW)
        try:
            sub = os.open(name, _DIR, dir_fd=parent)
            try:
                _copy_children(sub_src, sub, options)
                _apply_dir_meta(sub_src, sub, options)
            finally:
                os.close(sub)
        finally:
            os.close(sub_src)
        return
    _clear(parent, name, False)
    if stat.S_ISREG(mode):
        with open(f"/proc/self/fd/{src}", "rb") as f:
            out = os.open(name, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW
                          | os.O_CLOEXEC, 0o600, dir_fd=parent)
            try:
                _copy_data(f.fileno(), out, st.st_size)
                os.fchown(out, *options.owner)
                os.fchmod(out, _mode(st, options))
                os.utime(out, ns=(st.st_atime_ns, st.st_mtime_ns))
            finally:
                os.close(out)
        return
    if stat.S_ISLNK(mode):
        os.symlink(os.readlink("", dir_fd=src), name, dir_fd=parent)
    elif stat.S_ISCHR(mode) or stat.S_ISBLK(mode) or stat.S_ISFIFO(mode):
        os.mknod(name, stat.S_IFMT(mode) | 0o600, st.st_rdev, dir_fd=parent)
        os.chmod(name, _mode(st, options), dir_fd=parent)
    else:
        return  # a socket: not copied
    os.chown(name, *options.owner, dir_fd=parent, follow_symlinks=False)
    with contextlib.suppress(OSError):
        os.utime(name, ns=(st.st_atime_ns, st.st_mtime_ns), dir_fd=parent,
                 follow_symlinks=False)


def _apply_dir_meta(src_dir: int, dest_dir: int, options: CopyOptions) -> None:
    """A copied directory's owner, mode and times (after its contents, for the times)."""
    st = os.fstat(src_dir)
    os.fchown(dest_dir, *options.owner)
    os.fchmod(dest_dir, _mode(st, options))
    os.utime(dest_dir, ns=(st.st_atime_ns, st.st_mtime_ns))


def _copy_data(src: int, dest: int, size: int) -> None:
    left = size
    while left > 0:
        try:
            sent = os.copy_file_range(src, dest, min(left, 1 << 30))
        except OSError as exc:
            if exc.errno not in (errno.EXDEV, errno.EINVAL, errno.ENOSYS, errno.EOPNOTSUPP):
                raise
            sent = os.sendfile(dest, src, None, min(left, 1 << 30))
        if sent == 0:
            break  # the file shrank while being copied
        left -= sent


def _write_data(parent: int, name: str, source: Source, options: CopyOptions) -> None:
    _clear(parent, name, False)
    out = os.open(name, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC,
                  0o600, dir_fd=parent)
    try:
        assert source.data is not None
        view = memoryview(source.data)
        while view:
            written = os.write(out, view)
            view = view[written:]
        os.fchown(out, *options.owner)
        mode = options.chmod if options.chmod is not None else (
            source.mode if source.mode is not None else 0o644)
        os.fchmod(out, mode)
        if source.mtime is not None:
            os.utime(out, (source.mtime, source.mtime))
    finally:
        os.close(out)


def write_file(dest_root: int, dest: str, source: Source, options: CopyOptions) -> None:
    """Write a downloaded file (or data) to ``dest`` (into it when it is a directory)."""
    copy_into(dest_root, [source], dest, options)


# -- ADD: archives ------------------------------------------------------------------------------

_MAGICS = ((b"\x1f\x8b", "gz"), (b"BZh", "bz2"), (b"\xfd7zXZ\x00", "xz"))


def _opener(head: bytes) -> str:
    for magic, kind in _MAGICS:
        if head.startswith(magic):
            return kind
    return ""


def _reader(f: BinaryIO, kind: str) -> BinaryIO:
    if kind == "gz":
        return gzip.GzipFile(fileobj=f, mode="rb")  # type: ignore[return-value]  # a binary file
    if kind == "bz2":
        return bz2.BZ2File(f)  # type: ignore[return-value]  # a binary file
    if kind == "xz":
        return lzma.LZMAFile(f)  # type: ignore[return-value]  # a binary file
    return f


def is_archive(root: int, path: str) -> bool:
    """Whether a file is a tar archive (plain, gzip, bzip2 or xz), as ADD unpacks them."""
    try:
        fd = openat2(root, path, os.O_RDONLY)
    except OSError:
        return False
    with os.fdopen(fd, "rb") as f:
        if not stat.S_ISREG(os.fstat(f.fileno()).st_mode):
            return False
        head = f.read(6)
        f.seek(0)
        try:
            plain = _reader(f, _opener(head))
            block = plain.read(tarfile.BLOCKSIZE)
        except (OSError, EOFError, lzma.LZMAError):
            return False
    if len(block) < tarfile.BLOCKSIZE or block.count(b"\0") == len(block):
        return False
    try:
        tarfile.TarInfo.frombuf(block, "utf-8", "surrogateescape")
    except tarfile.HeaderError:
        return False
    return True


def _unpack(source: Source, dest_dir: int) -> None:
    fd = openat2(source.root, source.path, os.O_RDONLY)
    with os.fdopen(fd, "rb") as f:
        head = f.read(6)
        f.seek(0)
        plain = _reader(f, _opener(head))
        try:
            fsarchive.Extractor(dest_dir, preserve_owner=True).extract(plain)
        except (OSError, EOFError, lzma.LZMAError) as exc:
            if isinstance(exc, OSError) and exc.errno:
                raise
            raise StepError(f"cannot unpack {source.display()}: {exc}") from None


def touch_now(root: int, path: str) -> None:
    """Set a directory's times to now (a WORKDIR made by the build)."""
    fd = openat2(root, path, _PATH)
    try:
        now = time.time()
        os.utime(f"/proc/self/fd/{fd}", (now, now))
    finally:
        os.close(fd)
