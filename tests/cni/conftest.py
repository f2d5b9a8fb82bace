"""Fixtures for the CNI caller's tests: Debian's real plugins, a private network per test module.

Each module gets its own network slot (servin.devtools.daemonproc), hence its own bridge
``svcni<N>`` and subnet ``10.222.<N>.0/24``, a conf dir, a host-local data dir and a cache dir
in a temp dir; namespaces are pinned there too. Everything the plugins made is removed after.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import shutil
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from servin.devtools.daemonproc import claim_net_slot, release_net_slot
from servin.engine.linux.netns import create_netns, list_netns, remove_netns
from servin.engine.networks.cni import CNI, DEFAULT_BIN_DIRS
from tests.daemon import short_tmpdir

DEBIAN_PLUGINS = Path("/usr/lib/cni")
NEEDED = ("bridge", "host-local", "portmap", "loopback", "firewall")


@dataclass
class CNIEnv:
    """One test module's private CNI world."""

    slot: int
    base: Path

    @property
    def bridge(self) -> str:
        return f"svcni{self.slot}"

    @property
    def subnet(self) -> str:
        return f"10.222.{self.slot}.0/24"

    @property
    def conf_dir(self) -> Path:
        return self.base / "net.d"

    @property
    def ipam_dir(self) -> Path:
        return self.base / "ipam"

    @property
    def cache_dir(self) -> Path:
        return self.base / "results"

    @property
    def netns_dir(self) -> Path:
        return self.base / "netns"

    def network(self, name: str, *extra_plugins: dict[str, Any], version: str = "1.0.0",
                **top: Any) -> dict[str, Any]:
        """A bridge + host-local network on this module's bridge and subnet."""
        bridge = {
            "type": "bridge", "bridge": self.bridge, "isGateway": True, "hairpinMode": True,
            "ipam": {"type": "host-local", "ranges": [[{"subnet": self.subnet}]],
                     "routes": [{"dst": "0.0.0.0/0"}], "dataDir": str(self.ipam_dir)},
        }
        return {"cniVersion": version, "name": name, "plugins": [bridge, *extra_plugins], **top}

    def write_conf(self, filename: str, doc: dict[str, Any] | str) -> Path:
        self.conf_dir.mkdir(parents=True, exist_ok=True)
        path = self.conf_dir / filename
        path.write_text(doc if isinstance(doc, str) else json.dumps(doc))
        return path

    def clear_conf(self) -> None:
        shutil.rmtree(self.conf_dir, ignore_errors=True)

    def cni(self, **kwargs: Any) -> CNI:
        kwargs.setdefault("bin_dirs", DEFAULT_BIN_DIRS)
        return CNI(cache_dir=self.cache_dir, conf_dir=self.conf_dir, **kwargs)

    def netns(self, name: str) -> Path:
        path = self.netns_dir / name
        create_netns(path)
        return path

    def leases(self, network: str) -> list[str]:
        """host-local's reservations for ``network`` (one file per address)."""
        directory = self.ipam_dir / network
        if not directory.is_dir():
            return []
        return sorted(p.name for p in directory.iterdir()
                      if p.name != "lock" and not p.name.startswith("last_reserved_ip"))

    def bridge_ports(self) -> list[str]:
        """The links enslaved to this module's bridge (the host sides of its veths)."""
        out = subprocess.run(["ip", "-o", "link", "show", "master", self.bridge],
                             capture_output=True, text=True).stdout
        return [line.split(":")[1].strip().split("@")[0] for line in out.splitlines()]


def iptables_rules_naming(*needles: str) -> list[str]:
    """The host's iptables rules (nat and filter) that mention any of ``needles``."""
    out = subprocess.run(["iptables-save"], capture_output=True, text=True, check=True).stdout
    return [line for line in out.splitlines()
            if line.startswith("-A") and any(n in line for n in needles)]


def run(coro: Any) -> Any:
    """Run one coroutine to completion (the tests are synchronous)."""
    return asyncio.run(coro)


@pytest.fixture(scope="module")
def cni_env() -> Iterator[CNIEnv]:
    missing = [p for p in NEEDED if not (DEBIAN_PLUGINS / p).exists()]
    if missing:
        pytest.fail(f"CNI plugins {missing} missing from {DEBIAN_PLUGINS}: run scripts/bootstrap "
                    "(Debian's containernetworking-plugins)")
    slot = claim_net_slot()
    env = CNIEnv(slot=slot, base=short_tmpdir("svcni-"))
    try:
        yield env
    finally:
        with contextlib.suppress(Exception):
            run(_delete_everything(env))
        for ns in list_netns(env.netns_dir):
            remove_netns(ns)
        subprocess.run(["ip", "link", "del", env.bridge], capture_output=True)
        shutil.rmtree(env.base, ignore_errors=True)
        release_net_slot(slot)


async def _delete_everything(env: CNIEnv) -> None:
    cni = env.cni()
    for record in cni.attachments():
        with contextlib.suppress(Exception):
            await cni.delete_all(record.container_id)
