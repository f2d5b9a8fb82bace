"""The CNI caller against Debian's real plugins (bridge, host-local, portmap, firewall,
loopback) and network namespaces the tests pin themselves."""

from __future__ import annotations

import ipaddress
import socket
import stat
import threading
import time
import uuid
from pathlib import Path

import pytest
from pyroute2 import IPRoute

from servin.engine.linux.netdev import run_in_netns
from servin.engine.linux.netns import remove_netns
from servin.engine.networks.cni import (
    Attachment,
    NoNetworkConfig,
    PluginConfigInvalid,
    PluginError,
    PluginNotFound,
    PluginUnavailable,
    PortMapping,
    port_mappings,
)
from servin.engine.networks.cni.conf import parse_config_list
from tests.cni.conftest import CNIEnv, iptables_rules_naming, run
from tests.networking.helpers import free_port

PORTMAP = {"type": "portmap", "capabilities": {"portMappings": True}}
FIREWALL = {"type": "firewall"}
LOOPBACK = parse_config_list({"cniVersion": "1.0.0", "name": "svcni-lo",
                              "plugins": [{"type": "loopback"}]})


def cid(tag: str) -> str:
    return f"svcnitest-{tag}-{uuid.uuid4().hex[:8]}"


def listen_in(ns: Path, port: int) -> socket.socket:
    """A TCP server socket made inside ``ns`` (a socket stays in the netns it was made in)."""

    def make() -> socket.socket:
        srv = socket.socket()
        srv.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        srv.bind(("0.0.0.0", port))
        srv.listen()
        return srv

    return run_in_netns(ns, make)


def serve_once(srv: socket.socket, reply: bytes) -> threading.Thread:
    def body() -> None:
        srv.settimeout(20)
        with srv, srv.accept()[0] as conn:
            conn.sendall(reply)

    thread = threading.Thread(target=body, daemon=True)
    thread.start()
    return thread


def read_from(address: str, port: int, ns: Path | None = None) -> bytes:
    def connect() -> bytes:
        deadline = time.monotonic() + 10
        while True:
            try:
                with socket.create_connection((address, port), timeout=5) as conn:
                    return conn.recv(100)
            except OSError:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.1)

    return run_in_netns(ns, connect) if ns else connect()


def test_two_namespaces_reach_each_other_and_del_leaves_nothing(cni_env: CNIEnv) -> None:
    name = f"svcni{cni_env.slot}-pods"
    cni_env.clear_conf()
    cni_env.write_conf("10-pods.conflist", cni_env.network(name, PORTMAP, FIREWALL))
    cni = cni_env.cni()
    status = run(cni.status())
    assert status.ready and status.network == name, status

    ids = [cid("a"), cid("b")]
    spaces = [cni_env.netns(i) for i in ids]
    addresses = []
    try:
        for container, ns in zip(ids, spaces, strict=True):
            run(cni.add(Attachment(container, str(ns), ifname="lo"), LOOPBACK))
            result = run(cni.add(Attachment(container, str(ns))))
            [address] = result.addresses("eth0")
            assert address.network == ipaddress.ip_network(cni_env.subnet)
            assert result.ips[0].gateway == ipaddress.ip_address(
                str(next(ipaddress.ip_network(cni_env.subnet).hosts())))
            addresses.append(str(address.ip))
        assert len(set(addresses)) == 2
        assert len(cni_env.bridge_ports()) == 2
        assert cni_env.leases(name) == sorted(addresses)
        assert {r.container_id for r in cni.attachments()} == set(ids)
        assert iptables_rules_naming(*(f"{a}/32" for a in addresses))  # the firewall's rules

        # a reaches b by IP, over the bridge.
        thread = serve_once(listen_in(spaces[1], 7000), b"hello from b")
        assert read_from(addresses[1], 7000, ns=spaces[0]) == b"hello from b"
        thread.join()
    finally:
        for container in ids:
            run(cni.delete(Attachment(container, str(cni_env.netns_dir / container))))
            run(cni.delete(Attachment(container, "", ifname="lo")))
    assert cni_env.bridge_ports() == []
    assert cni_env.leases(name) == []
    assert cni.attachments() == []
    assert iptables_rules_naming(*ids, *(f"{a}/32" for a in addresses)) == []
    # DEL again (the spec makes it idempotent) is fine, with or without the namespace.
    run(cni.delete(Attachment(ids[0], str(spaces[0]))))
    for ns in spaces:
        remove_netns(ns)
    run(cni.delete(Attachment(ids[1], str(spaces[1]))))


