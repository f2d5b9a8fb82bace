"""What a container changed: docker's A/C/D list and the bytes its writable layer holds.

The image side is the merged view of the unpacked layers, built once per call as a tree of
lstat results (bottom layer first, whiteouts and opaque directories applied). The container
side is the overlay upper dir (where a whiteout means deleted) or, for the copy driver, the
container's whole directory compared against that tree.
"""

from __future__ import annotations

import os
import stat
from dataclasses import dataclass, field
from pathlib import Path

from servin.engine.store.snapshots.merge import is_opaque
from servin.engine.store.snapshots.unpack import is_whiteout
from servin.errors import InvalidArgument

ADDED, CHANGED, DELETED = "A", "C", "D"
_DIR_FLAGS = os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC

Change = tuple[str, str]  # (kind, path): ("A", "/etc/new")


@dataclass
class Node:
    """One path of the image's merged view."""

    st: os.stat_result
    link: str = ""
    children: dict[str, Node] | None = field(default=None)

    @property
    def is_dir(self) -> bool:
        return self.children is not None


def lower_tree(layers: list[Path]) -> Node:
    """The merged view of unpacked layers given bottom first."""
    root = Node(os.stat_result((stat.S_IFDIR | 0o755, 0, 0, 0, 0, 0, 0, 0, 0, 0)), children={})
    for layer in layers:
        fd = os.open(layer, _DIR_FLAGS)
        try:
            _apply(root, fd)
        finally:
            os.close(fd)
    return root


def _apply(node: Node, fd: int) -> None:
    assert node.children is not None
    for name in os.listdir(fd):
        st = os.lstat(name, dir_fd=fd)
        if is_whiteout(st):
            node.children.pop(name, None)
            continue
        if stat.S_ISDIR(st.st_mode):
            sub = os.open(name, _DIR_FLAGS, dir_fd=fd)
            try:
                child = node.children.get(name)
                if child is None or not child.is_dir or is_opaque(sub):
                    child = Node(st, children={})
                else:
                    child.st = st
                node.children[name] = child
                _apply(child, sub)
            finally:
                os.close(sub)
            continue
        link = os.readlink(name, dir_fd=fd) if stat.S_ISLNK(st.st_mode) else ""
        node.children[name] = Node(st, link)


def overlay_changes(upper: Path, lower: Node) -> list[Change]:
    """Changes recorded in an overlay upper dir, sorted by path."""
    out: list[Change] = []
    fd = os.open(upper, _DIR_FLAGS)
    try:
        _walk_upper(fd, lower, "", False, out)
    except RecursionError:
        raise InvalidArgument("the container's filesystem is nested too deeply") from None
    finally:
        os.close(fd)
    return sorted(out, key=lambda c: c[1])


def _walk_upper(fd: int, lower: Node | None, path: str, hidden: bool, out: list[Change]) -> None:
    """``hidden``: the lower content here is masked (an opaque dir at or above this one)."""
    names = os.listdir(fd)
    below = lower.children if lower is not None and lower.children is not None else {}
    for name in names:
        st = os.lstat(name, dir_fd=fd)
        child_path = f"{path}/{name}"
        lower_child = below.get(name)
        if is_whiteout(st):
            if lower_child is not None and not hidden:
                out.append((DELETED, child_path))
            continue
        out.append((CHANGED if lower_child is not None else ADDED, child_path))
        if stat.S_ISDIR(st.st_mode):
            sub = os.open(name, _DIR_FLAGS, dir_fd=fd)
            try:
                masked = hidden or is_opaque(sub) or (lower_child is not None
                                                      and not lower_child.is_dir)
                _walk_upper(sub, lower_child if lower_child is not None and lower_child.is_dir
                            else None, child_path, masked, out)
            finally:
                os.close(sub)
    if hidden:
        present = set(names)
        out.extend((DELETED, f"{path}/{name}") for name in below if name not in present)


def copy_changes(rootfs: Path, lower: Node) -> tuple[list[Change], int]:
    """Changes of a copy-driver rootfs against the image's merged view, sorted by path, and
    the bytes of the added or changed non-directories."""
    out: list[Change] = []
    size = [0]
    fd = os.open(rootfs, _DIR_FLAGS)
    try:
        _walk_copy(fd, lower, "", out, size)
    except RecursionError:
        raise InvalidArgument("the container's filesystem is nested too deeply") from None
    finally:
        os.close(fd)
    return sorted(out, key=lambda c: c[1]), size[0]


def _walk_copy(fd: int, lower: Node | None, path: str, out: list[Change],
               size: list[int]) -> None:
    names = os.listdir(fd)
    below = lower.children if lower is not None and lower.children is not None else {}
    for name in names:
        st = os.lstat(name, dir_fd=fd)
        child_path = f"{path}/{name}"
        lower_child = below.get(name)
        is_dir = stat.S_ISDIR(st.st_mode)
        if lower_child is None or _differs(fd, name, st, lower_child):
            out.append((ADDED if lower_child is None else CHANGED, child_path))
            if not is_dir:
                size[0] += st.st_size
        if is_dir:
            sub = os.open(name, _DIR_FLAGS, dir_fd=fd)
            try:
                _walk_copy(sub, lower_child, child_path, out, size)
            finally:
                os.close(sub)
    present = set(names)
    out.extend((DELETED, f"{path}/{name}") for name in below if name not in present)


def _differs(fd: int, name: str, st: os.stat_result, node: Node) -> bool:
    old = node.st
    if (st.st_mode, st.st_uid, st.st_gid, st.st_mtime_ns) != (
            old.st_mode, old.st_uid, old.st_gid, old.st_mtime_ns):
        return True
    if stat.S_ISDIR(st.st_mode):
        return False
    if st.st_size != old.st_size or st.st_rdev != old.st_rdev:
        return True
    return stat.S_ISLNK(st.st_mode) and os.readlink(name, dir_fd=fd) != node.link


def tree_bytes(root: Path) -> int:
    """Bytes of every non-directory under ``root``, counting a hard-linked file once.

    Walked by fds (os.fwalk), so a container swapping a directory for a symlink while this
    runs cannot lead it out of ``root``.
    """
    seen: set[tuple[int, int]] = set()
    total = 0
    for _, dirnames, filenames, dir_fd in os.fwalk(root, follow_symlinks=False):
        for name in filenames + dirnames:
            try:
                st = os.lstat(name, dir_fd=dir_fd)
            except FileNotFoundError:
                continue
            key = (st.st_dev, st.st_ino)
            if stat.S_ISDIR(st.st_mode) or key in seen:
                continue
            seen.add(key)
            total += st.st_size
    return total
