"""The console and ``servin ps`` over pods and containers made through the CRI (the generated
runtime.v1 stubs, labelled as the kubelet labels them), against a real daemon, next to a
docker-style container: the Kubernetes namespace, pod and container names shown, and the
``ns=``/``pod=`` filters combining with the others."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import pytest
from textual.widgets import DataTable

from servin.api.cri.runtime.v1 import api_pb2
from servin.tui import kube
from servin.tui.app import ServinApp
from servin.tui.screens.containers import ContainersScreen
from servin.tui.screens.pods import PodsScreen
from servin.tui.source import Source, client_factory
from tests.cri.conftest import BUSYBOX, CRI
from tests.cri.conftest import cri as cri
from tests.cri.conftest import pushed as pushed
from tests.cri.conftest import registry as registry
from tests.tui.helpers import async_test, screen_text, settle

SLEEP = ["sh", "-c", "trap 'exit 0' TERM; while :; do sleep 1; done"]


@dataclass
class World:
    """What the module made: pod name -> sandbox ID, and the docker-style container."""

    cri: CRI
    pods: dict[str, str]
    plain: str


def kube_pod(cri: CRI, namespace: str, name: str, containers: list[str],
             state: str = "running") -> str:
    """A sandbox and its containers, labelled as the kubelet labels them; started unless
    ``state`` is "created"."""
    uid = f"uid-{namespace}-{name}"
    pod_labels = {kube.NAMESPACE: namespace, kube.POD_NAME: name, kube.POD_UID: uid}
    config = api_pb2.PodSandboxConfig(
        metadata=api_pb2.PodSandboxMetadata(name=name, uid=uid, namespace=namespace),
        hostname=name, log_directory=str(cri.log_dir / uid), labels=pod_labels)
    pod_id = cri.runtime.RunPodSandbox(api_pb2.RunPodSandboxRequest(config=config),
                                       timeout=60).pod_sandbox_id
    for cname in containers:
        cconfig = api_pb2.ContainerConfig(
            metadata=api_pb2.ContainerMetadata(name=cname),
            image=api_pb2.ImageSpec(image=BUSYBOX), command=SLEEP, log_path=f"{cname}.log",
            labels={**pod_labels, kube.CONTAINER_NAME: cname})
        cid = cri.runtime.CreateContainer(api_pb2.CreateContainerRequest(
            pod_sandbox_id=pod_id, config=cconfig, sandbox_config=config),
            timeout=60).container_id
        if state == "running":
            cri.runtime.StartContainer(api_pb2.StartContainerRequest(container_id=cid),
                                       timeout=60)
    return str(pod_id)


@pytest.fixture(scope="module")
def world(cri: CRI) -> Iterator[World]:
    pods = {
        "coredns-5d78c": kube_pod(cri, "kube-system", "coredns-5d78c", ["coredns"]),
        "etcd-node1": kube_pod(cri, "kube-system", "etcd-node1", ["etcd"], state="created"),
        "web-7f9": kube_pod(cri, "default", "web-7f9", ["nginx", "sidecar"]),
    }
    cri.daemon.cli("run", "-d", "--name", "plain", BUSYBOX, *SLEEP, check=True)
    yield World(cri, pods, "plain")
    cri.daemon.cli("rm", "-f", "plain")


def ps_names(cri: CRI, *args: str) -> set[str]:
    out = cri.daemon.cli("ps", "-a", "--format", "{{.Names}}", *args, check=True).stdout
    return set(out.split())


def test_ps_filters_by_the_kubelet_labels(world: World) -> None:
    cri = world.cri
    system = ps_names(cri, "--filter", f"label={kube.NAMESPACE}=kube-system")
    assert len(system) == 2
    assert all("_kube-system_" in n for n in system)
    assert {n.split("_")[0] for n in system} == {"coredns", "etcd"}
    default = ps_names(cri, "--filter", f"label={kube.NAMESPACE}=default")
    assert {n.split("_")[0] for n in default} == {"nginx", "sidecar"}
    # Combined with another filter (all must hold), and with a namespace nobody uses.
    running = ps_names(cri, "--filter", f"label={kube.NAMESPACE}=kube-system",
                       "--filter", "status=running")
    assert {n.split("_")[0] for n in running} == {"coredns"}
    assert ps_names(cri, "--filter", f"label={kube.NAMESPACE}=nowhere") == set()
    # The docker-style container and the pods' infra containers (the core's, not the
    # kubelet's) have no such label; the key alone selects the kubelet's containers.
    everything = ps_names(cri)
    infra = {n for n in everything if n.endswith("-infra")}
    assert "plain" in everything and len(infra) == 3
    labelled = ps_names(cri, "--filter", f"label={kube.NAMESPACE}")
    assert labelled == everything - {"plain"} - infra and len(labelled) == 4


def make_real_app(cri: CRI) -> ServinApp:
    source = Source(client_factory(cri.daemon.host), cri.daemon.host, coalesce=0.01,
                    stats_redraw=0.0)
    return ServinApp(source)


@async_test
async def test_containers_screen_shows_and_filters_kube_names(world: World) -> None:
    app = make_real_app(world.cri)
    async with app.run_test(size=(160, 40)) as pilot:
        await settle(pilot, lambda: isinstance(app.screen, ContainersScreen)
                     and app.screen.table.row_count == 8, timeout=30)  # with 3 infra
        screen: Any = app.screen
        assert [c.key for c in screen.table.columns][:3] == ["sel", "ns", "name"]
        text = screen_text(app)
        assert "NAMESPACE" in text
        for shown in ("coredns-5d78c/coredns", "web-7f9/nginx", "web-7f9/sidecar",
                      "etcd-node1/etcd", "plain"):
            assert shown in text, shown
        coredns_line = next(line for line in text.splitlines() if "coredns-5d78c/" in line)
        assert "kube-system" in coredns_line

        def shown() -> list[str]:
            return [screen.table.cells_of(k)["name"].plain for k in screen.table.order]

        async def filtered(text: str, expect: list[str]) -> None:
            assert screen.apply_filter(text)
            await settle(pilot, lambda: screen.filter_settled() and shown() == expect)

        await filtered("ns=kube-system", ["coredns-5d78c/coredns", "etcd-node1/etcd"])
        await filtered("ns=kube-system state=running", ["coredns-5d78c/coredns"])
        await filtered("ns=kube-system ns=default",  # repeated: either
                       ["coredns-5d78c/coredns", "etcd-node1/etcd", "web-7f9/nginx",
                        "web-7f9/sidecar"])
        await filtered("pod=web", ["web-7f9/nginx", "web-7f9/sidecar"])
        await filtered("pod=web side", ["web-7f9/sidecar"])
        await filtered("/^web-7f9\\/n/", ["web-7f9/nginx"])
        await filtered("ns=kube", [])  # a namespace matches whole, as kubectl -n does
        await filtered("pod=plain", [])  # a docker-style container has no pod name
        screen.apply_filter("")
        await settle(pilot, lambda: screen.filter_settled() and len(shown()) == 8)
        # The pods' infra containers are the core's (no kubelet labels): core names.
        infra = [n for n in shown() if n.endswith("-infra")]
        assert len(infra) == 3
        assert all(screen.table.cells_of(k)["ns"].plain == "" for k in screen.table.order
                   if screen.table.cells_of(k)["name"].plain in infra)
        screen.set_sort("namespace")
        kube_order = ["web-7f9/nginx", "web-7f9/sidecar", "coredns-5d78c/coredns",
                      "etcd-node1/etcd"]
        await settle(pilot, lambda: screen.filter_settled() and shown()[4:] == kube_order)
        assert set(shown()[:4]) == {"plain", *infra}


@async_test
async def test_pods_screen_shows_and_filters_kube_pods(world: World) -> None:
    app = make_real_app(world.cri)
    async with app.run_test(size=(160, 40)) as pilot:
        await settle(pilot, lambda: app.source.state.connected, timeout=30)
        await pilot.press("5")
        await settle(pilot, lambda: isinstance(app.screen, PodsScreen)
                     and app.screen.query_one(DataTable).row_count == 3, timeout=30)
        screen: Any = app.screen
        table = screen.query_one(DataTable)
        labels = [str(c.label) for c in table.columns.values()]
        assert labels[:2] == ["NAMESPACE", "NAME"]

        def rows() -> list[tuple[str, str, str]]:
            out = []
            for i in range(table.row_count):
                row = table.get_row_at(i)
                out.append((str(row[0]), str(row[1]), str(row[labels.index("MEMBERS")])))
            return sorted(out)

        assert rows() == [("default", "web-7f9", "nginx,sidecar"),
                          ("kube-system", "coredns-5d78c", "coredns"),
                          ("kube-system", "etcd-node1", "etcd")]
        screen.apply_filter("ns=kube-system")
        assert [r[1] for r in rows()] == ["coredns-5d78c", "etcd-node1"]
        screen.apply_filter("ns=kube-system etcd")
        assert [r[1] for r in rows()] == ["etcd-node1"]
        screen.apply_filter("pod=web")
        assert [r[1] for r in rows()] == ["web-7f9"]
        screen.apply_filter("namespace=default ns=kube-system pod=co")
        assert [r[1] for r in rows()] == ["coredns-5d78c"]
