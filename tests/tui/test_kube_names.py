"""Kubernetes names in the console without a daemon: the ``ns=``/``pod=`` filter terms, the
pod/container name and how it fits a column, the sort, and the column layouts."""

from __future__ import annotations

import pytest

from servin.api.servin.v1 import containers_pb2
from servin.errors import InvalidArgument
from servin.tui import kube
from servin.tui.query import ContainerQuery, select
from servin.tui.screens.containers import COLUMNS, KUBE_COLUMNS
from servin.tui.table import fit_columns


def summary(name: str, namespace: str = "", pod: str = "", container: str = "",
            state: str = "running") -> containers_pb2.ContainerSummary:
    labels = {}
    if namespace:
        labels = {kube.NAMESPACE: namespace, kube.POD_NAME: pod, kube.POD_UID: "u",
                  kube.CONTAINER_NAME: container}
    return containers_pb2.ContainerSummary(id=f"id-{name}", name=name, image="busybox",
                                           state=state, labels=labels)


CONTAINERS = [
    summary("coredns_coredns-5d78c_kube-system_u_0", "kube-system", "coredns-5d78c", "coredns"),
    summary("etcd_etcd-node1_kube-system_u_0", "kube-system", "etcd-node1", "etcd",
            state="exited"),
    summary("nginx_web-7f9_default_u_0", "default", "web-7f9", "nginx"),
    summary("web-1"),
]


def names(text: str, sort: str = "name") -> list[str]:
    by_id = {c.id: c for c in CONTAINERS}
    order = select(CONTAINERS, {}, ContainerQuery.parse(text), sort, False, False, 0.0)
    return [kube.container_name(by_id[i].labels, by_id[i].name) for i in order]


def test_ns_and_pod_terms_combine_with_the_others() -> None:
    assert names("ns=kube-system") == ["coredns-5d78c/coredns", "etcd-node1/etcd"]
    assert names("namespace=kube-system state=running") == ["coredns-5d78c/coredns"]
    assert names("ns=default ns=kube-system etcd") == ["etcd-node1/etcd"]
    assert names("ns=kube") == []  # whole namespaces, as kubectl -n takes them
    assert names("pod=WEB") == ["web-7f9/nginx"]  # part of the pod name, any case
    assert names("pod=web-1") == []  # a docker-style container has no pod name
    assert names("/^web-7f9\\//") == ["web-7f9/nginx"]  # regexes see the shown name too
    assert names("ns=") == ["web-1"]  # no namespace: the docker-style ones
    assert names("") == ["coredns-5d78c/coredns", "etcd-node1/etcd", "web-1",
                         "web-7f9/nginx"]
    assert names("", sort="namespace") == ["web-1", "web-7f9/nginx", "coredns-5d78c/coredns",
                                           "etcd-node1/etcd"]
    with pytest.raises(InvalidArgument):
        ContainerQuery.parse("ns=default /(web/")


def test_a_long_name_gives_up_the_pod_name_first() -> None:
    labels = CONTAINERS[0].labels
    assert kube.fit_container_name(labels, "x", 40) == "coredns-5d78c/coredns"
    assert kube.fit_container_name(labels, "x", 16) == "coredns…/coredns"
    assert len(kube.fit_container_name(labels, "x", 16)) == 16
    # Too narrow to keep both: left whole for the table to cut.
    assert kube.fit_container_name(labels, "x", 10) == "c…/coredns"
    assert kube.fit_container_name(labels, "x", 9) == "coredns-5d78c/coredns"
    assert kube.fit_container_name({}, "plain-and-long-name", 5) == "plain-and-long-name"


def test_the_namespace_column_takes_uptimes_place_at_80_columns() -> None:
    narrow = {c.key: w for c, w in fit_columns(KUBE_COLUMNS, 79)}
    assert list(narrow) == ["sel", "ns", "name", "image", "state", "cpu", "mem"]
    assert narrow["ns"] >= len("kube-system")
    assert sum(narrow.values()) + len(narrow) <= 79
    wide = {c.key: w for c, w in fit_columns(KUBE_COLUMNS, 159)}
    assert list(wide) == [c.key for c in KUBE_COLUMNS]  # everything at 160 columns
    plain = [c.key for c, _ in fit_columns(COLUMNS, 79)]
    assert "ns" not in plain and "uptime" in plain  # docker-style hosts keep their layout
