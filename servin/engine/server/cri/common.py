"""What every CRI verb shares: the keys under which the CRI's own facts ride on core objects,
state names, label selection, and small conversions.

A CRI container is a core container with a pod (``pod_id``); its CRI labels are the core
container's labels (so ``servin ps --filter label=io.kubernetes.pod.namespace=...`` works) and
its CRI annotations are the core's annotations. What the CRI needs besides (the metadata the
kubelet sent, the image as it was asked for, the log path) is kept in annotations under
``io.servin.cri.``, which the CRI never shows back.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping
from typing import Any

from servin.api.cri.runtime.v1 import api_pb2
from servin.engine.containers.model import CREATED, DEAD, EXITED, PAUSED, RESTARTING, RUNNING
from servin.errors import InvalidArgument

PREFIX = "io.servin.cri."
KIND = PREFIX + "kind"  # "container" on CRI containers (the door lists only those)
METADATA = PREFIX + "metadata"  # JSON {"name", "attempt"}
IMAGE = PREFIX + "image"  # the image as CreateContainer named it
LOG_PATH = PREFIX + "log-path"  # the log file's full path ("" = none asked for)
SANDBOX_METADATA = PREFIX + "sandbox-metadata"  # JSON {"name", "uid", "namespace", "attempt"}
LOG_DIRECTORY = PREFIX + "log-directory"  # the sandbox's log_directory
RUNTIME_HANDLER = PREFIX + "runtime-handler"  # the sandbox's runtime handler
SANDBOX_CONFIG = PREFIX + "sandbox-linux"  # JSON of what a sandbox's containers inherit

MAX_NAME = 200  # core names may be 255 characters; kubelet's are shorter, critest's not
CONTAINER_KIND = "container"
SANDBOX_KIND = "sandbox"

# The runtime handlers the CRI offers: "" is the daemon's default runtime.
HANDLERS = ("", "native", "runc", "crun")


def visible(annotations: Mapping[str, str]) -> dict[str, str]:
    """The annotations a CRI client sees (without the door's own)."""
    return {k: v for k, v in annotations.items() if not k.startswith(PREFIX)}


def check_user_annotations(annotations: Mapping[str, str]) -> None:
    """Refuse annotations in the door's own namespace (they would be confused with its own)."""
    for key in annotations:
        if key.startswith(PREFIX):
            raise InvalidArgument(f"annotation {key!r}: the {PREFIX} prefix is reserved")


def dump(value: Mapping[str, Any]) -> str:
    """A compact JSON annotation value."""
    return json.dumps(value, separators=(",", ":"), sort_keys=True)


def load(text: str) -> dict[str, Any]:
    """An annotation value written by ``dump`` ({} when missing or unreadable)."""
    try:
        value = json.loads(text) if text else {}
    except ValueError:
        return {}
    return value if isinstance(value, dict) else {}


def container_state(status: str) -> api_pb2.ContainerState.ValueType:
    """The CRI state of a core container status."""
    if status == CREATED:
        return api_pb2.CONTAINER_CREATED
    if status in (RUNNING, PAUSED, RESTARTING):
        return api_pb2.CONTAINER_RUNNING
    if status in (EXITED, DEAD):
        return api_pb2.CONTAINER_EXITED
    return api_pb2.CONTAINER_UNKNOWN


def labels_match(labels: Mapping[str, str], selector: Mapping[str, str]) -> bool:
    """Whether every selector label is present with its value."""
    return all(labels.get(k) == v for k, v in selector.items())


def check_name(kind: str, name: str) -> None:
    """The CRI names must be given (the kubelet always does)."""
    if not name:
        raise InvalidArgument(f"{kind} metadata.name is required")


def core_name(*parts: object) -> str:
    """A core object name made of CRI metadata, as containerd names its own
    (``<name>_<pod>_<namespace>_<uid>_<attempt>``); characters a core name cannot hold
    become ``-``."""
    text = "_".join(str(p) for p in parts)
    out = "".join(c if c.isascii() and (c.isalnum() or c in "_.-") else "-" for c in text)
    out = out if out[:1].isalnum() else "x" + out
    if len(out) > MAX_NAME:
        # Still one name per metadata: the tail is a digest of the whole.
        digest = hashlib.sha256(text.encode()).hexdigest()[:16]
        out = f"{out[:MAX_NAME - 17]}-{digest}"
    return out


def key_values(items: Mapping[str, str]) -> dict[str, str]:
    """A proto map as a plain dict."""
    return dict(items.items())
