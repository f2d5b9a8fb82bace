"""Kubernetes names of CRI pods and containers, read from their labels.

The kubelet labels every sandbox it runs with ``io.kubernetes.pod.namespace``,
``io.kubernetes.pod.name`` and ``io.kubernetes.pod.uid``, and every container with those and
``io.kubernetes.container.name``. The CRI door keeps CRI labels as the core object's labels,
so the console reads them as any servin.v1 client would (no CRI call). An object without the
namespace label is shown as a plain pod or container, under its core name.
"""

from __future__ import annotations

from collections.abc import Mapping

NAMESPACE = "io.kubernetes.pod.namespace"
POD_NAME = "io.kubernetes.pod.name"
POD_UID = "io.kubernetes.pod.uid"
CONTAINER_NAME = "io.kubernetes.container.name"


def namespace(labels: Mapping[str, str]) -> str:
    """The Kubernetes namespace ("" for an object the kubelet did not make)."""
    return labels.get(NAMESPACE, "")


def is_kube(labels: Mapping[str, str]) -> bool:
    """Whether the labels are a kubelet's (the object has a Kubernetes namespace)."""
    return NAMESPACE in labels


def pod_name(labels: Mapping[str, str], fallback: str) -> str:
    """The Kubernetes pod name, or ``fallback`` (the core name) without one."""
    return labels.get(POD_NAME) or fallback


def container_name(labels: Mapping[str, str], fallback: str) -> str:
    """``pod/container`` for a kubelet's container (as k9s and kubectl name it); else
    ``fallback``, the core name."""
    if NAMESPACE not in labels:
        return fallback
    pod = labels.get(POD_NAME, "")
    name = labels.get(CONTAINER_NAME) or fallback
    return f"{pod}/{name}" if pod else name


def fit_container_name(labels: Mapping[str, str], fallback: str, width: int) -> str:
    """``container_name`` in ``width`` cells: a long ``pod/container`` gives up the end of
    the pod name first (``shop-6d4…/frontend``), as the container's name tells the pod's
    containers apart. Other names are left whole (the table cuts them at the end)."""
    name = container_name(labels, fallback)
    pod, sep, container = name.rpartition("/")
    if not sep or len(name) <= width or width <= 0:
        return name
    room = width - len(container) - 2  # "…/"
    if room < 1:  # too narrow for both: the table cuts the whole at the end
        return name
    return f"{pod[:room]}…/{container}"


def term_matches(key: str, labels: Mapping[str, str], value: str) -> bool:
    """The filter terms on Kubernetes names, for containers and pods alike: ``ns`` is the
    namespace, whole (as ``kubectl -n`` takes it); ``pod`` is part of the pod name, in any
    case (an object the kubelet did not make has none)."""
    if key == "ns":
        return namespace(labels) == value
    if key == "pod":
        return is_kube(labels) and value.lower() in labels.get(POD_NAME, "").lower()
    raise ValueError(f"no Kubernetes filter term {key!r}")
