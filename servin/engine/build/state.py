"""The state of a stage between two steps: an image config and the layers under it.

A state is what an image would be if the build stopped there. Its ID as an image is the
digest of its config (serialised canonically, so the same state always has the same ID),
except for a base image taken as it is, which keeps its recorded ID. States are stored in
the build cache as JSON (``to_json``/``from_json``).
"""

from __future__ import annotations

import copy
import hashlib
import json
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

DEFAULT_PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"


@dataclass(frozen=True)
class Layer:
    """One layer of a state: its blob in the content store and its diff ID."""

    blob: str
    diff_id: str
    size: int  # bytes of the blob
    media_type: str


@dataclass
class State:
    """An image config (OCI ``config``, ``rootfs``, ``history``...) and its layers."""

    config: dict[str, Any]
    layers: list[Layer] = field(default_factory=list)
    key: str = ""  # the cache key of this state (the digest of everything it came from)
    image_id: str = ""  # set when the state is exactly a recorded image (a base as it is)

    @property
    def image(self) -> dict[str, Any]:
        """The ``config`` part: Env, Cmd, WorkingDir, ..."""
        inner = self.config.setdefault("config", {})
        assert isinstance(inner, dict)
        return inner

    @property
    def diff_ids(self) -> list[str]:
        """The layers' diff IDs, bottom first."""
        return [layer.diff_id for layer in self.layers]

    @property
    def history(self) -> list[dict[str, Any]]:
        """The history entries, oldest first."""
        return list(self.config.get("history") or [])

    def config_bytes(self) -> bytes:
        """The config as stored in the content store (canonical JSON)."""
        return canonical(self.config)

    @property
    def id(self) -> str:
        """The ID this state has as an image."""
        if self.image_id:
            return self.image_id
        return "sha256:" + hashlib.sha256(self.config_bytes()).hexdigest()

    def env(self) -> dict[str, str]:
        """The config's Env as a mapping (later entries win)."""
        out: dict[str, str] = {}
        for item in self.image.get("Env") or []:
            name, _, value = str(item).partition("=")
            out[name] = value
        return out

    def derive(self) -> State:
        """A copy to change for the next step (no longer a recorded image)."""
        return State(copy.deepcopy(self.config), list(self.layers), self.key)

    def copy(self) -> State:
        """An independent copy of the very same state (image ID kept)."""
        return State(copy.deepcopy(self.config), list(self.layers), self.key, self.image_id)

    def add_step(self, created_by: str, layer: Layer | None, created: str = "") -> None:
        """Record a step: a history entry and, when it changed files, its layer."""
        created = created or now()
        entry: dict[str, Any] = {"created": created, "created_by": created_by}
        if layer is None:
            entry["empty_layer"] = True
        else:
            self.layers.append(layer)
        self.config["history"] = [*self.history, entry]
        rootfs = dict(self.config.get("rootfs") or {})
        rootfs["type"] = "layers"
        rootfs["diff_ids"] = self.diff_ids
        self.config["rootfs"] = rootfs
        self.config["created"] = created
        self.image_id = ""

    def set_env(self, name: str, value: str) -> None:
        """Set one Env entry in place (docker keeps the order; a new name goes last)."""
        env = list(self.image.get("Env") or [])
        item = f"{name}={value}"
        for i, existing in enumerate(env):
            if str(existing).partition("=")[0] == name:
                env[i] = item
                break
        else:
            env.append(item)
        self.image["Env"] = env

    def to_json(self) -> str:
        """The state for the build cache."""
        return json.dumps({
            "config": self.config,
            "layers": [[layer.blob, layer.diff_id, layer.size, layer.media_type]
                       for layer in self.layers],
            "image_id": self.image_id,
        }, separators=(",", ":"))

    @classmethod
    def from_json(cls, text: str, key: str) -> State:
        """A state stored by ``to_json``."""
        doc = json.loads(text)
        return cls(doc["config"], [Layer(*item) for item in doc["layers"]], key,
                   doc.get("image_id", ""))


def canonical(value: Any) -> bytes:
    """JSON with sorted keys and no spaces: the same value always gives the same bytes."""
    return json.dumps(value, sort_keys=True, separators=(",", ":"),
                      ensure_ascii=False).encode()


def now() -> str:
    """The current time in the format image configs use."""
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def scratch(os_name: str, architecture: str, variant: str = "") -> dict[str, Any]:
    """The config of an empty image (``FROM scratch``)."""
    config: dict[str, Any] = {
        "architecture": architecture,
        "os": os_name,
        "config": {"Env": [f"PATH={DEFAULT_PATH}"]},
        "rootfs": {"type": "layers", "diff_ids": []},
        "history": [],
    }
    if variant:
        config["variant"] = variant
    return config


def begin_stage(state: State) -> None:
    """What every stage does to its base: PATH in Env when missing, ONBUILD triggers taken
    out (they run now and are not inherited further)."""
    env = state.env()
    if "PATH" not in env:
        state.set_env("PATH", DEFAULT_PATH)
    state.image.pop("OnBuild", None)
