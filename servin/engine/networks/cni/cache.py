"""Attachment records on disk: what DEL and CHECK need long after ADD, across daemon crashes.

As libcni's ``/var/lib/cni/results`` (ours lives under the daemon root), one JSON file per
attachment ``(network, container ID, interface)``. The record is written *before* the first
plugin runs (so a daemon killed in the middle of ADD still knows there is something to DEL)
and again with the final result after it; DEL removes it only when every plugin succeeded.
Writes are atomic (temp file, fsync, rename).
"""

from __future__ import annotations

import json
import logging
import os
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

log = logging.getLogger(__name__)

KIND = "servin-cni-attachment/v1"
# ':' cannot appear in a network name, a container ID or an interface name.
_SEP = ":"


@dataclass
class AttachmentRecord:
    """One attachment: its parameters, the network configuration used, and ADD's result."""

    network: str
    container_id: str
    ifname: str
    netns: str
    args: str
    capability_args: Mapping[str, Any]
    config: Mapping[str, Any]  # the network configuration document ADD used
    cni_version: str  # the version ADD spoke
    result: Mapping[str, Any] | None = None  # None until ADD completed
    kind: str = field(default=KIND)


class ResultCache:
    """The records under one directory (``<root>/cni/results``)."""

    def __init__(self, directory: Path) -> None:
        self.directory = directory

    def _path(self, network: str, container_id: str, ifname: str) -> Path:
        return self.directory / f"{network}{_SEP}{container_id}{_SEP}{ifname}.json"

    def write(self, record: AttachmentRecord) -> None:
        """Store ``record`` atomically (replacing an older one of the same attachment)."""
        self.directory.mkdir(parents=True, exist_ok=True, mode=0o700)
        path = self._path(record.network, record.container_id, record.ifname)
        tmp = path.with_name(path.name + ".tmp")
        data = json.dumps(asdict(record), sort_keys=True).encode()
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_CLOEXEC, 0o600)
        try:
            os.write(fd, data)
            os.fsync(fd)
        finally:
            os.close(fd)
        os.replace(tmp, path)
        dir_fd = os.open(self.directory, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
        try:
            os.fsync(dir_fd)
        finally:
            os.close(dir_fd)

    def read(self, network: str, container_id: str, ifname: str) -> AttachmentRecord | None:
        """The record of one attachment, or None (also for an unreadable one, logged)."""
        return self._load(self._path(network, container_id, ifname))

    def remove(self, network: str, container_id: str, ifname: str) -> None:
        """Forget an attachment (idempotent)."""
        self._path(network, container_id, ifname).unlink(missing_ok=True)

    def records(self, container_id: str | None = None) -> list[AttachmentRecord]:
        """Every record (of one container if given), sorted by file name."""
        try:
            paths = sorted(self.directory.glob("*.json"))
        except FileNotFoundError:
            return []
        found = []
        for path in paths:
            parts = path.name[: -len(".json")].split(_SEP, 2)
            if len(parts) != 3 or (container_id is not None and parts[1] != container_id):
                continue
            record = self._load(path)
            if record is not None:
                found.append(record)
        return found

    def _load(self, path: Path) -> AttachmentRecord | None:
        try:
            doc = json.loads(path.read_bytes())
        except FileNotFoundError:
            return None
        except (OSError, ValueError) as exc:
            log.warning("ignoring unreadable CNI attachment record %s: %s", path, exc)
            return None
        try:
            if doc.get("kind") != KIND:
                raise TypeError(f"unknown kind {doc.get('kind')!r}")
            return AttachmentRecord(**doc)
        except (TypeError, AttributeError) as exc:
            log.warning("ignoring invalid CNI attachment record %s: %s", path, exc)
            return None
