"""The copy driver: unpacked layers merged into one plain directory, as overlayfs would show them.

Each layer is applied bottom to top onto the container's directory: a whiteout removes the
name below it, an opaque directory drops what lay below it, a directory merges into a
directory, anything else replaces what was there. Both trees are walked by fds with
``O_NOFOLLOW`` (a symlink a lower layer left in the destination is replaced, never entered).
"""

from __future__ import annotations

import errno
import os
import stat

from servin.engine.store.snapshots.unpack import (
    OPAQUE_XATTR,
    OVERLAY_XATTR_PREFIX,
    DirCursor,
    is_whiteout,
    lstat_at,
    proc_path,
    remove_at,
)
from servin.errors import InvalidArgument

_DIR_FLAGS = os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC
_FILE_FLAGS = os.O_RDONLY | os.O_NOFOLLOW | os.O_CLOEXEC
_CHUNK = 1 << 24


def is_opaque(dir_fd: int) -> bool:
    """Whether an open directory carries overlay's opaque mark."""
    try:
        return os.getxattr(dir_fd, OPAQUE_XATTR) == b"y"
    except OSError:
        return False


def apply_layer(src_root: int, dst_root: int) -> None:
    """Merge the unpacked layer at fd ``src_root`` onto the directory at fd ``dst_root``."""
    links: dict[tuple[int, int], list[str]] = {}
    try:
        _merge_dir(src_root, dst_root, [], links, dst_root)
    except RecursionError:
        raise InvalidArgument("layer is nested too deeply to copy") from None


def _merge_dir(src: int, dst: int, rel: list[str], links: dict[tuple[int, int], list[str]],
               dst_root: int) -> None:
    for name in sorted(os.listdir(src)):
        st = os.lstat(name, dir_fd=src)
        existing = lstat_at(dst, name)
        if is_whiteout(st):
            remove_at(dst, name, existing)
            continue
        if stat.S_ISDIR(st.st_mode):
            fresh = existing is None or not stat.S_ISDIR(existing.st_mode)
            if fresh:
                remove_at(dst, name, existing)
                os.mkdir(name, 0o700, dir_fd=dst)
            sub_src = os.open(name, _DIR_FLAGS, dir_fd=src)
            try:
                sub_dst = os.open(name, _DIR_FLAGS, dir_fd=dst)
                try:
                    if not fresh and is_opaque(sub_src):
                        for child in os.listdir(sub_dst):
                            remove_at(sub_dst, child)
                    _merge_dir(sub_src, sub_dst, [*rel, name], links, dst_root)
                    _copy_meta(sub_src, sub_dst, st)
                    os.utime(sub_dst, ns=(st.st_atime_ns, st.st_mtime_ns))
                finally:
                    os.close(sub_dst)
            finally:
                os.close(sub_src)
            continue
        remove_at(dst, name, existing)
        inode = (st.st_dev, st.st_ino)
        if st.st_nlink > 1 and inode in links:
            _link_to(links[inode], dst_root, name, dst)
            continue
        _copy_node(src, dst, name, st)
        if st.st_nlink > 1:
            links[inode] = [*rel, name]


def _link_to(path: list[str], dst_root: int, name: str, dst: int) -> None:
    walker = DirCursor(dst_root)
    try:
        parent = walker.open(path[:-1], create=False, entry=f"hard link {name!r}")
        os.link(path[-1], name, src_dir_fd=parent, dst_dir_fd=dst, follow_symlinks=False)
    finally:
        walker.close()


def _copy_node(src: int, dst: int, name: str, st: os.stat_result) -> None:
    mode = st.st_mode
    if stat.S_ISREG(mode):
        fin = os.open(name, _FILE_FLAGS, dir_fd=src)
        try:
            fout = os.open(name, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW
                           | os.O_CLOEXEC, 0o600, dir_fd=dst)
            try:
                _copy_data(fin, fout, st.st_size)
                _copy_meta(fin, fout, st)
                os.utime(fout, ns=(st.st_atime_ns, st.st_mtime_ns))
            finally:
                os.close(fout)
        finally:
            os.close(fin)
        return
    if stat.S_ISLNK(mode):
        os.symlink(os.readlink(name, dir_fd=src), name, dir_fd=dst)
    elif stat.S_ISCHR(mode) or stat.S_ISBLK(mode):
        os.mknod(name, stat.S_IFMT(mode) | 0o600, st.st_rdev, dir_fd=dst)
    elif stat.S_ISFIFO(mode):
        os.mkfifo(name, 0o600, dir_fd=dst)
    else:
        return  # sockets cannot come from a tar layer
    os.chown(name, st.st_uid, st.st_gid, dir_fd=dst, follow_symlinks=False)
    if not stat.S_ISLNK(mode):
        os.chmod(name, stat.S_IMODE(mode), dir_fd=dst)  # created just now: not a symlink
    _copy_xattrs(proc_path(src, name), proc_path(dst, name))
    os.utime(name, ns=(st.st_atime_ns, st.st_mtime_ns), dir_fd=dst, follow_symlinks=False)


def _copy_data(fin: int, fout: int, size: int) -> None:
    left = size
    try:
        while left > 0:
            n = os.copy_file_range(fin, fout, min(left, _CHUNK))
            if n == 0:
                break
            left -= n
    except OSError as exc:
        if exc.errno not in (errno.EXDEV, errno.ENOSYS, errno.EOPNOTSUPP, errno.EINVAL):
            raise
        while chunk := os.read(fin, _CHUNK):
            os.write(fout, chunk)


def _copy_meta(src_fd: int, dst_fd: int, st: os.stat_result) -> None:
    os.chown(dst_fd, st.st_uid, st.st_gid)
    os.chmod(dst_fd, stat.S_IMODE(st.st_mode))
    _copy_xattrs(src_fd, dst_fd)


def _copy_xattrs(src: int | str, dst: int | str) -> None:
    # An fd is the file itself; a path (/proc/self/fd/N/name) must not follow a last symlink.
    src_follow, dst_follow = isinstance(src, int), isinstance(dst, int)
    try:
        names = os.listxattr(src, follow_symlinks=src_follow)
    except OSError:
        return
    for attr in names:
        if attr.startswith(OVERLAY_XATTR_PREFIX):
            continue
        try:
            value = os.getxattr(src, attr, follow_symlinks=src_follow)
            os.setxattr(dst, attr, value, follow_symlinks=dst_follow)
        except OSError as exc:
            if not attr.startswith("security.") and exc.errno not in (errno.ENOTSUP,
                                                                        errno.EPERM):
                raise
