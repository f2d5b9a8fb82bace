"""Bridge networks end to end: names and aliases, isolation, NAT rules, published ports."""

from __future__ import annotations

import json
import socket
import subprocess
import sys

import pytest

from servin.engine.networks.bridge import bridge_ports
from tests.daemon import DaemonProcess
from tests.networking.helpers import (
    HTTPD,
    fetch,
    free_port,
    host_links,
    inspect,
    netns_list,
    network_id,
    ruleset,
    veth_names,
)

# An HTTP GET with busybox nc (busybox wget crashes on this Debian build).
GET = r"printf 'GET / HTTP/1.0\r\n\r\n' | nc -w 2"


def _subnet(d: DaemonProcess, third: int) -> str:
    """A /28 of the daemon's own pool (10.201.<slot>.0/24), unique to this daemon."""
    return f"10.201.{d.net_slot}.{third}/28"


def test_names_aliases_and_isolation(engine: DaemonProcess) -> None:
    d = engine
    d.cli("network", "create", "front", check=True)
    d.cli("network", "create", "other", check=True)
    try:
        d.cli("run", "-d", "--name", "web", "--network", "front", "--network-alias", "svc",
              "busybox", "sh", "-c", HTTPD, check=True)
        d.cli("run", "-d", "--name", "web2", "--network", "front", "--network-alias", "svc",
              "busybox", "sh", "-c", HTTPD, check=True)
        web_ip = inspect(d, "web")["NetworkSettings"]["Networks"]["front"]["IPAddress"]
        # By name and by alias (the alias answers with both containers, in rotating order).
        script = (f"for i in 1 2 3 4 5 6 7 8 9 10; do {GET} web 80 | grep hello && break; "
                  f"sleep 0.3; done; {GET} svc 80; nslookup svc")
        out = d.cli("run", "--rm", "--network", "front", "busybox", "sh", "-c", script,
                    check=True).stdout
        assert "hello-from-" in out
        web2_ip = inspect(d, "web2")["NetworkSettings"]["Networks"]["front"]["IPAddress"]
        assert web_ip in out and web2_ip in out  # nslookup svc: both addresses
        # Another network: the name is unknown and the address unreachable.
        out = d.cli("run", "--rm", "--network", "other", "busybox", "sh", "-c",
                    f"nslookup web; {GET} {web_ip} 80 | grep hello && echo REACHED")
        assert "REACHED" not in out.stdout
        assert web_ip not in out.stdout
    finally:
        d.cli("rm", "-f", "web", "web2")
        d.cli("network", "rm", "front", "other")


def test_default_route_and_masquerade_rules(engine: DaemonProcess) -> None:
    d = engine
    subnet = _subnet(d, 64)
    d.cli("network", "create", "--subnet", subnet, "natnet", check=True)
    try:
        rules = ruleset(d)
        assert f"ip saddr {subnet} oifname != " in rules and "masquerade" in rules
        out = d.cli("run", "--rm", "--network", "natnet", "busybox", "ip", "route",
                    check=True).stdout
        gateway = json.loads(d.cli("network", "inspect", "natnet", check=True).stdout)[0][
            "IPAM"]["Config"][0]["Gateway"]
        assert f"default via {gateway} dev eth0" in out
    finally:
        d.cli("network", "rm", "natnet", check=True)
    assert subnet not in ruleset(d)


