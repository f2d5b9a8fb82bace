"""Copy-up: an empty volume mounted for the first time is filled from the image's content.

The source is the container's root filesystem at the mount's target, resolved inside the
rootfs (a symlink in the image cannot point the copy at a host path); everything is copied
through fds with O_NOFOLLOW, keeping modes, ownership, times, symlinks and hard links.
"""

from __future__ import annotations

import contextlib
import os
import stat
from pathlib import Path

from servin.engine.linux.safepath import open_in_root, openat2

_DIR = os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC
_FILE = os.O_RDONLY | os.O_NOFOLLOW | os.O_CLOEXEC | os.O_NONBLOCK
_CHUNK = 1 << 20


def copy_up(rootfs: Path, target: str, volume_data: Path) -> bool:
    """Copy ``rootfs``+``target`` into ``volume_data`` when that exists as a directory;
    the volume root takes the image directory's mode and owner. True when something ran."""
    root_fd = os.open(rootfs, _DIR)
    try:
        try:
            resolved = open_in_root(root_fd, target)
        except OSError:
            return False  # nothing at that path in the image: the volume stays empty
        with resolved:
            if not resolved.is_dir:
                return False
            src = os.open(".", _DIR, dir_fd=resolved.fd)
    finally:
        os.close(root_fd)
    try:
        dst = os.open(volume_data, _DIR)
        try:
            st = os.fstat(src)
            copy_tree(src, dst)
            os.fchown(dst, st.st_uid, st.st_gid)
            os.fchmod(dst, stat.S_IMODE(st.st_mode))
        finally:
            os.close(dst)
    finally:
        os.close(src)
    return True


def copy_tree(src: int, dst: int) -> None:
    """Copy the entries of directory fd ``src`` into directory fd ``dst`` (recursively)."""
    _copy_dir(src, dst, dst, "", {})


def _copy_dir(src: int, dst: int, dst_root: int, rel: str,
              links: dict[tuple[int, int], tuple[str, str]]) -> None:
    for name in os.listdir(src):
        st = os.lstat(name, dir_fd=src)
        mode = st.st_mode
        key = (st.st_dev, st.st_ino)
        if not stat.S_ISDIR(mode) and st.st_nlink > 1 and key in links:
            first_parent, first_name = links[key]
            parent = openat2(dst_root, first_parent, os.O_PATH | os.O_DIRECTORY)
            try:
                os.link(first_name, name, src_dir_fd=parent, dst_dir_fd=dst,
                        follow_symlinks=False)
            finally:
                os.close(parent)
            continue
        if stat.S_ISDIR(mode):
            os.mkdir(name, 0o700, dir_fd=dst)
            sub_src = os.open(name, _DIR, dir_fd=src)
            try:
                sub_dst = os.open(name, _DIR, dir_fd=dst)
                try:
                    _copy_dir(sub_src, sub_dst, dst_root, f"{rel}/{name}", links)
                    _finish_fd(sub_dst, st)
                finally:
                    os.close(sub_dst)
            finally:
                os.close(sub_src)
            continue
        if stat.S_ISREG(mode):
            fin = os.open(name, _FILE, dir_fd=src)
            try:
                fout = os.open(name, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW
                               | os.O_CLOEXEC, 0o600, dir_fd=dst)
                try:
                    while chunk := os.read(fin, _CHUNK):
                        os.write(fout, chunk)
                    _finish_fd(fout, st)
                finally:
                    os.close(fout)
            finally:
                os.close(fin)
        elif stat.S_ISLNK(mode):
            os.symlink(os.readlink(name, dir_fd=src), name, dir_fd=dst)
            os.chown(name, st.st_uid, st.st_gid, dir_fd=dst, follow_symlinks=False)
            with contextlib.suppress(OSError):
                os.utime(name, ns=(st.st_atime_ns, st.st_mtime_ns), dir_fd=dst,
                         follow_symlinks=False)
        else:
            os.mknod(name, mode, st.st_rdev, dir_fd=dst)
            fd = os.open(name, os.O_PATH | os.O_NOFOLLOW | os.O_CLOEXEC, dir_fd=dst)
            try:
                finish_path(fd, st)
            finally:
                os.close(fd)
        if st.st_nlink > 1:
            links[key] = (rel or ".", name)


def _finish_fd(fd: int, st: os.stat_result) -> None:
    os.fchown(fd, st.st_uid, st.st_gid)
    os.fchmod(fd, stat.S_IMODE(st.st_mode))
    os.utime(fd, ns=(st.st_atime_ns, st.st_mtime_ns))


def finish_path(fd: int, st: os.stat_result) -> None:
    """Owner, mode and times of an ``O_PATH`` fd's file (through its /proc/self/fd link)."""
    path = f"/proc/self/fd/{fd}"
    os.chown(path, st.st_uid, st.st_gid)
    os.chmod(path, stat.S_IMODE(st.st_mode))
    os.utime(path, ns=(st.st_atime_ns, st.st_mtime_ns))
