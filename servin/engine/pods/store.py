"""Pod records in the metadata store (table ``pods``, migration 7).

A row holds the pod's identity in columns (id, name, creation time) and two JSON documents:
``spec`` (the ``PodConfig``, as created) and ``state`` (infra container, cgroup, start and
stop times, the creating/removing intents).
"""

from __future__ import annotations

import builtins
import sqlite3

import msgspec

from servin.engine.pods.model import Pod, PodConfig
from servin.engine.store.metadata import MetadataStore
from servin.errors import Conflict, NotFound

_COLUMNS = "id, name, created_ns, spec, state"


class StoredPodState(msgspec.Struct, kw_only=True, omit_defaults=True):
    """The ``state`` column's document."""

    infra_id: str = ""
    cgroup_path: str = ""
    started_ns: int = 0
    stopped_ns: int = 0
    creating: bool = False
    removing: bool = False


_encode = msgspec.json.Encoder().encode
_decode_spec = msgspec.json.Decoder(PodConfig).decode
_decode_state = msgspec.json.Decoder(StoredPodState).decode


def _state_of(p: Pod) -> str:
    return _encode(StoredPodState(
        infra_id=p.infra_id, cgroup_path=p.cgroup_path, started_ns=p.started_ns,
        stopped_ns=p.stopped_ns, creating=p.creating, removing=p.removing)).decode()


def _row_to_pod(row: sqlite3.Row) -> Pod:
    state = _decode_state(row["state"])
    return Pod(id=row["id"], name=row["name"], created_ns=row["created_ns"],
               config=_decode_spec(row["spec"]), infra_id=state.infra_id,
               cgroup_path=state.cgroup_path, started_ns=state.started_ns,
               stopped_ns=state.stopped_ns, creating=state.creating, removing=state.removing)


class PodStore:
    """Queries and updates of pod records (blocking: call from worker threads)."""

    def __init__(self, meta: MetadataStore) -> None:
        self.meta = meta

    def add(self, p: Pod) -> None:
        """Record a new pod; Conflict if its name is taken."""
        row = self.meta.query_one("SELECT id FROM pods WHERE name = ?", (p.name,))
        if row is not None:
            raise Conflict(f"pod name {p.name!r} is in use by pod {row['id'][:12]}: remove "
                           "that pod to reuse the name")
        with self.meta.transaction() as db:
            db.execute(f"INSERT INTO pods ({_COLUMNS}) VALUES (?, ?, ?, ?, ?)",
                       (p.id, p.name, p.created_ns, _encode(p.config).decode(), _state_of(p)))

    def save_state(self, p: Pod) -> None:
        """Persist the pod's state."""
        with self.meta.transaction() as db:
            db.execute("UPDATE pods SET state = ? WHERE id = ?", (_state_of(p), p.id))

    def delete(self, pod_id: str) -> None:
        """Forget a pod."""
        with self.meta.transaction() as db:
            db.execute("DELETE FROM pods WHERE id = ?", (pod_id,))

    def list(self) -> builtins.list[Pod]:
        """Every pod, newest first."""
        rows = self.meta.query(f"SELECT {_COLUMNS} FROM pods ORDER BY created_ns DESC")
        return [_row_to_pod(r) for r in rows]

    def names(self) -> set[str]:
        """Every pod name."""
        return {r["name"] for r in self.meta.query("SELECT name FROM pods")}

    def get(self, pod_id: str) -> Pod:
        """A pod by full ID."""
        row = self.meta.query_one(f"SELECT {_COLUMNS} FROM pods WHERE id = ?", (pod_id,))
        if row is None:
            raise NotFound(f"no such pod: {pod_id}")
        return _row_to_pod(row)

    def find(self, pod_id: str) -> Pod | None:
        """A pod by full ID, or None."""
        row = self.meta.query_one(f"SELECT {_COLUMNS} FROM pods WHERE id = ?", (pod_id,))
        return None if row is None else _row_to_pod(row)

    def resolve(self, text: str) -> Pod:
        """A pod by full ID, name or unique ID prefix."""
        row = self.meta.query_one(f"SELECT {_COLUMNS} FROM pods WHERE id = ? OR name = ?",
                                  (text, text))
        if row is not None:
            return _row_to_pod(row)
        if text and all(ch in "0123456789abcdef" for ch in text):
            rows = self.meta.query(f"SELECT {_COLUMNS} FROM pods WHERE id LIKE ?", (f"{text}%",))
            if len(rows) == 1:
                return _row_to_pod(rows[0])
            if len(rows) > 1:
                raise Conflict(f"multiple pods found with provided prefix: {text}")
        raise NotFound(f"no such pod: {text}")