def test_host_port_reaches_the_namespace_from_localhost(cni_env: CNIEnv) -> None:
    name = f"svcni{cni_env.slot}-ports"
    cni_env.clear_conf()
    cni_env.write_conf("10-ports.conflist", cni_env.network(name, PORTMAP, FIREWALL))
    cni = cni_env.cni()
    container = cid("hp")
    ns = cni_env.netns(container)
    host_port = free_port()
    attachment = Attachment(container, str(ns), capability_args=port_mappings(
        [PortMapping(host_port=host_port, container_port=8080)]))
    try:
        result = run(cni.add(attachment))
        rules = iptables_rules_naming(f'id: \\"{container}\\"')
        assert rules and all(f"{host_port}" in r for r in rules), rules
        thread = serve_once(listen_in(ns, 8080), b"hello through the host port")
        assert read_from("127.0.0.1", host_port) == b"hello through the host port"
        thread.join()
        assert result.addresses("eth0")
    finally:
        run(cni.delete(attachment))
        remove_netns(ns)
    assert iptables_rules_naming(container, f"--dport {host_port} ") == []
    assert cni_env.bridge_ports() == [] and cni_env.leases(name) == []


def test_del_after_a_crash_uses_the_recorded_configuration_and_result(cni_env: CNIEnv) -> None:
    name = f"svcni{cni_env.slot}-crash"
    cni_env.clear_conf()
    cni_env.write_conf("10-crash.conflist", cni_env.network(name, PORTMAP))
    container = cid("crash")
    ns = cni_env.netns(container)
    host_port = free_port()
    first = cni_env.cni()
    run(first.add(Attachment(container, str(ns), capability_args=port_mappings(
        [PortMapping(host_port, 80)]))))
    assert cni_env.leases(name) and iptables_rules_naming(container)
    # The daemon dies; its successor finds no configuration any more and the netns gone.
    del first
    cni_env.clear_conf()
    remove_netns(ns)
    after = cni_env.cni()
    [record] = after.attachments(container)
    assert record.result is not None and record.network == name
    run(after.delete_all(container))
    assert after.attachments() == []
    assert cni_env.leases(name) == [] and cni_env.bridge_ports() == []
    assert iptables_rules_naming(container) == []


def test_check_passes_then_reports_a_missing_interface(cni_env: CNIEnv) -> None:
    # portmap 1.1.1 (Debian 12) fails CHECK on IPv4-only attachments (it looks for IPv6
    # rules: containernetworking/plugins#819), so this network leaves it out.
    name = f"svcni{cni_env.slot}-check"
    cni_env.clear_conf()
    cni_env.write_conf("10-check.conflist", cni_env.network(name, FIREWALL))
    cni = cni_env.cni()
    container = cid("chk")
    ns = cni_env.netns(container)
    attachment = Attachment(container, str(ns))
    try:
        run(cni.add(attachment))
        run(cni.check(attachment))

        def drop_eth0() -> None:
            with IPRoute() as ipr:
                ipr.link("del", index=ipr.link_lookup(ifname="eth0")[0])

        run_in_netns(ns, drop_eth0)
        with pytest.raises(PluginError) as err:
            run(cni.check(attachment))
        assert "CHECK" in err.value.message and "\n" not in err.value.message
    finally:
        run(cni.delete(attachment))
        remove_netns(ns)
    assert cni_env.leases(name) == [] and cni.attachments() == []


def test_version_and_negotiation(cni_env: CNIEnv) -> None:
    cni = cni_env.cni()
    version = run(cni.version("bridge"))
    assert "1.0.0" in version.supported_versions
    # A configuration offering several versions gets the newest all its plugins speak
    # (Debian's plugins stop at 1.0.0).
    cni_env.clear_conf()
    cni_env.write_conf("10-multi.conflist", cni_env.network(
        "multi", PORTMAP, version="1.1.0", cniVersions=["0.4.0", "1.0.0", "1.1.0"]))
    assert run(cni.network()).cni_version == "1.0.0"
    cni_env.write_conf("10-multi.conflist", cni_env.network("multi", version="1.1.0"))
    net = run(cni.network())
    assert net.cni_version == "1.1.0"
    # A version the plugin does not speak is its clear error (code 1), and ADD undoes itself.
    container = cid("ver")
    ns = cni_env.netns(container)
    try:
        with pytest.raises(PluginConfigInvalid, match=r"incompatible CNI versions.*\(code 1\)"):
            run(cni.add(Attachment(container, str(ns))))
        assert cni.attachments() == []
    finally:
        remove_netns(ns)


