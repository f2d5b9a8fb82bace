"""The containers filter language and sort keys.

A filter is whitespace-separated terms, all of which must match:

- ``web``            substring of the name, image or ID (case-insensitive)
- ``/^web-\\d+$/``    a regular expression on the same fields
- ``state=running``  the state (repeat the key to OR values: ``state=exited state=dead``)
- ``label=tier``     has the label; ``label=tier=front`` has it with that value
- ``image=busybox``  substring of the image; ``name=web`` substring of the name
- ``health=unhealthy``
- ``ns=kube-system`` the Kubernetes namespace (exact); ``pod=coredns`` substring of the
  Kubernetes pod name (both from the kubelet's labels: see ``servin.tui.kube``)
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from servin.errors import InvalidArgument
from servin.tui import kube

if TYPE_CHECKING:
    from servin.api.servin.v1.containers_pb2 import ContainerStats, ContainerSummary

FIELD_KEYS = ("state", "label", "image", "name", "health", "id", "ns", "pod")
KEY_ALIASES = {"namespace": "ns"}


@dataclass
class ContainerQuery:
    """A parsed filter; ``matches(summary)`` tells whether a container passes."""

    text: str = ""
    terms: list[re.Pattern[str]] = field(default_factory=list)
    fields: dict[str, list[str]] = field(default_factory=dict)

    @classmethod
    def parse(cls, text: str) -> ContainerQuery:
        """Parse a filter line; a bad regular expression raises InvalidArgument."""
        q = cls(text=text.strip())
        for token in q.text.split():
            key, sep, value = token.partition("=")
            key = KEY_ALIASES.get(key, key)
            if sep and key in FIELD_KEYS:
                q.fields.setdefault(key, []).append(value)
                continue
            if len(token) >= 2 and token.startswith("/") and token.endswith("/"):
                try:
                    q.terms.append(re.compile(token[1:-1], re.IGNORECASE))
                except re.error as exc:
                    raise InvalidArgument(f"bad regular expression {token!r}: {exc}") from None
            else:
                q.terms.append(re.compile(re.escape(token), re.IGNORECASE))
        return q

    def __bool__(self) -> bool:
        return bool(self.terms or self.fields)

    def matches(self, c: ContainerSummary) -> bool:
        """Whether a ContainerSummary passes every term."""
        # Each field on its own, so ^ and $ anchor to the name (or image, or ID); a
        # kubelet's container also by the pod/container name the console shows.
        fields: tuple[str, ...] = (c.name, c.image, c.id)
        if self.terms and kube.is_kube(c.labels):
            fields = (*fields, kube.container_name(c.labels, c.name))
        if any(not any(t.search(f) for f in fields) for t in self.terms):
            return False
        for key, values in self.fields.items():
            if not any(_field_matches(c, key, v) for v in values):
                return False
        return True


def _field_matches(c: ContainerSummary, key: str, value: str) -> bool:
    if key == "state":
        return c.state == value
    if key == "health":
        return c.health == value
    if key == "image":
        return value.lower() in c.image.lower()
    if key == "name":
        return value.lower() in c.name.lower()
    if key == "id":
        return c.id.startswith(value)
    if key in ("ns", "pod"):
        return kube.term_matches(key, c.labels, value)
    lkey, sep, lvalue = value.partition("=")
    if lkey not in c.labels:
        return False
    return not sep or c.labels[lkey] == lvalue


# Sort column -> key over (summary, stats or None, now). Missing stats sort as zero.
SortKey = Callable[["ContainerSummary", "ContainerStats | None", float], Any]

_STATE_ORDER = {"running": 0, "restarting": 1, "paused": 2, "created": 3, "exited": 4, "dead": 5}


def _uptime(c: ContainerSummary, _s: ContainerStats | None, now: float) -> float:
    if c.state != "running" or not c.started_at.seconds:
        return -1.0
    return now - c.started_at.seconds


def _shown_name(c: ContainerSummary) -> str:
    """The name the console shows (``pod/container`` for a kubelet's container)."""
    return kube.container_name(c.labels, c.name)


SORT_KEYS: dict[str, SortKey] = {
    "name": lambda c, s, now: _shown_name(c).lower(),
    "image": lambda c, s, now: c.image.lower(),
    "state": lambda c, s, now: (_STATE_ORDER.get(c.state, 9), c.name.lower()),
    "health": lambda c, s, now: (c.health or "~", c.name.lower()),
    "uptime": _uptime,
    "ports": lambda c, s, now: len(c.ports),
    "cpu": lambda c, s, now: s.cpu_percent if s is not None else 0.0,
    "mem": lambda c, s, now: s.memory_usage if s is not None else 0,
    "namespace": lambda c, s, now: (kube.namespace(c.labels), _shown_name(c).lower()),
}
SORT_ALIASES = {"memory": "mem", "cpu%": "cpu", "status": "state", "names": "name", "age": "uptime",
                 "ns": "namespace"}


def sort_column(name: str) -> str:
    """A sort column's canonical name; InvalidArgument for an unknown one."""
    key = SORT_ALIASES.get(name.lower(), name.lower())
    if key not in SORT_KEYS:
        raise InvalidArgument(f"cannot sort by {name!r}: use one of {', '.join(SORT_KEYS)}")
    return key


def select(
    containers: Iterable[ContainerSummary],
    stats: Mapping[str, ContainerStats],
    query: ContainerQuery,
    sort: str,
    reverse: bool,
    running_only: bool,
    now: float,
) -> list[str]:
    """The IDs of the containers shown, filtered and sorted (ties by name, so the order is
    stable from one refresh to the next). Pure: the console runs it in a worker thread."""
    items = [
        c
        for c in containers
        if (not running_only or c.state == "running") and (not query or query.matches(c))
    ]
    key = SORT_KEYS[sort]
    items.sort(key=_shown_name)
    items.sort(key=lambda c: key(c, stats.get(c.id), now), reverse=reverse)
    return [c.id for c in items]
