"""The Pods screen: every pod with its members, status and live CPU/memory (the sums of its
containers' figures from the shared stats stream), and the pod actions on keys.

A pod the kubelet ran (through the CRI) shows its Kubernetes namespace (a NAMESPACE column,
there while such pods exist), its Kubernetes name, and its members' container names, all
from the kubelet's labels (servin.tui.kube); ``ns=`` and ``pod=`` filter on them."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Any, ClassVar

from rich.text import Text
from textual.binding import Binding

from servin.errors import InvalidArgument
from servin.tui import format as fmt
from servin.tui import kube
from servin.tui.screens.dialogs import ConfirmScreen
from servin.tui.screens.resources import ACTION_TIMEOUT, Call, ResourceScreen, _pairs, parse_words
from servin.units import parse_bytes

if TYPE_CHECKING:
    from google.protobuf.message import Message

    from servin.api.servin.v1.common_pb2 import PortBinding
    from servin.api.servin.v1.pods_pb2 import Pod
    from servin.tui.source import DaemonClient

# The filter's Kubernetes terms (the other words match the cells).
FILTER_KEYS = {"ns": "ns", "namespace": "ns", "pod": "pod"}

CREATE_OPTIONS = ("label", "publish", "memory", "cpus", "share", "network", "hostname")


def parse_port(text: str) -> PortBinding:
    """``[IP:][HOST:]CONTAINER[/PROTO]`` as a servin.v1 PortBinding."""
    from servin.api.servin.v1 import common_pb2

    body, _, proto = text.partition("/")
    parts = body.rsplit(":", 2)
    try:
        container = int(parts[-1])
        host = int(parts[-2]) if len(parts) >= 2 and parts[-2] else 0
    except ValueError:
        raise InvalidArgument(f"bad publish={text!r}: [IP:][HOST:]CONTAINER[/tcp|udp]") from None
    return common_pb2.PortBinding(container_port=container, protocol=proto or "tcp",
                                  host_ip=parts[0] if len(parts) == 3 else "", host_port=host)


def _status(state: str) -> Text:
    """A pod status as podman prints it, coloured as the matching container state."""
    like = {"Running": "running", "Paused": "paused", "Exited": "exited", "Stopped": "exited",
            "Created": "created", "Degraded": "restarting"}.get(state, "")
    return Text(state, style=fmt.state_text(like).style if like else "")


class PodsScreen(ResourceScreen):
    """Pods (groups of containers sharing namespaces around an infra process)."""

    SERVICE = "pods"
    KIND = "pod"
    TITLE_TEXT = "Pods"
    FIELD = "pods"
    COLUMNS = [
        ("NAME", 12, 20, 0),
        ("ID", 12, 12, 100),
        ("STATUS", 8, 9, 0),
        ("CTRS", 4, 4, 0),
        ("MEMBERS", 16, 36, 0),
        ("CPU %", 6, 7, 0),
        ("MEMORY", 16, 20, 0),
        ("IP", 15, 15, 120),
        ("CREATED", 20, 20, 120),
    ]
    # With pods the kubelet ran: their namespace first (as kubectl shows it), longer names,
    # and narrower member lists at 80 columns to make room.
    # (CTRS from 100 columns on: the member list says it.)
    KUBE_COLUMNS: ClassVar[list[tuple[str, int, int, int]]] = [
        ("NAMESPACE", 11, 16, 0),
        ("NAME", 16, 28, 0),
        *COLUMNS[1:3],
        ("CTRS", 4, 4, 100),
        ("MEMBERS", 10, 36, 0),
        ("CPU %", 6, 7, 0),
        ("MEMORY", 13, 20, 0),
        *COLUMNS[7:],
    ]
    CREATE_HINT = ("create pod: NAME [label=K=V] [publish=8080:80] [memory=64m] [cpus=0.5] "
                   "[share=pid] [network=NAME] [hostname=H]")
    FILTER_HINT = "words, ns=NAMESPACE, pod=NAME"
    PRUNE_DETAIL = "Removes every pod with no running container, with its containers."

    BINDINGS = [
        Binding("enter", "inspect", "Inspect", id="pods.inspect"),
        Binding("u", "start", "Start", id="pods.start"),
        Binding("s", "stop", "Stop", id="pods.stop"),
        Binding("R", "restart", "Restart", id="pods.restart"),
        Binding("p", "pause_toggle", "Pause", id="pods.pause"),
        Binding("K", "kill", "Kill", id="pods.kill"),
        Binding("d", "remove", "Remove", id="pods.remove"),
        Binding("c", "create", "Create", id="pods.create"),
        Binding("P", "prune", "Prune", id="pods.prune"),
        Binding("slash", "filter", "Filter", id="pods.filter"),
        Binding("y", "copy_id", "Copy", show=False, id="pods.copy"),
        Binding("r", "reload", "Reload", id="pods.reload"),
        Binding("escape", "clear", "Clear", show=False, id="pods.clear"),
    ]
    ACTIONS: ClassVar[set[str]] = {"start", "stop", "restart", "pause_toggle", "kill"}

    def list_call(self, cl: DaemonClient) -> Awaitable[Any]:
        from servin.api.servin.v1 import pods_pb2

        return cl.pods.List(pods_pb2.ListPodsRequest())

    def usage(self, p: Pod) -> tuple[float, int, int, bool]:
        """CPU %, memory used, the pod's memory limit (0: none), and whether any member has
        figures, from the shared stats stream."""
        cpu, mem, seen = 0.0, 0, False
        for c in p.containers:
            s = self.state.stats.get(c.id)
            if s is not None:
                cpu += s.cpu_percent
                mem += s.memory_usage
                seen = True
        return cpu, mem, p.spec.memory, seen

    def column_specs(self) -> list[tuple[str, int, int, int]]:
        if any(kube.is_kube(p.spec.labels) for p in self.items):
            return self.KUBE_COLUMNS
        return self.COLUMNS

    def member_name(self, member_id: str, fallback: str) -> str:
        """A member's name: its Kubernetes container name for a kubelet's container (from
        the container list the console holds), else its core name."""
        c = self.state.containers.get(member_id)
        if c is None or not kube.is_kube(c.labels):
            return fallback
        return c.labels.get(kube.CONTAINER_NAME) or fallback

    def row(self, p: Pod) -> list[Any]:
        members = [c for c in p.containers if not c.infra]
        cpu, mem, limit, seen = self.usage(p)
        memory = (fmt.size(mem) + (f" / {fmt.size(limit)}" if limit else "")) if seen else "-"
        # The layout the table has now (column_specs() when the items last changed).
        kube_layout = self._specs is self.KUBE_COLUMNS
        names = [self.member_name(c.id, c.name) if kube_layout else c.name for c in members]
        head = ([kube.namespace(p.spec.labels), kube.pod_name(p.spec.labels, p.name)]
                if kube_layout else [p.name])
        return [
            *head,
            fmt.short_id(p.id),
            _status(p.state),
            str(len(members)),
            ",".join(names) or "-",
            f"{cpu:.1f}" if seen else "-",
            memory,
            p.ip_address,
            fmt.utc_stamp(fmt.ts_seconds(p.created)),
        ]

    def key(self, item: Any) -> str:
        return str(item.id)

    def visible_items(self) -> list[Any]:
        """Items passing every filter term: ``ns=NAME`` and ``pod=TEXT`` as on Containers
        (``kube.term_matches``; a repeated key ORs), other words in the cells."""
        words: list[str] = []
        terms: dict[str, list[str]] = {}
        for word in self.filter_text.split():
            key, sep, value = word.partition("=")
            if sep and key.lower() in FILTER_KEYS:
                terms.setdefault(FILTER_KEYS[key.lower()], []).append(value)
            else:
                words.append(word.lower())
        out = []
        for p in self.items:
            if not all(any(kube.term_matches(key, p.spec.labels, v) for v in values)
                       for key, values in terms.items()):
                continue
            if words:
                hay = " ".join(str(c) for c in self.row(p)).lower()
                if not all(w in hay for w in words):
                    continue
            out.append(p)
        return out

    def update_data(self, kinds: set[str]) -> None:
        # Members change state with container events; figures come with every stats pass.
        if kinds & {"pods", "containers", "connection"}:
            self.action_reload()
        elif "stats" in kinds and self.items:
            self._show()

    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        if action in self.ACTIONS:
            return not self.servin.read_only
        return super().check_action(action, parameters)

    def inspect_call(self, key: str) -> Callable[[DaemonClient], Awaitable[Message]]:
        from servin.api.servin.v1 import pods_pb2

        request = pods_pb2.PodRequest(id=key)
        return lambda cl: cl.pods.Inspect(request)

    def remove_call(self, key: str) -> Call:
        from servin.api.servin.v1 import pods_pb2

        request = pods_pb2.RemovePodRequest(id=key, force=True)
        return lambda cl: cl.pods.Remove(request, timeout=ACTION_TIMEOUT)

    def prune_call(self) -> Call:
        from servin.api.servin.v1 import pods_pb2

        request = pods_pb2.PrunePodsRequest()
        return lambda cl: cl.pods.Prune(request, timeout=ACTION_TIMEOUT)

    def create_call(self, line: str) -> Call:
        from servin.api.servin.v1 import pods_pb2

        name, opts = parse_words(line)
        unknown = set(opts) - set(CREATE_OPTIONS)
        if unknown:
            raise InvalidArgument(f"unknown option {sorted(unknown)[0]!r}: "
                                  + ", ".join(f"{o}=" for o in CREATE_OPTIONS))
        spec = pods_pb2.PodSpec(labels=_pairs(opts.get("label", []), "label"),
                                network=(opts.get("network") or [""])[-1],
                                hostname=(opts.get("hostname") or [""])[-1])
        spec.ports.extend(parse_port(p) for p in opts.get("publish", []))
        if opts.get("memory"):
            spec.memory = parse_bytes(opts["memory"][-1], "memory=")
        if opts.get("cpus"):
            try:
                spec.nano_cpus = round(float(opts["cpus"][-1]) * 1e9)
            except ValueError:
                raise InvalidArgument(f"bad cpus={opts['cpus'][-1]!r}") from None
        share = {s for v in opts.get("share", []) for s in v.split(",") if s}
        if share - {"net", "ipc", "uts", "pid"}:
            raise InvalidArgument("share= takes net, ipc, uts, pid")
        spec.share_pid = "pid" in share
        request = pods_pb2.CreatePodRequest(name=name, spec=spec)
        return lambda cl: cl.pods.Create(request, timeout=ACTION_TIMEOUT)

    # ---- the pod actions -----------------------------------------------------------------

    def _act(self, method: str, call: Call, done: str) -> None:
        self.run_worker(self._call(method, call, done), group="actions")

    def action_start(self) -> None:
        from servin.api.servin.v1 import pods_pb2

        p = self.current()
        if p is not None:
            request = pods_pb2.PodRequest(id=p.id)
            self._act("Start", lambda cl: cl.pods.Start(request, timeout=ACTION_TIMEOUT),
                      f"started {p.name}")

    def action_restart(self) -> None:
        from servin.api.servin.v1 import pods_pb2

        p = self.current()
        if p is not None:
            request = pods_pb2.StopPodRequest(id=p.id)
            self._act("Restart", lambda cl: cl.pods.Restart(request, timeout=ACTION_TIMEOUT),
                      f"restarted {p.name}")

    def action_pause_toggle(self) -> None:
        from servin.api.servin.v1 import pods_pb2

        p = self.current()
        if p is None:
            return
        request = pods_pb2.PodRequest(id=p.id)
        if p.state == "Paused":
            self._act("Unpause", lambda cl: cl.pods.Unpause(request, timeout=ACTION_TIMEOUT),
                      f"unpaused {p.name}")
        else:
            self._act("Pause", lambda cl: cl.pods.Pause(request, timeout=ACTION_TIMEOUT),
                      f"paused {p.name}")

    def _confirmed(self, question: str, method: str, call: Call, done: str) -> None:
        p = self.current()

        def go(yes: bool | None) -> None:
            if yes:
                self._act(method, call, done)

        self.app.push_screen(ConfirmScreen(question, p.id if p is not None else ""), go)

    def action_stop(self) -> None:
        from servin.api.servin.v1 import pods_pb2

        p = self.current()
        if p is not None:
            request = pods_pb2.StopPodRequest(id=p.id)
            self._confirmed(f"Stop pod {p.name}?", "Stop",
                            lambda cl: cl.pods.Stop(request, timeout=ACTION_TIMEOUT),
                            f"stopped {p.name}")

    def action_kill(self) -> None:
        from servin.api.servin.v1 import pods_pb2

        p = self.current()
        if p is not None:
            request = pods_pb2.KillPodRequest(id=p.id)
            self._confirmed(f"Kill every container of pod {p.name}?", "Kill",
                            lambda cl: cl.pods.Kill(request, timeout=ACTION_TIMEOUT),
                            f"killed {p.name}")

    def prune_text(self, reply: Any) -> str:
        return f"pruned {len(reply.deleted)} pods"

