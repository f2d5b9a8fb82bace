"""Building the container's filesystem view, inside the init's new mount namespace.

Runs in the forked init, before pivot_root. Every mount target is resolved inside the
rootfs with :func:`servin.engine.linux.safepath.open_in_root` and mounted through its
``/proc/self/fd/N`` link, so a symlink in the image (``/dev -> /``) can never send a mount
onto the host. The whole namespace is made a recursive slave first: mounts made here never
propagate back to the host, while the host's own later mounts may still reach bind mounts.
"""

from __future__ import annotations

import os
import stat
from collections.abc import Callable

from servin.engine.linux import mount as m
from servin.engine.linux.devices import (
    STANDARD_DEVICES,
    STANDARD_LINKS,
    DeviceNode,
    make_node,
    make_symlink,
)
from servin.engine.linux.safepath import Resolved, open_in_root
from servin.engine.runtime.native.spec import ContainerSpec, Mount

# Filesystems a symlinked destination must never receive: an image could otherwise make the
# container's /proc something else and hide the masks applied under /proc.
_NO_SYMLINK_TYPES = frozenset({"proc", "sysfs"})
_PER_MOUNT_FLAGS = (m.MS_RDONLY | m.MS_NOSUID | m.MS_NODEV | m.MS_NOEXEC | m.MS_NOATIME
                    | m.MS_NODIRATIME | m.MS_RELATIME | m.MS_STRICTATIME | m.MS_NOSYMFOLLOW)


class RootfsError(OSError):
    """A mount or file operation in the rootfs failed; the message says which and where."""


def prepare_rootfs(spec: ContainerSpec, own_cgroups: Callable[[], list[str]]) -> None:
    """Mount everything the spec asks for, then pivot_root into the rootfs.

    ``own_cgroups`` returns the init's /proc/self/cgroup lines once it has been placed in its
    cgroup (used to bind the container's own cgroup directories at /sys/fs/cgroup). It is
    called only when a cgroup mount is reached, so the mounts before it overlap with the
    creator's (slow, on cgroup v1) placement of the init.
    """
    m.set_propagation("/", m.MS_SLAVE | m.MS_REC, label="/ (container namespace)")
    rootfs = str(spec.root_path)
    m.mount(rootfs, rootfs, None, m.MS_BIND | m.MS_REC, label=f"{rootfs} (rootfs)")
    root_fd = os.open(rootfs, os.O_PATH | os.O_DIRECTORY | os.O_CLOEXEC)
    try:
        _ensure_cwd(root_fd, spec.process.cwd, [entry.destination for entry in spec.mounts])
        dev_mounted = False
        for entry in spec.mounts:
            _mount_entry(root_fd, entry, own_cgroups)
            dev_mounted = dev_mounted or entry.destination.rstrip("/") == "/dev"
        if dev_mounted:
            _populate_dev(root_fd)
        for node in spec.devices:
            _make_device(root_fd, node)
        for path in spec.masked_paths:
            _mask(root_fd, path)
        for path in spec.readonly_paths:
            _make_readonly(root_fd, path)
        _pivot(root_fd)
    finally:
        os.close(root_fd)
    if spec.root_readonly:
        m.remount_bind("/", m.MS_RDONLY, label="/ (readonly rootfs)")
    if spec.rootfs_propagation is not None:
        m.set_propagation("/", spec.rootfs_propagation, label="/ (rootfsPropagation)")


def _target(root_fd: int, entry: Mount, create: str | None) -> Resolved:
    """Resolve a mount destination inside the rootfs, refusing the dangerous outcomes."""
    resolved = open_in_root(root_fd, entry.destination, create=create)  # type: ignore[arg-type]  # a create mode string
    if resolved.path == "/":
        resolved.close()
        raise RootfsError(20, f"mount destination {entry.destination} resolves to the container "
                              "root (a symlink in the image?): refused")
    if entry.type in _NO_SYMLINK_TYPES and resolved.followed_symlink:
        resolved.close()
        raise RootfsError(40, f"mount destination {entry.destination} for {entry.type} goes "
                              "through a symlink in the image: refused")
    return resolved


def _mount_entry(root_fd: int, entry: Mount, own_cgroups: Callable[[], list[str]]) -> None:
    options = entry.options
    if options.is_bind:
        try:
            source_is_dir = stat.S_ISDIR(os.stat(entry.source).st_mode)
        except OSError as exc:
            raise RootfsError(exc.errno, f"bind mount source {entry.source}: "
                                         f"{os.strerror(exc.errno or 0)}") from None
        with _target(root_fd, entry, "dir" if source_is_dir else "file") as target:
            m.mount(entry.source, target.proc_path, None, options.flags & (m.MS_BIND | m.MS_REC),
                    label=entry.destination)
        extra = options.flags & _PER_MOUNT_FLAGS
        if extra:
            with open_in_root(root_fd, entry.destination) as top:
                m.remount_bind(top.proc_path, extra, label=entry.destination)
    elif entry.type == "cgroup" or entry.type == "cgroup2":
        _mount_cgroups(root_fd, entry, own_cgroups())
        return
    else:
        with _target(root_fd, entry, "dir") as target:
            if not target.is_dir:
                raise RootfsError(20, f"mount destination {entry.destination} is not a directory")
            m.mount(entry.source, target.proc_path, entry.type,
                    options.flags & ~(m.MS_REMOUNT | m.MS_BIND | m.MS_REC), options.data or None,
                    label=entry.destination)
    _apply_propagation_and_attrs(root_fd, entry)