def test_publish_tcp_on_loopback_and_random_port(engine: DaemonProcess) -> None:
    d = engine
    port = free_port()
    try:
        d.cli("run", "-d", "--name", "pub", "-p", f"127.0.0.1:{port}:80", "busybox", "sh", "-c",
              HTTPD, check=True)
        assert "hello-from-" in fetch(f"http://127.0.0.1:{port}/")
        assert f"127.0.0.1:{port}->80/tcp" in d.cli("ps", check=True).stdout
        # The port is taken: a second container cannot have it, and is not created.
        bad = d.cli("run", "-d", "--name", "pub-clash", "-p", f"127.0.0.1:{port}:80", "busybox",
                    "true")
        assert bad.returncode != 0 and "already in use" in bad.stderr
        assert len(bad.stderr.strip().splitlines()) == 1
        assert "pub-clash" not in d.cli("ps", "-a", check=True).stdout

        d.cli("run", "-d", "--name", "pubr", "-p", "80", "busybox", "sh", "-c", HTTPD,
              check=True)
        mapped = d.cli("port", "pubr", "80", check=True).stdout.strip()
        host_port = int(mapped.rsplit(":", 1)[1])
        assert host_port > 0
        assert "hello-from-" in fetch(f"http://127.0.0.1:{host_port}/")
        assert d.cli("port", "pubr", check=True).stdout.startswith("80/tcp -> ")
    finally:
        d.cli("rm", "-f", "pub", "pubr")
    # Released with the container: the port can be bound again.
    with socket.socket() as s:
        s.bind(("127.0.0.1", port))


UDP_ECHO = """
import socket
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
s.bind(("0.0.0.0", 9999))
print("ready", flush=True)
data, peer = s.recvfrom(100)
s.sendto(b"echo:" + data, peer)
"""


def test_publish_udp(engine: DaemonProcess) -> None:
    d = engine
    port = free_port(socket.SOCK_DGRAM)
    d.cli("run", "-d", "--name", "udp", "-p", f"127.0.0.1:{port}:9999/udp", "busybox",
          "sleep", "60", check=True)
    try:
        pid = inspect(d, "udp")["State"]["Pid"]
        # The echo server runs in the container's network namespace (busybox nc has no -u).
        server = subprocess.Popen(["nsenter", "-t", str(pid), "-n", sys.executable, "-c",
                                   UDP_ECHO], stdout=subprocess.PIPE)
        try:
            assert server.stdout is not None and server.stdout.readline().strip() == b"ready"
            with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
                s.settimeout(5)
                s.sendto(b"ping", ("127.0.0.1", port))
                assert s.recvfrom(100)[0] == b"echo:ping"
        finally:
            server.kill()
            server.wait()
    finally:
        d.cli("rm", "-f", "udp")


def test_bad_input_one_clear_error_each(engine: DaemonProcess) -> None:
    d = engine
    subnet = _subnet(d, 128)
    d.cli("network", "create", "--subnet", subnet, "taken", check=True)
    try:
        before = d.cli("network", "ls", "-q", check=True).stdout
        overlap = d.cli("network", "create", "--subnet", subnet.replace("/28", "/27"), "clash")
        assert overlap.returncode != 0 and "overlaps" in overlap.stderr
        outside = d.cli("network", "create", "--subnet", _subnet(d, 144), "--gateway",
                        "10.9.9.9", "gwbad")
        assert outside.returncode != 0 and "not a host address" in outside.stderr
        assert d.cli("network", "ls", "-q", check=True).stdout == before

        wrong_ip = d.cli("create", "--name", "badip", "--network", "taken", "--ip", "10.9.9.9",
                         "busybox", "true")
        assert wrong_ip.returncode != 0 and "not inside subnet" in wrong_ip.stderr
        assert "badip" not in d.cli("ps", "-a", check=True).stdout

        d.cli("create", "--name", "user", "--network", "taken", "busybox", "true", check=True)
        busy = d.cli("network", "rm", "taken")
        assert busy.returncode != 0 and "in use" in busy.stderr
        assert len(busy.stderr.strip().splitlines()) == 1
    finally:
        d.cli("rm", "-f", "user")
        d.cli("network", "rm", "taken", check=True)


