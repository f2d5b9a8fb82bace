"""CRI pod networking through CNI (Debian's bridge, host-local and portmap plugins): pods reach
each other by IP, a hostPort reaches a pod from 127.0.0.1, and removing pods leaves no veth,
netns, IPAM lease or port rule."""

from __future__ import annotations

import subprocess

from servin.api.cri.runtime.v1 import api_pb2
from tests.cri.conftest import CRI, NGINX
from tests.networking.helpers import fetch, free_port


def _iptables_naming(*needles: str) -> list[str]:
    out = subprocess.run(["iptables-save"], capture_output=True, text=True, check=True).stdout
    return [line for line in out.splitlines()
            if line.startswith("-A") and any(n in line for n in needles)]


def _ip(cri: CRI, pod: str) -> str:
    return str(cri.runtime.PodSandboxStatus(api_pb2.PodSandboxStatusRequest(
        pod_sandbox_id=pod), timeout=30).status.network.ip)


def test_pods_reach_each_other_and_a_host_port_reaches_a_pod(cri: CRI) -> None:
    cri.images.PullImage(api_pb2.PullImageRequest(image=api_pb2.ImageSpec(image=NGINX)),
                         timeout=120)
    host_port = free_port()
    pods = []
    try:
        a = cri.run_pod("net-a")
        pods.append(a)
        b = cri.run_pod("net-b", port_mappings=[api_pb2.PortMapping(
            protocol=api_pb2.TCP, container_port=80, host_port=host_port)])
        pods.append(b)
        web = cri.create(b, "net-b", "web", [], image=NGINX)
        client = cri.create(a, "net-a", "client", ["sleep", "1000"])
        for cid in (web, client):
            cri.runtime.StartContainer(api_pb2.StartContainerRequest(container_id=cid),
                                       timeout=60)
        ip_a, ip_b = _ip(cri, a), _ip(cri, b)
        assert ip_a != ip_b and ip_b.startswith(f"10.224.{cri.slot}.")
        # Pod to pod, by IP, across the bridge.
        # (The stand-in busybox is static: its wget crashes resolving; nc speaks plain TCP.)
        r = cri.exec_sync(client, ["sh", "-c", f"printf 'GET / HTTP/1.0\\r\\n\\r\\n' | "
                                                f"nc -w 5 {ip_b} 80"])
        assert r.exit_code == 0 and b" 200 " in r.stdout, (r.stdout, r.stderr)
        # The host port, from the host's loopback (portmap's DNAT).
        assert fetch(f"http://127.0.0.1:{host_port}/")
        assert _iptables_naming(f"--dport {host_port} ")
        assert len(cri.leases()) == 2 and len(cri.netns()) == 2
        assert len(cri.bridge_ports()) == 2
    finally:
        for pod in pods:
            cri.remove_pod(pod)
    assert cri.leases() == [] and cri.bridge_ports() == [] and cri.netns() == []
    assert _iptables_naming(f"--dport {host_port} ", *pods) == []


def test_a_pod_on_the_node_network_gets_no_cni_network(cri: CRI) -> None:
    config = cri.sandbox_config("hostnet")
    config.linux.security_context.namespace_options.network = api_pb2.NODE
    pod = cri.runtime.RunPodSandbox(api_pb2.RunPodSandboxRequest(config=config),
                                    timeout=60).pod_sandbox_id
    try:
        assert cri.leases() == [] and cri.netns() == []
        status = cri.runtime.PodSandboxStatus(api_pb2.PodSandboxStatusRequest(
            pod_sandbox_id=pod), timeout=30).status
        assert status.state == api_pb2.SANDBOX_READY
        assert status.linux.namespaces.options.network == api_pb2.NODE
        cid = cri.create(pod, "hostnet", "c", ["sleep", "1000"])
        cri.runtime.StartContainer(api_pb2.StartContainerRequest(container_id=cid), timeout=60)
        # The node's interfaces, the node's bridge among them.
        r = cri.exec_sync(cid, ["ip", "-o", "link"])
        assert cri.bridge.encode() in r.stdout or b"svt" in r.stdout, r.stdout
    finally:
        cri.remove_pod(pod)


def test_removing_the_pod_through_servin_releases_its_network(cri: CRI) -> None:
    pod = cri.run_pod("podrm")
    assert len(cri.leases()) == 1 and len(cri.netns()) == 1
    # Not the CRI's verbs: the core's pod removal (servin pod rm -f) DELs the network too.
    cri.daemon.cli("pod", "rm", "-f", pod, check=True)
    assert cri.leases() == [] and cri.netns() == [] and cri.bridge_ports() == []
    assert not cri.runtime.ListPodSandbox(api_pb2.ListPodSandboxRequest(), timeout=30).items