def _script(directory: Path, name: str, body: str) -> None:
    directory.mkdir(parents=True, exist_ok=True)
    path = directory / name
    path.write_text("#!/bin/sh\n" + body)
    path.chmod(path.stat().st_mode | stat.S_IXUSR)


def _ends(pid: int) -> bool:
    # SIGKILL is delivered at once, but the exit (and PID 1's reaping) takes a moment.
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        try:
            state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
        except FileNotFoundError:
            return True
        if state == "Z":
            return True
        time.sleep(0.05)
    return False


def test_errors_are_clear_one_liners_and_change_nothing(cni_env: CNIEnv) -> None:
    cni_env.clear_conf()
    # No configuration at all, then only a broken one: not ready, saying where and why.
    cni = cni_env.cni()
    status = run(cni.status())
    assert not status.ready and str(cni_env.conf_dir) in status.message
    bad = cni_env.write_conf("05-bad.conflist", "{not json")
    with pytest.raises(NoNetworkConfig, match=rf"{bad}: invalid JSON"):
        run(cni.network())

    # A plugin that is not installed.
    cni_env.write_conf("10-missing.conflist", cni_env.network("missing", {"type": "nosuch"}))
    assert run(cni.network()).name == "missing"  # the first *valid* file wins
    status = run(cni.status())
    assert not status.ready and "'nosuch'" in status.message
    container = cid("err")
    ns = cni_env.netns(container)
    try:
        with pytest.raises(PluginNotFound) as err:
            run(cni.add(Attachment(container, str(ns))))
        assert err.value.message == (
            f"CNI plugin 'nosuch' (network missing) not found in "
            f"{', '.join(str(d) for d in cni.bin_dirs)}")
        # ADD stopped at the second plugin; the first was undone (no veth, no lease, no record).
        assert cni_env.bridge_ports() == [] and cni_env.leases("missing") == []
        assert cni.attachments() == []

        # A real plugin's error object: host-local refuses a bad subnet.
        broken = cni_env.network("broken")
        broken["plugins"][0]["ipam"]["ranges"] = [[{"subnet": "10.222.0.0/33"}]]
        cni_env.clear_conf()
        cni_env.write_conf("10-broken.conflist", broken)
        with pytest.raises(PluginError) as err:
            run(cni.add(Attachment(container, str(ns))))
        assert err.value.message == ("CNI plugin bridge ADD on network broken: invalid CIDR "
                                     "address: 10.222.0.0/33 (code 999)")
        assert cni.attachments() == []

        # A plugin's well-known error code picks the typed error; details are kept.
        own_bin = cni_env.base / "bin"
        _script(own_bin, "refuser", 'cat >/dev/null\n[ "$CNI_COMMAND" = DEL ] && exit 0\n'
                'echo \'{"cniVersion":"1.0.0","code":7,"msg":"Invalid Configuration",'
                '"details":"Network 10.0.0.0/31 too small"}\'\nexit 1\n')
        _script(own_bin, "sleeper", 'cat >/dev/null\n[ "$CNI_COMMAND" = DEL ] && exit 0\n'
                f'sleep 60 & echo $! > {cni_env.base}/sleeper.pid\nwait\n')
        _script(own_bin, "crasher", 'cat >/dev/null\n[ "$CNI_COMMAND" = DEL ] && exit 0\n'
                'echo "panic: something broke" >&2\nexit 2\n')
        own = cni_env.cni(bin_dirs=(own_bin, *cni.bin_dirs), timeout=2)
        for kind, error, message in (
            ("refuser", PluginConfigInvalid, "CNI plugin refuser ADD on network own: Invalid "
             "Configuration: Network 10.0.0.0/31 too small (code 7)"),
            ("crasher", PluginError, "CNI plugin crasher ADD on network own: exited with "
             "status 2: panic: something broke"),
            ("sleeper", PluginUnavailable, "CNI plugin sleeper ADD on network own: no answer "
             "within 2 s (killed)"),
        ):
            cni_env.clear_conf()
            cni_env.write_conf("10-own.conflist", cni_env.network("own", {"type": kind}))
            with pytest.raises(error) as err:
                run(own.add(Attachment(container, str(ns))))
            assert err.value.message == message
            assert cni_env.bridge_ports() == [] and cni_env.leases("own") == []
            assert own.attachments() == []
        # The timed-out plugin's children went with it (its process group was killed).
        pid = int((cni_env.base / "sleeper.pid").read_text())
        assert _ends(pid), f"the timed-out plugin's child {pid} still runs"
    finally:
        remove_netns(ns)