def test_static_ip_and_restart_keeps_address(engine: DaemonProcess) -> None:
    d = engine
    subnet = _subnet(d, 160)
    static = subnet.rsplit(".", 1)[0] + ".170"
    d.cli("network", "create", "--subnet", subnet, "staticnet", check=True)
    try:
        d.cli("run", "-d", "--name", "st", "--network", "staticnet", "--ip", static, "busybox",
              "sleep", "60", check=True)
        assert inspect(d, "st")["NetworkSettings"]["Networks"]["staticnet"]["IPAddress"] == static
        d.cli("restart", "-t", "0", "st", check=True)
        assert inspect(d, "st")["NetworkSettings"]["Networks"]["staticnet"]["IPAddress"] == static
        dup = d.cli("create", "--network", "staticnet", "--ip", static, "busybox", "true")
        assert dup.returncode != 0 and "already in use" in dup.stderr
    finally:
        d.cli("rm", "-f", "st")
        d.cli("network", "rm", "staticnet", check=True)


def test_thirty_containers_leave_nothing_behind(engine: DaemonProcess) -> None:
    from servin.api.servin.v1 import common_pb2, containers_pb2
    from servin.client.sync import Client

    d = engine
    d.cli("network", "create", "churn", check=True)
    d.cli("run", "--rm", "--network", "churn", "busybox", "true", check=True)  # warm up
    networks = [network_id(d, "churn"), network_id(d, "bridge")]
    bridges = [d.bridge, "svb" + networks[0][:12]]
    namespaces, rules = netns_list(d), ruleset(d)
    made: list[str] = []
    try:
        with Client(d.host) as client:
            for i in range(30):
                spec = containers_pb2.ContainerSpec(
                    image="busybox", cmd=["true"], network_mode="churn" if i % 2 else "bridge",
                    ports=[common_pb2.PortBinding(container_port=80)],
                )
                cid = client.containers.Create(
                    containers_pb2.CreateContainerRequest(spec=spec)).id
                made.append(cid)
                client.containers.Start(containers_pb2.StartContainerRequest(id=cid))
                client.containers.Wait(containers_pb2.WaitContainerRequest(id=cid))
                client.containers.Remove(containers_pb2.RemoveContainerRequest(id=cid))
        assert not veth_names(made, networks) & host_links()
        assert all(bridge_ports(b) == [] for b in bridges)
        assert netns_list(d) == namespaces
        assert ruleset(d) == rules
    finally:
        d.cli("network", "rm", "churn", check=True)
    assert bridges[1] not in host_links()


@pytest.mark.parametrize("mode", ["host", "none"])
def test_host_and_none_modes(engine: DaemonProcess, mode: str) -> None:
    out = engine.cli("run", "--rm", "--network", mode, "busybox", "ip", "-o", "link",
                     check=True).stdout
    assert ("eth0" in out) == (mode == "host")


def test_connect_disconnect_running_container_and_rename(engine: DaemonProcess) -> None:
    d = engine
    d.cli("network", "create", "n1", check=True)
    d.cli("network", "create", "n2", check=True)
    try:
        d.cli("run", "-d", "--name", "multi", "--network", "n1", "busybox", "sleep", "60",
              check=True)
        d.cli("network", "connect", "--alias", "second", "n2", "multi", check=True)
        links = d.cli("exec", "multi", "ip", "-o", "-4", "addr", check=True).stdout
        nets = inspect(d, "multi")["NetworkSettings"]["Networks"]
        assert set(nets) == {"n1", "n2"}
        assert nets["n2"]["IPAddress"] in links and "eth1" in links
        listed = d.cli("ps", "--filter", "network=n2", "--format", "{{.Names}} {{.Networks}}",
                       check=True).stdout.split()
        assert listed == ["multi", "n1,n2"]
        # Reachable by the alias from n2, and by the container's new name after a rename.
        out = d.cli("run", "--rm", "--network", "n2", "busybox", "ping", "-c", "1", "-W", "2",
                    "second", check=True).stdout
        assert nets["n2"]["IPAddress"] in out
        d.cli("rename", "multi", "renamed", check=True)
        out = d.cli("run", "--rm", "--network", "n1", "busybox", "ping", "-c", "1", "-W", "2",
                    "renamed", check=True).stdout
        assert nets["n1"]["IPAddress"] in out
        d.cli("network", "disconnect", "n2", "renamed", check=True)
        links = d.cli("exec", "renamed", "ip", "-o", "-4", "addr", check=True).stdout
        assert nets["n2"]["IPAddress"] not in links and "eth1" not in links
        assert set(inspect(d, "renamed")["NetworkSettings"]["Networks"]) == {"n1"}
        again = d.cli("network", "disconnect", "n2", "renamed")
        assert again.returncode != 0 and "not connected" in again.stderr
        # Connected again after its first network went: it gets a free interface name.
        d.cli("network", "connect", "n2", "renamed", check=True)
        d.cli("network", "disconnect", "n1", "renamed", check=True)
        d.cli("network", "connect", "n1", "renamed", check=True)
        links = d.cli("exec", "renamed", "ip", "-o", "-4", "addr", check=True).stdout
        assert links.count("scope global eth") == 2 and "eth0" in links and "eth1" in links
    finally:
        d.cli("rm", "-f", "renamed", "multi")
        d.cli("network", "rm", "n1", "n2", check=True)


