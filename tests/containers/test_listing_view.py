"""A real daemon's listing (servin.v1 List, read from its in-memory view of the records)
equals its SQLite records after every kind of change, concurrent ones, and a crash of the
daemon followed by recovery."""

from __future__ import annotations

import signal
import time
from concurrent.futures import ThreadPoolExecutor

from servin.devtools.daemonproc import DaemonProcess
from tests.containers.helpers import assert_listing_matches_records


def _wait_status(d: DaemonProcess, name: str, status: str) -> None:
    for _ in range(200):
        out = d.cli("inspect", "-f", "{{.State.Status}}", name, check=True).stdout.strip()
        if out == status:
            return
        time.sleep(0.05)
    raise AssertionError(f"{name} never became {status}")


def test_listing_follows_every_change_and_a_crash(daemon: DaemonProcess,
                                                  busybox_image: str) -> None:
    d = daemon
    d.cli("create", "--name", "idle", "busybox", "sleep", "300", check=True)
    assert_listing_matches_records(d)
    d.cli("start", "idle", check=True)
    assert_listing_matches_records(d)
    d.cli("run", "-d", "--name", "quits", "busybox", "sh", "-c", "exit 3", check=True)
    _wait_status(d, "quits", "exited")
    assert_listing_matches_records(d)
    d.cli("rename", "quits", "quit-renamed", check=True)
    assert_listing_matches_records(d)
    d.cli("update", "--memory", "64m", "idle", check=True)
    assert_listing_matches_records(d)
    d.cli("stop", "-t", "0", "idle", check=True)
    assert_listing_matches_records(d)
    d.cli("rm", "quit-renamed", check=True)
    assert_listing_matches_records(d)
    # A refused change changes nothing.
    assert d.cli("rename", "idle", "idle").returncode != 0
    assert d.cli("create", "--name", "idle", "busybox").returncode != 0
    assert_listing_matches_records(d)

    # Several clients at once: creates, starts and removals interleave in the daemon.
    def one(i: int) -> None:
        d.cli("run", "-d", "--name", f"p{i}", "busybox", "sleep", "300", check=True)
        if i % 3 == 0:
            d.cli("rm", "-f", f"p{i}", check=True)

    with ThreadPoolExecutor(6) as pool:
        list(pool.map(one, range(12)))
    assert_listing_matches_records(d)
    running_before = {line for line in d.cli("ps", "-q", "--no-trunc", check=True)
                      .stdout.split()}
    assert len(running_before) == 8

    # A crash: the daemon is killed; the containers keep running under their monitors and
    # the restarted daemon's view is rebuilt from the records (and recovery's writes).
    d.stop(signal.SIGKILL)
    d.start()
    assert_listing_matches_records(d)
    running_after = set(d.cli("ps", "-q", "--no-trunc", check=True).stdout.split())
    assert running_after == running_before
    d.cli("stop", "-t", "0", "p1", check=True)
    assert_listing_matches_records(d)
