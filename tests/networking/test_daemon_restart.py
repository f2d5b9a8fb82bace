"""IPAM and host state across daemon crashes and restarts."""

from __future__ import annotations

import signal
import socket
import subprocess
import sys
from pathlib import Path

import pytest
from pyroute2 import IPRoute

from tests.daemon import DaemonProcess, short_tmpdir
from tests.networking.helpers import (
    HTTPD,
    fetch,
    free_port,
    host_links,
    inspect,
    network_id,
    ruleset,
    table_name,
    veth_names,
)


def test_no_duplicate_address_after_sigkill_and_clean_teardown(busybox_tar: Path) -> None:
    d = DaemonProcess(short_tmpdir()).start()
    ours: set[str] = set()
    try:
        d.cli("import", "-c", 'CMD ["sh"]', str(busybox_tar), "busybox", check=True)
        d.cli("network", "create", "keep", check=True)
        port = free_port()
        d.cli("run", "-d", "--name", "ca", "--network", "keep", "-p", f"127.0.0.1:{port}:80",
              "busybox", "sh", "-c", HTTPD, check=True)
        d.cli("run", "-d", "--name", "cb", "--network", "keep", "busybox", "sleep", "60",
              check=True)
        assert "hello-from-" in fetch(f"http://127.0.0.1:{port}/")
        d.stop(signal.SIGKILL)
        # What a crash can leave: a veth on the daemon's bridge that no container owns, and a
        # rule in its table that the state does not call for. Both are gone after start.
        _stray_veth(d.bridge)
        subprocess.run(["nft", "add", "rule", "ip", table_name(d), "ports", "tcp", "dport",
                        "1", "drop"], check=True)
        d.start()
        assert not Path("/sys/class/net/svstray0").exists()
        assert "dport 1 drop" not in ruleset(d)
        # The container kept running: its published port still works and is still held.
        assert "hello-from-" in fetch(f"http://127.0.0.1:{port}/")
        assert d.cli("port", "ca", "80", check=True).stdout.strip() == f"127.0.0.1:{port}"
        with socket.socket() as s, pytest.raises(OSError):
            s.bind(("127.0.0.1", port))
        d.cli("run", "-d", "--name", "cc", "--network", "keep", "busybox", "sleep", "60",
              check=True)
        addresses = [inspect(d, n)["NetworkSettings"]["Networks"]["keep"]["IPAddress"]
                     for n in ("ca", "cb", "cc")]
        assert all(addresses) and len(set(addresses)) == 3
        ids = [inspect(d, n)["Id"] for n in ("ca", "cb", "cc")]
        keep = network_id(d, "keep")
        ours = veth_names(ids, [keep]) | {d.bridge, "svb" + keep[:12]}
        assert ours <= host_links()
        out = d.cli("exec", "cb", "ping", "-c", "1", "-W", "2", "cc", check=True).stdout
        assert addresses[2] in out
    finally:
        d.cli("rm", "-f", "ca", "cb", "cc")
        d.cli("network", "rm", "keep")
        d.stop()
        leftover_rules = ruleset(d)
        leftover_links = ours & host_links()
        d.cleanup()
    assert leftover_rules == ""
    assert leftover_links == set()


def _stray_veth(bridge: str) -> None:
    with IPRoute() as ipr:
        master = ipr.link_lookup(ifname=bridge)[0]
        ipr.link("add", ifname="svstray0", kind="veth", peer="svstray1", master=master)


def test_second_daemon_cannot_take_a_bridge_or_subnet_in_use(
    daemon: DaemonProcess, scratch: Path
) -> None:
    from tests.daemon import claim_net_slot, release_net_slot

    slot = claim_net_slot()
    try:
        base = [sys.executable, "-m", "servin", "daemon", "--root", str(scratch / "root"),
                "--exec-root", str(scratch / "run"), "--address-pool", f"10.201.{slot}.0/24"]
        same_bridge = subprocess.run(
            [*base, "--bridge-name", daemon.bridge, "--default-subnet", f"10.200.{slot}.0/24"],
            capture_output=True, text=True, timeout=60)
        assert same_bridge.returncode == 1
        assert same_bridge.stderr.strip().splitlines() == [
            f"Error: a network interface named {daemon.bridge} already exists and is not this "
            "daemon's: set bridge_name (and default_network_subnet) in the daemon's config.toml,"
            " or --bridge-name (--default-subnet)"
        ]
        same_subnet = subprocess.run(
            [*base, "--bridge-name", f"svt{slot}", "--default-subnet", daemon.default_subnet],
            capture_output=True, text=True, timeout=60)
        assert same_subnet.returncode == 1
        assert "overlaps address" in same_subnet.stderr
        assert not Path(f"/sys/class/net/svt{slot}").exists()
    finally:
        release_net_slot(slot)
    # The first daemon's bridge is untouched.
    assert Path(f"/sys/class/net/{daemon.bridge}").exists()
    assert daemon.ping()
