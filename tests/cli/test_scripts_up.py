"""``scripts/up`` when the daemon cannot start: the daemon's own error first (naming the
setting to change), then what to do; no stale pid file; no "Is the daemon running?"."""

from __future__ import annotations

import os
import shutil
import subprocess

from tests.daemon import REPO, claim_net_slot, release_net_slot, short_tmpdir


def test_up_reports_the_daemons_own_error_and_cleans_up() -> None:
    slot = claim_net_slot()
    base = short_tmpdir("sv-up-")
    bridge = f"svu{slot}"
    subprocess.run(["ip", "link", "add", bridge, "type", "bridge"], check=True)
    try:
        config = base / "config.toml"
        config.write_text(
            f'root = "{base}/root"\nexec_root = "{base}/run"\nbridge_name = "{bridge}"\n'
            f'default_network_subnet = "10.200.{slot}.0/24"\n'
            f'address_pool = "10.201.{slot}.0/24"\n')
        env = {**os.environ, "SERVIN_UP_RUN_DIR": str(base / "run"),
               "SERVIN_UP_LOG": str(base / "daemon.log"), "SERVIN_UP_CONFIG": str(config)}
        env.pop("SERVIN_HOST", None)
        out = subprocess.run([str(REPO / "scripts" / "up")], capture_output=True, text=True,
                             env=env, timeout=300, stdin=subprocess.DEVNULL, check=False)
        assert out.returncode == 1, out.stdout + out.stderr
        lines = out.stderr.splitlines()
        assert lines[0] == (f"Error: a network interface named {bridge} already exists and is "
                            "not this daemon's: set bridge_name (and default_network_subnet) in "
                            "the daemon's config.toml, or --bridge-name (--default-subnet)")
        assert lines[1].startswith("scripts/up: the daemon exited (1) at start. Change that "
                                   f"setting ({config}")
        assert "Is the daemon running" not in out.stdout + out.stderr
        assert not (base / "run" / "servind.pid").exists()
    finally:
        subprocess.run(["ip", "link", "del", bridge], check=False)
        shutil.rmtree(base, ignore_errors=True)
        release_net_slot(slot)
