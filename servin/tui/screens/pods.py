"""The Pods screen: every pod with its members, status and live CPU/memory (the sums of its
containers' figures from the shared stats stream), and the pod actions on keys."""

from __future__ import annotations

from typing import Any, ClassVar

from rich.text import Text
from textual.binding import Binding

from servin.errors import InvalidArgument
from servin.tui import format as fmt
from servin.tui.screens.dialogs import ConfirmScreen
from servin.tui.screens.resources import ResourceScreen, _pairs, parse_words
from servin.units import parse_bytes

CREATE_OPTIONS = ("label", "publish", "memory", "cpus", "share", "network", "hostname")


def parse_port(text: str) -> Any:
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
    CREATE_HINT = ("create pod: NAME [label=K=V] [publish=8080:80] [memory=64m] [cpus=0.5] "
                   "[share=pid] [network=NAME] [hostname=H]")
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

    def request(self) -> Any:
        from servin.api.servin.v1 import pods_pb2

        return pods_pb2.ListPodsRequest()

    def usage(self, p: Any) -> tuple[float, int, int, bool]:
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

    def row(self, p: Any) -> list[Any]:
        members = [c for c in p.containers if not c.infra]
        cpu, mem, limit, seen = self.usage(p)
        memory = (fmt.size(mem) + (f" / {fmt.size(limit)}" if limit else "")) if seen else "-"
        return [
            p.name,
            fmt.short_id(p.id),
            _status(p.state),
            str(len(members)),
            ",".join(c.name for c in members) or "-",
            f"{cpu:.1f}" if seen else "-",
            memory,
            p.ip_address,
            fmt.utc_stamp(fmt.ts_seconds(p.created)),
        ]

    def key(self, item: Any) -> str:
        return str(item.id)

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

    def inspect_request(self, key: str) -> Any:
        from servin.api.servin.v1 import pods_pb2

        return pods_pb2.PodRequest(id=key)

    def remove_request(self, key: str) -> Any:
        from servin.api.servin.v1 import pods_pb2

        return pods_pb2.RemovePodRequest(id=key, force=True)

    def prune_request(self) -> Any:
        from servin.api.servin.v1 import pods_pb2

        return pods_pb2.PrunePodsRequest()

    def create_request(self, line: str) -> Any:
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
        return pods_pb2.CreatePodRequest(name=name, spec=spec)

    # ---- the pod actions -----------------------------------------------------------------

    def _act(self, method: str, request: Any, done: str) -> None:
        self.run_worker(self._call(method, request, done), group="actions")

    def action_start(self) -> None:
        from servin.api.servin.v1 import pods_pb2

        p = self.current()
        if p is not None:
            self._act("Start", pods_pb2.PodRequest(id=p.id), f"started {p.name}")

    def action_restart(self) -> None:
        from servin.api.servin.v1 import pods_pb2

        p = self.current()
        if p is not None:
            self._act("Restart", pods_pb2.StopPodRequest(id=p.id), f"restarted {p.name}")

    def action_pause_toggle(self) -> None:
        from servin.api.servin.v1 import pods_pb2

        p = self.current()
        if p is None:
            return
        if p.state == "Paused":
            self._act("Unpause", pods_pb2.PodRequest(id=p.id), f"unpaused {p.name}")
        else:
            self._act("Pause", pods_pb2.PodRequest(id=p.id), f"paused {p.name}")

    def _confirmed(self, question: str, method: str, request: Any, done: str) -> None:
        p = self.current()

        def go(yes: bool | None) -> None:
            if yes:
                self._act(method, request, done)

        self.app.push_screen(ConfirmScreen(question, p.id if p is not None else ""), go)

    def action_stop(self) -> None:
        from servin.api.servin.v1 import pods_pb2

        p = self.current()
        if p is not None:
            self._confirmed(f"Stop pod {p.name}?", "Stop", pods_pb2.StopPodRequest(id=p.id),
                            f"stopped {p.name}")

    def action_kill(self) -> None:
        from servin.api.servin.v1 import pods_pb2

        p = self.current()
        if p is not None:
            self._confirmed(f"Kill every container of pod {p.name}?", "Kill",
                            pods_pb2.KillPodRequest(id=p.id), f"killed {p.name}")

    def prune_text(self, reply: Any) -> str:
        return f"pruned {len(reply.deleted)} pods"