def test_ls_inspect_prune(engine: DaemonProcess) -> None:
    d = engine
    d.cli("network", "create", "--label", "team=net", "--internal", "lonely", check=True)
    d.cli("network", "create", "used", check=True)
    d.cli("create", "--name", "holder", "--network", "used", "busybox", "true", check=True)
    try:
        names = d.cli("network", "ls", "--format", "{{.Name}}", check=True).stdout.split()
        assert {"bridge", "host", "none", "lonely", "used"} <= set(names)
        assert d.cli("network", "ls", "-q", "--filter", "label=team=net",
                     check=True).stdout.strip() != ""
        info = json.loads(d.cli("network", "inspect", "lonely", check=True).stdout)[0]
        assert info["Internal"] is True and info["Labels"] == {"team": "net"}
        assert info["IPAM"]["Config"][0]["Subnet"].startswith(f"10.201.{d.net_slot}.")
        used = json.loads(d.cli("network", "inspect", "used", check=True).stdout)[0]
        # Created, never started: not among the network's containers (as docker), but it
        # still uses the network, which prune keeps.
        assert used["Containers"] == {}
        out = d.cli("network", "prune", "-f", check=True).stdout
        assert "lonely" in out and "used" not in out
        names = d.cli("network", "ls", "--format", "{{.Name}}", check=True).stdout.split()
        assert "lonely" not in names and "used" in names
        builtin = d.cli("network", "rm", "bridge")
        assert builtin.returncode != 0 and "pre-defined" in builtin.stderr
    finally:
        d.cli("rm", "-f", "holder")
        d.cli("network", "rm", "used", "lonely")


def test_published_port_from_another_container_and_publish_all(engine: DaemonProcess) -> None:
    d = engine
    port = free_port()
    try:
        d.cli("run", "-d", "--name", "srv", "-p", f"{port}:80", "busybox", "sh", "-c", HTTPD,
              check=True)
        assert "hello-from-" in fetch(f"http://127.0.0.1:{port}/")
        # Another container (another network) reaches it through the host's address on
        # the default bridge, i.e. the bridge's gateway.
        d.cli("network", "create", "client", check=True)
        gateway = inspect(d, "srv")["NetworkSettings"]["Gateway"]
        out = d.cli("run", "--rm", "--network", "client", "busybox", "sh", "-c",
                    f"{GET} {gateway} {port}", check=True).stdout
        assert "hello-from-" in out
        # -P publishes every exposed port on a free host port.
        d.cli("run", "-d", "--name", "all", "--expose", "80", "--expose", "81/udp", "-P",
              "busybox", "sh", "-c", HTTPD, check=True)
        mapped = d.cli("port", "all", check=True).stdout
        assert "80/tcp -> 0.0.0.0:" in mapped and "81/udp -> 0.0.0.0:" in mapped
        host_port = int(d.cli("port", "all", "80", check=True).stdout.strip().rsplit(":", 1)[1])
        assert "hello-from-" in fetch(f"http://127.0.0.1:{host_port}/")
    finally:
        d.cli("rm", "-f", "srv", "all")
        d.cli("network", "rm", "client")


