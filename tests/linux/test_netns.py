"""Pinned network namespaces (servin.engine.linux.netns): made, entered, listed, removed."""

from __future__ import annotations

import os
import socket
from collections.abc import Iterator
from pathlib import Path

import pytest
from pyroute2 import IPRoute

from servin.engine.linux.netdev import run_in_netns
from servin.engine.linux.netns import create_netns, is_netns, list_netns, remove_netns
from tests.daemon import short_tmpdir


@pytest.fixture
def nsdir() -> Iterator[Path]:
    path = short_tmpdir("svns-")
    try:
        yield path
    finally:
        for ns in list_netns(path):
            remove_netns(ns)
        for leftover in path.iterdir():
            leftover.unlink()
        path.rmdir()


def _mounted(path: Path) -> bool:
    return any(line.split()[4] == str(path)
               for line in Path("/proc/self/mountinfo").read_text().splitlines())


def test_create_enter_and_remove(nsdir: Path) -> None:
    ns = nsdir / "pod1"
    create_netns(ns)
    assert is_netns(ns) and _mounted(ns)
    assert list_netns(nsdir) == [ns]
    host = os.stat("/proc/self/ns/net").st_ino
    assert os.stat(ns).st_ino != host  # a namespace of its own

    def inside() -> tuple[list[str], str]:
        with IPRoute() as ipr:
            links = [(link.get_attr("IFLA_IFNAME"), link["flags"] & 1) for link in ipr.get_links()]
        # lo is up, so a server on 127.0.0.1 works in the namespace from the start.
        with socket.socket() as srv:
            srv.bind(("127.0.0.1", 0))
            srv.listen()
            with socket.create_connection(srv.getsockname(), timeout=5):
                pass
        return links, "ok"

    links, ok = run_in_netns(ns, inside)
    assert links == [("lo", 1)] and ok == "ok"

    remove_netns(ns)
    assert not ns.exists() and not _mounted(ns) and not is_netns(ns)
    remove_netns(ns)  # idempotent
    assert list_netns(nsdir) == []


def test_existing_path_is_refused_and_left_alone(nsdir: Path) -> None:
    taken = nsdir / "taken"
    taken.write_text("not mine")
    with pytest.raises(FileExistsError):
        create_netns(taken)
    assert taken.read_text() == "not mine" and not is_netns(taken)
    assert not is_netns(nsdir / "missing")


def test_failure_leaves_nothing(nsdir: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import servin.engine.linux.netns as netns

    def failing_up(name: str) -> None:  # fails after the bind mount was made
        raise OSError(19, f"{name}: no such device")

    monkeypatch.setattr(netns, "set_link_up", failing_up)
    ns = nsdir / "pod2"
    with pytest.raises(OSError, match="no such device"):
        create_netns(ns)
    assert not ns.exists() and not _mounted(ns)