def _apply_propagation_and_attrs(root_fd: int, entry: Mount) -> None:
    options = entry.options
    if not options.propagation and not (options.recursive_set or options.recursive_clear):
        return
    with open_in_root(root_fd, entry.destination) as top:
        for propagation in options.propagation:
            m.set_propagation(top.proc_path, propagation, label=entry.destination)
        if options.recursive_set or options.recursive_clear:
            m.mount_setattr_recursive(top.proc_path, options.recursive_set,
                                      options.recursive_clear, label=entry.destination)


CgroupMounts = list[tuple[str, str, set[str]]]  # (mount point, fs type, super options)

# The host's cgroup hierarchies as the monitor zygote found them (``preload``), inherited by
# every container init it forks: the kernel formats /proc/self/mountinfo at some 20 us a
# line, milliseconds on a host with hundreds of mounts, and hierarchies rarely change. The
# init checks the copy against what it sees before using it (``_host_cgroup_mounts``).
_CGROUP_MOUNTS: CgroupMounts | None = None


def preload() -> None:
    """Read the host's cgroup hierarchies once, for every container created after."""
    global _CGROUP_MOUNTS
    _CGROUP_MOUNTS = _read_cgroup_mounts()


def _read_cgroup_mounts() -> CgroupMounts:
    """(mount point, fs type, super options) of every cgroup hierarchy in this namespace."""
    result = []
    with open("/proc/self/mountinfo", encoding="utf-8") as file:
        for line in file:
            if " - cgroup" not in line:
                continue
            fields = line.split()
            separator = fields.index("-")
            fstype = fields[separator + 1]
            if fstype in ("cgroup", "cgroup2"):
                mountpoint = fields[4].replace("\\040", " ")
                result.append((mountpoint, fstype, set(fields[separator + 3].split(","))))
    return result


def _host_cgroup_mounts(own: dict[str, str]) -> CgroupMounts:
    """The cgroup hierarchies: the preloaded list while it still holds (every mount point is
    still a mount, every hierarchy this process belongs to has one), else read afresh."""
    cached = _CGROUP_MOUNTS
    if cached is None:
        return _read_cgroup_mounts()
    try:
        mounted = all(m.is_mount_root(mountpoint) for mountpoint, _, _ in cached)
    except OSError:
        mounted = False
    covered = all(
        any(_own_path({controllers: path}, fstype, options) is not None
            for _, fstype, options in cached)
        for controllers, path in own.items())
    return cached if mounted and covered else _read_cgroup_mounts()


def _mount_cgroups(root_fd: int, entry: Mount, cgroup_lines: list[str]) -> None:
    """Show the container its own cgroup directories, read-only unless asked otherwise.

    Each host hierarchy is bound from the container's cgroup in it: the container sees its
    own limits and counters at the usual paths, and nothing of the host's tree. A container
    without a cgroup of its own (no lines) gets an empty tmpfs.
    """
    own: dict[str, str] = {}  # controllers ("memory", "name=systemd", "" for v2) -> path
    for line in cgroup_lines:
        _, controllers, path = line.rstrip("\n").split(":", 2)
        own[controllers] = path
    flags = entry.options.flags & _PER_MOUNT_FLAGS
    mounts = _host_cgroup_mounts(own)
    if len(mounts) == 1 and mounts[0][1] == "cgroup2" and "" in own:
        with _target(root_fd, entry, "dir") as target:
            m.mount(mounts[0][0] + own[""], target.proc_path, None, m.MS_BIND | m.MS_REC,
                    label=entry.destination)
        with open_in_root(root_fd, entry.destination) as top:
            m.remount_bind(top.proc_path, flags, label=entry.destination)
        return
    with _target(root_fd, entry, "dir") as target:
        m.mount("tmpfs", target.proc_path, "tmpfs", m.MS_NOSUID | m.MS_NODEV | m.MS_NOEXEC,
                "mode=755", label=entry.destination)
    bound: list[str] = []
    with open_in_root(root_fd, entry.destination) as top:
        for mountpoint, fstype, super_options in mounts:
            if fstype == "cgroup2":
                # A hybrid host's cgroup2 holds no controller of the container's (the v1
                # driver does not use it): binding it would show the host's whole tree.
                continue
            own_path = _own_path(own, fstype, super_options)
            if own_path is None:
                continue
            name = os.path.basename(mountpoint.rstrip("/"))
            with open_in_root(top.fd, name, create="dir") as sub:
                m.mount(mountpoint + (own_path if own_path != "/" else ""), sub.proc_path, None,
                        m.MS_BIND | m.MS_REC, label=f"{entry.destination.rstrip('/')}/{name}")
            bound.append(name)
        _restrict_tree(top.fd, top.proc_path, bound, flags, entry.destination)