def test_etc_files_and_shared_namespace(engine: DaemonProcess) -> None:
    d = engine
    d.cli("network", "create", "etcnet", check=True)
    try:
        d.cli("run", "-d", "--name", "etc1", "--network", "etcnet", "--hostname", "box",
              "--add-host", "db.local:10.1.2.3", "--dns-search", "example.test", "busybox",
              "sleep", "60", check=True)
        info = inspect(d, "etc1")
        address = info["NetworkSettings"]["Networks"]["etcnet"]["IPAddress"]
        gateway = info["NetworkSettings"]["Networks"]["etcnet"]["Gateway"]
        hosts = d.cli("exec", "etc1", "cat", "/etc/hosts", check=True).stdout
        assert f"{address}\tbox" in hosts and "10.1.2.3\tdb.local" in hosts
        resolv = d.cli("exec", "etc1", "cat", "/etc/resolv.conf", check=True).stdout
        assert f"nameserver {gateway}" in resolv and "search example.test" in resolv
        # The hostname is a DNS name on the network too.
        out = d.cli("run", "--rm", "--network", "etcnet", "busybox", "ping", "-c", "1", "-W",
                    "2", "box", check=True).stdout
        assert address in out
        # container:NAME shares the namespace (same address) and its view of DNS.
        out = d.cli("run", "--rm", "--network", "container:etc1", "busybox", "sh", "-c",
                    "ip -o -4 addr; cat /etc/resolv.conf", check=True).stdout
        assert address in out and f"nameserver {gateway}" in out
    finally:
        d.cli("rm", "-f", "etc1")
        d.cli("network", "rm", "etcnet", check=True)


def test_internal_network_has_no_way_out(engine: DaemonProcess) -> None:
    d = engine
    subnet = _subnet(d, 192)
    d.cli("network", "create", "--internal", "--subnet", subnet, "closed", check=True)
    try:
        out = d.cli("run", "--rm", "--network", "closed", "busybox", "ip", "route",
                    check=True).stdout
        assert "default" not in out and subnet.rsplit("/", 1)[0] in out
        rules = ruleset(d)
        assert f"ip saddr {subnet}" not in rules  # no masquerade
        bridge = json.loads(d.cli("network", "inspect", "closed", check=True).stdout)[0][
            "Options"]["com.docker.network.bridge.name"]
        assert f'iifname "{bridge}" oifname != "{bridge}" drop' in rules
    finally:
        d.cli("network", "rm", "closed", check=True)


def test_dns_forwards_unknown_names_to_the_containers_dns(engine: DaemonProcess) -> None:
    from dnslib import QTYPE, RR, A, DNSRecord

    d = engine
    # A stand-in upstream resolver on the default bridge's gateway (a host address that the
    # daemon does not serve DNS on): it answers one made-up name.
    upstream = f"10.200.{d.net_slot}.1"
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    sock.bind((upstream, 53))
    sock.settimeout(0.2)
    stop = False

    def serve() -> None:
        while not stop:
            try:
                data, peer = sock.recvfrom(512)
            except TimeoutError:
                continue
            request = DNSRecord.parse(data)
            reply = request.reply()
            if str(request.q.qname) == "outside.test." and request.q.qtype == QTYPE.A:
                reply.add_answer(RR(request.q.qname, QTYPE.A, rdata=A("192.0.2.77"), ttl=60))
            sock.sendto(reply.pack(), peer)

    import threading

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    d.cli("network", "create", "fwd", check=True)
    try:
        out = d.cli("run", "--rm", "--network", "fwd", "--dns", upstream, "busybox",
                    "nslookup", "outside.test", check=True).stdout
        assert "192.0.2.77" in out
    finally:
        stop = True
        thread.join()
        sock.close()
        d.cli("network", "rm", "fwd", check=True)
