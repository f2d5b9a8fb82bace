"""Record what a real daemon answers into tests/tui/data/daemon.json, for the console's tests.

    sudo .venv/bin/python -m tests.tui.record [--out tests/tui/data/daemon.json]

Starts a throwaway daemon, imports busybox, runs a handful of real containers (a chatty web
pair, a db writing to stderr, a CPU-bound worker, one that exited with 3, one only created),
lets them run, then records every answer the console asks for. Calls the daemon does not
implement yet are recorded as such (the fake client answers them the same way).

Recorded data is made deterministic: every timestamp is shifted so the recording instant is
FIXED_NOW, and temp paths become the default /var/lib/servin and /run/servin.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path
from typing import Any

from google.protobuf import json_format
from google.protobuf.message import Message
from google.protobuf.timestamp_pb2 import Timestamp

FIXED_NOW = 1735732800.0  # 2025-01-01T12:00:00Z
DATA = Path(__file__).parent / "data" / "daemon.json"

CONTAINERS = [
    # name, labels, command
    (
        "web-1",
        ["tier=front", "app=shop"],
        'i=0; while true; do i=$((i+1)); echo "GET /index.html 200 req=$i"; sleep 0.05; done',
    ),
    (
        "web-2",
        ["tier=front", "app=shop"],
        "i=0; while true; do i=$((i+1)); "
        'echo "GET /api/cart 200 req=$i"; [ $((i % 7)) = 0 ] && echo "POST /api/pay 502 req=$i"; '
        "sleep 0.1; done",
    ),
    (
        "db",
        ["tier=back"],
        'while true; do echo "checkpoint complete"; '
        'echo "warning: slow query took 1204ms" >&2; sleep 0.3; done',
    ),
    ("worker", ["tier=back"], "while true; do :; done"),
]


def shift_times(msg: Message, delta: float) -> None:
    """Add ``delta`` seconds to every set Timestamp inside ``msg`` (recursively)."""
    for fd, value in msg.ListFields():
        if fd.message_type is None:
            continue
        if fd.message_type.full_name == "google.protobuf.Timestamp":
            items = value if fd.is_repeated else [value]
            for ts in items:
                if ts.seconds or ts.nanos:
                    ts.FromNanoseconds(ts.ToNanoseconds() + int(delta * 1e9))
        elif fd.message_type.GetOptions().map_entry:
            if fd.message_type.fields_by_name["value"].message_type is not None:
                for v in value.values():
                    shift_times(v, delta)
        elif fd.is_repeated:
            for v in value:
                shift_times(v, delta)
        else:
            shift_times(value, delta)


def record(out: Path) -> None:
    """Run the scenario against a fresh daemon and write the recording."""
    from servin.api.servin.v1 import (
        containers_pb2,
        images_pb2,
        networks_pb2,
        pods_pb2,
        system_pb2,
        volumes_pb2,
    )
    from servin.client.logs import entries as log_entries
    from servin.client.sync import Client
    from servin.devtools.busybox import write_rootfs
    from servin.errors import ServinError
    from tests.daemon import DaemonProcess, short_tmpdir

    base = short_tmpdir()
    daemon = DaemonProcess(base).start()
    calls: dict[str, Any] = {}
    unsupported: dict[str, str] = {}
    recorded: list[tuple[str, Message]] = []

    def keep(key: str, msg: Message) -> Message:
        recorded.append((key, msg))
        return msg

    try:
        tar = write_rootfs(base / "busybox.tar")
        daemon.cli("import", "-c", 'CMD ["sh"]', str(tar), "busybox:1.36", check=True)
        for name, labels, script in CONTAINERS:
            args = ["run", "-d", "--name", name]
            for label in labels:
                args += ["--label", label]
            daemon.cli(*args, "busybox:1.36", "sh", "-c", script, check=True)
        daemon.cli(
            "run",
            "--name",
            "migrate",
            "--label",
            "tier=back",
            "busybox:1.36",
            "sh",
            "-c",
            "echo applying 12 migrations; echo done; exit 3",
        )
        daemon.cli("create", "--name", "backup", "busybox:1.36", "sh", check=True)
        time.sleep(3.0)
        now = time.time()
        with Client(daemon.host) as c:

            def unary(key: str, call: Any, request: Any) -> None:
                try:
                    calls[key] = keep(key, call(request))
                except ServinError as exc:
                    unsupported[key] = exc.message

            unary("System.Info", c.system.Info, system_pb2.InfoRequest())
            unary("System.Version", c.system.Version, system_pb2.VersionRequest())
            unary("System.DiskUsage", c.system.DiskUsage, system_pb2.DiskUsageRequest())
            unary(
                "Containers.List", c.containers.List, containers_pb2.ListContainersRequest(all=True)
            )
            unary("Images.List", c.images.List, images_pb2.ListImagesRequest())
            unary("Volumes.List", c.volumes.List, volumes_pb2.ListVolumesRequest())
            unary("Networks.List", c.networks.List, networks_pb2.ListNetworksRequest())
            unary("Pods.List", c.pods.List, pods_pb2.ListPodsRequest())
            for img in calls["Images.List"].images:
                unary(
                    f"Images.Inspect/{img.id}",
                    c.images.Inspect,
                    images_pb2.InspectImageRequest(reference=img.id),
                )
                unary(
                    f"Images.History/{img.id}",
                    c.images.History,
                    images_pb2.ImageHistoryRequest(reference=img.id),
                )
            for ctr in calls["Containers.List"].containers:
                unary(
                    f"Containers.Inspect/{ctr.id}",
                    c.containers.Inspect,
                    containers_pb2.InspectContainerRequest(id=ctr.id),
                )
                if ctr.state == "running":
                    unary(
                        f"Containers.Top/{ctr.id}",
                        c.containers.Top,
                        containers_pb2.TopRequest(id=ctr.id),
                    )
                request = containers_pb2.ContainerLogsRequest(
                    id=ctr.id, stdout=True, stderr=True, tail=400, timestamps=True
                )
                entries = [e for chunk in c.containers.Logs(request)
                           for e in log_entries(chunk)]  # fmt: skip
                calls[f"Containers.Logs/{ctr.id}"] = [keep("log", e) for e in entries]
            since = Timestamp()
            since.FromSeconds(int(now - 600))
            until = Timestamp()
            until.FromNanoseconds(int(time.time() * 1e9))
            events = list(c.system.Events(system_pb2.EventsRequest(since=since, until=until)))
            calls["System.Events"] = [keep("event", e) for e in events]
            try:
                batches = []
                for batch in c.containers.Stats(
                    containers_pb2.StatsRequest(stream=True, interval_ms=500)
                ):
                    batches.append(keep("stats", batch))
                    if len(batches) == 12:
                        break
                calls["Containers.Stats"] = batches
            except ServinError as exc:
                unsupported["Containers.Stats"] = exc.message
    finally:
        daemon.cleanup()

    for _, msg in recorded:
        shift_times(msg, FIXED_NOW - now)
    doc: dict[str, Any] = {"now": FIXED_NOW, "unsupported": unsupported, "calls": {}}
    for key, value in calls.items():
        if isinstance(value, list):
            doc["calls"][key] = [_dump(v) for v in value]
        else:
            doc["calls"][key] = _dump(value)
    text = json.dumps(doc, indent=1, sort_keys=True)
    text = text.replace(str(daemon.root), "/var/lib/servin")
    text = text.replace(str(daemon.exec_root), "/run/servin")
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(text + "\n")
    print(f"recorded {len(calls)} answers, {len(unsupported)} unsupported calls -> {out}")


def _dump(msg: Message) -> dict[str, Any]:
    return {
        "type": msg.DESCRIPTOR.full_name,
        "value": json_format.MessageToDict(msg, preserving_proto_field_name=True),
    }


def main(argv: list[str] | None = None) -> int:
    """Command line entry."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--out", type=Path, default=DATA)
    args = parser.parse_args(argv)
    record(args.out)
    return 0


if __name__ == "__main__":
    sys.exit(main())
