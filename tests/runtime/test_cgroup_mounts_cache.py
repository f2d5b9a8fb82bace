"""The container init's view of the host's cgroup hierarchies: the list the zygote read once
is used only while it still matches the host, else the mount table is read again."""

from __future__ import annotations

import pytest

from servin.engine.runtime.native import rootfs


def _own() -> dict[str, str]:
    own = {}
    with open("/proc/self/cgroup") as f:
        for line in f:
            _, controllers, path = line.rstrip("\n").split(":", 2)
            own[controllers] = path
    return own


def test_preloaded_list_is_used_while_it_holds(monkeypatch: pytest.MonkeyPatch) -> None:
    fresh = rootfs._read_cgroup_mounts()
    assert fresh, "this host mounts cgroup hierarchies"
    assert all(fstype in ("cgroup", "cgroup2") for _, fstype, _ in fresh)
    monkeypatch.setattr(rootfs, "_CGROUP_MOUNTS", fresh)
    reads = []
    monkeypatch.setattr(rootfs, "_read_cgroup_mounts",
                        lambda: reads.append(1) or fresh)  # type: ignore[func-returns-value]
    assert rootfs._host_cgroup_mounts(_own()) is fresh
    assert reads == []


def test_stale_or_incomplete_list_is_read_again(monkeypatch: pytest.MonkeyPatch) -> None:
    fresh = rootfs._read_cgroup_mounts()
    reads = []

    def read() -> rootfs.CgroupMounts:
        reads.append(1)
        return fresh

    monkeypatch.setattr(rootfs, "_read_cgroup_mounts", read)
    # A hierarchy that has been unmounted since (its mount point is no mount any more).
    gone = [*fresh, ("/sys/fs/cgroup/no-such-hierarchy", "cgroup", {"memory"})]
    monkeypatch.setattr(rootfs, "_CGROUP_MOUNTS", gone)
    assert rootfs._host_cgroup_mounts(_own()) is fresh and len(reads) == 1
    # A hierarchy mounted since the list was made (this process belongs to it).
    monkeypatch.setattr(rootfs, "_CGROUP_MOUNTS", fresh[1:])
    assert rootfs._host_cgroup_mounts(_own()) is fresh and len(reads) == 2
    # Never preloaded (a runtime used outside the zygote).
    monkeypatch.setattr(rootfs, "_CGROUP_MOUNTS", None)
    assert rootfs._host_cgroup_mounts(_own()) is fresh and len(reads) == 3