def _restrict_tree(top_fd: int, top_path: str, children: list[str], flags: int,
                   label: str) -> None:
    """nosuid,nodev,noexec (and ro if asked) on a mount and the mounts bound under it."""
    attrs = m.MOUNT_ATTR_NOSUID | m.MOUNT_ATTR_NODEV | m.MOUNT_ATTR_NOEXEC
    if flags & m.MS_RDONLY:
        attrs |= m.MOUNT_ATTR_RDONLY
    try:
        # One call for the whole tree (Linux 5.12+) instead of a remount per hierarchy.
        m.mount_setattr_recursive(top_path, attrs, 0, label=label)
        return
    except (OSError, AttributeError) as exc:
        if getattr(exc, "errno", 38) not in (38, 22):  # ENOSYS, EINVAL: older kernel
            raise
    for name in children:
        with open_in_root(top_fd, name) as sub:
            m.remount_bind(sub.proc_path, flags | m.MS_NOSUID | m.MS_NODEV | m.MS_NOEXEC,
                           label=f"{label.rstrip('/')}/{name}")
    if flags & m.MS_RDONLY:
        m.remount_bind(top_path, m.MS_RDONLY, label=label)


def _own_path(own: dict[str, str], fstype: str, super_options: set[str]) -> str | None:
    if fstype == "cgroup2":
        return own.get("")
    for controllers, path in own.items():
        if controllers and set(controllers.split(",")) <= super_options:
            return path
    return None


def _populate_dev(root_fd: int) -> None:
    with open_in_root(root_fd, "/dev") as dev:
        for node in STANDARD_DEVICES:
            make_node(dev.fd, node, label=f"/dev/{node.name}")
        for name, target in STANDARD_LINKS:
            make_symlink(dev.fd, name, target)


def _make_device(root_fd: int, node: DeviceNode) -> None:
    parent, name = os.path.split(node.name)
    with open_in_root(root_fd, parent, create="dir") as directory:
        if not directory.is_dir:
            raise RootfsError(20, f"device {node.name}: {parent} is not a directory")
        make_node(directory.fd, DeviceNode(name, node.kind, node.major, node.minor, node.mode,
                                           node.uid, node.gid), label=node.name)


def _open_existing(root_fd: int, path: str) -> Resolved | None:
    try:
        return open_in_root(root_fd, path)
    except OSError as exc:
        if exc.errno in (2, 20):  # ENOENT, ENOTDIR: nothing to mask or protect
            return None
        raise


def _mask(root_fd: int, path: str) -> None:
    """Hide ``path``: an empty read-only tmpfs over a directory, /dev/null over a file."""
    resolved = _open_existing(root_fd, path)
    if resolved is None:
        return
    with resolved:
        if resolved.is_dir:
            m.mount("tmpfs", resolved.proc_path, "tmpfs", m.MS_RDONLY | m.MS_NOSUID | m.MS_NODEV
                    | m.MS_NOEXEC, "mode=555", label=f"{path} (masked)")
        else:
            m.mount("/dev/null", resolved.proc_path, None, m.MS_BIND, label=f"{path} (masked)")


def _make_readonly(root_fd: int, path: str) -> None:
    resolved = _open_existing(root_fd, path)
    if resolved is None:
        return
    with resolved:
        m.mount(resolved.proc_path, resolved.proc_path, None, m.MS_BIND | m.MS_REC,
                label=f"{path} (readonly)")
    with open_in_root(root_fd, path) as top:
        m.remount_bind(top.proc_path, m.MS_RDONLY | m.MS_NOSUID | m.MS_NODEV | m.MS_NOEXEC,
                       label=f"{path} (readonly)")


def _ensure_cwd(root_fd: int, cwd: str, mount_destinations: list[str]) -> None:
    """Create the working directory if the image lacks it (as Docker does); refuse a non-dir.

    Runs before any mount, on the image's own tree. A cwd at or under a mount destination is
    left alone: what exists there is decided by the mount, and chdir after pivot_root checks it
    (this keeps a cwd such as /proc/self/fd/N from creating anything).
    """
    normalized = os.path.normpath(cwd)
    for destination in mount_destinations:
        destination = os.path.normpath(destination)
        if normalized == destination or normalized.startswith(destination.rstrip("/") + "/"):
            return
    try:
        with open_in_root(root_fd, cwd, create="dir") as resolved:
            if not resolved.is_dir:
                raise RootfsError(20, f"process.cwd {cwd} is not a directory")
    except RootfsError:
        raise
    except OSError as exc:
        raise RootfsError(exc.errno, f"process.cwd {cwd}: {os.strerror(exc.errno or 0)}") \
            from None


def _pivot(root_fd: int) -> None:
    """pivot_root into the rootfs and detach the old root, so no host path stays reachable."""
    os.fchdir(root_fd)
    m.pivot_root(".", ".")
    # The old root now sits on top of "."; detaching it leaves only the container's tree.
    m.umount(".", m.MNT_DETACH)
    os.chdir("/")
